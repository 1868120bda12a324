package agent

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/shoal-cdn/shoal/core"
	"github.com/shoal-cdn/shoal/manifest"
)

// trustFileCheck is how often a trust file is checked for changes (a stat;
// it is read again only when its size or modification time moved).
const trustFileCheck = 2 * time.Second

// trustFile keeps a KeySet equal to the keys given at start (flags) plus
// those of a file.
type trustFile struct {
	set   *manifest.KeySet
	path  string
	fixed []manifest.PublicKey // the keys given besides the file
	mod   time.Time            // owned by watch: the file's last seen modification
	size  int64
}

// newTrustFile adds path's keys to set and returns a watcher that keeps
// them in step (nil when path is empty). An unreadable or malformed file is
// an error at start; later, the last good keys stay and the error is logged.
func newTrustFile(set *manifest.KeySet, path string) (*trustFile, error) {
	if path == "" {
		return nil, nil
	}
	tf := &trustFile{set: set, path: path, fixed: set.Keys()}
	if _, err := tf.reload(); err != nil {
		return nil, fmt.Errorf("%w: trust file %s: %v", ErrBadInput, path, err)
	}
	return tf, nil
}

// reload reads the file if it changed and replaces the set's members. It
// reports whether they changed.
func (tf *trustFile) reload() (bool, error) {
	fi, err := os.Stat(tf.path)
	if err != nil {
		return false, err
	}
	if fi.ModTime().Equal(tf.mod) && fi.Size() == tf.size {
		return false, nil
	}
	b, err := os.ReadFile(tf.path)
	if err != nil {
		return false, err
	}
	keys, err := manifest.ParseTrustFile(b)
	if err != nil {
		return false, err
	}
	tf.mod, tf.size = fi.ModTime(), fi.Size()
	return tf.set.Replace(append(keys, tf.fixed...)), nil
}

// watch re-reads the file when it changes until ctx ends. When keys were
// removed, the swarms of contents they signed are left.
func (tf *trustFile) watch(ctx context.Context, p *Peer) {
	for core.Sleep(ctx, trustFileCheck) == nil {
		changed, err := tf.reload()
		if err != nil {
			p.log.Error("trust file not re-read; keeping the keys it had", "path", tf.path, "err", err)
			continue
		}
		if changed {
			p.log.Info("trust file re-read", "path", tf.path, "trusted", tf.set.String())
			p.enforceTrust(ctx)
			p.revs.poll(ctx) // a new key's revocation list
		}
	}
}

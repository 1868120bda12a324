package publish

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/shoal-cdn/shoal/core"
	"github.com/shoal-cdn/shoal/layout"
	"github.com/shoal-cdn/shoal/manifest"
)

// RevokeConfig is one `shoal revoke`: what to add to the signing key's
// revocation list in an origin layout.
type RevokeConfig struct {
	Key      ed25519.PrivateKey   // signs the list; its list is the one updated
	Out      string               // origin layout directory
	Keys     []manifest.PublicKey // publisher keys to revoke
	Contents []core.ContentID     // contents to revoke
	Channels []manifest.ChannelID // live channels to revoke
	Now      time.Time            // issue time; zero: the wall clock
}

// Revoke adds cfg's entries to the list the key already published at
// layout.RevocationPath in cfg.Out (a revocation is never taken back), signs
// it under the next sequence number and writes it in place. It returns the
// list and the path written.
func Revoke(cfg RevokeConfig) (*manifest.Revocation, string, error) {
	if cfg.Key == nil {
		return nil, "", errors.New("publish: revoke: no signing key")
	}
	pub := manifest.PublicOf(cfg.Key)
	dst := filepath.Join(cfg.Out, filepath.FromSlash(layout.RevocationPath(pub.String())))
	r := &manifest.Revocation{}
	b, err := os.ReadFile(dst)
	switch {
	case err == nil:
		prev, err := manifest.DecodeRevocation(b, pub)
		if err != nil {
			return nil, "", fmt.Errorf("publish: revoke: the list already at %s: %w", dst, err)
		}
		r = prev
	case !errors.Is(err, fs.ErrNotExist):
		return nil, "", fmt.Errorf("publish: revoke: %w", err)
	}
	r.Seq++
	r.Issued = cfg.Now
	if r.Issued.IsZero() {
		r.Issued = time.Now()
	}
	if r.Issued.UTC().Truncate(time.Second).Unix() <= 0 {
		return nil, "", fmt.Errorf("publish: revoke: issue time %v before 1970", cfg.Now)
	}
	r.Keys = append(r.Keys, cfg.Keys...)
	r.Contents = append(r.Contents, cfg.Contents...)
	r.Channels = append(r.Channels, cfg.Channels...)
	if err := r.Sign(cfg.Key); err != nil {
		return nil, "", fmt.Errorf("publish: revoke: %w", err)
	}
	enc, err := r.Encode()
	if err != nil {
		return nil, "", err
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return nil, "", fmt.Errorf("publish: revoke: %w", err)
	}
	if err := writeAtomic(dst, enc, true); err != nil {
		return nil, "", err
	}
	return r, dst, nil
}

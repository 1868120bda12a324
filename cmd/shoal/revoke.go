package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/shoal-cdn/shoal/core"
	"github.com/shoal-cdn/shoal/manifest"
	"github.com/shoal-cdn/shoal/publish"
)

func init() {
	register("revoke", "sign a revocation list (keys, contents, channels) into an origin layout", runRevoke)
}

func runRevoke(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("revoke", "--key KEYFILE --out DIR [--revoke-key PUBKEY]... [--content ID]... [--channel ID]...", stderr)
	key := fs.String("key", "", "publisher private key file (from shoal keygen) that signs the list; receivers must trust its public key")
	out := fs.String("out", "", "origin layout directory; the list is written to revocations/<public key> in it")
	keys := &keyList{}
	fs.Var(keys, "revoke-key", "publisher public key to revoke: everything it signed is refused and purged (comma-separated; repeatable)")
	var contents idList[core.ContentID]
	contents.parse = core.ParseContentID
	fs.Var(&contents, "content", "content ID to revoke (comma-separated; repeatable)")
	var channels idList[manifest.ChannelID]
	channels.parse = manifest.ParseChannelID
	fs.Var(&channels, "channel", "live channel ID to revoke (comma-separated; repeatable)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *key == "" || *out == "" || fs.NArg() != 0 {
		fs.Usage()
		return usagef("want --key and --out, no arguments")
	}
	priv, err := manifest.ReadKeyFile(*key)
	if err != nil {
		return err
	}
	r, path, err := publish.Revoke(publish.RevokeConfig{Key: priv, Out: *out, Keys: *keys, Contents: contents.ids, Channels: channels.ids})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: revocation list %d by %s: %d keys, %d contents, %d channels revoked\n",
		path, r.Seq, r.Publisher, len(r.Keys), len(r.Contents), len(r.Channels))
	return nil
}

// idList is a repeatable flag of comma-separated IDs.
type idList[T fmt.Stringer] struct {
	ids   []T
	parse func(string) (T, error)
}

func (l *idList[T]) String() string {
	if l == nil {
		return ""
	}
	parts := make([]string, len(l.ids))
	for i, id := range l.ids {
		parts[i] = id.String()
	}
	return strings.Join(parts, ",")
}

// Set adds the IDs of one comma-separated value.
func (l *idList[T]) Set(s string) error {
	for item := range strings.SplitSeq(s, ",") {
		if item = strings.TrimSpace(item); item == "" {
			continue
		}
		id, err := l.parse(item)
		if err != nil {
			return err
		}
		l.ids = append(l.ids, id)
	}
	return nil
}

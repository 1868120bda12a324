package publish

import (
	"crypto/ed25519"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/shoal-cdn/shoal/core"
	"github.com/shoal-cdn/shoal/layout"
	"github.com/shoal-cdn/shoal/manifest"
)

func TestRevokeAccumulates(t *testing.T) {
	dir := t.TempDir()
	key := ed25519.NewKeyFromSeed(make([]byte, 32))
	old := manifest.PublicOf(ed25519.NewKeyFromSeed(append(make([]byte, 31), 1)))
	x := core.ContentID(core.SumSHA256([]byte("x")))
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	if _, _, err := Revoke(RevokeConfig{Key: key, Out: dir, Contents: []core.ContentID{x}, Now: now}); err != nil {
		t.Fatal(err)
	}
	r, path, err := Revoke(RevokeConfig{Key: key, Out: dir, Keys: []manifest.PublicKey{old}, Now: now.Add(time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(dir, layout.RevocationPath(manifest.PublicOf(key).String())); path != want {
		t.Fatalf("written to %s, want %s", path, want)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	got, err := manifest.DecodeRevocation(b, manifest.PublicOf(key))
	if err != nil {
		t.Fatal(err)
	}
	if got.Seq != 2 || r.Seq != 2 || !got.RevokesContent(x) || !got.RevokesKey(old) {
		t.Fatalf("second list: seq %d, content %v, key %v; want seq 2 naming both", got.Seq, got.RevokesContent(x), got.RevokesKey(old))
	}
}

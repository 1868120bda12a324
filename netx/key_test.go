package netx

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestIdentityPersistsAcrossRestart(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	start := func() PeerID {
		h, err := NewLibp2pHost(t.Context(), Libp2pConfig{StateDir: dir, ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"}})
		if err != nil {
			t.Fatal(err)
		}
		defer h.Close()
		return h.ID()
	}
	first, second := start(), start()
	if first != second {
		t.Errorf("peer ID changed across restart: %s then %s", first, second)
	}
	path := filepath.Join(dir, KeyFileName)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if mode := fi.Mode().Perm(); mode != 0o600 {
		t.Errorf("key file mode %o, want 600", mode)
	}
	k, err := LoadOrCreateKey(path)
	if err != nil {
		t.Fatal(err)
	}
	if id, err := PeerIDFromKey(k); err != nil || id != first {
		t.Errorf("PeerIDFromKey = %s, %v; want %s", id, err, first)
	}
	if ephemeral := start2(t); ephemeral == first {
		t.Error("host without StateDir reused the persisted identity")
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("state dir holds %d entries, want only %s (temp file left behind?)", len(entries), KeyFileName)
	}
}

// start2 starts a host with an ephemeral identity and returns its ID.
func start2(t *testing.T) PeerID {
	h, err := NewLibp2pHost(t.Context(), Libp2pConfig{ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"}})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	return h.ID()
}

func TestCorruptKeyIsAnError(t *testing.T) {
	path := filepath.Join(t.TempDir(), KeyFileName)
	if err := os.WriteFile(path, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreateKey(path); !errors.Is(err, ErrBadKey) {
		t.Errorf("err = %v, want ErrBadKey", err)
	}
	// A corrupt key must not be silently replaced: that would change the ID.
	if data, _ := os.ReadFile(path); string(data) != "not a key" {
		t.Error("corrupt key file was overwritten")
	}
}

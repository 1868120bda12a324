package netx

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

// KeyFileName is the name of the identity key inside a host's state dir.
const KeyFileName = "peer.key"

// ErrBadKey means a key file exists but does not hold a usable private key.
var ErrBadKey = errors.New("bad peer key")

// LoadOrCreateKey returns the Ed25519 identity key stored at path, creating
// it (mode 0600, parent directories 0700) if the file does not exist. A
// peer keeps its ID across restarts so the swarm's bans, choking history and
// tracker records still apply to it.
func LoadOrCreateKey(path string) (crypto.PrivKey, error) {
	data, err := os.ReadFile(path)
	switch {
	case err == nil:
		k, err := crypto.UnmarshalPrivateKey(data)
		if err != nil {
			return nil, fmt.Errorf("load %s: %w: %w", path, ErrBadKey, err)
		}
		return k, nil
	case !errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("load peer key: %w", err)
	}

	k, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate peer key: %w", err)
	}
	data, err = crypto.MarshalPrivateKey(k)
	if err != nil {
		return nil, fmt.Errorf("encode peer key: %w", err)
	}
	if err := writeFileAtomic(path, data, 0o600); err != nil {
		return nil, fmt.Errorf("save peer key: %w", err)
	}
	return k, nil
}

// writeFileAtomic writes via a temporary file and a rename so a crash never
// leaves a truncated key that would silently change the peer's identity.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".tmp-"+filepath.Base(path)+"-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // no-op after a successful rename
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// PeerIDFromKey returns the PeerID a libp2p host with key k has.
func PeerIDFromKey(k crypto.PrivKey) (PeerID, error) {
	id, err := peer.IDFromPrivateKey(k)
	if err != nil {
		return "", fmt.Errorf("peer ID from key: %w: %w", ErrBadKey, err)
	}
	return PeerID(id.String()), nil
}

package agent

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/shoal-cdn/shoal/layout"
	"github.com/shoal-cdn/shoal/manifest"
)

// dirNames lists the names in dir.
func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, de := range des {
		names = append(names, de.Name())
	}
	return names
}

// TestGetResumesFromPartialOutput plants what a get killed mid-transfer
// leaves beside OUT (some chunks written, one torn, the rest zero) and
// checks that a rerun with an empty cache fetches only what is missing or
// wrong, writes the right bytes, and leaves nothing but OUT.
func TestGetResumesFromPartialOutput(t *testing.T) {
	const chunks, written = 20, 12
	fx := publishTree(t, "partial", 11, map[string]int{"big": chunks*testChunk - 100})
	want, err := os.ReadFile(filepath.Join(fx.src, "big"))
	if err != nil {
		t.Fatal(err)
	}
	var requests atomic.Int64
	counting := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/"+layout.ChunkDir) {
			requests.Add(1)
		}
		fx.srv.Handler().ServeHTTP(w, r)
	})
	hs := httptest.NewServer(counting)
	defer hs.Close()

	outDir := t.TempDir()
	out := filepath.Join(outDir, "big")
	partial := make([]byte, len(want))
	copy(partial, want[:written*testChunk])
	copy(partial[written*testChunk:], bytes.Repeat([]byte{0xee}, testChunk/2)) // torn
	if err := os.WriteFile(partialPath(out), partial, 0o600); err != nil {
		t.Fatal(err)
	}
	if got := filepath.Base(partialPath(out)); got != ".big.shoal-partial" {
		t.Fatalf("partial output named %q", got)
	}

	res, err := Get(context.Background(), GetConfig{Origin: hs.URL, Trust: manifest.NewKeySet(manifest.PublicOf(fx.key)), Target: fx.id.String(), Out: out, CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(out); !bytes.Equal(got, want) {
		t.Fatal("output differs from the source")
	}
	if n := requests.Load(); n != chunks-written {
		t.Errorf("rerun fetched %d chunks, want the %d not left verified by the killed run", n, chunks-written)
	}
	if res.FromCache != written*testChunk {
		t.Errorf("FromCache = %d, want %d", res.FromCache, written*testChunk)
	}
	if names := dirNames(t, outDir); !slices.Equal(names, []string{"big"}) {
		t.Errorf("beside OUT after the rerun: %v, want only big", names)
	}
}

// TestGetReplacesPartialDirectory: a directory get killed mid-transfer
// leaves a partial directory; the rerun must not carry its stale files into
// OUT, nor leave it behind.
func TestGetReplacesPartialDirectory(t *testing.T) {
	files := map[string]int{"a": 3*testChunk + 5, "d/b": testChunk}
	fx := publishTree(t, "pdir", 12, files)
	outDir := t.TempDir()
	out := filepath.Join(outDir, "tree")
	stale := filepath.Join(partialPath(out), "stale", "x")
	os.MkdirAll(filepath.Dir(stale), 0o755)
	os.WriteFile(stale, []byte("from a killed run"), 0o644)
	os.WriteFile(filepath.Join(partialPath(out), "a"), []byte("torn"), 0o644)

	if _, err := fx.get(t, fx.id.String(), out); err != nil {
		t.Fatal(err)
	}
	sameTree(t, fx.src, out)
	if names := dirNames(t, outDir); !slices.Equal(names, []string{"tree"}) {
		t.Errorf("beside OUT after the rerun: %v, want only tree", names)
	}
}

// TestPartialOutputLockedWhileWritten: two gets of one OUT at a time would
// write into each other's partial output; the second is refused with a line
// that says why, and may go ahead once the first has finished.
func TestPartialOutputLockedWhileWritten(t *testing.T) {
	for _, single := range []bool{true, false} {
		out := filepath.Join(t.TempDir(), "out")
		first, err := newOutput(out, single)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := newOutput(out, single); !errors.Is(err, ErrBadInput) || !strings.Contains(err.Error(), "being written by another shoal get") {
			t.Fatalf("single=%v: second output of one OUT: %v", single, err)
		}
		first.abort()
		if _, err := os.Lstat(partialPath(out)); !os.IsNotExist(err) {
			t.Fatalf("single=%v: abort left %s (%v)", single, partialPath(out), err)
		}
		second, err := newOutput(out, single)
		if err != nil {
			t.Fatalf("single=%v: after the first gave up: %v", single, err)
		}
		second.abort()
	}
}

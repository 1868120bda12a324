package swarm

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/shoal-cdn/shoal/core"
	"github.com/shoal-cdn/shoal/netx"
	"github.com/shoal-cdn/shoal/wire"
)

// metaBlob returns n bytes generated from (name, seed).
func metaBlob(name string, seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, uint64(len(name))))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// metaNodes starts two nodes on a fresh in-memory network: a server and a
// client. The hosts close when the test ends.
func metaNodes(t *testing.T) (server, client *Node) {
	t.Helper()
	net := netx.NewMemNetwork()
	for _, id := range []string{"meta-server", "meta-client"} {
		h, err := net.NewHost(netx.PeerID(id))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { h.Close() })
		n := NewNode(h, nil)
		if server == nil {
			server = n
		} else {
			client = n
		}
	}
	return server, client
}

// mapSource serves fixed bodies by (kind, key).
func mapSource(bodies map[wire.MetaRequest][]byte) MetaSource {
	return func(kind wire.MetaKind, key core.Hash) ([]byte, bool) {
		b, ok := bodies[wire.MetaRequest{Kind: kind, Key: key}]
		return b, ok
	}
}

func TestFetchMetaFound(t *testing.T) {
	manifest := metaBlob("manifest", 1, 700)
	layer := metaBlob("layer", 2, 32*300)
	id := core.SumSHA256(manifest)
	root := core.SumSHA256(metaBlob("root", 3, 32)) // any key: the codec does not check
	server, client := metaNodes(t)
	server.ServeMeta(mapSource(map[wire.MetaRequest][]byte{
		{Kind: wire.MetaManifest, Key: id}:    manifest,
		{Kind: wire.MetaHashLayer, Key: root}: layer,
	}))
	for _, tc := range []struct {
		kind wire.MetaKind
		key  core.Hash
		want []byte
	}{
		{wire.MetaManifest, id, manifest},
		{wire.MetaHashLayer, root, layer},
	} {
		got, err := client.FetchMeta(context.Background(), server.ID(), nil, tc.kind, tc.key, len(tc.want))
		if err != nil {
			t.Fatalf("%v: %v", tc.kind, err)
		}
		if !bytes.Equal(got, tc.want) {
			t.Fatalf("%v: got %d bytes that differ from the %d served", tc.kind, len(got), len(tc.want))
		}
	}
}

func TestFetchMetaNotFound(t *testing.T) {
	server, client := metaNodes(t)
	server.ServeMeta(mapSource(nil))
	id := core.SumSHA256([]byte("absent manifest"))
	_, err := client.FetchMeta(context.Background(), server.ID(), nil, wire.MetaManifest, id, 1<<20)
	if !errors.Is(err, ErrMetaNotFound) {
		t.Fatalf("err = %v, want ErrMetaNotFound", err)
	}
	for _, want := range []string{"manifest " + core.ContentID(id).Short(), server.ID().Short()} {
		if !strings.Contains(err.Error(), want) {
			t.Fatalf("error %q does not name %q", err, want)
		}
	}
	root := core.SumSHA256([]byte("absent layer"))
	_, err = client.FetchMeta(context.Background(), server.ID(), nil, wire.MetaHashLayer, root, 1<<20)
	if !errors.Is(err, ErrMetaNotFound) || !strings.Contains(err.Error(), "hash layer "+root.Short()) {
		t.Fatalf("err = %v, want ErrMetaNotFound naming the hash layer", err)
	}
}

func TestFetchMetaRefusesOversize(t *testing.T) {
	body := metaBlob("big", 4, 1000)
	key := core.SumSHA256(body)
	server, client := metaNodes(t)
	server.ServeMeta(mapSource(map[wire.MetaRequest][]byte{{Kind: wire.MetaManifest, Key: key}: body}))
	_, err := client.FetchMeta(context.Background(), server.ID(), nil, wire.MetaManifest, key, len(body)-1)
	if !errors.Is(err, wire.ErrFrameTooLarge) {
		t.Fatalf("err = %v, want wire.ErrFrameTooLarge", err)
	}
	// The refusal is per request: the same peer still serves within bounds.
	if got, err := client.FetchMeta(context.Background(), server.ID(), nil, wire.MetaManifest, key, len(body)); err != nil || !bytes.Equal(got, body) {
		t.Fatalf("at the limit: %d bytes, %v", len(got), err)
	}
}

func TestFetchMetaNoHandler(t *testing.T) {
	server, client := metaNodes(t) // server never calls ServeMeta
	_, err := client.FetchMeta(context.Background(), server.ID(), nil, wire.MetaManifest, core.Hash{1}, 100)
	if !errors.Is(err, netx.ErrNoProtocol) {
		t.Fatalf("err = %v, want netx.ErrNoProtocol", err)
	}
}

// blockingSource blocks every lookup until release is closed, telling
// entered about each.
func blockingSource(entered chan<- struct{}, release <-chan struct{}) MetaSource {
	return func(wire.MetaKind, core.Hash) ([]byte, bool) {
		entered <- struct{}{}
		<-release
		return []byte("late"), true
	}
}

func TestFetchMetaContextCancel(t *testing.T) {
	server, client := metaNodes(t)
	entered, release := make(chan struct{}, 1), make(chan struct{})
	defer close(release)
	server.ServeMeta(blockingSource(entered, release))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := client.FetchMeta(ctx, server.ID(), nil, wire.MetaManifest, core.Hash{2}, 100)
		done <- err
	}()
	<-entered
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

// TestFetchMetaSilentPeer guards against a peer that takes the request and
// never answers: the caller's deadline ends the fetch.
func TestFetchMetaSilentPeer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net := netx.NewMemNetwork()
		silent, err := net.NewHost("silent")
		if err != nil {
			t.Fatal(err)
		}
		defer silent.Close()
		quit := make(chan struct{})
		silent.SetStreamHandler(wire.MetaProtocolID, func(st netx.Stream) {
			io.Copy(io.Discard, st) // take the request, then say nothing
			<-quit
			st.Reset()
		})
		defer close(quit)
		h, err := net.NewHost("asker")
		if err != nil {
			t.Fatal(err)
		}
		defer h.Close()
		client := NewNode(h, nil)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		start := time.Now()
		_, err = client.FetchMeta(ctx, silent.ID(), nil, wire.MetaHashLayer, core.Hash{3}, 100)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v, want context.DeadlineExceeded", err)
		}
		if waited := time.Since(start); waited != 5*time.Second {
			t.Fatalf("gave up after %v, want the 5s deadline", waited)
		}
	})
}

// TestServeMetaResetsSilentClient guards the server against a peer that
// opens a meta stream and never sends its request.
func TestServeMetaResetsSilentClient(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net := netx.NewMemNetwork()
		sh, err := net.NewHost("server")
		if err != nil {
			t.Fatal(err)
		}
		defer sh.Close()
		NewNode(sh, nil).ServeMeta(mapSource(nil))
		ch, err := net.NewHost("mute")
		if err != nil {
			t.Fatal(err)
		}
		defer ch.Close()
		st, err := ch.NewStream(context.Background(), sh.ID(), nil, wire.MetaProtocolID)
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		_, err = st.Read(make([]byte, 1))
		if !errors.Is(err, netx.ErrStreamReset) {
			t.Fatalf("read = %v, want a reset", err)
		}
		if waited := time.Since(start); waited != metaServeTimeout {
			t.Fatalf("reset after %v, want %v", waited, metaServeTimeout)
		}
	})
}

func TestServeMetaResetsMalformedRequest(t *testing.T) {
	server, client := metaNodes(t)
	server.ServeMeta(mapSource(nil))
	st, err := client.Host().NewStream(context.Background(), server.ID(), nil, wire.MetaProtocolID)
	if err != nil {
		t.Fatal(err)
	}
	st.Write(append([]byte{9}, make([]byte, core.HashSize)...)) // kind 9 does not exist
	if _, err := wire.ReadMetaResponse(st, 100); !errors.Is(err, netx.ErrStreamReset) {
		t.Fatalf("err = %v, want a reset", err)
	}
}

// TestServeMetaBusyOverLimit guards the bound on concurrent meta streams:
// with every slot taken, the next request is answered busy at once.
func TestServeMetaBusyOverLimit(t *testing.T) {
	server, client := metaNodes(t)
	entered, release := make(chan struct{}), make(chan struct{})
	server.ServeMeta(blockingSource(entered, release))
	var wg sync.WaitGroup
	errs := make(chan error, MaxMetaStreams)
	for i := range MaxMetaStreams {
		wg.Go(func() {
			_, err := client.FetchMeta(context.Background(), server.ID(), nil, wire.MetaHashLayer, core.Hash{byte(i)}, 100)
			errs <- err
		})
	}
	for range MaxMetaStreams {
		<-entered
	}
	_, err := client.FetchMeta(context.Background(), server.ID(), nil, wire.MetaHashLayer, core.Hash{0xff}, 100)
	if !errors.Is(err, ErrMetaBusy) {
		t.Fatalf("request over the limit: err = %v, want ErrMetaBusy", err)
	}
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("request within the limit: %v", err)
		}
	}
	// The slots are free again: a new request reaches the source.
	done := make(chan error, 1)
	go func() {
		_, err := client.FetchMeta(context.Background(), server.ID(), nil, wire.MetaHashLayer, core.Hash{0xfe}, 100)
		done <- err
	}()
	<-entered
	if err := <-done; err != nil {
		t.Fatalf("after the burst: %v", err)
	}
}

package swarm

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/shoal-cdn/shoal/core"
	"github.com/shoal-cdn/shoal/netx"
	"github.com/shoal-cdn/shoal/wire"
)

// Bounds on serving the meta protocol (wire.MetaProtocolID).
const (
	// MaxMetaStreams is how many meta requests a node serves at once; more
	// are answered wire.MetaBusy. Each holds one body (a manifest or a hash
	// layer) while a peer reads it.
	MaxMetaStreams = 16
	// metaServeTimeout bounds one served meta stream from its first byte to
	// its last, so a peer that never sends its request, or reads the answer
	// slowly, holds a slot and a body for no longer than this.
	metaServeTimeout = 10 * time.Second
)

// Meta errors; FetchMeta wraps them with the peer and what was asked.
var (
	// ErrMetaNotFound: the peer does not have the manifest or hash layer.
	ErrMetaNotFound = errors.New("not found")
	// ErrMetaBusy: the peer is serving too many meta requests; ask later
	// or ask another peer.
	ErrMetaBusy = errors.New("peer busy")
	// ErrMetaRefused: the peer serves only holders of a valid access
	// token, and ours (if any) did not admit us.
	ErrMetaRefused = errors.New("refused: the peer serves only holders of a valid access token for it")
)

// MetaSource looks up what a meta request asks for: the signed manifest
// whose SHA-256 is key (wire.MetaManifest), the hash layer whose Merkle
// root is key (wire.MetaHashLayer), or the root page whose SHA-256 is key
// (wire.MetaRootPage). It returns false when it has none. It
// is called from stream handlers, concurrently, and must not block for long.
type MetaSource func(kind wire.MetaKind, key core.Hash) ([]byte, bool)

// ServeMeta answers other peers' meta requests from src, on streams of
// wire.MetaProtocolID: at most MaxMetaStreams at once (more are answered
// busy), each reset if it is not done within 10 s. Anyone may ask unless
// SetMetaAccess sets a gate: what is served is self-verifying and is checked
// by the asker. A later call
// replaces src (streams in flight finish with the old one); a nil src stops
// serving.
func (n *Node) ServeMeta(src MetaSource) {
	if src == nil {
		n.host.SetStreamHandler(wire.MetaProtocolID, nil)
		return
	}
	slots := make(chan struct{}, MaxMetaStreams)
	n.host.SetStreamHandler(wire.MetaProtocolID, func(st netx.Stream) { n.serveMeta(st, src, slots) })
}

// serveMeta answers one request on st, holding one of slots while it does.
func (n *Node) serveMeta(st netx.Stream, src MetaSource, slots chan struct{}) {
	// Streams need not support deadlines: a reset unblocks whatever read or
	// write is pending.
	t := time.AfterFunc(metaServeTimeout, func() { st.Reset() })
	defer t.Stop()
	peer := st.RemotePeer().Short()
	req, err := wire.ReadMetaRequest(st)
	if err != nil {
		n.log.Debug("meta request", "peer", peer, "err", err)
		st.Reset()
		return
	}
	if _, gate := n.metaAccess(); gate != nil {
		if err := gate(req, st.RemotePeer()); err != nil {
			n.log.Debug("meta request refused", "peer", peer, "asked", metaWhat(req.Kind, req.Key), "err", err)
			if wire.WriteMetaResponse(st, wire.MetaResponse{Status: wire.MetaRefused}) != nil {
				st.Reset()
				return
			}
			st.Close()
			return
		}
	}
	resp := wire.MetaResponse{Status: wire.MetaBusy}
	select {
	case slots <- struct{}{}:
		defer func() { <-slots }()
		if body, ok := src(req.Kind, req.Key); ok {
			resp = wire.MetaResponse{Status: wire.MetaOK, Body: body}
		} else {
			resp.Status = wire.MetaNotFound
		}
	default:
	}
	if err := wire.WriteMetaResponse(st, resp); err != nil {
		n.log.Debug("meta response", "peer", peer, "asked", metaWhat(req.Kind, req.Key), "err", err)
		st.Reset()
		return
	}
	st.Close()
}

// FetchMeta asks peer for a manifest (kind wire.MetaManifest, key the
// content ID's bytes), a hash layer (wire.MetaHashLayer, key its Merkle
// root) or a root page (wire.MetaRootPage, key its SHA-256), dialing addrs if not yet connected, and returns the body. A body
// longer than maxSize is refused (wire.ErrFrameTooLarge) before it is read.
// The body is unverified: the caller checks it against key. When ctx ends
// the stream is reset and the error matches ctx.Err(). Errors name the peer
// and what was asked, and match ErrMetaNotFound, ErrMetaBusy, ErrMetaRefused, the netx and
// wire sentinels, or ctx.Err().
func (n *Node) FetchMeta(ctx context.Context, peer netx.PeerID, addrs []string, kind wire.MetaKind, key core.Hash, maxSize int) ([]byte, error) {
	// fail wraps a transport or decoding error, and ctx's error when the
	// failure is the reset that ctx's end caused.
	fail := func(err error) error {
		if ctx.Err() != nil && !errors.Is(err, ctx.Err()) {
			err = fmt.Errorf("%w (%w)", ctx.Err(), err)
		}
		return fmt.Errorf("%s from peer %s: %w", metaWhat(kind, key), peer.Short(), err)
	}
	st, err := n.host.NewStream(ctx, peer, addrs, wire.MetaProtocolID)
	if err != nil {
		return nil, fail(err)
	}
	stop := context.AfterFunc(ctx, func() { st.Reset() })
	defer stop()
	req := wire.MetaRequest{Kind: kind, Key: key}
	if tok, _ := n.metaAccess(); tok != nil {
		req.Token = tok()
	}
	if err := wire.WriteMetaRequest(st, req); err != nil {
		st.Reset()
		return nil, fail(err)
	}
	// Our side is done; a server that reads to EOF sees it at once.
	st.CloseWrite()
	resp, err := wire.ReadMetaResponse(st, maxSize)
	if err != nil {
		st.Reset()
		return nil, fail(err)
	}
	st.Close()
	switch resp.Status {
	case wire.MetaOK:
		return resp.Body, nil
	case wire.MetaNotFound:
		err = ErrMetaNotFound
	case wire.MetaRefused:
		err = ErrMetaRefused
	default:
		err = ErrMetaBusy
	}
	return nil, fmt.Errorf("%s from peer %s: %w", metaWhat(kind, key), peer.Short(), err)
}

// metaWhat names a meta request for errors and logs: a manifest by its
// content ID's printed form, a hash layer by its root's hex.
func metaWhat(kind wire.MetaKind, key core.Hash) string {
	if kind == wire.MetaManifest {
		return fmt.Sprintf("manifest %s", core.ContentID(key).Short())
	}
	return fmt.Sprintf("%v %s", kind, key.Short())
}

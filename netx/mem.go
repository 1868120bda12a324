package netx

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
	"sync"
)

// MemBufferSize is how many unread bytes each direction of an in-memory
// stream holds before Write blocks: about one TCP window on a fast LAN, so a
// few pipelined 256 KiB chunks can be in flight as they would on a real link.
const MemBufferSize = 512 << 10

// ErrPeerIDInUse is returned by MemNetwork.NewHost for an ID already taken by
// an open host.
var ErrPeerIDInUse = errors.New("peer ID in use")

// MemNetwork connects in-process hosts directly, with no sockets, ports or
// goroutines of its own, so a test can run dozens of peers in one process
// (also inside a testing/synctest bubble). The zero value is not usable; call
// NewMemNetwork.
type MemNetwork struct {
	mu    sync.Mutex // guards hosts and next
	hosts map[PeerID]*memHost
	next  int // for automatic IDs
}

// NewMemNetwork returns an empty in-memory network.
func NewMemNetwork() *MemNetwork {
	return &MemNetwork{hosts: make(map[PeerID]*memHost)}
}

// NewHost adds a host to the network. An empty id picks a fresh one
// ("mem-1", "mem-2", …). An ID becomes free again when its host is closed, so
// a test can restart a peer under the same name.
func (n *MemNetwork) NewHost(id PeerID) (Host, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if id == "" {
		for {
			n.next++
			id = PeerID("mem-" + strconv.Itoa(n.next))
			if _, taken := n.hosts[id]; !taken {
				break
			}
		}
	}
	if _, taken := n.hosts[id]; taken {
		return nil, fmt.Errorf("new memory host %s: %w", id, ErrPeerIDInUse)
	}
	h := &memHost{
		net:      n,
		id:       id,
		handlers: make(map[string]func(Stream)),
		streams:  make(map[*memStream]struct{}),
	}
	n.hosts[id] = h
	return h, nil
}

// Disconnect resets every stream between a and b, as a dropped connection
// would. New streams between them may be opened afterwards.
func (n *MemNetwork) Disconnect(a, b PeerID) {
	for _, pair := range [][2]PeerID{{a, b}, {b, a}} {
		if h := n.lookup(pair[0]); h != nil {
			h.resetWhere(func(s *memStream) bool { return s.remote == pair[1] },
				fmt.Errorf("%s disconnected from %s: %w", pair[0], pair[1], ErrStreamReset))
		}
	}
}

func (n *MemNetwork) lookup(id PeerID) *memHost {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.hosts[id]
}

func (n *MemNetwork) remove(h *memHost) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.hosts[h.id] == h {
		delete(n.hosts, h.id)
	}
}

// memHost is one host of a MemNetwork.
type memHost struct {
	net *MemNetwork
	id  PeerID

	mu       sync.Mutex // guards handlers, streams and closed
	handlers map[string]func(Stream)
	streams  map[*memStream]struct{} // our ends that are not yet closed or reset
	closed   bool
}

var _ Host = (*memHost)(nil)

func (h *memHost) ID() PeerID { return h.id }

// Addrs returns a pseudo-address; a MemNetwork routes by ID alone.
// Addrs returns a valid multiaddr (libp2p's /memory/<uint64>) derived from the
// ID, so trackers accept announces from in-memory peers; dialing in a
// MemNetwork goes by ID and ignores it.
func (h *memHost) Addrs() []string {
	sum := fnv.New64a()
	sum.Write([]byte(h.id))
	return []string{"/memory/" + strconv.FormatUint(sum.Sum64(), 10)}
}

func (h *memHost) SetStreamHandler(proto string, fn func(Stream)) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if fn == nil {
		delete(h.handlers, proto)
		return
	}
	h.handlers[proto] = fn
}

func (h *memHost) NewStream(ctx context.Context, p PeerID, _ []string, proto string) (Stream, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("stream %s to %s: %w", proto, p.Short(), err)
	}
	remote := h.net.lookup(p)
	if remote == nil {
		return nil, fmt.Errorf("stream %s to %s: %w", proto, p.Short(), ErrUnknownPeer)
	}
	// a→b carries what we write, b→a what the remote writes.
	ab, ba := newPipe(MemBufferSize), newPipe(MemBufferSize)
	local := &memStream{host: h, remote: p, in: ba, out: ab}
	far := &memStream{host: remote, remote: h.id, in: ab, out: ba}

	handler, err := remote.accept(far, proto)
	if err != nil {
		return nil, fmt.Errorf("stream %s to %s: %w", proto, p.Short(), err)
	}
	if !h.track(local) {
		far.resetWith(fmt.Errorf("%s closed: %w", h.id.Short(), ErrStreamReset))
		return nil, fmt.Errorf("stream %s from %s: %w", proto, h.id.Short(), ErrHostClosed)
	}
	go handler(far)
	return local, nil
}

// accept registers an inbound stream and returns the handler to run it.
func (h *memHost) accept(s *memStream, proto string) (func(Stream), error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, ErrHostClosed
	}
	fn := h.handlers[proto]
	if fn == nil {
		return nil, ErrNoProtocol
	}
	h.streams[s] = struct{}{}
	return fn, nil
}

// track registers an outbound stream; false if the host is closed.
func (h *memHost) track(s *memStream) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return false
	}
	h.streams[s] = struct{}{}
	return true
}

func (h *memHost) forget(s *memStream) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.streams, s)
}

// resetWhere resets (and forgets) our streams that match.
func (h *memHost) resetWhere(match func(*memStream) bool, err error) {
	h.mu.Lock()
	var victims []*memStream
	for s := range h.streams {
		if match(s) {
			victims = append(victims, s)
			delete(h.streams, s)
		}
	}
	h.mu.Unlock()
	for _, s := range victims {
		s.resetWith(err)
	}
}

func (h *memHost) Close() error {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil
	}
	h.closed = true
	h.handlers = nil
	h.mu.Unlock()
	h.net.remove(h)
	h.resetWhere(func(*memStream) bool { return true },
		fmt.Errorf("%s closed: %w", h.id.Short(), ErrStreamReset))
	return nil
}

// memStream is one end of an in-memory stream.
type memStream struct {
	host   *memHost
	remote PeerID
	in     *pipe // what the remote writes to us
	out    *pipe // what we write to the remote
}

var _ Stream = (*memStream)(nil)

func (s *memStream) Read(b []byte) (int, error)  { return s.in.read(b) }
func (s *memStream) Write(b []byte) (int, error) { return s.out.write(b) }
func (s *memStream) RemotePeer() PeerID          { return s.remote }

func (s *memStream) CloseWrite() error {
	s.out.closeWrite()
	return nil
}

func (s *memStream) Close() error {
	s.out.closeWrite()
	s.in.closeRead()
	s.host.forget(s)
	return nil
}

func (s *memStream) Reset() error {
	s.resetWith(fmt.Errorf("%s reset stream: %w", s.host.id.Short(), ErrStreamReset))
	return nil
}

// resetWith fails both directions for both ends; the remote end stays in its
// host's table until its owner closes it, as a libp2p stream would.
func (s *memStream) resetWith(err error) {
	s.in.reset(err)
	s.out.reset(err)
	s.host.forget(s)
}

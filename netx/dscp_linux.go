package netx

import (
	"context"
	"errors"
	"net"
	"os"
	"strconv"
	"sync/atomic"
	"syscall"
	"unsafe"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/p2p/transport/quicreuse"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/quic-go/quic-go"
	"go.uber.org/fx"
	"golang.org/x/net/ipv4"
	"golang.org/x/sys/unix"
)

// How the mark gets on every P2P socket, with the hooks go-libp2p offers:
//   - QUIC: one UDP socket per listen address carries both directions; its
//     constructor (quicreuse.OverrideListenUDP) sets IP_TOS/IPV6_TCLASS, and
//     a wrapper keeps the DSCP bits in the per-packet TOS that QUIC's ECN
//     marking sends (which would otherwise replace them).
//   - TCP dials: our own dialer (tcp.WithDialerForAddr) sets the mark and,
//     like libp2p's, reuses the listen port so hole punching still works.
//   - TCP accepts: accepted sockets inherit the listening socket's TOS, and
//     no hook reaches the listener, so markListeners sets it on the
//     process's listening TCP sockets on the host's ports once it listens.
//     Connections accepted before that (the first instant) go unmarked.

// setTOS marks the socket fd for both IP versions (one of them fails on a
// socket of the other family; only both failing is an error).
func setTOS(fd int, d DSCP) error {
	e4 := unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_TOS, d.tos())
	e6 := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_TCLASS, d.tos())
	if e4 != nil && e6 != nil {
		return e4
	}
	return nil
}

func controlTOS(d DSCP, reuse bool) func(network, address string, c syscall.RawConn) error {
	return func(_, _ string, c syscall.RawConn) error {
		var err error
		cerr := c.Control(func(fd uintptr) {
			if err = setTOS(int(fd), d); err == nil && reuse {
				if err = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err == nil {
					err = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
				}
			}
		})
		return errors.Join(cerr, err)
	}
}

// dscpOptions are the libp2p options that mark h's sockets with d; h is
// set once the host exists (dials before that do not reuse a port).
func dscpOptions(d DSCP, h *atomic.Pointer[libp2pHost]) []libp2p.Option {
	dial := &tcpDialer{d: d, port: func(netw string) int {
		lh := h.Load()
		if lh == nil {
			return 0
		}
		return listenPort(lh.h.Network().ListenAddresses(), netw)
	}}
	return []libp2p.Option{
		libp2p.Transport(tcp.NewTCPTransport, tcp.WithDialerForAddr(func(ma.Multiaddr) (tcp.ContextDialer, error) { return dial, nil })),
		libp2p.QUICReuse(func(key quic.StatelessResetKey, tok quic.TokenGeneratorKey, rcmgr network.ResourceManager, lc fx.Lifecycle) (*quicreuse.ConnManager, error) {
			// libp2p's own constructor's options, plus the marked socket.
			cm, err := quicreuse.NewConnManager(key, tok,
				quicreuse.ConnContext(func(ctx context.Context, ci *quic.ClientInfo) (context.Context, error) {
					addr, err := quicreuse.ToQuicMultiaddr(ci.RemoteAddr, quic.Version1)
					if err != nil {
						addr = nil
					}
					scope, err := rcmgr.OpenConnection(network.DirInbound, false, addr)
					if err != nil {
						return ctx, err
					}
					ctx = network.WithConnManagementScope(ctx, scope)
					context.AfterFunc(ctx, scope.Done)
					return ctx, nil
				}),
				quicreuse.VerifySourceAddress(rcmgr.VerifySourceAddress),
				quicreuse.OverrideListenUDP(func(netw string, laddr *net.UDPAddr) (net.PacketConn, error) {
					return listenMarkedUDP(netw, laddr, d)
				}),
			)
			if err != nil {
				return nil, err
			}
			lc.Append(fx.StopHook(cm.Close))
			return cm, nil
		}),
	}
}

// listenPort is the TCP port h listens on for netw ("tcp4", "tcp6"); 0 if
// none.
func listenPort(addrs []ma.Multiaddr, netw string) int {
	want := ma.P_IP4
	if netw == "tcp6" {
		want = ma.P_IP6
	}
	for _, a := range addrs {
		if _, err := a.ValueForProtocol(want); err != nil {
			continue
		}
		if p, err := a.ValueForProtocol(ma.P_TCP); err == nil {
			if n, err := strconv.Atoi(p); err == nil {
				return n
			}
		}
	}
	return 0
}

// tcpDialer dials marked TCP connections from the host's listen port (so
// a hole punch's simultaneous open works), or from any port when that
// port cannot be bound.
type tcpDialer struct {
	d    DSCP
	port func(network string) int
}

func (t *tcpDialer) DialContext(ctx context.Context, netw, address string) (net.Conn, error) {
	if p := t.port(netw); p > 0 {
		d := net.Dialer{Control: controlTOS(t.d, true), LocalAddr: &net.TCPAddr{Port: p}}
		c, err := d.DialContext(ctx, netw, address)
		if err == nil || !(errors.Is(err, syscall.EADDRINUSE) || errors.Is(err, syscall.EADDRNOTAVAIL)) {
			return c, err
		}
	}
	d := net.Dialer{Control: controlTOS(t.d, false)}
	return d.DialContext(ctx, netw, address)
}

// listenMarkedUDP is QUIC's socket, marked.
func listenMarkedUDP(netw string, laddr *net.UDPAddr, d DSCP) (net.PacketConn, error) {
	lc := net.ListenConfig{Control: controlTOS(d, false)}
	pc, err := lc.ListenPacket(context.Background(), netw, laddr.String())
	if err != nil {
		return nil, err
	}
	c := pc.(*net.UDPConn)
	return &markedUDP{UDPConn: c, batch: ipv4.NewPacketConn(c), tos: byte(d.tos())}, nil
}

// markedUDP is a UDP socket whose per-packet TOS (which QUIC sets to send
// ECN bits) keeps the DSCP bits of the socket's mark.
type markedUDP struct {
	*net.UDPConn
	batch *ipv4.PacketConn // QUIC reads in batches through it
	tos   byte
}

// ReadBatch lets QUIC read several packets per system call, as it does
// from a plain UDP socket.
func (c *markedUDP) ReadBatch(ms []ipv4.Message, flags int) (int, error) {
	return c.batch.ReadBatch(ms, flags)
}

// WriteMsgUDP adds the DSCP bits to a TOS / traffic class control message.
func (c *markedUDP) WriteMsgUDP(b, oob []byte, addr *net.UDPAddr) (int, int, error) {
	if len(oob) > 0 {
		oob = c.withDSCP(oob)
	}
	return c.UDPConn.WriteMsgUDP(b, oob, addr)
}

func (c *markedUDP) withDSCP(oob []byte) []byte {
	var out []byte
	for off := 0; off+unix.SizeofCmsghdr <= len(oob); {
		h := (*unix.Cmsghdr)(unsafe.Pointer(&oob[off]))
		if int(h.Len) < unix.CmsgLen(0) || off+int(h.Len) > len(oob) {
			return oob
		}
		data := off + unix.CmsgLen(0)
		tos := (h.Level == unix.IPPROTO_IP && h.Type == unix.IP_TOS) || (h.Level == unix.IPPROTO_IPV6 && h.Type == unix.IPV6_TCLASS)
		if tos && int(h.Len) > unix.CmsgLen(0) {
			if out == nil {
				out = append([]byte(nil), oob...) // the caller may reuse oob
			}
			// The TOS byte (IPv4) or the low byte of a native-endian
			// int32 (IPv6, on the little-endian machines this runs on;
			// on big-endian ones the last byte).
			i := data
			if h.Type == unix.IPV6_TCLASS && !littleEndian() {
				i = data + 3
			}
			out[i] = c.tos | out[i]&0x3
		}
		off += unix.CmsgSpace(int(h.Len) - unix.CmsgLen(0))
	}
	if out == nil {
		return oob
	}
	return out
}

func littleEndian() bool {
	x := uint16(1)
	return *(*byte)(unsafe.Pointer(&x)) == 1
}

// markListeners marks the process's listening TCP sockets on the ports of
// addrs, so the connections they accept are marked too.
func markListeners(d DSCP, addrs []ma.Multiaddr) error {
	ports := map[int]bool{}
	for _, a := range addrs {
		if p, err := a.ValueForProtocol(ma.P_TCP); err == nil {
			if n, err := strconv.Atoi(p); err == nil {
				ports[n] = true
			}
		}
	}
	if len(ports) == 0 {
		return nil
	}
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range ents {
		fd, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if typ, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE); err != nil || typ != unix.SOCK_STREAM {
			continue
		}
		if acc, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ACCEPTCONN); err != nil || acc != 1 {
			continue
		}
		sa, err := unix.Getsockname(fd)
		if err != nil {
			continue
		}
		port := 0
		switch a := sa.(type) {
		case *unix.SockaddrInet4:
			port = a.Port
		case *unix.SockaddrInet6:
			port = a.Port
		}
		if ports[port] {
			errs = append(errs, setTOS(fd, d))
		}
	}
	return errors.Join(errs...)
}

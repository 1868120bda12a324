package netx

import (
	"context"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	"golang.org/x/sys/unix"
)

func TestParseDSCP(t *testing.T) {
	for in, want := range map[string]DSCP{"off": DSCPOff, "le": 1, "cs0": 0, "CS1": 8, "cs7": 56, "af11": 10, "af43": 38, "ef": 46, "0": 0, "63": 63} {
		got, err := ParseDSCP(in)
		if err != nil || got != want {
			t.Errorf("ParseDSCP(%q) = %v, %v; want %d", in, got, err, want)
		}
		if again, err := ParseDSCP(got.String()); err != nil || again != got {
			t.Errorf("ParseDSCP(%q.String() = %q) = %v, %v", in, got.String(), again, err)
		}
	}
	for _, bad := range []string{"", "cs8", "af44", "af10", "64", "-1", "lowest"} {
		if _, err := ParseDSCP(bad); err == nil {
			t.Errorf("ParseDSCP(%q) accepted", bad)
		}
	}
}

// socketTOS returns the IP_TOS of this process's TCP sockets that match.
func socketTOS(t *testing.T, match func(local, remote int, listening bool) bool) []int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	port := func(sa unix.Sockaddr) int {
		if a, ok := sa.(*unix.SockaddrInet4); ok {
			return a.Port
		}
		return -1
	}
	var out []int
	for _, e := range ents {
		fd, _ := strconv.Atoi(e.Name())
		if typ, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE); err != nil || typ != unix.SOCK_STREAM {
			continue
		}
		la, err := unix.Getsockname(fd)
		if err != nil {
			continue
		}
		ra, _ := unix.Getpeername(fd)
		acc, _ := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ACCEPTCONN)
		rp := -1
		if ra != nil {
			rp = port(ra)
		}
		if match(port(la), rp, acc == 1) {
			tos, err := unix.GetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_TOS)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, tos)
		}
	}
	return out
}

func tcpPort(t *testing.T, h Host) int {
	t.Helper()
	for _, a := range h.Addrs() {
		if i := strings.Index(a, "/tcp/"); i >= 0 {
			p, _ := strconv.Atoi(a[i+5:])
			return p
		}
	}
	t.Fatalf("%s listens on no TCP port: %v", h.ID().Short(), h.Addrs())
	return 0
}

// TestDSCPMarksP2PSockets reads the mark back: the TCP listener, a TCP
// connection it accepted and one the host dialled carry CS1 in IP_TOS (an
// unmarked host's do not), and a QUIC packet the host sends arrives with
// DSCP CS1 in its TOS byte.
func TestDSCPMarksP2PSockets(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	loop := []string{"/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1"}
	a, err := NewLibp2pHost(ctx, Libp2pConfig{ListenAddrs: loop, DSCP: DSCPCS1})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := NewLibp2pHost(ctx, Libp2pConfig{ListenAddrs: loop})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	const cs1 = 8 << 2
	ap := tcpPort(t, a)
	lb, _ := Libp2p(b)
	la, _ := Libp2p(a)
	tcpOf := func(h Host) peer.AddrInfo {
		lh, _ := Libp2p(h)
		info := peer.AddrInfo{ID: lh.ID()}
		for _, s := range h.Addrs() {
			if strings.Contains(s, "/tcp/") {
				info.Addrs = append(info.Addrs, ma.StringCast(s))
			}
		}
		return info
	}
	if err := lb.Connect(ctx, tcpOf(a)); err != nil { // b dials, a accepts
		t.Fatal(err)
	}
	for _, tos := range socketTOS(t, func(l, r int, listening bool) bool { return l == ap && (listening || r > 0) }) {
		if tos&0xfc != cs1 {
			t.Errorf("a's listener or accepted TCP socket has TOS %#x, want %#x", tos, cs1)
		}
	}
	if got := socketTOS(t, func(l, r int, _ bool) bool { return r == ap }); len(got) != 1 || got[0] != 0 {
		t.Errorf("unmarked b's dialled socket TOS = %v, want [0]", got)
	}
	// Now a dials: a third, unmarked host c that a has never been
	// connected to (a fresh 4-tuple; redialling b could meet the old
	// connection's TIME_WAIT or b's own redial).
	c, err := NewLibp2pHost(ctx, Libp2pConfig{ListenAddrs: loop})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cp := tcpPort(t, c)
	if err := la.Connect(ctx, tcpOf(c)); err != nil {
		t.Fatal(err)
	}
	dialled := socketTOS(t, func(l, r int, _ bool) bool { return r == cp })
	if len(dialled) == 0 {
		t.Fatal("a's dialled TCP socket not found")
	}
	for _, tos := range dialled {
		if tos&0xfc != cs1 {
			t.Errorf("a's dialled TCP socket has TOS %#x, want %#x", tos, cs1)
		}
	}

	// QUIC: a dials a plain UDP socket that reports each packet's TOS.
	u, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(u)
	if err := unix.SetsockoptInt(u, unix.IPPROTO_IP, unix.IP_RECVTOS, 1); err != nil {
		t.Fatal(err)
	}
	if err := unix.Bind(u, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := unix.SetsockoptTimeval(u, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Sec: 20}); err != nil {
		t.Fatal(err)
	}
	sa, _ := unix.Getsockname(u)
	k, _, _ := crypto.GenerateEd25519Key(nil)
	fake, _ := peer.IDFromPrivateKey(k)
	dctx, dcancel := context.WithTimeout(ctx, 20*time.Second)
	defer dcancel()
	go la.Connect(dctx, peer.AddrInfo{ID: fake, Addrs: []ma.Multiaddr{ma.StringCast("/ip4/127.0.0.1/udp/" + strconv.Itoa(sa.(*unix.SockaddrInet4).Port) + "/quic-v1")}})
	buf, oob := make([]byte, 2048), make([]byte, 128)
	_, oobn, _, _, err := unix.Recvmsg(u, buf, oob, 0)
	if err != nil {
		t.Fatalf("no QUIC packet from a: %v", err)
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, m := range msgs {
		if m.Header.Level == unix.IPPROTO_IP && m.Header.Type == unix.IP_TOS && len(m.Data) > 0 {
			found = true
			if m.Data[0]&0xfc != cs1 {
				t.Errorf("QUIC packet TOS %#x, want DSCP bits %#x", m.Data[0], cs1)
			}
		}
	}
	if !found {
		t.Error("the QUIC packet came without its TOS")
	}
}

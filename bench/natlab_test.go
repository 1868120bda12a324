//go:build linux && natlab

package bench

import (
	"context"
	"errors"
	"net"
	"os"
	"strconv"
	"testing"
	"time"
)

// labNeedsRoot fails (never skips) a lab test run without root.
func labNeedsRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("the NAT lab needs root (network namespaces, nftables); CI runs as root")
	}
}

// udpIn opens a UDP socket bound to addr inside namespace ns.
func udpIn(t *testing.T, ns, addr string) *net.UDPConn {
	t.Helper()
	var c *net.UDPConn
	err := inNetns(ns, func() error {
		la, err := net.ResolveUDPAddr("udp4", addr)
		if err != nil {
			return err
		}
		c, err = net.ListenUDP("udp4", la)
		return err
	})
	if err != nil {
		t.Fatalf("UDP socket on %s in %s: %v", addr, ns, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// recvFrom waits up to wait for one datagram; ok is false if none came.
func recvFrom(c *net.UDPConn, wait time.Duration) (from *net.UDPAddr, ok bool) {
	buf := make([]byte, 64)
	c.SetReadDeadline(time.Now().Add(wait))
	_, from, err := c.ReadFromUDP(buf)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return nil, false
	}
	return from, err == nil
}

// TestNATLabKinds checks each router kind does what its name says, with UDP
// probes from the host's lab port to two public observers and from a
// stranger that never heard from the host:
//   - open and full cone: one mapping for both observers (the host's own
//     port), and the stranger gets through;
//   - symmetric: a different mapped port per observer, the stranger is
//     dropped;
//   - firewalled: one mapping, an observer's reply gets in, the stranger is
//     dropped.
func TestNATLabKinds(t *testing.T) {
	labNeedsRoot(t)
	kinds := []NATKind{NATOpen, NATFullCone, NATSymmetric, NATFirewalled}
	lab, err := newNATLab(context.Background(), kinds, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer lab.close()
	obsA := udpIn(t, lab.pub, labPubAddr+":9001")
	obsB := udpIn(t, lab.pub, labPubAddr+":9002")
	stranger := udpIn(t, lab.pub, labPubAddr+":9003")
	const wait = 2 * time.Second // an absent packet can only be waited for
	for _, h := range lab.hosts {
		t.Run(string(h.Kind), func(t *testing.T) {
			c := udpIn(t, h.NS, h.Addr+":"+strconv.Itoa(labPort))
			for _, o := range []*net.UDPConn{obsA, obsB} {
				if _, err := c.WriteToUDP([]byte("probe"), o.LocalAddr().(*net.UDPAddr)); err != nil {
					t.Fatal(err)
				}
			}
			fromA, okA := recvFrom(obsA, wait)
			fromB, okB := recvFrom(obsB, wait)
			if !okA || !okB {
				t.Fatalf("observers got the probes: %v %v, want both", okA, okB)
			}
			if fromA.IP.String() != h.WAN || fromB.IP.String() != h.WAN {
				t.Fatalf("observers saw %v and %v, want the WAN address %s", fromA, fromB, h.WAN)
			}
			sameMapping := fromA.Port == fromB.Port
			if want := h.Kind != NATSymmetric; sameMapping != want {
				t.Fatalf("mapped ports %d and %d: endpoint-independent = %v, want %v", fromA.Port, fromB.Port, sameMapping, want)
			}
			if h.Kind != NATSymmetric && fromA.Port != labPort {
				t.Fatalf("mapped port %d, want the host's own %d", fromA.Port, labPort)
			}
			// The observer answers: a reply to a mapping always gets in.
			if _, err := obsA.WriteToUDP([]byte("reply"), fromA); err != nil {
				t.Fatal(err)
			}
			if _, ok := recvFrom(c, wait); !ok {
				t.Fatal("the observer's reply did not reach the host")
			}
			// A stranger sends to the mapping it never was given.
			if _, err := stranger.WriteToUDP([]byte("hello"), fromA); err != nil {
				t.Fatal(err)
			}
			_, got := recvFrom(c, wait)
			if want := h.Kind == NATOpen || h.Kind == NATFullCone; got != want {
				t.Fatalf("unsolicited packet from a stranger arrived = %v, want %v", got, want)
			}
		})
	}
}

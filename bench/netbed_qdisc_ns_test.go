//go:build netbed

package bench

import (
	"context"
	"io"
	"net"
	"os"
	"testing"
)

// sendIn sends n bytes over TCP from namespace ns to addr and returns once
// the receiver has read them all.
func sendIn(t *testing.T, ns, addr string, n int64, read <-chan int64) {
	t.Helper()
	var c net.Conn
	if err := inNetns(ns, func() (err error) {
		c, err = net.Dial("tcp", addr)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := io.CopyN(c, zeros{}, n); err != nil {
		t.Fatal(err)
	}
	c.Close()
	if got := <-read; got != n {
		t.Fatalf("%s sent %d bytes to %s, %d arrived", ns, n, addr, got)
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// TestNetbedQdiscSample checks the progress lines' counters, read over
// netlink, are the ones tc reads for the run's figures: the shaped uploads
// of the origin and receivers, and (several devices in one dump) the
// receivers' downloads on the hub.
func TestNetbedQdiscSample(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("the netbed needs root (network namespaces, tc); CI runs as root")
	}
	nb, err := newNetbedNet(context.Background(), 2, 100e6/8, 0, 20e6/8, 100e6/8)
	if err != nil {
		t.Fatal(err)
	}
	defer nb.close()

	addr := net.JoinHostPort(nb.recvAddr[1], "9000")
	var ln net.Listener
	if err := inNetns(nb.recv[1], func() (err error) {
		ln, err = net.Listen("tcp", addr)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	read := make(chan int64)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			n, _ := io.Copy(io.Discard, c)
			c.Close()
			read <- n
		}
	}()
	const peerBytes, originBytes = 1 << 20, 256 << 10
	sendIn(t, nb.recv[0], addr, peerBytes, read)
	sendIn(t, nb.origin, addr, originBytes, read)

	// Stray packets (IPv6 neighbour discovery) may be sent between two
	// reads: the netlink read must fall between tc's before and after.
	w0, err := nb.wireCounters()
	if err != nil {
		t.Fatal(err)
	}
	origin, peers, err := nb.uploads()
	if err != nil {
		t.Fatal(err)
	}
	down, err := rootQdiscBytes(nb.hub, "v0", "v1")
	if err != nil {
		t.Fatal(err)
	}
	w1, err := nb.wireCounters()
	if err != nil {
		t.Fatal(err)
	}
	between := func(what string, got, lo, hi int64) {
		t.Helper()
		if got < lo || got > hi {
			t.Errorf("%s: netlink read %d bytes, tc %d before and %d after", what, got, lo, hi)
		}
	}
	between("origin up", origin, w0.OriginUp, w1.OriginUp)
	for i := range peers {
		between("receiver up", peers[i], w0.PeerUp[i], w1.PeerUp[i])
		between("receiver down", down[i], w0.PeerDown[i], w1.PeerDown[i])
	}
	if origin < originBytes || peers[0] < peerBytes || down[1] < peerBytes+originBytes {
		t.Fatalf("netlink read origin up %d, receivers up %v, down %v: less than was sent", origin, peers, down)
	}
	if _, err := rootQdiscBytes(nb.hub, "v0", "nosuchdev"); err == nil {
		t.Fatal("a device that does not exist was read")
	}
}

//go:build linux && natlab

package bench

import (
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// countFrom installs, in namespace ns, an nftables counter of the packets
// arriving from any of addrs.
func countFrom(t *testing.T, ns string, addrs []string) {
	t.Helper()
	rules := fmt.Sprintf(`
table inet labcount {
	chain input { type filter hook input priority filter; ip saddr { %s } counter; }
}`, strings.Join(addrs, ", "))
	if err := nft(context.Background(), ns, rules); err != nil {
		t.Fatal(err)
	}
}

var counterRE = regexp.MustCompile(`counter packets (\d+) bytes (\d+)`)

// counted reads countFrom's counter in ns: packets.
func counted(t *testing.T, ns string) int64 {
	t.Helper()
	out, err := exec.Command("ip", "netns", "exec", ns, "nft", "list", "chain", "inet", "labcount", "input").CombinedOutput()
	if err != nil {
		t.Fatalf("nft list chain in %s: %v: %s", ns, err, out)
	}
	m := counterRE.FindSubmatch(out)
	if m == nil {
		t.Fatalf("no counter in %s's rules:\n%s", ns, out)
	}
	n, _ := strconv.ParseInt(string(m[1]), 10, 64)
	return n
}

// TestNATPrivate is relay-only mode in the lab: a --private peer and a
// control peer (both open, on the public segment), with two more peers (one
// behind a full-cone NAT, one firewalled), all fetch a content. nftables
// counters in the private and control peers' namespaces count packets from
// any other peer's address (not the relay's, tracker's or origin's). The
// private peer completes with its counter at 0, announcing and connected
// only through the relay, while the control peer's counter is above 0.
func TestNATPrivate(t *testing.T) {
	const size = 16 << 20
	kinds := []NATKind{NATOpen, NATOpen, NATFullCone, NATFirewalled}
	s := startLabSwarm(t, kinds, size, 200e6/8, 50e6/8)
	hosts := s.lab.hosts
	others := func(i int) []string {
		var out []string
		for j, h := range hosts {
			if j != i {
				out = append(out, h.WAN)
			}
		}
		return out
	}
	const priv, control = 0, 1
	countFrom(t, hosts[priv].NS, others(priv))
	countFrom(t, hosts[control].NS, others(control))
	var peers []*labPeer
	for i, h := range hosts {
		peers = append(peers, s.startPeer(h, i == priv))
	}
	s.fetchAll(peers, 4*time.Minute)

	st, err := s.status(peers[priv])
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range st.Addrs {
		if !strings.Contains(a, "/p2p-circuit") {
			t.Errorf("private peer offers %s, want relay circuits only", a)
		}
	}
	relayed := 0
	for _, p := range peers[1:] {
		switch k := st.Conns[p.id]; k {
		case "relayed":
			relayed++
		case "":
		default:
			t.Errorf("private peer's connection to %s peer %s is %s, want relayed", p.Kind, p.id, k)
		}
	}
	if relayed == 0 {
		t.Errorf("private peer is connected to no peer through the relay: %v", st.Conns)
	}
	pn, cn := counted(t, hosts[priv].NS), counted(t, hosts[control].NS)
	t.Logf("packets from other peers' addresses: private peer %d, control peer %d; private peer took %.1f MiB from peers, %.1f MiB from the origin, uploaded %.1f MiB",
		pn, cn, mib(st.BytesPeers), mib(st.BytesOrigin), mib(st.BytesUploaded))
	if pn != 0 {
		t.Errorf("%d packets from other peers' addresses reached the private peer, want 0", pn)
	}
	if cn == 0 {
		t.Error("no packet from other peers reached the control peer: the counter counts nothing")
	}
}

//go:build linux && natlab

package bench

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// pairConn is how two peers ended up connected, from both sides' views: a
// hole punch or a direct connection on either side wins over a relay.
func pairConn(a, b labStatus) string {
	ka, kb := a.Conns[b.Peer], b.Conns[a.Peer]
	for _, k := range []string{"hole-punched", "direct", "relayed"} {
		if ka == k || kb == k {
			return k
		}
	}
	return "none"
}

// TestNATSwarm is the lab's swarm and connectivity matrix: 8 real peers, two
// of each kind (open, full cone, symmetric, firewalled; each NATed one
// behind its own router), fetch a 64 MiB content through their gateways at
// once. It checks every copy is byte-identical, the origin served at most
// 1.3 copies, a peer behind a NAT uploaded a meaningful share to others,
// and the matrix of how each pair connected: open peers connect to
// everyone, every pair connects at least through the relay, and full cone
// to full cone ends up direct or hole-punched. The matrix is logged.
func TestNATSwarm(t *testing.T) {
	const size = 64 << 20
	kinds := []NATKind{NATOpen, NATOpen, NATFullCone, NATFullCone, NATSymmetric, NATSymmetric, NATFirewalled, NATFirewalled}
	s := startLabSwarm(t, kinds, size, 200e6/8, 50e6/8)
	served0 := s.originServed()
	var peers []*labPeer
	for _, h := range s.lab.hosts {
		peers = append(peers, s.startPeer(h, false))
	}
	s.fetchAll(peers, 5*time.Minute)
	served := s.originServed() - served0

	// Connections settle (hole punches finish) after the transfer at the
	// latest; read the views until every pair is connected somehow or 20s
	// pass.
	var sts []labStatus
	deadline := time.Now().Add(20 * time.Second)
	for {
		sts = sts[:0]
		for _, p := range peers {
			st, err := s.status(p)
			if err != nil {
				t.Fatal(err)
			}
			sts = append(sts, st)
		}
		none := false
		for i := range sts {
			for j := i + 1; j < len(sts); j++ {
				none = none || pairConn(sts[i], sts[j]) == "none"
			}
		}
		if !none || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Second)
	}

	// The matrix: per unordered pair of kinds, how its peer pairs connected.
	type cell struct{ direct, punched, relayed, none, pairs int }
	matrix := map[[2]NATKind]*cell{}
	order := []NATKind{NATOpen, NATFullCone, NATSymmetric, NATFirewalled}
	key := func(a, b NATKind) [2]NATKind {
		if slices.Index(order, a) > slices.Index(order, b) {
			a, b = b, a
		}
		return [2]NATKind{a, b}
	}
	for i := range peers {
		for j := i + 1; j < len(peers); j++ {
			k := key(peers[i].Kind, peers[j].Kind)
			c := matrix[k]
			if c == nil {
				c = &cell{}
				matrix[k] = c
			}
			c.pairs++
			how := pairConn(sts[i], sts[j])
			switch how {
			case "direct":
				c.direct++
			case "hole-punched":
				c.punched++
			case "relayed":
				c.relayed++
			default:
				c.none++
			}
			a, b := peers[i].Kind, peers[j].Kind
			if how == "none" {
				t.Errorf("%s peer %d and %s peer %d are not connected at all (not even through the relay)", a, i, b, j)
			}
			if a == NATFullCone && b == NATFullCone && how != "direct" && how != "hole-punched" {
				t.Errorf("full-cone peers %d and %d connected %s, want direct or hole-punched", i, j, how)
			}
		}
	}
	var tb strings.Builder
	tb.WriteString("| pair | peer pairs | direct | hole-punched | relayed | none |\n| --- | --- | --- | --- | --- | --- |\n")
	pct := func(n, of int) string { return fmt.Sprintf("%.0f%%", 100*float64(n)/float64(of)) }
	for i, a := range order {
		for _, b := range order[i:] {
			if c := matrix[key(a, b)]; c != nil {
				fmt.Fprintf(&tb, "| %s ↔ %s | %d | %s | %s | %s | %s |\n", a, b, c.pairs,
					pct(c.direct, c.pairs), pct(c.punched, c.pairs), pct(c.relayed, c.pairs), pct(c.none, c.pairs))
			}
		}
	}
	t.Logf("connectivity matrix:\n%s", tb.String())

	var natUp int64
	for i, st := range sts {
		t.Logf("peer %d %-10s uploaded %6.1f MiB, from peers %6.1f MiB, from origin %6.1f MiB, conns %v",
			i, peers[i].Kind, mib(st.BytesUploaded), mib(st.BytesPeers), mib(st.BytesOrigin), st.Conns)
		if peers[i].Kind != NATOpen {
			natUp = max(natUp, st.BytesUploaded)
		}
	}
	t.Logf("origin served %.1f MiB for %d peers of a %.0f MiB content (%.2f copies)", mib(served), len(peers), mib(size), float64(served)/size)
	if served > size*13/10 {
		t.Errorf("origin served %d B, want at most 1.3 × %d", served, size)
	}
	if natUp < size/8 {
		t.Errorf("the most any peer behind a NAT uploaded is %d B, want at least %d (an eighth of the content)", natUp, size/8)
	}
}

func mib(n int64) float64 { return float64(n) / (1 << 20) }

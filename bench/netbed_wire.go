package bench

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/shoal-cdn/shoal/core"
)

// The links of the netbed are shaped by tc tbf, and tbf shapes wire bytes:
// every TCP segment's Ethernet, IP and TCP headers (1514 bytes on the wire
// for 1448 of payload with timestamps), the ACKs a receiver sends for what
// it downloads (they leave on its shaped upload), and, for Shoal's peers,
// libp2p's framing, encryption and chunk requests. The payload bounds
// (LowerBound, EgressBound) count none of that; the wire-aware bounds below
// count it at the rates measured in the run.

// NetbedWire is what a run's links carried, as tc counts it on the shaped
// interfaces (the bytes tbf shaped: Ethernet frames without preamble or
// FCS, headers counted once per segment), and the payload the processes
// say they sent. Slices are per receiver.
type NetbedWire struct {
	// PeerUp is each receiver's shaped upload; PeerDown its shaped
	// download (both wire bytes).
	PeerUp, PeerDown []int64
	// PeerServed is the payload each receiver sent to other peers, by its
	// own count (the DATA frames' chunk bytes).
	PeerServed []int64
	// OriginUp is the origin's shaped upload (wire bytes); OriginIn what
	// its link received: the receivers' ACKs for it, their HTTP requests
	// and tracker announces.
	OriginUp, OriginIn int64
}

// WireOverhead is the cost of the wire, measured: core.WireCost, the
// type the simulator's wire model takes, so a measurement can be given to
// it as it is.
type WireOverhead = core.WireCost

// PayloadOnly is the overhead the payload bounds assume: none.
var PayloadOnly = core.PayloadOnly

// ErrNoWire means a run's wire counters cannot give an overhead.
var ErrNoWire = errors.New("netbed: no wire counters")

// Overhead derives the overhead from the counters and originServed, the
// payload the origin sent by its own count:
//
//	a   = OriginIn / OriginUp
//	h_o = OriginUp / originServed
//	h   = (Σ PeerUp − a·Σ PeerDown) / Σ PeerServed
//
// a is measured on the origin's flows (the only bytes its link receives
// are the receivers' answers to what it sent) and applied to every flow:
// the same kernels ACK peers' TCP streams the same way. Σ PeerDown also
// holds the ACKs of what the receivers uploaded, so h is low by about a²
// (under 0.1 %).
func (w NetbedWire) Overhead(originServed int64) (WireOverhead, error) {
	if w.OriginUp <= 0 || originServed <= 0 {
		return WireOverhead{}, fmt.Errorf("%w: origin sent %d wire bytes for %d of payload", ErrNoWire, w.OriginUp, originServed)
	}
	if len(w.PeerUp) == 0 || len(w.PeerUp) != len(w.PeerDown) || len(w.PeerUp) != len(w.PeerServed) {
		return WireOverhead{}, fmt.Errorf("%w: %d uploads, %d downloads, %d served counts", ErrNoWire, len(w.PeerUp), len(w.PeerDown), len(w.PeerServed))
	}
	var up, down, served int64
	for i := range w.PeerUp {
		if w.PeerServed[i] < 0 {
			return WireOverhead{}, fmt.Errorf("%w: receiver %d did not report what it served", ErrNoWire, i)
		}
		up += w.PeerUp[i]
		down += w.PeerDown[i]
		served += w.PeerServed[i]
	}
	if served <= 0 {
		return WireOverhead{}, fmt.Errorf("%w: the receivers served no payload", ErrNoWire)
	}
	if up <= 0 || down <= 0 {
		// An unshaped link (rate 0) has no tbf to count its bytes.
		return WireOverhead{}, fmt.Errorf("%w: the receivers' links counted %d bytes up, %d down (unshaped?)", ErrNoWire, up, down)
	}
	o := WireOverhead{Ack: float64(w.OriginIn) / float64(w.OriginUp), Origin: float64(w.OriginUp) / float64(originServed)}
	o.Peer = (float64(up) - o.Ack*float64(down)) / float64(served)
	return o, nil
}

// WireEgressBound is EgressBound on the wire: the least time in which n
// receivers can all finish when the origin sends only egress bytes of
// payload and every byte costs what w says. The receivers' uplinks carry
// the rest of the N copies, h·(N·F − E), and the ACKs of everything the
// receivers download, a·(h·(N·F − E) + h_o·E); the origin's link carries
// h_o·E. So
//
//	T ≥ max(T*_wire, [(1+a)·h·(N·F − E) + a·h_o·E] / Σu_i, h_o·E/u_s)
//
// With PayloadOnly it is EgressBound, bar the origin term (which EgressBound
// leaves out: it never binds there at about one copy).
func WireEgressBound(n int, size, egress int64, originUp, peerUp, peerDown float64, w WireOverhead) time.Duration {
	t := WireLowerBound(n, size, originUp, peerUp, peerDown, w).Seconds()
	if n <= 0 || size <= 0 {
		return 0
	}
	e := float64(egress)
	if originUp > 0 {
		t = math.Max(t, w.Origin*e/originUp)
	}
	if peerUp > 0 {
		rest := math.Max(float64(int64(n)*size)-e, 0)
		load := (1+w.Ack)*w.Peer*rest + w.Ack*w.Origin*e
		t = math.Max(t, load/(float64(n)*peerUp))
	}
	return time.Duration(t * float64(time.Second))
}

// WireLowerBound is LowerBound on the wire (T*_wire): the origin sends at
// least one copy, h_o·F/u_s; the slowest downloader receives one,
// min(h, h_o)·F/d; and with the origin busy all along (E = T·u_s/h_o) the
// uplinks carry the rest and every ACK:
//
//	T·Σu_i = (1+a)·h·(N·F − T·u_s/h_o) + a·T·u_s
//	T      = (1+a)·h·N·F / (Σu_i + u_s·((1+a)·h/h_o − a))
//
// With PayloadOnly it is LowerBound.
func WireLowerBound(n int, size int64, originUp, peerUp, peerDown float64, w WireOverhead) time.Duration {
	if n <= 0 || size <= 0 {
		return 0
	}
	f := float64(size)
	t := 0.0
	if originUp > 0 {
		t = math.Max(t, w.Origin*f/originUp)
	}
	if peerDown > 0 {
		t = math.Max(t, math.Min(w.Peer, w.Origin)*f/peerDown)
	}
	if originUp > 0 && peerUp > 0 {
		hp := (1 + w.Ack) * w.Peer
		t = math.Max(t, hp*float64(n)*f/(float64(n)*peerUp+originUp*(hp/w.Origin-w.Ack)))
	}
	return time.Duration(t * float64(time.Second))
}

// parseQdiscBytes reads the bytes counter of the one qdisc in the output
// of `tc -s -j qdisc show dev DEV root`.
func parseQdiscBytes(out []byte) (int64, error) {
	var qs []struct {
		Kind  string `json:"kind"`
		Bytes *int64 `json:"bytes"`
	}
	if err := json.Unmarshal(out, &qs); err != nil {
		return 0, fmt.Errorf("tc -s -j qdisc: %w in %.200q", err, out)
	}
	if len(qs) != 1 || qs[0].Bytes == nil || *qs[0].Bytes < 0 {
		return 0, fmt.Errorf("tc -s -j qdisc: want one qdisc with a byte count, got %.200q", out)
	}
	return *qs[0].Bytes, nil
}

// uploadedTag marks the exact count on the swarm line `shoal get` prints
// when it ends: "swarm: … (bytes: peers=N origin=N uploaded=N)".
const uploadedTag = " uploaded="

// parseUploaded reads the payload a `shoal get` uploaded from its swarm
// line; ok is false for any other line.
func parseUploaded(line string) (n int64, ok bool) {
	if !strings.HasPrefix(line, "swarm: ") {
		return 0, false
	}
	_, rest, found := strings.Cut(line, uploadedTag)
	if !found {
		return 0, false
	}
	rest, _, _ = strings.Cut(rest, ")")
	n, err := strconv.ParseInt(rest, 10, 64)
	if err != nil || n < 0 {
		return 0, false
	}
	return n, true
}

// since is w less the counters in w0, with the served counts.
func (w NetbedWire) since(w0 NetbedWire, served []int64) *NetbedWire {
	d := &NetbedWire{OriginUp: w.OriginUp - w0.OriginUp, OriginIn: w.OriginIn - w0.OriginIn, PeerServed: slices.Clone(served)}
	for i := range w.PeerUp {
		d.PeerUp = append(d.PeerUp, w.PeerUp[i]-w0.PeerUp[i])
		d.PeerDown = append(d.PeerDown, w.PeerDown[i]-w0.PeerDown[i])
	}
	return d
}

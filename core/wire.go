package core

// WireCost is what a network link carries per payload byte, beyond the
// payload: what `shoal bench netbed` measures on its shaped links and the
// simulator charges its links (sim's wire model), one definition for both.
type WireCost struct {
	// Peer (h) is the wire bytes on a receiver's upload per payload byte it
	// serves to peers: TCP/IP headers, libp2p framing and encryption, and
	// the requests it sends.
	Peer float64 `yaml:"peer"`
	// Origin (h_o) is the wire bytes on the origin's upload per payload
	// byte it serves: TCP/IP and HTTP response headers.
	Origin float64 `yaml:"origin"`
	// Ack (a) is the bytes a receiver sends back on its upload per wire
	// byte it receives: TCP ACKs and the requests that asked for the bytes.
	Ack float64 `yaml:"ack"`
}

// PayloadOnly is no overhead at all: the cost payload-only bounds assume.
var PayloadOnly = WireCost{Peer: 1, Origin: 1, Ack: 0}

// MeasuredWire is the overhead `shoal bench netbed` measured on Linux
// veth links shaped by tc tbf (docs/sim.md), peers talking over TCP (as
// they dial it first): h ≈ 1.05 (TCP/IP's 1514/1448 = 1.046 plus libp2p's
// framing, encryption and requests; 1.055–1.06 when they talked QUIC),
// h_o ≈ 1.048 (TCP/IP plus HTTP headers), a ≈ 0.006. The simulator's
// default.
var MeasuredWire = WireCost{Peer: 1.05, Origin: 1.048, Ack: 0.006}

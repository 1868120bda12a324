package bench

import (
	"encoding/binary"
	"encoding/hex"
	"slices"
	"strings"
	"testing"
)

// realQdiscDump is the kernel's answer to qdiscDumpRequest(1) in a
// receiver's namespace (Linux 6.18 on x86-64, so little-endian), after
// eth0 sent 100,000 bytes over TCP: two reads, the first with lo's noqueue
// and eth0's tbf, the second with the end of the dump. tc -s qdisc showed
// 0 bytes sent by lo's qdisc and 104,934 (75 packets) by eth0's.
var realQdiscDump = [2]string{`
	940000002400020001000000d2590000000000000100000000000000ffffffff
	020000000c0001006e6f71756575650005000c00000000003000070014000100
	0000000000000000000000000000000018000300000000000000000000000000
	00000000000000002c0003000000000000000000000000000000000000000000
	0000000000000000000000000000000000000000

	bc0000002400020001000000d259000000000000020000000000bd80ffffffff
	0300000008000100746266002c000200280001000001000000000000a0252600
	00000000000000000000000090d0050000800c000000000005000c0000000000
	3000070014000100e6990100000000004b000000000000001800030000000000
	000000000000000000000000000000002c000300e6990100000000004b000000
	00000000000000000000000000000000000000000000000000000000
`, `
	140000000300020001000000d259000000000000
`}

// The real dump's qdiscs: the root of lo (ifindex 1) and of eth0 (2).
var realQdiscStats = []qdiscStat{
	{ifindex: 1, parent: tcHRoot, bytes: 0},
	{ifindex: 2, parent: tcHRoot, bytes: 104934},
}

func decodeHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func littleEndian() bool { return binary.NativeEndian.Uint16([]byte{1, 0}) == 1 }

func TestParseQdiscDumpReal(t *testing.T) {
	if !littleEndian() {
		t.Skip("the sample was read on a little-endian host; netlink is in host order")
	}
	qs, done, err := parseQdiscDump(decodeHex(t, realQdiscDump[0]), 1)
	if err != nil || done {
		t.Fatalf("first read: done %v, err %v", done, err)
	}
	if !slices.Equal(qs, realQdiscStats) {
		t.Fatalf("got %+v, want %+v", qs, realQdiscStats)
	}
	if qs, done, err := parseQdiscDump(decodeHex(t, realQdiscDump[1]), 1); err != nil || !done || len(qs) != 0 {
		t.Fatalf("second read: %+v, done %v, err %v", qs, done, err)
	}
	// Another request's answer is not this one's.
	for _, read := range realQdiscDump {
		if qs, done, err := parseQdiscDump(decodeHex(t, read), 2); err != nil || done || len(qs) != 0 {
			t.Fatalf("answer to request 1 read as 2's: %+v, %v, %v", qs, done, err)
		}
	}
}

// appendNlmsg appends a netlink message of type typ and body to b.
func appendNlmsg(b []byte, typ uint16, seq uint32, body []byte) []byte {
	ne := binary.NativeEndian
	b = ne.AppendUint32(b, uint32(nlmsgHdrLen+len(body)))
	b = ne.AppendUint16(b, typ)
	b = ne.AppendUint16(b, 0x2) // NLM_F_MULTI
	b = ne.AppendUint32(b, seq)
	b = ne.AppendUint32(b, 0)
	b = append(b, body...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

// appendAttr appends a netlink attribute to b.
func appendAttr(b []byte, typ uint16, v []byte) []byte {
	ne := binary.NativeEndian
	b = ne.AppendUint16(b, uint16(4+len(v)))
	b = ne.AppendUint16(b, typ)
	b = append(b, v...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

// appendQdiscMsg encodes q as the kernel does (TCA_KIND, and the counter
// in both TCA_STATS2 and TCA_STATS), with bytes of -1 as no stats.
func appendQdiscMsg(b []byte, seq uint32, q qdiscStat) []byte {
	ne := binary.NativeEndian
	body := make([]byte, tcmsgLen)
	ne.PutUint32(body[4:], uint32(q.ifindex))
	ne.PutUint32(body[12:], q.parent)
	body = appendAttr(body, 1, []byte("tbf\x00")) // TCA_KIND
	if q.bytes >= 0 {
		basic := ne.AppendUint64(nil, uint64(q.bytes))
		basic = ne.AppendUint32(basic, 7) // packets
		basic = ne.AppendUint32(basic, 0) // padding
		body = appendAttr(body, tcaStats2|0x8000, appendAttr(nil, tcaStatsBasic, basic))
		body = appendAttr(body, tcaStats, append(ne.AppendUint64(nil, uint64(q.bytes)), make([]byte, 28)...))
	}
	return appendNlmsg(b, rtmNewQdisc, seq, body)
}

func TestParseQdiscDump(t *testing.T) {
	ne := binary.NativeEndian
	qs := []qdiscStat{{1, tcHRoot, 0}, {2, tcHRoot, 1 << 40}, {2, 0x80010000, 12}, {3, tcHRoot, -1}}
	var b []byte
	for _, q := range qs {
		b = appendQdiscMsg(b, 9, q)
	}
	// Only TCA_STATS: the counter is read from it.
	body := appendAttr(make([]byte, tcmsgLen), tcaStats, append(ne.AppendUint64(nil, 77), make([]byte, 28)...))
	ne.PutUint32(body[4:], 4)
	b = appendNlmsg(b, rtmNewQdisc, 9, body)
	// Another request's message, an acknowledgement, then the end and what
	// follows it: all but the end skipped.
	b = appendQdiscMsg(b, 8, qdiscStat{5, tcHRoot, 5})
	b = appendNlmsg(b, nlmsgError, 9, make([]byte, 4+nlmsgHdrLen))
	b = appendNlmsg(b, nlmsgDone, 9, make([]byte, 4))
	b = appendQdiscMsg(b, 9, qdiscStat{6, tcHRoot, 6})
	got, done, err := parseQdiscDump(b, 9)
	if err != nil || !done {
		t.Fatalf("done %v, err %v", done, err)
	}
	want := append(slices.Clone(qs), qdiscStat{4, 0, 77})
	if !slices.Equal(got, want) {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	// A dump continues in the next read.
	if got, done, err := parseQdiscDump(appendQdiscMsg(nil, 9, qs[0]), 9); err != nil || done || !slices.Equal(got, qs[:1]) {
		t.Fatalf("one message: %+v, done %v, err %v", got, done, err)
	}

	errMsg := appendNlmsg(nil, nlmsgError, 9, append(ne.AppendUint32(nil, uint32(1<<32-22)), make([]byte, nlmsgHdrLen)...))
	for name, in := range map[string][]byte{
		"error":             errMsg,
		"short header":      b[:10],
		"cut message":       b[:40],
		"length under head": append(ne.AppendUint32(nil, 8), make([]byte, 12)...),
		"short tcmsg":       appendNlmsg(nil, rtmNewQdisc, 9, make([]byte, 12)),
		"attribute overrun": appendNlmsg(nil, rtmNewQdisc, 9, append(make([]byte, tcmsgLen), 0xff, 0, 3, 0)),
		"short stats":       appendNlmsg(nil, rtmNewQdisc, 9, appendAttr(make([]byte, tcmsgLen), tcaStats, make([]byte, 4))),
		"negative count":    appendNlmsg(nil, rtmNewQdisc, 9, appendAttr(make([]byte, tcmsgLen), tcaStats, ne.AppendUint64(nil, 1<<63))),
	} {
		if qs, _, err := parseQdiscDump(in, 9); err == nil {
			t.Errorf("%s: decoded as %+v", name, qs)
		}
	}
}

// The request is what iproute2's tc sends for `tc qdisc show`, bar tc's
// sequence number and its extended-ack attribute.
func TestQdiscDumpRequest(t *testing.T) {
	b := qdiscDumpRequest(3)
	ne := binary.NativeEndian
	if len(b) != 36 || ne.Uint32(b) != 36 || ne.Uint16(b[4:]) != rtmGetQdisc || ne.Uint16(b[6:]) != 0x301 || ne.Uint32(b[8:]) != 3 {
		t.Fatalf("request % x", b)
	}
	if slices.ContainsFunc(b[nlmsgHdrLen:], func(c byte) bool { return c != 0 }) {
		t.Fatalf("tcmsg not all zeros: % x", b[nlmsgHdrLen:])
	}
}

// FuzzParseQdiscDump checks the decoder never panics, and that what it
// decodes encodes to a dump that decodes to the same.
func FuzzParseQdiscDump(f *testing.F) {
	if littleEndian() {
		f.Add(decodeHex(f, realQdiscDump[0]))
		f.Add(decodeHex(f, realQdiscDump[0]+realQdiscDump[1]))
	}
	var b []byte
	for _, q := range []qdiscStat{{1, tcHRoot, 0}, {2, tcHRoot, 1 << 40}, {3, 0x10000, -1}} {
		b = appendQdiscMsg(b, 1, q)
	}
	f.Add(b)
	f.Add(appendNlmsg(b, nlmsgDone, 1, make([]byte, 4)))
	f.Add(appendNlmsg(nil, nlmsgError, 1, make([]byte, 4)))
	f.Fuzz(func(t *testing.T, in []byte) {
		qs, done, err := parseQdiscDump(in, 1)
		if err != nil {
			return
		}
		var enc []byte
		for _, q := range qs {
			if q.bytes < -1 {
				t.Fatalf("count %d from % x", q.bytes, in)
			}
			enc = appendQdiscMsg(enc, 1, q)
		}
		if done {
			enc = appendNlmsg(enc, nlmsgDone, 1, make([]byte, 4))
		}
		again, doneAgain, err := parseQdiscDump(enc, 1)
		if err != nil || doneAgain != done || !slices.Equal(again, qs) {
			t.Fatalf("%+v (done %v) re-encoded decodes to %+v (done %v), %v", qs, done, again, doneAgain, err)
		}
	})
}

package bench

import (
	"encoding/binary"
	"fmt"
	"math"
)

// The netbed's progress lines read the shaped links' qdisc counters (the
// bytes `tc -s qdisc show` prints) from the kernel over rtnetlink, in
// process: a dump of every qdisc of a namespace in one request, instead of
// a tc process per device every few seconds. This is the decoder of that
// dump; the constants are those of linux/netlink.h, linux/rtnetlink.h,
// linux/pkt_sched.h and linux/gen_stats.h, spelled here so it builds, and
// is fuzzed, on every platform.
const (
	nlmsgHdrLen = 16 // struct nlmsghdr
	nlmsgError  = 2
	nlmsgDone   = 3
	rtmNewQdisc = 36
	rtmGetQdisc = 38
	nlmFRequest = 0x1
	nlmFDump    = 0x300 // NLM_F_ROOT | NLM_F_MATCH

	tcmsgLen      = 20 // struct tcmsg
	tcaStats      = 3  // struct tc_stats, bytes first
	tcaStats2     = 7  // nested gnet_stats attributes
	tcaStatsBasic = 1  // struct gnet_stats_basic, bytes first
	nlaTypeMask   = 0x3fff
	tcHRoot       = 0xffffffff // parent of a device's root qdisc
)

// qdiscStat is one qdisc of a dump: its device, its parent (tcHRoot for a
// device's root qdisc) and the bytes it has sent (-1: the kernel gave no
// counter).
type qdiscStat struct {
	ifindex int32
	parent  uint32
	bytes   int64
}

// qdiscDumpRequest asks for every qdisc of the socket's namespace: its
// tcmsg is all zeros (any family, every device).
func qdiscDumpRequest(seq uint32) []byte {
	b := make([]byte, nlmsgHdrLen+tcmsgLen)
	ne := binary.NativeEndian
	ne.PutUint32(b[0:], uint32(len(b)))
	ne.PutUint16(b[4:], rtmGetQdisc)
	ne.PutUint16(b[6:], nlmFRequest|nlmFDump)
	ne.PutUint32(b[8:], seq)
	return b
}

// parseQdiscDump decodes one read of the answer to qdiscDumpRequest(seq):
// the qdiscs it holds and whether the dump ended there. Messages of
// another sequence number or type are skipped, and anything after the
// end.
func parseQdiscDump(b []byte, seq uint32) (qs []qdiscStat, done bool, err error) {
	ne := binary.NativeEndian
	for len(b) > 0 {
		if len(b) < nlmsgHdrLen {
			return nil, false, fmt.Errorf("qdisc dump: %d bytes left, short of a message header", len(b))
		}
		n := ne.Uint32(b[0:])
		if n < nlmsgHdrLen || uint64(n) > uint64(len(b)) {
			return nil, false, fmt.Errorf("qdisc dump: message of %d bytes in the %d left", n, len(b))
		}
		typ, mseq, body := ne.Uint16(b[4:]), ne.Uint32(b[8:]), b[nlmsgHdrLen:n]
		b = b[min(align4(int(n)), len(b)):]
		if mseq != seq {
			continue
		}
		switch typ {
		case nlmsgDone:
			return qs, true, nil
		case nlmsgError:
			if len(body) < 4 {
				return nil, false, fmt.Errorf("qdisc dump: error message of %d bytes", len(body))
			}
			// Code 0 is an acknowledgement, not an error.
			if code := int32(ne.Uint32(body)); code != 0 {
				return nil, false, fmt.Errorf("qdisc dump: the kernel answered error %d", -int64(code))
			}
		case rtmNewQdisc:
			q, err := parseQdiscMsg(body)
			if err != nil {
				return nil, false, err
			}
			qs = append(qs, q)
		}
	}
	return qs, false, nil
}

// parseQdiscMsg decodes an RTM_NEWQDISC message's body: a tcmsg, then
// attributes. The byte counter is TCA_STATS2's basic stats, or the older
// TCA_STATS if the kernel sent only that, as tc reads them.
func parseQdiscMsg(body []byte) (qdiscStat, error) {
	ne := binary.NativeEndian
	if len(body) < tcmsgLen {
		return qdiscStat{}, fmt.Errorf("qdisc dump: qdisc message of %d bytes, short of a tcmsg", len(body))
	}
	q := qdiscStat{ifindex: int32(ne.Uint32(body[4:])), parent: ne.Uint32(body[12:]), bytes: -1}
	var basic, legacy []byte
	err := walkAttrs(body[tcmsgLen:], func(typ uint16, v []byte) error {
		switch typ {
		case tcaStats:
			legacy = v
		case tcaStats2:
			return walkAttrs(v, func(typ uint16, v []byte) error {
				if typ == tcaStatsBasic {
					basic = v
				}
				return nil
			})
		}
		return nil
	})
	if err != nil {
		return qdiscStat{}, err
	}
	stats := basic
	if stats == nil {
		stats = legacy
	}
	if stats == nil {
		return q, nil
	}
	if len(stats) < 8 {
		return qdiscStat{}, fmt.Errorf("qdisc dump: device %d's qdisc has stats of %d bytes", q.ifindex, len(stats))
	}
	n := ne.Uint64(stats)
	if n > math.MaxInt64 {
		return qdiscStat{}, fmt.Errorf("qdisc dump: device %d's qdisc sent %d bytes", q.ifindex, n)
	}
	q.bytes = int64(n)
	return q, nil
}

// walkAttrs calls fn with each netlink attribute in b (its type without
// the nested and byte-order flags, and its value). A tail too short for an
// attribute header is ignored, as the kernel's nla_ok does.
func walkAttrs(b []byte, fn func(typ uint16, v []byte) error) error {
	ne := binary.NativeEndian
	for len(b) >= 4 {
		n, typ := int(ne.Uint16(b[0:])), ne.Uint16(b[2:])&nlaTypeMask
		if n < 4 || n > len(b) {
			return fmt.Errorf("qdisc dump: attribute %d of %d bytes in the %d left", typ, n, len(b))
		}
		if err := fn(typ, b[4:n]); err != nil {
			return err
		}
		b = b[min(align4(n), len(b)):]
	}
	return nil
}

// align4 rounds n up to netlink's alignment.
func align4(n int) int { return (n + 3) &^ 3 }

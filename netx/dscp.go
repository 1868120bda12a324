package netx

import (
	"fmt"
	"strconv"
	"strings"
)

// DSCP is a Differentiated Services code point (0..63) that the P2P sockets
// of a libp2p host carry (Libp2pConfig.DSCP), so networks can let Shoal's
// upload yield to other traffic. DSCPOff (and 0, the default class)
// leaves sockets unmarked. Traffic to the origin is never marked: that is
// the viewer's own foreground traffic.
type DSCP int

// DSCP values with names.
const (
	DSCPOff DSCP = -1
	// DSCPLE is "lower effort" (RFC 8622).
	DSCPLE DSCP = 1
	// DSCPCS1 is class selector 1, the code point lower-effort traffic
	// used before RFC 8622 and the one most enterprise QoS policies
	// already map to a scavenger class: the default of `shoal peer`.
	DSCPCS1 DSCP = 8
	// DefaultDSCP is the mark `shoal peer` and `shoal get` use.
	DefaultDSCP = DSCPCS1
)

// ParseDSCP parses --dscp: off, le, cs0..cs7, af11..af43, ef, or a number
// 0..63.
func ParseDSCP(s string) (DSCP, error) {
	v := strings.ToLower(strings.TrimSpace(s))
	switch {
	case v == "off":
		return DSCPOff, nil
	case v == "le":
		return DSCPLE, nil
	case v == "ef":
		return 46, nil
	case len(v) == 3 && v[:2] == "cs" && v[2] >= '0' && v[2] <= '7':
		return DSCP(v[2]-'0') * 8, nil
	case len(v) == 4 && v[:2] == "af" && v[2] >= '1' && v[2] <= '4' && v[3] >= '1' && v[3] <= '3':
		return DSCP(v[2]-'0')*8 + DSCP(v[3]-'0')*2, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 || n > 63 {
		return 0, fmt.Errorf("DSCP %q: want off, le, cs0..cs7, af11..af43, ef or a number 0..63", s)
	}
	return DSCP(n), nil
}

// String is the mark's name (cs1, af21, le, ef, off) or its number.
func (d DSCP) String() string {
	switch {
	case d < 0:
		return "off"
	case d == DSCPLE:
		return "le"
	case d == 46:
		return "ef"
	case d%8 == 0:
		return "cs" + strconv.Itoa(int(d/8))
	case d/8 >= 1 && d/8 <= 4 && d%8 >= 2 && d%8 <= 6 && d%2 == 0:
		return "af" + strconv.Itoa(int(d/8)) + strconv.Itoa(int(d%8/2))
	}
	return strconv.Itoa(int(d))
}

// marks reports whether d changes what sockets send.
func (d DSCP) marks() bool { return d > 0 && d <= 63 }

// tos is d in the IPv4 TOS / IPv6 traffic class byte (ECN bits zero).
func (d DSCP) tos() int { return int(d) << 2 }

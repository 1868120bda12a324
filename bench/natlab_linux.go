//go:build linux && natlab

package bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
)

// NATKind is how a lab host reaches the public segment.
type NATKind string

const (
	// NATOpen: an address on the public segment itself, no NAT.
	NATOpen NATKind = "open"
	// NATFullCone: endpoint-independent mapping and filtering; the router
	// keeps the host's port (snat) and sends whatever arrives on it back to
	// the host (dnat).
	NATFullCone NATKind = "full-cone"
	// NATSymmetric: address-and-port-dependent mapping (masquerade
	// fully-random: a new port per destination), unsolicited inbound
	// dropped.
	NATSymmetric NATKind = "symmetric"
	// NATFirewalled: port-preserving masquerade, and every unsolicited
	// inbound packet (conntrack state new) dropped at the router.
	NATFirewalled NATKind = "firewalled"
)

// labPort is the port every lab peer listens on (TCP and UDP): the full-cone
// router forwards it.
const labPort = 4001

// labPubAddr is the public services' address: origin, tracker and relay.
const labPubAddr = "198.18.0.1"

// natLab is the NAT lab: a hub namespace whose bridge is the "public"
// segment (198.18.0.0/16), a namespace on it for the public services, and
// one namespace per peer, either on the segment (open) or on a LAN
// (198.19.N.0/24) behind its own router namespace doing NAT with nftables.
type natLab struct {
	prefix string
	hub    string
	pub    string
	hosts  []labHost
	nsList []string // every namespace, for close
}

// labHost is one peer's place in the lab.
type labHost struct {
	Kind NATKind
	NS   string // where the peer runs
	Addr string // its own address (on its LAN when behind a router)
	WAN  string // the address the public segment sees
	// Router is the router's namespace ("" for open hosts).
	Router string
}

// natRules are the nftables rules of a router of kind k, whose WAN side is
// eth0 with address wan and whose LAN host is host. docs/nat.md quotes them.
func natRules(k NATKind, wan, host string) string {
	drop := `
table inet labfw {
	chain dropforward { type filter hook forward priority filter; iifname "eth0" ct state new counter drop; }
	chain dropinput { type filter hook input priority filter; iifname "eth0" ct state new counter drop; }
}`
	switch k {
	case NATFullCone:
		return fmt.Sprintf(`
table ip labnat {
	chain labpre { type nat hook prerouting priority dstnat; iifname "eth0" tcp dport %[3]d dnat to %[2]s; iifname "eth0" udp dport %[3]d dnat to %[2]s; }
	chain labpost { type nat hook postrouting priority srcnat; oifname "eth0" ip saddr %[2]s tcp sport %[3]d snat to %[1]s:%[3]d; oifname "eth0" ip saddr %[2]s udp sport %[3]d snat to %[1]s:%[3]d; oifname "eth0" snat to %[1]s; }
}`, wan, host, labPort)
	case NATSymmetric:
		return `
table ip labnat {
	chain labpost { type nat hook postrouting priority srcnat; oifname "eth0" masquerade fully-random; }
}` + drop
	case NATFirewalled:
		return `
table ip labnat {
	chain labpost { type nat hook postrouting priority srcnat; oifname "eth0" masquerade; }
}` + drop
	}
	return ""
}

// newNATLab makes the lab: one host per entry of kinds. pubUp and peerUp
// shape the public services' and the peers' uploads (bytes/s, 0: unshaped).
func newNATLab(ctx context.Context, kinds []NATKind, pubUp, peerUp float64) (_ *natLab, err error) {
	if os.Geteuid() != 0 {
		return nil, fmt.Errorf("NAT lab: network namespaces and nftables need root")
	}
	for _, tool := range []string{"ip", "tc", "nft"} {
		if _, err := exec.LookPath(tool); err != nil {
			return nil, fmt.Errorf("NAT lab: %s not found (Debian: apt-get install iproute2 nftables)", tool)
		}
	}
	if len(kinds) > 250 {
		return nil, fmt.Errorf("NAT lab: at most 250 hosts")
	}
	removeStaleNetns()
	l := &natLab{prefix: fmt.Sprintf("%s%d-", netnsPrefix, os.Getpid())}
	l.hub, l.pub = l.prefix+"hub", l.prefix+"pub"
	defer func() {
		if err != nil {
			l.close()
		}
	}()
	l.nsList = append(l.nsList, l.hub)
	if err := newHub(ctx, l.hub); err != nil {
		return l, err
	}
	l.nsList = append(l.nsList, l.pub)
	if err := attachToHub(ctx, l.hub, l.pub, "vpub", labPubAddr+"/16", pubUp, 0); err != nil {
		return l, err
	}
	for i, k := range kinds {
		n := i + 1
		if k == NATOpen {
			h := labHost{Kind: k, NS: fmt.Sprintf("%sh%d", l.prefix, n), Addr: fmt.Sprintf("198.18.1.%d", n)}
			h.WAN = h.Addr
			l.nsList = append(l.nsList, h.NS)
			if err := attachToHub(ctx, l.hub, h.NS, fmt.Sprintf("vh%d", n), h.Addr+"/16", peerUp, 0); err != nil {
				return l, err
			}
			l.hosts = append(l.hosts, h)
			continue
		}
		h := labHost{Kind: k, NS: fmt.Sprintf("%sh%d", l.prefix, n), Router: fmt.Sprintf("%sr%d", l.prefix, n),
			Addr: fmt.Sprintf("198.19.%d.2", n), WAN: fmt.Sprintf("198.18.2.%d", n)}
		l.nsList = append(l.nsList, h.Router)
		if err := attachToHub(ctx, l.hub, h.Router, fmt.Sprintf("vr%d", n), h.WAN+"/16", 0, 0); err != nil {
			return l, err
		}
		l.nsList = append(l.nsList, h.NS)
		if err := run(ctx, "ip", "netns", "add", h.NS); err != nil {
			return l, err
		}
		gw := fmt.Sprintf("198.19.%d.1", n)
		for _, c := range [][]string{
			{"ip", "-n", h.Router, "link", "add", "lan0", "type", "veth", "peer", "name", "eth0", "netns", h.NS},
			{"ip", "-n", h.Router, "addr", "add", gw + "/24", "dev", "lan0"},
			{"ip", "-n", h.Router, "link", "set", "lan0", "up"},
			{"ip", "netns", "exec", h.Router, "sysctl", "-qw", "net.ipv4.ip_forward=1"},
			{"ip", "-n", h.NS, "addr", "add", h.Addr + "/24", "dev", "eth0"},
			{"ip", "-n", h.NS, "link", "set", "eth0", "up"},
			{"ip", "-n", h.NS, "link", "set", "lo", "up"},
			{"ip", "-n", h.NS, "route", "add", "default", "via", gw},
		} {
			if err := run(ctx, c[0], c[1:]...); err != nil {
				return l, err
			}
		}
		if err := tbf(ctx, h.NS, "eth0", peerUp); err != nil {
			return l, err
		}
		if err := nft(ctx, h.Router, natRules(k, h.WAN, h.Addr)); err != nil {
			return l, err
		}
		l.hosts = append(l.hosts, h)
	}
	return l, nil
}

// nft loads rules into namespace ns's nftables.
func nft(ctx context.Context, ns, rules string) error {
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", ns, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(rules)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("nft -f in %s: %v: %s\nrules:%s", ns, err, strings.TrimSpace(string(out)), rules)
	}
	return nil
}

// close deletes every namespace (routers, veths and rules go with them),
// ending what still runs in them.
func (l *natLab) close() {
	for i := len(l.nsList) - 1; i >= 0; i-- {
		exec.Command("ip", "netns", "del", l.nsList[i]).Run()
	}
}

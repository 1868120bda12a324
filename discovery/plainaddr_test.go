package discovery

import (
	"net/netip"
	"testing"

	ma "github.com/multiformats/go-multiaddr"
)

func TestPlainAddr(t *testing.T) {
	for s, want := range map[string]string{
		"/ip4/198.18.0.7/tcp/4001":          "198.18.0.7",
		"/ip4/198.18.0.7/udp/4001/quic-v1":  "198.18.0.7",
		"/ip6/2001:db8::1/tcp/0":            "2001:db8::1",
		"/ip6/::ffff:198.18.0.7/udp/65535":  "::ffff:198.18.0.7",
		"/ip4/198.18.0.7/tcp/65536":         "", // port out of range
		"/ip4/198.18.0.07/tcp/1":            "", // leading zero
		"/ip4/2001:db8::1/tcp/1":            "",
		"/ip6/198.18.0.7/tcp/1":             "",
		"/ip6/fe80::1%eth0/tcp/1":           "",
		"/ip4/198.18.0.7/tcp/1/quic-v1":     "", // another shape: for the multiaddr parser
		"/ip4/198.18.0.7/tcp/1/":            "",
		"/ip4/198.18.0.7/tcp/-1":            "",
		"/ip4/198.18.0.7/udp/1/p2p-circuit": "",
		"/dns4/example.org/tcp/1":           "",
		"/memory/1":                         "",
	} {
		ip, ok := PlainAddr(s)
		if got := ""; ok {
			got = ip.String()
			if got != want {
				t.Errorf("PlainAddr(%q) = %s, want %q", s, got, want)
			}
		} else if want != "" {
			t.Errorf("PlainAddr(%q) refused, want %s", s, want)
		}
	}
}

// FuzzPlainAddr: whatever PlainAddr accepts, the multiaddr parser accepts
// as an address starting with the same IP; so Validate, which trusts it,
// refuses nothing it refused before and accepts nothing more.
func FuzzPlainAddr(f *testing.F) {
	for _, s := range []string{"/ip4/198.18.0.7/tcp/4001", "/ip6/::1/udp/1/quic-v1", "/ip4/1.2.3.4/udp/9/quic-v1", "/ip6/::ffff:1.2.3.4/tcp/1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ip, ok := PlainAddr(s)
		if !ok {
			return
		}
		m, err := ma.NewMultiaddr(s)
		if err != nil {
			t.Fatalf("PlainAddr took %q, the multiaddr parser refuses it: %v", s, err)
		}
		first, _ := ma.SplitFirst(m)
		got, _ := netip.AddrFromSlice(first.RawValue())
		if got.Unmap() != ip.Unmap() {
			t.Fatalf("%q: PlainAddr says %s, the multiaddr parser %s", s, ip, got)
		}
		for _, c := range m {
			if c.Protocol().Code == ma.P_CIRCUIT {
				t.Fatalf("%q: a relay circuit taken as plain", s)
			}
		}
	})
}

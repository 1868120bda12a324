//go:build linux

package bench

import (
	"fmt"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// rootQdiscBytes reads what the root qdisc of each of devs in namespace ns
// has sent: the counter qdiscBytes reads with tc, here over rtnetlink from
// a socket in ns, with no process started.
func rootQdiscBytes(ns string, devs ...string) ([]int64, error) {
	nsh, err := netns.GetFromName(ns)
	if err != nil {
		return nil, fmt.Errorf("namespace %s: %w", ns, err)
	}
	defer nsh.Close()
	h, err := netlink.NewHandleAt(nsh, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("netlink in %s: %w", ns, err)
	}
	defer h.Close()
	// The kernel answers at once; the timeout only keeps a reader from
	// waiting forever on an answer that never comes.
	if err := h.SetSocketTimeout(5 * time.Second); err != nil {
		return nil, fmt.Errorf("netlink in %s: %w", ns, err)
	}
	out := make([]int64, len(devs))
	for i, dev := range devs {
		link, err := h.LinkByName(dev)
		if err != nil {
			return nil, fmt.Errorf("device %s in %s: %w", dev, ns, err)
		}
		qs, err := h.QdiscList(link) // link's qdiscs only
		if err != nil {
			return nil, fmt.Errorf("qdiscs of %s in %s: %w", dev, ns, err)
		}
		found := false
		for _, q := range qs {
			a := q.Attrs()
			if a.Parent != netlink.HANDLE_ROOT {
				continue
			}
			if a.Statistics == nil || a.Statistics.Basic == nil {
				return nil, fmt.Errorf("the root qdisc of %s in %s has no byte counter", dev, ns)
			}
			out[i], found = int64(a.Statistics.Basic.Bytes), true
		}
		if !found {
			return nil, fmt.Errorf("no root qdisc on %s in %s", dev, ns)
		}
	}
	return out, nil
}

//go:build linux

package bench

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// rootQdiscBytes reads what the root qdisc of each of devs in namespace ns
// has sent: the counter qdiscBytes reads with tc, here by one rtnetlink
// dump of the namespace's qdiscs, with no process started.
func rootQdiscBytes(ns string, devs ...string) ([]int64, error) {
	out := make([]int64, len(devs))
	err := inNetns(ns, func() error {
		fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
		if err != nil {
			return fmt.Errorf("netlink socket in %s: %w", ns, err)
		}
		defer unix.Close(fd)
		// The kernel answers a dump at once; the timeout only keeps a
		// reader from waiting forever on an answer that never ends.
		if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Sec: 5}); err != nil {
			return fmt.Errorf("netlink socket in %s: %w", ns, err)
		}
		want := make(map[int32]int, len(devs)) // ifindex → index in devs
		for i, dev := range devs {
			ifr, err := unix.NewIfreq(dev)
			if err != nil {
				return fmt.Errorf("device %s in %s: %w", dev, ns, err)
			}
			// The socket's namespace is ns: the index is ns's.
			if err := unix.IoctlIfreq(fd, unix.SIOCGIFINDEX, ifr); err != nil {
				return fmt.Errorf("device %s in %s: %w", dev, ns, err)
			}
			want[int32(ifr.Uint32())] = i
		}
		qs, err := dumpQdiscs(fd)
		if err != nil {
			return fmt.Errorf("%w in %s", err, ns)
		}
		found := make([]bool, len(devs))
		for _, q := range qs {
			i, ok := want[q.ifindex]
			if !ok || q.parent != tcHRoot {
				continue
			}
			if q.bytes < 0 {
				return fmt.Errorf("qdisc dump: the root qdisc of %s in %s has no byte counter", devs[i], ns)
			}
			out[i], found[i] = q.bytes, true
		}
		for i, ok := range found {
			if !ok {
				return fmt.Errorf("qdisc dump: no root qdisc of %s in %s", devs[i], ns)
			}
		}
		return nil
	})
	return out, err
}

// dumpQdiscs asks the kernel, over the rtnetlink socket fd, for every qdisc
// of fd's namespace.
func dumpQdiscs(fd int) ([]qdiscStat, error) {
	const seq = 1 // one request per socket
	kernel := &unix.SockaddrNetlink{Family: unix.AF_NETLINK}
	if err := unix.Sendto(fd, qdiscDumpRequest(seq), 0, kernel); err != nil {
		return nil, fmt.Errorf("qdisc dump: %w", err)
	}
	// The kernel fills a dump's reads up to 32 KiB.
	buf := make([]byte, 64<<10)
	var all []qdiscStat
	for {
		n, _, flags, from, err := unix.Recvmsg(fd, buf, nil, 0)
		if err != nil {
			return nil, fmt.Errorf("qdisc dump: %w", err)
		}
		if flags&unix.MSG_TRUNC != 0 {
			return nil, fmt.Errorf("qdisc dump: a read of more than %d bytes", len(buf))
		}
		if sa, ok := from.(*unix.SockaddrNetlink); !ok || sa.Pid != 0 {
			continue // not from the kernel
		}
		qs, done, err := parseQdiscDump(buf[:n], seq)
		if err != nil {
			return nil, err
		}
		all = append(all, qs...)
		if done {
			return all, nil
		}
	}
}

//go:build e2e

// The operator's kill switch end to end with real processes: a `shoal
// origin`, a `shoal tracker --operator-key`, 12 `shoal peer`s (6 in region
// a, 6 in region b) fetching contents through their gateways, and 10
// emulated players playing HLS through those gateways. Policies are signed
// and pushed with `shoal policy sign` and `shoal policy push`.
//
// Transfers are paced by their readers (as a player or a slow disk would
// read), so the swarm is mid-transfer when a policy lands. Every wait polls
// with an overall deadline.
package main

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shoal-cdn/shoal/agent"
	"github.com/shoal-cdn/shoal/media/mediatest"
	"github.com/shoal-cdn/shoal/player"
)

const (
	ksPeers   = 12
	ksViewers = 10
	ksSize    = 16 << 20 // bytes of each bulk content
	ksPace    = 1 << 20  // bytes/s each reader takes
	// ksSpeed is the players' clock: half real speed, so the 6 s stream
	// plays over 12 s and the viewers are mid-playback at the switch.
	ksSpeed = 0.5
	// ksSwitch is how soon after a push every peer must have stopped its
	// peer-to-peer traffic (the "within 5 s").
	ksSwitch = 5 * time.Second
)

// ksRig is the kill-switch world: the fxRig's origin and binary, an
// operator key, a tracker that takes its policies, and the peers.
type ksRig struct {
	*fxRig
	opKey, opPub string
	peers        []*fxPeer
	region       []string // each peer's region
}

func newKSRig(t *testing.T) *ksRig {
	k := &ksRig{fxRig: newFxRig(t)}
	k.opKey = filepath.Join(k.dir, "operator.pem")
	out, e, code := runBin(t, k.bin, "keygen", "-o", k.opKey)
	if code != 0 {
		t.Fatalf("keygen exit %d: %s", code, e)
	}
	k.opPub = strings.TrimSpace(out)
	return k
}

func (k *ksRig) startTracker() {
	addr := freePort(k.t)
	k.trackerURL = "http://" + addr
	p := k.start("tracker", "tracker", "--listen", addr, "--interval", "1s", "--admin-token", e2eAdminToken, "--operator-key", k.opPub)
	k.up("tracker", k.trackerURL+"/metrics", p)
}

// push signs a policy of serial with rules (JSON) and pushes it to the
// tracker; it returns when the tracker took it.
func (k *ksRig) push(serial int, rules string) time.Time {
	k.t.Helper()
	return k.pushDoc(serial, `{"rules":`+rules+`}`)
}

// pushDoc signs the unsigned policy doc (JSON: rules, experiments) with
// serial and pushes it to the tracker; it returns when the tracker took it.
func (k *ksRig) pushDoc(serial int, doc string) time.Time {
	t := k.t
	t.Helper()
	unsigned := filepath.Join(k.dir, fmt.Sprintf("policy-%d.json", serial))
	if err := os.WriteFile(unsigned, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	out, e, code := runBin(t, k.bin, "policy", "sign", "--key", k.opKey, "--serial", fmt.Sprint(serial), unsigned)
	if code != 0 {
		t.Fatalf("policy sign %d: exit %d: %s", serial, code, e)
	}
	signed := unsigned + ".signed"
	if err := os.WriteFile(signed, []byte(out), 0o600); err != nil {
		t.Fatal(err)
	}
	at := time.Now()
	if _, e, code := runBin(t, k.bin, "policy", "push", "--tracker", k.trackerURL, "--admin-token", e2eAdminToken, signed); code != 0 {
		t.Fatalf("policy push %d: exit %d: %s", serial, code, e)
	}
	return at
}

// p2p is a peer's peer-to-peer bytes so far: received from and sent to
// peers, over every swarm.
func (k *ksRig) p2p(p *fxPeer) int64 {
	st := p.status(k.t)
	return st.BytesFromPeers + st.BytesUploaded
}

// obeys reports whether every peer in idx holds policy serial and every
// swarm it runs is in mode.
func (k *ksRig) obeys(idx []int, serial uint64, mode string) (bool, string) {
	for _, i := range idx {
		st := k.peers[i].status(k.t)
		if st.Policy.Serial != serial {
			return false, fmt.Sprintf("%s holds policy %d", k.peers[i].name, st.Policy.Serial)
		}
		for _, s := range st.Swarms {
			if s.Mode != mode {
				return false, fmt.Sprintf("%s: swarm %s in mode %q (why %q)", k.peers[i].name, s.Name, s.Mode, s.ModeWhy)
			}
		}
	}
	return true, ""
}

// quiet waits (up to ksSwitch after at) until the P2P counters of the
// peers in idx stop growing: three readings 500 ms apart agree (a chunk
// still being written when the switch came has had a second to land). It
// returns the counters then.
func (k *ksRig) quiet(idx []int, at time.Time, what string) []int64 {
	t := k.t
	t.Helper()
	read := func() []int64 {
		v := make([]int64, len(idx))
		for j, i := range idx {
			v[j] = k.p2p(k.peers[i])
		}
		return v
	}
	prev := read()
	same := 0
	for {
		time.Sleep(500 * time.Millisecond)
		cur := read()
		if same++; fmt.Sprint(cur) != fmt.Sprint(prev) {
			same = 0
		}
		if same == 2 {
			t.Logf("KILLSWITCH %s: peer-to-peer counters still %.1fs after the push", what, time.Since(at).Seconds())
			return cur
		}
		if time.Since(at) > ksSwitch {
			t.Fatalf("%s: peer-to-peer bytes still flowing %v after the push: %v then %v", what, ksSwitch, prev, cur)
		}
		prev = cur
	}
}

// transfer is one paced read of a content's file through a gateway.
type transfer struct {
	peer int
	n    int64
	sum  [32]byte
	err  error
}

// pacedGet reads url at about rate bytes/s and hashes what it got; read
// counts the bytes read so far.
func pacedGet(ctx context.Context, url string, rate int64, read *atomic.Int64) (int64, [32]byte, error) {
	var sum [32]byte
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, sum, err
	}
	resp, err := fxClient.Do(req)
	if err != nil {
		return 0, sum, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, sum, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	h := sha256.New()
	start := time.Now()
	var n int64
	buf := make([]byte, 64<<10)
	for {
		m, err := resp.Body.Read(buf)
		h.Write(buf[:m])
		n += int64(m)
		read.Store(n)
		if err == io.EOF {
			break
		}
		if err != nil {
			return n, sum, err
		}
		if ahead := time.Duration(float64(n)/float64(rate)*float64(time.Second)) - time.Since(start); ahead > 0 {
			time.Sleep(ahead)
		}
	}
	h.Sum(sum[:0])
	return n, sum, nil
}

// transfers are paced reads under way.
type transfers struct {
	wg   sync.WaitGroup
	out  []transfer
	read []atomic.Int64 // bytes each has read so far
}

// wait waits for every transfer to end.
func (ts *transfers) wait() []transfer { ts.wg.Wait(); return ts.out }

// least is the fewest bytes any transfer has read.
func (ts *transfers) least() int64 {
	n := int64(ksSize)
	for i := range ts.read {
		n = min(n, ts.read[i].Load())
	}
	return n
}

// startTransfers starts a paced read of c's bulk.bin on each peer in idx.
func (k *ksRig) startTransfers(ctx context.Context, c *fxContent, idx []int) *transfers {
	ts := &transfers{out: make([]transfer, len(idx)), read: make([]atomic.Int64, len(idx))}
	for j, i := range idx {
		ts.wg.Add(1)
		go func() {
			defer ts.wg.Done()
			n, sum, err := pacedGet(ctx, k.peers[i].gw+"/c/"+c.id+"/bulk.bin", ksPace, &ts.read[j])
			ts.out[j] = transfer{peer: i, n: n, sum: sum, err: err}
		}()
	}
	return ts
}

// checkTransfers fails the test unless every transfer got c's bytes.
func (k *ksRig) checkTransfers(what string, c *fxContent, ts []transfer) {
	k.t.Helper()
	want := c.files["bulk.bin"]
	for _, tr := range ts {
		if tr.err != nil || tr.n != want.size || tr.sum != want.sum {
			k.t.Fatalf("%s: %s's transfer: %d of %d bytes, sha256 match %v, err %v", what, k.peers[tr.peer].name, tr.n, want.size, tr.sum == want.sum, tr.err)
		}
	}
}

// play has ksViewers emulated players play entry of id, one through each
// of the first ksViewers peers' gateways, at ksSpeed.
func (k *ksRig) play(ctx context.Context, id, entry, tag string) (wait func() []player.Report) {
	reps := make([]player.Report, ksViewers)
	errs := make([]error, ksViewers)
	var wg sync.WaitGroup
	for i := range ksViewers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			gw := k.peers[i].gw
			reps[i], errs[i] = player.Play(ctx, player.Config{URL: gw + "/c/" + id + "/" + entry, Speed: ksSpeed,
				PlaybackID: fmt.Sprintf("%s-%d", tag, i), Client: fxClient})
		}()
	}
	return func() []player.Report {
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				k.t.Fatalf("%s viewer %d: %v", tag, i, err)
			}
			if reps[i].State != player.Ended {
				k.t.Fatalf("%s viewer %d did not play to the end: %+v", tag, i, reps[i])
			}
		}
		return reps
	}
}

// playing reports whether every viewer tagged tag has started playing.
func (k *ksRig) playing(tag string) (bool, string) {
	for i := range ksViewers {
		started := false
		for _, pb := range k.peers[i].status(k.t).Playbacks {
			if pb.Client == fmt.Sprintf("id:%s-%d", tag, i) && pb.Started {
				started = true
			}
		}
		if !started {
			return false, fmt.Sprintf("viewer %d not started", i)
		}
	}
	return true, ""
}

// activeViewers counts the viewers tagged tag with media sent and not
// yet played (by the gateway's real-time clock: a lower bound).
func (k *ksRig) activeViewers(tag string) int {
	n := 0
	for i := range ksViewers {
		for _, pb := range k.peers[i].status(k.t).Playbacks {
			if pb.Client == fmt.Sprintf("id:%s-%d", tag, i) && pb.Started && pb.BufferedSeconds > 0 {
				n++
			}
		}
	}
	return n
}

func worstStall(reps []player.Report) (int, time.Duration) {
	n, d := 0, time.Duration(0)
	for _, r := range reps {
		n, d = max(n, r.Stalls), max(d, r.StallWall)
	}
	return n, d
}

// TestKillSwitch: the operator turns P2P off for the whole fleet while 12
// peers are mid-transfer and 10 viewers mid-playback; within 5 s no
// peer-to-peer byte moves, every transfer completes byte-identical from the
// origin, and no viewer stalls more than in the same test's CDN-only
// baseline. P2P on again: peer bytes grow again. Then region a alone is
// switched off: its peers stop, region b's keep going.
func TestKillSwitch(t *testing.T) {
	began := time.Now()
	k := newKSRig(t)
	baseDir, mainDir := filepath.Join(k.dir, "hls-base"), filepath.Join(k.dir, "hls-main")
	// Two encodings of the same stream, so the second playback finds
	// nothing of the first in the peers' caches.
	mediatest.HLS(t, baseDir, mediatest.TS)
	mediatest.HLS(t, mainDir, mediatest.FMP4)
	baseID, mainID := k.publishMediaDir("base", baseDir), k.publishMediaDir("main", mainDir)
	bulk := make([]*fxContent, 5)
	for i := range bulk {
		bulk[i] = k.publish(fmt.Sprintf("bulk%d", i), fxFile{"bulk.bin", ksSize, uint64(100 + i)})
	}
	k.startOrigin()
	k.startTracker()
	all, regionA, regionB := []int{}, []int{}, []int{}
	for i := range ksPeers {
		region := "a"
		if i >= ksPeers/2 {
			region = "b"
		}
		k.peers = append(k.peers, k.startPeer(fmt.Sprintf("peer%d-%s", i, region), "--region", region,
			"--operator-key", k.opPub, "--metered", "no", "--on-battery", "no"))
		k.region = append(k.region, region)
		all = append(all, i)
		if region == "a" {
			regionA = append(regionA, i)
		} else {
			regionB = append(regionB, i)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	// The CDN-only baseline: P2P off, the same 12 transfers and 10 viewers.
	k.push(1, `[{"match":{},"p2p":"off"}]`)
	waitFor(t, "policy 1 everywhere", fxDeadline, func() (bool, string) { return k.obeys(all, 1, "off") })
	transfers := k.startTransfers(ctx, bulk[4], all)
	base := k.play(ctx, baseID, "index.m3u8", "base")()
	k.checkTransfers("CDN-only baseline", bulk[4], transfers.wait())
	baseStalls, baseStallWall := worstStall(base)
	t.Logf("KILLSWITCH baseline (CDN only): worst viewer %d stalls, %v stalled", baseStalls, baseStallWall)

	// P2P on: 12 transfers and 10 viewers; then the kill switch.
	k.push(2, `[{"match":{},"p2p":"on"}]`)
	waitFor(t, "policy 2 everywhere", fxDeadline, func() (bool, string) { return k.obeys(all, 2, "on") })
	transfers = k.startTransfers(ctx, bulk[0], all)
	viewers := k.play(ctx, mainID, "index.m3u8", "main")
	waitFor(t, "transfers under way from peers, viewers playing", fxDeadline, func() (bool, string) {
		if ok, why := k.playing("main"); !ok {
			return false, why
		}
		var p2p int64
		for _, i := range all {
			p2p += k.p2p(k.peers[i])
		}
		return p2p > 0 && transfers.least() >= 1<<20, fmt.Sprintf("p2p bytes %d, least read %d", p2p, transfers.least())
	})
	progress := float64(transfers.least()) / ksSize
	active := k.activeViewers("main")
	at := k.push(3, `[{"match":{},"p2p":"off"}]`)
	waitFor(t, "policy 3 (off) everywhere", ksSwitch, func() (bool, string) { return k.obeys(all, 3, "off") })
	t.Logf("KILLSWITCH off: every peer off %.2fs after the push (every reader at least %.0f%% through, %d of %d viewers playing)", time.Since(at).Seconds(), 100*progress, active, ksViewers)
	stopped := k.quiet(all, at, "kill switch")
	k.checkTransfers("kill switch", bulk[0], transfers.wait())
	reps := viewers()
	for i, j := range all {
		if got := k.p2p(k.peers[j]); got != stopped[i] {
			t.Fatalf("%s moved %d peer-to-peer bytes after the kill switch took effect", k.peers[j].name, got-stopped[i])
		}
	}
	for i, r := range reps {
		t.Logf("KILLSWITCH viewer %d: startup %v, %d stalls, %v stalled", i, r.Startup, r.Stalls, r.StallWall)
		// Two seconds of scheduling noise: the test runs on loaded 2-core
		// machines, where a baseline viewer may be lucky.
		if r.StallWall > baseStallWall+2*time.Second {
			t.Errorf("viewer %d stalled more through the kill switch (%d stalls, %v) than on CDN only (at worst %d, %v)",
				i, r.Stalls, r.StallWall, baseStalls, baseStallWall)
		}
	}

	// P2P on again: peers share again.
	k.push(4, `[{"match":{},"p2p":"on"}]`)
	waitFor(t, "policy 4 (on) everywhere", ksSwitch, func() (bool, string) { return k.obeys(all, 4, "on") })
	var before int64
	for _, v := range stopped {
		before += v
	}
	transfers = k.startTransfers(ctx, bulk[1], all)
	waitFor(t, "peer-to-peer bytes growing again", fxDeadline, func() (bool, string) {
		var now int64
		for _, i := range all {
			now += k.p2p(k.peers[i])
		}
		return now > before, fmt.Sprintf("%d peer-to-peer bytes, %d at the kill switch", now, before)
	})
	k.checkTransfers("p2p on again", bulk[1], transfers.wait())

	// Region a's kill switch: only its peers stop.
	transfers = k.startTransfers(ctx, bulk[2], all)
	waitFor(t, "third transfers under way", fxDeadline, func() (bool, string) {
		return transfers.least() >= 1<<20, fmt.Sprintf("least read %d", transfers.least())
	})
	at = k.push(5, `[{"match":{"region":"a"},"p2p":"off"}]`)
	waitFor(t, "region a off", ksSwitch, func() (bool, string) { return k.obeys(regionA, 5, "off") })
	waitFor(t, "region b still on under policy 5", ksSwitch, func() (bool, string) { return k.obeys(regionB, 5, "on") })
	stoppedA := k.quiet(regionA, at, "region a's kill switch")
	k.checkTransfers("region kill switch", bulk[2], transfers.wait())
	// A new content for everyone: region b's peers share it, region a's
	// fetch it from the origin alone.
	var bAt int64
	for _, i := range regionB {
		bAt += k.p2p(k.peers[i])
	}
	k.checkTransfers("after region a's kill switch", bulk[3], k.startTransfers(ctx, bulk[3], all).wait())
	var bEnd int64
	for _, i := range regionB {
		bEnd += k.p2p(k.peers[i])
	}
	for j, i := range regionA {
		if got := k.p2p(k.peers[i]); got != stoppedA[j] {
			t.Fatalf("%s (region a) moved %d peer-to-peer bytes after its region's kill switch", k.peers[i].name, got-stoppedA[j])
		}
	}
	if bEnd <= bAt {
		t.Fatalf("region b's peers moved no peer-to-peer bytes after region a's kill switch (%d then %d)", bAt, bEnd)
	}
	t.Logf("KILLSWITCH region a: region b moved %d peer-to-peer bytes after it; test ran %.1fs", bEnd-bAt, time.Since(began).Seconds())
	var st agent.Status
	getJSON(t, k.peers[0].gw+"/api/status", &st)
	if st.Policy.ModeChanges == 0 || len(st.Policy.Why) == 0 {
		t.Errorf("peer0's policy status %+v: want mode changes counted and why", st.Policy)
	}
}

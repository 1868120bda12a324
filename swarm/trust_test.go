package swarm

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/shoal-cdn/shoal/audit"
	"github.com/shoal-cdn/shoal/core"
	"github.com/shoal-cdn/shoal/netx"
	"github.com/shoal-cdn/shoal/swarm/policy"
	"github.com/shoal-cdn/shoal/wire"
)

// skewClock is the wall clock moved forward by a test (safe for concurrent
// use): sessions keep real timers while bans expire on demand.
type skewClock struct{ skew atomic.Int64 }

func (c *skewClock) Now() time.Time          { return time.Now().Add(time.Duration(c.skew.Load())) }
func (c *skewClock) Advance(d time.Duration) { c.skew.Add(int64(d)) }

// auditLog collects audit events.
type auditLog struct {
	mu  sync.Mutex
	evs []audit.Event
}

func (l *auditLog) Record(e audit.Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.evs = append(l.evs, e)
}

func (l *auditLog) count(kind, peer string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, e := range l.evs {
		if e.Kind == kind && e.Peer == peer {
			n++
		}
	}
	return n
}

func TestBanPersistsAndExpires(t *testing.T) {
	file := filepath.Join(t.TempDir(), BanFileName)
	clock := &skewClock{}
	log := &auditLog{}
	tr := NewTrust(TrustConfig{BanFile: file, BanFor: time.Hour, Clock: clock, Audit: log})
	if !tr.Ban("liar", h0, "chunk 3: hash mismatch") || tr.Ban("liar", h0, "again") {
		t.Fatal("Ban reports a first ban as new and a second one as not")
	}
	if log.count(audit.KindBan, "liar") != 1 {
		t.Fatalf("audit has %d ban events for liar, want 1", log.count(audit.KindBan, "liar"))
	}

	// A restart: a new Trust on the same file.
	tr.Flush()
	clock.Advance(59 * time.Minute)
	tr2 := NewTrust(TrustConfig{BanFile: file, BanFor: time.Hour, Clock: clock, Audit: log})
	if !tr2.Banned("liar") || tr2.Banned("honest") {
		t.Fatalf("after a restart: liar banned %v, honest banned %v", tr2.Banned("liar"), tr2.Banned("honest"))
	}
	clock.Advance(2 * time.Minute)
	if tr2.Banned("liar") {
		t.Fatal("liar still banned after the ban's expiry")
	}
	if log.count(audit.KindUnban, "liar") != 1 {
		t.Fatalf("audit has %d unban events for liar, want 1", log.count(audit.KindUnban, "liar"))
	}
	// The expiry was saved: a third start does not bring the ban back,
	// even on a clock that has not moved.
	clock.Advance(-time.Hour)
	tr2.Flush()
	if tr3 := NewTrust(TrustConfig{BanFile: file, Clock: clock}); tr3.Banned("liar") || tr3.Bans() != 0 {
		t.Fatalf("expired ban came back after a restart (%d bans)", tr3.Bans())
	}
}

var h0 = testContentID()

func testContentID() (c core.ContentID) {
	c[0] = 7
	return c
}

func TestCorruptBanFileStartsEmpty(t *testing.T) {
	for name, data := range map[string][]byte{
		"garbage":   []byte("\x00\x01not json"),
		"truncated": []byte(`{"version":1,"bans":[{"peer":"a","reason":"x","until":"2030-01-01T00:00:00Z"}`),
		"version":   []byte(`{"version":9,"bans":[]}`),
		"no expiry": []byte(`{"version":1,"bans":[{"peer":"a","reason":"x"}]}`),
		"too big":   bytes.Repeat([]byte(" "), 3*1024+1024+1),
	} {
		t.Run(name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), BanFileName)
			if err := os.WriteFile(file, data, 0o600); err != nil {
				t.Fatal(err)
			}
			tr := NewTrust(TrustConfig{BanFile: file, MaxBans: 3})
			if tr.Bans() != 0 {
				t.Fatalf("%d bans from a corrupt file, want 0", tr.Bans())
			}
			tr.Ban("liar", h0, "bad chunk")
			tr.Flush()
			if tr2 := NewTrust(TrustConfig{BanFile: file, MaxBans: 3}); !tr2.Banned("liar") || tr2.Bans() != 1 {
				t.Fatalf("the file rewritten after a corrupt one holds %d bans, want liar's", tr2.Bans())
			}
		})
	}
}

func TestBanListBounded(t *testing.T) {
	file := filepath.Join(t.TempDir(), BanFileName)
	clock := &skewClock{}
	tr := NewTrust(TrustConfig{BanFile: file, MaxBans: 3, Clock: clock})
	for _, id := range []netx.PeerID{"a", "b", "c", "d", "e"} {
		tr.Ban(id, h0, "bad chunk")
		clock.Advance(time.Minute)
	}
	if tr.Bans() != 3 {
		t.Fatalf("%d bans kept, bound 3", tr.Bans())
	}
	tr.Flush()
	tr2 := NewTrust(TrustConfig{BanFile: file, MaxBans: 3, Clock: clock})
	for id, want := range map[netx.PeerID]bool{"a": false, "b": false, "c": true, "d": true, "e": true} {
		if tr2.Banned(id) != want {
			t.Errorf("after a restart %s banned %v, want %v (the soonest-expiring bans make room)", id, !want, want)
		}
	}
}

func TestBannedLiarStaysBannedAfterRestart(t *testing.T) {
	h := newHarness(t, "liar", 5, 256<<10, 2<<20)
	bad := h.addRogue("rogue")
	rogueID := bad.host.ID()
	clock := &skewClock{}
	log := &auditLog{}
	file := filepath.Join(t.TempDir(), BanFileName)
	var mu sync.Mutex
	var reports []Offence
	cfg := TrustConfig{BanFile: file, Clock: clock, Audit: log, Report: func(o Offence) {
		mu.Lock()
		defer mu.Unlock()
		reports = append(reports, o)
	}}
	storeDir := t.TempDir()

	tr1 := NewTrust(cfg)
	p := h.addPeerWith("honest", true, tr1, storeDir)
	h.waitAll([]*hpeer{p}, time.Minute)
	h.checkBytes(p)
	if !p.sess.Banned(rogueID) || p.sess.Stats().BadChunks == 0 {
		t.Fatalf("rogue banned %v after %d bad chunks", p.sess.Banned(rogueID), p.sess.Stats().BadChunks)
	}
	if p.sess.trust.Score(rogueID) >= policy.DistrustScore {
		t.Fatalf("rogue scores %v after a bad chunk, want below %v", p.sess.trust.Score(rogueID), policy.DistrustScore)
	}
	if log.count(audit.KindBan, string(rogueID)) != 1 {
		t.Fatalf("audit has %d ban events for the rogue, want 1", log.count(audit.KindBan, string(rogueID)))
	}
	mu.Lock()
	if len(reports) == 0 {
		t.Fatal("no offence reported")
	}
	o := reports[0]
	mu.Unlock()
	lie := bytes.Repeat([]byte{byte(o.Chunk) ^ 0x5a}, h.content.Size(o.Chunk)) // what the rogue sends
	if o.Peer != rogueID || o.Content != h.content.ID || o.Hash != sha256.Sum256(lie) {
		t.Fatalf("offence %+v: want the rogue, the content and the SHA-256 of the bytes it sent", o)
	}
	p.stop()
	tr1.Flush()

	// Restarted on the same cache directory: the ban is back before any
	// stream, so neither side's handshake gets through.
	before := bad.handshakes.Load()
	tr2 := NewTrust(cfg)
	t.Cleanup(tr2.Flush) // after p2 stops (cleanups run last first), before the ban file's directory goes
	p2 := h.addPeerWith("honest", true, tr2, storeDir)
	<-p2.sess.Done() // everything is in the store already
	if n := bad.handshakes.Load() - before; n != 0 {
		t.Fatalf("restarted peer dialled the banned rogue (%d handshakes)", n)
	}
	if hs := dialAndHandshake(t, h, bad.host, p2); hs != nil {
		t.Fatalf("restarted peer answered the banned rogue's handshake with %v bits", hs.Bits.Len())
	}

	// After the expiry the rogue is a stranger again.
	clock.Advance(DefaultBanFor + time.Minute)
	if p2.sess.Banned(rogueID) {
		t.Fatal("rogue still banned after the expiry")
	}
	if log.count(audit.KindUnban, string(rogueID)) != 1 {
		t.Fatalf("audit has %d unban events for the rogue, want 1", log.count(audit.KindUnban, string(rogueID)))
	}
	if err := p2.node.Connect(h.ctx, p2.sess, rogueID, nil); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "rogue attached after its ban expired", func() bool {
		return slices.Contains(p2.sess.Peers(), rogueID)
	})
}

// dialAndHandshake opens a wire stream from host to p and sends a
// handshake; it returns p's handshake, or nil if p refused.
func dialAndHandshake(t *testing.T, h *harness, host netx.Host, p *hpeer) *wire.Handshake {
	t.Helper()
	st, err := host.NewStream(h.ctx, p.node.ID(), nil, wire.ProtocolID)
	if err != nil {
		return nil
	}
	defer st.Reset()
	bits := wire.NewBitfield(h.content.Len())
	bits.SetAll()
	if err := wire.WriteMessage(st, &wire.Handshake{Content: h.content.ID, Client: "rogue/1", Bits: bits}); err != nil {
		return nil
	}
	m, err := wire.NewReader(st, wire.MaxFrame).Next()
	if err != nil {
		return nil
	}
	hs, _ := m.(*wire.Handshake)
	return hs
}

// TestDistrustedSeedServesLittle runs on virtual time (synctest), so a
// loaded machine does not change who serves what.
func TestDistrustedSeedServesLittle(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const size = 8 << 20
		h := newHarness(t, "distrust", 6, 128<<10, size)
		good := h.addPeer("seed-good", true)
		h.waitAll([]*hpeer{good}, time.Minute)
		bad := h.addPeer("seed-bad", true)
		h.waitAll([]*hpeer{bad}, time.Minute)
		// The leecher has seen seed-bad break the protocol recently.
		tr := NewTrust(TrustConfig{})
		tr.Record(bad.node.ID(), policy.Violated, 0)
		before := bad.sess.Stats().BytesUploaded
		leech := h.addPeerWith("leech", false, tr, "")
		h.waitAll([]*hpeer{leech}, time.Minute)
		h.checkBytes(leech)
		fromBad := bad.sess.Stats().BytesUploaded - before
		t.Logf("distrusted seed uploaded %d of %d bytes", fromBad, size)
		if fromBad > size*2/5 {
			t.Fatalf("distrusted seed uploaded %d of %d bytes while a trusted seed held every chunk; want at most two fifths (without reputation it is about half)", fromBad, size)
		}
		if tr.Score(good.node.ID()) < 1 {
			t.Fatalf("trusted seed scores %v after delivering, want at least 1", tr.Score(good.node.ID()))
		}
		good.stop()
		bad.stop()
		leech.stop()
	})
}

func FuzzDecodeBans(f *testing.F) {
	f.Add([]byte(`{"version":1,"bans":[{"peer":"12D3KooW","content":"` + h0.String() + `","reason":"chunk 1: hash mismatch","until":"2030-01-01T00:00:00Z"}]}`))
	f.Add([]byte(`{"version":1,"bans":[]}`))
	f.Add([]byte(`{"version":1,"bans":[{"peer":"a","until":"0001-01-01T00:00:00Z"}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		bans, err := decodeBans(data, 8)
		if err != nil {
			if !errors.Is(err, ErrBadBanFile) {
				t.Fatalf("error %v does not wrap ErrBadBanFile", err)
			}
			return
		}
		enc, err := json.Marshal(banFile{Version: banFileVersion, Bans: bans})
		if err != nil {
			t.Fatal(err)
		}
		again, err := decodeBans(enc, 8)
		if err != nil {
			t.Fatalf("re-decode of %s: %v", enc, err)
		}
		if len(again) != len(bans) {
			t.Fatalf("round trip: %d bans, then %d", len(bans), len(again))
		}
		for k := range bans {
			if again[k].Peer != bans[k].Peer || again[k].Content != bans[k].Content || again[k].Reason != bans[k].Reason || !again[k].Until.Equal(bans[k].Until) {
				t.Fatalf("round trip changed ban %d: %+v, then %+v", k, bans[k], again[k])
			}
		}
	})
}

package agent

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/shoal-cdn/shoal/control"
	"github.com/shoal-cdn/shoal/core"
	"github.com/shoal-cdn/shoal/live"
	"github.com/shoal-cdn/shoal/manifest"
	"github.com/shoal-cdn/shoal/netx"
	"github.com/shoal-cdn/shoal/swarm"
	"github.com/shoal-cdn/shoal/wire"
)

// operatorKey is the test operator's key; otherOperator is a key no test
// peer trusts.
var (
	operatorKey   = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{0x0b}, 32))
	otherOperator = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{0x0c}, 32))
)

func operatorKeys() *manifest.KeySet { return manifest.NewKeySet(manifest.PublicOf(operatorKey)) }

// signedPolicy signs a policy of serial with rules under key.
func signedPolicy(t testing.TB, key ed25519.PrivateKey, serial uint64, rules ...control.Rule) []byte {
	t.Helper()
	p := &control.Policy{Serial: serial, Rules: rules, Issued: time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)}
	if err := p.Sign(key); err != nil {
		t.Fatal(err)
	}
	b, err := p.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// memPolicyPeer is a peer on an in-memory network, no tracker, obeying the
// test operator, with cfg's policy fields.
func memPolicyPeer(t *testing.T, ctx context.Context, fx *fixture, cacheDir string, cfg PeerConfig) *Peer {
	t.Helper()
	h, err := netx.NewMemNetwork().NewHost("")
	if err != nil {
		t.Fatal(err)
	}
	cfg.CacheDir, cfg.Origin, cfg.Host = cacheDir, fx.url, h
	cfg.Trust = manifest.NewKeySet(manifest.PublicOf(fx.key))
	if cfg.MeteredProbe == nil {
		cfg.MeteredProbe = func(context.Context) (bool, error) { return false, nil }
	}
	if cfg.PowerSupplyDir == "" {
		cfg.PowerSupplyDir = t.TempDir() // no supplies: on mains
	}
	p, err := NewPeer(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// TestPolicySwitchesSessionModes: a policy's kill switch, region rule and
// upload cap reach every joined session and the upload bucket at once; the
// peer's own --p2p stays the floor; status and metrics say why.
func TestPolicySwitchesSessionModes(t *testing.T) {
	fx := publishTree(t, "pol", 61, map[string]int{"a.bin": 3 * testChunk})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p := memPolicyPeer(t, ctx, fx, t.TempDir(), PeerConfig{OperatorKeys: operatorKeys(), Region: "a"})
	sess, err := p.Join(ctx, fx.id)
	if err != nil {
		t.Fatal(err)
	}
	mode := func() swarm.Mode { return sess.Mode() }
	if mode() != swarm.ModeOn {
		t.Fatalf("no policy: mode %v, want on", mode())
	}
	// The kill switch for region b leaves this region-a peer on.
	if err := p.OfferPolicy(signedPolicy(t, operatorKey, 1, control.Rule{Match: control.Match{Region: "b"}, P2P: control.Off})); err != nil {
		t.Fatal(err)
	}
	if mode() != swarm.ModeOn {
		t.Fatalf("region b's kill switch: region-a peer in mode %v, want on", mode())
	}
	// Region a's kill switch turns it off, with the rule named.
	if err := p.OfferPolicy(signedPolicy(t, operatorKey, 2, control.Rule{Match: control.Match{Region: "a"}, P2P: control.Off, UploadBps: 100 << 10})); err != nil {
		t.Fatal(err)
	}
	if mode() != swarm.ModeOff {
		t.Fatalf("region a's kill switch: mode %v, want off", mode())
	}
	st := p.Status()
	if st.Policy.Serial != 2 || st.Policy.P2P != control.Off || st.Policy.UploadBps != 100<<10 || st.Policy.ModeChanges != 1 {
		t.Fatalf("policy status %+v: want serial 2, p2p off, cap 102400, 1 mode change", st.Policy)
	}
	if sw := st.Swarms[0]; sw.Mode != "off" || len(sw.ModeWhy) != 1 || !strings.Contains(sw.ModeWhy[0], "rule 1") {
		t.Fatalf("swarm status mode %q why %q: want off because of rule 1", sw.Mode, sw.ModeWhy)
	}
	// Back on.
	if err := p.OfferPolicy(signedPolicy(t, operatorKey, 3, control.Rule{P2P: control.On})); err != nil {
		t.Fatal(err)
	}
	if mode() != swarm.ModeOn {
		t.Fatalf("p2p on again: mode %v, want on", mode())
	}
	// A content joined later starts in the policy's mode.
	fx2 := publishTree(t, "pol2", 62, map[string]int{"b.bin": 2 * testChunk})
	if err := p.OfferPolicy(signedPolicy(t, operatorKey, 4, control.Rule{Match: control.Match{Content: fx2.id.String()}, P2P: control.LeechOnly})); err != nil {
		t.Fatal(err)
	}
	p2 := memPolicyPeer(t, ctx, fx2, t.TempDir(), PeerConfig{OperatorKeys: operatorKeys()})
	if err := p2.OfferPolicy(signedPolicy(t, operatorKey, 4, control.Rule{Match: control.Match{Content: fx2.id.String()}, P2P: control.LeechOnly})); err != nil {
		t.Fatal(err)
	}
	s2, err := p2.Join(ctx, fx2.id)
	if err != nil {
		t.Fatal(err)
	}
	if s2.Mode() != swarm.ModeLeechOnly {
		t.Fatalf("content rule: new session in mode %v, want leech-only", s2.Mode())
	}
	if mode() != swarm.ModeOn {
		t.Fatalf("content rule for another content: mode %v, want on", mode())
	}
	if changes := p.Status().Policy.ModeChanges; changes != 2 {
		t.Fatalf("mode changes %d, want 2 (off, on)", changes)
	}
}

// TestOwnFlagsOnlyStricter: a peer run with --p2p leech-only stays
// leech-only under a policy that says on, and goes off under one that
// says off; its --upload-limit stays the cap under a looser policy cap.
func TestOwnFlagsOnlyStricter(t *testing.T) {
	fx := publishTree(t, "own", 63, map[string]int{"a.bin": 2 * testChunk})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p := memPolicyPeer(t, ctx, fx, t.TempDir(), PeerConfig{OperatorKeys: operatorKeys(), P2P: control.LeechOnly, UploadLimit: 50 << 10})
	sess, err := p.Join(ctx, fx.id)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.OfferPolicy(signedPolicy(t, operatorKey, 1, control.Rule{P2P: control.On, UploadBps: 1 << 20})); err != nil {
		t.Fatal(err)
	}
	if sess.Mode() != swarm.ModeLeechOnly {
		t.Fatalf("policy on, --p2p leech-only: mode %v, want leech-only", sess.Mode())
	}
	if st := p.PolicyStatus(); st.UploadBps != 50<<10 || len(st.Why) != 1 || st.Why[0] != "local: p2p leech-only" {
		t.Fatalf("status %+v: want cap 51200 and why [local: p2p leech-only]", st)
	}
	if err := p.OfferPolicy(signedPolicy(t, operatorKey, 2, control.Rule{P2P: control.Off})); err != nil {
		t.Fatal(err)
	}
	if sess.Mode() != swarm.ModeOff {
		t.Fatalf("policy off, --p2p leech-only: mode %v, want off", sess.Mode())
	}
}

// TestPolicyRefusals: an older or equal serial, a policy signed by a key
// that is not an operator key, a forged one and garbage are all refused,
// and the gossip validator drops them (the forged one with blame).
func TestPolicyRefusals(t *testing.T) {
	fx := publishTree(t, "ref", 64, map[string]int{"a.bin": testChunk})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p := memPolicyPeer(t, ctx, fx, t.TempDir(), PeerConfig{OperatorKeys: operatorKeys()})
	off := signedPolicy(t, operatorKey, 5, control.Rule{P2P: control.Off})
	if err := p.OfferPolicy(off); err != nil {
		t.Fatal(err)
	}
	old := signedPolicy(t, operatorKey, 4, control.Rule{P2P: control.On})
	if err := p.OfferPolicy(old); !errors.Is(err, ErrStalePolicy) {
		t.Fatalf("serial 4 after 5: %v, want ErrStalePolicy", err)
	}
	same := signedPolicy(t, operatorKey, 5, control.Rule{P2P: control.On})
	if err := p.OfferPolicy(same); !errors.Is(err, ErrStalePolicy) {
		t.Fatalf("another serial 5: %v, want ErrStalePolicy", err)
	}
	foreign := signedPolicy(t, otherOperator, 9, control.Rule{P2P: control.On})
	if err := p.OfferPolicy(foreign); !errors.Is(err, control.ErrUntrusted) {
		t.Fatalf("policy by a non-operator key: %v, want control.ErrUntrusted", err)
	}
	forged := bytes.Replace(signedPolicy(t, operatorKey, 9, control.Rule{P2P: control.Off}), []byte(`"p2p":"off"`), []byte(`"p2p":"on" `), 1)
	forged = bytes.Replace(forged, []byte(`"on" `), []byte(`"on"`), 1)
	if err := p.OfferPolicy(forged); err == nil {
		t.Fatal("a policy altered after signing was taken")
	}
	if st := p.PolicyStatus(); st.Serial != 5 || st.P2P != control.Off {
		t.Fatalf("after the refusals: serial %d p2p %s, want 5 off", st.Serial, st.P2P)
	}
	for _, tc := range []struct {
		name string
		b    []byte
		want live.Verdict
	}{
		{"held", off, live.Accept},
		{"older", old, live.Ignore},
		{"same serial, other bytes", same, live.Ignore},
		{"non-operator key", foreign, live.Ignore},
		{"garbage", []byte(`{"version":1}`), live.Reject},
		{"newer", signedPolicy(t, operatorKey, 6, control.Rule{P2P: control.On}), live.Accept},
	} {
		if v := p.pol.check(tc.b); v != tc.want {
			t.Errorf("gossip validator, %s: %v, want %v", tc.name, v, tc.want)
		}
	}
	// A peer without operator keys takes no policy at all.
	q := memPolicyPeer(t, ctx, fx, t.TempDir(), PeerConfig{})
	if err := q.OfferPolicy(off); err == nil {
		t.Fatal("a peer without operator keys took a policy")
	}
	if st := q.PolicyStatus(); st.OperatorKeys != 0 || st.Serial != 0 || st.P2P != control.On {
		t.Fatalf("peer without operator keys: %+v", st)
	}
}

// TestPolicyKeptAcrossRestart: a restarted peer obeys the policy it held
// before it reaches the tracker or any peer.
func TestPolicyKeptAcrossRestart(t *testing.T) {
	fx := publishTree(t, "rst", 65, map[string]int{"a.bin": 2 * testChunk})
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	p := memPolicyPeer(t, ctx, fx, dir, PeerConfig{OperatorKeys: operatorKeys()})
	if err := p.OfferPolicy(signedPolicy(t, operatorKey, 7, control.Rule{P2P: control.Off})); err != nil {
		t.Fatal(err)
	}
	cancel()
	p.Close()
	ctx2, cancel2 := context.WithCancel(context.Background())
	defer cancel2()
	q := memPolicyPeer(t, ctx2, fx, dir, PeerConfig{OperatorKeys: operatorKeys()})
	if st := q.PolicyStatus(); st.Serial != 7 || st.Source != "cache" || st.P2P != control.Off {
		t.Fatalf("restarted peer: %+v, want serial 7 from the cache, p2p off", st)
	}
	sess, err := q.Join(ctx2, fx.id)
	if err != nil {
		t.Fatal(err)
	}
	if sess.Mode() != swarm.ModeOff {
		t.Fatalf("restarted peer's session: mode %v, want off", sess.Mode())
	}
}

// TestMeteredAndBatteryFacts: the policy's metered and battery rules
// follow the system's state as the peer re-reads it.
func TestMeteredAndBatteryFacts(t *testing.T) {
	fx := publishTree(t, "met", 66, map[string]int{"a.bin": 2 * testChunk})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var metered bool
	supplies := writeSupplies(t, map[string]map[string]string{"BAT0": {"type": "Battery", "status": "Charging"}, "AC": {"type": "Mains", "online": "1"}})
	p := memPolicyPeer(t, ctx, fx, t.TempDir(), PeerConfig{
		OperatorKeys: operatorKeys(), FactsPoll: time.Hour, PowerSupplyDir: supplies,
		MeteredProbe: func(context.Context) (bool, error) { return metered, nil },
	})
	sess, err := p.Join(ctx, fx.id)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.OfferPolicy(signedPolicy(t, operatorKey, 1, control.Rule{Metered: control.LeechOnly, Battery: control.Off})); err != nil {
		t.Fatal(err)
	}
	if sess.Mode() != swarm.ModeOn {
		t.Fatalf("on mains, unmetered: mode %v, want on", sess.Mode())
	}
	metered = true
	p.RecheckFacts(ctx)
	if sess.Mode() != swarm.ModeLeechOnly || !p.PolicyStatus().Metered {
		t.Fatalf("metered: mode %v (status %+v), want leech-only", sess.Mode(), p.PolicyStatus())
	}
	writeFile(t, supplies+"/AC/online", "0\n")
	writeFile(t, supplies+"/BAT0/status", "Discharging\n")
	p.RecheckFacts(ctx)
	if sess.Mode() != swarm.ModeOff || !p.PolicyStatus().OnBattery {
		t.Fatalf("metered, on battery: mode %v, want off", sess.Mode())
	}
	metered = false
	writeFile(t, supplies+"/AC/online", "1\n")
	p.RecheckFacts(ctx)
	if sess.Mode() != swarm.ModeOn {
		t.Fatalf("back on mains, unmetered: mode %v, want on", sess.Mode())
	}
	// Told it is metered, a peer does not ask the system.
	q := memPolicyPeer(t, ctx, fx, t.TempDir(), PeerConfig{OperatorKeys: operatorKeys(), Metered: ToggleYes,
		MeteredProbe: func(context.Context) (bool, error) { t.Error("--metered yes read the system"); return false, nil }})
	if !q.PolicyStatus().Metered {
		t.Fatal("--metered yes: status says not metered")
	}
}

// TestNoMetadataUploadWithP2POff: with P2P off (or leech-only) for a
// content, the peer serves peers neither its manifest nor (peer-wide) hash
// layers and root pages: they are uploads too.
func TestNoMetadataUploadWithP2POff(t *testing.T) {
	fx := publishTreeVersion(t, "polmeta", 63, map[string]int{"a.bin": 3 * testChunk}, manifest.VersionPaged)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p := memPolicyPeer(t, ctx, fx, t.TempDir(), PeerConfig{OperatorKeys: operatorKeys()})
	sess, err := p.Join(ctx, fx.id)
	if err != nil {
		t.Fatal(err)
	}
	f, err := p.File(ctx, sess, 0) // its root from the content's root page
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.cache.hashLayer(ctx, p.origin, f); err != nil {
		t.Fatal(err)
	}
	serves := func() (manifest, layer bool) {
		_, manifest = p.serveMeta(wire.MetaManifest, core.Hash(fx.id))
		_, layer = p.serveMeta(wire.MetaHashLayer, f.Root)
		_, page := p.serveMeta(wire.MetaRootPage, fx.m.RootPages[0])
		if page != layer {
			t.Errorf("serves the hash layer %v but the root page %v", layer, page)
		}
		return
	}
	if m, l := serves(); !m || !l {
		t.Fatalf("P2P on: serves manifest %v, hash layer %v; want both", m, l)
	}
	for serial, mode := range []control.P2P{control.LeechOnly, control.Off} {
		if err := p.OfferPolicy(signedPolicy(t, operatorKey, uint64(serial+1), control.Rule{P2P: mode})); err != nil {
			t.Fatal(err)
		}
		if m, l := serves(); m || l {
			t.Errorf("P2P %s: serves manifest %v, hash layer %v; want neither", mode, m, l)
		}
	}
}

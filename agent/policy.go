package agent

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/shoal-cdn/shoal/control"
	"github.com/shoal-cdn/shoal/core"
	"github.com/shoal-cdn/shoal/discovery"
	"github.com/shoal-cdn/shoal/live"
	"github.com/shoal-cdn/shoal/manifest"
	"github.com/shoal-cdn/shoal/swarm"
	"github.com/shoal-cdn/shoal/token"
)

// PolicyTopic is the GossipSub topic operator policies spread on.
const PolicyTopic = "/shoal/policy/1"

// PolicyFile is where a peer keeps the operator policy it holds, in its
// cache directory, so a restarted peer obeys it before it reaches anyone.
const PolicyFile = "operator-policy.json"

// policyRepublish is how often a peer passes the policy it holds on by
// gossip again (±20 %), so peers that joined the topic after it spread, and
// peers without a tracker, learn it too.
const policyRepublish = 2 * time.Minute

// noPolicyWait is how long a peer waits before asking a tracker that
// serves no policy (no operator key) again (±50 %).
const noPolicyWait = 10 * time.Minute

// ErrStalePolicy means a policy was refused because its serial is not above
// the one held: a replayed old policy never turns back a kill switch.
var ErrStalePolicy = errors.New("policy not newer than the one held")

// policyPoller is the tracker's policy long poll (discovery's tracker
// clients have it).
type policyPoller interface {
	Policy(ctx context.Context, after uint64) ([]byte, error)
}

// operatorPolicy is what the peer knows of its operator's policy and of
// itself, and applies both to every session: their P2P mode and the
// peer-wide upload cap.
type operatorPolicy struct {
	p    *Peer
	keys *manifest.KeySet // nil: no policy is taken from anywhere
	// readMetered and readBattery read the system (auto facts only).
	readMetered func(context.Context) (bool, error)
	readBattery func() (bool, error)

	mu          sync.Mutex
	cur         *control.Policy                     // guarded by mu: the newest valid policy; nil: none
	raw         []byte                              // guarded by mu: its encoding, as signed
	source      string                              // guarded by mu: where cur came from
	metered     bool                                // guarded by mu
	battery     bool                                // guarded by mu
	peerWide    control.Decision                    // guarded by mu: the decision with no content
	decisions   map[core.ContentID]control.Decision // guarded by mu: each session's, as applied
	modeChanges int64                               // guarded by mu: sessions' mode changes
	publish     func([]byte)                        // guarded by mu: gossip; nil without

	applyMu sync.Mutex // serialises applying decisions to sessions
}

func newOperatorPolicy(p *Peer) *operatorPolicy {
	e := &operatorPolicy{p: p, keys: p.cfg.OperatorKeys, decisions: map[core.ContentID]control.Decision{}}
	if e.keys != nil && len(e.keys.Keys()) == 0 {
		e.keys = nil
	}
	e.readMetered = p.cfg.MeteredProbe
	if e.readMetered == nil {
		e.readMetered = func(ctx context.Context) (bool, error) { return meteredNM(ctx, execCommand) }
	}
	dir := p.cfg.PowerSupplyDir
	if dir == "" {
		dir = DefaultPowerSupplyDir
	}
	e.readBattery = func() (bool, error) { return OnBattery(dir) }
	return e
}

// readFacts reads the metered and battery state (from the system when the
// config says auto) and reports whether either changed.
func (e *operatorPolicy) readFacts(ctx context.Context) bool {
	metered, battery := e.p.cfg.Metered == ToggleYes, e.p.cfg.OnBattery == ToggleYes
	var err error
	if e.p.cfg.Metered == ToggleAuto || e.p.cfg.Metered == "" {
		if metered, err = e.readMetered(ctx); err != nil {
			e.p.log.Warn("metered network state unknown: taken as not metered", "err", err)
		}
	}
	if e.p.cfg.OnBattery == ToggleAuto || e.p.cfg.OnBattery == "" {
		if battery, err = e.readBattery(); err != nil {
			e.p.log.Warn("battery state unknown: taken as on mains", "err", err)
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if metered == e.metered && battery == e.battery {
		return false
	}
	e.p.log.Info("power and network state", "metered", metered, "on_battery", battery)
	e.metered, e.battery = metered, battery
	return true
}

// start loads the policy kept in the cache and reads the facts once, so
// the first sessions start in the right mode.
func (e *operatorPolicy) start(ctx context.Context) {
	if e.keys == nil {
		e.p.log.Info("no operator keys (--operator-key): no operator policy is applied", "p2p", e.local())
		e.apply()
		return
	}
	e.readFacts(ctx)
	if b, err := os.ReadFile(e.p.cache.file(PolicyFile)); err == nil {
		if _, err := e.offer(b, "cache"); err != nil {
			e.p.log.Warn("cached operator policy ignored", "file", PolicyFile, "err", err)
		}
	}
	e.apply()
	e.p.log.Info("operator policy", "operator_keys", len(e.keys.Keys()), "serial", e.serial(), "p2p", e.peerWideDecision().P2P)
}

func (e *operatorPolicy) local() control.P2P {
	if e.p.cfg.P2P == "" {
		return control.On
	}
	return e.p.cfg.P2P
}

// serial is the serial of the policy held (0: none).
func (e *operatorPolicy) serial() uint64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.cur == nil {
		return 0
	}
	return e.cur.Serial
}

// offer takes a signed policy from source (tracker, gossip, cache, api):
// when it verifies under an operator key and is newer than the one held it
// replaces it, is saved in the cache, passed on by gossip and applied.
func (e *operatorPolicy) offer(b []byte, source string) (bool, error) {
	if e.keys == nil {
		return false, fmt.Errorf("operator policy from %s: this peer has no operator keys (--operator-key)", source)
	}
	pol, err := control.Decode(b, e.keys)
	if err != nil {
		return false, fmt.Errorf("operator policy from %s: %w", source, err)
	}
	e.mu.Lock()
	if !pol.Newer(e.cur) {
		held := e.cur.Serial
		e.mu.Unlock()
		return false, fmt.Errorf("operator policy %d from %s: %w (serial %d)", pol.Serial, source, ErrStalePolicy, held)
	}
	e.cur, e.raw, e.source = pol, slices.Clone(b), source
	publish := e.publish
	e.mu.Unlock()
	e.p.log.Info("operator policy taken", "serial", pol.Serial, "from", source, "rules", len(pol.Rules), "experiments", len(pol.Experiments))
	if source != "cache" {
		if err := writeFileAtomic(e.p.cache.file(PolicyFile), b); err != nil {
			e.p.log.Warn("operator policy not saved", "err", err)
		}
	}
	if publish != nil && source != "gossip" {
		publish(b)
	}
	e.apply()
	return true, nil
}

// check is the gossip validator: a policy that verifies under an operator
// key and is newer than the one held (or is that one) passes; one from a
// key not ours is dropped without blame, a forged or malformed one is
// rejected.
func (e *operatorPolicy) check(b []byte) live.Verdict {
	pol, err := control.Decode(b, e.keys)
	if err != nil {
		if errors.Is(err, control.ErrUntrusted) {
			return live.Ignore
		}
		return live.Reject
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if pol.Newer(e.cur) || string(e.raw) == string(b) {
		return live.Accept
	}
	return live.Ignore
}

// facts are the peer's facts for content ("" for the peer-wide decision).
func (e *operatorPolicy) facts(content string) control.Facts {
	e.mu.Lock()
	metered, battery := e.metered, e.battery
	e.mu.Unlock()
	f := control.Facts{
		Peer: string(e.p.host.ID()), Content: content, Region: e.p.cfg.Region, Device: e.p.cfg.DeviceClass,
		Metered: metered, OnBattery: battery, Consented: e.p.cfg.Consent,
	}
	if tok := e.p.currentToken(); tok != "" {
		if t, err := token.Decode(tok); err == nil {
			f.Tenant = t.Tenant
		}
	}
	return f
}

func (e *operatorPolicy) decide(pol *control.Policy, content string) control.Decision {
	return pol.Decide(e.facts(content)).Stricter(e.local(), int64(e.p.cfg.UploadLimit))
}

// modeOf is the swarm mode of a decision.
func modeOf(p control.P2P) swarm.Mode {
	switch p {
	case control.Off:
		return swarm.ModeOff
	case control.LeechOnly:
		return swarm.ModeLeechOnly
	}
	return swarm.ModeOn
}

// modeFor is the mode a session of id starts in.
func (e *operatorPolicy) modeFor(id core.ContentID) swarm.Mode {
	e.mu.Lock()
	pol := e.cur
	e.mu.Unlock()
	return modeOf(e.decide(pol, id.String()).P2P)
}

// apply decides for the peer as a whole (the upload cap) and for every
// session, and switches the sessions whose mode changed.
func (e *operatorPolicy) apply() {
	e.applyMu.Lock()
	defer e.applyMu.Unlock()
	e.mu.Lock()
	pol := e.cur
	e.mu.Unlock()
	pw := e.decide(pol, "")
	if e.p.upload != nil {
		e.p.upload.SetRate(float64(pw.UploadBps))
	}
	seen := map[core.ContentID]bool{}
	for _, s := range e.p.Sessions() {
		seen[s.Content().ID] = true
		e.applyTo(s, pol)
	}
	// The peer-wide decision (and so the serial status shows) changes last:
	// once it shows a policy, every session obeys it.
	e.mu.Lock()
	prev := e.peerWide
	e.peerWide = pw
	for id := range e.decisions {
		if !seen[id] {
			delete(e.decisions, id)
		}
	}
	e.mu.Unlock()
	if prev.P2P != pw.P2P || prev.UploadBps != pw.UploadBps {
		e.p.log.Info("p2p policy", "p2p", pw.P2P, "upload_bps", pw.UploadBps, "serial", pw.Serial, "why", pw.Why)
	}
}

// applySession applies the policy to a session just started.
func (e *operatorPolicy) applySession(s *swarm.Session) {
	e.applyMu.Lock()
	defer e.applyMu.Unlock()
	e.mu.Lock()
	pol := e.cur
	e.mu.Unlock()
	e.applyTo(s, pol)
}

// applyTo sets s's mode from pol; called with applyMu held.
func (e *operatorPolicy) applyTo(s *swarm.Session, pol *control.Policy) {
	id := s.Content().ID
	d := e.decide(pol, id.String())
	m := modeOf(d.P2P)
	e.mu.Lock()
	e.decisions[id] = d
	old := s.Mode()
	if old != m {
		e.modeChanges++
	}
	e.mu.Unlock()
	if old != m {
		s.SetMode(m)
		e.p.log.Info("p2p mode", "content", id, "mode", m, "was", old, "serial", d.Serial, "why", d.Why)
	}
}

// run keeps the policy current until ctx ends: gossip, the tracker's long
// poll, and the system's metered and battery state.
func (e *operatorPolicy) run(ctx context.Context) {
	if e.keys == nil {
		return
	}
	if g := e.p.gossip(); g != nil {
		publish, err := g.Subscribe(ctx, PolicyTopic, e.check, func(b []byte) {
			if _, err := e.offer(b, "gossip"); err != nil && !errors.Is(err, ErrStalePolicy) {
				e.p.log.Debug("operator policy by gossip", "err", err)
			}
		})
		if err != nil {
			e.p.log.Warn("operator policy by gossip unavailable: from the tracker only", "err", err)
		} else {
			e.mu.Lock()
			e.publish = publish
			e.mu.Unlock()
			e.p.goOwned(func() { e.republish(ctx, publish) })
		}
	}
	if e.p.tracker != nil {
		e.p.goOwned(func() { e.longPoll(ctx, e.p.tracker) })
	}
	poll := e.p.cfg.FactsPoll
	if poll <= 0 {
		poll = DefaultFactsPoll
	}
	auto := e.p.cfg.Metered == ToggleAuto || e.p.cfg.Metered == "" || e.p.cfg.OnBattery == ToggleAuto || e.p.cfg.OnBattery == ""
	if !auto {
		return
	}
	t := time.NewTicker(poll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if e.readFacts(ctx) {
				e.apply()
			}
		}
	}
}

// republish passes the held policy on by gossip every policyRepublish.
func (e *operatorPolicy) republish(ctx context.Context, publish func([]byte)) {
	for {
		d := time.Duration(float64(policyRepublish) * (0.8 + 0.4*rand.Float64()))
		if core.Sleep(ctx, d) != nil {
			return
		}
		e.mu.Lock()
		raw := e.raw
		e.mu.Unlock()
		if raw != nil {
			publish(raw)
		}
	}
}

// minPolicyPoll is the least time between the starts of two policy polls.
const minPolicyPoll = time.Second

// longPoll keeps one policy request open on the tracker: it answers when
// the policy's serial passes the one held, so a kill switch reaches the
// peer within a round trip. Failures back off (1 s doubling to 1 min, with
// jitter, at least what the tracker's Retry-After asks; noPolicyWait when
// the tracker serves no policy).
func (e *operatorPolicy) longPoll(ctx context.Context, lp policyPoller) {
	failures := 0
	var last time.Time
	for ctx.Err() == nil {
		// At most one poll a second, whatever the tracker answers: a
		// tracker holding polls only briefly cannot make its peers spin.
		if wait := time.Until(last.Add(minPolicyPoll)); wait > 0 && core.Sleep(ctx, wait) != nil {
			return
		}
		last = time.Now()
		b, err := lp.Policy(ctx, e.serial())
		if err == nil && b != nil {
			if _, err = e.offer(b, "tracker"); errors.Is(err, ErrStalePolicy) {
				err = nil // an announce answer brought it first
			} else if err != nil {
				e.p.log.Warn("operator policy from the tracker refused", "err", err)
			}
		}
		if err == nil {
			failures = 0
			continue
		}
		if ctx.Err() != nil {
			return
		}
		failures++
		wait := time.Second << min(failures-1, 6)
		wait = min(wait, time.Minute)
		if errors.Is(err, discovery.ErrNoPolicy) {
			wait = noPolicyWait // announce answers still carry one set up later
		}
		wait = wait/2 + time.Duration(rand.Int64N(int64(wait/2)+1))
		wait = max(wait, discovery.RetryAfter(err))
		e.p.log.Debug("operator policy long poll", "err", err, "retry_in", wait)
		if core.Sleep(ctx, wait) != nil {
			return
		}
	}
}

// peerWideDecision is the decision for the peer as a whole.
func (e *operatorPolicy) peerWideDecision() control.Decision {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.peerWide
}

// PolicyStatus is the operator policy's part of /api/status.
type PolicyStatus struct {
	// OperatorKeys is how many operator keys the peer takes policies
	// from (0: it applies none).
	OperatorKeys int `json:"operator_keys"`
	// Serial is the policy applied (0: none); Source where the newest
	// policy taken came from.
	Serial uint64 `json:"serial"`
	Source string `json:"source,omitempty"`
	// P2P, UploadBps and Why are the peer-wide decision (no content):
	// the mode and the upload cap across swarms (0: none).
	P2P       control.P2P `json:"p2p"`
	UploadBps int64       `json:"upload_bps"`
	Why       []string    `json:"why,omitempty"`
	// The peer's facts.
	Metered   bool   `json:"metered"`
	OnBattery bool   `json:"on_battery"`
	Device    string `json:"device,omitempty"`
	Consent   bool   `json:"consent"`
	// Cohort is the peer's cohorts ("experiment/variant" pairs).
	Cohort string `json:"cohort,omitempty"`
	// ModeChanges counts the sessions' P2P mode changes.
	ModeChanges int64 `json:"mode_changes"`
}

func (e *operatorPolicy) status() PolicyStatus {
	e.mu.Lock()
	defer e.mu.Unlock()
	st := PolicyStatus{
		P2P: e.peerWide.P2P, UploadBps: e.peerWide.UploadBps, Why: e.peerWide.Why, Source: e.source,
		Metered: e.metered, OnBattery: e.battery, Device: e.p.cfg.DeviceClass, Consent: e.p.cfg.Consent,
		Cohort: control.CohortLabel(e.peerWide.Cohorts), ModeChanges: e.modeChanges,
	}
	if e.keys != nil {
		st.OperatorKeys = len(e.keys.Keys())
	}
	st.Serial = e.peerWide.Serial // the policy applied (see apply)
	return st
}

// sessionDecision is the decision applied to the session of id.
func (e *operatorPolicy) sessionDecision(id core.ContentID) (control.Decision, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	d, ok := e.decisions[id]
	return d, ok
}

// OfferPolicy gives the peer a signed operator policy (as `shoal policy`
// signs it): it takes it when it verifies under one of its operator keys
// and is newer than the one it holds, then passes it on by gossip. The
// error says why not (ErrStalePolicy, control.ErrUntrusted, …).
func (p *Peer) OfferPolicy(b []byte) error {
	_, err := p.pol.offer(b, "api")
	return err
}

// PolicyStatus reports the operator policy held and what it decides for
// this peer as a whole.
func (p *Peer) PolicyStatus() PolicyStatus { return p.pol.status() }

// Cohort is the peer's cohorts under the policy held, as telemetry labels
// them (control.CohortLabel; "" when in none).
func (p *Peer) Cohort() string {
	return control.CohortLabel(p.pol.peerWideDecision().Cohorts)
}

// RecheckFacts reads the metered and battery state from the system again
// now, and applies the policy if it changed (it is re-read every
// PeerConfig.FactsPoll anyway).
func (p *Peer) RecheckFacts(ctx context.Context) {
	if p.pol.readFacts(ctx) {
		p.pol.apply()
	}
}

// checkPolicyConfig checks and fills the policy fields of cfg.
func (cfg *PeerConfig) checkPolicyConfig() error {
	var err error
	if cfg.Metered, err = ParseToggle(string(cfg.Metered)); err != nil {
		return fmt.Errorf("%w: metered: %v", ErrBadInput, err)
	}
	if cfg.OnBattery, err = ParseToggle(string(cfg.OnBattery)); err != nil {
		return fmt.Errorf("%w: on battery: %v", ErrBadInput, err)
	}
	if cfg.P2P == "" {
		cfg.P2P = control.On
	}
	if _, err := control.ParseP2P(string(cfg.P2P)); err != nil {
		return fmt.Errorf("%w: %v", ErrBadInput, err)
	}
	if len(cfg.DeviceClass) > control.MaxLabelLen {
		return fmt.Errorf("%w: device class of %d bytes, at most %d", ErrBadInput, len(cfg.DeviceClass), control.MaxLabelLen)
	}
	return nil
}

// announcerHooks are the announcer's policy fields: announces carry the
// serial held, and answers' newer policies are offered (none without
// operator keys).
func (e *operatorPolicy) announcerHooks(cfg *discovery.AnnouncerConfig) {
	if e.keys == nil {
		return
	}
	cfg.PolicySerial = e.serial
	cfg.OnPolicy = func(b []byte) {
		if _, err := e.offer(b, "tracker"); err != nil && !errors.Is(err, ErrStalePolicy) {
			e.p.log.Warn("operator policy in an announce answer refused", "err", err)
		}
	}
}

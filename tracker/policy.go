package tracker

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/shoal-cdn/shoal/control"
	"github.com/shoal-cdn/shoal/manifest"
)

// The tracker holds the operator's signed policy (package control) and hands
// it out: with every announce answer whose peer holds an older one, on GET
// /policy, and to the long polls of GET /policy?after=SERIAL, which all wake
// together when a newer policy arrives (policyhttp.go). The policy arrives
// by PUT /api/policy, from Config.PolicyFile, or from another replica
// through Redis (redispolicy.go).

// Errors of SetPolicy, for errors.Is; control's decode errors (bad
// signature, untrusted key, malformed) come wrapped as they are.
var (
	// ErrNoOperatorKey: the tracker has no Config.OperatorKeys, so it
	// serves no policy and accepts none.
	ErrNoOperatorKey = errors.New("the tracker has no operator key (--operator-key): it serves no policy")
	// ErrStalePolicy: the policy's serial is not above the current one's.
	ErrStalePolicy = errors.New("policy not newer than the current one")
)

// heldPolicy is the current policy: its canonical encoding, kept as it
// arrived so announces and polls copy the bytes and never encode them.
type heldPolicy struct {
	serial uint64
	doc    []byte
	p      *control.Policy
}

// policyBackend shares the policy between replicas: a store that has one
// (redisStore) implements it; the memory store keeps the policy here only.
type policyBackend interface {
	// putPolicy stores doc, whose serial is serial, if that is above the
	// stored one's, atomically, and tells the other replicas. It returns
	// the serial stored afterwards (serial itself when it was stored).
	putPolicy(ctx context.Context, serial uint64, doc []byte) (stored bool, current uint64, err error)
	// loadPolicy returns the stored policy's serial and, when it is above
	// have, its bytes (nil otherwise, and when there is none).
	loadPolicy(ctx context.Context, have uint64) (uint64, []byte, error)
	// watchPolicy calls changed whenever another replica may have stored a
	// newer policy, and at least every policySyncEvery, until ctx ends.
	watchPolicy(ctx context.Context, changed func())
}

// policies is the Server's policy state. Its methods are safe for
// concurrent use; the hot path (an announce) is one atomic load.
type policies struct {
	trust   *manifest.KeySet // nil: no operator key, no policy
	backend policyBackend    // nil: this process only
	cur     atomic.Pointer[heldPolicy]

	mu      sync.Mutex    // guards changed and serialises installs
	changed chan struct{} // closed and replaced when cur changes

	stopOnce sync.Once
	stopped  chan struct{} // closed when the server shuts down: waiters answer at once

	waiters    atomic.Int64
	maxWaiters int64
	waitMu     sync.Mutex           // guards perIP, perPrefix
	perIP      map[netip.Addr]int   // polls held per client address
	perPrefix  map[netip.Prefix]int // and per /24 or /48
	// badShared is the serial of the last shared policy refused, so the
	// refusal is logged once, not every sync.
	badShared atomic.Uint64

	serialGauge  prometheus.Gauge
	waitersGauge prometheus.Gauge
	polls        *prometheus.CounterVec
}

// Results of a policy long poll, the label of shoal_tracker_policy_polls_total.
const (
	pollChanged = "changed" // answered a newer policy
	pollTimeout = "timeout" // nothing newer within the wait: 204
	pollFull    = "full"    // refused: MaxPolicyWaiters held already
	pollLimited = "limited" // refused by the poll rate limit
)

func newPolicies(cfg Config, reg prometheus.Registerer) *policies {
	p := &policies{
		changed:    make(chan struct{}),
		stopped:    make(chan struct{}),
		maxWaiters: int64(cfg.MaxPolicyWaiters),
		perIP:      map[netip.Addr]int{}, perPrefix: map[netip.Prefix]int{},
		serialGauge: prometheus.NewGauge(prometheus.GaugeOpts{Name: "shoal_tracker_policy_serial",
			Help: "Serial of the operator policy the tracker hands out (0: none)."}),
		waitersGauge: prometheus.NewGauge(prometheus.GaugeOpts{Name: "shoal_tracker_policy_waiters",
			Help: "Policy long polls (GET /policy?after=) held open, at most --max-policy-waiters."}),
		polls: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "shoal_tracker_policy_polls_total",
			Help: "Policy long polls by result (changed, timeout, full, limited)."}, []string{"result"}),
	}
	if len(cfg.OperatorKeys) > 0 {
		p.trust = manifest.NewKeySet(cfg.OperatorKeys...)
	}
	for _, r := range []string{pollChanged, pollTimeout, pollFull, pollLimited} {
		p.polls.WithLabelValues(r)
	}
	reg.MustRegister(p.serialGauge, p.waitersGauge, p.polls)
	return p
}

// current returns the policy held, nil when none.
func (p *policies) current() *heldPolicy { return p.cur.Load() }

// newerThan returns the policy's bytes when its serial is above serial, for
// an announce answer; nil otherwise.
func (p *policies) newerThan(serial uint64) []byte {
	if h := p.cur.Load(); h != nil && h.serial > serial {
		return h.doc
	}
	return nil
}

// decode checks doc against the operator keys.
func (p *policies) decode(doc []byte) (*control.Policy, error) {
	if p.trust == nil {
		return nil, ErrNoOperatorKey
	}
	return control.Decode(doc, p.trust)
}

// install makes pol (encoded as doc) current if it is newer than the policy
// held, and wakes every waiter. It reports whether it did.
func (p *policies) install(pol *control.Policy, doc []byte) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if h := p.cur.Load(); h != nil && !pol.Newer(h.p) {
		return false
	}
	p.cur.Store(&heldPolicy{serial: pol.Serial, doc: doc, p: pol})
	p.serialGauge.Set(float64(pol.Serial))
	close(p.changed)
	p.changed = make(chan struct{})
	return true
}

// wakeups returns the channel closed at the next change and the one closed
// at shutdown. Take them before reading current, so that a change between
// the two is never missed.
func (p *policies) wakeups() (changed, stopped <-chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.changed, p.stopped
}

// Policy long polls one client may hold at once: a peer holds one, a
// household or office a few, a /24 or /48 of them more. They stop one
// address from taking the places of the whole fleet's polls (a poll costs
// nothing to open) and so slowing every peer's kill switch to its next
// announce.
const (
	MaxPolicyWaitersPerIP     = 16
	MaxPolicyWaitersPerPrefix = 256
)

// enterWait takes a waiter's place for a client at ip; "" when it got
// one, else what is full (the tracker's MaxPolicyWaiters, or the
// address's or network's share). A "" return must be followed by
// leaveWait(ip).
func (p *policies) enterWait(ip netip.Addr) string {
	if n := p.waiters.Add(1); p.maxWaiters > 0 && n > p.maxWaiters {
		p.waiters.Add(-1)
		return "tracker"
	}
	pre := prefixOf(ip)
	p.waitMu.Lock()
	if p.perIP[ip] >= MaxPolicyWaitersPerIP || p.perPrefix[pre] >= MaxPolicyWaitersPerPrefix {
		full := "this address"
		if p.perIP[ip] < MaxPolicyWaitersPerIP {
			full = "this network (/24 or /48)"
		}
		p.waitMu.Unlock()
		p.waiters.Add(-1)
		return full
	}
	p.perIP[ip]++
	p.perPrefix[pre]++
	p.waitMu.Unlock()
	p.waitersGauge.Inc()
	return ""
}

func (p *policies) leaveWait(ip netip.Addr) {
	pre := prefixOf(ip)
	p.waitMu.Lock()
	if p.perIP[ip]--; p.perIP[ip] <= 0 {
		delete(p.perIP, ip)
	}
	if p.perPrefix[pre]--; p.perPrefix[pre] <= 0 {
		delete(p.perPrefix, pre)
	}
	p.waitMu.Unlock()
	p.waiters.Add(-1)
	p.waitersGauge.Dec()
}

// stopWaiting answers every held poll and every later one at once: the
// server is shutting down and must not wait for them.
func (p *policies) stopWaiting() {
	p.stopOnce.Do(func() { close(p.stopped) })
}

// SetPolicy makes doc, an encoded signed policy, the policy the tracker
// hands out, and with Redis the one every replica hands out. It fails with
// ErrNoOperatorKey, with control's error when doc does not decode or
// verify under an operator key, and with ErrStalePolicy when its serial is
// not above the current one's.
func (s *Server) SetPolicy(ctx context.Context, doc []byte) (*control.Policy, error) {
	pol, err := s.pol.decode(doc)
	if err != nil {
		return nil, err
	}
	doc = append([]byte(nil), doc...) // kept: the caller's buffer may be reused
	if b := s.pol.backend; b != nil {
		stored, cur, err := b.putPolicy(ctx, pol.Serial, doc)
		if err != nil {
			// Redis is down, maybe in the very incident the policy is
			// for: this replica obeys it now, and the replica watch
			// (syncPolicy) shares it once Redis answers.
			if !s.pol.install(pol, doc) {
				return nil, err
			}
			s.log.Warn("policy set on this replica only, for now: Redis did not store it; it is shared when Redis answers", "serial", pol.Serial, "err", err)
			return pol, nil
		}
		if !stored {
			return nil, fmt.Errorf("%w: policy %d, the current one is %d: sign it with --serial %d or more", ErrStalePolicy, pol.Serial, cur, cur+1)
		}
		s.pol.install(pol, doc) // unless another replica's newer one came first
		s.log.Info("policy set", "serial", pol.Serial, "operator", pol.Operator, "rules", len(pol.Rules), "experiments", len(pol.Experiments))
		return pol, nil
	}
	if !s.pol.install(pol, doc) {
		cur := s.pol.current().serial
		return nil, fmt.Errorf("%w: policy %d, the current one is %d: sign it with --serial %d or more", ErrStalePolicy, pol.Serial, cur, cur+1)
	}
	s.log.Info("policy set", "serial", pol.Serial, "operator", pol.Operator, "rules", len(pol.Rules), "experiments", len(pol.Experiments))
	return pol, nil
}

// Policy returns the encoded policy the tracker hands out, nil when none.
func (s *Server) Policy() []byte {
	if h := s.pol.current(); h != nil {
		return h.doc
	}
	return nil
}

// syncPolicy installs the backend's policy when it is newer than the one
// held. A policy there that does not verify under this replica's operator
// keys is logged and left alone.
func (s *Server) syncPolicy(ctx context.Context) error {
	b := s.pol.backend
	if b == nil || s.pol.trust == nil {
		return nil
	}
	var have uint64
	h := s.pol.current()
	if h != nil {
		have = h.serial
	}
	serial, doc, err := b.loadPolicy(ctx, have)
	if err != nil {
		return err
	}
	if h != nil && serial < have {
		// Taken here while Redis could not store it (SetPolicy): share it
		// now that it can.
		if _, _, err := b.putPolicy(ctx, h.serial, h.doc); err != nil {
			return err
		}
		s.log.Info("policy shared with the other replicas", "serial", h.serial)
		return nil
	}
	if doc == nil {
		return nil
	}
	pol, err := s.pol.decode(doc)
	if err != nil {
		if s.pol.badShared.Swap(serial) != serial { // once per bad serial
			s.log.Warn("shared policy refused", "serial", serial, "err", err)
		}
		return nil
	}
	if s.pol.install(pol, doc) {
		s.log.Info("policy set by another replica", "serial", pol.Serial, "operator", pol.Operator)
	}
	return nil
}

// policySyncEvery is how often a replica on Redis checks the stored
// policy's serial besides the pub/sub notice of a change, so a notice lost
// while its connection was down delays a new policy by this at most.
const policySyncEvery = time.Second

// startPolicy loads the shared policy (Redis), then Config.PolicyFile, and
// starts what keeps them current: the replica watch and the file watch,
// owned by the Server and ended by Close.
func (s *Server) startPolicy(ctx context.Context) error {
	if s.pol.trust == nil {
		if s.cfg.PolicyFile != "" {
			return fmt.Errorf("policy file %s: %w", s.cfg.PolicyFile, ErrNoOperatorKey)
		}
		return nil
	}
	if b, ok := s.store.(policyBackend); ok {
		s.pol.backend = b
		if err := s.syncPolicy(ctx); err != nil {
			return fmt.Errorf("load the shared policy: %w", err)
		}
	}
	var fw *fileWatch
	if s.cfg.PolicyFile != "" {
		var err error
		if fw, err = s.loadPolicyFile(ctx); err != nil {
			return err
		}
	}
	var serial uint64
	if h := s.pol.current(); h != nil {
		serial = h.serial
	}
	s.log.Info("operator policy", "operator_keys", len(s.cfg.OperatorKeys), "serial", serial, "file", s.cfg.PolicyFile)
	bg, cancel := context.WithCancel(context.Background())
	s.stopBG = cancel
	if b := s.pol.backend; b != nil {
		s.bg.Add(1)
		go func() {
			defer s.bg.Done()
			failing := false // log the first failure of a run and the recovery, not every second
			b.watchPolicy(bg, func() {
				err := s.syncPolicy(bg)
				switch {
				case err != nil && !failing && bg.Err() == nil:
					s.log.Warn("reading the shared policy; retrying every second", "err", err)
				case err == nil && failing:
					s.log.Info("reading the shared policy again")
				}
				failing = err != nil
			})
		}()
	}
	if fw != nil {
		s.bg.Add(1)
		go func() {
			defer s.bg.Done()
			s.watchPolicyFile(bg, fw)
		}()
	}
	return nil
}

// Package control is the operator's say over a Shoal fleet: a policy
// document, signed with an operator key, that every peer obeys. It turns
// peer-to-peer delivery on, to leech-only or off (the kill switch) globally
// or for a tenant, content, region, device class or cohort; caps upload per
// device class; requires viewers' consent; and says what peers on metered
// networks or on battery do. It also defines experiments: stable cohorts
// drawn from a hash of the peer's identity.
//
// Policies carry a serial number: a receiver keeps the newest valid policy,
// so a replayed old one can never turn back a kill switch. The tracker hands
// the policy out with announces, and peers pass it on by gossip.
package control

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/shoal-cdn/shoal/manifest"
)

// Version is the policy format this package reads and writes.
const Version = 1

// SigningDomain prefixes a policy's signed bytes, so its signature can never
// be replayed as a manifest's, a channel update's or a revocation list's.
const SigningDomain = "shoal operator policy v1\x00"

// Limits on what Decode accepts.
const (
	MaxSize        = 256 << 10 // bytes of an encoded policy
	MaxRules       = 1024
	MaxExperiments = 64
	MaxVariants    = 16  // per experiment
	MaxLabelLen    = 128 // bytes of a match value, experiment or variant name
)

// Errors, for errors.Is.
var (
	ErrMalformed    = errors.New("malformed policy")
	ErrVersion      = errors.New("unsupported policy version")
	ErrTooLarge     = errors.New("policy too large")
	ErrNonCanonical = errors.New("policy not in canonical encoding")
	ErrBadSignature = errors.New("bad policy signature")
	ErrUntrusted    = errors.New("policy not signed by a trusted operator key")
)

// P2P is what a peer may do with other peers.
type P2P string

// The P2P modes, from most to least permissive. The empty value in a rule
// means "no say" (the rule leaves it as it is).
const (
	On        P2P = "on"         // fetch from and upload to peers
	LeechOnly P2P = "leech-only" // fetch from peers, upload nothing
	Off       P2P = "off"        // no peer traffic: everything from the origin
)

// ParseP2P parses "on", "leech-only" or "off".
func ParseP2P(s string) (P2P, error) {
	switch p := P2P(s); p {
	case On, LeechOnly, Off:
		return p, nil
	}
	return "", fmt.Errorf("P2P mode %q: want on, leech-only or off", s)
}

func (p P2P) rank() int {
	switch p {
	case On:
		return 0
	case LeechOnly:
		return 1
	case Off:
		return 2
	}
	return -1 // "": no say
}

// Stricter returns the stricter of p and q; an empty one has no say.
func Stricter(p, q P2P) P2P {
	if q.rank() > p.rank() {
		return q
	}
	return p
}

// Match selects the peers and swarms a rule applies to. An empty field
// matches anything; every set field must match. Cohort is
// "experiment/variant" (see Experiment).
type Match struct {
	Tenant  string `json:"tenant,omitempty"`
	Content string `json:"content,omitempty"` // content ID, printed
	Region  string `json:"region,omitempty"`
	Device  string `json:"device,omitempty"` // device class: desktop, mobile, tv, …
	Cohort  string `json:"cohort,omitempty"`
}

// Rule is one statement of a policy. Every rule that matches applies, and
// the strictest say wins: the stricter P2P mode, the lowest upload cap,
// consent required if any rule requires it.
type Rule struct {
	Match Match `json:"match"`
	// P2P is the mode for matching peers ("": no say).
	P2P P2P `json:"p2p,omitempty"`
	// UploadBps caps a matching peer's upload to other peers, bytes/s
	// across its swarms (0: no cap from this rule).
	UploadBps int64 `json:"upload_bps,omitempty"`
	// Consent: matching peers use peers only if the viewer consented
	// (PeerFacts.Consented); without consent they are Off.
	Consent bool `json:"consent,omitempty"`
	// Metered and Battery are the mode for a matching peer on a metered
	// network, or running on battery ("": no say).
	Metered P2P `json:"metered,omitempty"`
	Battery P2P `json:"battery,omitempty"`
}

// Experiment splits the fleet into stable cohorts: a peer belongs to the
// variant its hash (CohortPoint) falls in, variants taking consecutive
// slices of [0, 100) in their order; beyond the last slice a peer is in no
// variant of the experiment. Rules match a cohort as "name/variant".
type Experiment struct {
	Name     string    `json:"name"`
	Variants []Variant `json:"variants"`
}

// Variant is one cohort of an experiment.
type Variant struct {
	Name    string  `json:"name"`
	Percent float64 `json:"percent"` // share of the fleet, (0, 100]
}

// Policy is one signed policy document.
type Policy struct {
	Version     int                `json:"version"`
	Operator    manifest.PublicKey `json:"operator"`
	Serial      uint64             `json:"serial"` // strictly increasing across the operator's keys (a new key continues the old one's serials)
	Issued      time.Time          `json:"issued"`
	Rules       []Rule             `json:"rules,omitempty"`
	Experiments []Experiment       `json:"experiments,omitempty"`
	Signature   []byte             `json:"signature,omitempty"`
}

// Newer reports whether p should replace held: held is nil, or p has a
// higher serial number.
func (p *Policy) Newer(held *Policy) bool {
	return held == nil || p.Serial > held.Serial
}

// Sign sets Version, Operator, a whole-second UTC Issued (now when zero)
// and Signature from priv, after checking the policy.
func (p *Policy) Sign(priv ed25519.PrivateKey) error {
	p.Version = Version
	p.Operator = manifest.PublicOf(priv)
	p.Signature = nil
	if p.Issued.IsZero() {
		p.Issued = time.Now()
	}
	p.Issued = p.Issued.UTC().Truncate(time.Second)
	if err := p.validate(); err != nil {
		return err
	}
	msg, err := p.signedBytes()
	if err != nil {
		return err
	}
	p.Signature = ed25519.Sign(priv, msg)
	return nil
}

func (p *Policy) signedBytes() ([]byte, error) {
	v := *p
	v.Signature = nil
	b, err := json.Marshal(&v)
	if err != nil {
		return nil, err
	}
	return append([]byte(SigningDomain), b...), nil
}

// Encode returns the canonical encoding of a signed policy.
func (p *Policy) Encode() ([]byte, error) {
	if len(p.Signature) != ed25519.SignatureSize {
		return nil, fmt.Errorf("%w: the policy is not signed", ErrBadSignature)
	}
	return json.Marshal(p)
}

// Decode parses and checks a signed policy: size, version, structure,
// bounds, canonical form, the signature, and that trust trusts the signer.
func Decode(b []byte, trust manifest.Trust) (*Policy, error) {
	if len(b) > MaxSize {
		return nil, fmt.Errorf("%w: %d bytes, at most %d", ErrTooLarge, len(b), MaxSize)
	}
	var ver struct {
		Version *int `json:"version"`
	}
	if err := json.Unmarshal(b, &ver); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if ver.Version == nil {
		return nil, fmt.Errorf("%w: no version field", ErrMalformed)
	}
	if *ver.Version != Version {
		return nil, fmt.Errorf("%w: version %d (this Shoal reads version %d)", ErrVersion, *ver.Version, Version)
	}
	p := new(Policy)
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(p); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("%w: trailing data after the policy", ErrMalformed)
	}
	if err := p.validate(); err != nil {
		return nil, err
	}
	if len(p.Signature) != ed25519.SignatureSize {
		return nil, fmt.Errorf("%w: %d signature bytes, want %d", ErrBadSignature, len(p.Signature), ed25519.SignatureSize)
	}
	enc, err := p.Encode()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if !bytes.Equal(enc, b) {
		return nil, fmt.Errorf("%w: it re-encodes differently", ErrNonCanonical)
	}
	msg, err := p.signedBytes()
	if err != nil {
		return nil, err
	}
	if !ed25519.Verify(p.Operator[:], msg, p.Signature) {
		return nil, fmt.Errorf("%w: policy %d does not verify under operator key %s", ErrBadSignature, p.Serial, p.Operator)
	}
	if !trust.Trusts(p.Operator) {
		return nil, fmt.Errorf("%w: policy %d is signed by %s", ErrUntrusted, p.Serial, p.Operator)
	}
	return p, nil
}

// validate checks bounds and values, naming what is wrong.
func (p *Policy) validate() error {
	if p.Serial == 0 {
		return fmt.Errorf("%w: serial 0: the first policy is 1", ErrMalformed)
	}
	if p.Issued.IsZero() || !p.Issued.Equal(p.Issued.Truncate(time.Second)) || p.Issued.Location() != time.UTC {
		return fmt.Errorf("%w: issue time %v: want whole seconds in UTC", ErrMalformed, p.Issued)
	}
	if len(p.Rules) > MaxRules {
		return fmt.Errorf("%w: %d rules, at most %d", ErrTooLarge, len(p.Rules), MaxRules)
	}
	if p.Rules != nil && len(p.Rules) == 0 {
		return fmt.Errorf("%w: empty rule list (omit it)", ErrNonCanonical)
	}
	if len(p.Experiments) > MaxExperiments {
		return fmt.Errorf("%w: %d experiments, at most %d", ErrTooLarge, len(p.Experiments), MaxExperiments)
	}
	if p.Experiments != nil && len(p.Experiments) == 0 {
		return fmt.Errorf("%w: empty experiment list (omit it)", ErrNonCanonical)
	}
	names := map[string]bool{}
	for i, e := range p.Experiments {
		what := fmt.Sprintf("experiment %d", i+1)
		if err := checkName(what+" name", e.Name); err != nil {
			return err
		}
		if names[e.Name] {
			return fmt.Errorf("%w: %s name %q repeated", ErrMalformed, what, e.Name)
		}
		names[e.Name] = true
		if len(e.Variants) == 0 || len(e.Variants) > MaxVariants {
			return fmt.Errorf("%w: %s %q has %d variants, want 1 to %d", ErrMalformed, what, e.Name, len(e.Variants), MaxVariants)
		}
		total := 0.0
		vnames := map[string]bool{}
		for _, v := range e.Variants {
			if err := checkName(what+" variant name", v.Name); err != nil {
				return err
			}
			if vnames[v.Name] {
				return fmt.Errorf("%w: %s %q: variant %q repeated", ErrMalformed, what, e.Name, v.Name)
			}
			vnames[v.Name] = true
			if !(v.Percent > 0 && v.Percent <= 100) {
				return fmt.Errorf("%w: %s %q: variant %q percent %v, want more than 0 and at most 100", ErrMalformed, what, e.Name, v.Name, v.Percent)
			}
			total += v.Percent
		}
		if total > 100+1e-9 {
			return fmt.Errorf("%w: %s %q: variants add up to %v%%, more than 100", ErrMalformed, what, e.Name, total)
		}
	}
	for i, r := range p.Rules {
		what := fmt.Sprintf("rule %d", i+1)
		for _, f := range []struct{ name, v string }{{"tenant", r.Match.Tenant}, {"content", r.Match.Content}, {"region", r.Match.Region}, {"device", r.Match.Device}, {"cohort", r.Match.Cohort}} {
			if err := checkLabel(what+" match "+f.name, f.v, true); err != nil {
				return err
			}
		}
		if c := r.Match.Cohort; c != "" {
			exp, variant, ok := strings.Cut(c, "/")
			if !ok || !names[exp] || !hasVariant(p.Experiments, exp, variant) {
				return fmt.Errorf("%w: %s matches cohort %q: want experiment/variant of an experiment in this policy", ErrMalformed, what, c)
			}
		}
		for _, f := range []struct {
			name string
			v    P2P
		}{{"p2p", r.P2P}, {"metered", r.Metered}, {"battery", r.Battery}} {
			if f.v != "" && f.v.rank() < 0 {
				return fmt.Errorf("%w: %s %s %q: want on, leech-only or off", ErrMalformed, what, f.name, f.v)
			}
		}
		if r.UploadBps < 0 {
			return fmt.Errorf("%w: %s upload_bps %d is negative", ErrMalformed, what, r.UploadBps)
		}
		if r.UploadBps > 0 && r.Match.Content != "" {
			return fmt.Errorf("%w: %s sets upload_bps for one content: an upload cap is a peer's, across its swarms (match a tenant, region, device or cohort)", ErrMalformed, what)
		}
	}
	return nil
}

func hasVariant(es []Experiment, exp, variant string) bool {
	for _, e := range es {
		if e.Name != exp {
			continue
		}
		for _, v := range e.Variants {
			if v.Name == variant {
				return true
			}
		}
	}
	return false
}

// checkLabel bounds a name: at most MaxLabelLen bytes of printable ASCII
// without spaces; empty only when allowed.
func checkLabel(what, s string, emptyOK bool) error {
	if s == "" {
		if emptyOK {
			return nil
		}
		return fmt.Errorf("%w: %s is empty", ErrMalformed, what)
	}
	if len(s) > MaxLabelLen {
		return fmt.Errorf("%w: %s of %d bytes, at most %d", ErrMalformed, what, len(s), MaxLabelLen)
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c > '~' {
			return fmt.Errorf("%w: %s %q: printable ASCII without spaces only", ErrMalformed, what, s)
		}
	}
	return nil
}

// MaxNameLen bounds an experiment's or a variant's name: a cohort label
// "experiment/variant" fits telemetry's 64-byte labels.
const MaxNameLen = 31

// checkName bounds an experiment's or variant's name: 1 to MaxNameLen
// bytes of letters, digits, '-', '_' and '.', so cohort labels
// ("a/x,b/y") parse back unambiguously and fit any metric label.
func checkName(what, s string) error {
	if s == "" || len(s) > MaxNameLen {
		return fmt.Errorf("%w: %s %q: want 1 to %d bytes", ErrMalformed, what, s, MaxNameLen)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return fmt.Errorf("%w: %s %q: letters, digits, '-', '_' and '.' only", ErrMalformed, what, s)
		}
	}
	return nil
}

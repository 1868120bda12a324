package control

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"slices"
	"strings"
)

// Facts are what a peer knows of itself and of one swarm when it applies a
// policy. Content empty asks for the peer-wide decision (rules naming a
// content then do not apply).
type Facts struct {
	Peer      string // libp2p peer ID: the cohorts' hash input
	Tenant    string // from the peer's access token; "" without one
	Content   string // content ID, printed
	Region    string
	Device    string // device class
	Metered   bool   // on a metered network
	OnBattery bool   // running on battery
	Consented bool   // the viewer consented to peer-to-peer delivery
}

// Decision is what a policy says for one set of facts.
type Decision struct {
	P2P       P2P   `json:"p2p"`
	UploadBps int64 `json:"upload_bps,omitempty"` // 0: no cap
	// ConsentRequired: a rule requires consent (and P2P is Off when the
	// facts say the viewer did not give it).
	ConsentRequired bool `json:"consent_required,omitempty"`
	// Cohorts maps each experiment the peer takes part in to its variant.
	Cohorts map[string]string `json:"cohorts,omitempty"`
	// Serial is the policy's serial (0: no policy).
	Serial uint64 `json:"serial,omitempty"`
	// Why names the rules that made P2P stricter than On, for logs and
	// status ("rule 3: p2p off", "rule 1: metered leech-only").
	Why []string `json:"why,omitempty"`
}

// Allow is the decision without a policy: P2P on, no cap.
var Allow = Decision{P2P: On}

// Decide applies every matching rule to f; the strictest say wins. A nil
// policy allows everything.
func (p *Policy) Decide(f Facts) Decision {
	d := Allow
	if p == nil {
		return d
	}
	d.Serial = p.Serial
	d.Cohorts = p.Cohorts(f.Peer)
	for i, r := range p.Rules {
		if !r.Match.matches(f, d.Cohorts) {
			continue
		}
		apply := func(what string, m P2P) {
			if m != "" && m.rank() > d.P2P.rank() {
				d.P2P = m
				d.Why = append(d.Why, fmt.Sprintf("rule %d: %s %s", i+1, what, m))
			}
		}
		apply("p2p", r.P2P)
		if f.Metered {
			apply("metered", r.Metered)
		}
		if f.OnBattery {
			apply("battery", r.Battery)
		}
		if r.UploadBps > 0 && (d.UploadBps == 0 || r.UploadBps < d.UploadBps) {
			d.UploadBps = r.UploadBps
		}
		if r.Consent {
			d.ConsentRequired = true
			if !f.Consented {
				apply("consent required, not given:", Off)
			}
		}
	}
	return d
}

// Stricter combines d with a peer's own limits (its flags): the stricter
// mode and the lower cap. A peer can be stricter than its policy, never
// looser.
func (d Decision) Stricter(mode P2P, uploadBps int64) Decision {
	if mode.rank() > d.P2P.rank() {
		d.P2P = mode
		d.Why = append(slices.Clip(d.Why), "local: p2p "+string(mode))
	}
	if uploadBps > 0 && (d.UploadBps == 0 || uploadBps < d.UploadBps) {
		d.UploadBps = uploadBps
	}
	return d
}

func (m Match) matches(f Facts, cohorts map[string]string) bool {
	if m.Tenant != "" && m.Tenant != f.Tenant {
		return false
	}
	if m.Content != "" && m.Content != f.Content {
		return false
	}
	if m.Region != "" && m.Region != f.Region {
		return false
	}
	if m.Device != "" && m.Device != f.Device {
		return false
	}
	if m.Cohort != "" {
		exp, variant, _ := strings.Cut(m.Cohort, "/")
		if v, ok := cohorts[exp]; !ok || v != variant {
			return false
		}
	}
	return true
}

// CohortPoint is where a peer falls in an experiment, in [0, 100): a hash
// of the experiment's name and the peer's ID, so a peer stays in its
// cohort for as long as it keeps its identity, and its cohorts in two
// experiments are independent.
func CohortPoint(peer, experiment string) float64 {
	h := sha256.New()
	h.Write([]byte("shoal cohort v1\x00"))
	h.Write([]byte(experiment))
	h.Write([]byte{0})
	h.Write([]byte(peer))
	sum := h.Sum(nil)
	// 53 bits: exact in a float64.
	return float64(binary.BigEndian.Uint64(sum[:8])>>11) / float64(uint64(1)<<53) * 100
}

// Cohorts maps each of the policy's experiments the peer is in to its
// variant (nil when none).
func (p *Policy) Cohorts(peer string) map[string]string {
	if p == nil || len(p.Experiments) == 0 {
		return nil
	}
	var out map[string]string
	for _, e := range p.Experiments {
		x := CohortPoint(peer, e.Name)
		lo := 0.0
		for _, v := range e.Variants {
			if x >= lo && x < lo+v.Percent {
				if out == nil {
					out = map[string]string{}
				}
				out[e.Name] = v.Name
				break
			}
			lo += v.Percent
		}
	}
	return out
}

// CohortLabel is the peer's cohorts as one label, "experiment/variant"
// pairs sorted and joined with ",": what telemetry reports ("" when none).
func CohortLabel(cohorts map[string]string) string {
	if len(cohorts) == 0 {
		return ""
	}
	parts := make([]string, 0, len(cohorts))
	for e, v := range cohorts {
		parts = append(parts, e+"/"+v)
	}
	slices.Sort(parts)
	return strings.Join(parts, ",")
}

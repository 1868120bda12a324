package main

import (
	"flag"

	"github.com/shoal-cdn/shoal/agent"
	"github.com/shoal-cdn/shoal/control"
	"github.com/shoal-cdn/shoal/manifest"
)

// policyFlags are the receivers' flags about the operator's policy: whose
// policies to obey, the peer's own P2P limit, and the facts the policy's
// rules look at.
type policyFlags struct {
	operatorKeys     *keyList
	p2p              *string
	consent          *bool
	metered, battery *string
}

func addPolicyFlags(fs *flag.FlagSet) policyFlags {
	keys := &keyList{}
	fs.Var(keys, "operator-key", "operator public keys (shoal keygen) whose signed policies this peer obeys: P2P on, leech-only or off (the kill switch), upload caps, consent, metered and battery rules; learnt from the tracker, gossip and the cache directory; comma-separated, repeatable; none: no policy is applied")
	return policyFlags{
		operatorKeys: keys,
		p2p:          fs.String("p2p", string(control.On), "this peer's own P2P mode: on, leech-only (fetch from peers, upload nothing) or off (origin only); the operator's policy can make it stricter, never looser"),
		consent:      fs.Bool("consent", false, "the viewer consented to peer-to-peer delivery (a policy that requires consent turns P2P off without it)"),
		metered:      fs.String("metered", string(agent.ToggleAuto), "whether the network is metered: auto (NetworkManager's Metered property on the system D-Bus, read every 30s; without NetworkManager: not metered), yes or no"),
		battery:      fs.String("on-battery", string(agent.ToggleAuto), "whether the machine runs on battery: auto (/sys/class/power_supply: a Battery discharging and no Mains online, read every 30s), yes or no"),
	}
}

// apply checks the flags into pc.
func (f policyFlags) apply(pc *agent.PeerConfig) error {
	var err error
	if len(*f.operatorKeys) > 0 {
		pc.OperatorKeys = manifest.NewKeySet(*f.operatorKeys...)
	}
	if pc.P2P, err = control.ParseP2P(*f.p2p); err != nil {
		return usagef("--p2p: %v", err)
	}
	if pc.Metered, err = agent.ParseToggle(*f.metered); err != nil {
		return usagef("--metered: %v", err)
	}
	if pc.OnBattery, err = agent.ParseToggle(*f.battery); err != nil {
		return usagef("--on-battery: %v", err)
	}
	pc.Consent = *f.consent
	return nil
}

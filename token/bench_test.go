package token

import (
	"testing"
	"time"

	"github.com/shoal-cdn/shoal/core"
	"github.com/shoal-cdn/shoal/manifest"
)

// BenchmarkCheck is the cost of one token check (decode, one Ed25519
// verification, claims), as the tracker and the handshake pay it.
func BenchmarkCheck(b *testing.B) {
	pub := keyOf("pub")
	v := NewVerifier([]manifest.PublicKey{manifest.PublicOf(pub)}, &core.ManualClock{T: t0.Add(time.Minute)})
	id := contentOf("bench")
	tok := mustIssue(b, pub, base(ContentScope(id)))
	subj := Subject{Content: id, Tenant: "tenant-a"}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Check(tok, subj); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCheckDelegated adds the delegation's verification.
func BenchmarkCheckDelegated(b *testing.B) {
	pub, svc := keyOf("pub"), keyOf("svc")
	v := NewVerifier([]manifest.PublicKey{manifest.PublicOf(pub)}, &core.ManualClock{T: t0.Add(time.Minute)})
	ds, _ := Delegate(pub, Delegation{Tenant: "tenant-a", Scope: AnyScope(), Delegate: manifest.PublicOf(svc), Expiry: t0.Add(time.Hour)})
	d, _ := DecodeDelegation(ds)
	c := base(AnyScope())
	c.Delegation = d
	tok := mustIssue(b, svc, c)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Check(tok, Subject{Tenant: "tenant-a"}); err != nil {
			b.Fatal(err)
		}
	}
}

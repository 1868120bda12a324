package discovery

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestAnnouncerSendsGrantInsteadOfToken: while a ticket with a grant lives
// the peer's announces carry the grant and no token; a new token drops the
// ticket (the next announce is signed with the new token, and brings a
// grant for it); a refused ticket is followed by one signed announce that
// carries the token again.
func TestAnnouncerSendsGrantInsteadOfToken(t *testing.T) {
	k, id := testKey(t, 6)
	f := &ticketTracker{grants: true}
	var tok atomic.Value
	tok.Store("first")
	cfg := fastConfig(f)
	cfg.Peer, cfg.Signer, cfg.Clock = id, k, fixedClock{signTime}
	cfg.Token = func() string { return tok.Load().(string) }
	cfg.MinInterval, cfg.MaxInterval = time.Hour, time.Hour // only AnnounceNow announces
	a, cancel, done := startAnnouncer(t, cfg)
	waitLog := func(n int) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for len(f.entries()) < n {
			if time.Now().After(deadline) {
				t.Fatalf("tracker saw %q, want %d announces", f.entries(), n)
			}
			time.Sleep(time.Millisecond)
		}
	}
	waitLog(1)
	a.AnnounceNow()
	waitLog(2)
	tok.Store("second")
	a.AnnounceNow()
	waitLog(3)
	a.AnnounceNow()
	waitLog(4)
	f.forget()
	a.AnnounceNow()
	waitLog(6)
	cancel()
	<-done
	want := []string{
		`sig token="first" grant=""`,
		`mac token="" grant="g:first"`,
		`sig token="second" grant=""`, // a new token: the ticket of the old one is dropped
		`mac token="" grant="g:second"`,
		`mac 401`,
		`sig token="second" grant=""`,   // refused: signed, with the token
		`mac token="" grant="g:second"`, // "stopped"
	}
	if got := f.entries(); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("tracker saw\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestGrantTravelsWithMACOnly: a grant is sent only with a MAC and in place
// of the token; the checks name the field. Sign drops a grant; MACWith with
// a ticket without one keeps the token.
func TestGrantTravelsWithMACOnly(t *testing.T) {
	withGrant := testTicket
	withGrant.Grant = []byte{1, 2, 3}
	r := signedRequest(t)
	r.Token = "tok"
	r.MACWith(withGrant, signTime)
	if r.Token != "" || !bytes.Equal(r.Grant, withGrant.Grant) {
		t.Fatalf("MACed with a grant: token %q, grant %v; want no token and the grant", r.Token, r.Grant)
	}
	if err := r.Validate(); err != nil {
		t.Fatalf("MACed announce with a grant: %v", err)
	}
	if err := r.VerifyMAC(testTicket.Key, signTime, time.Minute); err != nil {
		t.Fatalf("MAC with a grant does not verify: %v", err)
	}
	r.Token = "tok"
	r.MACWith(testTicket, signTime)
	if r.Token != "tok" || r.Grant != nil {
		t.Fatalf("MACed without a grant: token %q, grant %v; want the token, no grant", r.Token, r.Grant)
	}
	k, _ := testKey(t, 1)
	r.Grant = []byte{1}
	if err := r.Sign(k, signTime); err != nil || r.Grant != nil {
		t.Fatalf("signed: grant %v (%v), want none", r.Grant, err)
	}

	for name, mod := range map[string]func(*AnnounceRequest){
		"grant without mac": func(r *AnnounceRequest) { r.MAC, r.SessExp = nil, 0 },
		"grant and token":   func(r *AnnounceRequest) { r.Token = "tok" },
		"grant too long":    func(r *AnnounceRequest) { r.Grant = make([]byte, MaxGrantLen+1) },
	} {
		r := signedRequest(t)
		r.MACWith(withGrant, signTime)
		mod(&r)
		err := r.Validate()
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != "grant" {
			t.Errorf("%s: %v, want a FieldError on grant", name, err)
		}
	}
}

// TestGrantDecodesBothWays: the fast decoder and encoding/json read the
// grant alike, and a ticket's grant survives the response encoding.
func TestGrantDecodesBothWays(t *testing.T) {
	r := macedRequest(t)
	r.MACWith(Session{Exp: testTicket.Exp, Key: testTicket.Key, Grant: []byte("\x01\x04acme\x00\x00")}, signTime)
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	fast, ok := decodeAnnounceFast(b)
	if !ok || !bytes.Equal(fast.Grant, r.Grant) {
		t.Fatalf("fast decode of %s: ok %v, grant %q", b, ok, fast.Grant)
	}
	var slow AnnounceRequest
	if err := slow.UnmarshalJSON(b); err != nil || !bytes.Equal(slow.Grant, r.Grant) {
		t.Fatalf("encoding/json decode: %v, grant %q", err, slow.Grant)
	}
	resp := AnnounceResponse{Session: &Session{Exp: 5, Key: testTicket.Key, Grant: r.Grant}}
	var back AnnounceResponse
	if err := json.Unmarshal(resp.AppendJSON(nil), &back); err != nil || back.Session == nil || !bytes.Equal(back.Session.Grant, r.Grant) {
		t.Fatalf("response's grant did not survive: %+v (%v)", back.Session, err)
	}
}

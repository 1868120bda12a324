package discovery

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// testTicket is a session ticket valid at signTime.
var testTicket = Session{Exp: signTime.Add(time.Hour).Unix(), Key: bytes.Repeat([]byte{0x5a}, SessionKeyLen)}

// macedRequest is signedRequest authenticated with testTicket instead.
func macedRequest(t testing.TB) AnnounceRequest {
	r := signedRequest(t)
	r.MACWith(testTicket, signTime)
	return r
}

func TestMACVerifies(t *testing.T) {
	r := macedRequest(t)
	if len(r.Sig) != 0 || r.SessExp != testTicket.Exp || len(r.MAC) != MACLen {
		t.Fatalf("MACWith left sig %x, sess_exp %d, mac of %d bytes", r.Sig, r.SessExp, len(r.MAC))
	}
	if err := r.Validate(); err != nil {
		t.Fatal(err)
	}
	if err := r.VerifyMAC(testTicket.Key, signTime, time.Minute); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		now  time.Time
		mod  func(*AnnounceRequest)
		key  []byte
		want error
	}{
		{"other key", signTime, func(*AnnounceRequest) {}, bytes.Repeat([]byte{1}, SessionKeyLen), ErrSessionInvalid},
		{"modified numwant", signTime, func(r *AnnounceRequest) { r.NumWant++ }, nil, ErrSessionInvalid},
		{"modified token", signTime, func(r *AnnounceRequest) { r.Token = "other" }, nil, ErrSessionInvalid},
		{"no mac", signTime, func(r *AnnounceRequest) { r.MAC = nil }, nil, ErrSessionInvalid},
		{"no sess_exp", signTime, func(r *AnnounceRequest) { r.SessExp = 0 }, nil, ErrSessionInvalid},
		{"expired", time.Unix(testTicket.Exp, 0), func(*AnnounceRequest) {}, nil, ErrSessionExpired},
		{"stale", signTime.Add(61 * time.Second), func(*AnnounceRequest) {}, nil, ErrStale},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := r
			c.mod(&r)
			key := c.key
			if key == nil {
				key = testTicket.Key
			}
			if err := r.VerifyMAC(key, c.now, time.Minute); !errors.Is(err, c.want) {
				t.Fatalf("VerifyMAC = %v, want %v", err, c.want)
			}
		})
	}
}

func TestValidateSessionFields(t *testing.T) {
	for _, c := range []struct {
		name, field string
		mod         func(*AnnounceRequest)
	}{
		{"short mac", "mac", func(r *AnnounceRequest) { r.MAC = r.MAC[:16] }},
		{"mac without sess_exp", "sess_exp", func(r *AnnounceRequest) { r.SessExp = 0 }},
		{"negative sess_exp", "sess_exp", func(r *AnnounceRequest) { r.SessExp = -1 }},
		{"mac and sig", "mac", func(r *AnnounceRequest) { r.Sig = []byte("sig") }},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := macedRequest(t)
			c.mod(&r)
			var fe *FieldError
			if err := r.Validate(); !errors.As(err, &fe) || fe.Field != c.field {
				t.Fatalf("Validate = %v, want a FieldError on %q", err, c.field)
			}
		})
	}
}

func TestIsSessionRefusal(t *testing.T) {
	crossed := fmt.Errorf("announce to tracker http://x: %w: HTTP 401 Unauthorized: %s", ErrTrackerStatus,
		ErrSessionExpired.Error()+": ticket of peer p expired")
	for _, c := range []struct {
		err  error
		want bool
	}{
		{crossed, true},
		{fmt.Errorf("x: %w", ErrSessionInvalid), true},
		{ErrBadSignature, false},
		{errors.New("HTTP 403: announce replayed"), false},
		{nil, false},
	} {
		if got := IsSessionRefusal(c.err); got != c.want {
			t.Errorf("IsSessionRefusal(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}

// ticketTracker hands out a ticket on every signed announce and checks MACs
// against the keys it issued, until forget (a restart with a new secret).
// With grants it is a tracker that checks tokens: announces are validated,
// a signed announce's ticket carries a grant naming the token it saw, and
// every accepted announce is logged with the token and grant it carried.
type ticketTracker struct {
	grants bool
	mu     sync.Mutex // guards the fields below
	keys   map[int64][]byte
	next   int64
	log    []string // "sig 200", "mac 401", …; with grants "sig token=… grant=…"
}

func (f *ticketTracker) forget() { f.mu.Lock(); f.keys = nil; f.mu.Unlock() }

// accepted is the log entry of an accepted announce of kind "sig" or "mac".
func (f *ticketTracker) accepted(kind string, req AnnounceRequest) string {
	if !f.grants {
		return kind + " 200"
	}
	return fmt.Sprintf("%s token=%q grant=%q", kind, req.Token, req.Grant)
}

func (f *ticketTracker) Announce(ctx context.Context, req AnnounceRequest) (AnnounceResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.grants {
		if err := req.Validate(); err != nil {
			f.log = append(f.log, "invalid: "+err.Error())
			return AnnounceResponse{}, err
		}
	}
	if len(req.MAC) > 0 {
		if err := req.VerifyMAC(f.keys[req.SessExp], signTime, 2*time.Hour); err != nil {
			f.log = append(f.log, "mac 401")
			return AnnounceResponse{}, fmt.Errorf("%w: HTTP 401: %v", ErrTrackerStatus, err)
		}
		f.log = append(f.log, f.accepted("mac", req))
		return AnnounceResponse{IntervalS: 3600}, nil
	}
	if err := req.VerifySignature(signTime, 2*time.Hour); err != nil {
		f.log = append(f.log, "bad")
		return AnnounceResponse{}, err
	}
	f.log = append(f.log, f.accepted("sig", req))
	if f.keys == nil {
		f.keys = map[int64][]byte{}
	}
	f.next++
	exp := signTime.Add(time.Hour).Unix() + f.next
	f.keys[exp] = bytes.Repeat([]byte{byte(f.next)}, SessionKeyLen)
	sess := &Session{Exp: exp, Key: f.keys[exp]}
	if f.grants {
		sess.Grant = []byte("g:" + req.Token)
	}
	return AnnounceResponse{IntervalS: 3600, Session: sess}, nil
}

func (f *ticketTracker) entries() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.log...)
}

func TestAnnouncerUsesTicketAndSignsOnceWhenRefused(t *testing.T) {
	k, id := testKey(t, 4)
	f := &ticketTracker{}
	cfg := fastConfig(f)
	cfg.Peer, cfg.Signer, cfg.Clock = id, k, fixedClock{signTime}
	cfg.MinInterval, cfg.MaxInterval = time.Hour, time.Hour // only AnnounceNow announces
	a, cancel, done := startAnnouncer(t, cfg)
	waitLog := func(n int) []string {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			if l := f.entries(); len(l) >= n {
				return l
			}
			if time.Now().After(deadline) {
				t.Fatalf("tracker saw %q, want %d announces", f.entries(), n)
			}
			time.Sleep(time.Millisecond)
		}
	}
	waitLog(1)
	a.AnnounceNow()
	waitLog(2)
	f.forget() // the tracker restarts with a new secret
	a.AnnounceNow()
	waitLog(4)
	a.AnnounceNow()
	waitLog(5)
	cancel()
	<-done
	got := strings.Join(f.entries(), ", ")
	want := "sig 200, mac 200, mac 401, sig 200, mac 200, mac 200" // the last: "stopped"
	if got != want {
		t.Fatalf("tracker saw %s\nwant        %s", got, want)
	}
}

func TestAnnouncerSignsNearTicketExpiry(t *testing.T) {
	k, id := testKey(t, 5)
	f := &ticketTracker{}
	clk := &stepClock{t: signTime}
	cfg := fastConfig(f)
	cfg.Peer, cfg.Signer, cfg.Clock = id, k, clk
	cfg.MinInterval, cfg.MaxInterval = time.Hour, time.Hour
	a, cancel, done := startAnnouncer(t, cfg)
	deadline := time.Now().Add(10 * time.Second)
	for len(f.entries()) < 1 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	// Within sessionMargin of the ticket's end the peer signs rather than
	// risk a refusal. (The fake tracker's window spans the test's times.)
	clk.set(signTime.Add(time.Hour - sessionMargin/2))
	a.AnnounceNow()
	for len(f.entries()) < 2 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	clk.set(signTime)
	cancel()
	<-done
	if got := f.entries(); len(got) < 2 || got[1] != "sig 200" {
		t.Fatalf("tracker saw %q, want the second announce signed", got)
	}
}

// stepClock is a clock a test sets; safe for concurrent use.
type stepClock struct {
	mu sync.Mutex // guards t
	t  time.Time
}

func (c *stepClock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *stepClock) set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

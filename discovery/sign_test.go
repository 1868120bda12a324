package discovery

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

var signTime = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// testKey returns an Ed25519 key derived from seed and its peer ID.
func testKey(t testing.TB, seed uint64) (crypto.PrivKey, string) {
	t.Helper()
	var s [32]byte
	binary.LittleEndian.PutUint64(s[:], seed)
	k, _, err := crypto.GenerateEd25519Key(rand.NewChaCha8(s))
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return k, id.String()
}

func signedRequest(t testing.TB) AnnounceRequest {
	k, id := testKey(t, 1)
	r := validRequest()
	r.Peer = id
	r.Token = "tok"
	if err := r.Sign(k, signTime); err != nil {
		t.Fatal(err)
	}
	return r
}

func TestSignedAnnounceVerifies(t *testing.T) {
	r := signedRequest(t)
	if err := r.VerifySignature(signTime.Add(30*time.Second), time.Minute); err != nil {
		t.Fatalf("VerifySignature: %v", err)
	}
	if err := r.Validate(); err != nil {
		t.Fatalf("Validate of a signed request: %v", err)
	}
}

// TestEveryFieldIsSigned changes one field after signing: each change must
// void the signature, or a man in the middle could rewrite that field.
func TestEveryFieldIsSigned(t *testing.T) {
	mods := map[string]func(*AnnounceRequest){
		"content":    func(r *AnnounceRequest) { r.Content = testContent("b") },
		"addrs":      func(r *AnnounceRequest) { r.Addrs = []string{"/ip4/10.0.0.1/tcp/4001"} },
		"no addrs":   func(r *AnnounceRequest) { r.Addrs = nil },
		"uploaded":   func(r *AnnounceRequest) { r.Uploaded++ },
		"downloaded": func(r *AnnounceRequest) { r.Downloaded++ },
		"left":       func(r *AnnounceRequest) { r.Left = 0 },
		"region":     func(r *AnnounceRequest) { r.Region = "us" },
		"event":      func(r *AnnounceRequest) { r.Event = EventStopped },
		"numwant":    func(r *AnnounceRequest) { r.NumWant = 50 },
		"token":      func(r *AnnounceRequest) { r.Token = "other" },
		"ts":         func(r *AnnounceRequest) { r.TS++ },
		"sig":        func(r *AnnounceRequest) { r.Sig = bytes.Clone(r.Sig); r.Sig[0] ^= 1 },
	}
	for name, mod := range mods {
		t.Run(name, func(t *testing.T) {
			r := signedRequest(t)
			mod(&r)
			if err := r.VerifySignature(signTime, time.Minute); !errors.Is(err, ErrBadSignature) {
				t.Fatalf("after changing %s: VerifySignature = %v, want ErrBadSignature", name, err)
			}
		})
	}
}

func TestAnotherPeersKeyDoesNotVerify(t *testing.T) {
	mallory, _ := testKey(t, 2)
	_, victim := testKey(t, 1)
	r := validRequest()
	r.Peer = victim
	r.Event = EventStopped
	if err := r.Sign(mallory, signTime); err != nil {
		t.Fatal(err)
	}
	if err := r.VerifySignature(signTime, time.Minute); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("announce for %s signed by another key: %v, want ErrBadSignature", victim, err)
	}
}

func TestUnsignedStaleAndNonKeyIDsRefused(t *testing.T) {
	r := signedRequest(t)
	for _, c := range []struct {
		name string
		now  time.Time
		mod  func(*AnnounceRequest)
		want error
	}{
		{"no sig", signTime, func(r *AnnounceRequest) { r.Sig = nil }, ErrUnsigned},
		{"no ts", signTime, func(r *AnnounceRequest) { r.TS = 0 }, ErrUnsigned},
		{"too old", signTime.Add(61 * time.Second), func(*AnnounceRequest) {}, ErrStale},
		{"from the future", signTime.Add(-61 * time.Second), func(*AnnounceRequest) {}, ErrStale},
		{"name, not an ID", signTime, func(r *AnnounceRequest) { r.Peer = "alice" }, ErrBadSignature},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := r
			c.mod(&r)
			if err := r.VerifySignature(c.now, time.Minute); !errors.Is(err, c.want) {
				t.Fatalf("VerifySignature = %v, want %v", err, c.want)
			}
		})
	}
}

// FuzzSignedAnnounce decodes arbitrary bodies and verifies them: no input
// may panic, and a request that decodes must verify the same way after an
// encode/decode round trip (the signature covers the decoded fields, not the
// JSON spelling).
func FuzzSignedAnnounce(f *testing.F) {
	b, _ := marshalRequest(signedRequest(f))
	f.Add(b)
	f.Add([]byte(`{"content":"` + testContent("x").String() + `","peer":"12D3KooWPeerA","ts":1,"sig":"AAAA"}`))
	f.Add([]byte(`{"content":"` + testContent("x").String() + `","peer":"p","ts":-1,"sig":"!"}`))
	b, _ = marshalRequest(macedRequest(f))
	f.Add(b)
	f.Fuzz(func(t *testing.T, data []byte) {
		req, err := DecodeAnnounceRequest(bytes.NewReader(data))
		if err != nil {
			return
		}
		first := req.VerifySignature(signTime, time.Minute)
		firstMAC := req.VerifyMAC(testTicket.Key, signTime, time.Minute)
		enc, err := marshalRequest(req)
		if err != nil {
			t.Fatal(err)
		}
		again, err := DecodeAnnounceRequest(bytes.NewReader(enc))
		if err != nil {
			t.Fatalf("re-decode of %s: %v", enc, err)
		}
		if !bytes.Equal(req.SigningBytes(), again.SigningBytes()) {
			t.Fatalf("round trip changed the signed bytes of %s", enc)
		}
		if second := again.VerifySignature(signTime, time.Minute); (first == nil) != (second == nil) {
			t.Fatalf("verification changed across a round trip: %v then %v", first, second)
		}
		if second := again.VerifyMAC(testTicket.Key, signTime, time.Minute); (firstMAC == nil) != (second == nil) {
			t.Fatalf("MAC verification changed across a round trip: %v then %v", firstMAC, second)
		}
	})
}

// fixedClock never moves, so every announce is signed in the same
// millisecond: the Announcer must still stamp each later than the last.
type fixedClock struct{ t time.Time }

func (c fixedClock) Now() time.Time { return c.t }

func TestAnnouncerSignsEveryAnnounceWithRisingTimestamps(t *testing.T) {
	k, id := testKey(t, 3)
	f := &fakeTracker{reqs: make(chan AnnounceRequest), reply: func(int, AnnounceRequest) (AnnounceResponse, error) {
		return AnnounceResponse{IntervalS: 0.001}, nil
	}}
	cfg := fastConfig(f)
	cfg.Peer, cfg.Signer, cfg.Clock = id, k, fixedClock{signTime}
	_, cancel, done := startAnnouncer(t, cfg)
	for range 3 {
		<-f.reqs
	}
	cancel()
	for r := range f.reqs { // the final "stopped"
		if r.Event == EventStopped {
			break
		}
	}
	<-done
	var last int64
	for i, r := range f.requests() {
		if err := r.VerifySignature(signTime, time.Minute); err != nil {
			t.Fatalf("announce %d (%q): %v", i, r.Event, err)
		}
		if r.TS <= last {
			t.Fatalf("announce %d: ts %d after %d: want rising timestamps", i, r.TS, last)
		}
		last = r.TS
	}
}

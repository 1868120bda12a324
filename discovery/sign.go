package discovery

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"strings"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// Errors of VerifySignature. Each is wrapped with the detail.
var (
	// ErrUnsigned: the announce carries no signature or no timestamp.
	ErrUnsigned = errors.New("announce not signed")
	// ErrBadSignature: the signature does not verify for the peer ID the
	// announce names, or that ID does not embed a public key.
	ErrBadSignature = errors.New("announce signature invalid")
	// ErrStale: the announce was signed too far from the tracker's time, so
	// it may be a replay.
	ErrStale = errors.New("announce timestamp out of window")
	// ErrSessionExpired and ErrSessionInvalid refuse an announce
	// authenticated with a session ticket: the ticket's exp has passed, or
	// its MAC does not verify (another peer's ticket, a tracker that
	// restarted with a new secret or issues none, modified fields). The
	// tracker answers 401 with the text; the peer recognises it (see
	// IsSessionRefusal) and signs its next announce.
	ErrSessionExpired = errors.New("session ticket expired: sign the announce")
	ErrSessionInvalid = errors.New("session ticket invalid: sign the announce")
)

// Signer signs an announce with the peer's private key. A libp2p
// crypto.PrivKey is one; the key must be the one the peer ID embeds.
type Signer interface {
	Sign(msg []byte) ([]byte, error)
}

// signingDomain starts every signed message so that an announce signature can
// never be mistaken for a signature over anything else the peer key signs.
const signingDomain = "shoal announce v1\n"

// SigningBytes is the canonical encoding the signature covers: every field
// but Sig, each length-prefixed or fixed-size, so no two requests share an
// encoding.
func (r *AnnounceRequest) SigningBytes() []byte {
	return r.AppendSigningBytes(make([]byte, 0, 256+len(r.Token)))
}

// AppendSigningBytes appends SigningBytes to b and returns the result.
func (r *AnnounceRequest) AppendSigningBytes(b []byte) []byte {
	b = append(b, signingDomain...)
	b = append(b, r.Content[:]...)
	str := func(s string) {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	str(r.Peer)
	b = binary.AppendUvarint(b, uint64(len(r.Addrs)))
	for _, a := range r.Addrs {
		str(a)
	}
	b = binary.BigEndian.AppendUint64(b, uint64(r.Uploaded))
	b = binary.BigEndian.AppendUint64(b, uint64(r.Downloaded))
	b = binary.BigEndian.AppendUint64(b, uint64(r.Left))
	str(r.Region)
	str(string(r.Event))
	b = binary.BigEndian.AppendUint64(b, uint64(r.NumWant))
	str(r.Token)
	b = binary.BigEndian.AppendUint64(b, uint64(r.TS))
	return b
}

// Sign stamps the request with at (Unix milliseconds) and signs it with s.
// Call it last: any later change to a field voids the signature.
func (r *AnnounceRequest) Sign(s Signer, at time.Time) error {
	r.TS = at.UnixMilli()
	r.Sig, r.MAC, r.SessExp, r.Grant = nil, nil, 0, nil
	sig, err := s.Sign(r.SigningBytes())
	if err != nil {
		return fmt.Errorf("sign announce for peer %s: %w", r.Peer, err)
	}
	r.Sig = sig
	return nil
}

// Time returns TS as a time (the zero time when unset).
func (r *AnnounceRequest) Time() time.Time {
	if r.TS == 0 {
		return time.Time{}
	}
	return time.UnixMilli(r.TS)
}

// VerifySignature checks that the request was signed by the key its peer ID
// embeds (no key registry: a libp2p peer ID of an Ed25519 key is that key)
// and that its timestamp is within window of now either way. It does not
// call Validate.
func (r *AnnounceRequest) VerifySignature(now time.Time, window time.Duration) error {
	if len(r.Sig) == 0 || r.TS == 0 {
		return fmt.Errorf("%w: want fields ts and sig", ErrUnsigned)
	}
	if d := now.Sub(r.Time()); d > window || d < -window {
		return fmt.Errorf("%w: signed at %s, tracker time %s, allowed skew %v",
			ErrStale, r.Time().UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339), window)
	}
	id, err := peer.Decode(r.Peer)
	if err != nil {
		return fmt.Errorf("%w: peer %q is not a libp2p peer ID: %v", ErrBadSignature, truncate(r.Peer, 64), err)
	}
	pub, err := id.ExtractPublicKey()
	if err != nil {
		return fmt.Errorf("%w: peer ID %s does not embed its public key: %v", ErrBadSignature, r.Peer, err)
	}
	ok, err := pub.Verify(r.SigningBytes(), r.Sig)
	if err != nil || !ok {
		return fmt.Errorf("%w: signature does not verify for peer %s", ErrBadSignature, r.Peer)
	}
	return nil
}

// MACWith stamps the request with at (Unix milliseconds) and authenticates
// it with the session ticket t instead of a signature: MAC is HMAC-SHA256
// with t.Key over SigningBytes, the bytes a signature would cover. A ticket
// with a grant sends the grant in place of the token (Token is cleared: the
// tracker checked it when it issued the ticket, and t.Key binds the grant).
// Call it last, as Sign.
func (r *AnnounceRequest) MACWith(t Session, at time.Time) {
	r.TS = at.UnixMilli()
	r.Sig = nil
	r.SessExp = t.Exp
	r.MAC = nil
	r.Grant = nil
	if len(t.Grant) > 0 {
		r.Grant, r.Token = t.Grant, ""
	}
	sum := NewMACKey(t.Key).mac(r)
	r.MAC = append(make([]byte, 0, MACLen), sum[:]...)
}

// VerifyMAC checks a request authenticated with a session ticket whose key
// the tracker derived as key (from its secret, r.Peer and r.SessExp): the
// ticket has not expired at now, TS is within window of now either way, and
// MAC verifies (compared in constant time). It does not call Validate.
func (r *AnnounceRequest) VerifyMAC(key []byte, now time.Time, window time.Duration) error {
	if err := r.checkMACFields(now, window); err != nil {
		return err
	}
	return r.verifyMAC(NewMACKey(key))
}

// checkMACFields is what VerifyMAC checks besides the MAC itself.
func (r *AnnounceRequest) checkMACFields(now time.Time, window time.Duration) error {
	if len(r.MAC) == 0 || r.TS == 0 || r.SessExp == 0 {
		return fmt.Errorf("%w: want fields ts, sess_exp and mac", ErrSessionInvalid)
	}
	if now.Unix() >= r.SessExp {
		return fmt.Errorf("%w: ticket of peer %s expired at %s, tracker time %s", ErrSessionExpired, r.Peer,
			time.Unix(r.SessExp, 0).UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	if d := now.Sub(r.Time()); d > window || d < -window {
		return fmt.Errorf("%w: sent at %s, tracker time %s, allowed skew %v",
			ErrStale, r.Time().UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339), window)
	}
	return nil
}

// VerifyMACKey is VerifyMAC with the ticket key's pads made once
// (NewMACKey), as a peer or tracker that checks many announces of one
// ticket keeps them.
func (r *AnnounceRequest) VerifyMACKey(k *MACKey, now time.Time, window time.Duration) error {
	if err := r.checkMACFields(now, window); err != nil {
		return err
	}
	return r.verifyMAC(k)
}

func (r *AnnounceRequest) verifyMAC(k *MACKey) error {
	sum := k.mac(r)
	if !hmac.Equal(sum[:], r.MAC) {
		return fmt.Errorf("%w: mac does not verify for peer %s", ErrSessionInvalid, r.Peer)
	}
	return nil
}

// MACKey is a session ticket key made ready for HMAC-SHA256: its inner and
// outer pads, XORed once. It is read only after NewMACKey, so one MACKey may
// serve any number of goroutines.
type MACKey struct {
	ipad, opad [sha256.BlockSize]byte
}

// NewMACKey returns key's pads (a key longer than a block is hashed first,
// as HMAC does).
func NewMACKey(key []byte) *MACKey {
	k := new(MACKey)
	k.Set(key)
	return k
}

// Set makes k the pads of key, in place.
func (k *MACKey) Set(key []byte) {
	var kb [sha256.BlockSize]byte
	if len(key) > sha256.BlockSize {
		h := sha256.Sum256(key)
		copy(kb[:], h[:])
	} else {
		copy(kb[:], key)
	}
	for i, c := range kb {
		k.ipad[i] = c ^ 0x36
		k.opad[i] = c ^ 0x5c
	}
}

// macBuf is the stack buffer MACKey hashes the inner pad and the message
// in; a longer message is hashed in a pooled digest instead.
const macBuf = 2048

var digests = sync.Pool{New: func() any { return sha256.New() }}

// Sum returns HMAC-SHA256 of msg with k, without allocating.
func (k *MACKey) Sum(msg []byte) [sha256.Size]byte {
	if len(msg) > macBuf-sha256.BlockSize {
		return k.outer(k.innerLong(msg))
	}
	var buf [macBuf]byte
	b := append(append(buf[:0], k.ipad[:]...), msg...)
	return k.outer(sha256.Sum256(b))
}

// innerLong is the inner hash of a message too long for the stack buffer.
func (k *MACKey) innerLong(msg []byte) (sum [sha256.Size]byte) {
	h := digests.Get().(hash.Hash)
	h.Reset()
	h.Write(k.ipad[:])
	h.Write(msg)
	h.Sum(sum[:0])
	digests.Put(h)
	return sum
}

func (k *MACKey) outer(inner [sha256.Size]byte) [sha256.Size]byte {
	var ob [sha256.BlockSize + sha256.Size]byte
	copy(ob[:], k.opad[:])
	copy(ob[sha256.BlockSize:], inner[:])
	return sha256.Sum256(ob[:])
}

// mac is HMAC-SHA256 of r's SigningBytes with k, with no allocation for
// announces whose signing bytes fit the stack buffer (all but those with
// tokens of more than about 1.7 KiB).
func (k *MACKey) mac(r *AnnounceRequest) [sha256.Size]byte {
	var buf [macBuf]byte
	b := r.AppendSigningBytes(append(buf[:0], k.ipad[:]...))
	if len(b) > macBuf { // b grew on the heap; nothing of buf may reach a hash.Hash
		return k.Sum(r.SigningBytes())
	}
	return k.outer(sha256.Sum256(b))
}

// IsSessionRefusal reports whether err, an error of Announce, is a tracker
// refusing a session ticket (ErrSessionExpired or ErrSessionInvalid, as
// text: it crossed HTTP), so the announce should be signed instead.
func IsSessionRefusal(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, ErrSessionExpired) || errors.Is(err, ErrSessionInvalid) {
		return true
	}
	s := err.Error()
	return strings.Contains(s, ErrSessionExpired.Error()) || strings.Contains(s, ErrSessionInvalid.Error())
}

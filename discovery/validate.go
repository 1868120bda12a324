package discovery

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/shoal-cdn/shoal/core"
)

// ErrInvalidRequest is wrapped by every validation failure of an announce.
var ErrInvalidRequest = errors.New("invalid announce request")

// FieldError is a validation failure of one field of an announce request. The
// tracker returns its text in the JSON error so the peer's log names the field.
type FieldError struct {
	Field  string // JSON name of the bad field, or "body"
	Reason string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Reason }

// Unwrap makes every FieldError match ErrInvalidRequest.
func (e *FieldError) Unwrap() error { return ErrInvalidRequest }

func fieldErr(field, format string, a ...any) error {
	return &FieldError{Field: field, Reason: fmt.Sprintf(format, a...)}
}

// UnmarshalJSON decodes the request so that a malformed content ID or a value
// of the wrong type is reported as a FieldError naming the field, rather than
// as encoding/json's generic message.
func (r *AnnounceRequest) UnmarshalJSON(b []byte) error {
	type plain AnnounceRequest // no methods: avoids recursing into this one
	var aux struct {
		Content *string `json:"content"` // shadows plain.Content: parsed below
		*plain
	}
	aux.plain = (*plain)(r)
	if err := json.Unmarshal(b, &aux); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return fieldErr(strings.TrimPrefix(te.Field, "plain."), "want a JSON %s, got %s", te.Type, te.Value)
		}
		var se *json.SyntaxError
		if errors.As(err, &se) && strings.HasSuffix(se.Error(), "after top-level value") {
			// A second value after the object is a client bug worth
			// reporting; it would otherwise be silently ignored.
			return fieldErr("body", "trailing data after the JSON object")
		}
		return fieldErr("body", "bad JSON: %v", err)
	}
	if aux.Content == nil {
		return fieldErr("content", "missing")
	}
	id, err := core.ParseContentID(*aux.Content)
	if err != nil {
		return fieldErr("content", "%v", err)
	}
	r.Content = id
	return nil
}

// DecodeAnnounceRequest reads one JSON announce request from rd and validates
// it. Every error it returns is a *FieldError wrapping ErrInvalidRequest. The
// caller bounds the size of rd.
func DecodeAnnounceRequest(rd io.Reader) (AnnounceRequest, error) {
	b, err := io.ReadAll(rd)
	if err != nil {
		return AnnounceRequest{}, fieldErr("body", "read: %v", err)
	}
	return DecodeAnnounceBody(b)
}

// DecodeAnnounceBody is DecodeAnnounceRequest for a body already read. A
// body of the plain shape peers send is read without reflection
// (decodeAnnounceFast); anything else takes one pass of encoding/json (plus
// its validity scan), whose errors name the field.
func DecodeAnnounceBody(b []byte) (AnnounceRequest, error) {
	req, ok := decodeAnnounceFast(b)
	if !ok {
		req = AnnounceRequest{}
		if err := req.UnmarshalJSON(b); err != nil {
			return AnnounceRequest{}, err
		}
	}
	if err := req.Validate(); err != nil {
		return AnnounceRequest{}, err
	}
	return req, nil
}

// Validate checks every known field of the request against the protocol's
// limits. It does not require the peer ID to decode as a libp2p ID, so that
// simulations may use short names; peers authenticate each other on connect.
func (r *AnnounceRequest) Validate() error {
	if r.Content == (core.ContentID{}) {
		return fieldErr("content", "missing")
	}
	if err := checkToken(r.Peer, MaxPeerIDLen); err != nil {
		return fieldErr("peer", "%v", err)
	}
	if len(r.Addrs) > MaxAddrs {
		return fieldErr("addrs", "%d addresses, at most %d allowed", len(r.Addrs), MaxAddrs)
	}
	for i, a := range r.Addrs {
		if len(a) > MaxAddrLen {
			return fieldErr("addrs", "address %d is %d bytes, at most %d allowed", i, len(a), MaxAddrLen)
		}
		if _, plain := PlainAddr(a); plain {
			continue // a multiaddr, checked without building one
		}
		if _, err := ma.NewMultiaddr(a); err != nil {
			return fieldErr("addrs", "address %d %q is not a multiaddr: %v", i, a, err)
		}
	}
	for _, c := range []struct {
		name string
		v    int64
	}{{"uploaded", r.Uploaded}, {"downloaded", r.Downloaded}, {"left", r.Left}} {
		if c.v < 0 {
			return fieldErr(c.name, "negative (%d)", c.v)
		}
	}
	if r.Region != "" {
		if err := checkToken(r.Region, MaxRegionLen); err != nil {
			return fieldErr("region", "%v", err)
		}
	}
	switch r.Event {
	case EventNone, EventStarted, EventCompleted, EventStopped:
	default:
		return fieldErr("event", "unknown event %q (want started, completed, stopped or empty)", truncate(string(r.Event), 32))
	}
	if r.NumWant < 0 || r.NumWant > MaxNumWant {
		return fieldErr("numwant", "%d out of range 0..%d", r.NumWant, MaxNumWant)
	}
	if err := checkAuth(r.Token, r.TS, r.Sig, r.SessExp, r.MAC); err != nil {
		return err
	}
	return checkGrant(r.Grant, r.MAC, r.Token)
}

// checkGrant checks the shape of a session ticket's grant: only with a
// MAC (the ticket's key binds it), in place of the token, and bounded.
func checkGrant(grant, mac []byte, token string) error {
	switch {
	case len(grant) == 0:
		return nil
	case len(grant) > MaxGrantLen:
		return fieldErr("grant", "%d bytes, at most %d allowed", len(grant), MaxGrantLen)
	case len(mac) == 0:
		return fieldErr("grant", "sent without mac: a grant comes with the session ticket's mac")
	case token != "":
		return fieldErr("grant", "sent with token: the grant stands for the token, send one of them")
	}
	return nil
}

// checkAuth checks the shape of a signed request's credentials (an
// announce's or a telemetry report's): the token, the signing time, and a
// signature or a session ticket's MAC, not both.
func checkAuth(token string, ts int64, sig []byte, sessExp int64, mac []byte) error {
	if len(token) > MaxTokenLen {
		return fieldErr("token", "%d bytes, at most %d allowed", len(token), MaxTokenLen)
	}
	if ts < 0 {
		return fieldErr("ts", "negative (%d)", ts)
	}
	if len(sig) > MaxSigLen {
		return fieldErr("sig", "%d bytes, at most %d allowed", len(sig), MaxSigLen)
	}
	if sessExp < 0 {
		return fieldErr("sess_exp", "negative (%d)", sessExp)
	}
	if len(mac) > 0 {
		if len(mac) != MACLen {
			return fieldErr("mac", "%d bytes, want %d (HMAC-SHA256)", len(mac), MACLen)
		}
		if sessExp == 0 {
			return fieldErr("sess_exp", "missing: a mac needs the exp of the session ticket it was made with")
		}
		if len(sig) > 0 {
			return fieldErr("mac", "sent with sig: authenticate with one of them")
		}
	}
	return nil
}

// checkToken accepts a non-empty identifier of at most max bytes made of
// letters, digits, '-', '_' and '.': every libp2p peer ID encoding (base58,
// base32, base36) and every sensible region label fit.
func checkToken(s string, max int) error {
	if s == "" {
		return errors.New("empty")
	}
	if len(s) > max {
		return fmt.Errorf("%d bytes, at most %d allowed", len(s), max)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.'
		if !ok {
			return fmt.Errorf("byte %d (%q) not allowed: want letters, digits, '-', '_' or '.'", i, c)
		}
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// marshalRequest encodes req; kept here beside the decoder so the fuzz test
// can check the two agree.
func marshalRequest(req AnnounceRequest) ([]byte, error) {
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(req); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

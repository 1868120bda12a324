package discovery

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// TelemetryPath is the tracker's endpoint for peers' periodic summaries,
// relative to its base URL.
const TelemetryPath = "/telemetry"

// StartupBucketsS are the upper bounds, in seconds, of the start-up
// histogram a report carries (TelemetryReport.Startups), after which comes
// one bucket for everything slower (+Inf). The tracker's
// shoal_fleet_startups histogram has the same buckets.
var StartupBucketsS = []float64{0.25, 0.5, 1, 2, 4, 8}

// Limits on a telemetry report.
const (
	// MaxTelemetryBytes bounds the request body.
	MaxTelemetryBytes = 16 << 10
	// MaxLabelLen bounds region, network, device and cohort.
	MaxLabelLen = 64
	// NumStartupBuckets is len(StartupBucketsS)+1: the +Inf bucket last.
	NumStartupBuckets = 7
	// MaxTelemetryInterval is the longest interval_s a report may claim: a
	// peer counts as present for two of its intervals, so a long claimed
	// interval would let a few reports hold the tracker's places for long.
	MaxTelemetryInterval = 10 * time.Minute
	// maxTelemetryCount bounds every integer of a report: 2^53, exact as a
	// float64, so a sum of reports stays meaningful in Prometheus.
	maxTelemetryCount = 1 << 53
	// maxTelemetrySeconds bounds stall_s, watch_s and startup_s.
	maxTelemetrySeconds = 1e12
)

// telemetryDomain starts the signed bytes of a report, so its signature can
// never be taken for a signature over an announce or anything else the peer
// key signs.
const telemetryDomain = "shoal telemetry v1\n"

// TelemetryReport is the JSON body of POST /telemetry: one peer's summary
// of what it did since its previous report. It carries aggregates only: no
// content IDs or paths, no addresses. The tenant is not in it: the tracker
// takes it from the verified token.
type TelemetryReport struct {
	Peer  string `json:"peer"`            // libp2p peer ID
	Token string `json:"token,omitempty"` // access token, when the tracker requires one
	// TS is when the report was signed, in Unix milliseconds; Sig is the
	// peer's signature over SigningBytes with the key its ID embeds. A
	// session ticket's MAC (SessExp, MAC) may replace Sig, as for announces.
	TS      int64  `json:"ts"`
	Sig     []byte `json:"sig,omitempty"`
	SessExp int64  `json:"sess_exp,omitempty"`
	MAC     []byte `json:"mac,omitempty"`
	// Seq numbers the peer's reports, increasing; the tracker ignores one
	// not above the last it accepted from the peer (a repeat or a replay).
	Seq int64 `json:"seq"`
	// IntervalS is the peer's reporting interval in seconds: a peer not
	// heard from for two intervals no longer counts as present.
	IntervalS float64 `json:"interval_s"`

	// Labels: each at most MaxLabelLen bytes of [a-zA-Z0-9._/-], or empty.
	Region  string `json:"region,omitempty"`
	Network string `json:"network,omitempty"` // ISP or ASN label, as configured
	Device  string `json:"device,omitempty"`  // device class: desktop, mobile, tv, settop, server…
	Cohort  string `json:"cohort,omitempty"`  // "experiment/variant", or empty

	// Deltas since the previous report.
	FromPeers  int64 `json:"from_peers"`  // verified bytes received from peers
	FromOrigin int64 `json:"from_origin"` // verified bytes received from the origin
	Uploaded   int64 `json:"uploaded"`    // bytes sent to peers
	// Startups counts playback start-ups per bucket of StartupBucketsS,
	// the +Inf bucket last (not cumulative); empty when there were none.
	Startups []int64 `json:"startups,omitempty"`
	// StartupS is the sum of those start-ups' durations in seconds.
	StartupS float64 `json:"startup_s,omitempty"`
	Stalls   int64   `json:"stalls"`  // playback stalls
	StallS   float64 `json:"stall_s"` // seconds stalled
	WatchS   float64 `json:"watch_s"` // seconds of media sent to players (playback clock)

	// Gauges, as of the report.
	Swarms     int64 `json:"swarms"`      // swarms joined
	Chunks     int64 `json:"chunks"`      // chunks wanted or held across joined contents
	RareChunks int64 `json:"rare_chunks"` // of those, missing here and held by no connected peer
}

// SigningBytes is the canonical encoding the signature (or MAC) covers:
// every field but Sig, SessExp and MAC, each length-prefixed or fixed-size.
func (r *TelemetryReport) SigningBytes() []byte {
	b := make([]byte, 0, 256+len(r.Token))
	b = append(b, telemetryDomain...)
	str := func(s string) {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	u64 := func(v int64) { b = binary.BigEndian.AppendUint64(b, uint64(v)) }
	f64 := func(v float64) { b = binary.BigEndian.AppendUint64(b, math.Float64bits(v)) }
	str(r.Peer)
	str(r.Token)
	u64(r.TS)
	u64(r.Seq)
	f64(r.IntervalS)
	str(r.Region)
	str(r.Network)
	str(r.Device)
	str(r.Cohort)
	u64(r.FromPeers)
	u64(r.FromOrigin)
	u64(r.Uploaded)
	b = binary.AppendUvarint(b, uint64(len(r.Startups)))
	for _, c := range r.Startups {
		u64(c)
	}
	f64(r.StartupS)
	u64(r.Stalls)
	f64(r.StallS)
	f64(r.WatchS)
	u64(r.Swarms)
	u64(r.Chunks)
	u64(r.RareChunks)
	return b
}

// Sign stamps the report with at (Unix milliseconds) and signs it with s,
// which must hold the key r.Peer embeds. Call it last.
func (r *TelemetryReport) Sign(s Signer, at time.Time) error {
	r.TS = at.UnixMilli()
	r.Sig, r.MAC, r.SessExp = nil, nil, 0
	sig, err := s.Sign(r.SigningBytes())
	if err != nil {
		return fmt.Errorf("sign telemetry of peer %s: %w", r.Peer, err)
	}
	r.Sig = sig
	return nil
}

// MACWith stamps the report with at and authenticates it with the session
// ticket t instead of a signature (see AnnounceRequest.MACWith).
func (r *TelemetryReport) MACWith(t Session, at time.Time) {
	r.TS = at.UnixMilli()
	r.Sig, r.MAC = nil, nil
	r.SessExp = t.Exp
	m := hmac.New(sha256.New, t.Key)
	m.Write(r.SigningBytes())
	r.MAC = m.Sum(make([]byte, 0, MACLen))
}

func (r *TelemetryReport) checkTime(now time.Time, window time.Duration) error {
	at := time.UnixMilli(r.TS)
	if d := now.Sub(at); d > window || d < -window {
		return fmt.Errorf("%w: telemetry of peer %s signed at %s, tracker time %s, allowed skew %v",
			ErrStale, r.Peer, at.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339), window)
	}
	return nil
}

// VerifySignature checks that the report was signed by the key its peer ID
// embeds within window of now. It does not call Validate.
func (r *TelemetryReport) VerifySignature(now time.Time, window time.Duration) error {
	if len(r.Sig) == 0 || r.TS == 0 {
		return fmt.Errorf("%w: telemetry wants fields ts and sig", ErrUnsigned)
	}
	if err := r.checkTime(now, window); err != nil {
		return err
	}
	id, err := peer.Decode(r.Peer)
	if err != nil {
		return fmt.Errorf("%w: peer %q is not a libp2p peer ID: %v", ErrBadSignature, truncate(r.Peer, 64), err)
	}
	pub, err := id.ExtractPublicKey()
	if err != nil {
		return fmt.Errorf("%w: peer ID %s does not embed its public key: %v", ErrBadSignature, r.Peer, err)
	}
	if ok, err := pub.Verify(r.SigningBytes(), r.Sig); err != nil || !ok {
		return fmt.Errorf("%w: telemetry signature does not verify for peer %s", ErrBadSignature, r.Peer)
	}
	return nil
}

// VerifyMAC checks a report authenticated with a session ticket whose key
// the tracker derived as key (see AnnounceRequest.VerifyMAC).
func (r *TelemetryReport) VerifyMAC(key []byte, now time.Time, window time.Duration) error {
	if len(r.MAC) == 0 || r.TS == 0 || r.SessExp == 0 {
		return fmt.Errorf("%w: want fields ts, sess_exp and mac", ErrSessionInvalid)
	}
	if now.Unix() >= r.SessExp {
		return fmt.Errorf("%w: ticket of peer %s expired at %s", ErrSessionExpired, r.Peer, time.Unix(r.SessExp, 0).UTC().Format(time.RFC3339))
	}
	if err := r.checkTime(now, window); err != nil {
		return err
	}
	m := hmac.New(sha256.New, key)
	m.Write(r.SigningBytes())
	var sum [sha256.Size]byte
	if !hmac.Equal(m.Sum(sum[:0]), r.MAC) {
		return fmt.Errorf("%w: mac does not verify for peer %s", ErrSessionInvalid, r.Peer)
	}
	return nil
}

// Interval returns IntervalS as a duration.
func (r *TelemetryReport) Interval() time.Duration { return secondsToDuration(r.IntervalS) }

// checkLabel accepts "" or at most MaxLabelLen bytes of [a-zA-Z0-9._/-].
func checkLabel(s string) error {
	if len(s) > MaxLabelLen {
		return fmt.Errorf("%d bytes, at most %d allowed", len(s), MaxLabelLen)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == '/' || c == ','
		if !ok {
			return fmt.Errorf("byte %d (%q) not allowed: want letters, digits, '-', '_', '.', '/' or ','", i, c)
		}
	}
	return nil
}

// CheckTelemetryLabel reports whether s may be a report's region, network,
// device or cohort: empty, or at most MaxLabelLen bytes of [a-zA-Z0-9._/,-]
// (a peer in two experiments has the cohort "a/x,b/y").
func CheckTelemetryLabel(s string) error { return checkLabel(s) }

// Validate checks every field's shape against the limits (not the
// signature). Each error is a *FieldError naming the field.
func (r *TelemetryReport) Validate() error {
	if err := checkToken(r.Peer, MaxPeerIDLen); err != nil {
		return fieldErr("peer", "%v", err)
	}
	if err := checkAuth(r.Token, r.TS, r.Sig, r.SessExp, r.MAC); err != nil {
		return err
	}
	if r.Seq <= 0 {
		return fieldErr("seq", "want a positive number, got %d", r.Seq)
	}
	if !(r.IntervalS >= 1) || r.IntervalS > MaxTelemetryInterval.Seconds() {
		return fieldErr("interval_s", "want 1 to %.0f seconds, got %v", MaxTelemetryInterval.Seconds(), r.IntervalS)
	}
	for _, l := range []struct{ name, v string }{{"region", r.Region}, {"network", r.Network}, {"device", r.Device}, {"cohort", r.Cohort}} {
		if err := checkLabel(l.v); err != nil {
			return fieldErr(l.name, "%v", err)
		}
	}
	for _, c := range []struct {
		name string
		v    int64
	}{{"from_peers", r.FromPeers}, {"from_origin", r.FromOrigin}, {"uploaded", r.Uploaded}, {"stalls", r.Stalls},
		{"swarms", r.Swarms}, {"chunks", r.Chunks}, {"rare_chunks", r.RareChunks}} {
		if c.v < 0 || c.v > maxTelemetryCount {
			return fieldErr(c.name, "want 0 to 2^53, got %d", c.v)
		}
	}
	if r.RareChunks > r.Chunks {
		return fieldErr("rare_chunks", "%d, more than chunks (%d)", r.RareChunks, r.Chunks)
	}
	if n := len(r.Startups); n != 0 && n != NumStartupBuckets {
		return fieldErr("startups", "%d buckets, want %d (one per bound of %v, then +Inf) or none", n, NumStartupBuckets, StartupBucketsS)
	}
	for i, c := range r.Startups {
		if c < 0 || c > maxTelemetryCount {
			return fieldErr("startups", "bucket %d: want 0 to 2^53, got %d", i, c)
		}
	}
	for _, f := range []struct {
		name string
		v    float64
	}{{"startup_s", r.StartupS}, {"stall_s", r.StallS}, {"watch_s", r.WatchS}} {
		if !(f.v >= 0) || f.v > maxTelemetrySeconds {
			return fieldErr(f.name, "want 0 to %g seconds, got %v", float64(maxTelemetrySeconds), f.v)
		}
	}
	return nil
}

// StartupCount is the number of start-ups the report counts.
func (r *TelemetryReport) StartupCount() int64 {
	var n int64
	for _, c := range r.Startups {
		n += c
	}
	return n
}

// DecodeTelemetry reads one report (at most MaxTelemetryBytes) and
// validates its shape. Unknown fields are refused, so a peer cannot slip
// anything the tracker would not aggregate (a content ID, an address) into
// it. Every error is a *FieldError wrapping ErrInvalidRequest.
func DecodeTelemetry(rd io.Reader) (TelemetryReport, error) {
	b, err := io.ReadAll(io.LimitReader(rd, MaxTelemetryBytes+1))
	if err != nil {
		return TelemetryReport{}, fieldErr("body", "read: %v", err)
	}
	if len(b) > MaxTelemetryBytes {
		return TelemetryReport{}, fieldErr("body", "larger than %d bytes", MaxTelemetryBytes)
	}
	var r TelemetryReport
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(&r); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return TelemetryReport{}, fieldErr(te.Field, "want a JSON %s, got %s", te.Type, te.Value)
		}
		if f, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
			return TelemetryReport{}, fieldErr(strings.Trim(f, `"`), "unknown field: a report carries only the documented aggregates")
		}
		return TelemetryReport{}, fieldErr("body", "not a telemetry report: %v", err)
	}
	if d.More() {
		return TelemetryReport{}, fieldErr("body", "data after the report")
	}
	// An empty list and an absent one mean the same, and the encoder omits
	// both: keep one form so a report re-encodes to what was decoded.
	if len(r.Sig) == 0 {
		r.Sig = nil
	}
	if len(r.MAC) == 0 {
		r.MAC = nil
	}
	if len(r.Startups) == 0 {
		r.Startups = nil
	}
	if err := r.Validate(); err != nil {
		return TelemetryReport{}, err
	}
	return r, nil
}

// ErrTelemetryRefused: the tracker answered a report with a 4xx status
// other than 429.
var ErrTelemetryRefused = errors.New("tracker refused telemetry")

// Telemetry posts r to the tracker. A 429 or 503 comes back as a
// *RetryAfterError when the tracker says when to come back.
func (c *TrackerClient) Telemetry(ctx context.Context, r TelemetryReport) error {
	url := strings.TrimSuffix(c.announce, AnnouncePath) + TelemetryPath
	body, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("telemetry to %s: %w", c.base, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("telemetry to %s: %w", c.base, err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("telemetry to %s: %w", c.base, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 == 2 {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBytes))
		return nil
	}
	reason, intervalS := errorReason(resp.Body)
	err = fmt.Errorf("telemetry to %s: %w: HTTP %s: %s", c.base, &StatusError{Code: resp.StatusCode}, resp.Status, reason)
	if resp.StatusCode/100 == 4 && resp.StatusCode != http.StatusTooManyRequests {
		err = fmt.Errorf("%w: %w", ErrTelemetryRefused, err)
	}
	if d := max(parseRetryAfter(resp.Header.Get("Retry-After"), time.Now()), secondsToDuration(intervalS)); d > 0 {
		err = &RetryAfterError{err: err, After: d}
	}
	return err
}

// Telemetry sends r to the tracker in use, or to the next ones in turn.
func (t *Trackers) Telemetry(ctx context.Context, r TelemetryReport) error {
	return t.try(ctx, func(ctx context.Context, c *TrackerClient) error { return c.Telemetry(ctx, r) })
}

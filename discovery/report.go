package discovery

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/shoal-cdn/shoal/core"
)

// ReportPath is the tracker's endpoint for reports of proven offences,
// relative to its base URL.
const ReportPath = "/report"

// Limits on a report.
const (
	MaxReportBytes = 4 << 10 // request body
	maxSigLen      = 1024    // bytes of a signature (Ed25519: 64; RSA keys are longer)
	// ReportMaxAge is how old (or how far in the future) a report's time
	// may be: a captured report cannot be replayed later.
	ReportMaxAge = 10 * time.Minute
)

// reportDomain prefixes the signed bytes so a report's signature can never
// be taken for a signature over anything else.
const reportDomain = "shoal-report/1"

// Report is the JSON body of POST /report: Reporter says that Offender sent
// it chunk Chunk of Content and that those bytes, whose SHA-256 is Hash, did
// not verify against the publisher's signed hashes. It is signed with the
// reporter's libp2p identity key, so the tracker knows who reports; it does
// not prove the offence to the tracker (the bytes are not sent), which is
// why the tracker acts only on several distinct reporters.
type Report struct {
	Reporter string         `json:"reporter"` // libp2p peer ID of the signer
	Offender string         `json:"offender"` // libp2p peer ID of the sender of the bad chunk
	Content  core.ContentID `json:"content"`
	Chunk    int            `json:"chunk"`
	Hash     string         `json:"hash"` // hex SHA-256 of the bytes that failed verification
	Time     int64          `json:"time"` // unix seconds when it was signed
	Sig      []byte         `json:"sig"`  // base64 signature over SigningBytes
}

// SigningBytes is the canonical encoding of every field but Sig.
func (r *Report) SigningBytes() []byte {
	var b strings.Builder
	for _, f := range []string{reportDomain, r.Reporter, r.Offender, r.Content.String(), strconv.Itoa(r.Chunk), r.Hash, strconv.FormatInt(r.Time, 10)} {
		b.WriteString(f)
		b.WriteByte('\n')
	}
	return []byte(b.String())
}

// SignReport sets r.Time (to now) and r.Sig with key, which must be the key
// of r.Reporter.
func SignReport(r *Report, key crypto.PrivKey, now time.Time) error {
	r.Time = now.Unix()
	sig, err := key.Sign(r.SigningBytes())
	if err != nil {
		return fmt.Errorf("sign report: %w", err)
	}
	r.Sig = sig
	return nil
}

// Validate checks every field's shape (not the signature: see Verify).
func (r *Report) Validate() error {
	for _, f := range []struct{ name, v string }{{"reporter", r.Reporter}, {"offender", r.Offender}} {
		if f.v == "" {
			return fieldErr(f.name, "missing")
		}
		if err := checkToken(f.v, MaxPeerIDLen); err != nil {
			return fieldErr(f.name, "%v", err)
		}
	}
	if r.Reporter == r.Offender {
		return fieldErr("offender", "is the reporter")
	}
	if r.Content == (core.ContentID{}) {
		return fieldErr("content", "missing")
	}
	if r.Chunk < 0 {
		return fieldErr("chunk", "negative: %d", r.Chunk)
	}
	if h, err := hex.DecodeString(r.Hash); err != nil || len(h) != 32 {
		return fieldErr("hash", "want 64 hex digits (SHA-256), got %q", truncate(r.Hash, 80))
	}
	if r.Time <= 0 {
		return fieldErr("time", "missing")
	}
	if len(r.Sig) == 0 || len(r.Sig) > maxSigLen {
		return fieldErr("sig", "want 1-%d bytes, got %d", maxSigLen, len(r.Sig))
	}
	return nil
}

// Verify checks that r.Sig is r.Reporter's signature over r and that r was
// signed within ReportMaxAge of now.
func (r *Report) Verify(now time.Time) error {
	if d := now.Sub(time.Unix(r.Time, 0)); d > ReportMaxAge || d < -ReportMaxAge {
		return fieldErr("time", "signed %v from now; allowed ±%v", d.Round(time.Second), ReportMaxAge)
	}
	id, err := peer.Decode(r.Reporter)
	if err != nil {
		return fieldErr("reporter", "not a peer ID: %v", err)
	}
	pub, err := id.ExtractPublicKey()
	if err != nil {
		return fieldErr("reporter", "peer ID does not embed its public key: %v", err)
	}
	ok, err := pub.Verify(r.SigningBytes(), r.Sig)
	if err != nil || !ok {
		return fieldErr("sig", "not the reporter's signature over this report")
	}
	return nil
}

// DecodeReport reads one report (at most MaxReportBytes) and validates its
// shape. Unknown fields are refused: a report is evidence, not telemetry.
func DecodeReport(rd io.Reader) (Report, error) {
	b, err := io.ReadAll(io.LimitReader(rd, MaxReportBytes+1))
	if err != nil {
		return Report{}, fieldErr("body", "read: %v", err)
	}
	if len(b) > MaxReportBytes {
		return Report{}, fieldErr("body", "larger than %d bytes", MaxReportBytes)
	}
	var r Report
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(&r); err != nil {
		return Report{}, fieldErr("body", "not a report: %v", err)
	}
	if d.More() {
		return Report{}, fieldErr("body", "data after the report")
	}
	if err := r.Validate(); err != nil {
		return Report{}, err
	}
	return r, nil
}

// ErrReportRefused: the tracker answered a report with a non-2xx status.
var ErrReportRefused = errors.New("tracker refused report")

// Report sends a signed report to the tracker.
func (c *TrackerClient) Report(ctx context.Context, r Report) error {
	url := strings.TrimSuffix(c.announce, AnnouncePath) + ReportPath
	body, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("report to %s: %w", c.base, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("report to %s: %w", c.base, err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("report to %s: %w", c.base, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		reason, _ := errorReason(resp.Body)
		return fmt.Errorf("report to %s: %w: HTTP %d: %s", c.base, ErrReportRefused, resp.StatusCode, reason)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBytes))
	return nil
}

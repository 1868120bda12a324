package tracker

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/shoal-cdn/shoal/audit"
	"github.com/shoal-cdn/shoal/control"
)

// PolicyAPIPath is where the operator uploads a signed policy: PUT, behind
// the admin token, the body being the policy's encoding (shoal policy
// push).
const PolicyAPIPath = "/api/policy"

// PolicyPutResponse is the body of a successful PUT /api/policy.
type PolicyPutResponse struct {
	Serial uint64 `json:"serial"`
}

// handlePolicyPut takes a signed policy from a holder of the admin token:
// 400 with control's reason unless it decodes and verifies under an
// operator key, 409 unless its serial is above the current one's.
func (s *Server) handlePolicyPut(w http.ResponseWriter, r *http.Request) {
	ev := audit.Event{Time: s.cfg.Clock.Now(), Kind: audit.KindAdmin, IP: observedIP(r, s.cfg.TrustForwarded)}
	if s.cfg.AdminToken == "" {
		writeJSON(w, http.StatusNotFound, errorBody{Error: "policy uploads are disabled: the tracker has no admin token (--admin-token)"})
		return
	}
	if !s.adminOK(w, r, ev, "set policy") {
		return
	}
	if s.pol.trust == nil {
		writeJSON(w, http.StatusNotFound, errorBody{Error: "policy uploads are disabled: " + ErrNoOperatorKey.Error()})
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, control.MaxSize+1))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeJSON(w, http.StatusRequestEntityTooLarge, errorBody{Field: "body", Error: fmt.Sprintf("policy larger than %d bytes", control.MaxSize)})
			return
		}
		writeJSON(w, http.StatusBadRequest, errorBody{Field: "body", Error: "read the policy: " + err.Error()})
		return
	}
	// A trailing newline (a file from shoal policy sign, curl -d @file) is
	// not part of the canonical encoding.
	pol, err := s.SetPolicy(r.Context(), bytes.TrimRight(body, " \t\r\n"))
	switch {
	case errors.Is(err, ErrStalePolicy):
		ev.Reason = "set policy refused: " + err.Error()
		s.audit.Record(ev)
		writeJSON(w, http.StatusConflict, errorBody{Error: err.Error()})
		return
	case errors.Is(err, errStore):
		s.log.Warn("storing the policy", "err", err)
		w.Header().Set("Retry-After", "5")
		writeJSON(w, http.StatusServiceUnavailable, errorBody{Error: "set policy: " + err.Error()})
		return
	case err != nil:
		ev.Reason = "set policy refused: " + err.Error()
		s.audit.Record(ev)
		writeJSON(w, http.StatusBadRequest, errorBody{Field: "body", Error: err.Error()})
		return
	}
	ev.Reason = fmt.Sprintf("set policy %d", pol.Serial)
	s.audit.Record(ev)
	s.keepPolicyFile(bytes.TrimRight(body, " \t\r\n"), pol.Serial)
	writeJSON(w, http.StatusOK, PolicyPutResponse{Serial: pol.Serial})
}

// keepPolicyFile writes a pushed policy over Config.PolicyFile (atomically:
// a temporary file renamed into place), so a restarted tracker serves it,
// not the older policy the file held: without Redis, a push would
// otherwise live only in this process's memory.
func (s *Server) keepPolicyFile(doc []byte, serial uint64) {
	path := s.cfg.PolicyFile
	if path == "" {
		return
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err == nil {
		_, err = tmp.Write(append(doc, '\n'))
		if cerr := tmp.Close(); err == nil {
			err = cerr
		}
		if err == nil {
			err = os.Rename(tmp.Name(), path)
		}
		if err != nil {
			os.Remove(tmp.Name())
		}
	}
	if err != nil {
		s.log.Warn("pushed policy not written to the policy file: a restart serves the file's", "serial", serial, "file", path, "err", err)
	}
}

// handlePolicy serves GET /policy: the current policy, or with
// ?after=SERIAL a long poll (see discovery.PolicyPath). Polls are exempt
// from the announce rate limits (a peer keeps one open besides its
// announces) and counted by limits of their own, with the same rates.
func (s *Server) handlePolicy(w http.ResponseWriter, r *http.Request) {
	if s.pol.trust == nil {
		writeJSON(w, http.StatusNotFound, errorBody{Error: "no policy here: " + ErrNoOperatorKey.Error()})
		return
	}
	q := r.URL.Query()
	if !q.Has("after") {
		h := s.pol.current()
		if h == nil {
			writeJSON(w, http.StatusNotFound, errorBody{Error: "no policy yet: the operator has pushed none"})
			return
		}
		if r.Header.Get("If-None-Match") == etag(h.serial) {
			w.Header().Set("ETag", etag(h.serial))
			w.WriteHeader(http.StatusNotModified)
			return
		}
		writePolicy(w, h)
		return
	}
	v := q.Get("after")
	after, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, errorBody{Field: "after", Error: "after: want the serial of the policy held (0: none), got " + strconv.Quote(truncate(v, 32))})
		return
	}
	ip, err := remoteIP(r, s.cfg.TrustForwarded)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, errorBody{Field: "client address", Error: err.Error()})
		return
	}
	if by, _ := s.pollRates.allow(ip, s.cfg.Clock.Now()); by != "" {
		s.pol.polls.WithLabelValues(pollLimited).Inc()
		iv := retryAfter(w, s.cfg.MinInterval)
		writeJSON(w, http.StatusTooManyRequests, errorBody{Error: "rate limit: too many policy polls from " + by, IntervalS: iv})
		return
	}
	changed, stopped := s.pol.wakeups()
	if h := s.pol.current(); h != nil && h.serial > after {
		s.pol.polls.WithLabelValues(pollChanged).Inc()
		writePolicy(w, h)
		return
	}
	if full := s.pol.enterWait(ip); full != "" {
		s.pol.polls.WithLabelValues(pollFull).Inc()
		d := time.Duration(float64(s.cfg.OverloadRetryAfter) * (1 + 0.5*rand.Float64()))
		iv := retryAfter(w, d)
		msg := fmt.Sprintf("tracker busy: %d policy polls held already (--max-policy-waiters); retry after %.0f s", s.pol.maxWaiters, iv)
		if full != "tracker" {
			msg = fmt.Sprintf("too many policy polls held from %s (at most %d per address, %d per /24 or /48); retry after %.0f s", full, MaxPolicyWaitersPerIP, MaxPolicyWaitersPerPrefix, iv)
		}
		writeJSON(w, http.StatusServiceUnavailable, errorBody{Error: msg, IntervalS: iv})
		return
	}
	defer s.pol.leaveWait(ip)
	t := time.NewTimer(s.cfg.PolicyWait)
	defer t.Stop()
	select {
	case <-changed:
	case <-t.C:
	case <-stopped:
	case <-r.Context().Done():
		return // the peer went away
	}
	if h := s.pol.current(); h != nil && h.serial > after {
		s.pol.polls.WithLabelValues(pollChanged).Inc()
		writePolicy(w, h)
		return
	}
	s.pol.polls.WithLabelValues(pollTimeout).Inc()
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusNoContent)
}

// etag is a policy's entity tag: its serial, quoted.
func etag(serial uint64) string { return `"` + strconv.FormatUint(serial, 10) + `"` }

// writePolicy answers the policy's bytes as they arrived.
func writePolicy(w http.ResponseWriter, h *heldPolicy) {
	hd := w.Header()
	hd["Content-Type"] = hdrJSON
	hd.Set("Cache-Control", "no-cache") // a cache may keep it, asking each time (ETag)
	hd.Set("ETag", etag(h.serial))
	hd.Set("Content-Length", strconv.Itoa(len(h.doc)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(h.doc) // the client went away; nothing to do
}

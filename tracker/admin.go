package tracker

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"

	"github.com/shoal-cdn/shoal/audit"
	"github.com/shoal-cdn/shoal/core"
)

// SwarmsResponse is the body of GET /api/swarms: one page of swarms in a
// stable order (tenant, then content).
type SwarmsResponse struct {
	Swarms []SwarmStats `json:"swarms"`
	// Next, when set, is the cursor for the following page: pass it as
	// ?after=. Absent on the last page. A page before the last may hold
	// fewer swarms than asked (with Redis, swarms gone silent are skipped).
	Next string `json:"next,omitempty"`
}

// handleSwarms serves one page of the swarm listing to a holder of the
// admin token: ?limit= swarms (default 100, at most 1000) after the cursor
// ?after=. Each page costs O(log swarms + limit).
func (s *Server) handleSwarms(w http.ResponseWriter, r *http.Request) {
	ev := audit.Event{Time: s.cfg.Clock.Now(), Kind: audit.KindAdmin, IP: observedIP(r, s.cfg.TrustForwarded)}
	if s.cfg.AdminToken == "" {
		writeJSON(w, http.StatusNotFound, errorBody{Error: "the swarm listing is disabled: the tracker has no admin token (--admin-token)"})
		return
	}
	if !s.adminOK(w, r, ev, "list swarms") {
		return
	}
	q := r.URL.Query()
	limit := DefaultAdminPageSize
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxAdminPageSize {
			writeJSON(w, http.StatusBadRequest, errorBody{Field: "limit", Error: "limit: want a whole number from 1 to " + strconv.Itoa(MaxAdminPageSize) + ", got " + strconv.Quote(truncate(v, 32))})
			return
		}
		limit = n
	}
	var after *swarmKey
	if v := q.Get("after"); v != "" {
		k, ok := decodeCursor(v)
		if !ok {
			writeJSON(w, http.StatusBadRequest, errorBody{Field: "after", Error: "after: not a cursor this tracker returned as next"})
			return
		}
		after = &k
	}
	ev.Reason = "list swarms"
	s.audit.Record(ev)

	now := s.cfg.Clock.Now()
	gone, err := s.store.expire(r.Context(), now)
	s.record(s.leaveEvents(nil, gone, now))
	var page []SwarmStats
	var next *swarmKey
	if err == nil {
		page, next, err = s.store.page(r.Context(), after, limit, now)
	}
	if err != nil {
		s.log.Warn("listing swarms", "err", err)
		w.Header().Set("Retry-After", "5")
		writeJSON(w, http.StatusServiceUnavailable, errorBody{Error: "list swarms: " + err.Error()})
		return
	}

	resp := SwarmsResponse{Swarms: page}
	if next != nil {
		resp.Next = encodeCursor(*next)
	}
	writeJSON(w, http.StatusOK, resp)
}

// adminOK checks r's bearer credential against the admin token (set: the
// caller checked). When it fails it records the refusal of what, answers
// 401 and returns false.
func (s *Server) adminOK(w http.ResponseWriter, r *http.Request, ev audit.Event, what string) bool {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if h := sha256.Sum256([]byte(tok)); ok && subtle.ConstantTimeCompare(h[:], s.admin[:]) == 1 {
		return true
	}
	ev.Reason = what + " refused: missing or wrong admin token"
	s.audit.Record(ev)
	w.Header().Set("WWW-Authenticate", `Bearer realm="shoal tracker"`)
	writeJSON(w, http.StatusUnauthorized, errorBody{Error: "missing or wrong admin token: send Authorization: Bearer <token>"})
	return false
}

// A cursor is the content ID's bytes then the tenant's, URL-safe: opaque to
// clients, and any tenant name fits.
func encodeCursor(k swarmKey) string {
	return base64.RawURLEncoding.EncodeToString(append(k.content[:], k.tenant...))
}

func decodeCursor(s string) (swarmKey, bool) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) < len(core.ContentID{}) {
		return swarmKey{}, false
	}
	var k swarmKey
	copy(k.content[:], b)
	k.tenant = string(b[len(k.content):])
	return k, true
}

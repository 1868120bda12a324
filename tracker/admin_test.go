package tracker

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"

	"github.com/shoal-cdn/shoal/audit"
)

// list GETs path with the bearer token tok ("" for none).
func listSwarms(t *testing.T, s *Server, path, tok string) (int, SwarmsResponse, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	hr := httptest.NewRequest(http.MethodGet, path, nil)
	if tok != "" {
		hr.Header.Set("Authorization", "Bearer "+tok)
	}
	s.Handler().ServeHTTP(rec, hr)
	var resp SwarmsResponse
	var e errorBody
	if rec.Code == http.StatusOK {
		if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
	} else {
		_ = json.Unmarshal(rec.Body.Bytes(), &e)
	}
	return rec.Code, resp, e.Error
}

func TestAdminListingNeedsTheToken(t *testing.T) {
	open, _, _ := newStrictServer(t, nil)
	if code, _, msg := listSwarms(t, open, "/api/swarms", "anything"); code != http.StatusNotFound || msg == "" {
		t.Fatalf("listing without a configured token: HTTP %d %q, want 404 saying it is disabled", code, msg)
	}
	s, _, log := newStrictServer(t, func(c *Config) { c.AdminToken = "s3cret" })
	for _, tok := range []string{"", "s3cre", "s3cret2", "S3CRET"} {
		if code, _, _ := listSwarms(t, s, "/api/swarms", tok); code != http.StatusUnauthorized {
			t.Fatalf("token %q: HTTP %d, want 401", tok, code)
		}
	}
	if code, _, msg := listSwarms(t, s, "/api/swarms", "s3cret"); code != http.StatusOK {
		t.Fatalf("right token: HTTP %d %q", code, msg)
	}
	ev := log.of(audit.KindAdmin)
	if len(ev) != 5 || ev[0].Reason != "list swarms refused: missing or wrong admin token" || ev[4].Reason != "list swarms" {
		t.Fatalf("admin audit %+v, want 4 refusals then 1 listing", ev)
	}
}

func TestAdminListingIsPaged(t *testing.T) {
	s, _ := newTestServer(t, 11)
	const n = 250
	for i := range n {
		announce(t, s, req(fmt.Sprint("c", i), "p", "", 1))
	}
	seen := map[string]bool{}
	pages, after := 0, ""
	for {
		path := "/api/swarms?limit=100"
		if after != "" {
			path += "&after=" + after
		}
		code, resp, msg := listSwarms(t, s, path, testAdminToken)
		if code != http.StatusOK {
			t.Fatalf("GET %s: HTTP %d %s", path, code, msg)
		}
		pages++
		if len(resp.Swarms) > 100 {
			t.Fatalf("page of %d swarms, limit 100", len(resp.Swarms))
		}
		for _, sw := range resp.Swarms {
			if seen[sw.Content.String()] {
				t.Fatalf("swarm %s listed twice", sw.Content.Short())
			}
			seen[sw.Content.String()] = true
		}
		if resp.Next == "" {
			break
		}
		after = resp.Next
	}
	if pages != 3 || len(seen) != n {
		t.Fatalf("%d pages listing %d swarms, want 3 pages of all %d", pages, len(seen), n)
	}
	for _, bad := range []string{"limit=0", "limit=1001", "limit=x", "after=!!", "after=AAAA"} {
		if code, _, msg := listSwarms(t, s, "/api/swarms?"+bad, testAdminToken); code != http.StatusBadRequest || msg == "" {
			t.Errorf("?%s: HTTP %d %q, want 400 naming the parameter", bad, code, msg)
		}
	}
}

// FuzzDecodeCursor: any ?after= value decodes or is refused without a
// panic, and a cursor the tracker made decodes back to its key.
func FuzzDecodeCursor(f *testing.F) {
	f.Add(encodeCursor(swarmKey{"acme", content("c")}))
	f.Add("")
	f.Add("AAAA")
	f.Fuzz(func(t *testing.T, s string) {
		k, ok := decodeCursor(s)
		if !ok {
			return
		}
		if again, ok := decodeCursor(encodeCursor(k)); !ok || again != k {
			t.Fatalf("cursor %q: key %+v does not survive a round trip (%+v)", s, k, again)
		}
	})
}

// FuzzFilterAddrs: no announced address panics the filter, and whatever it
// keeps obeys its rules: no loopback for a remote announcer, no public
// address other than the announcer's.
func FuzzFilterAddrs(f *testing.F) {
	f.Add("/ip4/198.18.0.1/tcp/1", "198.18.0.1")
	f.Add("/ip4/127.0.0.1/tcp/1", "198.18.0.1")
	f.Add("/ip6zone/x/ip6/fe80::1/tcp/1", "::1")
	f.Add("/memory/12", "10.0.0.1")
	f.Fuzz(func(t *testing.T, addr, observed string) {
		obs, err := parseObserved(observed)
		if err != nil {
			return
		}
		pa, _ := filterAddrs([]string{addr}, obs, nil)
		for _, a := range pa.public {
			if ip, why := addrIP(a); why != "" || ip.IsValid() && ip != obs.Unmap() {
				t.Fatalf("kept %q as public for announcer %s", a, obs)
			}
		}
		if len(pa.loopback) > 0 && !obs.IsLoopback() {
			t.Fatalf("kept loopback %q for announcer %s", addr, obs)
		}
	})
}

func parseObserved(s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	return a.Unmap(), err
}

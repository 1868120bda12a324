package tracker

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/shoal-cdn/shoal/dashboard"
)

// TestServesDashboard: the tracker serves the operator's page, under its
// Content-Security-Policy, without a credential (its data needs one).
func TestServesDashboard(t *testing.T) {
	s := New(Config{AdminToken: "secret"})
	for _, tc := range []struct {
		path string
		want int
	}{{dashboard.Path, 200}, {dashboard.Path + "dashboard.js", 200}, {dashboard.Path + "nope", 404}} {
		w := httptest.NewRecorder()
		s.Handler().ServeHTTP(w, httptest.NewRequest(http.MethodGet, tc.path, nil))
		if w.Code != tc.want || w.Header().Get("Content-Security-Policy") != dashboard.CSP {
			t.Errorf("GET %s: %d, CSP %q; want %d under the dashboard's policy", tc.path, w.Code, w.Header().Get("Content-Security-Policy"), tc.want)
		}
	}
	w := httptest.NewRecorder()
	s.Handler().ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/dashboard", nil))
	if w.Code/100 != 3 || w.Header().Get("Location") != dashboard.Path {
		t.Errorf("GET /dashboard: %d to %q, want a redirect to %s", w.Code, w.Header().Get("Location"), dashboard.Path)
	}
}

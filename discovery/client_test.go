package discovery

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestNewTrackerClientValidatesURL(t *testing.T) {
	for _, c := range []struct {
		url string
		ok  bool
	}{
		{"http://127.0.0.1:7070", true},
		{"https://tracker.example/prefix/", true},
		{"ftp://127.0.0.1", false},
		{"127.0.0.1:7070", false},
		{"http://", false},
		{"http://h/?x=1", false},
		{"http://u:p@h/", false},
		{"http://[::1", false},
	} {
		_, err := NewTrackerClient(c.url, nil)
		if (err == nil) != c.ok {
			t.Errorf("NewTrackerClient(%q) = %v, want ok=%v", c.url, err, c.ok)
		}
		if err != nil && !errors.Is(err, ErrBadTrackerURL) {
			t.Errorf("NewTrackerClient(%q) error %v does not wrap ErrBadTrackerURL", c.url, err)
		}
	}
}

func TestClientAnnounceRoundTrip(t *testing.T) {
	var got AnnounceRequest
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/prefix/announce" {
			http.Error(w, "wrong route "+r.Method+" "+r.URL.Path, http.StatusNotFound)
			return
		}
		var err error
		if got, err = DecodeAnnounceRequest(r.Body); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		json.NewEncoder(w).Encode(AnnounceResponse{IntervalS: 12.5, Peers: []PeerInfo{{Peer: "other", Addrs: []string{"/ip4/127.0.0.1/tcp/9"}, Seed: true}}})
	}))
	defer srv.Close()
	c, err := NewTrackerClient(srv.URL+"/prefix/", srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	req := validRequest()
	resp, err := c.Announce(context.Background(), req)
	if err != nil {
		t.Fatalf("Announce: %v", err)
	}
	if got.Peer != req.Peer || got.Content != req.Content || got.Left != req.Left || got.Event != req.Event {
		t.Errorf("tracker got %+v, sent %+v", got, req)
	}
	if resp.IntervalS != 12.5 || len(resp.Peers) != 1 || resp.Peers[0].Peer != "other" || !resp.Peers[0].Seed {
		t.Errorf("response %+v", resp)
	}
}

func TestClientAnnounceErrors(t *testing.T) {
	cases := []struct {
		name    string
		handler http.HandlerFunc
		is      error
		want    []string // substrings of the error
	}{
		{"json refusal", func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusBadRequest)
			w.Write([]byte(`{"error":"peer: empty","field":"peer"}`))
		}, ErrTrackerStatus, []string{"400", "peer: empty"}},
		{"html from a proxy", func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusBadGateway)
			w.Write([]byte(`<html>bad gateway</html>`))
		}, ErrTrackerStatus, []string{"502", "bad gateway"}},
		{"empty refusal", func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusServiceUnavailable)
		}, ErrTrackerStatus, []string{"503", "no reason given"}},
		{"undecodable 200", func(w http.ResponseWriter, r *http.Request) {
			w.Write([]byte(`{"peers":`))
		}, ErrBadResponse, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			srv := httptest.NewServer(c.handler)
			defer srv.Close()
			cl, err := NewTrackerClient(srv.URL, srv.Client())
			if err != nil {
				t.Fatal(err)
			}
			_, err = cl.Announce(context.Background(), validRequest())
			if !errors.Is(err, c.is) {
				t.Fatalf("Announce = %v, want %v", err, c.is)
			}
			for _, s := range append(c.want, srv.URL) {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not mention %q", err, s)
				}
			}
		})
	}
}

func TestClientAnnounceUnreachableNamesTracker(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close() // nothing listens there any more
	c, err := NewTrackerClient(url, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Announce(context.Background(), validRequest())
	if err == nil || !strings.Contains(err.Error(), url) {
		t.Fatalf("Announce to a closed tracker = %v, want an error naming %s", err, url)
	}
}

func TestClientRejectsInvalidRequestLocally(t *testing.T) {
	hits := 0
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hits++ }))
	defer srv.Close()
	c, _ := NewTrackerClient(srv.URL, srv.Client())
	req := validRequest()
	req.Peer = ""
	if _, err := c.Announce(context.Background(), req); !errors.Is(err, ErrInvalidRequest) {
		t.Fatalf("Announce = %v, want ErrInvalidRequest", err)
	}
	if hits != 0 {
		t.Errorf("invalid request reached the tracker %d times", hits)
	}
}

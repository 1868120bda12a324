//go:build e2e

package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/shoal-cdn/shoal/core"
	"github.com/shoal-cdn/shoal/discovery"
	"github.com/shoal-cdn/shoal/tracker"
)

// e2eAdminToken is the admin credential of the rig's trackers.
const e2eAdminToken = "e2e-admin-token"

// getAdminJSON is getJSON with the tracker's admin credential.
func getAdminJSON(t *testing.T, url string, v any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	req.Header.Set("Authorization", "Bearer "+e2eAdminToken)
	resp, err := fxClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
}

// e2eKey is a fresh libp2p identity held by the test process.
func e2eKey(t *testing.T) (crypto.PrivKey, string) {
	t.Helper()
	k, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return k, id.String()
}

// TestForgedAnnounceForRealPeerRejected runs the attack measured on main
// against the real binaries: a real `shoal peer` seeds a content; an
// attacker announces in the seed's name (its own key, a foreign address,
// then event=stopped). The tracker refuses both, and a newcomer still learns
// the seed at its own address. The listing of swarms needs the admin token.
func TestForgedAnnounceForRealPeerRejected(t *testing.T) {
	r := newFxRig(t)
	c := r.publish("forged", fxFile{"a.bin", 2 << 20, 8101})
	r.startOrigin()
	r.startTracker()
	seed := r.startPeer("seed")
	wantWhole(t, "seed GET", fxDo(t, http.MethodGet, seed.gw+"/c/"+c.id+"/a.bin"), c.files["a.bin"])
	seed.waitComplete(t, c.id)
	seedID := seed.status(t).Peer

	waitFor(t, "the tracker lists the seed", fxDeadline, func() (bool, string) {
		var resp tracker.SwarmsResponse
		getAdminJSON(t, r.trackerURL+"/api/swarms", &resp)
		return len(resp.Swarms) == 1 && resp.Swarms[0].Seeds == 1, "swarms " + jsonString(resp)
	})
	client, err := discovery.NewTrackerClient(r.trackerURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	id, err := core.ParseContentID(c.id)
	if err != nil {
		t.Fatal(err)
	}
	mallory, _ := e2eKey(t)
	for _, ev := range []discovery.Event{discovery.EventStarted, discovery.EventStopped} {
		forged := discovery.AnnounceRequest{Content: id, Peer: seedID, Event: ev, Addrs: []string{"/ip4/127.0.0.1/tcp/9"}}
		if err := forged.Sign(mallory, time.Now()); err != nil {
			t.Fatal(err)
		}
		_, err := client.Announce(context.Background(), forged)
		if !errors.Is(err, discovery.ErrTrackerStatus) {
			t.Fatalf("forged %q announce for the seed: %v, want a refusal", ev, err)
		}
		t.Logf("forged %q announce: %v", ev, err)
	}

	key, me := e2eKey(t)
	ask := discovery.AnnounceRequest{Content: id, Peer: me, Left: 1, Addrs: []string{"/ip4/127.0.0.1/tcp/1"}}
	if err := ask.Sign(key, time.Now()); err != nil {
		t.Fatal(err)
	}
	resp, err := client.Announce(context.Background(), ask)
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(resp.Peers, func(p discovery.PeerInfo) bool { return p.Peer == seedID })
	if i < 0 || slices.Contains(resp.Peers[i].Addrs, "/ip4/127.0.0.1/tcp/9") || len(resp.Peers[i].Addrs) == 0 {
		t.Fatalf("after the forged announces a newcomer got %s, want the seed at its own addresses", jsonString(resp.Peers))
	}

	for _, hdr := range []string{"", "Bearer wrong"} {
		req, _ := http.NewRequest(http.MethodGet, r.trackerURL+"/api/swarms", nil)
		if hdr != "" {
			req.Header.Set("Authorization", hdr)
		}
		res, err := fxClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusUnauthorized {
			t.Fatalf("/api/swarms with Authorization %q: %s, want 401", hdr, res.Status)
		}
	}
}

func jsonString(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

//go:build e2e

package main

import (
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shoal-cdn/shoal/tracker"
)

// TestBinaryPeerUsesSessionTicketAcrossTrackerRestart: a real `shoal peer`
// announcing to a real `shoal tracker` MACs its re-announces with the
// session ticket its first signed announce brought; when the tracker
// restarts with a new secret, the peer's ticket is refused, it signs once,
// gets a new ticket and MACs again, and stays listed throughout.
func TestBinaryPeerUsesSessionTicketAcrossTrackerRestart(t *testing.T) {
	r := newFxRig(t)
	c := r.publish("ticket", fxFile{"a.bin", 1 << 20, 8301})
	r.startOrigin()
	addr := freePort(t) // as startTracker, keeping the process to restart it
	r.trackerURL = "http://" + addr
	tracker1 := r.start("tracker", "tracker", "--listen", addr, "--interval", "1s", "--admin-token", e2eAdminToken)
	r.up("tracker", r.trackerURL+"/metrics", tracker1)
	seed := r.startPeer("seed")
	wantWhole(t, "seed GET", fxDo(t, http.MethodGet, seed.gw+"/c/"+c.id+"/a.bin"), c.files["a.bin"])

	tickets := func(ev string) float64 {
		return metricValue(t, r.trackerURL+"/metrics", fmt.Sprintf(`shoal_tracker_session_tickets_total{event=%q}`, ev))
	}
	waitFor(t, "the tracker accepts the peer's MACed re-announces", fxDeadline, func() (bool, string) {
		i, a := tickets("issued"), tickets("accepted")
		return i >= 1 && a >= 2, fmt.Sprintf("issued %v, accepted %v", i, a)
	})

	tracker1.stop(t)
	key := filepath.Join(t.TempDir(), "session.key")
	writeFile(t, key, strings.Repeat("k", 32))
	p := r.start("tracker2", "tracker", "--listen", addr, "--interval", "1s", "--admin-token", e2eAdminToken, "--session-key-file", key)
	r.up("tracker2", r.trackerURL+"/metrics", p)
	waitFor(t, "the peer signs once for the restarted tracker, then MACs again", fxDeadline, func() (bool, string) {
		i, a := tickets("issued"), tickets("accepted")
		refused := metricValue(t, r.trackerURL+"/metrics", `shoal_tracker_announces_total{result="ticket"}`)
		return i >= 1 && a >= 2 && refused >= 1, fmt.Sprintf("issued %v, accepted %v, ticket refusals %v", i, a, refused)
	})
	if log := seed.log.String(); !strings.Contains(log, "session ticket refused; signing the announce") {
		t.Errorf("the peer's log does not say it fell back to signing:\n%s", log)
	}
}

// TestBinaryPeerAnnouncesOnGrantNotToken: a real `shoal peer` with an
// access token, announcing to a real `shoal tracker` that requires tokens,
// gets a ticket carrying its token's grant with its signed announce, and
// its re-announces are taken on that grant (no token check), in its
// tenant's swarm.
func TestBinaryPeerAnnouncesOnGrantNotToken(t *testing.T) {
	r := newFxRig(t)
	c := r.publish("grant", fxFile{"a.bin", 1 << 20, 8302})
	r.startOrigin()
	addr := freePort(t)
	r.trackerURL = "http://" + addr
	tp := r.start("tracker", "tracker", "--listen", addr, "--interval", "1s", "--admin-token", e2eAdminToken, "--trust", r.pub)
	r.up("tracker", r.trackerURL+"/metrics", tp)
	tok, e, code := runBin(t, r.bin, "token", "issue", "--key", r.key, "--tenant", "tenant-a", "--content", c.id)
	if code != 0 {
		t.Fatalf("token issue: exit %d: %s", code, e)
	}
	seed := r.startPeer("seed", "--token", strings.TrimSpace(tok))
	wantWhole(t, "seed GET", fxDo(t, http.MethodGet, seed.gw+"/c/"+c.id+"/a.bin"), c.files["a.bin"])
	tickets := func(ev string) float64 {
		return metricValue(t, r.trackerURL+"/metrics", fmt.Sprintf(`shoal_tracker_session_tickets_total{event=%q}`, ev))
	}
	waitFor(t, "the tracker takes the peer's re-announces on its ticket's grant", fxDeadline, func() (bool, string) {
		i, a, g := tickets("issued"), tickets("accepted"), tickets("granted")
		return i >= 1 && g >= 2 && g == a, fmt.Sprintf("issued %v, accepted %v, granted %v", i, a, g)
	})
	var swarms tracker.SwarmsResponse
	getAdminJSON(t, r.trackerURL+"/api/swarms", &swarms)
	if len(swarms.Swarms) != 1 || swarms.Swarms[0].Tenant != "tenant-a" || swarms.Swarms[0].Peers != 1 {
		t.Fatalf("swarms %+v, want the seed alone in tenant-a's swarm", swarms.Swarms)
	}
}

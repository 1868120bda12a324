//go:build e2e

package main

import (
	"bytes"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestBinaryPolicySignPushShow: the operator's round trip through the real
// binary. A tracker started with --operator-key and --policy hands out the
// file's policy; a long poll held on it returns the moment `shoal policy
// push` lands a newer one; `shoal policy show` prints it verified; a stale
// serial and another key's policy are refused with the tracker's reason.
func TestBinaryPolicySignPushShow(t *testing.T) {
	r := newFxRig(t)
	opKey := filepath.Join(r.dir, "operator.pem")
	out, e, code := runBin(t, r.bin, "keygen", "-o", opKey)
	if code != 0 {
		t.Fatalf("keygen exit %d: %s", code, e)
	}
	opPub := strings.TrimSpace(out)
	unsigned := filepath.Join(r.dir, "policy.json")
	if err := os.WriteFile(unsigned, []byte(`{"rules":[{"match":{"region":"eu"},"p2p":"off"},{"match":{"device":"mobile"},"upload_bps":500000,"metered":"leech-only"}],
		"experiments":[{"name":"half","variants":[{"name":"p2p","percent":50}]}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	sign := func(key string, serial string) string {
		t.Helper()
		out, e, code := runBin(t, r.bin, "policy", "sign", "--key", key, "--serial", serial, unsigned)
		if code != 0 {
			t.Fatalf("policy sign --serial %s: exit %d: %s", serial, code, e)
		}
		path := filepath.Join(r.dir, "signed-"+serial+"-"+filepath.Base(key)+".json")
		if err := os.WriteFile(path, []byte(out), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	first, fifth := sign(opKey, "1"), sign(opKey, "5")

	addr := freePort(t)
	url := "http://" + addr
	p := r.start("tracker", "tracker", "--listen", addr, "--admin-token", e2eAdminToken, "--operator-key", opPub, "--policy", first)
	r.up("tracker", url+"/metrics", p)

	out, e, code = runBin(t, r.bin, "policy", "show", "--tracker", url, "--operator-key", opPub)
	if code != 0 || !strings.Contains(out, "policy 1 by operator "+opPub) {
		t.Fatalf("show after start with --policy: exit %d\n%s%s\nwant policy 1", code, out, e)
	}

	// A long poll from a peer holding policy 1, as any HTTP client makes it.
	type answer struct {
		code int
		body []byte
		err  error
	}
	polled := make(chan answer, 1)
	go func() {
		c := &http.Client{Timeout: time.Minute}
		resp, err := c.Get(url + "/policy?after=1")
		if err != nil {
			polled <- answer{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		polled <- answer{resp.StatusCode, b, err}
	}()
	waitFor(t, "the long poll held by the tracker", fxDeadline, func() (bool, string) {
		resp, err := fxClient.Get(url + "/metrics")
		if err != nil {
			return false, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return bytes.Contains(b, []byte("\nshoal_tracker_policy_waiters 1\n")), "shoal_tracker_policy_waiters is not 1"
	})
	select {
	case a := <-polled:
		t.Fatalf("the long poll answered before any push: HTTP %d %s %v", a.code, a.body, a.err)
	default:
	}

	out, e, code = runBin(t, r.bin, "policy", "push", "--tracker", url, "--admin-token", e2eAdminToken, fifth)
	if code != 0 || !strings.Contains(out, "policy 5 set") {
		t.Fatalf("push: exit %d\n%s%s", code, out, e)
	}
	want, err := os.ReadFile(fifth)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case a := <-polled:
		if a.err != nil || a.code != http.StatusOK || !bytes.Equal(a.body, bytes.TrimSpace(want)) {
			t.Fatalf("long poll: HTTP %d %v\n%s\nwant 200 with the pushed policy's bytes", a.code, a.err, a.body)
		}
	case <-time.After(fxDeadline):
		t.Fatal("the long poll did not return after the push")
	}

	out, e, code = runBin(t, r.bin, "policy", "show", "--tracker", url, "--operator-key", opPub)
	for _, w := range []string{"policy 5 by operator", "verified", "rule 1: region=eu → p2p off",
		"rule 2: device=mobile → upload at most 500 kB/s (500000 B/s), on metered networks leech-only", "experiment half: half/p2p 50%, in no cohort 50%"} {
		if code != 0 || !strings.Contains(out, w) {
			t.Fatalf("show: exit %d, want %q in\n%s%s", code, w, out, e)
		}
	}

	_, e, code = runBin(t, r.bin, "policy", "push", "--tracker", url, "--admin-token", e2eAdminToken, sign(opKey, "4"))
	if code != 1 || !strings.Contains(e, "409") || !strings.Contains(e, "current one is 5") {
		t.Fatalf("push of serial 4 after 5: exit %d %s, want 1 and the 409's reason", code, e)
	}
	other := filepath.Join(r.dir, "other.pem")
	if _, e, code := runBin(t, r.bin, "keygen", "-o", other); code != 0 {
		t.Fatalf("keygen: %s", e)
	}
	_, e, code = runBin(t, r.bin, "policy", "push", "--tracker", url, "--admin-token", e2eAdminToken, sign(other, "9"))
	if code != 1 || !strings.Contains(e, "400") || !strings.Contains(e, "not signed by a trusted operator key") {
		t.Fatalf("push of another key's policy: exit %d %s, want 1 and the 400's reason", code, e)
	}
	_, e, code = runBin(t, r.bin, "policy", "push", "--tracker", url, "--admin-token", "wrong", fifth)
	if code != 1 || !strings.Contains(e, "401") {
		t.Fatalf("push with a wrong admin token: exit %d %s, want 1 and 401", code, e)
	}
}

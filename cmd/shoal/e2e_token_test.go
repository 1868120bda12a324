//go:build e2e

// End-to-end test of access tokens between real processes: `shoal token
// issue` makes the tokens, a `shoal peer` seed holds a tenant-A token, and
// `shoal get` processes with no token, an expired one, another tenant's and
// a valid one try to fetch from it with an unreachable origin, so the seed
// is their only source.
package main

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shoal-cdn/shoal/core"
	"github.com/shoal-cdn/shoal/layout"
)

// TestTokenGatesSeed: a getter without a valid tenant-A token gets nothing
// from the seed (no chunk in its cache, no output file, a non-zero exit
// with one clear line), and the seed logs why it refused; a getter with a
// valid token gets the file byte for byte from the seed.
func TestTokenGatesSeed(t *testing.T) {
	r := newFxRig(t)
	c := r.publish("tok", fxFile{"clip.bin", 2 << 20, 9101})
	src := c.files["clip.bin"]
	r.startOrigin()
	r.startTracker()
	issue := func(args ...string) string {
		t.Helper()
		out, e, code := runBin(t, r.bin, append([]string{"token", "issue", "--key", r.key}, args...)...)
		if code != 0 {
			t.Fatalf("token issue %v: exit %d: %s", args, code, e)
		}
		return strings.TrimSpace(out)
	}
	tokA := issue("--tenant", "tenant-a", "--content", c.id)
	expired := issue("--tenant", "tenant-a", "--content", c.id,
		"--not-before", time.Now().Add(-2*time.Hour).UTC().Format(time.RFC3339), "--ttl", "1h")
	tokB := issue("--tenant", "tenant-b", "--content", c.id)
	if out, e, code := runBin(t, r.bin, "token", "inspect", tokB); code != 0 || !strings.Contains(out, `"tenant": "tenant-b"`) {
		t.Fatalf("token inspect: exit %d: %s%s", code, out, e)
	}

	seedToken := filepath.Join(r.dir, "seed.token")
	if err := os.WriteFile(seedToken, []byte(tokA+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	seed := r.startPeer("seed", "--token-file", seedToken)
	wantWhole(t, "seed GET", fxDo(t, http.MethodGet, seed.gw+"/c/"+c.id+"/clip.bin"), src)
	seed.waitComplete(t, c.id)

	r.tryGets(t, c, seed, []tokenGet{
		{"no token", "", `err="no token"`},
		{"expired", expired, "token expired at"},
		{"tenant-b", tokB, `token tenant \"tenant-b\", this swarm's tenant \"tenant-a\"`},
		{"tenant-a", tokA, ""},
	})
}

// TestTokenRegionGatesSeed: a content published with --region eu is served
// by a seed (whose token says eu) to a getter whose token says eu, and to
// none whose token says us or names no region.
func TestTokenRegionGatesSeed(t *testing.T) {
	r := newFxRig(t)
	c := r.publish("eu-only", fxFile{"clip.bin", 1 << 20, 9102})
	// Re-publish the same files with the region policy: a new content ID.
	out, e, code := runBin(t, r.bin, "publish", "--key", r.key, "--out", r.layout,
		"--chunk-size", "256KiB", "--name", "eu-only", "--region", "eu", c.src)
	if code != 0 {
		t.Fatalf("publish --region: exit %d: %s", code, e)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	c.id = lines[len(lines)-1]
	if id, err := core.ParseContentID(c.id); err != nil {
		t.Fatal(err)
	} else if m, err := os.ReadFile(filepath.Join(r.layout, filepath.FromSlash(layout.ManifestPath(id)))); err != nil || !strings.Contains(string(m), `"regions":["eu"]`) {
		t.Fatalf("the published manifest does not carry the region policy (%v): %s", err, m)
	}
	src := c.files["clip.bin"]
	r.startOrigin()
	r.startTracker()
	issue := func(args ...string) string {
		t.Helper()
		out, e, code := runBin(t, r.bin, append([]string{"token", "issue", "--key", r.key, "--tenant", "tenant-a", "--content", c.id}, args...)...)
		if code != 0 {
			t.Fatalf("token issue %v: exit %d: %s", args, code, e)
		}
		return strings.TrimSpace(out)
	}
	seed := r.startPeer("seed", "--token", issue("--region", "eu"))
	wantWhole(t, "seed GET", fxDo(t, http.MethodGet, seed.gw+"/c/"+c.id+"/clip.bin"), src)
	seed.waitComplete(t, c.id)
	r.tryGets(t, c, seed, []tokenGet{
		{"region us", issue("--region", "us"), `region \"us\" is not one of eu`},
		{"no region", issue(), "token names no region"},
		{"region eu", issue("--region", "eu"), ""},
	})
}

// tokenGet is one `shoal get` of a token test: its token, and what the seed
// logs when it refuses it ("" for a get that must succeed).
type tokenGet struct {
	name, token string
	seedLog     string
}

// tryGets runs each get of clip.bin of c, with an unreachable origin so
// seed is the only source, and checks its outcome.
func (r *fxRig) tryGets(t *testing.T, c *fxContent, seed *fxPeer, gets []tokenGet) {
	src := c.files["clip.bin"]
	// Nothing listens there: the seed is the getters' only source.
	unreachable := "http://" + freePort(t)
	for _, g := range gets {
		t.Run(strings.ReplaceAll(g.name, " ", "-"), func(t *testing.T) {
			cache := filepath.Join(r.dir, "get-"+g.name)
			out := filepath.Join(r.dir, "out-"+g.name)
			args := []string{"get", "--quiet", "--cache", cache, "--origin", unreachable, "--trust", r.pub,
				"--tracker", r.trackerURL, "--listen", "/ip4/127.0.0.1/tcp/0", "-o", out}
			if g.token != "" {
				args = append(args, "--token", g.token)
			}
			stdout, stderr, code := runBin(t, r.bin, append(args, c.id+"/clip.bin")...)
			if g.seedLog == "" {
				if code != 0 {
					t.Fatalf("valid token: exit %d: %s", code, stderr)
				}
				sum, n := fileSum(t, out)
				if n != src.size || sum != src.sum {
					t.Fatalf("valid token: %d bytes, want the source's %d byte for byte", n, src.size)
				}
				if !strings.Contains(stdout, "from peers") || strings.Contains(stdout, "swarm: 0 B from peers") {
					t.Errorf("valid token: the bytes did not come from the seed: %s", stdout)
				}
				return
			}
			if code == 0 {
				t.Fatalf("exit 0 without a valid token: %s", stdout)
			}
			if lines := strings.Split(strings.TrimSpace(stderr), "\n"); len(lines) != 1 || !strings.HasPrefix(lines[0], "shoal get:") {
				t.Errorf("want one clear line on stderr, got:\n%s", stderr)
			}
			if n := countChunkFiles(t, cache); n != 0 {
				t.Errorf("%d chunks reached the refused getter's cache", n)
			}
			if _, err := os.Stat(out); !os.IsNotExist(err) {
				t.Errorf("output file after a refused get: %v", err)
			}
			waitFor(t, "the seed's refusal in its log", fxDeadline, func() (bool, string) {
				return strings.Contains(seed.log.String(), g.seedLog), "no " + g.seedLog
			})
			t.Logf("refused getter (%s): exit %d: %s", g.name, code, strings.TrimSpace(stderr))
		})
	}
}

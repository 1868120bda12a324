package deploy

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// tool returns the path of a validator. Missing, it fails the test under
// CI (.ci/run installs each one) and skips it elsewhere, saying what to
// install.
func tool(t *testing.T, name, install string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("%s not found (%s); .ci/run installs it", name, install)
	}
	t.Skipf("%s not found: %s to run this check", name, install)
	return ""
}

func run(t *testing.T, name string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(name, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(name), strings.Join(args, " "), err, out.Bytes())
	}
	return out.Bytes()
}

// exported is every metric name the daemons' Go sources spell out (string
// literals starting shoal_), the names rules and dashboards may use.
func exported(t *testing.T) map[string]bool {
	t.Helper()
	lit := regexp.MustCompile(`"(shoal_[a-z0-9_]+)"`)
	names := map[string]bool{}
	err := filepath.WalkDir("..", func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "node_modules" || strings.HasPrefix(d.Name(), ".")) && path != ".." {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range lit.FindAllSubmatch(b, -1) {
			names[string(m[1])] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !names["shoal_peer_bytes_from_peers_total"] || !names["shoal_build_info"] {
		t.Fatalf("metric names not found in the sources: %v", names)
	}
	return names
}

// metricRe finds metric names in PromQL (recording rules have a ':').
var metricRe = regexp.MustCompile(`\bshoal_[a-z0-9_]+\b`)

// unknownMetrics is the metric names expr uses that no daemon exports
// (a histogram's _bucket/_sum/_count series count as its name).
func unknownMetrics(expr string, names map[string]bool) []string {
	var bad []string
	for _, m := range metricRe.FindAllString(expr, -1) {
		base := m
		for _, suf := range []string{"_bucket", "_sum", "_count"} {
			if strings.HasSuffix(m, suf) && names[strings.TrimSuffix(m, suf)] {
				base = strings.TrimSuffix(m, suf)
			}
		}
		if !names[base] {
			bad = append(bad, m)
		}
	}
	return bad
}

type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Record string `yaml:"record"`
			Alert  string `yaml:"alert"`
			Expr   string `yaml:"expr"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

// TestPrometheusRules: promtool accepts the rules and their unit tests pass,
// the alerts an operator needs are there (the fleet telemetry's four too), and every metric they name is
// one the daemons export.
func TestPrometheusRules(t *testing.T) {
	b, err := os.ReadFile("prometheus/shoal-rules.yml")
	if err != nil {
		t.Fatal(err)
	}
	var rf ruleFile
	if err := yaml.Unmarshal(b, &rf); err != nil {
		t.Fatal(err)
	}
	names := exported(t)
	var alerts []string
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			if r.Alert != "" {
				alerts = append(alerts, r.Alert)
			}
			if bad := unknownMetrics(r.Expr, names); len(bad) > 0 {
				t.Errorf("rule %s%s uses metrics no daemon exports: %v", r.Alert, r.Record, bad)
			}
		}
	}
	for _, want := range []string{"ShoalOffloadLow", "ShoalOriginEgressSurge", "ShoalStartupP95High", "ShoalRebufferingHigh", "ShoalTrackerOverloadRefusals", "ShoalPeerBansSurge",
		"ShoalFleetOffloadLow", "ShoalFleetStartupP95High", "ShoalFleetRebufferingHigh", "ShoalFleetRareChunksHigh"} {
		if !slices.Contains(alerts, want) {
			t.Errorf("alert %s missing; have %v", want, alerts)
		}
	}
	promtool := tool(t, "promtool", "apt-get install prometheus")
	run(t, promtool, "check", "rules", "prometheus/shoal-rules.yml")
	run(t, promtool, "test", "rules", "prometheus/shoal-rules.test.yml")
}

// TestGrafanaDashboard: the dashboard is JSON Grafana can import (title,
// uid, panels with a Prometheus query each), and its queries name only
// exported metrics or the rules' recorded series.
func TestGrafanaDashboard(t *testing.T) {
	b, err := os.ReadFile("grafana/shoal.json")
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Title  string `json:"title"`
		UID    string `json:"uid"`
		Panels []struct {
			Title   string `json:"title"`
			Type    string `json:"type"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&d); err != nil {
		t.Fatal(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		t.Fatal("grafana/shoal.json: data after the dashboard object")
	}
	if d.Title == "" || d.UID == "" || len(d.Panels) < 6 {
		t.Fatalf("dashboard: title %q, uid %q, %d panels", d.Title, d.UID, len(d.Panels))
	}
	names := exported(t)
	rules, _ := os.ReadFile("prometheus/shoal-rules.yml")
	for _, p := range d.Panels {
		if p.Type == "" || len(p.Targets) == 0 {
			t.Errorf("panel %q: type %q, %d queries", p.Title, p.Type, len(p.Targets))
		}
		for _, q := range p.Targets {
			if bad := unknownMetrics(q.Expr, names); len(bad) > 0 {
				t.Errorf("panel %q uses metrics no daemon exports: %v", p.Title, bad)
			}
			for _, rec := range regexp.MustCompile(`shoal:[a-z0-9_:]+`).FindAllString(q.Expr, -1) {
				if !bytes.Contains(rules, []byte("record: "+rec+"\n")) {
					t.Errorf("panel %q uses %s, which no recording rule defines", p.Title, rec)
				}
			}
		}
	}
}

// TestSystemdUnits: systemd-analyze verify accepts every unit, each runs
// the shoal binary under the hardening the docs promise.
func TestSystemdUnits(t *testing.T) {
	units, _ := filepath.Glob("systemd/*.service")
	sort.Strings(units)
	want := []string{"systemd/shoal-origin.service", "systemd/shoal-peer.service", "systemd/shoal-relay.service", "systemd/shoal-tracker.service"}
	if !slices.Equal(units, want) {
		t.Fatalf("units %v, want %v", units, want)
	}
	// verify checks that ExecStart's binary exists: point it at one that does.
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	var paths []string
	for _, u := range units {
		b, err := os.ReadFile(u)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range []string{"ExecStart=/usr/bin/shoal ", "DynamicUser=yes", "ProtectSystem=strict", "NoNewPrivileges=yes",
			"CapabilityBoundingSet=\n", "RestrictAddressFamilies=", "MemoryMax=", "ProtectHome=yes", "KillSignal=SIGTERM"} {
			if !bytes.Contains(b, []byte("\n"+line)) {
				t.Errorf("%s lacks %q", u, strings.TrimSpace(line))
			}
		}
		p := filepath.Join(dir, filepath.Base(u))
		if err := os.WriteFile(p, bytes.ReplaceAll(b, []byte("/usr/bin/shoal"), []byte(self)), 0o644); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	sa := tool(t, "systemd-analyze", "apt-get install systemd")
	out := run(t, sa, append([]string{"verify"}, paths...)...)
	if len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("systemd-analyze verify has warnings:\n%s", out)
	}
}

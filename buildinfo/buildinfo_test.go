package buildinfo

import (
	"runtime/debug"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestOverridesWinOverBuildInfo(t *testing.T) {
	bi := &debug.BuildInfo{
		GoVersion: "go1.26.8",
		Main:      debug.Module{Path: "github.com/shoal-cdn/shoal", Version: "(devel)"},
		Deps: []*debug.Module{
			{Path: "github.com/libp2p/go-libp2p", Version: "v0.51.0"},
			{Path: "example.org/other", Version: "v1.0.0"},
		},
		Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "abc123"}, {Key: "vcs.time", Value: "2026-11-30T10:00:00Z"}, {Key: "vcs.modified", Value: "true"}},
	}
	in := fromBuildInfo(bi, true, "", "", "")
	if in.Version != "devel" || in.Revision != "abc123" || !in.Modified || in.Date != "2026-11-30T10:00:00Z" || in.GoVersion != "go1.26.8" {
		t.Fatalf("from build info: %+v", in)
	}
	if len(in.Modules) != 1 || in.Modules[0].Path != "github.com/libp2p/go-libp2p" {
		t.Fatalf("modules: want only the key module, got %+v", in.Modules)
	}
	in = fromBuildInfo(bi, true, "v1.2.0", "def456", "2026-12-01T00:00:00Z")
	if in.Version != "v1.2.0" || in.Revision != "def456" || in.Date != "2026-12-01T00:00:00Z" {
		t.Fatalf("-X overrides lost: %+v", in)
	}
	in = fromBuildInfo(nil, false, "", "", "")
	if in.Version != "devel" || in.Revision != "unknown" || in.Date != "unknown" {
		t.Fatalf("no build info: %+v", in)
	}
	var b strings.Builder
	if err := in.Write(&b); err != nil || !strings.HasPrefix(b.String(), "shoal devel\n") {
		t.Fatalf("Write: %q, %v", b.String(), err)
	}
}

func TestCollectorExportsBuildInfo(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(Collector())
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	if len(mfs) != 1 || mfs[0].GetName() != "shoal_build_info" || len(mfs[0].Metric) != 1 {
		t.Fatalf("want one shoal_build_info sample, got %v", mfs)
	}
	m := mfs[0].Metric[0]
	got := map[string]string{}
	for _, l := range m.Label {
		got[l.GetName()] = l.GetValue()
	}
	in := Get()
	want := map[string]string{"version": in.Version, "revision": in.Revision, "goversion": in.GoVersion}
	if len(got) != len(want) || got["version"] != want["version"] || got["revision"] != want["revision"] || got["goversion"] != want["goversion"] {
		t.Fatalf("labels %v, want %v", got, want)
	}
	if m.GetGauge().GetValue() != 1 {
		t.Fatalf("value %v, want 1", m.GetGauge().GetValue())
	}
}

// Package buildinfo says which build of Shoal is running: version, source
// revision, build date, Go version and the versions of the key modules. It
// reads runtime/debug.ReadBuildInfo, which `go build` fills from the module
// and the version-control checkout; a release build sets Version, Revision
// and Date with -ldflags -X, which win. It is a building block: cmd/shoal
// prints it (`shoal version`) and every daemon exports it as the
// shoal_build_info metric.
package buildinfo

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// Set by release builds, e.g.
//
//	go build -ldflags "-X github.com/shoal-cdn/shoal/buildinfo.Version=v1.2.0 \
//	  -X github.com/shoal-cdn/shoal/buildinfo.Revision=$(git rev-parse HEAD) \
//	  -X github.com/shoal-cdn/shoal/buildinfo.Date=$(date -u +%FT%TZ)" ./cmd/shoal
//
// Empty values are filled from the binary's embedded build information.
var (
	Version  string
	Revision string
	Date     string
)

// keyModules are the dependencies whose versions `shoal version` prints:
// the ones a bug report most often turns on.
var keyModules = []string{
	"github.com/libp2p/go-libp2p",
	"github.com/quic-go/quic-go",
	"github.com/libp2p/go-libp2p-kad-dht",
	"github.com/libp2p/go-libp2p-pubsub",
	"github.com/prometheus/client_golang",
	"github.com/redis/go-redis/v9",
}

// Module is one dependency and its version.
type Module struct {
	Path    string `json:"path"`
	Version string `json:"version"`
}

// Info describes the running binary.
type Info struct {
	Version   string   `json:"version"`  // "v1.2.0", a pseudo-version, or "devel"
	Revision  string   `json:"revision"` // VCS commit; "unknown" when not recorded
	Modified  bool     `json:"modified"` // built from a checkout with uncommitted changes
	Date      string   `json:"date"`     // build date, or the commit's time; "unknown"
	GoVersion string   `json:"go_version"`
	Platform  string   `json:"platform"` // GOOS/GOARCH
	Modules   []Module `json:"modules"`  // key dependencies linked in
}

var (
	once sync.Once
	info Info
)

// Get returns the running binary's build information (computed once).
func Get() Info {
	once.Do(func() {
		bi, ok := debug.ReadBuildInfo()
		info = fromBuildInfo(bi, ok, Version, Revision, Date)
	})
	return info
}

// fromBuildInfo merges the -X overrides over what bi says.
func fromBuildInfo(bi *debug.BuildInfo, ok bool, version, revision, date string) Info {
	in := Info{GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if ok && bi != nil {
		if v := bi.Main.Version; v != "" && v != "(devel)" {
			in.Version = v
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				in.Revision = s.Value
			case "vcs.time":
				in.Date = s.Value
			case "vcs.modified":
				in.Modified = s.Value == "true"
			}
		}
		want := map[string]bool{}
		for _, m := range keyModules {
			want[m] = true
		}
		for _, d := range bi.Deps {
			if d.Replace != nil {
				d = d.Replace
			}
			if want[d.Path] {
				in.Modules = append(in.Modules, Module{Path: d.Path, Version: d.Version})
			}
		}
		if bi.GoVersion != "" {
			in.GoVersion = bi.GoVersion
		}
	}
	if version != "" {
		in.Version = version
	}
	if revision != "" {
		in.Revision = revision
	}
	if date != "" {
		in.Date = date
	}
	if in.Version == "" {
		in.Version = "devel"
	}
	if in.Revision == "" {
		in.Revision = "unknown"
	}
	if in.Date == "" {
		in.Date = "unknown"
	}
	return in
}

// Write prints in for a person: one "key: value" line each, the modules
// indented below.
func (in Info) Write(w io.Writer) error {
	rev := in.Revision
	if in.Modified {
		rev += " (modified)"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "shoal %s\n", in.Version)
	fmt.Fprintf(&b, "revision: %s\n", rev)
	fmt.Fprintf(&b, "built:    %s\n", in.Date)
	fmt.Fprintf(&b, "go:       %s %s\n", in.GoVersion, in.Platform)
	if len(in.Modules) > 0 {
		fmt.Fprintln(&b, "modules:")
		for _, m := range in.Modules {
			fmt.Fprintf(&b, "  %s %s\n", m.Path, m.Version)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// Collector returns a collector of the constant gauge
// shoal_build_info{version,revision,goversion} 1, for a daemon's registry.
func Collector() prometheus.Collector {
	in := Get()
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "shoal_build_info",
		Help: "Always 1; its labels say which build of Shoal is running.",
		ConstLabels: prometheus.Labels{
			"version": in.Version, "revision": in.Revision, "goversion": in.GoVersion,
		},
	})
	g.Set(1)
	return g
}

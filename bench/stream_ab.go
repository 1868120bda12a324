package bench

import (
	"context"
	"crypto/ed25519"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/shoal-cdn/shoal/control"
	"github.com/shoal-cdn/shoal/manifest"
	"github.com/shoal-cdn/shoal/tracker"
)

// The A/B run: with StreamConfig.CohortSplit set, the P2P run's tracker
// carries an operator policy with one experiment, ABExperiment: ABVariantP2P
// takes CohortSplit percent of the viewers' peers, ABVariantCDN the rest,
// and a rule turns P2P off for the latter. Every viewer still plays through
// its own peer's gateway; the cohorts differ only by what the operator's
// policy lets their peers do, as on a live fleet. Peers report telemetry
// every abTelemetry, and the run reads the tracker's fleet aggregation per
// cohort at the end, next to what the players measured.
const (
	ABExperiment = "p2p-ab"
	ABVariantP2P = "p2p"
	ABVariantCDN = "cdn"
	abTelemetry  = time.Second
	// StreamAdminToken is the P2P run's tracker's admin token: /api/fleet
	// and the dashboard need one (the tracker is on loopback, for the run).
	StreamAdminToken = "shoal-bench"
)

// abCohortP2P and abCohortCDN are the cohorts' labels.
var (
	abCohortP2P = ABExperiment + "/" + ABVariantP2P
	abCohortCDN = ABExperiment + "/" + ABVariantCDN
)

// operatorKey is the benchmark operator's key, from the seed.
func operatorKey(seed uint64) ed25519.PrivateKey {
	var ks [32]byte
	binary.LittleEndian.PutUint64(ks[:], seed)
	copy(ks[8:], "shoal bench operator key")
	return ed25519.NewKeyFromSeed(ks[:])
}

// abPolicy is the signed policy of the A/B run.
func abPolicy(cfg *StreamConfig) ([]byte, error) {
	p := control.Policy{
		Serial: 1,
		Experiments: []control.Experiment{{Name: ABExperiment, Variants: []control.Variant{
			{Name: ABVariantP2P, Percent: cfg.CohortSplit}, {Name: ABVariantCDN, Percent: 100 - cfg.CohortSplit}}}},
		Rules: []control.Rule{{Match: control.Match{Cohort: abCohortCDN}, P2P: control.Off}},
	}
	if err := p.Sign(operatorKey(cfg.Seed)); err != nil {
		return nil, fmt.Errorf("bench: A/B policy: %w", err)
	}
	return p.Encode()
}

// abTracker configures tc for the A/B run: the operator's key and its
// policy. It returns the keys the viewers' peers obey.
func abTracker(ctx context.Context, cfg *StreamConfig, srv *tracker.Server) (*manifest.KeySet, error) {
	doc, err := abPolicy(cfg)
	if err != nil {
		return nil, err
	}
	if _, err := srv.SetPolicy(ctx, doc); err != nil {
		return nil, fmt.Errorf("bench: A/B policy: %w", err)
	}
	return manifest.NewKeySet(manifest.PublicOf(operatorKey(cfg.Seed))), nil
}

// CohortRun is one cohort of the A/B run: what its players measured (Run,
// summarised from its sessions alone, with the origin egress its peers
// counted) and what the tracker's fleet telemetry says of it.
type CohortRun struct {
	Cohort string
	Run    *StreamRun
	Fleet  FleetCohort
}

// FleetCohort is one cohort as the tracker's fleet telemetry aggregates it.
type FleetCohort struct {
	FromPeers, FromOrigin int64
	Offload               float64 // FromPeers / (FromPeers + FromOrigin)
	Startups              int64
	StartupP95            time.Duration // from the start-up histogram, interpolated in its bucket
	StallS, WatchS        float64
	Reports               int // points (10 s buckets × label sets) summed
}

// splitCohorts summarises run's sessions per cohort.
func splitCohorts(run *StreamRun) []CohortRun {
	by := map[string][]Session{}
	for _, s := range run.Sessions {
		by[s.Cohort] = append(by[s.Cohort], s)
	}
	var out []CohortRun
	for _, c := range slices.Sorted(mapsKeys(by)) {
		sub := &StreamRun{Name: run.Name, Sessions: by[c]}
		var origin int64
		for _, s := range by[c] {
			origin += s.FromOrigin
		}
		sub.summarize(origin, 0)
		out = append(out, CohortRun{Cohort: c, Run: sub})
	}
	return out
}

func mapsKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// fleetByCohort reads the tracker's /api/fleet and sums it per cohort.
func fleetByCohort(ctx context.Context, trackerURL string) (map[string]FleetCohort, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, trackerURL+"/api/fleet?since=0", nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+StreamAdminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("bench: fleet telemetry: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("bench: fleet telemetry: %s", resp.Status)
	}
	var fr tracker.FleetResponse
	if err := json.NewDecoder(resp.Body).Decode(&fr); err != nil {
		return nil, fmt.Errorf("bench: fleet telemetry: %w", err)
	}
	hist := map[string][]int64{}
	out := map[string]FleetCohort{}
	for _, s := range fr.Series {
		c := s.Labels.Cohort
		fc := out[c]
		h := hist[c]
		for _, p := range s.Points {
			fc.FromPeers += p.FromPeers
			fc.FromOrigin += p.FromOrigin
			fc.StallS += p.StallS
			fc.WatchS += p.WatchS
			fc.Reports++
			for i, n := range p.Startups {
				for len(h) <= i {
					h = append(h, 0)
				}
				h[i] += n
				fc.Startups += n
			}
		}
		out[c], hist[c] = fc, h
	}
	for c, fc := range out {
		if t := fc.FromPeers + fc.FromOrigin; t > 0 {
			fc.Offload = float64(fc.FromPeers) / float64(t)
		}
		fc.StartupP95 = histQuantile(fr.StartupBucketsS, hist[c], 0.95)
		out[c] = fc
	}
	return out, nil
}

// histQuantile is the q-quantile of a histogram with upper bounds bounds
// (then +Inf), interpolated linearly within its bucket (the last finite
// bound for the +Inf bucket), as Prometheus' histogram_quantile does.
func histQuantile(bounds []float64, counts []int64, q float64) time.Duration {
	var total int64
	for _, n := range counts {
		total += n
	}
	if total == 0 {
		return 0
	}
	rank := q * float64(total)
	var cum int64
	for i, n := range counts {
		if float64(cum+n) < rank {
			cum += n
			continue
		}
		if i >= len(bounds) {
			return secondsDur(bounds[len(bounds)-1])
		}
		lo := 0.0
		if i > 0 {
			lo = bounds[i-1]
		}
		frac := (rank - float64(cum)) / float64(n)
		return secondsDur(lo + (bounds[i]-lo)*frac)
	}
	return secondsDur(bounds[len(bounds)-1])
}

func secondsDur(s float64) time.Duration {
	if math.IsNaN(s) || s < 0 {
		return 0
	}
	return time.Duration(s * float64(time.Second))
}

// cohortName is a cohort label for the report.
func cohortName(c string) string {
	switch c {
	case abCohortP2P:
		return "P2P cohort"
	case abCohortCDN:
		return "CDN cohort"
	case "":
		return "no cohort"
	}
	return strconv.Quote(c)
}

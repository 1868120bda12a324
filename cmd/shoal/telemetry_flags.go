package main

import (
	"flag"
	"time"

	"github.com/shoal-cdn/shoal/agent"
	"github.com/shoal-cdn/shoal/discovery"
	"github.com/shoal-cdn/shoal/tracker"
)

// telemetryFlags are `shoal tracker`'s fleet telemetry flags.
type telemetryFlags struct {
	on                                      *bool
	maxSeries, maxPeers                     *int
	history                                 *time.Duration
	offload, startupP95, rebuffer, scarcity *float64
}

func addTelemetryFlags(fs *flag.FlagSet) *telemetryFlags {
	return &telemetryFlags{
		on:         fs.Bool("telemetry", true, "accept peers' telemetry (POST "+discovery.TelemetryPath+"), aggregate it into the shoal_fleet_* metrics and serve its history on GET /api/fleet (behind --admin-token when set)"),
		maxSeries:  fs.Int("telemetry-max-series", tracker.DefaultTelemetryMaxSeries, "label sets (tenant, region, network, device, cohort) kept; reports of further ones count under one set labelled \"other\""),
		maxPeers:   fs.Int("telemetry-max-peers", tracker.DefaultTelemetryMaxPeers, "reporting peers remembered (sequence number and gauges, about 200 bytes each)"),
		history:    fs.Duration("telemetry-history", tracker.DefaultTelemetryHistory, "how long /api/fleet's history is kept, in 10 s buckets"),
		offload:    fs.Float64("alert-offload-min", tracker.DefaultOffloadMin, "dashboard threshold: share of bytes from peers below which offload is low (as the ShoalOffloadLow rule)"),
		startupP95: fs.Float64("alert-startup-p95-max", tracker.DefaultStartupP95MaxS, "dashboard threshold: P95 start-up seconds above which start-up is slow (as ShoalStartupP95High)"),
		rebuffer:   fs.Float64("alert-rebuffer-max", tracker.DefaultRebufferSPerHourMax, "dashboard threshold: seconds stalled per hour watched above which rebuffering is high (as ShoalRebufferingHigh)"),
		scarcity:   fs.Float64("alert-scarcity-max", tracker.DefaultScarcityMax, "dashboard threshold: share of chunks missing with no peer holding them (only the origin has them) above which swarms are fragile"),
	}
}

func (f *telemetryFlags) config() (tracker.TelemetryConfig, error) {
	if *f.maxSeries < 1 {
		return tracker.TelemetryConfig{}, usagef("--telemetry-max-series must be at least 1, got %d", *f.maxSeries)
	}
	if *f.maxPeers < 1 {
		return tracker.TelemetryConfig{}, usagef("--telemetry-max-peers must be at least 1, got %d", *f.maxPeers)
	}
	if *f.history < tracker.TelemetryBucket {
		return tracker.TelemetryConfig{}, usagef("--telemetry-history must be at least %v, got %v", tracker.TelemetryBucket, *f.history)
	}
	for _, t := range []struct {
		name string
		v    float64
		max  float64
	}{{"alert-offload-min", *f.offload, 1}, {"alert-startup-p95-max", *f.startupP95, 3600},
		{"alert-rebuffer-max", *f.rebuffer, 3600}, {"alert-scarcity-max", *f.scarcity, 1}} {
		if !(t.v > 0) || t.v > t.max {
			return tracker.TelemetryConfig{}, usagef("--%s must be above 0 and at most %g, got %v", t.name, t.max, t.v)
		}
	}
	return tracker.TelemetryConfig{
		Off: !*f.on, MaxSeries: *f.maxSeries, MaxPeers: *f.maxPeers, History: *f.history,
		Thresholds: tracker.Thresholds{OffloadMin: *f.offload, StartupP95MaxS: *f.startupP95,
			RebufferSPerHourMax: *f.rebuffer, ScarcityMax: *f.scarcity},
	}, nil
}

// peerTelemetryFlags are the telemetry flags of `shoal peer` and `shoal get`.
type peerTelemetryFlags struct {
	interval        *time.Duration
	device, network *string
}

func addPeerTelemetryFlags(fs *flag.FlagSet) peerTelemetryFlags {
	return peerTelemetryFlags{
		interval: fs.Duration("telemetry-interval", agent.DefaultTelemetryInterval, "how often to send the tracker a summary (bytes from peers and origin, upload, start-ups, stalls, watch time; no content IDs, no addresses); 0: never. None is sent without --tracker"),
		device:   fs.String("device-class", "", "device class: what the operator's policy rules match and the telemetry is labelled with: desktop, mobile, tv, settop, server… (up to 64 of a-z A-Z 0-9 . _ / -)"),
		network:  fs.String("network-label", "", "network (ISP or ASN) label the telemetry is labelled with, e.g. AS3320 (up to 64 of a-z A-Z 0-9 . _ / -); nothing is looked up"),
	}
}

func (f peerTelemetryFlags) apply(pc *agent.PeerConfig) error {
	switch iv := *f.interval; {
	case iv == 0:
		pc.TelemetryInterval = -1
	case iv < time.Second:
		return usagef("--telemetry-interval %v: want at least 1s, or 0 for never", iv)
	default:
		pc.TelemetryInterval = iv
	}
	for _, l := range []struct{ flag, v string }{{"device-class", *f.device}, {"network-label", *f.network}} {
		if err := discovery.CheckTelemetryLabel(l.v); err != nil {
			return usagef("--%s %q: %v", l.flag, l.v, err)
		}
	}
	pc.DeviceClass, pc.NetworkLabel = *f.device, *f.network
	return nil
}

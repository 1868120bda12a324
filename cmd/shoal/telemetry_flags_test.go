package main

import (
	"io"
	"strings"
	"testing"
	"time"

	"github.com/shoal-cdn/shoal/agent"
	"github.com/shoal-cdn/shoal/tracker"
)

func TestPeerTelemetryFlags(t *testing.T) {
	for _, tc := range []struct {
		args    []string
		env     map[string]string
		wantErr string
		want    agent.PeerConfig
	}{
		{nil, nil, "", agent.PeerConfig{TelemetryInterval: agent.DefaultTelemetryInterval}},
		{[]string{"--telemetry-interval", "0"}, nil, "", agent.PeerConfig{TelemetryInterval: -1}},
		{[]string{"--device-class", "tv", "--network-label", "AS3320"}, map[string]string{"SHOAL_PEER_TELEMETRY_INTERVAL": "5s"}, "",
			agent.PeerConfig{TelemetryInterval: 5 * time.Second, DeviceClass: "tv", NetworkLabel: "AS3320"}},
		{[]string{"--telemetry-interval", "100ms"}, nil, "--telemetry-interval 100ms: want at least 1s", agent.PeerConfig{}},
		{[]string{"--device-class", "smart tv"}, nil, `--device-class "smart tv": byte 5 (' ') not allowed`, agent.PeerConfig{}},
		{nil, map[string]string{"SHOAL_PEER_NETWORK_LABEL": strings.Repeat("n", 65)}, "--network-label", agent.PeerConfig{}},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v) // restored when the subtest ends
			}
			fs := newFlagSet("peer", "", io.Discard)
			f := addPeerTelemetryFlags(fs)
			if err := parseFlags(fs, tc.args); err != nil {
				t.Fatal(err)
			}
			var pc agent.PeerConfig
			err := f.apply(&pc)
			switch {
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Errorf("%v %v: error %v, want one saying %q", tc.args, tc.env, err, tc.wantErr)
			case tc.wantErr == "" && err != nil:
				t.Errorf("%v %v: %v", tc.args, tc.env, err)
			case tc.wantErr == "" && (pc.TelemetryInterval != tc.want.TelemetryInterval || pc.DeviceClass != tc.want.DeviceClass || pc.NetworkLabel != tc.want.NetworkLabel):
				t.Errorf("%v %v: interval %v device %q network %q", tc.args, tc.env, pc.TelemetryInterval, pc.DeviceClass, pc.NetworkLabel)
			}
		})
	}
}

func TestTrackerTelemetryFlags(t *testing.T) {
	parse := func(args ...string) (tracker.TelemetryConfig, error) {
		fs := newFlagSet("tracker", "", io.Discard)
		f := addTelemetryFlags(fs)
		if err := parseFlags(fs, args); err != nil {
			t.Fatal(err)
		}
		return f.config()
	}
	c, err := parse()
	want := tracker.Thresholds{OffloadMin: 0.5, StartupP95MaxS: 4, RebufferSPerHourMax: 30, ScarcityMax: 0.2}
	if err != nil || c.Off || c.MaxSeries != 1000 || c.History != time.Hour || c.Thresholds != want {
		t.Fatalf("defaults: %+v, %v", c, err)
	}
	if c, err := parse("--telemetry=false", "--alert-offload-min", "0.7"); err != nil || !c.Off || c.Thresholds.OffloadMin != 0.7 {
		t.Fatalf("--telemetry=false --alert-offload-min 0.7: %+v, %v", c, err)
	}
	for _, bad := range [][]string{{"--alert-offload-min", "1.5"}, {"--alert-scarcity-max", "0"}, {"--telemetry-max-series", "0"}, {"--telemetry-history", "1s"}} {
		if _, err := parse(bad...); err == nil || !strings.Contains(err.Error(), bad[0]) {
			t.Errorf("%v: %v, want an error naming the flag", bad, err)
		}
	}
}

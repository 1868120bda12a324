package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// TestNATFlagErrors: bad relay and NAT flags are refused with a message
// naming the flag, before anything starts.
func TestNATFlagErrors(t *testing.T) {
	key := "--trust=" + strings.Repeat("A", 43) // a well-formed but unknown key
	for _, tc := range []struct {
		cmd  string
		args []string
		want string
	}{
		{"peer", []string{"--origin", "http://127.0.0.1:1", key, "--private"}, "--private: want --relay"},
		{"peer", []string{"--origin", "http://127.0.0.1:1", key, "--relay", "/ip4/198.18.0.1/tcp/4002"}, "--relay"},
		{"get", []string{"--origin", "http://127.0.0.1:1", key, "--relay", "nonsense", "AAAA"}, "--relay"},
		{"relay", []string{"--circuit-bytes", "0"}, "--circuit-bytes"},
		{"relay", []string{"--max-circuits", "-1"}, "--max-circuits"},
		{"relay", []string{"--circuit-duration", "0s"}, "--circuit-duration"},
		{"relay", []string{"extra"}, "no arguments"},
	} {
		var stderr bytes.Buffer
		err := commands[tc.cmd].run(context.Background(), tc.args, &bytes.Buffer{}, &stderr)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("shoal %s %v: err = %v, want one mentioning %q", tc.cmd, tc.args, err, tc.want)
		}
	}
}

// TestRelayEnvTwin: the relay's flags have environment twins.
func TestRelayEnvTwin(t *testing.T) {
	t.Setenv("SHOAL_RELAY_CIRCUIT_BYTES", "nonsense")
	err := commands["relay"].run(context.Background(), nil, &bytes.Buffer{}, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "SHOAL_RELAY_CIRCUIT_BYTES") && !strings.Contains(err.Error(), "--circuit-bytes") {
		t.Fatalf("err = %v, want the env twin's value refused", err)
	}
}

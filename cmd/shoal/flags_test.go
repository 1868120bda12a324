package main

import (
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/shoal-cdn/shoal/core"
)

func TestFlagPrecedence(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "c.yaml")
	os.WriteFile(cfg, []byte("cache-size: 10GiB\nregion: file-region\nparallel: 3\n"), 0o644)
	for _, tc := range []struct {
		name       string
		args       []string
		env        map[string]string
		wantRegion string
		wantSize   string
		wantPar    int
	}{
		{"file only", []string{"--config", cfg}, nil, "file-region", "10GiB", 3},
		{"env beats file", []string{"--config", cfg}, map[string]string{"SHOAL_X_REGION": "env-region"}, "env-region", "10GiB", 3},
		{"flag beats env", []string{"--config", cfg, "--region", "flag-region"}, map[string]string{"SHOAL_X_REGION": "env-region"}, "flag-region", "10GiB", 3},
		{"config from env", nil, map[string]string{"SHOAL_X_CONFIG": cfg}, "file-region", "10GiB", 3},
		{"defaults", nil, nil, "", "0", 8},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			fs := newFlagSet("x", "", io.Discard)
			region := fs.String("region", "", "")
			size := fs.String("cache-size", "0", "")
			par := fs.Int("parallel", 8, "")
			if err := parseFlags(fs, tc.args); err != nil {
				t.Fatal(err)
			}
			if *region != tc.wantRegion || *size != tc.wantSize || *par != tc.wantPar {
				t.Fatalf("region %q size %q parallel %d", *region, *size, *par)
			}
		})
	}
}

func TestConfigRejectsUnknownKeys(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "c.yaml")
	os.WriteFile(cfg, []byte("regoin: typo\n"), 0o644)
	fs := newFlagSet("x", "", io.Discard)
	fs.String("region", "", "")
	err := parseFlags(fs, []string{"--config", cfg})
	var ue usageError
	if !errors.As(err, &ue) {
		t.Fatalf("unknown key: %v", err)
	}
	if err := parseFlags(newFlagSet("y", "", io.Discard), []string{"-h"}); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("-h: %v", err)
	}
}

// TestEnvTwinsArePerCommand guards against a variable set for one command
// reaching another: SHOAL_DIR meant for `shoal origin` once made `shoal demo`
// write into a live origin directory.
func TestEnvTwinsArePerCommand(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "origin.yaml")
	os.WriteFile(cfg, []byte("dir: /from-origin-config\n"), 0o644)
	t.Setenv("SHOAL_DIR", "/from-old-global-twin")
	t.Setenv("SHOAL_ORIGIN_DIR", "/from-origin-twin")
	t.Setenv("SHOAL_CONFIG", cfg)
	t.Setenv("SHOAL_ORIGIN_CONFIG", cfg)
	t.Setenv("SHOAL_PEER_LISTEN", "/ip4/127.0.0.1/tcp/0")

	parse := func(command string) (dir, listen, warnings string) {
		t.Helper()
		var stderr strings.Builder
		fs := newFlagSet(command, "", &stderr)
		d := fs.String("dir", "", "")
		l := fs.String("listen", "", "")
		if err := parseFlags(fs, nil); err != nil {
			t.Fatalf("shoal %s: %v", command, err)
		}
		return *d, *l, stderr.String()
	}
	if dir, listen, warn := parse("demo"); dir != "" || listen != "" || !strings.Contains(warn, "ignoring SHOAL_DIR") || !strings.Contains(warn, "SHOAL_DEMO_DIR") || !strings.Contains(warn, "ignoring SHOAL_CONFIG") {
		t.Errorf("shoal demo: --dir %q, --listen %q, stderr %q; want neither taken from other commands' environment, and a note on SHOAL_DIR", dir, listen, warn)
	}
	if dir, listen, _ := parse("origin"); dir != "/from-origin-twin" || listen != "" {
		t.Errorf("shoal origin: --dir %q, --listen %q; want its own twin only", dir, listen)
	}
	if _, listen, _ := parse("peer"); listen != "/ip4/127.0.0.1/tcp/0" {
		t.Errorf("shoal peer: --listen %q, want SHOAL_PEER_LISTEN's value", listen)
	}
	t.Setenv("SHOAL_ORIGIN_DIR", "")
	os.Unsetenv("SHOAL_ORIGIN_DIR")
	if dir, _, _ := parse("origin"); dir != "/from-origin-config" {
		t.Errorf("shoal origin: --dir %q, want SHOAL_ORIGIN_CONFIG's", dir)
	}
	if got := envName("bench stream", "peer-up"); got != "SHOAL_BENCH_STREAM_PEER_UP" {
		t.Errorf("envName = %q", got)
	}
}

// TestIDStartingWithDashIsPositional: one content ID in 64 starts with '-',
// and `shoal get --origin URL --trust KEY -o OUT "$ID"` must take it as the
// ID, not as an unknown flag.
func TestIDStartingWithDashIsPositional(t *testing.T) {
	id := "-" + strings.Repeat("A", 41) + "E" // 43 base64url characters, 32 bytes
	var raw [32]byte
	if !core.DecodeBase64URL(raw[:], id) {
		t.Fatalf("test ID %q does not decode", id)
	}
	for _, tc := range []struct {
		name string
		args []string
		out  string
		rest []string
	}{
		{"last", []string{"--origin", "http://o", "-o", "out", id}, "out", []string{id}},
		{"with path", []string{"-o", "out", id + "/dir/f.bin"}, "out", []string{id + "/dir/f.bin"}},
		{"as a flag's value", []string{"-o", id, id}, id, []string{id}},
		{"after --", []string{"-o", "out", "--", id}, "out", []string{id}},
		{"bool flag before", []string{"--quiet", id}, "", []string{id}},
		{"plain", []string{"-o=out", "abc"}, "out", []string{"abc"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs := newFlagSet("get", "", io.Discard)
			fs.String("origin", "", "")
			out := fs.String("o", "", "")
			fs.Bool("quiet", false, "")
			if err := parseFlags(fs, tc.args); err != nil {
				t.Fatalf("parseFlags(%q): %v", tc.args, err)
			}
			if *out != tc.out || !slices.Equal(fs.Args(), tc.rest) {
				t.Fatalf("parseFlags(%q): -o %q, args %q; want %q, %q", tc.args, *out, fs.Args(), tc.out, tc.rest)
			}
		})
	}
	// A mistyped flag is still an error, not a positional.
	fs := newFlagSet("get", "", io.Discard)
	if err := parseFlags(fs, []string{"--qiuet", id}); err == nil {
		t.Fatal("unknown flag accepted")
	}
}

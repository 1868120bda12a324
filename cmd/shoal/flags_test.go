package main

import (
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"testing"
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
		{"env beats file", []string{"--config", cfg}, map[string]string{"SHOAL_REGION": "env-region"}, "env-region", "10GiB", 3},
		{"flag beats env", []string{"--config", cfg, "--region", "flag-region"}, map[string]string{"SHOAL_REGION": "env-region"}, "flag-region", "10GiB", 3},
		{"config from env", nil, map[string]string{"SHOAL_CONFIG": cfg}, "file-region", "10GiB", 3},
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

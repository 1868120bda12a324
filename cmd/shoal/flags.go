package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// newFlagSet returns a FlagSet for one subcommand that reports errors
// instead of exiting, and prints usage to stderr. Every subcommand gets
// --config: a YAML file of flag values.
func newFlagSet(name, usageLine string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.String("config", "", "YAML file of flag values (keys are flag names, e.g. cache-size: 10GiB)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: shoal %s %s\n\nflags (precedence: flag > env twin SHOAL_<FLAG> > --config file > default;\ne.g. --cache-size → SHOAL_CACHE_SIZE):\n", name, usageLine)
		fs.PrintDefaults()
	}
	return fs
}

// envName is the environment twin of a flag: SHOAL_ + upper case, '-' → '_'.
func envName(flagName string) string {
	return "SHOAL_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// parseFlags parses args, then fills each flag not given on the command line
// from its environment twin or, failing that, from the --config file.
// Precedence: flag > env > file > default.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return err
		}
		return usageError{err}
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	file, err := loadConfig(fs, set)
	if err != nil {
		return err
	}
	fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] || err != nil || f.Name == "config" {
			return
		}
		if v, ok := os.LookupEnv(envName(f.Name)); ok {
			if e := fs.Set(f.Name, v); e != nil {
				err = usagef("%s=%q: %v", envName(f.Name), v, e)
			}
			return
		}
		if v, ok := file[f.Name]; ok {
			if e := fs.Set(f.Name, v); e != nil {
				err = usagef("--config: %s: %q: %v", f.Name, v, e)
			}
		}
	})
	return err
}

// loadConfig reads the --config file (or SHOAL_CONFIG) into flag values.
// Every key must name a flag of the subcommand.
func loadConfig(fs *flag.FlagSet, set map[string]bool) (map[string]string, error) {
	path := fs.Lookup("config").Value.String()
	if !set["config"] {
		if v, ok := os.LookupEnv(envName("config")); ok {
			path = v
		}
	}
	if path == "" {
		return nil, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, usagef("--config: %v", err)
	}
	var raw map[string]any
	if err := yaml.Unmarshal(b, &raw); err != nil {
		return nil, usagef("--config %s: %v", path, err)
	}
	out := make(map[string]string, len(raw))
	var unknown []string
	for k, v := range raw {
		if fs.Lookup(k) == nil || k == "config" {
			unknown = append(unknown, k)
			continue
		}
		switch v := v.(type) {
		case map[string]any, []any:
			return nil, usagef("--config %s: %s: want a single value", path, k)
		case nil:
			out[k] = ""
		default:
			out[k] = fmt.Sprint(v)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return nil, usagef("--config %s: unknown keys %s for shoal %s", path, strings.Join(unknown, ", "), fs.Name())
	}
	return out, nil
}

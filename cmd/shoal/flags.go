package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/shoal-cdn/shoal/core"
)

// newFlagSet returns a FlagSet for one subcommand that reports errors
// instead of exiting, and prints usage to stderr. Every subcommand gets
// --config: a YAML file of flag values, and --log-format and --log-level.
func newFlagSet(name, usageLine string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.String("config", "", "YAML file of flag values (keys are flag names, e.g. cache-size: 10GiB)")
	addLogFlags(fs)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: shoal %s %s\n\nflags (precedence: flag > env twin %s<FLAG> > --config file > default;\ne.g. --config → %s):\n", name, usageLine, envName(name, ""), envName(name, "config"))
		fs.PrintDefaults()
	}
	return fs
}

// envName is the environment twin of a command's flag: SHOAL_, the command,
// then the flag, upper case with '-' and ' ' as '_' (--dir of shoal origin is
// SHOAL_ORIGIN_DIR). Twins are per command, --config's too, so a variable set
// for one command never reaches another, and a name means one format: a
// peer's SHOAL_PEER_LISTEN is multiaddrs, a tracker's SHOAL_TRACKER_LISTEN
// host:port.
func envName(command, flagName string) string {
	r := strings.NewReplacer("-", "_", " ", "_")
	return "SHOAL_" + strings.ToUpper(r.Replace(command)+"_"+r.Replace(flagName))
}

// noteGlobalTwin says on stderr that the twin flagName had before twins were
// per command (SHOAL_DIR for --dir) is set and ignored, and which one counts.
func noteGlobalTwin(fs *flag.FlagSet, flagName string) {
	old := "SHOAL_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
	if os.Getenv(old) != "" {
		fmt.Fprintf(fs.Output(), "shoal %s: ignoring %s: environment twins are per command; this one is %s\n", fs.Name(), old, envName(fs.Name(), flagName))
	}
}

// parseFlags parses args, then fills each flag not given on the command line
// from its environment twin or, failing that, from the --config file.
// Precedence: flag > env > file > default.
//
// An argument that starts with an identifier (a content or channel ID,
// perhaps followed by /PATH) ends the flags even when it starts with '-', as
// one ID in 64 does: `shoal get … "$ID"` works whatever the ID. "--" ends the
// flags too.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(positionalIDs(fs, args)); err != nil {
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
		if v, ok := os.LookupEnv(envName(fs.Name(), f.Name)); ok {
			if e := fs.Set(f.Name, v); e != nil {
				err = usagef("%s=%q: %v", envName(fs.Name(), f.Name), v, e)
			}
			return
		}
		noteGlobalTwin(fs, f.Name)
		if v, ok := file[f.Name]; ok {
			if e := fs.Set(f.Name, v); e != nil {
				err = usagef("--config: %s: %q: %v", f.Name, v, e)
			}
		}
	})
	if err == nil {
		// Checks --log-format and --log-level for every command, and
		// points slog's default logger at stderr in that format.
		_, err = newLogger(fs, fs.Output())
	}
	return err
}

// positionalIDs returns args with "--" inserted before the first argument
// that is not a flag or a flag's value and starts with an identifier, so the
// flag package takes an ID beginning with '-' as the positional it is.
func positionalIDs(fs *flag.FlagSet, args []string) []string {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" || !strings.HasPrefix(a, "-") || a == "-" {
			return args // the flag package stops here by itself
		}
		name, _, hasValue := strings.Cut(strings.TrimPrefix(strings.TrimPrefix(a, "-"), "-"), "=")
		if f := fs.Lookup(name); f != nil {
			if b, ok := f.Value.(interface{ IsBoolFlag() bool }); !hasValue && !(ok && b.IsBoolFlag()) {
				i++ // the next argument is this flag's value
			}
			continue
		}
		var id [32]byte
		if idPart, _, _ := strings.Cut(a, "/"); core.DecodeBase64URL(id[:], idPart) {
			return slices.Concat(args[:i], []string{"--"}, args[i:])
		}
		return args // an unknown flag: the flag package says so
	}
	return args
}

// loadConfig reads the --config file (or its environment twin) into flag
// values. Every key must name a flag of the subcommand.
func loadConfig(fs *flag.FlagSet, set map[string]bool) (map[string]string, error) {
	path := fs.Lookup("config").Value.String()
	if !set["config"] {
		if v, ok := os.LookupEnv(envName(fs.Name(), "config")); ok {
			path = v
		} else {
			noteGlobalTwin(fs, "config")
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

// commaList splits a comma-separated flag value into its items, spaces
// trimmed, empty ones dropped: "" is no item, "a, b," is [a b].
func commaList(s string) []string {
	var out []string
	for _, item := range strings.Split(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

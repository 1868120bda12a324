package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/shoal-cdn/shoal/control"
	"github.com/shoal-cdn/shoal/discovery"
	"github.com/shoal-cdn/shoal/manifest"
	"github.com/shoal-cdn/shoal/tracker"
)

// policyCommands are the subcommands of `shoal policy`.
var policyCommands = map[string]command{
	"sign": {summary: "sign an operator policy (rules, experiments) with an operator key", run: runPolicySign},
	"push": {summary: "upload a signed policy to a tracker (its admin token)", run: runPolicyPush},
	"show": {summary: "print the policy a tracker hands out (or a signed file), verified", run: runPolicyShow},
}

func init() {
	register("policy", "the operator's signed policy: sign, push, show", runPolicy)
}

func runPolicy(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		policyUsage(stderr)
		if len(args) == 0 {
			return usagef("want sign, push or show")
		}
		return nil
	}
	c, ok := policyCommands[args[0]]
	if !ok {
		policyUsage(stderr)
		return usagef("unknown policy command %q", args[0])
	}
	return c.run(ctx, args[1:], stdout, stderr)
}

func policyUsage(w io.Writer) {
	fmt.Fprintln(w, "usage: shoal policy COMMAND [flags]\n\ncommands:")
	names := make([]string, 0, len(policyCommands))
	for n := range policyCommands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-5s %s\n", n, policyCommands[n].summary)
	}
	fmt.Fprintln(w, "\nSee docs/policy.md for writing a policy.")
}

// policyHTTPTimeout bounds one push or show.
const policyHTTPTimeout = 30 * time.Second

// readInput reads a file, or stdin for "-".
func readInput(path string) ([]byte, error) {
	if path == "-" {
		return io.ReadAll(io.LimitReader(os.Stdin, control.MaxSize+1))
	}
	return os.ReadFile(path) // names the file in its error
}

func runPolicySign(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("policy sign", "--key OPERATOR.key [--serial N] POLICY.json > signed.json", stderr)
	key := fs.String("key", "", "operator private key file (from shoal keygen) to sign with; trackers and peers must trust its public key (--operator-key)")
	serial := fs.Uint64("serial", 0, "the policy's serial, above every earlier one's (0: the file's \"serial\")")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *key == "" || fs.NArg() != 1 {
		fs.Usage()
		return usagef("want --key and one policy file (- for stdin)")
	}
	priv, err := manifest.ReadKeyFile(*key)
	if err != nil {
		return err
	}
	b, err := readInput(fs.Arg(0))
	if err != nil {
		return err
	}
	// The unsigned policy: serial, rules and experiments. What a signature
	// sets (version, operator, issued, signature) is taken from the key and
	// the clock, so an earlier signed file can be edited and signed again.
	var in control.Policy
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		return fmt.Errorf("policy file %s: %v (want a JSON object with serial, rules, experiments: see docs/policy.md)", fs.Arg(0), err)
	}
	p := control.Policy{Serial: in.Serial, Rules: in.Rules, Experiments: in.Experiments}
	if *serial != 0 {
		p.Serial = *serial
	}
	if p.Serial == 0 {
		return usagef("no serial: give --serial N or \"serial\" in %s (above the serial the fleet holds: shoal policy show)", fs.Arg(0))
	}
	if err := p.Sign(priv); err != nil {
		return fmt.Errorf("policy file %s: %w", fs.Arg(0), err)
	}
	doc, err := p.Encode()
	if err != nil {
		return err
	}
	_, err = stdout.Write(append(doc, '\n'))
	return err
}

func runPolicyPush(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("policy push", "--tracker URL --admin-token T signed.json", stderr)
	trackerURL := fs.String("tracker", "", "tracker base URL (http://host:7070); replicas on one Redis share what one is given")
	adminToken := fs.String("admin-token", "", "the tracker's admin token (prefer the env twin: a flag shows in ps)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *trackerURL == "" || *adminToken == "" || fs.NArg() != 1 {
		fs.Usage()
		return usagef("want --tracker, --admin-token and one signed policy file (- for stdin)")
	}
	u, err := endpoint(*trackerURL, tracker.PolicyAPIPath)
	if err != nil {
		return usagef("--tracker: %v", err)
	}
	doc, err := readInput(fs.Arg(0))
	if err != nil {
		return err
	}
	doc = bytes.TrimRight(doc, " \t\r\n")
	// Checked here first (signature and form, any signer) so a wrong file
	// fails with the file's name rather than the tracker's words.
	p, err := control.Decode(doc, anyOperator{})
	if err != nil {
		return fmt.Errorf("%s: %w (sign it with shoal policy sign)", fs.Arg(0), err)
	}
	ctx, cancel := context.WithTimeout(ctx, policyHTTPTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, u, bytes.NewReader(doc))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+*adminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("push policy %d to %s: %w", p.Serial, *trackerURL, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("push policy %d to %s: HTTP %s: %s", p.Serial, *trackerURL, resp.Status, errorText(resp.Body))
	}
	fmt.Fprintf(stdout, "policy %d set on %s\n", p.Serial, *trackerURL)
	return nil
}

func runPolicyShow(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("policy show", "(--tracker URL | signed.json) [--operator-key PUB] [--json]", stderr)
	trackerURL := fs.String("tracker", "", "tracker base URL to ask for the policy it hands out")
	keys := &keyList{}
	fs.Var(keys, "operator-key", "operator public keys the policy must be signed by (comma-separated, repeatable); without it the signature is checked against the key the policy names")
	asJSON := fs.Bool("json", false, "print the verified policy as it is encoded, not as text")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if (*trackerURL == "") == (fs.NArg() == 0) || fs.NArg() > 1 {
		fs.Usage()
		return usagef("want --tracker URL or one signed policy file, not both")
	}
	var doc []byte
	from := fs.Arg(0)
	if *trackerURL != "" {
		from = *trackerURL
		u, err := endpoint(*trackerURL, discovery.PolicyPath)
		if err != nil {
			return usagef("--tracker: %v", err)
		}
		ctx, cancel := context.WithTimeout(ctx, policyHTTPTimeout)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return fmt.Errorf("policy from %s: %w", from, err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("policy from %s: HTTP %s: %s", from, resp.Status, errorText(resp.Body))
		}
		if doc, err = io.ReadAll(io.LimitReader(resp.Body, control.MaxSize+1)); err != nil {
			return fmt.Errorf("policy from %s: %w", from, err)
		}
	} else {
		var err error
		if doc, err = readInput(from); err != nil {
			return err
		}
		doc = bytes.TrimRight(doc, " \t\r\n")
	}
	var trust manifest.Trust = anyOperator{}
	if len(*keys) > 0 {
		trust = manifest.NewKeySet(*keys...)
	}
	p, err := control.Decode(doc, trust)
	if err != nil {
		return fmt.Errorf("policy from %s: %w", from, err)
	}
	if *asJSON {
		_, err = stdout.Write(append(doc, '\n'))
		return err
	}
	checked := "signature valid; signer not checked (give --operator-key)"
	if len(*keys) > 0 {
		checked = "verified: signed by a key you gave"
	}
	fmt.Fprintf(stdout, "policy %d by operator %s, issued %s\n%s\n", p.Serial, p.Operator, p.Issued.Format(time.RFC3339), checked)
	printPolicy(stdout, p)
	return nil
}

// printPolicy writes p's rules and experiments, one line each.
func printPolicy(w io.Writer, p *control.Policy) {
	if len(p.Rules) == 0 {
		fmt.Fprintln(w, "no rules: peer-to-peer on for everyone")
	}
	for i, r := range p.Rules {
		fmt.Fprintf(w, "rule %d: %s → %s\n", i+1, describeMatch(r.Match), describeRule(r))
	}
	for _, e := range p.Experiments {
		parts := make([]string, 0, len(e.Variants)+1)
		total := 0.0
		for _, v := range e.Variants {
			parts = append(parts, fmt.Sprintf("%s %s%%", e.Name+"/"+v.Name, strconv.FormatFloat(v.Percent, 'f', -1, 64)))
			total += v.Percent
		}
		if total < 100 {
			parts = append(parts, fmt.Sprintf("in no cohort %s%%", strconv.FormatFloat(100-total, 'f', -1, 64)))
		}
		fmt.Fprintf(w, "experiment %s: %s\n", e.Name, strings.Join(parts, ", "))
	}
}

func describeMatch(m control.Match) string {
	var parts []string
	for _, f := range []struct{ k, v string }{{"tenant", m.Tenant}, {"content", m.Content}, {"region", m.Region}, {"device", m.Device}, {"cohort", m.Cohort}} {
		if f.v != "" {
			parts = append(parts, f.k+"="+f.v)
		}
	}
	if len(parts) == 0 {
		return "every peer"
	}
	return strings.Join(parts, " ")
}

func describeRule(r control.Rule) string {
	var parts []string
	if r.P2P != "" {
		parts = append(parts, "p2p "+string(r.P2P))
	}
	if r.UploadBps > 0 {
		parts = append(parts, "upload at most "+formatRate(r.UploadBps))
	}
	if r.Consent {
		parts = append(parts, "consent required")
	}
	if r.Metered != "" {
		parts = append(parts, "on metered networks "+string(r.Metered))
	}
	if r.Battery != "" {
		parts = append(parts, "on battery "+string(r.Battery))
	}
	if len(parts) == 0 {
		return "no say"
	}
	return strings.Join(parts, ", ")
}

// formatRate prints bytes per second in the largest unit that keeps a
// whole number in front, and the exact value.
func formatRate(bps int64) string {
	units := []string{"B/s", "kB/s", "MB/s", "GB/s"}
	v, i := float64(bps), 0
	for v >= 1000 && i < len(units)-1 {
		v /= 1000
		i++
	}
	if i == 0 {
		return fmt.Sprintf("%d B/s", bps)
	}
	return fmt.Sprintf("%.3g %s (%d B/s)", v, units[i], bps)
}

// anyOperator trusts every key: for checking a policy's form and signature
// where the caller named no operator key.
type anyOperator struct{}

func (anyOperator) Trusts(manifest.PublicKey) bool { return true }

// endpoint joins a tracker's base URL and an endpoint path.
func endpoint(base, path string) (string, error) {
	u, err := url.Parse(base)
	if err != nil {
		return "", err
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return "", fmt.Errorf("%q: want http:// or https://host[:port]", base)
	}
	u.Path = strings.TrimSuffix(u.Path, "/") + path
	return u.String(), nil
}

// errorText is the "error" of a JSON error body, or its start.
func errorText(r io.Reader) string {
	b, _ := io.ReadAll(io.LimitReader(r, 4<<10))
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(b, &e) == nil && e.Error != "" {
		return e.Error
	}
	if s := strings.TrimSpace(string(b)); s != "" {
		return strconv.Quote(s)
	}
	return "no reason given"
}

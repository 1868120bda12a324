package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/shoal-cdn/shoal/core"
	"github.com/shoal-cdn/shoal/manifest"
	"github.com/shoal-cdn/shoal/token"
)

// tokenCommands are the subcommands of `shoal token`.
var tokenCommands = map[string]command{
	"issue":    {summary: "sign an access token for a tenant (a content, a channel or a name prefix)", run: runTokenIssue},
	"delegate": {summary: "let a tenant's token service key issue tokens within limits", run: runTokenDelegate},
	"inspect":  {summary: "print a token's (or delegation's) claims as JSON, without verifying it", run: runTokenInspect},
}

func init() {
	register("token", "access tokens: issue, delegate, inspect", runToken)
}

func runToken(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		tokenUsage(stderr)
		if len(args) == 0 {
			return usagef("want issue, delegate or inspect")
		}
		return nil
	}
	c, ok := tokenCommands[args[0]]
	if !ok {
		tokenUsage(stderr)
		return usagef("unknown token command %q", args[0])
	}
	return c.run(ctx, args[1:], stdout, stderr)
}

func tokenUsage(w io.Writer) {
	fmt.Fprintln(w, "usage: shoal token COMMAND [flags]\n\ncommands:")
	names := make([]string, 0, len(tokenCommands))
	for n := range tokenCommands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-9s %s\n", n, tokenCommands[n].summary)
	}
}

// scopeFlags choose what a token or delegation grants: exactly one of them.
type scopeFlags struct {
	content, channel, prefix *string
	any                      *bool
}

func addScopeFlags(fs interface {
	String(name, value, usage string) *string
	Bool(name string, value bool, usage string) *bool
}, what string) scopeFlags {
	return scopeFlags{
		content: fs.String("content", "", what+" one content ID"),
		channel: fs.String("channel", "", what+" one live channel ID"),
		prefix:  fs.String("prefix", "", what+" every content the publisher signs under this name prefix"),
		any:     fs.Bool("any", false, what+" everything the publisher signs (an operator's token)"),
	}
}

// scope returns the one scope chosen; none chosen gives def (if set).
func (f scopeFlags) scope(def *token.Scope) (token.Scope, error) {
	var out []token.Scope
	if *f.content != "" {
		id, err := core.ParseContentID(*f.content)
		if err != nil {
			return token.Scope{}, usagef("--content: %v", err)
		}
		out = append(out, token.ContentScope(id))
	}
	if *f.channel != "" {
		id, err := manifest.ParseChannelID(*f.channel)
		if err != nil {
			return token.Scope{}, usagef("--channel: %v", err)
		}
		out = append(out, token.ChannelScope(id))
	}
	if *f.prefix != "" {
		out = append(out, token.PrefixScope(*f.prefix))
	}
	if *f.any {
		out = append(out, token.AnyScope())
	}
	switch {
	case len(out) == 1:
		return out[0], nil
	case len(out) == 0 && def != nil:
		return *def, nil
	case len(out) == 0:
		return token.Scope{}, usagef("want one of --content, --channel, --prefix or --any")
	}
	return token.Scope{}, usagef("want only one of --content, --channel, --prefix and --any")
}

func runTokenIssue(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("token issue", "--key FILE --tenant T (--content ID | --channel ID | --prefix P | --any) [--region R] [--peer PEERID] [--ttl 1h] [--not-before TIME] [--delegation FILE]", stderr)
	key := fs.String("key", "", "signing key (PEM from shoal keygen): the publisher's, or a token service's named by --delegation")
	tenant := fs.String("tenant", "", "tenant the token is for (letters, digits, . _ : -; at most 64)")
	sf := addScopeFlags(fs, "grant")
	region := fs.String("region", "", "region of the holder; a content published with --region is served only to tokens naming one of its regions")
	peer := fs.String("peer", "", "bind the token to this libp2p peer ID (only that peer may present it)")
	ttl := fs.Duration("ttl", time.Hour, "how long the token is valid after --not-before")
	notBefore := fs.String("not-before", "", "start of validity, RFC 3339 (e.g. 2026-12-01T08:00:00Z); default now")
	delegation := fs.String("delegation", "", "file holding a delegation (from shoal token delegate) that lets --key issue for the publisher")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *key == "" || *tenant == "" || fs.NArg() != 0 {
		fs.Usage()
		return usagef("want --key, --tenant and a scope, no arguments")
	}
	if err := token.CheckTenant(*tenant); err != nil {
		return usagef("--tenant: %v", err)
	}
	scope, err := sf.scope(nil)
	if err != nil {
		return err
	}
	if *ttl <= 0 {
		return usagef("--ttl %v: want a positive duration such as 1h", *ttl)
	}
	nbf := time.Now()
	if *notBefore != "" {
		if nbf, err = time.Parse(time.RFC3339, *notBefore); err != nil {
			return usagef("--not-before %q: want an RFC 3339 time such as 2026-12-01T08:00:00Z", *notBefore)
		}
	}
	priv, err := manifest.ReadKeyFile(*key)
	if err != nil {
		return usagef("--key: %v", err)
	}
	c := token.Claims{Tenant: *tenant, Scope: scope, Region: *region, Peer: *peer, NotBefore: nbf, Expiry: nbf.Add(*ttl)}
	if *delegation != "" {
		b, err := os.ReadFile(*delegation)
		if err != nil {
			return usagef("--delegation: %v", err)
		}
		if c.Delegation, err = token.DecodeDelegation(string(b)); err != nil {
			return usagef("--delegation %s: %v", *delegation, err)
		}
		if !c.Delegation.Verify() {
			return usagef("--delegation %s: signature does not verify under publisher %s", *delegation, c.Delegation.Publisher)
		}
		if c.Expiry.After(c.Delegation.Expiry) {
			return usagef("--ttl: the token would outlive its delegation, which expires at %s", c.Delegation.Expiry.Format(time.RFC3339))
		}
	}
	s, err := token.Issue(priv, c)
	if err != nil {
		return usagef("%v", err)
	}
	fmt.Fprintln(stdout, s)
	return nil
}

func runTokenDelegate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("token delegate", "--key PUBLISHER_KEYFILE --tenant T --to PUBKEY [--prefix P | --content ID | --channel ID | --any] [--ttl 720h]", stderr)
	key := fs.String("key", "", "the publisher's signing key (PEM from shoal keygen)")
	tenant := fs.String("tenant", "", "the only tenant the delegated key may issue tokens for")
	to := fs.String("to", "", "public key of the tenant's token service (printed by shoal keygen)")
	sf := addScopeFlags(fs, "limit its tokens to")
	ttl := fs.Duration("ttl", 30*24*time.Hour, "how long the delegation is valid; tokens it signs stop working after it")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *key == "" || *tenant == "" || *to == "" || fs.NArg() != 0 {
		fs.Usage()
		return usagef("want --key, --tenant and --to, no arguments")
	}
	if err := token.CheckTenant(*tenant); err != nil {
		return usagef("--tenant: %v", err)
	}
	def := token.AnyScope()
	scope, err := sf.scope(&def)
	if err != nil {
		return err
	}
	delegate, err := manifest.ParsePublicKey(*to)
	if err != nil {
		return usagef("--to: %v", err)
	}
	if *ttl <= 0 {
		return usagef("--ttl %v: want a positive duration such as 720h", *ttl)
	}
	priv, err := manifest.ReadKeyFile(*key)
	if err != nil {
		return usagef("--key: %v", err)
	}
	s, err := token.Delegate(priv, token.Delegation{Tenant: *tenant, Scope: scope, Delegate: delegate, Expiry: time.Now().Add(*ttl)})
	if err != nil {
		return usagef("%v", err)
	}
	fmt.Fprintln(stdout, s)
	return nil
}

func runTokenInspect(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("token inspect", "TOKEN|- (a token or delegation; - reads it from stdin)", stderr)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return usagef("want one TOKEN")
	}
	s := fs.Arg(0)
	if s == "-" {
		b, err := io.ReadAll(io.LimitReader(os.Stdin, token.MaxPrinted+64))
		if err != nil {
			return err
		}
		s = string(b)
	}
	s = strings.TrimSpace(s)
	var v any
	if t, err := token.Decode(s); err == nil {
		v = t
	} else if d, derr := token.DecodeDelegation(s); derr == nil {
		v = d
	} else {
		return fmt.Errorf("not a token: %v", err)
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

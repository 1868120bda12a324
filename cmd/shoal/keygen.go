package main

import (
	"context"
	"fmt"
	"io"

	"github.com/shoal-cdn/shoal/manifest"
)

func init() {
	register("keygen", "make a publisher key pair", runKeygen)
}

func runKeygen(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("keygen", "-o FILE", stderr)
	out := fs.String("o", "", "write the private key here (PEM, mode 0600; never overwritten)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *out == "" || fs.NArg() != 0 {
		fs.Usage()
		return usagef("want -o FILE and no arguments")
	}
	priv, pub, err := manifest.GenerateKey()
	if err != nil {
		return err
	}
	if err := manifest.WriteKeyFile(*out, priv); err != nil {
		return err
	}
	fmt.Fprintln(stdout, pub)
	return nil
}

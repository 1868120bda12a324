package main

import (
	"context"
	"io"

	"github.com/shoal-cdn/shoal/core"
	"github.com/shoal-cdn/shoal/origin"
)

func init() {
	register("origin", "serve a published layout over HTTP (the source of truth)", runOrigin)
}

func runOrigin(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("origin", "--dir DIR [--listen ADDR] [--upload-limit RATE]", stderr)
	dir := fs.String("dir", "", "layout root written by 'shoal publish' (required)")
	listen := fs.String("listen", origin.DefaultListen, "TCP address to serve on")
	limit := fs.String("upload-limit", "0", "cap on total upload rate, e.g. 100Mbit or 10MB/s; 0 = unlimited")
	alf := addAccessLogFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected arguments %q", fs.Args())
	}
	if *dir == "" {
		return usagef("--dir is required")
	}
	rate, err := core.ParseRate(*limit)
	if err != nil {
		return usagef("--upload-limit: %v", err)
	}
	log, err := newLogger(fs, stderr)
	if err != nil {
		return err
	}
	al, closeAccess, err := alf.open(log)
	if err != nil {
		return err
	}
	defer closeAccess()
	return origin.Run(ctx, origin.Config{
		Dir:         *dir,
		Listen:      *listen,
		UploadLimit: rate,
		Logger:      log,
		AccessLog:   al,
	})
}

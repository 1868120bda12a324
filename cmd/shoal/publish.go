package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/shoal-cdn/shoal/manifest"
	"github.com/shoal-cdn/shoal/publish"
)

func init() {
	register("publish", "publish files as signed, content-addressed chunks into an origin layout", runPublish)
}

func runPublish(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("publish", "--key FILE --out DIR [--chunk-size N] [--name NAME] [--manifest-version 1|2] PATH...", stderr)
	pf := addPublisherFlags(fs)
	name := fs.String("name", "", "content name (default: base name of the first PATH)")
	var regions regionList
	fs.Var(&regions, "region", "restrict the content to peers whose access token names this region (repeatable or a comma list; signed in the manifest policy; default: anywhere)")
	version := fs.Int("manifest-version", manifest.Version, "manifest format: 1 carries every file's Merkle root; 2 (paged) moves the roots of files of more than one chunk into 4 KiB root pages beside it, so a viewer's first request waits for a smaller manifest and fetches only the pages of what it plays (readers before this format cannot join a version 2 content)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *pf.key == "" || *pf.out == "" || fs.NArg() == 0 {
		fs.Usage()
		return usagef("want --key, --out and at least one PATH")
	}
	priv, cs, err := pf.load()
	if err != nil {
		return err
	}
	log, err := newLogger(fs, stderr)
	if err != nil {
		return err
	}
	res, err := publish.Publish(ctx, publish.Config{
		Key: priv, Out: *pf.out, ChunkSize: cs, Name: *name, Paths: fs.Args(), Regions: regions,
		ManifestVersion: *version, Logger: log,
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "published %q: %d files, %d bytes, %d chunks (%d new) into %s\n",
		res.Manifest.Name, len(res.Manifest.Files), res.Bytes, res.Chunks, res.NewChunks, *pf.out)
	fmt.Fprintln(stdout, res.ID)
	return nil
}

// regionList is a repeatable flag of region labels; each value may also be
// a comma list.
type regionList []string

func (r *regionList) String() string { return strings.Join(*r, ",") }

func (r *regionList) Set(v string) error {
	for _, x := range strings.Split(v, ",") {
		if x = strings.TrimSpace(x); x != "" {
			*r = append(*r, x)
		}
	}
	return manifest.CheckRegions(*r)
}

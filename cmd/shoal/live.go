package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"

	"github.com/shoal-cdn/shoal/core"
	"github.com/shoal-cdn/shoal/live"
	"github.com/shoal-cdn/shoal/manifest"
)

func init() {
	register("live", "follow a growing HLS output and publish it as a signed live channel", runLive)
}

func runLive(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("live", "--key FILE --watch DIR --out DIR --channel NAME [--window N]", stderr)
	key := fs.String("key", "", "publisher private key file (from shoal keygen)")
	watch := fs.String("watch", "", "directory the encoder writes its HLS output into (e.g. ffmpeg -f hls DIR/index.m3u8)")
	playlist := fs.String("playlist", live.DefaultPlaylist, "media playlist name inside --watch")
	out := fs.String("out", "", "origin layout directory to write into (created if missing)")
	channel := fs.String("channel", "", "channel name; with the key it makes the channel ID")
	window := fs.Int("window", live.DefaultWindow, "segments listed in each channel update")
	chunk := fs.String("chunk-size", "256KiB", "chunk size: a power of two from 16KiB to 16MiB")
	poll := fs.Duration("poll", live.DefaultPoll, "how often the playlist is read")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *key == "" || *watch == "" || *out == "" || *channel == "" || fs.NArg() != 0 {
		fs.Usage()
		return usagef("want --key, --watch, --out and --channel, and no arguments")
	}
	cs, err := core.ParseSize(*chunk)
	if err != nil {
		return usagef("--chunk-size: %v", err)
	}
	if err := core.CheckChunkSize(cs); err != nil {
		return usagef("--chunk-size: %v", err)
	}
	priv, err := manifest.ReadKeyFile(*key)
	if err != nil {
		return err
	}
	p, err := live.NewPublisher(live.PublisherConfig{
		Key: priv, Channel: *channel, Watch: *watch, Playlist: *playlist, Out: *out,
		Window: *window, ChunkSize: cs, Poll: *poll,
		Logger: slog.New(slog.NewTextHandler(stderr, nil)),
	})
	if err != nil {
		return usagef("%v", err)
	}
	// The ID first and alone on its line, for scripts; peers play it at
	// http://GATEWAY/live/<ID>/index.m3u8.
	fmt.Fprintln(stdout, p.ID())
	return p.Run(ctx)
}

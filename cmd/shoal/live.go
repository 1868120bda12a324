package main

import (
	"context"
	"fmt"
	"io"

	"github.com/shoal-cdn/shoal/live"
)

func init() {
	register("live", "follow a growing HLS output and publish it as a signed live channel", runLive)
}

func runLive(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("live", "--key FILE --watch DIR --out DIR --channel NAME [--window N]", stderr)
	pf := addPublisherFlags(fs)
	watch := fs.String("watch", "", "directory the encoder writes its HLS output into (e.g. ffmpeg -f hls DIR/index.m3u8)")
	playlist := fs.String("playlist", live.DefaultPlaylist, "media playlist name inside --watch")
	channel := fs.String("channel", "", "channel name; with the key it makes the channel ID")
	window := fs.Int("window", live.DefaultWindow, "segments listed in each channel update")
	poll := fs.Duration("poll", live.DefaultPoll, "how often the playlist is read")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *pf.key == "" || *watch == "" || *pf.out == "" || *channel == "" || fs.NArg() != 0 {
		fs.Usage()
		return usagef("want --key, --watch, --out and --channel, and no arguments")
	}
	priv, cs, err := pf.load()
	if err != nil {
		return err
	}
	log, err := newLogger(fs, stderr)
	if err != nil {
		return err
	}
	p, err := live.NewPublisher(live.PublisherConfig{
		Key: priv, Channel: *channel, Watch: *watch, Playlist: *playlist, Out: *pf.out,
		Window: *window, ChunkSize: cs, Poll: *poll,
		Logger: log,
	})
	if err != nil {
		return usagef("%v", err)
	}
	// The ID first and alone on its line, for scripts; peers play it at
	// http://GATEWAY/live/<ID>/index.m3u8.
	fmt.Fprintln(stdout, p.ID())
	return p.Run(ctx)
}

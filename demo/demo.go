package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/shoal-cdn/shoal/agent"
	"github.com/shoal-cdn/shoal/manifest"
	"github.com/shoal-cdn/shoal/origin"
	"github.com/shoal-cdn/shoal/publish"
)

// Config tunes the demo.
type Config struct {
	Dir    string    // working directory; default a temporary one, removed after
	Size   int64     // sample size in bytes; default 32 MiB
	Out    io.Writer // where the story is told
	Linger bool      // keep the origin up until ctx ends
}

// Run publishes a sample, starts an origin on loopback and fetches the
// sample back through a verified get, printing each step.
func Run(ctx context.Context, cfg Config) error {
	if cfg.Size <= 0 {
		cfg.Size = 32 << 20
	}
	if cfg.Out == nil {
		cfg.Out = io.Discard
	}
	w := cfg.Out
	if cfg.Dir == "" {
		d, err := os.MkdirTemp("", "shoal-demo-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		cfg.Dir = d
	}
	src, layoutDir := filepath.Join(cfg.Dir, "src"), filepath.Join(cfg.Dir, "origin")
	if err := writeSample(src, cfg.Size); err != nil {
		return err
	}
	priv, pub, err := manifest.GenerateKey()
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "publisher key   %s\n", pub)
	t0 := time.Now()
	res, err := publish.Publish(ctx, publish.Config{Key: priv, Out: layoutDir, Paths: []string{filepath.Join(src, "sample")}})
	if err != nil {
		return err
	}
	el := time.Since(t0)
	fmt.Fprintf(w, "published       %d files, %s in %d chunks (%d stored: identical chunks kept once) in %v (%s/s)\n",
		len(res.Manifest.Files), agent.HumanBytes(res.Bytes), res.Chunks, res.NewChunks, el.Round(time.Millisecond), agent.HumanBytes(int64(float64(res.Bytes)/el.Seconds())))
	fmt.Fprintf(w, "content ID      %s\n", res.ID)

	srv, err := origin.New(origin.Config{Dir: layoutDir})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	octx, stopOrigin := context.WithCancel(ctx)
	defer stopOrigin()
	served := make(chan error, 1)
	go func() { served <- srv.Serve(octx, ln) }()
	originURL := "http://" + ln.Addr().String()
	fmt.Fprintf(w, "origin          %s (layout in %s)\n", originURL, layoutDir)

	out := filepath.Join(cfg.Dir, "fetched")
	t0 = time.Now()
	got, err := agent.Get(ctx, agent.GetConfig{Origin: originURL, Trust: pub, Target: res.ID.String(), Out: out, CacheDir: filepath.Join(cfg.Dir, "cache")})
	if err != nil {
		return fmt.Errorf("demo fetch: %w", err)
	}
	el = time.Since(t0)
	fmt.Fprintf(w, "fetched         %s verified into %s in %v (%s/s); origin sent %s\n",
		agent.HumanBytes(got.Bytes), out, el.Round(time.Millisecond), agent.HumanBytes(int64(float64(got.Bytes)/el.Seconds())), agent.HumanBytes(srv.BytesServed()))
	if cfg.Linger {
		fmt.Fprintf(w, "origin stays up at %s until Ctrl-C\n", originURL)
		<-ctx.Done()
	}
	stopOrigin()
	if err := <-served; err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

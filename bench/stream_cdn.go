package bench

import (
	"context"
	"path/filepath"
	"time"
)

// runStreamCDN is the live baseline: the same source, the same viewers and the
// same download caps, but every player reads the source's plain HLS
// straight from the origin (the CDN), as it would without Shoal.
func runStreamCDN(ctx context.Context, cfg StreamConfig, dir string) (*StreamRun, error) {
	wall := time.Now()
	src, err := newStreamSource(&cfg, filepath.Join(dir, "cdn"))
	if err != nil {
		return nil, err
	}
	if err := src.prime(); err != nil {
		return nil, err
	}
	srv, originURL, stopOrigin, err := serveOrigin(&cfg, src.dir)
	if err != nil {
		return nil, err
	}
	defer stopOrigin()
	sctx, stopSource := context.WithCancel(ctx)
	srcDone := make(chan error, 1)
	go func() { srcDone <- src.run(sctx) }()
	defer func() {
		stopSource()
		<-srcDone
	}()
	open := func(ctx context.Context, k, gen int) (viewerEnv, error) {
		hc := shapedHTTP(newDownLimiter(cfg.PeerDown), 4)
		return viewerEnv{playlist: originURL + "/" + sourcePlaylist, client: hc, stop: hc.CloseIdleConnections}, nil
	}
	run := &StreamRun{Name: "cdn"}
	cpu := startCPU()
	run.Sessions = runViewers(ctx, &cfg, "cdn", open, srv.BytesServed)
	run.CPU, run.ViewingWall = cpu()
	run.summarize(srv.BytesServed(), srv.Requests())
	run.Wall = time.Since(wall)
	return run, ctx.Err()
}

package bench

import (
	"context"
	"net"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/shoal-cdn/shoal/discovery"
)

// TargetFloor is no tracker at all: an in-process fasthttp handler that
// reads each announce's body and answers one fixed small body carrying a
// session ticket, so the generator does for it what it does for a checking
// tracker (signed first announces, MACed later ones). Its figures are what
// this machine and this generator allow before any tracker work: the
// floor under the other targets.
const TargetFloor = "floor"

// floorMaxBody bounds an announce body the floor reads, as the tracker
// bounds its own.
const floorMaxBody = 64 << 10

// serveFloor serves the floor on ln until ctx ends, then returns once the
// server has stopped.
func serveFloor(ctx context.Context, ln net.Listener) error {
	// The ticket's key is fixed: the floor checks no MAC, the generator
	// only needs a well-formed ticket to MAC its later announces with.
	answer := (&discovery.AnnounceResponse{IntervalS: 30, Session: &discovery.Session{
		Exp: time.Now().Add(time.Hour).Unix(),
		Key: make([]byte, discovery.SessionKeyLen),
	}}).AppendJSON(nil)
	s := &fasthttp.Server{
		Handler: func(c *fasthttp.RequestCtx) {
			_ = c.PostBody()
			c.SetContentType("application/json")
			c.SetBody(answer)
		},
		MaxRequestBodySize: floorMaxBody,
		ReadTimeout:        30 * time.Second,
		WriteTimeout:       30 * time.Second,
		IdleTimeout:        time.Minute,
		NoDefaultDate:      true,
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(ln) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	err := s.Shutdown()
	<-done
	return err
}

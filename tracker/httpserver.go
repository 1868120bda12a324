package tracker

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttpadaptor"

	"github.com/shoal-cdn/shoal/discovery"
)

// The HTTP server Serve runs. Announces are most of a tracker's requests
// and each costs little beyond its HTTP handling, so Serve uses fasthttp, a
// server made for many small requests on keep-alive connections: it reuses
// each connection's request and response and parses no more than it is
// asked for. POST /announce is served on it directly; every other endpoint
// (and announces too when an access log is kept, so every line is written
// the same way) goes to Handler through fasthttpadaptor, on the same port,
// with the same answers.

// Limits of the HTTP server, beyond the timeouts.
const (
	// maxHeaderBytes bounds a request's line and headers (fasthttp's read
	// buffer): a tracker's clients send a few short headers; 8 KiB is what
	// proxies in front of one commonly allow.
	maxHeaderBytes = 8 << 10
	// maxRequestBody bounds the body of a request other than an announce
	// (whose own bound is discovery.MaxBodyBytes), read whole before its
	// handler runs: above every endpoint's own limit (a policy upload's,
	// 256 KiB, is the largest), so each answers an oversized body itself.
	// maxSmallBody is the bound for the telemetry and report bodies (a few
	// KiB each); maxTinyBody for requests that take no body at all.
	maxRequestBody = 512 << 10
	maxSmallBody   = 64 << 10
	maxTinyBody    = 4 << 10
	// readHeaderTimeout is the time to send a request's line and headers;
	// readBodyTimeout then the time to send its body.
	readHeaderTimeout = 10 * time.Second
	readBodyTimeout   = 20 * time.Second
	writeTimeout      = 30 * time.Second
	idleTimeout       = 2 * time.Minute
)

// fastHandler returns the handler of the server Serve runs: announces on
// the fast path unless an access log is kept, everything else through
// Handler.
func (s *Server) fastHandler() fasthttp.RequestHandler {
	// The adaptor's request context ends when shutdown begins, not when
	// the client goes away; a request already taken is answered whatever
	// its context says (held policy polls end through stopWaiting).
	slow := fasthttpadaptor.NewFastHTTPHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.h.ServeHTTP(w, r.WithContext(context.WithoutCancel(r.Context())))
	}))
	fast := s.cfg.AccessLog == nil
	return func(c *fasthttp.RequestCtx) {
		if fast && isAnnounce(&c.Request.Header) {
			s.serveAnnounce(c)
			return
		}
		slow(c)
	}
}

// newHTTPServer returns the server Serve runs.
func (s *Server) newHTTPServer() *fasthttp.Server {
	return &fasthttp.Server{
		Handler: s.fastHandler(),
		// fasthttp reads a body whole before the handler runs, so what a
		// request may send is decided from its head: only the endpoints
		// that take a body get room for one, and the policy upload's
		// larger room only with the admin token (net/http refused it
		// unread).
		HeaderReceived: func(h *fasthttp.RequestHeader) fasthttp.RequestConfig {
			rc := fasthttp.RequestConfig{ReadTimeout: readBodyTimeout, MaxRequestBodySize: maxTinyBody}
			switch {
			case isAnnounce(h):
				rc.MaxRequestBodySize = discovery.MaxBodyBytes
			case h.IsPost() && (pathIs(h, discovery.ReportPath) || pathIs(h, discovery.TelemetryPath)):
				rc.MaxRequestBodySize = maxSmallBody
			case h.IsPut() && pathIs(h, PolicyAPIPath) && s.adminHeader(h.Peek("Authorization")):
				rc.MaxRequestBodySize = maxRequestBody
			}
			return rc
		},
		DisablePreParseMultipartForm: true,
		ErrorHandler:                 s.serveHTTPError,
		ReadTimeout:                  readHeaderTimeout,
		WriteTimeout:                 writeTimeout,
		IdleTimeout:                  idleTimeout,
		ReadBufferSize:               maxHeaderBytes,
		MaxRequestBodySize:           maxRequestBody,
		NoDefaultServerHeader:        true,
		NoDefaultContentType:         true,
		CloseOnShutdown:              true,
		Logger:                       httpLogger{s.log},
	}
}

// pathIs reports whether h's path (its query aside) is p.
func pathIs(h *fasthttp.RequestHeader, p string) bool {
	uri := h.RequestURI()
	if i := bytes.IndexByte(uri, '?'); i >= 0 {
		uri = uri[:i]
	}
	return string(uri) == p
}

// adminHeader reports whether an Authorization header value carries the
// admin token (as adminOK checks it, in constant time).
func (s *Server) adminHeader(v []byte) bool {
	tok, ok := bytes.CutPrefix(v, []byte("Bearer "))
	h := sha256.Sum256(tok)
	return ok && s.cfg.AdminToken != "" && subtle.ConstantTimeCompare(h[:], s.admin[:]) == 1
}

// isAnnounce reports whether h is the head of POST /announce, the path
// exactly as ServeMux would route it to handleAnnounce (a query aside);
// anything else goes the way of every other request.
func isAnnounce(h *fasthttp.RequestHeader) bool {
	return h.IsPost() && pathIs(h, discovery.AnnouncePath)
}

// serveAnnounce is handleAnnounce on the fast path.
func (s *Server) serveAnnounce(c *fasthttp.RequestCtx) {
	var a answer
	defer a.release()
	// The server refuses a longer body before reading it (HeaderReceived);
	// this is for a handler used without that server's limits.
	if body := c.PostBody(); len(body) > discovery.MaxBodyBytes {
		s.reject(&a, c.RemoteAddr().String(), errBodyTooLarge)
	} else {
		ip, ipErr := fastRemoteIP(c, s.cfg.TrustForwarded)
		// Not c as the context: fasthttp ends it when shutdown begins, while
		// an announce already taken must still be answered (as net/http does).
		ctx := context.Background()
		// The connection's address is only written in debug lines; printed
		// for every announce it would cost three allocations.
		remote := ""
		if s.log.Enabled(ctx, slog.LevelDebug) {
			remote = c.RemoteAddr().String()
		}
		s.announce(ctx, body, ip, ipErr, remote, &a)
	}
	writeAnswer(c, &a)
}

func writeAnswer(c *fasthttp.RequestCtx, a *answer) {
	c.SetStatusCode(a.status)
	h := &c.Response.Header
	h.SetContentType("application/json")
	h.Set("Cache-Control", "no-store")
	if a.retryAfter != "" {
		h.Set("Retry-After", a.retryAfter)
	}
	if a.buf == nil {
		c.SetBody(a.body) // a copy
		return
	}
	// A pooled answer is handed to the response as it is, not copied (a
	// few KiB per announce): the response's previous body buffer takes its
	// place, and a.release pools that one instead. Buffers circulate
	// between the pool and the responses of keep-alive connections; one
	// too small to be worth keeping (a response's first, or one fasthttp
	// made) is left to the collector, and the pool makes a new one.
	old := c.Response.SwapBody(a.body)
	if cap(old) < minPooledBuf {
		a.buf, a.body = nil, nil
		return
	}
	a.body = old[:0]
}

// minPooledBuf is the smallest response buffer worth putting back in the
// pool: most answers are a few KiB.
const minPooledBuf = 4 << 10

// serveHTTPError answers a request the server could not read: an announce
// body over its limit as handleAnnounce does (400, the field), anything
// else with the status net/http would give.
func (s *Server) serveHTTPError(c *fasthttp.RequestCtx, err error) {
	if errors.Is(err, fasthttp.ErrBodyTooLarge) {
		drainRefused(c.Conn())
	}
	if errors.Is(err, fasthttp.ErrBodyTooLarge) && isAnnounce(&c.Request.Header) {
		var a answer
		s.reject(&a, c.RemoteAddr().String(), errBodyTooLarge)
		writeAnswer(c, &a)
		return
	}
	status, msg := http.StatusBadRequest, "400 Bad Request"
	var small *fasthttp.ErrSmallBuffer
	var ne net.Error
	switch {
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		status, msg = http.StatusRequestEntityTooLarge, "413 Request Entity Too Large"
	case errors.As(err, &small):
		status, msg = http.StatusRequestHeaderFieldsTooLarge, fmt.Sprintf("431 Request Header Fields Too Large: over %d bytes", maxHeaderBytes)
	case errors.As(err, &ne) && ne.Timeout():
		status, msg = http.StatusRequestTimeout, "408 Request Timeout"
	}
	c.SetStatusCode(status)
	c.SetContentType("text/plain; charset=utf-8")
	c.SetBodyString(msg)
}

// What drainRefused reads at most of a refused body, how long it waits for
// the next bytes, and how long it reads in all.
const (
	refusedDrainBytes = 256 << 10
	refusedDrainIdle  = 200 * time.Millisecond
	refusedDrainTotal = time.Second
)

// drainRefused reads and discards what a client is still sending of a
// body the server refused from its head, before the refusal is written
// and the connection closed: a connection closed with unread bytes is
// reset, and the client would read a reset instead of the 413 (or 400).
// It is bounded in bytes and time, so a client sending slowly cannot keep
// the connection's goroutine.
func drainRefused(conn net.Conn) {
	if conn == nil {
		return
	}
	defer conn.SetReadDeadline(time.Time{}) //nolint:errcheck // the connection closes next
	end := time.Now().Add(refusedDrainTotal)
	var buf [16 << 10]byte
	for n := 0; n < refusedDrainBytes; {
		next := time.Now().Add(refusedDrainIdle)
		if next.After(end) {
			next = end
		}
		if conn.SetReadDeadline(next) != nil {
			return
		}
		k, err := conn.Read(buf[:])
		n += k
		if err != nil {
			return
		}
	}
}

// fastRemoteIP is remoteIP for a request on the fast path: the TCP peer,
// or with trustForwarded the last X-Forwarded-For entry.
func fastRemoteIP(c *fasthttp.RequestCtx, trustForwarded bool) (netip.Addr, error) {
	if trustForwarded {
		if xff := c.Request.Header.PeekAll("X-Forwarded-For"); len(xff) > 0 {
			return forwardedIP(string(xff[len(xff)-1]))
		}
	}
	ra := c.RemoteAddr()
	if ta, ok := ra.(*net.TCPAddr); ok {
		if ip, ok := netip.AddrFromSlice(ta.IP); ok {
			return ip.Unmap(), nil
		}
	}
	return remoteAddrIP(ra.String())
}

// forwardedIP is the last entry of an X-Forwarded-For header's value.
func forwardedIP(last string) (netip.Addr, error) {
	if i := strings.LastIndexByte(last, ','); i >= 0 {
		last = last[i+1:]
	}
	ip, err := netip.ParseAddr(strings.TrimSpace(last))
	if err != nil {
		return netip.Addr{}, fmt.Errorf("X-Forwarded-For %q: last entry is not an IP address", truncate(last, 64))
	}
	return ip.Unmap(), nil
}

// remoteAddrIP is the IP of a connection's "host:port".
func remoteAddrIP(remote string) (netip.Addr, error) {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("remote address %q is not an IP address", truncate(remote, 64))
	}
	return ip.Unmap(), nil
}

// httpLogger takes the HTTP server's own complaints (a broken connection,
// a malformed request) into the tracker's log as warnings.
type httpLogger struct{ l *slog.Logger }

func (h httpLogger) Printf(format string, args ...any) {
	h.l.Warn("http: " + strings.TrimSpace(fmt.Sprintf(format, args...)))
}

var _ fasthttp.Logger = httpLogger{}

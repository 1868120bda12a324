package agent

import (
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/shoal-cdn/shoal/core"
	"github.com/shoal-cdn/shoal/manifest"
	"github.com/shoal-cdn/shoal/netx"
	"github.com/shoal-cdn/shoal/swarm"
	"github.com/shoal-cdn/shoal/token"
	"github.com/shoal-cdn/shoal/wire"
)

// DefaultTokenPoll is how often a --token-file is checked for a new token.
const DefaultTokenPoll = 5 * time.Second

// TokenSource holds the access token a peer presents to other peers and to
// the tracker: a fixed one, or one read from a file and read again when the
// file changes, so a refreshed token needs no restart.
type TokenSource struct {
	path string

	mu  sync.Mutex
	tok string // guarded by mu
}

// NewTokenSource returns a source of the fixed token tok, or of the token in
// the file at path (exactly one of them is set). The token must decode.
func NewTokenSource(tok, path string) (*TokenSource, error) {
	switch {
	case tok != "" && path != "":
		return nil, fmt.Errorf("%w: give a token or a token file, not both", ErrBadInput)
	case tok != "":
		tok = strings.TrimSpace(tok)
		if _, err := token.Decode(tok); err != nil {
			return nil, fmt.Errorf("%w: token: %v", ErrBadInput, err)
		}
		return &TokenSource{tok: tok}, nil
	case path == "":
		return nil, fmt.Errorf("%w: no token and no token file", ErrBadInput)
	}
	s := &TokenSource{path: path}
	if err := s.reload(); err != nil {
		return nil, err
	}
	return s, nil
}

// Token returns the current token.
func (s *TokenSource) Token() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tok
}

// reload reads the file again (it is small: one token) and takes its token
// if it changed. A file that does not hold a decodable token leaves the
// current token in place.
func (s *TokenSource) reload() error {
	f, err := os.Open(s.path)
	if err != nil {
		return fmt.Errorf("%w: token file: %v", ErrBadInput, err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, token.MaxPrinted+64))
	if err != nil {
		return fmt.Errorf("%w: token file: %v", ErrBadInput, err)
	}
	tok := strings.TrimSpace(string(b))
	if tok == s.Token() {
		return nil
	}
	if _, err := token.Decode(tok); err != nil {
		return fmt.Errorf("%w: token file %s: %v", ErrBadInput, s.path, err)
	}
	s.mu.Lock()
	s.tok = tok
	s.mu.Unlock()
	return nil
}

// watch re-reads the token file every poll until ctx ends; a fixed token
// returns at once.
func (s *TokenSource) watch(ctx context.Context, poll time.Duration, log func(error)) {
	if s.path == "" {
		return
	}
	t := time.NewTicker(poll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := s.reload(); err != nil {
				log(err)
			}
		}
	}
}

// access is the swarm token policy of this peer's sessions: with a token it
// presents it and requires tokens of the same tenant from others (unless
// OpenSwarm); without one it presents none and requires none.
func (p *Peer) access(id core.ContentID) *swarm.Access {
	if p.cfg.Token == nil {
		return nil
	}
	a := &swarm.Access{
		Token:    p.cfg.Token.Token,
		Verifier: p.verifier,
		Require:  !p.cfg.OpenSwarm,
		Audit:    p.cfg.Audit,
	}
	if ch, ok := p.segChan.Load(id); ok {
		a.Channel = ch.(manifest.ChannelID)
	}
	return a
}

// tokenFunc is what the announcer sends as the token (nil: none).
func (p *Peer) tokenFunc() func() string {
	if p.cfg.Token == nil {
		return nil
	}
	return p.cfg.Token.Token
}

// currentToken is the token to send now ("" without one).
func (p *Peer) currentToken() string {
	if p.cfg.Token == nil {
		return ""
	}
	return p.cfg.Token.Token()
}

// setMetaAccess makes the node send our token with its meta requests and,
// when this peer requires tokens, serve manifests and hash layers only to
// peers whose token admits them to the content in question.
func (p *Peer) setMetaAccess() {
	if p.cfg.Token == nil {
		return
	}
	var gate swarm.MetaGate
	if !p.cfg.OpenSwarm {
		gate = p.metaGate
	}
	p.node.SetMetaAccess(p.cfg.Token.Token, gate)
}

// metaGate admits a meta request when the asker's token admits it to the
// content the manifest, hash layer or root page belongs to, as the
// handshake would.
func (p *Peer) metaGate(req wire.MetaRequest, from netx.PeerID) error {
	if req.Kind == wire.MetaManifest {
		if s := p.node.Session(core.ContentID(req.Key)); s != nil {
			return s.CheckMeta(req.Token, from)
		}
		return fmt.Errorf("manifest %s: no swarm of it here", core.ContentID(req.Key).Short())
	}
	for _, s := range p.node.Sessions() {
		c := s.Content()
		if req.Kind == wire.MetaRootPage {
			if slices.Contains(c.Manifest.RootPages, req.Key) {
				return s.CheckMeta(req.Token, from)
			}
			continue
		}
		for fi := range c.Manifest.Files {
			if r, ok := c.Roots.Root(fi); ok && r == req.Key {
				return s.CheckMeta(req.Token, from)
			}
		}
	}
	return fmt.Errorf("%v %s: in no swarm here", req.Kind, req.Key.Short())
}

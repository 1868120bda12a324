package agent

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/shoal-cdn/shoal/core"
	"github.com/shoal-cdn/shoal/manifest"
	"github.com/shoal-cdn/shoal/token"
)

// bearer returns the token of an "Authorization: Bearer TOKEN" header.
func bearer(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return ""
}

// tokenVerifier checks tokens (of peers and of gateway clients) against
// the trusted keys, as the trust file and revocations change them.
func (p *Peer) tokenVerifier() *token.Verifier {
	return token.NewTrustVerifier(p.cfg.Trust, nil)
}

// gatewaySubject is what every gateway token is checked for: this peer's
// tenant (when it holds a token) and, for tokens bound to a peer, this one.
func (p *Peer) gatewaySubject() token.Subject {
	s := token.Subject{Peer: string(p.host.ID())}
	if t, err := token.Decode(p.currentToken()); err == nil {
		s.Tenant = t.Tenant
	}
	return s
}

// refuse answers a request whose bearer token does not admit it: 401 with
// a Bearer challenge when it carried none, else 403, saying why.
func refuse(w http.ResponseWriter, err error) {
	if errors.Is(err, token.ErrMissing) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="shoal"`)
		http.Error(w, "this gateway serves only requests with an access token (Authorization: Bearer TOKEN)", http.StatusUnauthorized)
		return
	}
	w.Header().Set("WWW-Authenticate", `Bearer realm="shoal", error="invalid_token"`)
	http.Error(w, fmt.Sprintf("access token refused: %v", err), http.StatusForbidden)
}

// authContent checks the request's bearer token for content id when the
// gateway requires tokens, and answers the request itself when it fails.
// The manifest is fetched only for a token that is otherwise valid and
// needs it (a prefix scope, or a region to match), so a request without a
// valid token makes the peer fetch and join nothing.
func (p *Peer) authContent(w http.ResponseWriter, r *http.Request, id core.ContentID) bool {
	if !p.cfg.GatewayTokens {
		return true
	}
	tok := bearer(r)
	subj := p.gatewaySubject()
	subj.Content = id
	c, err := p.verifier.Check(tok, subj)
	if err != nil && !errors.Is(err, token.ErrNeedName) {
		refuse(w, err)
		return false
	}
	m, merr := p.manifestOf(r.Context(), id)
	if merr != nil {
		if c == nil {
			refuse(w, err) // cannot tell: a prefix token needs the manifest
			return false
		}
		return true // the handler reports the manifest failure itself
	}
	subj.Name, subj.Publisher = m.Name, m.Publisher
	if m.Policy != nil {
		subj.Regions = m.Policy.Regions
	}
	if _, err := p.verifier.Check(tok, subj); err != nil {
		refuse(w, err)
		return false
	}
	return true
}

// authChannel checks the request's bearer token for live channel id when
// the gateway requires tokens.
func (p *Peer) authChannel(w http.ResponseWriter, r *http.Request, id manifest.ChannelID) bool {
	if !p.cfg.GatewayTokens {
		return true
	}
	subj := p.gatewaySubject()
	subj.Channel = id
	if _, err := p.verifier.Check(bearer(r), subj); err != nil {
		if errors.Is(err, token.ErrNeedName) {
			err = fmt.Errorf("%w: a prefix-scoped token does not cover live channels; issue one with --channel", token.ErrScope)
		}
		refuse(w, err)
		return false
	}
	return true
}

// liveAuth wraps a live route with the bearer token check (GatewayTokens).
// A malformed channel ID passes through: the route answers 400 for it.
func (p *Peer) liveAuth(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if id, err := manifest.ParseChannelID(r.PathValue("channel")); err == nil && !p.authChannel(w, r, id) {
			return
		}
		h(w, r)
	}
}

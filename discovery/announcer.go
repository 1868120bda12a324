package discovery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/shoal-cdn/shoal/core"
	"github.com/shoal-cdn/shoal/swarm/policy"
)

// AnnounceClient is what the Announcer needs of a tracker. *TrackerClient
// implements it; tests and multi-tracker setups may supply their own.
type AnnounceClient interface {
	Announce(ctx context.Context, req AnnounceRequest) (AnnounceResponse, error)
}

var _ AnnounceClient = (*TrackerClient)(nil)

// Stats are the transfer counters a peer reports in each announce.
type Stats struct {
	Uploaded, Downloaded, Left int64
}

// AnnouncerConfig configures an Announcer. Zero durations take the defaults
// given per field; tests shrink them so nothing waits long.
type AnnouncerConfig struct {
	Tracker AnnounceClient // required
	Content core.ContentID // required
	Peer    string         // required: this peer's libp2p ID
	Addrs   []string       // this peer's listen multiaddrs
	// CurrentAddrs, if set, returns the addresses to announce each time
	// (they change as a NATed peer learns its external address or gets a
	// relay slot); at most MaxAddrs are sent. Nil: Addrs.
	CurrentAddrs func() []string
	Region       string
	NumWant      int // 0: the tracker's default
	// Token returns the access token to send with each announce (read
	// each time, so a refreshed token is sent at the next announce). Nil:
	// none.
	Token func() string

	// Signer signs announces with the key Peer embeds, so the tracker
	// knows it speaks for that peer. While the tracker's session ticket is
	// valid, announces carry a MAC made with it instead (cheaper for the
	// tracker to check); a refused ticket is dropped and that announce
	// signed. Nil sends unsigned announces, which only trackers configured
	// for simulations accept.
	Signer Signer
	// Clock stamps signed announces (core.RealClock).
	Clock core.Clock

	// Stats returns the current counters; called before every announce.
	// Nil reports zeros.
	Stats func() Stats
	// PolicySerial returns the serial of the operator policy the peer
	// holds (0: none), sent with each announce so the tracker answers a
	// newer one. Nil: 0.
	PolicySerial func() uint64
	// OnPolicy receives the operator policy an answer carries (its
	// encoding, for control.Decode: unverified), on the Announcer's
	// goroutine. Nil: ignored.
	OnPolicy func([]byte)
	// OnPeers receives the peers of each successful response that were not in
	// the previous one. It runs on the Announcer's goroutine, so it should hand
	// the peers off rather than dial them inline.
	OnPeers func([]PeerInfo)

	// DefaultInterval is used when a response carries no interval (30 s).
	DefaultInterval time.Duration
	// MinInterval and MaxInterval clamp the tracker's interval, so a broken
	// tracker can neither make the peer hammer it nor fall silent (1 s, 1 h).
	MinInterval, MaxInterval time.Duration
	// RetryMin and RetryMax bound the exponential backoff after a failed
	// announce (1 s, 2 min).
	RetryMin, RetryMax time.Duration
	// StopTimeout bounds the final "stopped" announce (5 s).
	StopTimeout time.Duration

	Logger *slog.Logger // nil: slog.Default()
	// Rand jitters the backoff; nil uses the global source. Used only from
	// Run's goroutine.
	Rand *rand.Rand
}

// Announcer keeps one peer registered with a tracker for one content: it
// announces on start, then at the interval the tracker asks for, backs off on
// failure and says "stopped" on the way out. Tracker failures are logged and
// retried, never fatal, so it rides out tracker restarts.
type Announcer struct {
	cfg  AnnouncerConfig
	log  *slog.Logger
	kick chan struct{} // buffered(1): a pending AnnounceNow
	// lastTS is the timestamp of the last signed announce, so the next one
	// is later even within one millisecond: the tracker refuses an older
	// or equal one as a replay. Used only from Run's goroutine.
	lastTS int64
	// tickets are the session tickets trackers handed out, by tracker URL.
	// Used only from Run's goroutine.
	tickets map[string]heldTicket
}

// heldTicket is a session ticket and the token of the signed announce that
// brought it: a ticket with a grant stands for that token only, so a new
// token drops it (the next announce is signed, with the new token, and
// brings a grant for it).
type heldTicket struct {
	Session
	token string
}

// sessionMargin is how long before its exp a ticket is no longer used: an
// announce MACed with it must still reach the tracker in time, whatever the
// skew between the two clocks' seconds.
const sessionMargin = time.Minute

// ErrBadAnnouncerConfig is returned by NewAnnouncer for a missing or invalid field.
var ErrBadAnnouncerConfig = errors.New("bad announcer config")

// NewAnnouncer checks cfg, fills defaults and returns an Announcer; call Run.
func NewAnnouncer(cfg AnnouncerConfig) (*Announcer, error) {
	if cfg.Tracker == nil {
		return nil, fmt.Errorf("%w: no tracker", ErrBadAnnouncerConfig)
	}
	// Validate the static part once here, so Run never loops on a request
	// that can only be refused.
	probe := AnnounceRequest{Content: cfg.Content, Peer: cfg.Peer, Addrs: cfg.Addrs, Region: cfg.Region, NumWant: cfg.NumWant}
	if err := probe.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadAnnouncerConfig, err)
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&cfg.DefaultInterval, policy.AnnounceInterval)
	def(&cfg.MinInterval, time.Second)
	def(&cfg.MaxInterval, time.Hour)
	def(&cfg.RetryMin, time.Second)
	def(&cfg.RetryMax, 2*time.Minute)
	def(&cfg.StopTimeout, 5*time.Second)
	if cfg.MaxInterval < cfg.MinInterval {
		cfg.MaxInterval = cfg.MinInterval
	}
	if cfg.RetryMax < cfg.RetryMin {
		cfg.RetryMax = cfg.RetryMin
	}
	if cfg.Clock == nil {
		cfg.Clock = core.RealClock{}
	}
	if cfg.Stats == nil {
		cfg.Stats = func() Stats { return Stats{} }
	}
	if cfg.OnPeers == nil {
		cfg.OnPeers = func([]PeerInfo) {}
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	log = log.With("tracker", trackerName(cfg.Tracker), "content", cfg.Content.Short())
	return &Announcer{cfg: cfg, log: log, kick: make(chan struct{}, 1)}, nil
}

func trackerName(t AnnounceClient) string {
	if c, ok := t.(interface{ URL() string }); ok {
		return c.URL()
	}
	return fmt.Sprintf("%T", t)
}

// AnnounceNow asks Run to announce at once (say, right after the download
// completed) instead of waiting for the interval. It never blocks.
func (a *Announcer) AnnounceNow() {
	select {
	case a.kick <- struct{}{}:
	default:
	}
}

// Run announces until ctx ends, then sends a final "stopped" announce bounded
// by StopTimeout (only if the tracker ever accepted one). It returns nil: the
// tracker being down is not an error of the peer.
func (a *Announcer) Run(ctx context.Context) error {
	var (
		event      = EventStarted
		registered bool  // an announce succeeded: the tracker may list us
		prevLeft   int64 = -1
		failures   int
		prev       map[string]string // peer → joined addrs of the last response
	)
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			if registered {
				a.stop()
			}
			return nil
		case <-timer.C:
		case <-a.kick:
		}
		st := a.cfg.Stats()
		ev := event
		if ev == EventNone && prevLeft > 0 && st.Left == 0 {
			ev = EventCompleted
		}
		resp, err := a.send(ctx, a.request(st, ev))
		if err != nil {
			if ctx.Err() != nil {
				continue // the select above sends "stopped" and returns
			}
			failures++
			wait := a.retryWait(failures, err)
			a.log.Warn("announce failed; will retry", "err", err, "failures", failures, "retry_in", wait)
			timer.Reset(wait)
			continue
		}
		if failures > 0 {
			a.log.Info("announce succeeded again", "after_failures", failures)
		}
		failures, registered, event, prevLeft = 0, true, EventNone, st.Left

		if len(resp.Policy) > 0 && a.cfg.OnPolicy != nil {
			a.cfg.OnPolicy(resp.Policy)
		}
		fresh, cur := newPeers(prev, resp.Peers, a.cfg.Peer)
		prev = cur
		if len(fresh) > 0 {
			a.cfg.OnPeers(fresh)
		}
		timer.Reset(a.interval(resp))
	}
}

func (a *Announcer) request(st Stats, ev Event) AnnounceRequest {
	addrs := a.cfg.Addrs
	if a.cfg.CurrentAddrs != nil {
		addrs = a.cfg.CurrentAddrs()
		addrs = addrs[:min(len(addrs), MaxAddrs)]
	}
	return AnnounceRequest{
		Content: a.cfg.Content, Peer: a.cfg.Peer, Addrs: addrs, Region: a.cfg.Region,
		Uploaded: st.Uploaded, Downloaded: st.Downloaded, Left: max(st.Left, 0),
		Event: ev, NumWant: a.cfg.NumWant, Token: a.token(), PolicySerial: a.policySerial(),
	}
}

func (a *Announcer) policySerial() uint64 {
	if a.cfg.PolicySerial == nil {
		return 0
	}
	return a.cfg.PolicySerial()
}

func (a *Announcer) token() string {
	if a.cfg.Token == nil {
		return ""
	}
	return a.cfg.Token()
}

// sign signs req when the Announcer has a Signer, with a timestamp later
// than the previous one.
func (a *Announcer) sign(req *AnnounceRequest) error {
	if a.cfg.Signer == nil {
		return nil
	}
	if err := req.Sign(a.cfg.Signer, a.stamp()); err != nil {
		return err
	}
	a.lastTS = req.TS
	return nil
}

// send authenticates req (a MAC with the tracker's session ticket while one
// is valid, else a signature) and announces it. A refused ticket is dropped
// and the announce signed and sent once more: one retry, no loop. A ticket
// in the answer is kept for the tracker that gave it.
func (a *Announcer) send(ctx context.Context, req AnnounceRequest) (AnnounceResponse, error) {
	url := trackerName(a.cfg.Tracker)
	tok := req.Token // MACWith drops it when the ticket carries a grant
	maced, err := a.authenticate(&req, url)
	if err != nil {
		return AnnounceResponse{}, err
	}
	resp, err := a.cfg.Tracker.Announce(ctx, req)
	if err != nil && maced && IsSessionRefusal(err) {
		delete(a.tickets, url)
		a.log.Info("session ticket refused; signing the announce", "err", err)
		req.Token = tok
		if err = a.sign(&req); err != nil {
			return AnnounceResponse{}, err
		}
		resp, err = a.cfg.Tracker.Announce(ctx, req)
	}
	if err == nil && resp.Session != nil && a.cfg.Signer != nil {
		if t := *resp.Session; len(t.Key) == SessionKeyLen && len(t.Grant) <= MaxGrantLen {
			if a.tickets == nil {
				a.tickets = make(map[string]heldTicket, 1)
			}
			a.tickets[trackerName(a.cfg.Tracker)] = heldTicket{Session: t, token: tok} // the tracker that answered
		}
	}
	return resp, err
}

// authenticate MACs req with the ticket of the tracker at url when it has
// more than sessionMargin left and was issued for req's token, and signs it
// otherwise. It reports whether it used the ticket.
func (a *Announcer) authenticate(req *AnnounceRequest, url string) (bool, error) {
	if a.cfg.Signer == nil {
		return false, nil
	}
	t, ok := a.tickets[url]
	if !ok || t.Expiry().Sub(a.cfg.Clock.Now()) <= sessionMargin || t.token != req.Token {
		delete(a.tickets, url)
		return false, a.sign(req)
	}
	req.MACWith(t.Session, a.stamp())
	a.lastTS = req.TS
	return true, nil
}

// stamp is the time to put on the next announce: now, or a millisecond
// after the previous one when the clock has not moved past it.
func (a *Announcer) stamp() time.Time {
	at := a.cfg.Clock.Now()
	if at.UnixMilli() <= a.lastTS {
		at = time.UnixMilli(a.lastTS + 1)
	}
	return at
}

// stop tells the tracker we leave, so it stops handing out our address; on a
// context of its own because Run's has already ended.
func (a *Announcer) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), a.cfg.StopTimeout)
	defer cancel()
	req := a.request(a.cfg.Stats(), EventStopped)
	req.NumWant = 0
	if _, err := a.send(ctx, req); err != nil {
		a.log.Warn("stopped announce failed", "err", err)
	}
}

// interval is the tracker's requested interval (never below its minimum),
// clamped to our own bounds.
func (a *Announcer) interval(resp AnnounceResponse) time.Duration {
	d := resp.Interval()
	if d == 0 {
		d = a.cfg.DefaultInterval
	}
	d = max(d, resp.MinInterval())
	return min(max(d, a.cfg.MinInterval), a.cfg.MaxInterval)
}

// backoff doubles from RetryMin per consecutive failure up to RetryMax, then
// picks uniformly in [d/2, d] so peers cut off by one tracker outage do not
// all come back in the same instant.
func (a *Announcer) backoff(failures int) time.Duration {
	d := a.cfg.RetryMin
	for i := 1; i < failures && d < a.cfg.RetryMax; i++ {
		d *= 2
	}
	d = min(d, a.cfg.RetryMax)
	half := int64(d / 2)
	var r int64
	if a.cfg.Rand != nil {
		r = a.cfg.Rand.Int64N(half + 1)
	} else {
		r = rand.Int64N(half + 1)
	}
	return time.Duration(half + r)
}

// retryWait is how long to wait after the failures-th failure in a row,
// err: the backoff, and when the tracker said when to come back
// (RetryAfterError), at least that plus up to half again as jitter, so
// peers refused together by an overloaded tracker do not return together.
// A Retry-After beyond MaxInterval is taken as MaxInterval.
func (a *Announcer) retryWait(failures int, err error) time.Duration {
	wait := a.backoff(failures)
	ra := min(RetryAfter(err), a.cfg.MaxInterval)
	if ra <= 0 {
		return wait
	}
	half := int64(ra / 2)
	var r int64
	if a.cfg.Rand != nil {
		r = a.cfg.Rand.Int64N(half + 1)
	} else {
		r = rand.Int64N(half + 1)
	}
	return max(wait, ra+time.Duration(r))
}

// newPeers returns the peers of resp not present (with the same addresses) in
// prev, and the map describing resp for the next call.
func newPeers(prev map[string]string, peers []PeerInfo, self string) ([]PeerInfo, map[string]string) {
	cur := make(map[string]string, len(peers))
	var fresh []PeerInfo
	for _, p := range peers {
		if p.Peer == self {
			continue
		}
		key := joinAddrs(p.Addrs)
		if _, dup := cur[p.Peer]; dup {
			continue
		}
		cur[p.Peer] = key
		if old, ok := prev[p.Peer]; !ok || old != key {
			fresh = append(fresh, p)
		}
	}
	return fresh, cur
}

func joinAddrs(addrs []string) string {
	s := slices.Clone(addrs)
	slices.Sort(s)
	return strings.Join(s, "\x00")
}

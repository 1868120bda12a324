package swarm

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/google/renameio/v2"

	"github.com/shoal-cdn/shoal/audit"
	"github.com/shoal-cdn/shoal/core"
	"github.com/shoal-cdn/shoal/netx"
	"github.com/shoal-cdn/shoal/swarm/policy"
)

// Trust defaults.
const (
	// DefaultBanFor is how long a ban lasts: long enough that a liar does
	// not come back within a day's downloads, short enough that a peer ID
	// reused by an honest machine (or a peer that was itself fed bad bytes
	// by a broken disk) is not shut out for good.
	DefaultBanFor = 24 * time.Hour
	// DefaultMaxBans bounds the bans kept (and the ban file's size, about
	// 200 bytes a ban); past it the ban expiring soonest is dropped.
	DefaultMaxBans = 4096
	// BanFileName is the ban list's name inside a peer's cache directory.
	BanFileName = "bans.json"
)

// maxBanReason bounds a ban's stored reason.
const maxBanReason = 200

// banFileVersion is the ban file's format version.
const banFileVersion = 1

// TrustConfig configures a Trust. Zero fields take the defaults.
type TrustConfig struct {
	// BanFile is where bans persist across restarts (written atomically on
	// every change). Empty: bans live in memory only.
	BanFile string
	// BanFor is how long a ban lasts (DefaultBanFor).
	BanFor time.Duration
	// MaxBans bounds the bans kept (DefaultMaxBans).
	MaxBans int
	// Reputation tunes the peers' scores (half-life, peers remembered).
	Reputation policy.ReputationConfig
	// Clock drives decay and expiry (core.RealClock).
	Clock  core.Clock
	Logger *slog.Logger
	// Audit receives peer.ban and peer.unban events (nil: none).
	Audit audit.Sink
	// Report, if set, is told of every proven offence: a chunk that failed
	// verification. It is called with no lock held, on the goroutine that
	// verified the chunk, so it must not block (queue and return).
	Report func(Offence)
}

// Offence is a proven offence: peer Peer sent chunk Chunk of Content, and
// the bytes (whose SHA-256 is Hash) did not verify.
type Offence struct {
	Peer    netx.PeerID
	Content core.ContentID
	Chunk   int
	Hash    [32]byte
	At      time.Time
}

// Trust is what a peer knows about other peers across all its swarms: a
// decaying score per peer (policy.Reputation) and a ban list with an expiry
// per ban that survives restarts. Sessions and the Node consult it; one
// Trust serves every session of a peer. It is safe for concurrent use.
type Trust struct {
	cfg   TrustConfig
	log   *slog.Logger
	audit audit.Sink

	mu     sync.Mutex
	rep    *policy.Reputation     // guarded by mu
	bans   map[netx.PeerID]banRec // guarded by mu
	saving bool                   // guarded by mu: a writer goroutine runs (save)
	dirty  bool                   // guarded by mu: the bans changed since it took its copy
	writer sync.WaitGroup         // the writer goroutine, for Flush
}

// banRec is one ban, as stored in the ban file.
type banRec struct {
	Peer    netx.PeerID    `json:"peer"`
	Content core.ContentID `json:"content,omitzero"` // the swarm of the offence
	Reason  string         `json:"reason"`
	Until   time.Time      `json:"until"`
}

type banFile struct {
	Version int      `json:"version"`
	Bans    []banRec `json:"bans"`
}

// NewTrust returns a Trust with the bans of cfg.BanFile that have not
// expired. A missing file is an empty list; an unreadable or corrupt one is
// logged as a warning and replaced by an empty list: a peer never refuses to
// start over its ban list.
func NewTrust(cfg TrustConfig) *Trust {
	if cfg.BanFor <= 0 {
		cfg.BanFor = DefaultBanFor
	}
	if cfg.MaxBans <= 0 {
		cfg.MaxBans = DefaultMaxBans
	}
	if cfg.Clock == nil {
		cfg.Clock = core.RealClock{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	t := &Trust{
		cfg: cfg, log: cfg.Logger, audit: audit.OrDiscard(cfg.Audit),
		rep:  policy.NewReputation(cfg.Reputation),
		bans: map[netx.PeerID]banRec{},
	}
	if cfg.BanFile != "" {
		bans, err := loadBans(cfg.BanFile, cfg.MaxBans)
		if err != nil {
			t.log.Warn("ban list unusable, starting with no bans", "file", cfg.BanFile, "err", err)
		}
		now := cfg.Clock.Now()
		var expired []banRec
		for _, b := range bans {
			if now.Before(b.Until) {
				t.bans[b.Peer] = b
			} else {
				expired = append(expired, b)
			}
		}
		if len(bans) > 0 {
			t.log.Info("ban list loaded", "file", cfg.BanFile, "bans", len(t.bans), "expired", len(expired))
		}
		for _, b := range expired { // expired while the peer was down
			t.unbanned(b, now, "expired")
		}
	}
	return t
}

// ErrBadBanFile: the ban file is not a ban list this version can read.
var ErrBadBanFile = errors.New("bad ban file")

// loadBans reads a ban file, bounded by max bans.
func loadBans(path string, max int) ([]banRec, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	limit := int64(max)*1024 + 1024 // generous per ban; a bigger file is not ours
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%w %s: larger than %d bytes", ErrBadBanFile, path, limit)
	}
	return decodeBans(b, max)
}

// decodeBans parses a ban file's contents. Entries past max, or without a
// peer or an expiry, make the whole file unusable: it was not written by us.
func decodeBans(b []byte, max int) ([]banRec, error) {
	var bf banFile
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(&bf); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadBanFile, err)
	}
	if d.More() {
		return nil, fmt.Errorf("%w: trailing data after the list", ErrBadBanFile)
	}
	if bf.Version != banFileVersion {
		return nil, fmt.Errorf("%w: version %d, want %d", ErrBadBanFile, bf.Version, banFileVersion)
	}
	if len(bf.Bans) > max {
		return nil, fmt.Errorf("%w: %d bans, more than the bound %d", ErrBadBanFile, len(bf.Bans), max)
	}
	for k, ban := range bf.Bans {
		if ban.Peer == "" || len(ban.Peer) > 128 || ban.Until.IsZero() || len(ban.Reason) > maxBanReason {
			return nil, fmt.Errorf("%w: ban %d: want a peer ID of 1-128 bytes, an expiry and a reason of at most %d bytes", ErrBadBanFile, k, maxBanReason)
		}
	}
	return bf.Bans, nil
}

// Banned reports whether id is banned now. A ban found expired is dropped
// (and the drop audited and saved).
func (t *Trust) Banned(id netx.PeerID) bool {
	now := t.cfg.Clock.Now()
	t.mu.Lock()
	b, ok := t.bans[id]
	if ok && now.Before(b.Until) {
		t.mu.Unlock()
		return true
	}
	if ok {
		delete(t.bans, id)
	}
	t.mu.Unlock()
	if ok {
		t.unbanned(b, now, "expired")
	}
	return false
}

// BannedUntil returns when id's ban expires, if it is banned.
func (t *Trust) BannedUntil(id netx.PeerID) (time.Time, bool) {
	if !t.Banned(id) {
		return time.Time{}, false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	b, ok := t.bans[id]
	return b.Until, ok
}

// Bans is the number of bans in force (expired ones may still count until
// looked at or swept by Expire).
func (t *Trust) Bans() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.bans)
}

// Expire drops every expired ban and returns how many it dropped.
func (t *Trust) Expire() int {
	now := t.cfg.Clock.Now()
	t.mu.Lock()
	var gone []banRec
	for id, b := range t.bans {
		if !now.Before(b.Until) {
			gone = append(gone, b)
			delete(t.bans, id)
		}
	}
	t.mu.Unlock()
	for _, b := range gone {
		t.unbanned(b, now, "expired")
	}
	return len(gone)
}

func (t *Trust) unbanned(b banRec, now time.Time, why string) {
	t.log.Info("peer ban lifted", "peer", b.Peer.Short(), "reason", why)
	t.audit.Record(audit.Event{Time: now, Kind: audit.KindUnban, Peer: string(b.Peer), Content: contentString(b.Content), Reason: why})
	t.save()
}

// Ban bars id from every swarm for BanFor, for the reason given (content
// is the swarm of the offence, or zero). It returns false if id was banned
// already (the ban is then extended, not counted twice).
func (t *Trust) Ban(id netx.PeerID, content core.ContentID, reason string) bool {
	now := t.cfg.Clock.Now()
	if len(reason) > maxBanReason {
		reason = reason[:maxBanReason]
	}
	b := banRec{Peer: id, Content: content, Reason: reason, Until: now.Add(t.cfg.BanFor)}
	t.mu.Lock()
	old, was := t.bans[id]
	was = was && now.Before(old.Until)
	if !was && len(t.bans) >= t.cfg.MaxBans {
		// Full: the ban closest to its end makes room.
		var first netx.PeerID
		for k, o := range t.bans {
			if first == "" || o.Until.Before(t.bans[first].Until) {
				first = k
			}
		}
		delete(t.bans, first)
	}
	t.bans[id] = b
	t.mu.Unlock()
	if !was {
		t.log.Warn("peer banned", "peer", id.Short(), "reason", reason, "until", b.Until)
		t.audit.Record(audit.Event{Time: now, Kind: audit.KindBan, Peer: string(id), Content: contentString(content), Reason: reason, Until: b.Until})
	}
	t.save()
	return !was
}

// Unban lifts id's ban, if any.
func (t *Trust) Unban(id netx.PeerID) {
	t.mu.Lock()
	b, ok := t.bans[id]
	delete(t.bans, id)
	t.mu.Unlock()
	if ok {
		t.unbanned(b, t.cfg.Clock.Now(), "lifted")
	}
}

// save has the ban list written to BanFile, if any, in the background:
// bans change on request paths, sometimes under a session's lock, and a
// write (with its fsync) must not hold them up. One writer at a time, which
// writes again while the list changed under it, so the file ends with the
// latest list. Failures are logged: the bans stay in force in memory.
func (t *Trust) save() {
	if t.cfg.BanFile == "" {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.saving {
		t.dirty = true
		return
	}
	t.saving = true
	t.writer.Add(1)
	go t.writeBans()
}

func (t *Trust) writeBans() {
	defer t.writer.Done()
	for {
		t.mu.Lock()
		bf := banFile{Version: banFileVersion, Bans: make([]banRec, 0, len(t.bans))}
		for _, b := range t.bans {
			bf.Bans = append(bf.Bans, b)
		}
		t.dirty = false
		t.mu.Unlock()
		data, err := json.Marshal(bf)
		if err == nil {
			err = renameio.WriteFile(t.cfg.BanFile, data, 0o600)
		}
		if err != nil {
			t.log.Warn("save ban list", "file", t.cfg.BanFile, "err", err)
		}
		t.mu.Lock()
		if !t.dirty {
			t.saving = false
			t.mu.Unlock()
			return
		}
		t.mu.Unlock()
	}
}

// Flush waits until the ban file holds the latest list. Call it before
// reading the file, and when the peer closes.
func (t *Trust) Flush() { t.writer.Wait() }

// Record feeds one outcome of dealing with id into its score.
func (t *Trust) Record(id netx.PeerID, o policy.Outcome, bytes int64) {
	now := t.cfg.Clock.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	t.rep.Record(policy.PeerKey(id), o, bytes, now)
}

// Score is id's reputation now (see policy.Reputation).
func (t *Trust) Score(id netx.PeerID) float64 {
	now := t.cfg.Clock.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.rep.Score(policy.PeerKey(id), now)
}

// Offended records a proven offence: the peer's score takes the bad-chunk
// penalty, it is banned, and Report (if any) is told. reason is the ban's.
// It returns whether the ban is new (false: it was banned already, by
// another chunk in flight or another swarm).
func (t *Trust) Offended(o Offence, reason string) bool {
	t.Record(o.Peer, policy.BadChunk, 0)
	fresh := t.Ban(o.Peer, o.Content, reason)
	if t.cfg.Report != nil {
		t.cfg.Report(o)
	}
	return fresh
}

func contentString(c core.ContentID) string {
	if c == (core.ContentID{}) {
		return ""
	}
	return c.String()
}

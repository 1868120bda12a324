// Package player emulates a media player without decoding anything: it
// plays an HLS or DASH presentation through a URL (typically a Shoal
// gateway) with a buffer model, at real or accelerated speed, and reports
// what a viewer would have seen: start-up time, stalls, rebuffer ratio,
// bytes. Benchmarks, the simulator's callers and tests use it to measure
// playback quality of the swarm; it imports only the media engine.
//
// The buffer model (Buffer) is pure: times go in as arguments, so it is
// tested with made-up clocks; Player does the I/O around it.
package player

import "time"

// State is where playback is.
type State int

// Playback states.
const (
	Starting State = iota // buffering before the first frame
	Playing
	Stalled // the buffer ran dry; buffering until the threshold again
	Ended   // everything downloaded has been played
)

func (s State) String() string {
	return [...]string{"starting", "playing", "stalled", "ended"}[s]
}

// Buffer models a player's media buffer. Media is added whole segments at
// a time as downloads finish; while playing, the buffer drains at Speed
// seconds of media per wall second. Playback starts (and resumes after a
// stall) once Threshold of media is buffered, or everything is downloaded.
// Times are wall-clock instants supplied by the caller and must not go
// backwards.
type Buffer struct {
	threshold time.Duration
	speed     float64

	state    State
	begun    time.Time
	last     time.Time     // time of the last update
	level    time.Duration // media buffered
	complete bool          // no more media will be added

	startup    time.Duration // begun → first frame (wall)
	played     time.Duration // media played
	playWall   time.Duration // wall time spent playing
	stalls     int
	stallWall  time.Duration // finished stalls (wall)
	stallSince time.Time
}

// NewBuffer starts a buffer at now. speed <= 0 means 1.
func NewBuffer(threshold time.Duration, speed float64, now time.Time) *Buffer {
	if speed <= 0 {
		speed = 1
	}
	return &Buffer{threshold: threshold, speed: speed, begun: now, last: now}
}

// advance plays media up to now, entering a stall (or the end) at the
// instant the buffer runs dry.
func (b *Buffer) advance(now time.Time) {
	if now.Before(b.last) {
		now = b.last
	}
	if b.state == Playing {
		wall := now.Sub(b.last)
		drain := time.Duration(float64(wall) * b.speed)
		if drain < b.level {
			b.level -= drain
			b.played += drain
			b.playWall += wall
		} else {
			dry := b.last.Add(time.Duration(float64(b.level) / b.speed))
			b.played += b.level
			b.playWall += dry.Sub(b.last)
			b.level = 0
			if b.complete {
				b.state = Ended
			} else {
				b.state = Stalled
				b.stalls++
				b.stallSince = dry
			}
		}
	}
	b.last = now
}

// maybeStart starts or resumes playback when enough is buffered.
func (b *Buffer) maybeStart(now time.Time) {
	if b.state != Starting && b.state != Stalled {
		return
	}
	if b.level < b.threshold && !b.complete {
		return
	}
	if b.state == Starting {
		b.startup = now.Sub(b.begun)
	} else {
		b.stallWall += now.Sub(b.stallSince)
	}
	b.state = Playing
	if b.level == 0 { // complete with nothing left to play
		b.state = Ended
	}
}

// Add records a download finished at now that extends the buffer by media.
func (b *Buffer) Add(now time.Time, media time.Duration) {
	b.advance(now)
	b.level += media
	b.maybeStart(now)
}

// Complete records that no more media will come (all downloaded).
func (b *Buffer) Complete(now time.Time) {
	b.advance(now)
	b.complete = true
	b.maybeStart(now)
}

// State is the state at now.
func (b *Buffer) State(now time.Time) State {
	b.advance(now)
	return b.state
}

// Level is the media buffered at now.
func (b *Buffer) Level(now time.Time) time.Duration {
	b.advance(now)
	return b.level
}

// Drain is how long from now (wall) until the buffer falls to level, if
// playing without further downloads; 0 if it is already there or not playing.
func (b *Buffer) Drain(now time.Time, level time.Duration) time.Duration {
	b.advance(now)
	if b.state != Playing || b.level <= level {
		return 0
	}
	return time.Duration(float64(b.level-level) / b.speed)
}

// Stats summarises playback up to now.
type Stats struct {
	State     State
	Startup   time.Duration // wall time from start to the first frame (0 if not started)
	Played    time.Duration // media time played
	PlayWall  time.Duration // wall time spent playing (Played / speed)
	Stalls    int           // times the buffer ran dry after the first frame
	StallWall time.Duration // wall time spent stalled, the current stall included
}

// RebufferRatio is stall time / (play time + stall time), in wall time.
func (s Stats) RebufferRatio() float64 {
	if s.PlayWall+s.StallWall == 0 {
		return 0
	}
	return float64(s.StallWall) / float64(s.PlayWall+s.StallWall)
}

// RebuffersPerHour is stalls per hour of media played.
func (s Stats) RebuffersPerHour() float64 {
	if s.Played == 0 {
		return 0
	}
	return float64(s.Stalls) / s.Played.Hours()
}

// Stats reports playback up to now.
func (b *Buffer) Stats(now time.Time) Stats {
	b.advance(now)
	st := Stats{State: b.state, Startup: b.startup, Played: b.played, PlayWall: b.playWall, Stalls: b.stalls, StallWall: b.stallWall}
	if b.state == Stalled {
		st.StallWall += now.Sub(b.stallSince)
	}
	return st
}

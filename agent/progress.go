package agent

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/term"
)

// progress shows how a fetch is going: a redrawn bar on a terminal, a plain
// line every few seconds when piped. A nil writer shows nothing.
type progress struct {
	w     io.Writer
	tty   bool
	total int64
	start time.Time
	done  atomic.Int64
	quit  chan struct{}
	wg    sync.WaitGroup
	once  sync.Once
	first sync.Once // the first-bytes line, when piped
}

func newProgress(w io.Writer, total int64) *progress {
	p := &progress{w: w, total: total, start: time.Now(), quit: make(chan struct{})}
	if w == nil {
		return p
	}
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		p.tty = true
	}
	every := 2 * time.Second
	if p.tty {
		every = 200 * time.Millisecond
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				p.draw(false)
			case <-p.quit:
				return
			}
		}
	}()
	return p
}

// add counts n verified bytes. Piped, the first bytes are reported at once
// (a line saying when the first verified byte arrived); after that a line
// every few seconds.
func (p *progress) add(n int64) {
	if p.done.Add(n) == n && n > 0 && p.w != nil && !p.tty {
		p.first.Do(func() { p.draw(false) })
	}
}

func (p *progress) draw(final bool) {
	done := p.done.Load()
	el := time.Since(p.start).Seconds()
	rate := float64(done) / max(el, 1e-9)
	pct := 100.0
	if p.total > 0 {
		pct = 100 * float64(done) / float64(p.total)
	}
	if p.tty {
		const width = 30
		fill := int(pct / 100 * width)
		end := ""
		if final {
			end = "\n"
		}
		fmt.Fprintf(p.w, "\r[%s%s] %5.1f%% %s/%s %s/s   %s", strings.Repeat("=", fill), strings.Repeat(" ", width-fill), pct, HumanBytes(done), HumanBytes(p.total), HumanBytes(int64(rate)), end)
		return
	}
	fmt.Fprintf(p.w, "progress %5.1f%% %d/%d bytes %s/s\n", pct, done, p.total, HumanBytes(int64(rate)))
}

func (p *progress) stop() {
	p.once.Do(func() {
		close(p.quit)
		p.wg.Wait()
	})
}

// finish stops the ticker and draws the final state.
func (p *progress) finish() {
	p.stop()
	if p.w != nil {
		p.draw(true)
	}
}

// HumanBytes prints a byte count with a binary unit.
func HumanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

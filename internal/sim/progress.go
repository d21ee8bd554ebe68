package sim

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// progressEvery is the least wall time between two redraws of the bar: at
// most 10 a second.
const progressEvery = 100 * time.Millisecond

// progressWidth is the bar's length in characters.
const progressWidth = 30

// Progress reports how far a simulation over [from, to) of virtual time
// has got. On a terminal it redraws one line in place,
//
//	[#############.................] 42% month 5/12 12.3 s
//
// at most 10 times a second of wall time, and ends it with a newline on
// Done. Elsewhere (a pipe, a CI log) it writes one line per simulated
// month completed,
//
//	month 5/12 done (simulated to 2026-06-01) 12.3 s
//
// and nothing on Done. The caller says which, and supplies the wall clock;
// elapsed seconds count from NewProgress. A Progress is not safe for
// concurrent use.
type Progress struct {
	w          io.Writer
	terminal   bool
	now        func() time.Time
	from, to   time.Time
	months     int
	began      time.Time
	last       time.Time // wall time of the last redraw
	drawn      bool
	frac       float64 // share of [from, to) simulated, 0..1
	month      int     // the month being simulated, 1..months
	done       int     // months completed and reported
	lineLen    int     // length of the last line drawn, to blank its tail
	err        error
	terminated bool
}

// NewProgress returns a Progress for a simulation over [from, to) writing
// to w; terminal says whether w is a terminal, now reads the wall clock.
// The months are counted from from: [from, from+1 month), ….
func NewProgress(w io.Writer, terminal bool, now func() time.Time, from, to time.Time) *Progress {
	p := &Progress{w: w, terminal: terminal, now: now, from: from, to: to, began: now(), month: 1}
	p.months = max(monthsDone(from, to, to), 1)
	if from.AddDate(0, p.months, 0).Before(to) {
		p.months++ // a last, partial month
	}
	return p
}

// monthsDone returns how many whole months from from have ended by at.
func monthsDone(from, to, at time.Time) int {
	for n := 0; ; n++ {
		if e := from.AddDate(0, n+1, 0); e.After(at) || e.After(to) {
			return n
		}
	}
}

// Update reports that the simulation has reached virtual time at: every
// hour before at is simulated.
func (p *Progress) Update(at time.Time) {
	if p.terminated {
		return
	}
	span := p.to.Sub(p.from)
	p.frac = 1
	if span > 0 {
		p.frac = min(max(float64(at.Sub(p.from))/float64(span), 0), 1)
	}
	done := min(monthsDone(p.from, p.to, at), p.months)
	if !at.Before(p.to) {
		done = p.months
	}
	p.month = min(done+1, p.months)
	now := p.now()
	if !p.terminal {
		if done > p.done {
			p.done = done
			end := p.from.AddDate(0, done, 0)
			if end.After(p.to) {
				end = p.to
			}
			p.write(fmt.Sprintf("month %d/%d done (simulated to %s) %.1f s\n", done, p.months, end.UTC().Format(time.DateOnly), now.Sub(p.began).Seconds()))
		}
		return
	}
	if p.drawn && now.Sub(p.last) < progressEvery {
		return
	}
	p.draw(now)
}

// Done ends the report: on a terminal it redraws the bar as it stands and
// ends the line. It returns the first error writing to w; later calls do
// nothing.
func (p *Progress) Done() error {
	if p.terminated {
		return p.err
	}
	if p.terminal {
		p.draw(p.now())
		p.write("\n")
	}
	p.terminated = true
	return p.err
}

func (p *Progress) draw(now time.Time) {
	filled := int(p.frac * progressWidth)
	line := fmt.Sprintf("[%s%s] %d%% month %d/%d %.1f s",
		strings.Repeat("#", filled), strings.Repeat(".", progressWidth-filled),
		int(p.frac*100), p.month, p.months, now.Sub(p.began).Seconds())
	pad := max(p.lineLen-len(line), 0)
	p.lineLen = len(line)
	p.write("\r" + line + strings.Repeat(" ", pad))
	p.last, p.drawn = now, true
}

func (p *Progress) write(s string) {
	if p.err != nil {
		return
	}
	if _, err := io.WriteString(p.w, s); err != nil {
		p.err = fmt.Errorf("sim: progress: %w", err)
	}
}

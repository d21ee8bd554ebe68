package sim

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// wall is a fake wall clock that moves by step on every reading.
type wall struct {
	t    time.Time
	step time.Duration
}

func (w *wall) now() time.Time {
	t := w.t
	w.t = w.t.Add(w.step)
	return t
}

func TestProgressTerminal(t *testing.T) {
	var out strings.Builder
	clock := &wall{t: time.Unix(0, 0), step: 40 * time.Millisecond}
	from := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	to := from.AddDate(1, 0, 0)
	p := NewProgress(&out, true, clock.now, from, to)
	hours := int(to.Sub(from) / time.Hour)
	for h := 1; h <= hours; h++ {
		p.Update(from.Add(time.Duration(h) * time.Hour))
	}
	if err := p.Done(); err != nil {
		t.Fatal(err)
	}
	s := out.String()
	// 8,760 updates 40 ms apart: 350 s of wall time, redrawn at most every
	// 100 ms (every third reading), plus the final redraw.
	draws := strings.Count(s, "\r")
	if draws > 350*10+1 || draws < 100 {
		t.Errorf("%d redraws in 350 s", draws)
	}
	if !strings.HasSuffix(s, "\r[##############################] 100% month 12/12 350.4 s\n") {
		t.Errorf("last line %q", s[strings.LastIndex(s, "\r"):])
	}
	if strings.Count(s, "\n") != 1 {
		t.Errorf("%d newlines, want 1 (on Done)", strings.Count(s, "\n"))
	}
	// Half way through the year: the first redraw at or after July 2.
	if !strings.Contains(s, "\r[###############...............] 50% month 7/12 ") {
		t.Errorf("no half-way line in %q", s[:200])
	}
	// Later calls are ignored.
	p.Update(to)
	if err := p.Done(); err != nil || out.String() != s {
		t.Errorf("Update/Done after Done wrote %q", out.String()[len(s):])
	}
}

func TestProgressThrottle(t *testing.T) {
	var out strings.Builder
	clock := &wall{t: time.Unix(0, 0)} // the wall clock stands still
	from := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	p := NewProgress(&out, true, clock.now, from, from.AddDate(0, 3, 0))
	for d := range 90 {
		p.Update(from.AddDate(0, 0, d+1))
	}
	if n := strings.Count(out.String(), "\r"); n != 1 {
		t.Errorf("%d redraws without wall time passing, want 1", n)
	}
	clock.t = clock.t.Add(100 * time.Millisecond)
	p.Update(from.AddDate(0, 3, 0))
	if n := strings.Count(out.String(), "\r"); n != 2 {
		t.Errorf("%d redraws after 100 ms, want 2", n)
	}
}

func TestProgressPadsShorterLines(t *testing.T) {
	var out strings.Builder
	clock := &wall{t: time.Unix(0, 0), step: time.Second}
	from := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	p := NewProgress(&out, true, clock.now, from, from.AddDate(1, 0, 0))
	p.Update(from.AddDate(0, 11, 0)) // "month 12/12"
	p.Update(from)                   // "month 1/12": one character shorter
	lines := strings.Split(out.String(), "\r")
	if len(lines[1]) != len(lines[2]) || !strings.HasSuffix(lines[2], " ") {
		t.Errorf("lines %q and %q", lines[1], lines[2])
	}
}

func TestProgressNotTerminal(t *testing.T) {
	var out strings.Builder
	clock := &wall{t: time.Unix(0, 0), step: 10 * time.Millisecond}
	from := time.Date(2026, 1, 15, 0, 0, 0, 0, time.UTC)
	to := from.AddDate(0, 2, 10) // two whole months and a part
	p := NewProgress(&out, false, clock.now, from, to)
	for at := from.Add(time.Hour); !at.After(to); at = at.Add(time.Hour) {
		p.Update(at)
	}
	if err := p.Done(); err != nil {
		t.Fatal(err)
	}
	want := "month 1/3 done (simulated to 2026-02-15) 7.4 s\n" +
		"month 2/3 done (simulated to 2026-03-15) 14.2 s\n" +
		"month 3/3 done (simulated to 2026-03-25) 16.6 s\n"
	if out.String() != want {
		t.Errorf("output:\n%s\nwant:\n%s", out.String(), want)
	}
}

type failWriter struct{ n int }

func (f *failWriter) Write(b []byte) (int, error) {
	f.n++
	return 0, errors.New("disk full")
}

func TestProgressWriteError(t *testing.T) {
	w := &failWriter{}
	clock := &wall{t: time.Unix(0, 0), step: time.Second}
	from := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	p := NewProgress(w, true, clock.now, from, from.AddDate(0, 1, 0))
	p.Update(from.Add(time.Hour))
	p.Update(from.Add(2 * time.Hour))
	if err := p.Done(); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Errorf("Done = %v, want the write error", err)
	}
	if w.n != 1 {
		t.Errorf("%d writes after the first failed, want none", w.n-1)
	}
}

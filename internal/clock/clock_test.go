package clock

import (
	"testing"
	"time"
)

func TestScaled(t *testing.T) {
	start := time.Date(2026, 9, 1, 0, 0, 0, 0, time.UTC)
	real := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	s := &Scaled{virtual0: start, real0: real, speed: 3600, real: func() time.Time { return real }}
	s.sleep = func(d time.Duration) { real = real.Add(d) }
	if got := s.Now(); !got.Equal(start) {
		t.Fatalf("Now() = %s, want %s", got, start)
	}
	real = real.Add(time.Second)
	if got := s.Now(); !got.Equal(start.Add(time.Hour)) {
		t.Fatalf("after a real second: %s, want an hour on", got)
	}
	s.Set(start.Add(10 * time.Hour))
	if got := s.Now(); got.Before(start.Add(10 * time.Hour)) {
		t.Fatalf("Set did not wait: %s", got)
	}
	before := s.Now()
	s.Set(start) // the past: no wait, no move back
	if !s.Now().Equal(before) {
		t.Fatal("Set into the past moved the clock")
	}
}

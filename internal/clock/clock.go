// Package clock injects time: production code asks a Clock for the time,
// tests and the simulator drive a Fake one.
package clock

import (
	"sync"
	"time"
)

// Clock tells the current time, in UTC.
type Clock interface {
	Now() time.Time
}

// Real is the wall clock.
type Real struct{}

// Now returns the current UTC time.
func (Real) Now() time.Time { return time.Now().UTC() }

// Fake is a clock that moves only when told to. It is safe for concurrent
// use.
type Fake struct {
	mu sync.Mutex
	t  time.Time
}

// NewFake returns a Fake clock set to t.
func NewFake(t time.Time) *Fake { return &Fake{t: t.UTC()} }

// Now returns the fake time.
func (f *Fake) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.t
}

// Set moves the clock to t.
func (f *Fake) Set(t time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.t = t.UTC()
}

// Advance moves the clock forward by d.
func (f *Fake) Advance(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.t = f.t.Add(d)
}

// Scaled is a clock that runs speed times faster than the wall clock from
// a virtual start: the live demo's accelerated time. Set waits (in real
// time) until the virtual time reaches t, so that a driver written for a
// Fake clock paces itself on a Scaled one. It is safe for concurrent use.
type Scaled struct {
	virtual0 time.Time
	real0    time.Time
	speed    float64
	sleep    func(time.Duration)
	real     func() time.Time
}

// NewScaled returns a clock at start now, running speed (> 0) times as
// fast as the wall clock.
func NewScaled(start time.Time, speed float64) *Scaled {
	return &Scaled{virtual0: start.UTC(), real0: time.Now(), speed: speed, sleep: time.Sleep, real: time.Now}
}

// Now returns the virtual time.
func (s *Scaled) Now() time.Time {
	return s.virtual0.Add(time.Duration(float64(s.real().Sub(s.real0)) * s.speed))
}

// Set waits until the virtual time is at or after t; it cannot move the
// clock back.
func (s *Scaled) Set(t time.Time) {
	for {
		ahead := t.Sub(s.Now())
		if ahead <= 0 {
			return
		}
		s.sleep(max(time.Duration(float64(ahead)/s.speed), time.Millisecond))
	}
}

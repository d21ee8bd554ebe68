package engine

import (
	"fmt"
	"testing"
	"time"
)

// TestIdemIndex: the index answers "absent" only for pairs it was never
// given within IdempotencyTTL (and its margin), only once loaded, and not
// while it has lost entries for lack of room.
func TestIdemIndex(t *testing.T) {
	t0 := time.Date(2026, 9, 1, 0, 0, 0, 0, time.UTC)
	keep := IdempotencyTTL + indexMargin
	type step struct {
		add    string        // a key to enter at t0+at
		at     time.Duration // since t0
		absent []string      // keys answered absent at t0+at
		maybe  []string      // keys not answered absent at t0+at
	}
	for _, tc := range []struct {
		name   string
		limit  int
		cold   bool // never loaded
		steps  []step
		maxLen int // of order after the steps; 0: unchecked
	}{
		{name: "not loaded: answers nothing", cold: true, steps: []step{
			{absent: nil, maybe: []string{"a"}},
		}},
		{name: "entered then pruned after the TTL and margin", steps: []step{
			{add: "a", absent: []string{"b"}, maybe: []string{"a"}},
			{at: keep, maybe: []string{"a"}},
			{add: "b", at: keep + time.Second, absent: []string{"a"}, maybe: []string{"b"}},
		}},
		{name: "entered again: kept from the later time", steps: []step{
			{add: "a"},
			{add: "a", at: time.Hour},
			{add: "b", at: keep + time.Second, maybe: []string{"a", "b"}},
			{add: "c", at: keep + time.Hour + time.Second, absent: []string{"a"}, maybe: []string{"b", "c"}},
		}},
		{name: "an earlier time does not shorten an entry", steps: []step{
			{add: "a", at: time.Hour},
			{add: "a"},
			{add: "b", at: keep + time.Second, maybe: []string{"a", "b"}},
		}},
		{name: "full: answers nothing until what was dropped expired", limit: 2, steps: []step{
			{add: "a"},
			{add: "b", absent: []string{"c"}},
			{add: "c", at: time.Minute, maybe: []string{"a", "b", "c", "d"}},
			{at: time.Minute + keep - time.Second, maybe: []string{"d"}},
			{add: "d", at: time.Minute + keep, absent: []string{"a", "b", "c"}, maybe: []string{"d"}},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			x := &idemIndex{limit: tc.limit}
			if !tc.cold {
				x.state = indexLoaded
			}
			for i, s := range tc.steps {
				now := t0.Add(s.at)
				if s.add != "" {
					x.add("scope", s.add, now, now)
				}
				for _, k := range s.absent {
					if !x.peekAbsent("scope", k, now) {
						t.Errorf("step %d: %s not absent", i, k)
					}
				}
				for _, k := range s.maybe {
					if x.peekAbsent("scope", k, now) {
						t.Errorf("step %d: %s absent", i, k)
					}
				}
			}
		})
	}
}

// TestIdemIndexBounded: entering keys over days keeps the index to those
// of the last IdempotencyTTL and margin, and its order to a multiple of
// them, whatever the clock does.
func TestIdemIndexBounded(t *testing.T) {
	t0 := time.Date(2026, 9, 1, 0, 0, 0, 0, time.UTC)
	x := &idemIndex{state: indexLoaded}
	const perHour = 100
	for h := range 24 * 5 {
		for i := range perHour {
			now := t0.Add(time.Duration(h)*time.Hour + time.Duration(i)*time.Second)
			x.add("scope", fmt.Sprintf("k%d-%d", h, i), now, now)
			x.add("scope", "hot", now, now) // the same key again and again
		}
	}
	live := (25 + 2) * perHour // TTL and margin, and the hour begun
	if len(x.at) > live {
		t.Errorf("index holds %d entries, want at most %d", len(x.at), live)
	}
	if n := len(x.order) - x.head; n > 2*len(x.at)+1024 {
		t.Errorf("order holds %d entries for %d keys", n, len(x.at))
	}
}

// peekAbsent is absent without entering the pair.
func (x *idemIndex) peekAbsent(scope, key string, now time.Time) bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.state != indexLoaded || now.Before(x.overflowUntil) {
		return false
	}
	_, ok := x.at[x.hash(scope, key)]
	return !ok
}

// TestIdemIndexAbsentEnters: a pair answered absent is entered, so that a
// second lookup (a retry while the first request runs, or after it
// remembered its answer) goes to the store; when the index is full it
// answers absent no more.
func TestIdemIndexAbsentEnters(t *testing.T) {
	now := time.Date(2026, 9, 1, 0, 0, 0, 0, time.UTC)
	x := &idemIndex{state: indexLoaded, limit: 2}
	for i, want := range []bool{true, false} {
		if got := x.absent("scope", "a", now); got != want {
			t.Errorf("lookup %d of a: absent %v, want %v", i+1, got, want)
		}
	}
	x.absent("scope", "b", now)
	if !x.absent("scope", "c", now) { // c is not held, and not entered: full
		t.Errorf("c: not absent")
	}
	if x.absent("scope", "d", now) {
		t.Errorf("d: absent while the index is full")
	}
}

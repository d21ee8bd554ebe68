package handover

import (
	"errors"
	"testing"
	"time"

	"pgregory.net/rapid"
)

var t0 = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)

func TestLifecycle(t *testing.T) {
	p := Policy{Sanitize: 30 * time.Minute}
	n := New(t0)
	steps := []struct {
		name string
		do   func(Node) (Node, error)
		want State
	}{
		{"assign", func(n Node) (Node, error) { return n.Assign("acme", t0) }, Assigned},
		{"release", func(n Node) (Node, error) { return n.Release(t0.Add(time.Hour)) }, Releasing},
		{"released", func(n Node) (Node, error) { return n.Released(t0.Add(time.Hour + 2*time.Minute)) }, Sanitizing},
		{"tick early", func(n Node) (Node, error) { n, _ = n.Tick(p, t0.Add(time.Hour+10*time.Minute)); return n, nil }, Sanitizing},
		{"tick due", func(n Node) (Node, error) { n, _ = n.Tick(p, t0.Add(3*time.Hour)); return n, nil }, Available},
		{"assign other", func(n Node) (Node, error) { return n.Assign("globex", t0.Add(3*time.Hour)) }, Assigned},
	}
	for _, s := range steps {
		var err error
		if n, err = s.do(n); err != nil || n.State != s.want {
			t.Fatalf("%s: state %s, err %v; want %s", s.name, n.State, err, s.want)
		}
	}
	if n.Wiped != 1 {
		t.Errorf("Wiped = %d, want 1", n.Wiped)
	}
	// The timed wipe ends at Since + Sanitize, not at the tick.
	s := Node{State: Sanitizing, Since: t0}
	if got, _ := s.Tick(p, t0.Add(5*time.Hour)); !got.Since.Equal(t0.Add(30 * time.Minute)) {
		t.Errorf("Tick: available since %v, want %v", got.Since, t0.Add(30*time.Minute))
	}
	if at, ok := s.ReadyAt(p); !ok || !at.Equal(t0.Add(30*time.Minute)) {
		t.Errorf("ReadyAt = %v, %v", at, ok)
	}
	if _, ok := s.ReadyAt(Policy{}); ok {
		t.Error("ReadyAt without a timed wipe: ok = true, want a confirmation awaited")
	}
	if got, changed := s.Tick(Policy{}, t0.Add(100*time.Hour)); changed || got.State != Sanitizing {
		t.Error("Tick without a timed wipe ended sanitizing")
	}
}

func TestRefusals(t *testing.T) {
	assigned, _ := New(t0).Assign("acme", t0)
	releasing, _ := assigned.Release(t0)
	sanitizing, _ := releasing.Released(t0)
	tests := []struct {
		name string
		do   func() (Node, error)
	}{
		{"assign assigned", func() (Node, error) { return assigned.Assign("globex", t0) }},
		{"assign releasing", func() (Node, error) { return releasing.Assign("globex", t0) }},
		{"assign sanitizing", func() (Node, error) { return sanitizing.Assign("globex", t0) }},
		{"reassign to another", func() (Node, error) { return releasing.Reassign("globex", t0) }},
		{"release available", func() (Node, error) { return New(t0).Release(t0) }},
		{"released assigned", func() (Node, error) { return assigned.Released(t0) }},
		{"confirm releasing", func() (Node, error) { return releasing.Confirm(t0) }},
	}
	for _, tt := range tests {
		if _, err := tt.do(); !errors.Is(err, ErrTransition) {
			t.Errorf("%s: err = %v, want ErrTransition", tt.name, err)
		}
	}
	if _, err := New(t0).Assign("", t0); err == nil {
		t.Error("Assign to no holder: err = nil")
	}
	if n, err := releasing.Reassign("acme", t0); err != nil || n.State != Assigned {
		t.Errorf("Reassign to the same holder = %s, %v", n.State, err)
	}
}

// TestNoHandOverWithoutWipe drives a node with random events (refused ones
// leave it unchanged) and checks invariant 4: whenever the node is
// assigned to a holder other than the last one, a wipe completed in
// between; and a refused event changes nothing.
func TestNoHandOverWithoutWipe(t *testing.T) {
	holders := []string{Owner, "acme", "globex"}
	rapid.Check(t, func(t *rapid.T) {
		p := Policy{Sanitize: time.Duration(rapid.IntRange(0, 90).Draw(t, "sanitize_min")) * time.Minute}
		now := t0
		n := New(now)
		lastHolder, wipedAtAssign := "", 0
		for range rapid.IntRange(1, 60).Draw(t, "events") {
			now = now.Add(time.Duration(rapid.IntRange(0, 60).Draw(t, "dt_min")) * time.Minute)
			before := n
			var err error
			switch rapid.IntRange(0, 5).Draw(t, "event") {
			case 0:
				n, err = n.Assign(rapid.SampledFrom(holders).Draw(t, "holder"), now)
			case 1:
				n, err = n.Reassign(rapid.SampledFrom(holders).Draw(t, "holder"), now)
			case 2:
				n, err = n.Release(now)
			case 3:
				n, err = n.Released(now)
			case 4:
				n, err = n.Confirm(now)
			case 5:
				n, _ = n.Tick(p, now)
			}
			if err != nil {
				if n != before {
					t.Fatalf("a refused event changed the node: %+v → %+v", before, n)
				}
				continue
			}
			if n.State == Assigned && before.State != Assigned {
				if lastHolder != "" && n.Holder != lastHolder && n.Wiped == wipedAtAssign {
					t.Fatalf("node passed from %s to %s without a wipe", lastHolder, n.Holder)
				}
				if n.Holder != lastHolder || n.Wiped != wipedAtAssign {
					lastHolder, wipedAtAssign = n.Holder, n.Wiped
				}
			}
			if n.Since.After(now) {
				t.Fatalf("state %s since %v, after now %v", n.State, n.Since, now)
			}
		}
	})
}

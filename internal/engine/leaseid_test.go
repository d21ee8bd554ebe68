package engine

import (
	"bytes"
	"crypto/rand"
	"regexp"
	"slices"
	"testing"
	"time"
)

// TestLeaseIDs: lease IDs are well-formed and increase in the order they
// are issued, within a second, across seconds and when the clock steps
// back; each new second starts at a random point.
func TestLeaseIDs(t *testing.T) {
	ids := &leaseIDs{rand: rand.Reader}
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	steps := []time.Duration{0, 0, 0, time.Second, time.Second, 3 * time.Second, time.Second, 0, time.Hour}
	var got []string
	for _, d := range steps {
		id, err := ids.next(t0.Add(d))
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, id)
	}
	format := regexp.MustCompile(`^ls_[0-9a-f]{16}$`)
	for i, id := range got {
		if !format.MatchString(id) {
			t.Errorf("ID %q does not match %s", id, format)
		}
		if i > 0 && id <= got[i-1] {
			t.Errorf("ID %d %s is not after %s: %v", i, id, got[i-1], got)
		}
	}
	// Two engines with one frozen clock start at different points.
	other, err := (&leaseIDs{rand: rand.Reader}).next(t0)
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(got, other) {
		t.Errorf("a second engine issued %s again", other)
	}
	// The rand source fails: an error, no ID.
	if _, err := (&leaseIDs{rand: bytes.NewReader(nil)}).next(t0); err == nil {
		t.Error("no randomness: no error")
	}
}

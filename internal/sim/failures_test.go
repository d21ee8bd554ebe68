package sim

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/neocloud/neocloud/internal/valid"
)

var t0 = time.Date(2026, 9, 1, 0, 0, 0, 0, time.UTC)

func nodeNames(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("n%05d", i)
	}
	return out
}

// TestOutageRate checks the drawn rate against the model: 20,000 nodes
// over 60 days at 3.8 per 1,000 node-days is 4,560 failures expected
// (less the time nodes spend out), plus 10% planned.
func TestOutageRate(t *testing.T) {
	nodes := nodeNames(20_000)
	to := t0.AddDate(0, 0, 60)
	got, err := DefaultFailures.Outages(nodes, t0, to, 7)
	if err != nil {
		t.Fatal(err)
	}
	var failures, planned int
	var repair time.Duration
	for _, o := range got {
		switch o.Kind {
		case Failure:
			failures++
			repair += o.End.Sub(o.Start)
			if !o.Announced.Equal(o.Start) {
				t.Fatalf("failure %+v announced before it happened", o)
			}
		case Maintenance:
			planned++
			if o.End.Sub(o.Start) != 4*time.Hour || o.Start.Sub(o.Announced) != 7*24*time.Hour {
				t.Fatalf("maintenance %+v: want 4 h, announced a week ahead", o)
			}
		}
		if o.Start.Before(t0) || !o.Start.Before(to) || !o.End.After(o.Start) {
			t.Fatalf("outage %+v outside [%v, %v) or empty", o, t0, to)
		}
	}
	want := 3.8 * 20_000 * 60 / 1000
	if math.Abs(float64(failures)-want) > 4*math.Sqrt(want) {
		t.Errorf("failures = %d, want %.0f ± %.0f", failures, want, 4*math.Sqrt(want))
	}
	if math.Abs(float64(planned)-want/10) > 4*math.Sqrt(want/10) {
		t.Errorf("planned = %d, want %.0f ± %.0f", planned, want/10, 4*math.Sqrt(want/10))
	}
	if mean := repair / time.Duration(failures); mean < 6*time.Hour || mean > 10*time.Hour {
		t.Errorf("mean repair %v, want about 8h", mean)
	}
	if !slices.IsSortedFunc(got, func(a, b Outage) int { return a.Start.Compare(b.Start) }) {
		t.Error("outages not sorted by start")
	}
}

func TestOutagesPerNodeDisjoint(t *testing.T) {
	m := DefaultFailures
	m.PerThousandNodeDays = 200 // frequent, so that outages would collide if allowed
	got, err := m.Outages(nodeNames(50), t0, t0.AddDate(1, 0, 0), 1)
	if err != nil {
		t.Fatal(err)
	}
	last := map[string]time.Time{}
	for _, o := range got {
		if end, ok := last[o.Node]; ok && o.Start.Before(end) {
			t.Fatalf("node %s fails at %v while out until %v", o.Node, o.Start, end)
		}
		last[o.Node] = o.End
	}
}

func TestOutagesDeterministic(t *testing.T) {
	a, _ := DefaultFailures.Outages(nodeNames(2_000), t0, t0.AddDate(0, 3, 0), 42)
	b, _ := DefaultFailures.Outages(nodeNames(2_000), t0, t0.AddDate(0, 3, 0), 42)
	c, _ := DefaultFailures.Outages(nodeNames(2_000), t0, t0.AddDate(0, 3, 0), 43)
	if !slices.Equal(a, b) {
		t.Error("same seed, different outages")
	}
	if slices.Equal(a, c) {
		t.Error("different seeds, same outages")
	}
}

func TestFailureModelValidate(t *testing.T) {
	for _, tt := range []struct {
		edit  func(*FailureModel)
		field string
	}{
		{func(m *FailureModel) { m.PerThousandNodeDays = -1 }, "per_thousand_node_days"},
		{func(m *FailureModel) { m.PerThousandNodeDays = math.NaN() }, "per_thousand_node_days"},
		{func(m *FailureModel) { m.RepairMean = 0 }, "repair_mean"},
		{func(m *FailureModel) { m.RepairSigma = 4 }, "repair_sigma"},
		{func(m *FailureModel) { m.Maintenance = 0 }, "maintenance"},
		{func(m *FailureModel) { m.MaintenanceNotice = -time.Hour }, "maintenance_notice"},
	} {
		m := DefaultFailures
		tt.edit(&m)
		var ve *valid.Error
		if err := m.Validate(); !errors.As(err, &ve) || ve.Issues[0].Field != tt.field {
			t.Errorf("Validate = %v, want an issue naming %s", err, tt.field)
		}
	}
	if _, err := DefaultFailures.Outages(nodeNames(1), t0, t0, 1); err == nil {
		t.Error("Outages over an empty window: err = nil")
	}
}

// BenchmarkOutagesYear draws a year of outages for the reference fleet's
// ~27,000 nodes, as the simulator does once per run.
func BenchmarkOutagesYear(b *testing.B) {
	nodes := nodeNames(27_000)
	for b.Loop() {
		if _, err := DefaultFailures.Outages(nodes, t0, t0.AddDate(1, 0, 0), 1); err != nil {
			b.Fatal(err)
		}
	}
}

package lease

import (
	"errors"
	"slices"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/neocloud/neocloud/internal/money"
	"github.com/neocloud/neocloud/internal/unit"
	"github.com/neocloud/neocloud/internal/valid"
)

var t0 = time.Date(2026, 9, 1, 0, 0, 0, 0, time.UTC)

func hour(h int) time.Time { return t0.Add(time.Duration(h) * time.Hour) }

func TestValidate(t *testing.T) {
	now := t0.Add(30 * time.Minute)
	horizon := t0.AddDate(5, 0, 0)
	res := func() Request {
		return Request{Kind: Reservation, Pool: "s/H100", Start: hour(1), End: hour(5), GPUs: 16}
	}
	tests := []struct {
		name   string
		req    func() Request
		fields []string // nil when valid
	}{
		{"reservation", res, nil},
		{"spot", func() Request {
			return Request{Kind: Spot, Pool: "s/H100", End: hour(5), GPUs: 8, MaxPrice: money.USD(2_500_000)}
		}, nil},
		{"open-ended spot", func() Request {
			return Request{Kind: Spot, Pool: "s/H100", GPUs: 8, MaxPrice: money.USD(2_500_000), Notice: "30m"}
		}, nil},
		{"spot without max price", func() Request { return Request{Kind: Spot, Pool: "s/H100", GPUs: 8} }, []string{"max_price"}},
		{"spot max price too high", func() Request {
			return Request{Kind: Spot, Pool: "s/H100", GPUs: 8, MaxPrice: money.USD(MaxPriceMicros + 1)}
		}, []string{"max_price"}},
		{"spot off-hour end", func() Request {
			return Request{Kind: Spot, Pool: "s/H100", GPUs: 8, MaxPrice: money.USD(1), End: hour(5).Add(time.Minute)}
		}, []string{"end"}},
		{"max price on a reservation", func() Request { r := res(); r.MaxPrice = money.USD(1); return r }, []string{"max_price"}},
		{"notice on a reservation", func() Request { r := res(); r.Notice = "2m"; return r }, []string{"notice"}},
		{"contract ramp", func() Request {
			return Request{Kind: Contract, Pool: "s/H100", Start: hour(1), End: hour(100),
				Schedule: []Step{{From: hour(1), GPUs: 8}, {From: hour(10), Power: 5 * unit.Megawatt}}}
		}, nil},
		{"contract as gpus", func() Request {
			r := res()
			r.Kind = Contract
			return r
		}, nil},
		{"current hour", func() Request { r := res(); r.Start = t0; return r }, nil},
		{"unknown kind", func() Request { r := res(); r.Kind = "lease"; return r }, []string{"kind"}},
		{"no pool", func() Request { r := res(); r.Pool = ""; return r }, []string{"pool"}},
		{"unknown packing", func() Request { r := res(); r.Packing = "rack"; return r }, []string{"packing"}},
		{"unknown isolation", func() Request { r := res(); r.Isolation = "private"; return r }, []string{"isolation"}},
		{"end before start", func() Request { r := res(); r.End = hour(0); return r }, []string{"end"}},
		{"end equals start", func() Request { r := res(); r.End = r.Start; return r }, []string{"end"}},
		{"past start", func() Request { r := res(); r.Start = t0.Add(-time.Hour); return r }, []string{"start"}},
		{"start off the hour", func() Request { r := res(); r.Start = hour(1).Add(time.Minute); return r }, []string{"start"}},
		{"no end", func() Request { r := res(); r.End = time.Time{}; return r }, []string{"end"}},
		{"beyond horizon", func() Request { r := res(); r.End = horizon.Add(time.Hour); return r }, []string{"end"}},
		{"zero gpus", func() Request { r := res(); r.GPUs = 0; return r }, []string{"gpus"}},
		{"negative gpus", func() Request { r := res(); r.GPUs = -8; return r }, []string{"gpus"}},
		{"too many gpus", func() Request { r := res(); r.GPUs = MaxGPUs + 1; return r }, []string{"gpus"}},
		{"spot with start", func() Request {
			return Request{Kind: Spot, Pool: "s/H100", Start: hour(1), End: hour(5), GPUs: 8, MaxPrice: money.USD(1)}
		}, []string{"start"}},
		{"schedule on a reservation", func() Request {
			r := res()
			r.Schedule = []Step{{From: r.Start, GPUs: 8}}
			return r
		}, []string{"schedule"}},
		{"ramp not from start", func() Request {
			return Request{Kind: Contract, Pool: "s/H100", Start: hour(1), End: hour(9), Schedule: []Step{{From: hour(2), GPUs: 8}}}
		}, []string{"schedule[0].from"}},
		{"ramp out of order", func() Request {
			return Request{Kind: Contract, Pool: "s/H100", Start: hour(1), End: hour(9),
				Schedule: []Step{{From: hour(1), GPUs: 8}, {From: hour(1), GPUs: 16}}}
		}, []string{"schedule[1].from"}},
		{"ramp step after end", func() Request {
			return Request{Kind: Contract, Pool: "s/H100", Start: hour(1), End: hour(9),
				Schedule: []Step{{From: hour(1), GPUs: 8}, {From: hour(9), GPUs: 16}}}
		}, []string{"schedule[1].from"}},
		{"ramp gpus and mw", func() Request {
			return Request{Kind: Contract, Pool: "s/H100", Start: hour(1), End: hour(9),
				Schedule: []Step{{From: hour(1), GPUs: 8, Power: unit.Megawatt}}}
		}, []string{"schedule[0]"}},
		{"ramp all zero", func() Request {
			return Request{Kind: Contract, Pool: "s/H100", Start: hour(1), End: hour(9), Schedule: []Step{{From: hour(1)}}}
		}, []string{"schedule"}},
		{"ramp negative mw", func() Request {
			return Request{Kind: Contract, Pool: "s/H100", Start: hour(1), End: hour(9), Schedule: []Step{{From: hour(1), Power: -1}}}
		}, []string{"schedule[0].mw"}},
		{"several at once", func() Request { return Request{Kind: Reservation} }, []string{"pool", "start", "end", "gpus"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tt.req()
			r.Normalize()
			err := r.Validate(now, horizon)
			if tt.fields == nil {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			var ve *valid.Error
			if !errors.As(err, &ve) {
				t.Fatalf("Validate() = %v, want a *valid.Error", err)
			}
			var got []string
			for _, i := range ve.Issues {
				if !slices.Contains(got, i.Field) {
					got = append(got, i.Field)
				}
			}
			for _, f := range tt.fields {
				if !slices.Contains(got, f) {
					t.Errorf("Validate() issues name %v, want %s among them (%v)", got, f, err)
				}
			}
		})
	}
}

func TestStateAt(t *testing.T) {
	l := Lease{Start: hour(2), End: hour(4), State: Scheduled}
	for _, tt := range []struct {
		at   time.Time
		want State
	}{
		{hour(1), Scheduled}, {hour(2), Active}, {hour(4).Add(-time.Nanosecond), Active}, {hour(4), Ended}, {hour(9), Ended},
	} {
		if got := l.StateAt(tt.at); got != tt.want {
			t.Errorf("StateAt(%v) = %s, want %s", tt.at, got, tt.want)
		}
	}
	l.State = Cancelled
	if got := l.StateAt(hour(3)); got != Cancelled {
		t.Errorf("cancelled lease StateAt = %s, want cancelled", got)
	}
	for _, s := range States {
		if s.Terminal() && len(transitions[s]) > 0 {
			t.Errorf("terminal state %s has transitions %v", s, transitions[s])
		}
	}
	if CanTransition(Ended, Active) || !CanTransition(Scheduled, Cancelled) {
		t.Error("CanTransition: ended → active allowed or scheduled → cancelled refused")
	}
}

// TestSegmentsMatchGPUsAt checks on random ramps that Segments and GPUsAt
// describe the same schedule: every hour of [Start, End) holds the GPUs of
// the one segment covering it, or none when the step is zero; segments are
// ordered and disjoint, and MaxGPUs is their largest.
func TestSegmentsMatchGPUsAt(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		hours := rapid.IntRange(1, 200).Draw(t, "hours")
		froms := rapid.SliceOfDistinct(rapid.IntRange(1, hours), rapid.ID[int]).Draw(t, "froms")
		froms = slices.DeleteFunc(froms, func(h int) bool { return h >= hours })
		froms = append(froms, 0)
		slices.Sort(froms)
		l := Lease{Start: hour(0), End: hour(hours)}
		for _, f := range froms {
			l.Schedule = append(l.Schedule, Step{From: hour(f), GPUs: unit.GPUs(rapid.IntRange(0, 64).Draw(t, "gpus"))})
		}
		segs := l.Segments()
		var maxSeg unit.GPUs
		for i, s := range segs {
			if !s.Start.Before(s.End) || s.GPUs <= 0 || i > 0 && s.Start.Before(segs[i-1].End) {
				t.Fatalf("segment %d = %+v out of order, empty or zero", i, s)
			}
			maxSeg = max(maxSeg, s.GPUs)
		}
		if l.MaxGPUs() != maxSeg {
			t.Fatalf("MaxGPUs = %d, largest segment %d", l.MaxGPUs(), maxSeg)
		}
		for h := -1; h <= hours; h++ {
			at := hour(h)
			var want unit.GPUs
			for _, s := range segs {
				if !at.Before(s.Start) && at.Before(s.End) {
					want = s.GPUs
				}
			}
			if got := l.GPUsAt(at); got != want {
				t.Fatalf("GPUsAt(hour %d) = %d, segments say %d", h, got, want)
			}
		}
	})
}

func TestRuns(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		ords := rapid.SliceOfDistinct(rapid.Int64Range(1, 100), rapid.ID[int64]).Draw(t, "ordinals")
		slices.Sort(ords)
		runs := Runs(ords)
		var back []int64
		for i, r := range runs {
			if r[0] >= r[1] || i > 0 && r[0] <= runs[i-1][1] {
				t.Fatalf("run %d = %v empty, overlapping or not maximal (%v)", i, r, runs)
			}
			for o := r[0]; o < r[1]; o++ {
				back = append(back, o)
			}
		}
		if !slices.Equal(back, ords) && !(len(back) == 0 && len(ords) == 0) {
			t.Fatalf("Runs(%v) = %v, which expands to %v", ords, runs, back)
		}
	})
}

func TestParse(t *testing.T) {
	if k, err := ParseKind("spot"); err != nil || k != Spot {
		t.Errorf("ParseKind(spot) = %q, %v", k, err)
	}
	if _, err := ParsePacking("rack"); err == nil {
		t.Error("ParsePacking(rack): err = nil")
	}
	if i, err := ParseIsolation("dedicated-leaf"); err != nil || i != DedicatedLeaf {
		t.Errorf("ParseIsolation(dedicated-leaf) = %q, %v", i, err)
	}
}

func TestAllocationOverlaps(t *testing.T) {
	a := Allocation{NodeFrom: 1, NodeTo: 5, Start: hour(0), End: hour(2)}
	for _, tt := range []struct {
		b    Allocation
		want bool
	}{
		{Allocation{NodeFrom: 4, NodeTo: 6, Start: hour(1), End: hour(3)}, true},
		{Allocation{NodeFrom: 5, NodeTo: 6, Start: hour(0), End: hour(2)}, false}, // adjacent nodes
		{Allocation{NodeFrom: 1, NodeTo: 5, Start: hour(2), End: hour(3)}, false}, // adjacent time
	} {
		if got := a.Overlaps(tt.b); got != tt.want || tt.b.Overlaps(a) != tt.want {
			t.Errorf("Overlaps(%+v) = %v, want %v (both ways)", tt.b, got, tt.want)
		}
	}
}

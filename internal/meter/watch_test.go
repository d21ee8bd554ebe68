package meter_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"pgregory.net/rapid"

	"github.com/neocloud/neocloud/internal/meter"
)

// watchT0 is the fixed origin of every watch test: no clocks, no sleeps.
var watchT0 = time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)

// watchAt returns watchT0 plus sec seconds.
func watchAt(sec int) time.Time { return watchT0.Add(time.Duration(sec) * time.Second) }

// watchStep is one call on a Watch and the findings it must return.
type watchStep struct {
	observe *meter.Reading
	stale   time.Time // when observe is nil and clear and forget are empty
	clear   string
	forget  string
	want    []meter.Finding
}

func obs(r meter.Reading, want ...meter.Finding) watchStep { return watchStep{observe: &r, want: want} }
func staleAt(sec int, want ...meter.Finding) watchStep {
	return watchStep{stale: watchAt(sec), want: want}
}
func clearNode(node string) watchStep  { return watchStep{clear: node} }
func forgetNode(node string) watchStep { return watchStep{forget: node} }

func (s watchStep) String() string {
	switch {
	case s.observe != nil:
		return fmt.Sprintf("Observe(%+v)", *s.observe)
	case s.clear != "":
		return "Clear(" + s.clear + ")"
	case s.forget != "":
		return "Forget(" + s.forget + ")"
	}
	return "Stale(" + s.stale.Format(time.RFC3339) + ")"
}

func runWatch(t *testing.T, w *meter.Watch, steps []watchStep) {
	t.Helper()
	for i, s := range steps {
		var got []meter.Finding
		switch {
		case s.observe != nil:
			got = w.Observe(*s.observe)
		case s.clear != "":
			w.Clear(s.clear)
		case s.forget != "":
			w.Forget(s.forget)
		default:
			got = w.Stale(s.stale)
		}
		if diff := cmp.Diff(s.want, got); diff != "" {
			t.Errorf("step %d %v (-want +got):\n%s", i, s, diff)
		}
	}
}

func failed(node string, gpu, sec int, rule, detail string) meter.Finding {
	return meter.Finding{Node: node, GPU: gpu, At: watchAt(sec), Severity: meter.SeverityFailed, Rule: rule, Detail: detail}
}

func degraded(node string, gpu, sec int, rule, detail string) meter.Finding {
	return meter.Finding{Node: node, GPU: gpu, At: watchAt(sec), Severity: meter.SeverityDegraded, Rule: rule, Detail: detail}
}

func TestWatchRules(t *testing.T) {
	t.Parallel()
	std := meter.WatchOptions{Policy: meter.DefaultHealthPolicy, Interval: 15 * time.Second, StaleAfter: 3}
	withPower := std
	withPower.PowerDegrades = true
	noThermal := std
	noThermal.Policy.ThermalDegrades = false
	xid13 := std
	xid13.Policy.FatalXIDs = []int{13}

	type R = meter.Reading
	tests := map[string]struct {
		opts  meter.WatchOptions
		steps []watchStep
	}{
		"fatal XID fails the node": {std, []watchStep{
			obs(R{Node: "n1", GPU: 3, Time: watchAt(0)}),
			obs(R{Node: "n1", GPU: 3, Time: watchAt(15), XID: 79},
				failed("n1", 3, 15, meter.RuleXID, "XID 79 on GPU 3 (GPU has fallen off the bus)")),
		}},
		"XID on a first reading is reported": {std, []watchStep{
			obs(R{Node: "n1", GPU: 0, Time: watchAt(0), XID: 48},
				failed("n1", 0, 0, meter.RuleXID, "XID 48 on GPU 0 (double-bit ECC error)")),
		}},
		"tenant program faults are not findings": {std, []watchStep{
			obs(R{Node: "n1", GPU: 0, Time: watchAt(0), XID: 13}),
			obs(R{Node: "n1", GPU: 0, Time: watchAt(15), XID: 31}),
			obs(R{Node: "n1", GPU: 1, Time: watchAt(15), XID: 43}),
		}},
		"policy chooses the fatal codes": {xid13, []watchStep{
			obs(R{Node: "n1", GPU: 0, Time: watchAt(0), XID: 79}),
			obs(R{Node: "n1", GPU: 0, Time: watchAt(15), XID: 13},
				failed("n1", 0, 15, meter.RuleXID, "XID 13 on GPU 0 (see NVIDIA's XID catalog)")),
		}},
		"repeated XID is reported once per node": {std, []watchStep{
			obs(R{Node: "n1", GPU: 3, Time: watchAt(0), XID: 79},
				failed("n1", 3, 0, meter.RuleXID, "XID 79 on GPU 3 (GPU has fallen off the bus)")),
			obs(R{Node: "n1", GPU: 3, Time: watchAt(10), XID: 79}),
			obs(R{Node: "n1", GPU: 3, Time: watchAt(20), XID: 79}),
			obs(R{Node: "n1", GPU: 5, Time: watchAt(20), XID: 95}),
			obs(R{Node: "n2", GPU: 3, Time: watchAt(20), XID: 79},
				failed("n2", 3, 20, meter.RuleXID, "XID 79 on GPU 3 (GPU has fallen off the bus)")),
		}},
		"row-remap failure fails the node once": {std, []watchStep{
			obs(R{Node: "n1", GPU: 2, Time: watchAt(0), RemapFailure: true},
				failed("n1", 2, 0, meter.RuleRowRemap, "row-remap failure on GPU 2 (a faulty memory row could not be remapped)")),
			obs(R{Node: "n1", GPU: 2, Time: watchAt(15), RemapFailure: true}),
		}},
		"growing thermal counter degrades the node once": {std, []watchStep{
			obs(R{Node: "n1", GPU: 1, Time: watchAt(0), ThermalViolationUS: 5_000_000}),
			obs(R{Node: "n1", GPU: 1, Time: watchAt(15), ThermalViolationUS: 5_000_000}),
			obs(R{Node: "n1", GPU: 1, Time: watchAt(30), ThermalViolationUS: 6_500_000},
				degraded("n1", 1, 30, meter.RuleThermal, "thermal throttling on GPU 1: violation counter grew 1.5s in 15s")),
			obs(R{Node: "n1", GPU: 1, Time: watchAt(45), ThermalViolationUS: 9_000_000}),
		}},
		"thermal counter is per GPU": {std, []watchStep{
			obs(R{Node: "n1", GPU: 0, Time: watchAt(0), ThermalViolationUS: 100}),
			obs(R{Node: "n1", GPU: 1, Time: watchAt(0), ThermalViolationUS: 50}),
			obs(R{Node: "n1", GPU: 1, Time: watchAt(15), ThermalViolationUS: 50}),
			obs(R{Node: "n1", GPU: 0, Time: watchAt(15), ThermalViolationUS: 100}),
		}},
		"thermal counter reset is not growth": {std, []watchStep{
			obs(R{Node: "n1", GPU: 0, Time: watchAt(0), ThermalViolationUS: 9_000}),
			obs(R{Node: "n1", GPU: 0, Time: watchAt(15), ThermalViolationUS: 0}),
			obs(R{Node: "n1", GPU: 0, Time: watchAt(30), ThermalViolationUS: 10},
				degraded("n1", 0, 30, meter.RuleThermal, "thermal throttling on GPU 0: violation counter grew 10µs in 15s")),
		}},
		"thermal rule off in the policy": {noThermal, []watchStep{
			obs(R{Node: "n1", GPU: 0, Time: watchAt(0)}),
			obs(R{Node: "n1", GPU: 0, Time: watchAt(15), ThermalViolationUS: 1_000_000}),
		}},
		"power growth ignored by default": {std, []watchStep{
			obs(R{Node: "n1", GPU: 0, Time: watchAt(0)}),
			obs(R{Node: "n1", GPU: 0, Time: watchAt(15), PowerViolationUS: 1_000_000}),
		}},
		"power growth degrades when asked": {withPower, []watchStep{
			obs(R{Node: "n1", GPU: 0, Time: watchAt(0), PowerViolationUS: 7}),
			obs(R{Node: "n1", GPU: 0, Time: watchAt(15), PowerViolationUS: 2}), // reset
			obs(R{Node: "n1", GPU: 0, Time: watchAt(30), PowerViolationUS: 250_002},
				degraded("n1", 0, 30, meter.RulePower, "power throttling on GPU 0: violation counter grew 250ms in 15s")),
			obs(R{Node: "n1", GPU: 0, Time: watchAt(45), PowerViolationUS: 999_999}),
		}},
		"one reading, several rules, in rule order": {withPower, []watchStep{
			obs(R{Node: "n1", GPU: 4, Time: watchAt(0)}),
			obs(R{Node: "n1", GPU: 4, Time: watchAt(15), XID: 79, RemapFailure: true, ThermalViolationUS: 1000, PowerViolationUS: 2000},
				failed("n1", 4, 15, meter.RuleXID, "XID 79 on GPU 4 (GPU has fallen off the bus)"),
				failed("n1", 4, 15, meter.RuleRowRemap, "row-remap failure on GPU 4 (a faulty memory row could not be remapped)"),
				degraded("n1", 4, 15, meter.RuleThermal, "thermal throttling on GPU 4: violation counter grew 1ms in 15s"),
				degraded("n1", 4, 15, meter.RulePower, "power throttling on GPU 4: violation counter grew 2ms in 15s")),
		}},
		"late reading is not compared with a newer one": {std, []watchStep{
			obs(R{Node: "n1", GPU: 0, Time: watchAt(30), ThermalViolationUS: 100}),
			// Older and higher: growth only if compared backwards.
			obs(R{Node: "n1", GPU: 0, Time: watchAt(15), ThermalViolationUS: 200}),
			// Older and lower: must not become the base for the next one.
			obs(R{Node: "n1", GPU: 0, Time: watchAt(20), ThermalViolationUS: 50}),
			obs(R{Node: "n1", GPU: 0, Time: watchAt(45), ThermalViolationUS: 100}),
			obs(R{Node: "n1", GPU: 0, Time: watchAt(60), ThermalViolationUS: 101},
				degraded("n1", 0, 60, meter.RuleThermal, "thermal throttling on GPU 0: violation counter grew 1µs in 15s")),
		}},
		"duplicate reading is not growth": {std, []watchStep{
			obs(R{Node: "n1", GPU: 0, Time: watchAt(0), ThermalViolationUS: 100}),
			obs(R{Node: "n1", GPU: 0, Time: watchAt(0), ThermalViolationUS: 100}),
			// Same identity, other values: still a duplicate.
			obs(R{Node: "n1", GPU: 0, Time: watchAt(0), ThermalViolationUS: 900}),
			obs(R{Node: "n1", GPU: 0, Time: watchAt(0).Add(300 * time.Microsecond), ThermalViolationUS: 900}),
		}},
		"late reading still shows a fatal XID": {std, []watchStep{
			obs(R{Node: "n1", GPU: 0, Time: watchAt(60)}),
			obs(R{Node: "n1", GPU: 0, Time: watchAt(15), XID: 64},
				failed("n1", 0, 15, meter.RuleXID, "XID 64 on GPU 0 (ECC page retirement or row remap failed)")),
			obs(R{Node: "n1", GPU: 0, Time: watchAt(16), RemapFailure: true},
				failed("n1", 0, 16, meter.RuleRowRemap, "row-remap failure on GPU 0 (a faulty memory row could not be remapped)")),
		}},
		"clear reports a problem again": {std, []watchStep{
			obs(R{Node: "n1", GPU: 3, Time: watchAt(0), XID: 79},
				failed("n1", 3, 0, meter.RuleXID, "XID 79 on GPU 3 (GPU has fallen off the bus)")),
			obs(R{Node: "n1", GPU: 3, Time: watchAt(10), XID: 79, ThermalViolationUS: 1_000_000},
				degraded("n1", 3, 10, meter.RuleThermal, "thermal throttling on GPU 3: violation counter grew 1s in 10s")),
			obs(R{Node: "n1", GPU: 3, Time: watchAt(20), XID: 79, ThermalViolationUS: 2_000_000}),
			clearNode("n1"),
			clearNode("unknown"),
			// Counters are kept across Clear: no growth, no finding.
			obs(R{Node: "n1", GPU: 3, Time: watchAt(30), ThermalViolationUS: 2_000_000}),
			obs(R{Node: "n1", GPU: 3, Time: watchAt(40), XID: 79, ThermalViolationUS: 2_000_001},
				failed("n1", 3, 40, meter.RuleXID, "XID 79 on GPU 3 (GPU has fallen off the bus)"),
				degraded("n1", 3, 40, meter.RuleThermal, "thermal throttling on GPU 3: violation counter grew 1µs in 10s")),
		}},
		"clear touches only its node": {std, []watchStep{
			obs(R{Node: "n1", GPU: 0, Time: watchAt(0), XID: 79},
				failed("n1", 0, 0, meter.RuleXID, "XID 79 on GPU 0 (GPU has fallen off the bus)")),
			obs(R{Node: "n2", GPU: 0, Time: watchAt(0), XID: 79},
				failed("n2", 0, 0, meter.RuleXID, "XID 79 on GPU 0 (GPU has fallen off the bus)")),
			clearNode("n2"),
			obs(R{Node: "n1", GPU: 0, Time: watchAt(10), XID: 79}),
			obs(R{Node: "n2", GPU: 0, Time: watchAt(10), XID: 79},
				failed("n2", 0, 10, meter.RuleXID, "XID 79 on GPU 0 (GPU has fallen off the bus)")),
		}},
		"forget starts afresh": {std, []watchStep{
			obs(R{Node: "n1", GPU: 0, Time: watchAt(0), XID: 79, ThermalViolationUS: 5},
				failed("n1", 0, 0, meter.RuleXID, "XID 79 on GPU 0 (GPU has fallen off the bus)")),
			forgetNode("n1"),
			forgetNode("unknown"),
			staleAt(1000),
			// No previous reading any more: no growth.
			obs(R{Node: "n1", GPU: 0, Time: watchAt(1000), XID: 79, ThermalViolationUS: 50},
				failed("n1", 0, 1000, meter.RuleXID, "XID 79 on GPU 0 (GPU has fallen off the bus)")),
		}},
		"GPU index out of range still gets the XID rule": {std, []watchStep{
			obs(R{Node: "n1", GPU: -1, Time: watchAt(0)}),
			obs(R{Node: "n1", GPU: 999, Time: watchAt(0)}),
			obs(R{Node: "n1", GPU: 999, Time: watchAt(15), XID: 79, ThermalViolationUS: 7},
				failed("n1", 999, 15, meter.RuleXID, "XID 79 on GPU 999 (GPU has fallen off the bus)")),
		}},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			runWatch(t, meter.NewWatch(tt.opts), tt.steps)
		})
	}
}

func TestWatchStale(t *testing.T) {
	t.Parallel()
	std := meter.WatchOptions{Policy: meter.DefaultHealthPolicy, Interval: 15 * time.Second, StaleAfter: 3}
	noData := func(node string, sec int, detail string) meter.Finding {
		f := failed(node, -1, sec, meter.RuleNoData, detail)
		return f
	}
	type R = meter.Reading
	tests := map[string]struct {
		opts  meter.WatchOptions
		steps []watchStep
	}{
		"nothing watched, nothing stale": {std, []watchStep{
			staleAt(0),
			staleAt(1_000_000),
		}},
		"silent beyond the limit, reported once": {std, []watchStep{
			obs(R{Node: "n1", GPU: 0, Time: watchAt(0)}),
			obs(R{Node: "n1", GPU: 1, Time: watchAt(1)}),
			staleAt(46), // 45s since GPU 1's reading: at the limit, not past it
			staleAt(47, noData("n1", 47, "no readings for 46s (more than 3 intervals of 15s)")),
			staleAt(100),
			staleAt(10_000),
		}},
		"a new reading ends silence; the next one is reported again": {std, []watchStep{
			obs(R{Node: "n1", GPU: 0, Time: watchAt(0)}),
			staleAt(60, noData("n1", 60, "no readings for 1m0s (more than 3 intervals of 15s)")),
			obs(R{Node: "n1", GPU: 0, Time: watchAt(61)}),
			staleAt(100),
			staleAt(107, noData("n1", 107, "no readings for 46s (more than 3 intervals of 15s)")),
		}},
		"a late old reading does not end silence": {std, []watchStep{
			obs(R{Node: "n1", GPU: 0, Time: watchAt(100)}),
			staleAt(200, noData("n1", 200, "no readings for 1m40s (more than 3 intervals of 15s)")),
			obs(R{Node: "n1", GPU: 0, Time: watchAt(50)}),
			staleAt(300),
		}},
		"nodes in name order, each on its own clock": {std, []watchStep{
			obs(R{Node: "n3", GPU: 0, Time: watchAt(0)}),
			obs(R{Node: "n1", GPU: 0, Time: watchAt(5)}),
			obs(R{Node: "n2", GPU: 0, Time: watchAt(40)}),
			staleAt(60,
				noData("n1", 60, "no readings for 55s (more than 3 intervals of 15s)"),
				noData("n3", 60, "no readings for 1m0s (more than 3 intervals of 15s)")),
			staleAt(90, noData("n2", 90, "no readings for 50s (more than 3 intervals of 15s)")),
		}},
		"clear reports a silent node again": {std, []watchStep{
			obs(R{Node: "n1", GPU: 0, Time: watchAt(0)}),
			staleAt(50, noData("n1", 50, "no readings for 50s (more than 3 intervals of 15s)")),
			staleAt(55),
			clearNode("n1"),
			staleAt(56, noData("n1", 56, "no readings for 56s (more than 3 intervals of 15s)")),
		}},
		"forgotten node is not stale": {std, []watchStep{
			obs(R{Node: "n1", GPU: 0, Time: watchAt(0)}),
			forgetNode("n1"),
			staleAt(1000),
		}},
		"defaults: 3 intervals of 15s": {meter.WatchOptions{Interval: -time.Second, StaleAfter: -2}, []watchStep{
			obs(R{Node: "n1", GPU: 0, Time: watchAt(0)}),
			staleAt(45),
			staleAt(46, noData("n1", 46, "no readings for 46s (more than 3 intervals of 15s)")),
		}},
		"own interval and count": {meter.WatchOptions{Interval: time.Second, StaleAfter: 5}, []watchStep{
			obs(R{Node: "n1", GPU: 0, Time: watchAt(0)}),
			staleAt(5),
			{stale: watchAt(5).Add(time.Millisecond), want: []meter.Finding{{Node: "n1", GPU: -1, At: watchAt(5).Add(time.Millisecond),
				Severity: meter.SeverityFailed, Rule: meter.RuleNoData, Detail: "no readings for 5.001s (more than 5 intervals of 1s)"}}},
		}},
		"stale and rule findings are independent": {std, []watchStep{
			obs(R{Node: "n1", GPU: 0, Time: watchAt(0), XID: 79},
				failed("n1", 0, 0, meter.RuleXID, "XID 79 on GPU 0 (GPU has fallen off the bus)")),
			staleAt(50, noData("n1", 50, "no readings for 50s (more than 3 intervals of 15s)")),
			obs(R{Node: "n1", GPU: 0, Time: watchAt(51), XID: 79}),
		}},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			runWatch(t, meter.NewWatch(tt.opts), tt.steps)
		})
	}
}

func TestWatchXIDMeaning(t *testing.T) {
	t.Parallel()
	for _, xid := range meter.DefaultFatalXIDs {
		if got := meter.XIDMeaning(xid); got == meter.XIDMeaning(-1) {
			t.Errorf("XIDMeaning(%d) = %q, the fallback; every default fatal code needs its own words", xid, got)
		}
	}
}

// TestWatchProperties checks, for any stream of readings, that each
// (node, rule) is reported at most once, and that delivering the whole
// stream again (a retried push) reports nothing new.
func TestWatchProperties(t *testing.T) {
	t.Parallel()
	rapid.Check(t, func(t *rapid.T) {
		opts := meter.WatchOptions{
			Policy:        meter.HealthPolicy{ThermalDegrades: rapid.Bool().Draw(t, "thermal")},
			PowerDegrades: rapid.Bool().Draw(t, "power"),
		}
		reading := rapid.Custom(func(t *rapid.T) meter.Reading {
			return meter.Reading{
				Node:               rapid.SampledFrom([]string{"a", "b", "c"}).Draw(t, "node"),
				GPU:                rapid.IntRange(0, 3).Draw(t, "gpu"),
				Time:               watchAt(rapid.IntRange(0, 120).Draw(t, "sec")),
				XID:                rapid.SampledFrom([]int{0, 0, 0, 13, 79, 95}).Draw(t, "xid"),
				RemapFailure:       rapid.IntRange(0, 9).Draw(t, "remap") == 0,
				ThermalViolationUS: rapid.Int64Range(0, 5).Draw(t, "thermal_us"),
				PowerViolationUS:   rapid.Int64Range(0, 5).Draw(t, "power_us"),
			}
		})
		stream := rapid.SliceOf(reading).Draw(t, "stream")
		w := meter.NewWatch(opts)
		seen := map[[2]string]bool{}
		for _, r := range stream {
			for _, f := range w.Observe(r) {
				key := [2]string{f.Node, f.Rule}
				if seen[key] {
					t.Fatalf("%s reported twice for %s: %+v", f.Rule, f.Node, f)
				}
				seen[key] = true
				if f.Node != r.Node || f.GPU != r.GPU || !f.At.Equal(r.Time) {
					t.Fatalf("finding %+v is not about reading %+v", f, r)
				}
			}
		}
		for _, r := range stream {
			if got := w.Observe(r); got != nil {
				t.Fatalf("replayed reading %+v reported %+v", r, got)
			}
		}
	})
}

// BenchmarkWatchObserve measures the ingestion path: 1,000 nodes of 8
// GPUs reporting every 15 s with nothing wrong.
func BenchmarkWatchObserve(b *testing.B) {
	const nodes, gpus = 1000, 8
	w := meter.NewWatch(meter.WatchOptions{Policy: meter.DefaultHealthPolicy, PowerDegrades: true})
	round := make([]meter.Reading, 0, nodes*gpus)
	for n := range nodes {
		for g := range gpus {
			round = append(round, meter.Reading{Node: fmt.Sprintf("h100-a-n%04d", n), GPU: g, UtilPct: 90,
				ThermalViolationUS: 1_000, PowerViolationUS: 2_000})
		}
	}
	i := 0
	for b.Loop() {
		r := round[i%len(round)]
		r.Time = watchT0.Add(time.Duration(i/len(round)) * 15 * time.Second)
		if f := w.Observe(r); f != nil {
			b.Fatalf("unexpected findings %v", f)
		}
		i++
	}
}

package meter

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"pgregory.net/rapid"
)

// memSamples is Samples over sorted slices, for tests.
type memSamples map[GPU][]Point

func (m memSamples) Last(g GPU) (Point, bool, error) {
	ps := m[g]
	if len(ps) == 0 {
		return Point{}, false, nil
	}
	return ps[len(ps)-1], true, nil
}

func (m memSamples) Around(g GPU, t int64) (prev Point, okPrev bool, next Point, okNext bool, at bool, err error) {
	ps := m[g]
	i, found := slices.BinarySearchFunc(ps, t, func(p Point, t int64) int { return int(p.T - t) })
	if found {
		return Point{}, false, Point{}, false, true, nil
	}
	if i > 0 {
		prev, okPrev = ps[i-1], true
	}
	if i < len(ps) {
		next, okNext = ps[i], true
	}
	return prev, okPrev, next, okNext, false, nil
}

func (m memSamples) Put(g GPU, p Point) error {
	ps := m[g]
	i, _ := slices.BinarySearchFunc(ps, p.T, func(p Point, t int64) int { return int(p.T - t) })
	m[g] = slices.Insert(ps, i, p)
	return nil
}

// memHolders is Holders over a fixed list per node.
type memHolders map[int64][]Span

func (m memHolders) Spans(node int64, from, to int64, dst []Span) []Span {
	for _, s := range m[node] {
		if s.From < to && from < s.To {
			dst = append(dst, s)
		}
	}
	return dst
}

var t0 = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC).UnixMilli()

// truth computes the rollup straight from the distinct readings: each
// GPU's readings sorted by time, every consecutive pair contributing once.
func truth(cfg Config, nodes map[int64]NodeRef, h memHolders, rs map[GPU][]Point) *Acc {
	acc := &Acc{}
	for g, ps := range rs {
		ps = slices.Clone(ps)
		slices.SortFunc(ps, func(a, b Point) int { return int(a.T - b.T) })
		ps = slices.CompactFunc(ps, func(a, b Point) bool { return a.T == b.T })
		spans := h.Spans(g.Node, 0, 1<<62, nil)
		for i, p := range ps {
			if i > 0 {
				cfg.Contribute(acc, nodes[g.Node], ps[i-1], p, spans, 1)
			}
			acc.Add(cfg.keyAt(nodes[g.Node], p.T-1, p.UtilPct, spans), Usage{Readings: 1})
		}
	}
	return acc
}

// TestLedgerExactUnderFaults checks that usage totals are exact — nothing
// double-counted, nothing lost — when 20% of batches arrive twice, 10%
// arrive out of order and 5% arrive late, against the rollup computed from
// the distinct readings.
func TestLedgerExactUnderFaults(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		cfg := Config{MaxGap: 30 * time.Second, UsedPct: 5, LateWindow: 48 * time.Hour}.withDefaults()
		nodes := map[int64]NodeRef{1: {1, "h100"}, 2: {2, "h100"}, 3: {3, "gb200"}}
		// Leases come and go on nodes 1 and 2, at any millisecond.
		h := memHolders{}
		for n := int64(1); n <= 2; n++ {
			at := t0
			for i := range rapid.IntRange(0, 4).Draw(rt, "spans") {
				from := at + rapid.Int64Range(0, 3*hourMs).Draw(rt, "gap")
				to := from + rapid.Int64Range(1, 3*hourMs).Draw(rt, "len")
				h[n] = append(h[n], Span{ID: "a" + string(rune('0'+i)), From: from, To: to, LeaseID: "l" + string(rune('0'+i)), TenantID: "t"})
				at = to
			}
		}
		// Scrapes every ~10s for ~6h; energy grows, sometimes resets.
		seed := rapid.Uint64().Draw(rt, "seed")
		rnd := rand.New(rand.NewPCG(seed, 1))
		type batch []struct {
			g GPU
			p Point
		}
		var batches []batch
		all := map[GPU][]Point{}
		energy := map[GPU]int64{}
		steps := rapid.IntRange(1, 2000).Draw(rt, "steps")
		at := t0 + rnd.Int64N(hourMs)
		for range steps {
			at += 3 + rnd.Int64N(12_000) // jitter below keeps times distinct per GPU
			if rnd.IntN(200) == 0 {
				at += rnd.Int64N(2 * hourMs) // an outage
			}
			var b batch
			for n := int64(1); n <= 3; n++ {
				for gi := range 2 {
					g := GPU{n, gi}
					energy[g] += rnd.Int64N(7_000_000)
					if rnd.IntN(300) == 0 {
						energy[g] = rnd.Int64N(1000) // driver reload
					}
					p := Point{T: at + rnd.Int64N(3), UtilPct: rnd.IntN(101), EnergyMJ: energy[g],
						XID: []int{0, 0, 0, 0, 79, 13}[rnd.IntN(6)], ThermalViolationUS: int64(rnd.IntN(3)) * 1000}
					b = append(b, struct {
						g GPU
						p Point
					}{g, p})
					all[g] = append(all[g], p)
				}
			}
			batches = append(batches, b)
		}
		// Faults: duplicates, swaps, late deliveries.
		var sent []batch
		var late []batch
		for _, b := range batches {
			switch r := rnd.IntN(100); {
			case r < 5:
				late = append(late, b)
				continue
			case r < 25:
				sent = append(sent, b, b)
			default:
				sent = append(sent, b)
			}
		}
		for i := range sent {
			if rnd.IntN(10) == 0 {
				j := min(len(sent)-1, i+1+rnd.IntN(5))
				sent[i], sent[j] = sent[j], sent[i]
			}
		}
		sent = append(sent, late...)

		l, err := NewLedger(cfg)
		if err != nil {
			rt.Fatal(err)
		}
		st := memSamples{}
		got := &Acc{}
		now := at + 1000
		var res Result
		for i, b := range sent {
			for _, x := range b {
				r, err := l.Apply(st, h, nodes[x.g.Node], x.g, x.p, now, got)
				if err != nil {
					rt.Fatal(err)
				}
				res.Add(r)
			}
			if i%97 == 0 {
				l.Reset() // the cache is an optimisation only
			}
		}
		want := truth(cfg, nodes, h, all)
		if diff := cmp.Diff(want.Rows(), got.Rows()); diff != "" {
			rt.Fatalf("rollup (-truth +ledger):\n%s", diff)
		}
		distinct := 0
		for _, ps := range st {
			distinct += len(ps)
		}
		if res.Accepted != distinct || res.TooLate+res.TooEarly != 0 {
			rt.Fatalf("result %+v, %d distinct readings stored", res, distinct)
		}
	})
}

func TestContributeSplitsExactly(t *testing.T) {
	cfg := DefaultConfig
	node := NodeRef{7, "h100"}
	spans := []Span{{ID: "a", From: t0 + hourMs - 4000, To: t0 + hourMs + 2000, LeaseID: "l1", TenantID: "t1"}}
	acc := &Acc{}
	prev := Point{T: t0 + hourMs - 10_000, EnergyMJ: 1_000}
	cur := Point{T: t0 + hourMs + 5_000, EnergyMJ: 1_000 + 15_001, UtilPct: 50}
	cfg.Contribute(acc, node, prev, cur, spans, 1)
	h0, h1 := t0, t0+hourMs
	want := []Row{
		{UsageKey{h0, "h100", UseInternal, "", ""}, Usage{GPUms: 6000, UsedMs: 6000, HealthyMs: 6000, EnergyMJ: 6000}},
		{UsageKey{h0, "h100", UseLease, "l1", "t1"}, Usage{GPUms: 4000, UsedMs: 4000, HealthyMs: 4000, EnergyMJ: 10000 - 6000}},
		{UsageKey{h1, "h100", UseInternal, "", ""}, Usage{GPUms: 3000, UsedMs: 3000, HealthyMs: 3000, EnergyMJ: 15001 - 12000}},
		{UsageKey{h1, "h100", UseLease, "l1", "t1"}, Usage{GPUms: 2000, UsedMs: 2000, HealthyMs: 2000, EnergyMJ: 12000 - 10000}},
	}
	if diff := cmp.Diff(want, acc.Rows()); diff != "" {
		t.Errorf("(-want +got)\n%s", diff)
	}
	// Undo is exact.
	cfg.Contribute(acc, node, prev, cur, spans, -1)
	if rows := acc.Rows(); len(rows) != 0 {
		t.Errorf("after undo: %v", rows)
	}
	// A reset: the new value is what was used since.
	acc = &Acc{}
	cfg.Contribute(acc, node, Point{T: t0, EnergyMJ: 9e12}, Point{T: t0 + 10_000, EnergyMJ: 500}, nil, 1)
	if got := acc.Rows()[0].EnergyMJ; got != 500 {
		t.Errorf("energy after reset = %d, want 500", got)
	}
	// A gap longer than MaxGap covers only MaxGap.
	acc = &Acc{}
	cfg.Contribute(acc, node, Point{T: t0}, Point{T: t0 + 60_000, XID: 79}, nil, 1)
	if got := acc.Rows()[0].Usage; got != (Usage{GPUms: 30_000}) {
		t.Errorf("gap: %+v, want 30s covered, unhealthy, idle", got)
	}
}

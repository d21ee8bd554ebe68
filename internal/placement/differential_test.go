package placement

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/neocloud/neocloud/internal/lease"
)

// genFleet draws a small fleet: pool "r/P" in 2 pods of 2-4 leaf groups in
// all, NVLink domains of 1-3 nodes (some incomplete), at most 14 nodes of
// 10 W each, each leaf group in one of 1-2 power domains; sometimes a node
// or two of pool "r/Q" sharing a leaf group; some nodes unschedulable.
func genFleet(t *rapid.T) *refFleet {
	f := &refFleet{budgets: map[string]int64{}, origin: t0, slots: 48}
	leaves := rapid.IntRange(2, 4).Draw(t, "leaves")
	size := rapid.IntRange(1, 3).Draw(t, "nvlink")
	doms := rapid.IntRange(1, 2).Draw(t, "domains")
	o := int64(1)
	add := func(pool, pod, leaf, nv, dom string, w int64) {
		f.nodes = append(f.nodes, Node{Ordinal: o, Name: fmt.Sprintf("n%d", o), Pool: pool, GPUs: 8, PowerW: w,
			PowerDomain: dom, Pod: pod, Leaf: leaf, NVLink: nv, Schedulable: rapid.IntRange(0, 9).Draw(t, "sched") > 0})
		o++
	}
	for l := range leaves {
		p := l % 2
		if l >= 2 {
			p = rapid.IntRange(0, 1).Draw(t, "pod")
		}
		pod := fmt.Sprintf("r/p%d", p)
		leaf := fmt.Sprintf("%s/l%d", pod, l)
		dom := fmt.Sprintf("r/d%d", rapid.IntRange(0, doms-1).Draw(t, "dom"))
		for r := range rapid.IntRange(1, 3).Draw(t, "racks") {
			n := size
			if size > 1 && rapid.IntRange(0, 4).Draw(t, "incomplete") == 0 {
				n--
			}
			if len(f.nodes)+n > 14 {
				break
			}
			for range n {
				add("r/P", pod, leaf, fmt.Sprintf("%s/r%d", leaf, r), dom, 10)
			}
		}
		if len(f.nodes) < 14 && rapid.IntRange(0, 5).Draw(t, "other pool") == 0 {
			add("r/Q", pod, leaf, "", dom, 7)
		}
	}
	for d := range doms {
		dom := fmt.Sprintf("r/d%d", d)
		var full int64
		for _, n := range f.nodes {
			if n.PowerDomain == dom {
				full += n.PowerW
			}
		}
		f.budgets[dom] = rapid.Int64Range(0, full+10).Draw(t, "budget")
	}
	return f
}

// genTime draws an instant in hours from t0, sometimes off the hour.
func genTime(t *rapid.T, label string, lo, hi int) time.Time {
	at := hr(rapid.IntRange(lo, hi).Draw(t, label))
	if rapid.IntRange(0, 4).Draw(t, label+" off the hour") == 0 {
		at = at.Add(30 * time.Minute)
	}
	return at
}

func genHold(t *rapid.T, f *refFleet, id string) Hold {
	n := int64(len(f.nodes))
	from := rapid.Int64Range(1, n).Draw(t, "from")
	to := min(from+rapid.Int64Range(1, 3).Draw(t, "length"), n+1)
	last, hours := f.span()
	start := genTime(t, "hold start", 0, last)
	end := start.Add(time.Duration(rapid.IntRange(1, hours).Draw(t, "hold hours")) * time.Hour)
	return Hold{ID: id, LeaseID: "l" + id, TenantID: rapid.SampledFrom([]string{"A", "B", "C"}).Draw(t, "tenant"),
		Dedicated: rapid.IntRange(0, 2).Draw(t, "dedicated") == 0, NodeFrom: from, NodeTo: to, Start: start, End: end}
}

func genRequest(t *rapid.T, f *refFleet) Request {
	var pool []Node
	for _, n := range f.nodes {
		if n.Pool == "r/P" {
			pool = append(pool, n)
		}
	}
	last, hours := f.span()
	start := genTime(t, "start", 0, last)
	r := Request{Pool: "r/P", Nodes: rapid.IntRange(1, min(6, len(pool))).Draw(t, "nodes"), Start: start,
		End:       start.Add(time.Duration(rapid.IntRange(1, hours).Draw(t, "hours")) * time.Hour),
		Packing:   rapid.SampledFrom(append([]lease.Packing{""}, lease.Packings...)).Draw(t, "packing"),
		Isolation: rapid.SampledFrom([]lease.Isolation{"", lease.SharedLeaf, lease.DedicatedLeaf}).Draw(t, "isolation"),
		TenantID:  rapid.SampledFrom([]string{"A", "B", "C", "D"}).Draw(t, "tenant")}
	if rapid.IntRange(0, 3).Draw(t, "prefer?") == 0 {
		for _, n := range f.nodes {
			if rapid.Bool().Draw(t, "prefer") {
				r.Prefer = append(r.Prefer, n.Ordinal)
			}
		}
		r.Prefer = append(r.Prefer, 99)
	}
	if rapid.IntRange(0, 4).Draw(t, "near?") == 0 {
		r.Near = rapid.SampledFrom(f.nodes).Draw(t, "near").Ordinal
	}
	if rapid.IntRange(0, 4).Draw(t, "within?") == 0 {
		n := rapid.SampledFrom(pool).Draw(t, "within node")
		r.Within = rapid.SampledFrom([]string{n.Leaf, n.Pod}).Draw(t, "within")
	}
	return r
}

// build returns an index of f's nodes with as many of n drawn holds as do
// not overlap, recording them in f.
func build(t *rapid.T, f *refFleet, n int) *Index {
	ix, err := NewIndex(Topology{Nodes: f.nodes, DomainBudgetW: f.budgets}, f.origin, f.slots)
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		h := genHold(t, f, fmt.Sprintf("h%d", i))
		if err := ix.Add(h); err == nil {
			f.holds = append(f.holds, h)
		} else if !errors.Is(err, ErrOverlap) {
			t.Fatalf("Add(%+v): %v", h, err)
		}
	}
	return ix
}

// TestPlaceDifferential compares Place with brute force on small fleets:
// it places exactly when some subset of nodes obeys every rule (and Fits
// says so), its plans
// obey them, refusals give the first failing reason, and for any, node and
// nvlink-domain packing without Prefer or Near the plan uses as few leaf
// groups as any.
func TestPlaceDifferential(t *testing.T) {
	t.Parallel()
	rapid.Check(t, func(t *rapid.T) { differential(t, genFleet(t)) })
}

// TestPlaceDifferentialLong is TestPlaceDifferential with holds and
// windows of up to 400 hours, which Place bounds from several levels of
// the index's held counts.
func TestPlaceDifferentialLong(t *testing.T) {
	t.Parallel()
	rapid.Check(t, func(t *rapid.T) { differential(t, genLongFleet(t)) })
}

// genLongFleet draws a fleet as genFleet does, for long holds and windows.
func genLongFleet(t *rapid.T) *refFleet {
	f := genFleet(t)
	f.long, f.slots = true, 1000
	return f
}

// differential places requests on an index of f with random holds and
// checks them against brute force.
func differential(t *rapid.T, f *refFleet) {
	ix := build(t, f, rapid.IntRange(0, 8).Draw(t, "holds"))
	for range 4 {
		r := genRequest(t, f)
		want := f.solve(r)
		got, err := Place(ix, r)
		if want.feasible != (err == nil) {
			t.Fatalf("Place(%+v) = %v, %v; brute force feasible = %v", r, got, err, want.feasible)
		}
		if ok, ferr := Fits(ix, r); ferr != nil || ok != want.feasible {
			t.Fatalf("Fits(%+v) = %v, %v; brute force feasible = %v", r, ok, ferr, want.feasible)
		}
		// Decide gives Place's answer without the plan: the same refusal.
		if derr := Decide(ix, r); (derr == nil) != (err == nil) || derr != nil && derr.Error() != err.Error() {
			t.Fatalf("Decide(%+v) = %v; Place refused with %v", r, derr, err)
		}
		// NoReason changes refusals only.
		quiet := r
		quiet.NoReason = true
		if got2, err2 := Place(ix, quiet); (err2 == nil) != (err == nil) || !slices.Equal(got2.Nodes, got.Nodes) {
			t.Fatalf("Place(%+v) = %v, %v; with NoReason %v, %v", r, got, err, got2, err2)
		} else if pe := (*Error)(nil); err2 != nil && (!errors.As(err2, &pe) || pe.Reason != ReasonUnknown && pe.Reason != want.reason) {
			t.Fatalf("Place(%+v) with NoReason refused with %v; want reason %s or %s", r, err2, ReasonUnknown, want.reason)
		}
		if err != nil {
			var pe *Error
			if !errors.As(err, &pe) || pe.Reason != want.reason {
				t.Fatalf("Place(%+v) refused with %v; want reason %s", r, err, want.reason)
			}
			continue
		}
		if msg := f.valid(r, got); msg != "" {
			t.Fatalf("Place(%+v) = %v: %s", r, got, msg)
		}
		loose := r.Packing == "" || r.Packing == lease.PackAny || r.Packing == lease.PackNode || r.Packing == lease.PackNVLinkDomain
		if loose && len(r.Prefer) == 0 && r.Near == 0 && got.LeafGroups != want.minLeaves {
			t.Fatalf("Place(%+v) = %v in %d leaf groups; %d is possible", r, got, got.LeafGroups, want.minLeaves)
		}
		again, _ := Place(ix, r)
		if !slices.Equal(again.Nodes, got.Nodes) {
			t.Fatalf("Place(%+v) gave %v, then %v", r, got.Nodes, again.Nodes)
		}
	}
	if err := ix.Check(); err != nil {
		t.Fatal(err)
	}
}

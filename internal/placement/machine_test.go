package placement

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"pgregory.net/rapid"

	"github.com/neocloud/neocloud/internal/lease"
)

// wideFleet draws a fleet with a leaf group wider than 64 nodes, so that
// masks span several words: pool "r/P" in leaf groups of 70, 66 and 5
// nodes (NVLink domains of 5) over 2 pods and 2 power domains.
func wideFleet(t *rapid.T) *refFleet {
	f := &refFleet{budgets: map[string]int64{"r/d0": rapid.Int64Range(0, 1500).Draw(t, "budget0"),
		"r/d1": rapid.Int64Range(0, 800).Draw(t, "budget1")}, origin: t0, slots: 48}
	o := int64(1)
	for l, n := range []int{70, 66, 5} {
		pod := fmt.Sprintf("r/p%d", min(l, 1))
		leaf := fmt.Sprintf("%s/l%d", pod, l)
		for i := range n {
			f.nodes = append(f.nodes, Node{Ordinal: o, Name: fmt.Sprintf("n%d", o), Pool: "r/P", GPUs: 4, PowerW: 10,
				PowerDomain: fmt.Sprintf("r/d%d", min(l, 1)), Pod: pod, Leaf: leaf, NVLink: fmt.Sprintf("%s/r%d", leaf, i/5),
				Schedulable: rapid.IntRange(0, 19).Draw(t, "sched") > 0})
			o++
		}
	}
	return f
}

// TestIndexMachine runs random sequences of Add, Remove, End,
// SetSchedulable and Place (whose plan is then added) against a model,
// checking the index's invariants after every step and that Add refuses
// exactly the holds that overlap one already there.
func TestIndexMachine(t *testing.T) {
	t.Parallel()
	for name, gen := range map[string]func(*rapid.T) *refFleet{"small": genFleet, "wide": wideFleet, "long": genLongFleet} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			rapid.Check(t, func(t *rapid.T) { runMachine(t, gen(t)) })
		})
	}
}

func runMachine(t *rapid.T, f *refFleet) {
	ix, err := NewIndex(Topology{Nodes: f.nodes, DomainBudgetW: f.budgets}, f.origin, f.slots)
	if err != nil {
		t.Fatal(err)
	}
	n := int64(len(f.nodes))
	next := 0
	newID := func() string { next++; return fmt.Sprintf("h%d", next) }
	ids := func() []string {
		var out []string
		for _, h := range f.holds {
			out = append(out, h.ID)
		}
		slices.Sort(out)
		return out
	}
	find := func(id string) int { return slices.IndexFunc(f.holds, func(h Hold) bool { return h.ID == id }) }
	overlapping := func(h Hold) bool {
		for _, g := range f.holds {
			if g.NodeFrom < h.NodeTo && h.NodeFrom < g.NodeTo && overlaps(g.Start, g.End, h.Start, h.End) {
				return true
			}
		}
		return false
	}
	t.Repeat(map[string]func(*rapid.T){
		"add": func(t *rapid.T) {
			h := genHold(t, f, newID())
			if rapid.IntRange(0, 9).Draw(t, "wide") == 0 {
				h.NodeTo = min(h.NodeFrom+rapid.Int64Range(1, n).Draw(t, "width"), n+1)
			}
			err := ix.Add(h)
			if overlapping(h) {
				if !errors.Is(err, ErrOverlap) {
					t.Fatalf("Add(%+v) = %v, want ErrOverlap", h, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Add(%+v): %v", h, err)
			}
			f.holds = append(f.holds, h)
		},
		"add invalid": func(t *rapid.T) {
			h := genHold(t, f, newID())
			want := ErrInvalid
			switch rapid.IntRange(0, 3).Draw(t, "how") {
			case 0:
				if len(f.holds) == 0 {
					t.Skip("no hold to duplicate")
				}
				h.ID, want = rapid.SampledFrom(ids()).Draw(t, "dup"), ErrDuplicate
			case 1:
				h.NodeTo, want = n+2, ErrNotFound
			case 2:
				h.End = h.Start
			case 3:
				h.NodeTo = h.NodeFrom
			}
			if err := ix.Add(h); !errors.Is(err, want) {
				t.Fatalf("Add(%+v) = %v, want %v", h, err, want)
			}
		},
		"remove": func(t *rapid.T) {
			if len(f.holds) == 0 {
				if err := ix.Remove("nope"); !errors.Is(err, ErrNotFound) {
					t.Fatalf("Remove(nope) = %v", err)
				}
				return
			}
			id := rapid.SampledFrom(ids()).Draw(t, "id")
			if err := ix.Remove(id); err != nil {
				t.Fatal(err)
			}
			f.holds = slices.Delete(f.holds, find(id), find(id)+1)
		},
		"end": func(t *rapid.T) {
			if len(f.holds) == 0 {
				t.Skip("no hold")
			}
			id := rapid.SampledFrom(ids()).Draw(t, "id")
			last, hours := f.span()
			at := genTime(t, "at", 0, last+hours)
			if err := ix.End(id, at); err != nil {
				t.Fatal(err)
			}
			i := find(id)
			switch h := &f.holds[i]; {
			case !at.After(h.Start):
				f.holds = slices.Delete(f.holds, i, i+1)
			case at.Before(h.End):
				h.End = at
			}
		},
		"schedulable": func(t *rapid.T) {
			o := rapid.Int64Range(1, n).Draw(t, "ordinal")
			ok := rapid.Bool().Draw(t, "ok")
			if err := ix.SetSchedulable(o, ok); err != nil {
				t.Fatal(err)
			}
			f.nodes[o-1].Schedulable = ok
		},
		"place": func(t *rapid.T) {
			r := genRequest(t, f)
			if rapid.IntRange(0, 3).Draw(t, "bigger") == 0 {
				r.Nodes = rapid.IntRange(1, int(n)).Draw(t, "big nodes")
			}
			plan, err := Place(ix, r)
			if err != nil {
				var pe *Error
				if !errors.As(err, &pe) {
					t.Fatalf("Place(%+v): %v", r, err)
				}
				return
			}
			if msg := f.valid(r, plan); msg != "" {
				t.Fatalf("Place(%+v) = %v: %s", r, plan, msg)
			}
			for _, run := range lease.Runs(plan.Nodes) {
				h := Hold{ID: newID(), LeaseID: "l", TenantID: r.TenantID, Dedicated: r.Isolation == lease.DedicatedLeaf,
					NodeFrom: run[0], NodeTo: run[1], Start: r.Start, End: r.End}
				if err := ix.Add(h); err != nil {
					t.Fatalf("Add of the plan's run %v: %v", run, err)
				}
				f.holds = append(f.holds, h)
			}
		},
		"power shift": func(t *rapid.T) {
			// Every window PowerShift skips is one Place refuses.
			r := genRequest(t, f)
			limit := rapid.IntRange(0, 24).Draw(t, "limit")
			d, ok := ix.PowerShift(r, limit)
			if ok && (d < 0 || d > limit) {
				t.Fatalf("PowerShift(%+v, %d) = %d, out of range", r, limit, d)
			}
			if !ok {
				d = limit + 1
			}
			for x := range d {
				q := r
				q.Start, q.End = r.Start.Add(time.Duration(x)*time.Hour), r.End.Add(time.Duration(x)*time.Hour)
				if plan, err := Place(ix, q); err == nil {
					t.Fatalf("PowerShift(%+v, %d) = %d, %v; but Place places it %d hours on: %v", r, limit, d, ok, x, plan)
				}
			}
			// And it is the least such shift: the budgets, counted by
			// brute force, leave room at d and at no shift before it.
			nv, _ := f.nvlinkSize(r.Pool)
			if r.Packing == lease.PackNVLinkDomain && r.Nodes%nv != 0 || f.oversize(r) {
				return
			}
			for x := 0; x <= min(d, limit); x++ {
				q := r
				q.Start, q.End = r.Start.Add(time.Duration(x)*time.Hour), r.End.Add(time.Duration(x)*time.Hour)
				if room := f.powerRoom(q, nv); (room >= r.Nodes) != (ok && x == d) {
					t.Fatalf("PowerShift(%+v, %d) = %d, %v; but %d hours on the budgets leave room for %d nodes", r, limit, d, ok, x, room)
				}
			}
		},
		"": func(t *rapid.T) {
			if err := ix.Check(); err != nil {
				t.Fatal(err)
			}
			for _, h := range f.holds {
				got, ok := ix.Hold(h.ID)
				if !ok || !got.End.Equal(h.End) || got.NodeFrom != h.NodeFrom {
					t.Fatalf("Hold(%s) = %+v, %v; want %+v", h.ID, got, ok, h)
				}
			}
			if ix.Holds() != len(f.holds) {
				t.Fatalf("Holds() = %d, want %d", ix.Holds(), len(f.holds))
			}
			o := rapid.Int64Range(1, n).Draw(t, "holds on")
			after := hr(rapid.IntRange(0, 30).Draw(t, "after"))
			var want []string
			for _, h := range f.holds {
				if o >= h.NodeFrom && o < h.NodeTo && h.End.After(after) {
					want = append(want, h.ID)
				}
			}
			var got []string
			prev := time.Time{}
			for _, h := range ix.HoldsOn(o, after) {
				if h.Start.Before(prev) {
					t.Fatalf("HoldsOn(%d) not by start", o)
				}
				prev = h.Start
				got = append(got, h.ID)
			}
			slices.Sort(want)
			slices.Sort(got)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Fatalf("HoldsOn(%d, %s) (-want +got):\n%s", o, after, diff)
			}
		},
	})
}

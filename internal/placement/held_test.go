package placement

import (
	"slices"
	"testing"

	"pgregory.net/rapid"
)

// TestPodRows checks podRows against plain per-bucket counts and bits:
// after random additions and removals of counts over ranges, runs of
// buckets flagged and cleared whole and scattered flips (each followed by
// fix), every level is what fill computes from the buckets, max over the
// segments of a range gives the greatest count in it (or at least stop)
// and or ORs its buckets' bits.
func TestPodRows(t *testing.T) {
	t.Parallel()
	rapid.Check(t, func(t *rapid.T) {
		buckets := rapid.IntRange(1, 2000).Draw(t, "buckets")
		leaves := []int32{int32(rapid.IntRange(1, 130).Draw(t, "leaves")), int32(rapid.IntRange(1, 16).Draw(t, "leaves 2"))}
		h := newPodRows(buckets, leaves)
		counts := make([][]uint16, len(leaves)) // pod, bucket
		flags := make([][][]bool, len(leaves))  // pod, lane, bucket
		for g, n := range leaves {
			counts[g] = make([]uint16, buckets)
			flags[g] = make([][]bool, n)
			for l := range flags[g] {
				flags[g][l] = make([]bool, buckets)
			}
		}
		type added struct{ g, b0, b1 int }
		var adds []added
		// Runs of buckets set whole, as a hold that fills a leaf group sets
		// them, and cleared whole later.
		type run struct{ g, lane, b0, b1 int }
		var runs []run
		for range rapid.IntRange(1, 40).Draw(t, "ops") {
			g := rapid.IntRange(0, len(leaves)-1).Draw(t, "pod")
			lane := rapid.IntRange(0, int(leaves[g])-1).Draw(t, "lane")
			b0 := rapid.IntRange(0, buckets-1).Draw(t, "b0")
			b1 := rapid.IntRange(b0+1, buckets).Draw(t, "b1")
			switch op := rapid.IntRange(0, 4).Draw(t, "op"); {
			case op == 0:
				h.add(g, b0, b1, 1)
				adds = append(adds, added{g, b0, b1})
				for b := b0; b < b1; b++ {
					counts[g][b]++
				}
			case op == 1 && len(adds) > 0:
				i := rapid.IntRange(0, len(adds)-1).Draw(t, "which")
				a := adds[i]
				adds = slices.Delete(adds, i, i+1)
				h.add(a.g, a.b0, a.b1, ^uint16(0))
				for b := a.b0; b < a.b1; b++ {
					counts[a.g][b]--
				}
			case op == 2 && !slices.Contains(flags[g][lane][b0:b1], true):
				for b := b0; b < b1; b++ {
					h.toggle(g, lane, b)
					flags[g][lane][b] = true
				}
				h.fix(g, lane, b0, b1, true, true)
				runs = append(runs, run{g, lane, b0, b1})
			case op == 3 && len(runs) > 0:
				i := rapid.IntRange(0, len(runs)-1).Draw(t, "run")
				r := runs[i]
				runs = slices.Delete(runs, i, i+1)
				for b := r.b0; b < r.b1; b++ {
					h.toggle(r.g, r.lane, b)
					flags[r.g][r.lane][b] = false
				}
				h.fix(r.g, r.lane, r.b0, r.b1, true, false)
			case op == 4:
				// Scattered flips, outside the runs.
				c0, c1 := -1, -1
				for b := b0; b < b1; b++ {
					inRun := slices.ContainsFunc(runs, func(r run) bool { return r.g == g && r.lane == lane && r.b0 <= b && b < r.b1 })
					if !inRun && rapid.IntRange(0, 2).Draw(t, "flip") > 0 {
						h.toggle(g, lane, b)
						flags[g][lane][b] = !flags[g][lane][b]
						if c0 < 0 {
							c0 = b
						}
						c1 = b + 1
					}
				}
				if c0 >= 0 {
					h.fix(g, lane, c0, c1, false, false)
				}
			}
		}
		got := h.v
		h.v = slices.Clone(h.v)
		h.fill()
		if !slices.Equal(got, h.v) {
			t.Fatal("levels differ from those computed from the buckets")
		}
		for range 20 {
			g := rapid.IntRange(0, len(leaves)-1).Draw(t, "query pod")
			b0 := rapid.IntRange(0, buckets-1).Draw(t, "q0")
			b1 := rapid.IntRange(b0+1, buckets).Draw(t, "q1")
			segs := h.segments(nil, b0, b1)
			m := slices.Max(counts[g][b0:b1])
			if c := h.max(g, segs, ^uint16(0)); c != m {
				t.Fatalf("count of pod %d over [%d, %d) = %d, want %d (segments %v)", g, b0, b1, c, m, segs)
			}
			stop := uint16(rapid.IntRange(0, 5).Draw(t, "stop"))
			if c := h.max(g, segs, stop); c > m || c < min(m, stop) {
				t.Fatalf("count of pod %d over [%d, %d) stopping at %d = %d, want %d", g, b0, b1, stop, c, m)
			}
			full := make([]uint64, (leaves[g]+63)/64)
			h.or(g, segs, full)
			for lane := range int(leaves[g]) {
				set := full[lane/64]>>(lane%64)&1 == 1
				if w := slices.Contains(flags[g][lane][b0:b1], true); set != w {
					t.Fatalf("pod %d lane %d over [%d, %d): %v, want %v", g, lane, b0, b1, set, w)
				}
			}
		}
	})
}

// TestPlaceWithoutHeldCounts places on a fleet whose leaf group is too
// large for the held counts (more than 255 nodes), which Place then does
// without.
func TestPlaceWithoutHeldCounts(t *testing.T) {
	t.Parallel()
	sh := shape{Pool: "s/P", Pods: 1, Leaves: 2, NVLinks: 300, PerNVLink: 1, PowerW: 10}
	ix := newIndex(t, map[string]int64{"dom": 1 << 40}, sh)
	if ix.held {
		t.Fatal("held counts kept for a leaf group of 300 nodes")
	}
	add(t, ix, Hold{ID: "a", TenantID: "x", NodeFrom: 1, NodeTo: 301, Start: hr(0), End: hr(10)})
	plan, err := Place(ix, Request{Pool: sh.Pool, Nodes: 200, Start: hr(5), End: hr(6)})
	if err != nil {
		t.Fatal(err)
	}
	if want := ords(301, 501); !slices.Equal(plan.Nodes, want) {
		t.Fatalf("Place = %v, want %v", plan.Nodes, want)
	}
	if _, err := Place(ix, Request{Pool: sh.Pool, Nodes: 301, Start: hr(5), End: hr(6), NoReason: true}); err == nil {
		t.Fatal("Place of 301 nodes where 300 are free succeeded")
	}
	if err := ix.Check(); err != nil {
		t.Fatal(err)
	}
}

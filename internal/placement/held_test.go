package placement

import (
	"slices"
	"testing"

	"pgregory.net/rapid"
)

// TestHeldRows checks heldRows against plain per-bucket counts: after
// random additions and removals over ranges, every level is what fill
// computes from the buckets and max over the segments of a range is the
// greatest count in it (or at least stop).
func TestHeldRows(t *testing.T) {
	t.Parallel()
	rapid.Check(t, func(t *rapid.T) {
		buckets := rapid.IntRange(1, 3000).Draw(t, "buckets")
		rows := rapid.IntRange(1, 3).Draw(t, "rows")
		h := newHeldRows(rows, buckets)
		want := make([][]uint16, rows)
		for r := range want {
			want[r] = make([]uint16, buckets)
		}
		type added struct{ r, b0, b1 int }
		var done []added
		for range rapid.IntRange(1, 40).Draw(t, "ops") {
			if len(done) > 0 && rapid.IntRange(0, 2).Draw(t, "remove") == 0 {
				i := rapid.IntRange(0, len(done)-1).Draw(t, "which")
				a := done[i]
				done = slices.Delete(done, i, i+1)
				h.add(a.r, a.b0, a.b1, ^uint16(0))
				for b := a.b0; b < a.b1; b++ {
					want[a.r][b]--
				}
			} else {
				r := rapid.IntRange(0, rows-1).Draw(t, "row")
				b0 := rapid.IntRange(0, buckets-1).Draw(t, "b0")
				b1 := rapid.IntRange(b0, buckets).Draw(t, "b1")
				h.add(r, b0, b1, 1)
				done = append(done, added{r, b0, b1})
				for b := b0; b < b1; b++ {
					want[r][b]++
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
			r := rapid.IntRange(0, rows-1).Draw(t, "query row")
			b0 := rapid.IntRange(0, buckets-1).Draw(t, "q0")
			b1 := rapid.IntRange(b0+1, buckets).Draw(t, "q1")
			m := slices.Max(want[r][b0:b1])
			segs := h.segments(nil, b0, b1)
			if g := h.max(r, segs, ^uint16(0)); g != m {
				t.Fatalf("max of row %d over [%d, %d) = %d, want %d (segments %v)", r, b0, b1, g, m, segs)
			}
			stop := uint16(rapid.IntRange(0, 5).Draw(t, "stop"))
			if g := h.max(r, segs, stop); g > m || g < min(m, stop) {
				t.Fatalf("max of row %d over [%d, %d) stopping at %d = %d, want %d", r, b0, b1, stop, g, m)
			}
		}
	})
}

// TestFullFlags checks fullFlags against plain per-bucket bits: after runs
// of buckets set and cleared whole and scattered toggles, each followed by
// fix, every level is what fill computes and or over a range ORs the bits
// of its buckets.
func TestFullFlags(t *testing.T) {
	t.Parallel()
	rapid.Check(t, func(t *rapid.T) {
		buckets := rapid.IntRange(1, 2000).Draw(t, "buckets")
		leaves := []int32{int32(rapid.IntRange(1, 130).Draw(t, "leaves")), int32(rapid.IntRange(1, 10).Draw(t, "leaves 2"))}
		f := newFullFlags(buckets, leaves)
		want := make([][][]bool, len(leaves)) // pod, lane, bucket
		for g, n := range leaves {
			want[g] = make([][]bool, n)
			for l := range want[g] {
				want[g][l] = make([]bool, buckets)
			}
		}
		// Runs of buckets set whole, as a hold that fills a leaf group sets
		// them, and cleared whole later.
		type run struct{ g, lane, b0, b1 int }
		var runs []run
		for range rapid.IntRange(1, 30).Draw(t, "ops") {
			g := rapid.IntRange(0, len(leaves)-1).Draw(t, "pod")
			lane := rapid.IntRange(0, int(leaves[g])-1).Draw(t, "lane")
			b0 := rapid.IntRange(0, buckets-1).Draw(t, "b0")
			b1 := rapid.IntRange(b0+1, buckets).Draw(t, "b1")
			bit := uint64(1) << (lane % 64)
			switch op := rapid.IntRange(0, 2).Draw(t, "op"); {
			case op == 0 && !slices.Contains(want[g][lane][b0:b1], true):
				for b := b0; b < b1; b++ {
					f.toggle(g, lane, b)
					want[g][lane][b] = true
				}
				f.fix(g, lane/64, bit, b0, b1, true, true)
				runs = append(runs, run{g, lane, b0, b1})
			case op == 1 && len(runs) > 0:
				i := rapid.IntRange(0, len(runs)-1).Draw(t, "run")
				r := runs[i]
				runs = slices.Delete(runs, i, i+1)
				for b := r.b0; b < r.b1; b++ {
					f.toggle(r.g, r.lane, b)
					want[r.g][r.lane][b] = false
				}
				f.fix(r.g, r.lane/64, 1<<(r.lane%64), r.b0, r.b1, true, false)
			case op == 2:
				// Scattered flips, outside the runs.
				c0, c1 := -1, -1
				for b := b0; b < b1; b++ {
					inRun := slices.ContainsFunc(runs, func(r run) bool { return r.g == g && r.lane == lane && r.b0 <= b && b < r.b1 })
					if !inRun && rapid.IntRange(0, 2).Draw(t, "flip") > 0 {
						f.toggle(g, lane, b)
						want[g][lane][b] = !want[g][lane][b]
						if c0 < 0 {
							c0 = b
						}
						c1 = b + 1
					}
				}
				if c0 >= 0 {
					f.fix(g, lane/64, bit, c0, c1, false, false)
				}
			}
		}
		got := f.v
		f.v = slices.Clone(f.v)
		f.fill()
		if !slices.Equal(got, f.v) {
			t.Fatal("levels differ from those computed from the buckets")
		}
		for range 20 {
			g := rapid.IntRange(0, len(leaves)-1).Draw(t, "query pod")
			b0 := rapid.IntRange(0, buckets-1).Draw(t, "q0")
			b1 := rapid.IntRange(b0+1, buckets).Draw(t, "q1")
			out := make([]uint64, f.words[g])
			f.or(g, f.segments(nil, b0, b1), out)
			for lane := range int(leaves[g]) {
				set := out[lane/64]>>(lane%64)&1 == 1
				if w := slices.Contains(want[g][lane][b0:b1], true); set != w {
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

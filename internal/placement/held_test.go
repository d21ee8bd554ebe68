package placement

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/neocloud/neocloud/internal/lease"
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
			if c, n := h.max(g, segs, ^uint16(0)); c != m || n != len(segs) {
				t.Fatalf("count of pod %d over [%d, %d) = %d, want %d (segments %v)", g, b0, b1, c, m, segs)
			}
			stop := uint16(rapid.IntRange(0, 5).Draw(t, "stop"))
			if c, n := h.max(g, segs, stop); c > m || c < min(m, stop) || n < 1 || n > len(segs) {
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

// TestBytes checks the bytewise helpers against byte-by-byte arithmetic.
func TestBytes(t *testing.T) {
	t.Parallel()
	rapid.Check(t, func(t *rapid.T) {
		// Bytes near the edges (0, 127, 128, 255) are drawn often.
		word := func(label string) (uint64, [8]uint8) {
			var x uint64
			var b [8]uint8
			for i := range b {
				b[i] = rapid.SampledFrom([]uint8{0, 1, 126, 127, 128, 129, 254, 255, uint8(rapid.IntRange(0, 255).Draw(t, label+"any"))}).Draw(t, label)
				x |= uint64(b[i]) << (8 * i)
			}
			return x, b
		}
		a, ab := word("a")
		c, cb := word("c")
		var wantMax, wantGe uint64
		sum := 0
		small := true
		for i := range 8 {
			wantMax |= uint64(max(ab[i], cb[i])) << (8 * i)
			if ab[i] >= cb[i] {
				wantGe |= 0x80 << (8 * i)
			}
			sum += int(ab[i])
			small = small && ab[i] < 128 && cb[i] < 128
		}
		if got := maxBytes(a, c); got != wantMax {
			t.Fatalf("maxBytes(%#x, %#x) = %#x, want %#x", a, c, got, wantMax)
		}
		if got := geBytes(a, c); got != wantGe {
			t.Fatalf("geBytes(%#x, %#x) = %#x, want %#x", a, c, got, wantGe)
		}
		if got := maxBytes7(a, c); small && got != wantMax {
			t.Fatalf("maxBytes7(%#x, %#x) = %#x, want %#x", a, c, got, wantMax)
		}
		if got := sumBytes(a); got != sum {
			t.Fatalf("sumBytes(%#x) = %d, want %d", a, got, sum)
		}
		n := rapid.IntRange(-1, 9).Draw(t, "n")
		var want uint64
		for i := range min(max(n, 0), 8) {
			want |= 0x80 << (8 * i)
		}
		if got := lanesBelow(n); got != want {
			t.Fatalf("lanesBelow(%d) = %#x, want %#x", n, got, want)
		}
	})
}

// TestLaneRows checks laneRows against plain per-bucket counts: after
// random additions and removals of counts to lanes over ranges (several
// lanes at once, as a hold over several leaf groups of a pod adds them),
// every element is what fill computes from the buckets, and max over the
// lane segments of a range gives each lane's greatest count over the
// buckets of the elements wholly inside it.
func TestLaneRows(t *testing.T) {
	t.Parallel()
	rapid.Check(t, func(t *rapid.T) {
		buckets := rapid.IntRange(1, 1500).Draw(t, "buckets")
		leaves := []int32{int32(rapid.IntRange(1, 20).Draw(t, "leaves")), int32(rapid.IntRange(1, 16).Draw(t, "leaves 2"))}
		sizes := []int32{int32(rapid.IntRange(1, 255).Draw(t, "size")), 127}
		h := newLaneRows(buckets, leaves, sizes)
		counts := make([][][]int, len(leaves)) // pod, lane, bucket
		for g, n := range leaves {
			counts[g] = make([][]int, n)
			for l := range counts[g] {
				counts[g][l] = make([]int, buckets)
			}
		}
		most := func(g, lane, c0, c1 int) uint8 {
			if lane >= len(counts[g]) {
				return 0
			}
			return uint8(slices.Max(counts[g][lane][c0:min(c1, buckets)]))
		}
		type added struct {
			g, b0, b1 int
			d         map[int]int // lane: count
		}
		var adds []added
		apply := func(a added, neg bool) {
			d := make([]uint64, h.words[a.g])
			for l, n := range a.d {
				d[l/8] |= uint64(n) << (8 * (l % 8))
				for b := a.b0; b < a.b1; b++ {
					if neg {
						counts[a.g][l][b] -= n
					} else {
						counts[a.g][l][b] += n
					}
				}
			}
			h.add(a.g, a.b0, a.b1, d, neg, func(lane, c0, c1 int) uint8 { return most(a.g, lane, c0, c1) })
		}
		for range rapid.IntRange(1, 30).Draw(t, "ops") {
			if len(adds) > 0 && rapid.IntRange(0, 2).Draw(t, "remove") == 0 {
				i := rapid.IntRange(0, len(adds)-1).Draw(t, "which")
				apply(adds[i], true)
				adds = slices.Delete(adds, i, i+1)
				continue
			}
			g := rapid.IntRange(0, len(leaves)-1).Draw(t, "pod")
			b0 := rapid.IntRange(0, buckets-1).Draw(t, "b0")
			a := added{g: g, b0: b0, b1: rapid.IntRange(b0+1, buckets).Draw(t, "b1"), d: map[int]int{}}
			for range rapid.IntRange(1, 3).Draw(t, "lanes") {
				l := rapid.IntRange(0, int(leaves[g])-1).Draw(t, "lane")
				if _, ok := a.d[l]; ok {
					continue
				}
				// Room left in the lane over the range: counts never pass
				// the leaf group's size.
				room := int(sizes[g]) - slices.Max(counts[g][l][a.b0:a.b1])
				if room > 0 {
					a.d[l] = rapid.IntRange(1, room).Draw(t, "n")
				}
			}
			apply(a, false)
			adds = append(adds, a)
		}
		got := h.v
		h.v = make([]uint64, len(got))
		h.fill(most)
		if !slices.Equal(got, h.v) {
			t.Fatal("elements differ from those computed from the buckets")
		}
		lv := newLevels(buckets)
		for range 20 {
			g := rapid.IntRange(0, len(leaves)-1).Draw(t, "query pod")
			b0 := rapid.IntRange(0, buckets-1).Draw(t, "q0")
			b1 := rapid.IntRange(b0+1, buckets).Draw(t, "q1")
			m := make([]uint64, h.words[g])
			for _, sg := range h.laneSegs(nil, lv.segments(nil, b0, b1), buckets) {
				h.max(g, sg, m)
			}
			// The buckets of whole elements inside the range, when the
			// range reaches past level 0 of podRows' segments.
			c0, c1 := 0, 0
			if b1-b0 > 2*heldFanout {
				c0, c1 = (b0+heldFanout-1)/heldFanout*heldFanout, b1/heldFanout*heldFanout
			}
			for l := range int(leaves[g]) {
				want := 0
				if c1 > c0 {
					want = slices.Max(counts[g][l][c0:c1])
				}
				if got := int(uint8(m[l/8] >> (8 * (l % 8)))); got != want {
					t.Fatalf("lane %d of pod %d over [%d, %d) = %d, want %d (buckets [%d, %d))", l, g, b0, b1, got, want, c0, c1)
				}
			}
		}
	})
}

// TestBoundsChangeNothing places random requests of every packing and
// isolation on two indexes with the same random holds, one with held
// counts and one without: the plans, the refusals (reason and detail) and
// Fits must be the same. The fleet has pods of 16 leaf groups of 32 nodes
// (an HGX pod; one lacks a node), of leaf groups of 144 nodes in NVLink domains of 18 (a
// GB200 pod), and a pod of leaf groups of several sizes shared by two
// pools, in two power domains.
func TestBoundsChangeNothing(t *testing.T) {
	t.Parallel()
	budgets := map[string]int64{"d0": 600 * 10, "d1": 1 << 40}
	hgx := shape{Pool: "s/H", Pods: 5, Leaves: 16, NVLinks: 32, PerNVLink: 1, PowerW: 10,
		Domain: func(pod, _ int) string { return fmt.Sprintf("d%d", pod%2) }}
	gb := shape{Pool: "s/G", First: 3001, Pods: 2, Leaves: 3, NVLinks: 8, PerNVLink: 18, PowerW: 7,
		Domain: func(int, int) string { return "d1" }}
	var topo Topology
	topo.DomainBudgetW = budgets
	// Pod 2 lacks a node, as a fleet with a node missing does: its leaf
	// groups are not all the same size.
	topo.Nodes = append(append(topo.Nodes, slices.DeleteFunc(hgx.nodes(), func(n Node) bool { return n.Ordinal == 1200 })...), gb.nodes()...)
	o := int64(6001)
	for l, n := range []int{40, 3, 64, 17} {
		for i := range n {
			pool := "s/M"
			if i%5 == 4 {
				pool = "s/N"
			}
			topo.Nodes = append(topo.Nodes, Node{Ordinal: o, Name: fmt.Sprintf("m%d", o), Pool: pool, GPUs: 8, PowerW: 10,
				PowerDomain: "d1", Pod: "s/M/p0", Leaf: fmt.Sprintf("s/M/p0/l%d", l), Schedulable: i%23 != 7})
			o++
		}
	}
	for seed := range uint64(4) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			t.Parallel()
			with, err := NewIndex(topo, t0, 2000)
			if err != nil {
				t.Fatal(err)
			}
			without, err := NewIndex(topo, t0, 2000)
			if err != nil {
				t.Fatal(err)
			}
			without.held = false
			if !with.held {
				t.Fatal("the index keeps no held counts")
			}
			pools := []string{hgx.Pool, gb.Pool, "s/M", "s/N"}
			rng := rand.New(rand.NewPCG(seed, 6))
			request := func() Request {
				pool := pools[rng.IntN(len(pools))]
				start := hr(rng.IntN(1500))
				r := Request{Pool: pool, Nodes: 1 + rng.IntN(70), Start: start, End: start.Add(time.Duration(1+rng.IntN(500)) * time.Hour),
					Packing: lease.Packings[rng.IntN(len(lease.Packings))], TenantID: fmt.Sprintf("t%d", rng.IntN(4))}
				if rng.IntN(5) == 0 {
					r.Isolation = lease.DedicatedLeaf
				}
				if r.Packing == lease.PackNVLinkDomain && pool == gb.Pool {
					r.Nodes = 18 * (1 + rng.IntN(4))
				}
				return r
			}
			for i := 0; with.Holds() < 600 && i < 5000; i++ {
				r := request()
				plan, err := Place(with, r)
				if err != nil {
					continue
				}
				for k, run := range lease.Runs(plan.Nodes) {
					h := Hold{ID: fmt.Sprintf("h%d.%d", i, k), TenantID: r.TenantID, Dedicated: r.Isolation == lease.DedicatedLeaf,
						NodeFrom: run[0], NodeTo: run[1], Start: r.Start, End: r.End}
					add(t, with, h)
					add(t, without, h)
				}
				if i%7 == 0 {
					// Some holds end early, as leases are cancelled.
					id := fmt.Sprintf("h%d.0", i)
					at := r.Start.Add(time.Duration(rng.IntN(400)) * time.Hour)
					if err := with.End(id, at); err != nil {
						t.Fatal(err)
					}
					if err := without.End(id, at); err != nil {
						t.Fatal(err)
					}
				}
			}
			if err := with.Check(); err != nil {
				t.Fatal(err)
			}
			answer := func(ix *Index, r Request) string {
				plan, err := Place(ix, r)
				if err != nil {
					if r.NoReason {
						return "refused"
					}
					return err.Error()
				}
				return fmt.Sprint(plan)
			}
			refused := 0
			for range 3000 {
				r := request()
				r.NoReason = rng.IntN(2) == 0
				want, got := answer(without, r), answer(with, r)
				if got != want {
					t.Fatalf("Place(%+v):\n with held counts %s\n without          %s", r, got, want)
				}
				fw, _ := Fits(without, r)
				fg, _ := Fits(with, r)
				if fw != fg {
					t.Fatalf("Fits(%+v) = %v with held counts, %v without", r, fg, fw)
				}
				if r.Packing == lease.PackPod {
					// Place reads pods only until they cannot be the tightest
					// (packPodScan); packPod over every candidate must agree.
					plan, err := Place(with, r)
					got := fmt.Sprint(plan)
					if err != nil {
						got = "refused"
					}
					if want := placePodAll(t, with, r); got != want {
						t.Fatalf("Place(%+v) = %s, want %s", r, got, want)
					}
				}
				if !fw {
					refused++
				}
			}
			if refused < 300 || refused > 2700 {
				t.Fatalf("%d of 3000 requests refused: the test needs both answers", refused)
			}
		})
	}
}

// placePodAll places a pod-packed request as Place does, but with packPod
// over every candidate leaf group; it returns the plan or "refused".
func placePodAll(t *testing.T, ix *Index, r Request) string {
	t.Helper()
	p, s, e, unit, err := prepare(ix, &r)
	if err != nil {
		return "refused"
	}
	sr := new(search)
	if err := sr.init(ix, p, &r, s, e, unit); err != nil {
		t.Fatal(err)
	}
	sr.iso, sr.power = true, true
	sr.reset()
	if sr.powerRoom() < int64(sr.k) || sr.k > p.maxPod || !sr.packPod(sr.candidates(sr.k)) {
		return "refused"
	}
	return fmt.Sprint(sr.plan())
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

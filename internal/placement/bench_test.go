package placement

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/neocloud/neocloud/internal/lease"
)

// benchSlots is a year of hourly slots.
const benchSlots = 365 * 24

// uniformFleet returns 32,000 8-GPU nodes of 10.2 kW (FLEET.md, H100 SXM)
// in leaf groups of 32 (NVIDIA's scalable unit) and pods of 16 leaf groups,
// all in one power domain of 400 MW, and the pool's ID.
func uniformFleet() (Topology, string) {
	const pool = "uni/H100-SXM"
	topo := Topology{DomainBudgetW: map[string]int64{"uni/hall": 400_000_000}}
	for i := range 32_000 {
		leaf, pod := i/32, i/32/16
		topo.Nodes = append(topo.Nodes, Node{Ordinal: int64(i + 1), Name: fmt.Sprintf("n%05d", i), Pool: pool, GPUs: 8,
			PowerW: 10_200, PowerDomain: "uni/hall", Pod: fmt.Sprintf("uni/p%02d", pod), Leaf: fmt.Sprintf("uni/p%02d/l%02d", pod, leaf%16),
			NVLink: fmt.Sprintf("uni/n%05d", i), Schedulable: true})
	}
	return topo, pool
}

// referenceFleet returns a fleet shaped like DESIGN.md's reference site
// (FLEET.md, "The reference site"): three halls of 12 H100 pods and one of
// 12 H200 pods, each pod 16 leaf groups of 32 8-GPU nodes of 10.2 kW, and
// a hall of 6 GB200 pods of 8 leaf groups of 8 NVL72 racks of 18 trays of
// 7.333 kW; 31,488 nodes. Halls 1-4 have 52 MW each, hall 5 42 MW, so the
// site is power-capped.
func referenceFleet() (Topology, []string) {
	topo := Topology{DomainBudgetW: map[string]int64{}}
	o := int64(1)
	addHGX := func(hall int, model string) {
		dom := fmt.Sprintf("ref/hall-%d", hall)
		topo.DomainBudgetW[dom] = 52_000_000
		for p := range 12 {
			pod := fmt.Sprintf("ref/h%d-p%02d", hall, p)
			for l := range 16 {
				lf := fmt.Sprintf("%s/l%02d", pod, l)
				for n := range 32 {
					name := fmt.Sprintf("%s/n%02d", lf, n)
					topo.Nodes = append(topo.Nodes, Node{Ordinal: o, Name: name, Pool: "ref/" + model, GPUs: 8, PowerW: 10_200,
						PowerDomain: dom, Pod: pod, Leaf: lf, NVLink: name, Schedulable: true})
					o++
				}
			}
		}
	}
	for hall := 1; hall <= 3; hall++ {
		addHGX(hall, "H100-SXM")
	}
	addHGX(4, "H200-SXM")
	topo.DomainBudgetW["ref/hall-5"] = 42_000_000
	for p := range 6 {
		pod := fmt.Sprintf("ref/h5-p%02d", p)
		for l := range 8 {
			lf := fmt.Sprintf("%s/l%02d", pod, l)
			for r := range 8 {
				rack := fmt.Sprintf("%s/r%02d", lf, r)
				for n := range 18 {
					topo.Nodes = append(topo.Nodes, Node{Ordinal: o, Name: fmt.Sprintf("%s/t%02d", rack, n), Pool: "ref/GB200", GPUs: 4,
						PowerW: 7_333, PowerDomain: "ref/hall-5", Pod: pod, Leaf: lf, NVLink: rack, Schedulable: true})
					o++
				}
			}
		}
	}
	return topo, []string{"ref/H100-SXM", "ref/H200-SXM", "ref/GB200"}
}

// randomRequest returns a request of n nodes over a random window of 1
// hour to 30 days starting in the first 180 days.
func randomRequest(rng *rand.Rand, ix *Index, pool string, n int) Request {
	start := ix.Origin().Add(time.Duration(rng.IntN(180*24)) * time.Hour)
	end := start.Add(time.Duration(1+rng.IntN(30*24)) * time.Hour)
	return Request{Pool: pool, Nodes: n, Start: start, End: end, TenantID: fmt.Sprintf("t%02d", rng.IntN(50))}
}

// fill adds holds to ix until it has count of them: random requests of 1
// to 64 nodes (a tenth dedicated-leaf, a tenth whole NVLink domains in
// pools that have them) in pools chosen in proportion to their size,
// placed by Place, one hold per run of ordinals.
func fill(tb testing.TB, ix *Index, pools []string, count int, seed uint64) {
	tb.Helper()
	rng := rand.New(rand.NewPCG(seed, 1))
	var weights []int
	total := 0
	for _, p := range pools {
		total += len(ix.PoolNodes(p))
		weights = append(weights, total)
	}
	for i := 0; ix.Holds() < count; i++ {
		x := rng.IntN(total)
		pool := pools[0]
		for k, w := range weights {
			if x < w {
				pool = pools[k]
				break
			}
		}
		r := randomRequest(rng, ix, pool, 1+rng.IntN(64))
		if rng.IntN(10) == 0 {
			r.Isolation = lease.DedicatedLeaf
		}
		if pool == "ref/GB200" && rng.IntN(10) == 0 {
			r.Packing, r.Nodes = lease.PackNVLinkDomain, 18*(1+rng.IntN(4))
		}
		plan, err := Place(ix, r)
		if err != nil {
			continue
		}
		for k, run := range lease.Runs(plan.Nodes) {
			add(tb, ix, Hold{ID: fmt.Sprintf("h%d.%d", i, k), LeaseID: fmt.Sprintf("l%d", i), TenantID: r.TenantID,
				Dedicated: r.Isolation == lease.DedicatedLeaf, NodeFrom: run[0], NodeTo: run[1], Start: r.Start, End: r.End})
		}
	}
}

// benchPlace measures Place for 100-node requests over random windows.
func benchPlace(b *testing.B, ix *Index, pools []string) {
	rng := rand.New(rand.NewPCG(7, 7))
	reqs := make([]Request, 256)
	for i := range reqs {
		reqs[i] = randomRequest(rng, ix, pools[i%len(pools)], 100)
	}
	failed := 0
	i := 0
	b.ResetTimer()
	for b.Loop() {
		if _, err := Place(ix, reqs[i%len(reqs)]); err != nil {
			failed++
		}
		i++
	}
	b.ReportMetric(float64(failed)/float64(i), "refused/op")
}

func BenchmarkPlace(b *testing.B) {
	topo, pool := uniformFleet()
	ix, err := NewIndex(topo, time.Date(2026, 9, 1, 0, 0, 0, 0, time.UTC), benchSlots)
	if err != nil {
		b.Fatal(err)
	}
	fill(b, ix, []string{pool}, 10_000, 1)
	benchPlace(b, ix, []string{pool})
}

// BenchmarkPlaceAnchored is BenchmarkPlace after an anchor contract has
// taken the first 80% of the pool's nodes for two years, as runs of 1,000
// nodes, so that most leaf groups are full over every window, and 2,000
// random holds share the rest.
func BenchmarkPlaceAnchored(b *testing.B) {
	topo, pool := uniformFleet()
	ix, err := NewIndex(topo, time.Date(2026, 9, 1, 0, 0, 0, 0, time.UTC), 6*365*24)
	if err != nil {
		b.Fatal(err)
	}
	for o := int64(1); o <= 25_600; o += 1_000 {
		add(b, ix, Hold{ID: fmt.Sprintf("anchor.%d", o), TenantID: "anchor", NodeFrom: o, NodeTo: min(o+1_000, 25_601),
			Start: ix.Origin(), End: ix.Origin().Add(2 * 365 * 24 * time.Hour)})
	}
	fill(b, ix, []string{pool}, 2_000, 1)
	benchPlace(b, ix, []string{pool})
}

func BenchmarkPlaceReference(b *testing.B) {
	topo, pools := referenceFleet()
	ix, err := NewIndex(topo, time.Date(2026, 9, 1, 0, 0, 0, 0, time.UTC), benchSlots)
	if err != nil {
		b.Fatal(err)
	}
	fill(b, ix, pools, 10_000, 2)
	for _, pool := range pools {
		b.Run(pool[len("ref/"):], func(b *testing.B) { benchPlace(b, ix, []string{pool}) })
	}
}

// BenchmarkAdd measures Add and Remove of a 32-node hold in a full index.
func BenchmarkAdd(b *testing.B) {
	topo, pool := uniformFleet()
	ix, err := NewIndex(topo, time.Date(2026, 9, 1, 0, 0, 0, 0, time.UTC), benchSlots)
	if err != nil {
		b.Fatal(err)
	}
	fill(b, ix, []string{pool}, 10_000, 1)
	rng := rand.New(rand.NewPCG(3, 3))
	var holds []Hold
	for len(holds) < 256 {
		r := randomRequest(rng, ix, pool, 32)
		plan, err := Place(ix, r)
		if err != nil {
			continue
		}
		run := lease.Runs(plan.Nodes)[0]
		holds = append(holds, Hold{ID: fmt.Sprintf("x%d", len(holds)), TenantID: r.TenantID,
			NodeFrom: run[0], NodeTo: run[1], Start: r.Start, End: r.End})
	}
	i := 0
	for b.Loop() {
		h := holds[i%len(holds)]
		if err := ix.Add(h); err != nil {
			b.Fatal(err)
		}
		if err := ix.Remove(h.ID); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkEnd measures Add, End at the midpoint and Remove of a 32-node
// hold in a full index.
func BenchmarkEnd(b *testing.B) {
	topo, pool := uniformFleet()
	ix, err := NewIndex(topo, time.Date(2026, 9, 1, 0, 0, 0, 0, time.UTC), benchSlots)
	if err != nil {
		b.Fatal(err)
	}
	fill(b, ix, []string{pool}, 10_000, 1)
	h := Hold{ID: "x", TenantID: "t", NodeFrom: 1, NodeTo: 33, Start: ix.Origin().Add(250 * 24 * time.Hour), End: ix.Origin().Add(280 * 24 * time.Hour)}
	for b.Loop() {
		if err := ix.Add(h); err != nil {
			b.Fatal(err)
		}
		if err := ix.End(h.ID, h.Start.Add(15*24*time.Hour)); err != nil {
			b.Fatal(err)
		}
		if err := ix.Remove(h.ID); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAddAnchor measures Add and Remove of an anchor contract's run:
// 1,000 nodes for two years, in an index whose calendars span six years
// (the engine's horizon plus slack).
func BenchmarkAddAnchor(b *testing.B) {
	topo, _ := uniformFleet()
	ix, err := NewIndex(topo, time.Date(2026, 9, 1, 0, 0, 0, 0, time.UTC), 6*365*24)
	if err != nil {
		b.Fatal(err)
	}
	h := Hold{ID: "anchor", TenantID: "t", NodeFrom: 1, NodeTo: 1001, Start: ix.Origin(), End: ix.Origin().Add(2 * 365 * 24 * time.Hour)}
	for b.Loop() {
		if err := ix.Add(h); err != nil {
			b.Fatal(err)
		}
		if err := ix.Remove(h.ID); err != nil {
			b.Fatal(err)
		}
	}
}

// workloadSlots is the engine's calendar: a five-year horizon plus a year
// and a day of slack.
const workloadSlots = 6*365*24 + 24

// workloadRequest draws a request as shared/workloads/gen.py does: nodes
// log-uniform in 8..512, a start uniform over the first 90 days in whole
// hours, a duration log-uniform in 1 hour..60 days, in whole hours.
func workloadRequest(rng *rand.Rand, ix *Index, pool string) Request {
	lu := func(lo, hi float64) float64 {
		return math.Exp(math.Log(lo) + rng.Float64()*(math.Log(hi)-math.Log(lo)))
	}
	nodes := int(math.Round(lu(8, 512)))
	start := ix.Origin().Add(time.Duration(rng.IntN(90*24)) * time.Hour)
	hours := max(1, int(math.Round(lu(1, 60*24))))
	return Request{Pool: pool, Nodes: nodes, Start: start, End: start.Add(time.Duration(hours) * time.Hour), TenantID: "bench"}
}

// placeAdd places r and adds its holds, one per run of ordinals, named
// id.k; it returns the holds, or nil when r does not fit.
func placeAdd(tb testing.TB, ix *Index, r Request, id string) []Hold {
	plan, err := Place(ix, r)
	if err != nil {
		return nil
	}
	var out []Hold
	for k, run := range lease.Runs(plan.Nodes) {
		h := Hold{ID: fmt.Sprintf("%s.%d", id, k), LeaseID: id, TenantID: r.TenantID, NodeFrom: run[0], NodeTo: run[1], Start: r.Start, End: r.End}
		add(tb, ix, h)
		out = append(out, h)
	}
	return out
}

// BenchmarkPlaceWorkload reproduces bench admit on the uniform 32,000-node
// fleet with shared/workloads/gen.py's distribution: the index is filled by
// placing and adding 10,000 requests in turn (about 70% fit), then Place
// is timed on further requests of the same distribution (about half are
// refused), with and without NoReason, and Add, End (at the midpoint) and
// Remove on the holds of 1,024 requests that fit.
func BenchmarkPlaceWorkload(b *testing.B) {
	topo, pool := uniformFleet()
	ix, err := NewIndex(topo, time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC), workloadSlots)
	if err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(42, 42))
	for i := range 10_000 {
		placeAdd(b, ix, workloadRequest(rng, ix, pool), fmt.Sprintf("w%d", i))
	}
	reqs := make([]Request, 1024)
	for i := range reqs {
		reqs[i] = workloadRequest(rng, ix, pool)
	}
	// Holds of requests that fit, placed one after another and removed, so
	// that adding them again in order never overlaps.
	var holds []Hold
	for i := 0; len(holds) < 1024; i++ {
		holds = append(holds, placeAdd(b, ix, workloadRequest(rng, ix, pool), fmt.Sprintf("x%d", i))...)
	}
	for _, h := range holds {
		if err := ix.Remove(h.ID); err != nil {
			b.Fatal(err)
		}
	}
	for _, noReason := range []bool{false, true} {
		name := "Place"
		if noReason {
			// As the engine's search for the earliest start that fits.
			name = "PlaceNoReason"
		}
		b.Run(name, func(b *testing.B) {
			failed, i := 0, 0
			for b.Loop() {
				r := reqs[i%len(reqs)]
				r.NoReason = noReason
				if _, err := Place(ix, r); err != nil {
					failed++
				}
				i++
			}
			b.ReportMetric(float64(failed)/float64(i), "refused/op")
		})
	}
	// batch times op on holds in turn; before each pass over them, untimed,
	// the index loses them all and, with setup, gets them back.
	batch := func(b *testing.B, setup bool, op func(Hold) error) {
		reset := func() {
			for _, h := range holds {
				if _, ok := ix.Hold(h.ID); ok {
					if err := ix.Remove(h.ID); err != nil {
						b.Fatal(err)
					}
				}
			}
		}
		i := 0
		for b.Loop() {
			k := i % len(holds)
			if k == 0 {
				b.StopTimer()
				reset()
				if setup {
					for _, h := range holds {
						add(b, ix, h)
					}
				}
				b.StartTimer()
			}
			if err := op(holds[k]); err != nil {
				b.Fatal(err)
			}
			i++
		}
		b.StopTimer()
		reset()
	}
	b.Run("Add", func(b *testing.B) { batch(b, false, ix.Add) })
	b.Run("End", func(b *testing.B) {
		batch(b, true, func(h Hold) error { return ix.End(h.ID, h.Start.Add(h.End.Sub(h.Start)/2)) })
	})
	b.Run("Remove", func(b *testing.B) { batch(b, true, func(h Hold) error { return ix.Remove(h.ID) }) })
}

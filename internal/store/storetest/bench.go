package storetest

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/neocloud/neocloud/internal/engine"
	"github.com/neocloud/neocloud/internal/fleet"
	"github.com/neocloud/neocloud/internal/lease"
	"github.com/neocloud/neocloud/internal/tenant"
	"github.com/neocloud/neocloud/internal/unit"
)

// SyntheticFleet returns a fleet change that adds n nodes (H100, H200 and
// GB200, 8 power domains, racks of 18 GB200 trays) at one site "bench", as
// an apply to an empty store would.
func SyntheticFleet(n int) engine.FleetChange {
	s := fleet.Site{Name: "bench", FacilityPower: 300 * unit.Megawatt, PUEMilli: 1200,
		TariffMicrosPerMWh: 70_000_000, Timezone: "America/Chicago"}
	for d := range 8 {
		s.PowerDomains = append(s.PowerDomains, fleet.PowerDomain{Name: fmt.Sprintf("hall-%d", d+1), Budget: 40 * unit.Megawatt})
	}
	models := []string{"H100-SXM", "H200-SXM", "GB200"}
	nodes := make([]fleet.Node, 0, n)
	var gpus int64
	for i := range n {
		model := models[i%len(models)]
		nd := node(fmt.Sprintf("bench-%s-%06d", model, i), "bench", model, fmt.Sprintf("hall-%d", i%8+1))
		nd.Position = fleet.Position{Pod: fmt.Sprintf("pod-%02d", i/4096), LeafGroup: fmt.Sprintf("leaf-%03d", i/256),
			NVLinkDomain: fmt.Sprintf("rack-%05d", i/18)}
		nodes = append(nodes, nd)
		gpus += int64(nd.GPUs)
	}
	return engine.FleetChange{At: T0, Sites: []fleet.Site{s}, Add: nodes,
		Revision: engine.FleetRevision{At: T0, By: "key_bench", SHA256: "bench", Spec: []byte("{}"), NodeCount: int64(n), GPUCount: gpus}}
}

// BenchmarkApplyFleet measures applying SyntheticFleet(n) to an empty store
// in one transaction; opening the store is not measured.
func BenchmarkApplyFleet(b *testing.B, n int, open func(b *testing.B) engine.Store) {
	ctx := context.Background()
	c := SyntheticFleet(n)
	for b.Loop() {
		b.StopTimer()
		s := open(b)
		b.StartTimer()
		if err := s.Update(ctx, func(tx engine.Tx) error { return tx.ApplyFleet(ctx, c) }); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if err := s.Close(); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/node")
}

// BenchmarkAllNodes measures reading every node of a store holding
// SyntheticFleet(n).
func BenchmarkAllNodes(b *testing.B, n int, open func(b *testing.B) engine.Store) {
	ctx := context.Background()
	s := open(b)
	c := SyntheticFleet(n)
	if err := s.Update(ctx, func(tx engine.Tx) error { return tx.ApplyFleet(ctx, c) }); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		nodes, err := s.AllNodes(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if len(nodes) != n {
			b.Fatalf("AllNodes = %d nodes, want %d", len(nodes), n)
		}
	}
}

// BenchmarkUpdateFleet measures, on a store holding SyntheticFleet(n),
// an apply that updates every node (all move to another pod) and one that
// retires every node and adds them all back.
func BenchmarkUpdateFleet(b *testing.B, n int, open func(b *testing.B) engine.Store) {
	ctx := context.Background()
	s := open(b)
	c := SyntheticFleet(n)
	if err := s.Update(ctx, func(tx engine.Tx) error { return tx.ApplyFleet(ctx, c) }); err != nil {
		b.Fatal(err)
	}
	names := make([]string, len(c.Add))
	for i, nd := range c.Add {
		names[i] = nd.Name
	}
	b.Run("UpdateAll", func(b *testing.B) {
		i := 0
		for b.Loop() {
			i++
			u := engine.FleetChange{At: T0, Sites: c.Sites, Update: make([]fleet.Node, len(c.Add))}
			for j, nd := range c.Add {
				nd.Position.Pod = fmt.Sprintf("pod-moved-%d", i)
				u.Update[j] = nd
			}
			if err := s.Update(ctx, func(tx engine.Tx) error { return tx.ApplyFleet(ctx, u) }); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("RetireAndReaddAll", func(b *testing.B) {
		for b.Loop() {
			retire := engine.FleetChange{At: T0, Sites: c.Sites, Retire: names}
			readd := engine.FleetChange{At: T0, Sites: c.Sites, Add: c.Add}
			for _, ch := range []engine.FleetChange{retire, readd} {
				if err := s.Update(ctx, func(tx engine.Tx) error { return tx.ApplyFleet(ctx, ch) }); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
}

// BenchmarkInsertAllocations measures InsertAllocations on a store holding
// SyntheticFleet(32,000) and about 100,000 allocations: each iteration
// commits one transaction inserting a batch of 256 runs (about 51 leases of
// 5 runs, as group commit would write them). Runs are random, disjoint and
// 1 to 40 nodes long, in hour-aligned windows of 1 to 24 hours; half of
// each window's runs are stored before the timer starts and the other half
// are inserted, so that each new run lands among stored ones. It reports
// runs/s.
func BenchmarkInsertAllocations(b *testing.B, open func(b *testing.B) engine.Store) {
	const (
		nodes  = 32_000
		stored = 100_000
		batch  = 256
	)
	ctx := context.Background()
	s := open(b)
	c := SyntheticFleet(nodes)
	if err := s.Update(ctx, func(tx engine.Tx) error { return tx.ApplyFleet(ctx, c) }); err != nil {
		b.Fatal(err)
	}
	all, err := s.AllNodes(ctx)
	if err != nil {
		b.Fatal(err)
	}
	var first, last int64 = math.MaxInt64, 0
	for _, n := range all {
		first, last = min(first, n.Ordinal), max(last, n.Ordinal)
	}
	if last-first+1 != nodes {
		b.Fatalf("ordinals [%d, %d] of %d nodes are not one run", first, last, nodes)
	}
	g := &runGen{rng: rand.New(rand.NewPCG(1, 2)), first: first, last: last, next: T0}
	var pre []lease.Allocation
	for len(pre) < stored {
		pre = append(pre, g.window()...)
	}
	for chunk := range slices.Chunk(pre, 10_000) {
		if err := s.Update(ctx, func(tx engine.Tx) error { return tx.InsertAllocations(ctx, chunk) }); err != nil {
			b.Fatal(err)
		}
	}
	for b.Loop() {
		as := g.take(batch)
		if err := s.Update(ctx, func(tx engine.Tx) error { return tx.InsertAllocations(ctx, as) }); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "runs/s")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*batch), "ns/run")
}

// BenchmarkAdmissions measures what the engine's group commit writes for
// admissions, on a store holding SyntheticFleet(32,000): a transaction per
// batch of 512 requests, as persist writes them: one InsertLeases of a
// lease per request (random IDs, as the engine makes them), one
// InsertAllocations of two runs per lease (as BenchmarkInsertAllocations
// makes them) and one AppendAudits of an entry per request. It reports
// requests/s, for
//
//   - Fresh: 10,240 requests (20 transactions) on a store that holds
//     nothing else, as bench admit's run of a 10,000-request workload;
//   - Stored: a transaction on a store that holds about 100,000
//     allocations and the leases of every earlier iteration.
func BenchmarkAdmissions(b *testing.B, open func(b *testing.B) engine.Store) {
	const (
		nodes = 32_000
		batch = 512
	)
	ctx := context.Background()
	setup := func(b *testing.B, stored int) (engine.Store, *admissions) {
		s := open(b)
		c := SyntheticFleet(nodes)
		if err := s.Update(ctx, func(tx engine.Tx) error { return tx.ApplyFleet(ctx, c) }); err != nil {
			b.Fatal(err)
		}
		rng := rand.New(rand.NewPCG(3, 4))
		a := &admissions{rng: rng, g: &runGen{rng: rng, first: 1, last: nodes, next: T0}}
		var pre []lease.Allocation
		for len(pre) < stored {
			pre = append(pre, a.g.window()...)
		}
		for chunk := range slices.Chunk(pre, 10_000) {
			if err := s.Update(ctx, func(tx engine.Tx) error { return tx.InsertAllocations(ctx, chunk) }); err != nil {
				b.Fatal(err)
			}
		}
		return s, a
	}
	commit := func(b *testing.B, s engine.Store, a *admissions) {
		leases, as, audits := a.next(batch)
		err := s.Update(ctx, func(tx engine.Tx) error {
			if err := tx.InsertLeases(ctx, leases); err != nil {
				return err
			}
			if err := tx.InsertAllocations(ctx, as); err != nil {
				return err
			}
			return tx.AppendAudits(ctx, audits)
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	b.Run("Fresh", func(b *testing.B) {
		const requests = 10_240
		for b.Loop() {
			b.StopTimer()
			s, a := setup(b, 0)
			runtime.GC() // not the garbage of the setup, or of the last iteration
			b.StartTimer()
			for range requests / batch {
				commit(b, s, a)
			}
			b.StopTimer()
			if err := s.Close(); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
		}
		b.ReportMetric(float64(b.N*requests)/b.Elapsed().Seconds(), "requests/s")
	})
	b.Run("Stored", func(b *testing.B) {
		s, a := setup(b, 100_000)
		for b.Loop() {
			commit(b, s, a)
		}
		b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "requests/s")
	})
}

// admissions makes the writes of batches of admissions.
type admissions struct {
	rng *rand.Rand
	g   *runGen
}

// next returns the leases, allocations and audit entries of n requests.
func (a *admissions) next(n int) ([]lease.Lease, []lease.Allocation, []tenant.AuditEntry) {
	admin := tenant.Principal{KeyID: "key_bench", Role: tenant.OperatorAdmin}
	leases := make([]lease.Lease, n)
	audits := make([]tenant.AuditEntry, n)
	as := a.g.take(2 * n)
	for i := range leases {
		r := as[2*i]
		id := fmt.Sprintf("ls_%016x", a.rng.Uint64())
		as[2*i].ID, as[2*i].LeaseID, as[2*i+1].ID, as[2*i+1].LeaseID = id+".0", id, id+".1", id
		leases[i] = lease.Lease{ID: id, TenantID: "bench", Kind: lease.Reservation, Pool: "bench/H100-SXM",
			Start: r.Start, End: r.End, Schedule: []lease.Step{{From: r.Start, GPUs: 8 * unit.GPUs(r.NodeTo-r.NodeFrom)}},
			Packing: lease.PackAny, Isolation: lease.SharedLeaf, State: lease.Scheduled, Created: T0}
		audits[i] = tenant.AuditEntry{At: T0, Actor: admin, Action: "leases.create", Object: "lease/" + id,
			TenantID: "bench", Outcome: tenant.OutcomeOK, Detail: "kind=reservation pool=bench/H100-SXM gpus=96"}
	}
	return leases, as, audits
}

// runGen makes disjoint allocations for BenchmarkInsertAllocations.
type runGen struct {
	rng         *rand.Rand
	first, last int64     // ordinals of the fleet
	next        time.Time // start of the next window
	pending     []lease.Allocation
	n           int
}

// window cuts the fleet into runs over the next window of time, keeps
// half of them (shuffled) for take and returns the other half.
func (g *runGen) window() []lease.Allocation {
	start := g.next
	end := start.Add(time.Duration(1+g.rng.IntN(24)) * time.Hour)
	g.next = end
	var runs []lease.Allocation
	for from := g.first; from <= g.last; {
		to := min(g.last+1, from+1+g.rng.Int64N(40))
		g.n++
		runs = append(runs, lease.Allocation{ID: fmt.Sprintf("al-%09d", g.n), LeaseID: fmt.Sprintf("ls-%08d", g.n/5),
			TenantID: "bench", NodeFrom: from, NodeTo: to, Start: start, End: end})
		from = to
	}
	g.rng.Shuffle(len(runs), func(i, j int) { runs[i], runs[j] = runs[j], runs[i] })
	half := len(runs) / 2
	g.pending = append(g.pending, runs[half:]...)
	return runs[:half]
}

// take returns n allocations kept by window, making windows as needed.
func (g *runGen) take(n int) []lease.Allocation {
	for len(g.pending) < n {
		g.window()
	}
	out := g.pending[:n:n]
	g.pending = g.pending[n:]
	return out
}

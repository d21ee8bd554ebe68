package engine_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/neocloud/neocloud/internal/clock"
	"github.com/neocloud/neocloud/internal/engine"
	"github.com/neocloud/neocloud/internal/fleet"
	"github.com/neocloud/neocloud/internal/lease"
	"github.com/neocloud/neocloud/internal/store/dbtest"
	"github.com/neocloud/neocloud/internal/store/sqlite"
	"github.com/neocloud/neocloud/internal/tenant"
	"github.com/neocloud/neocloud/internal/unit"
	"github.com/neocloud/neocloud/internal/valid"
)

const pool = "s1/H100-SXM"

// leaseFleet is 2 pods × 2 leaf groups × 4 H100 nodes (16 nodes, 128
// GPUs) in one power domain of budgetKW.
func leaseFleet(budgetKW float64) *fleet.Spec {
	spec := specOf(2, 2, 4, 0, "H100-SXM", nil)
	spec.Sites[0].PowerDomains[0].BudgetKW = budgetKW
	return spec
}

// setup applies leaseFleet and creates tenants acme and beta.
func setup(t testing.TB, st engine.Store, budgetKW float64) (*engine.Engine, *clock.Fake) {
	t.Helper()
	e, clk := newEngine(t, st)
	ctx := context.Background()
	if _, err := e.ApplyFleet(ctx, admin, leaseFleet(budgetKW), false); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"acme", "beta"} {
		if _, err := e.CreateTenant(ctx, admin, tenant.Tenant{ID: id}); err != nil {
			t.Fatal(err)
		}
	}
	return e, clk
}

func reservation(gpus int64, fromH, hours int) lease.Request {
	start := t0.Add(time.Duration(fromH) * time.Hour)
	return lease.Request{Kind: lease.Reservation, Pool: pool, Start: start, End: start.Add(time.Duration(hours) * time.Hour), GPUs: unit.GPUs(gpus)}
}

func acmeAdmin() tenant.Principal {
	return tenant.Principal{KeyID: "key_acme", TenantID: "acme", Role: tenant.TenantAdmin}
}

func TestLeaseLifecycle(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, st engine.Store) {
		e, clk := setup(t, st, 1_000_000)
		ctx := context.Background()
		acme := acmeAdmin()

		// 12 of 16 nodes for 48 h: admitted, placed in as few leaf groups
		// as possible (3 of 4).
		res, err := e.RequestLease(ctx, acme, "", reservation(96, 2, 48))
		if err != nil {
			t.Fatal(err)
		}
		if res.Lease.TenantID != "acme" || res.Lease.StateAt(clk.Now()) != lease.Scheduled {
			t.Errorf("lease = %+v", res.Lease)
		}
		nodes := int64(0)
		for _, a := range res.Allocations {
			nodes += a.Nodes()
		}
		if nodes != 12 {
			t.Errorf("allocations hold %d nodes, want 12: %+v", nodes, res.Allocations)
		}
		got, err := e.Lease(ctx, acme, res.Lease.ID)
		if err != nil || got.ID != res.Lease.ID || got.MaxGPUs() != 96 {
			t.Fatalf("Lease = %+v, %v", got, err)
		}

		// 40 more GPUs overlapping: refused for capacity, with the earliest
		// start right after the first lease ends.
		_, err = e.RequestLease(ctx, acme, "", reservation(40, 10, 10))
		var ref *engine.Refusal
		if !errors.As(err, &ref) || ref.Reason != "capacity" {
			t.Fatalf("overlapping request: err = %v, want a capacity refusal", err)
		}
		if want := t0.Add(50 * time.Hour); !ref.EarliestStart.Equal(want) {
			t.Errorf("earliest start = %s, want %s", ref.EarliestStart, want)
		}
		// A quote says the same and changes nothing.
		q, err := e.Quote(ctx, acme, "", reservation(40, 10, 10))
		if err != nil || q.Feasible || q.Refusal == nil || !q.Refusal.EarliestStart.Equal(ref.EarliestStart) {
			t.Errorf("quote = %+v, %v", q, err)
		}
		q, err = e.Quote(ctx, acme, "", reservation(32, 10, 10))
		if err != nil || !q.Feasible || q.Nodes != 4 || q.LeafGroups != 0 {
			t.Errorf("feasible quote = %+v, %v; want 4 nodes, no placement", q, err)
		}
		q, err = e.QuotePlacement(ctx, acme, "", reservation(32, 10, 10))
		if err != nil || !q.Feasible || q.Nodes != 4 || q.LeafGroups != 1 || q.Pods != 1 {
			t.Errorf("feasible quote with placement = %+v, %v; want 4 nodes in 1 leaf group, 1 pod", q, err)
		}

		// Another tenant cannot see or cancel it.
		beta := tenant.Principal{KeyID: "key_beta", TenantID: "beta", Role: tenant.TenantAdmin}
		if _, err := e.Lease(ctx, beta, res.Lease.ID); !errors.Is(err, engine.ErrNotFound) {
			t.Errorf("foreign get: %v, want ErrNotFound", err)
		}
		if _, err := e.CancelLease(ctx, beta, res.Lease.ID, ""); !errors.Is(err, engine.ErrNotFound) {
			t.Errorf("foreign cancel: %v, want ErrNotFound", err)
		}
		if ls, err := e.Leases(ctx, beta, engine.LeaseFilter{}); err != nil || len(ls) != 0 {
			t.Errorf("beta's leases = %v, %v", ls, err)
		}

		// Three hours in, the lease is active; cancelling ends it now and
		// frees the rest of its window.
		clk.Advance(3*time.Hour + 30*time.Minute)
		if _, err := e.CancelLease(ctx, acme, res.Lease.ID, "plans changed"); err != nil {
			t.Fatal(err)
		}
		if _, err := e.CancelLease(ctx, acme, res.Lease.ID, ""); !errors.Is(err, engine.ErrState) {
			t.Errorf("second cancel: %v, want ErrState", err)
		}
		views, _, err := e.LeaseAllocations(ctx, acme, res.Lease.ID)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range views {
			if !v.End.Equal(clk.Now()) || len(v.Nodes) != int(v.Allocation.Nodes()) {
				t.Errorf("allocation after cancel = %+v, want end %s", v, clk.Now())
			}
		}
		if _, err := e.RequestLease(ctx, acme, "", reservation(128, 10, 10)); err != nil {
			t.Errorf("whole pool after cancel: %v", err)
		}
	})
}

func TestLeaseBadInput(t *testing.T) {
	st := sqlite.OpenTest(t)
	e, _ := setup(t, st, 1_000_000)
	ctx := context.Background()
	ok := reservation(8, 1, 2)
	tests := map[string]struct {
		edit  func(r *lease.Request)
		field string
	}{
		"end before start":        {func(r *lease.Request) { r.End = r.Start.Add(-time.Hour) }, "end"},
		"end equals start":        {func(r *lease.Request) { r.End = r.Start }, "end"},
		"unknown pool":            {func(r *lease.Request) { r.Pool = "s1/B300" }, "pool"},
		"zero gpus":               {func(r *lease.Request) { r.GPUs = 0 }, "gpus"},
		"negative gpus":           {func(r *lease.Request) { r.GPUs = -8 }, "gpus"},
		"part of a node":          {func(r *lease.Request) { r.GPUs = 12 }, "gpus"},
		"beyond the horizon":      {func(r *lease.Request) { r.End = t0.Add(engine.DefaultHorizon + 2*time.Hour) }, "end"},
		"unknown packing":         {func(r *lease.Request) { r.Packing = "rack" }, "packing"},
		"unknown isolation":       {func(r *lease.Request) { r.Isolation = "private" }, "isolation"},
		"unknown kind":            {func(r *lease.Request) { r.Kind = "lease" }, "kind"},
		"start not on the hour":   {func(r *lease.Request) { r.Start = r.Start.Add(time.Minute) }, "start"},
		"start in the past":       {func(r *lease.Request) { r.Start = t0.Add(-2 * time.Hour) }, "start"},
		"spot with a start":       {func(r *lease.Request) { r.Kind = lease.Spot }, "start"},
		"schedule on reservation": {func(r *lease.Request) { r.Schedule = []lease.Step{{From: r.Start, GPUs: 8}} }, "schedule"},
		"MW less than a node": {func(r *lease.Request) {
			r.Kind, r.GPUs, r.Schedule = lease.Contract, 0, []lease.Step{{From: r.Start, Power: 5 * unit.Kilowatt}}
		}, "schedule[0].mw"},
		"MW and GPUs in one step": {func(r *lease.Request) {
			r.Kind, r.GPUs, r.Schedule = lease.Contract, 0, []lease.Step{{From: r.Start, GPUs: 8, Power: unit.Megawatt}}
		}, "schedule[0]"},
		"ramp not increasing": {func(r *lease.Request) {
			r.Kind, r.GPUs, r.Schedule = lease.Contract, 0, []lease.Step{{From: r.Start, GPUs: 8}, {From: r.Start, GPUs: 16}}
		}, "schedule[1].from"},
		"ramp not starting at start": {func(r *lease.Request) {
			r.Kind, r.GPUs, r.Schedule = lease.Contract, 0, []lease.Step{{From: r.Start.Add(time.Hour), GPUs: 8}}
		}, "schedule[0].from"},
	}
	before := dbtest.Dump(t, st)
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			r := ok
			r.Schedule = nil
			tc.edit(&r)
			for _, call := range []func() error{
				func() error { _, err := e.RequestLease(ctx, acmeAdmin(), "", r); return err },
				func() error { _, err := e.Quote(ctx, acmeAdmin(), "", r); return err },
			} {
				err := call()
				var ve *valid.Error
				if !errors.As(err, &ve) {
					t.Fatalf("err = %v, want *valid.Error", err)
				}
				fields := make([]string, len(ve.Issues))
				for i, is := range ve.Issues {
					fields[i] = is.Field
				}
				found := false
				for _, f := range fields {
					found = found || f == tc.field
				}
				if !found {
					t.Errorf("issues name %v, want %q: %v", fields, tc.field, err)
				}
			}
		})
	}
	if diff := cmp.Diff(before, dbtest.Dump(t, st)); diff != "" {
		t.Errorf("bad input changed the store (-before +after):\n%s", diff)
	}
}

func TestContractRampInMW(t *testing.T) {
	st := sqlite.OpenTest(t)
	e, _ := setup(t, st, 1_000_000)
	ctx := context.Background()
	start := t0.Add(24 * time.Hour)
	// An H100 node draws 10.2 kW IT, 12.24 kW facility at PUE 1.2: 0.05 MW
	// is 4 nodes (32 GPUs); the second step is 64 GPUs.
	r := lease.Request{Kind: lease.Contract, Pool: pool, Start: start, End: start.Add(30 * 24 * time.Hour),
		Schedule: []lease.Step{{From: start, Power: 50 * unit.Kilowatt}, {From: start.Add(10 * 24 * time.Hour), GPUs: 64}}}
	res, err := e.RequestLease(ctx, admin, "acme", r)
	if err != nil {
		t.Fatal(err)
	}
	if got := res.Lease.Schedule[0].GPUs; got != 32 {
		t.Errorf("0.05 MW became %d GPUs, want 32", got)
	}
	held := map[time.Time]int64{}
	for _, a := range res.Allocations {
		held[a.Start] += a.Nodes()
	}
	if want := map[time.Time]int64{start: 4, start.Add(10 * 24 * time.Hour): 8}; !cmp.Equal(want, held) {
		t.Errorf("nodes by step start = %v, want %v", held, want)
	}
	// The ramp keeps its first nodes: continuity.
	first := map[int64]bool{}
	for _, a := range res.Allocations {
		if a.Start.Equal(start) {
			for o := a.NodeFrom; o < a.NodeTo; o++ {
				first[o] = true
			}
		}
	}
	kept := 0
	for _, a := range res.Allocations {
		if !a.Start.Equal(start) {
			for o := a.NodeFrom; o < a.NodeTo; o++ {
				if first[o] {
					kept++
				}
			}
		}
	}
	if kept != 4 {
		t.Errorf("second step kept %d of the first step's 4 nodes", kept)
	}
}

func TestNodeFailureReplacesOrRecordsShortfall(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, st engine.Store) {
		e, clk := setup(t, st, 1_000_000)
		ctx := context.Background()
		a, err := e.RequestLease(ctx, admin, "acme", reservation(16, 1, 24))
		if err != nil {
			t.Fatal(err)
		}
		views, _, err := e.LeaseAllocations(ctx, admin, a.Lease.ID)
		if err != nil {
			t.Fatal(err)
		}
		victim := views[0].Nodes[0]
		clk.Advance(2 * time.Hour)
		res, err := e.SetNodeState(ctx, admin, victim, fleet.Failed, "XID 79")
		if err != nil {
			t.Fatal(err)
		}
		if res.Replaced != 1 || len(res.Shortfalls) != 0 {
			t.Fatalf("failure result = %+v, want 1 replacement", res)
		}
		views, _, err = e.LeaseAllocations(ctx, admin, a.Lease.ID)
		if err != nil {
			t.Fatal(err)
		}
		now := clk.Now()
		var live []string
		for _, v := range views {
			if v.End.After(now) {
				live = append(live, v.Nodes...)
			}
		}
		if len(live) != 2 {
			t.Errorf("nodes held from now = %v, want 2", live)
		}
		for _, n := range live {
			if n == victim {
				t.Errorf("failed node %s still held", victim)
			}
		}

		// Fill the rest of the pool, then fail another of the lease's
		// nodes: no replacement, a shortfall is recorded.
		if _, err := e.RequestLease(ctx, admin, "beta", reservation(128-16-8, 3, 24)); err != nil {
			t.Fatalf("fill: %v", err)
		}
		res, err = e.SetNodeState(ctx, admin, live[0], fleet.Maintenance, "")
		if err != nil {
			t.Fatal(err)
		}
		if res.Replaced != 0 || len(res.Shortfalls) != 1 || res.Shortfalls[0].GPUs != 8 || !res.Shortfalls[0].To.Equal(a.Lease.End) {
			t.Fatalf("second failure = %+v, want one 8-GPU shortfall to the lease's end", res)
		}
		_, short, err := e.LeaseAllocations(ctx, admin, a.Lease.ID)
		if err != nil || len(short) != 1 {
			t.Errorf("stored shortfalls = %v, %v", short, err)
		}
		// Repair: the node returns to the pool.
		if _, err := e.SetNodeState(ctx, admin, victim, fleet.Available, "reseated"); err != nil {
			t.Fatal(err)
		}
		if _, err := e.RequestLease(ctx, admin, "beta", reservation(8, 30, 1)); err != nil {
			t.Errorf("lease on the repaired capacity: %v", err)
		}
	})
}

func TestHoldback(t *testing.T) {
	st := sqlite.OpenTest(t)
	e, _ := setup(t, st, 1_000_000)
	ctx := context.Background()
	if err := e.SetHoldback(ctx, admin, pool, []engine.HoldbackStep{{From: t0, GPUs: 64}, {From: t0.Add(48 * time.Hour), GPUs: 0}}); err != nil {
		t.Fatal(err)
	}
	var ref *engine.Refusal
	if _, err := e.RequestLease(ctx, admin, "acme", reservation(72, 1, 4)); !errors.As(err, &ref) {
		t.Fatalf("request over the holdback: %v, want a refusal", err)
	} else if want := t0.Add(48 * time.Hour); !ref.EarliestStart.Equal(want) {
		t.Errorf("earliest start = %s, want %s (when the holdback ends)", ref.EarliestStart, want)
	}
	if _, err := e.RequestLease(ctx, admin, "acme", reservation(64, 1, 100)); err != nil {
		t.Fatalf("request within the rest: %v", err)
	}
	// Holding back more where the lease sits is refused and changes nothing.
	err := e.SetHoldback(ctx, admin, pool, []engine.HoldbackStep{{From: t0.Add(50 * time.Hour), GPUs: 72}})
	if !errors.As(err, &ref) || ref.Reason != "holdback" {
		t.Fatalf("conflicting holdback: %v, want a holdback refusal", err)
	}
	got, err := e.Holdback(ctx, admin, pool)
	if err != nil || len(got) != 2 || got[0].GPUs != 64 {
		t.Errorf("holdback after a refused change = %v, %v", got, err)
	}
	pts, err := e.Capacity(ctx, admin, pool, t0, t0.Add(72*time.Hour), 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	want := []engine.CapacityPoint{
		{At: t0, Physical: 128, Healthy: 128, Holdback: 64, Reservation: 64, Free: 0},
		{At: t0.Add(24 * time.Hour), Physical: 128, Healthy: 128, Holdback: 64, Reservation: 64, Free: 0},
		{At: t0.Add(48 * time.Hour), Physical: 128, Healthy: 128, Holdback: 0, Reservation: 64, Free: 64},
	}
	if diff := cmp.Diff(want, pts); diff != "" {
		t.Errorf("capacity (-want +got):\n%s", diff)
	}
	if _, err := e.Capacity(ctx, acmeAdmin(), pool, t0, t0.Add(time.Hour), time.Hour); !errors.Is(err, tenant.ErrForbidden) {
		t.Errorf("tenant reading capacity: %v, want ErrForbidden", err)
	}
}

// TestRestartRebuildsTheSameState answers the same quotes and capacity
// before and after a restart.
func TestRestartRebuildsTheSameState(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, st engine.Store) {
		e, clk := setup(t, st, 1_000_000)
		ctx := context.Background()
		for i, r := range []lease.Request{reservation(24, 1, 10), reservation(40, 5, 30), reservation(16, 20, 5)} {
			if _, err := e.RequestLease(ctx, admin, "acme", r); err != nil {
				t.Fatalf("lease %d: %v", i, err)
			}
		}
		if err := e.SetHoldback(ctx, admin, pool, []engine.HoldbackStep{{From: t0.Add(2 * time.Hour), GPUs: 16}}); err != nil {
			t.Fatal(err)
		}
		if _, err := e.SetNodeState(ctx, admin, nodeNames(t, st)[3], fleet.Failed, ""); err != nil {
			t.Fatal(err)
		}
		snapshot := func(e *engine.Engine) ([]engine.CapacityPoint, []engine.Quote) {
			pts, err := e.Capacity(ctx, admin, pool, clk.Now(), t0.Add(48*time.Hour), time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			var qs []engine.Quote
			for _, r := range []lease.Request{reservation(64, 2, 10), reservation(8, 6, 1), reservation(120, 40, 2)} {
				q, err := e.Quote(ctx, admin, "acme", r)
				if err != nil {
					t.Fatal(err)
				}
				qs = append(qs, q)
			}
			return pts, qs
		}
		clk.Advance(time.Hour) // the failure's hour is now past: both count the same
		p1, q1 := snapshot(e)
		e2, err := engine.New(engine.Config{Store: st, Clock: clk})
		if err != nil {
			t.Fatal(err)
		}
		p2, q2 := snapshot(e2)
		if diff := cmp.Diff(p1, p2); diff != "" {
			t.Errorf("capacity after restart (-before +after):\n%s", diff)
		}
		if diff := cmp.Diff(q1, q2); diff != "" {
			t.Errorf("quotes after restart (-before +after):\n%s", diff)
		}
	})
}

// failingStore fails the next Update when fail is set.
type failingStore struct {
	engine.Store
	fail bool
}

func (s *failingStore) Update(ctx context.Context, fn func(engine.Tx) error) error {
	if s.fail {
		s.fail = false
		return errors.New("disk full")
	}
	return s.Store.Update(ctx, fn)
}

// TestFailedCommitChangesNothing: a lease whose commit fails is answered
// with the error, and the in-memory capacity forgets it.
func TestFailedCommitChangesNothing(t *testing.T) {
	fs := &failingStore{Store: sqlite.OpenTest(t)}
	e, _ := setup(t, fs, 1_000_000)
	ctx := context.Background()
	fs.fail = true
	if _, err := e.RequestLease(ctx, admin, "acme", reservation(128, 1, 10)); err == nil {
		t.Fatal("lease admitted although its commit failed")
	}
	q, err := e.Quote(ctx, admin, "acme", reservation(128, 1, 10))
	if err != nil || !q.Feasible {
		t.Fatalf("quote after the failed commit = %+v, %v: the whole pool should be free", q, err)
	}
	if _, err := e.RequestLease(ctx, admin, "acme", reservation(128, 1, 10)); err != nil {
		t.Fatalf("the same lease after the failure: %v", err)
	}
}

// TestQuoteNeverFits: leaf or pod packing of more nodes than any leaf
// group or pod of the pool has is refused for topology, naming the
// largest, with no earliest start, even where the counts alone would
// refuse it for capacity; the quote with placement says the same.
func TestQuoteNeverFits(t *testing.T) {
	st := sqlite.OpenTest(t)
	e, _ := setup(t, st, 1_000_000)
	ctx := context.Background()
	// The whole pool is held over hours 10-20: the counts say capacity.
	if _, err := e.RequestLease(ctx, admin, "beta", reservation(128, 10, 10)); err != nil {
		t.Fatal(err)
	}
	withPacking := func(r lease.Request, p lease.Packing) lease.Request { r.Packing = p; return r }
	tests := []struct {
		name   string
		req    lease.Request
		detail string
	}{
		{"leaf, pool free", withPacking(reservation(40, 30, 4), lease.PackLeaf), "no leaf group of pool s1/H100-SXM has 5 nodes (packing leaf); the largest has 4"},
		{"leaf, pool held", withPacking(reservation(40, 12, 4), lease.PackLeaf), "no leaf group of pool s1/H100-SXM has 5 nodes (packing leaf); the largest has 4"},
		{"pod, more than the pool", withPacking(reservation(136, 30, 4), lease.PackPod), "no pod of pool s1/H100-SXM has 17 nodes (packing pod); the largest has 8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, quote := range []func(context.Context, tenant.Principal, string, lease.Request) (engine.Quote, error){e.Quote, e.QuotePlacement} {
				q, err := quote(ctx, admin, "acme", tt.req)
				if err != nil || q.Feasible || q.Refusal == nil {
					t.Fatalf("quote = %+v, %v; want a refusal", q, err)
				}
				if q.Refusal.Reason != "topology" || q.Refusal.Detail != tt.detail || !q.Refusal.EarliestStart.IsZero() {
					t.Errorf("refusal = %+v; want topology %q and no earliest start", q.Refusal, tt.detail)
				}
			}
		})
	}
}

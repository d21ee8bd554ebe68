package engine_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/neocloud/neocloud/internal/demand"
	"github.com/neocloud/neocloud/internal/engine"
	"github.com/neocloud/neocloud/internal/fleet"
	"github.com/neocloud/neocloud/internal/store/sqlite"
	"github.com/neocloud/neocloud/internal/tenant"
	"github.com/neocloud/neocloud/internal/unit"
	"github.com/neocloud/neocloud/internal/valid"
)

func TestPowerByDomain(t *testing.T) {
	e, clk := setup(t, sqlite.OpenTest(t), 1_000_000)
	ctx := context.Background()
	nodes, err := e.Nodes(ctx, engine.NodeFilter{})
	if err != nil || len(nodes) != 16 {
		t.Fatalf("nodes: %d, %v", len(nodes), err)
	}
	w := nodes[0].ITPower
	// Two nodes from now for two hours, two more from the next hour.
	if _, err := e.RequestLease(ctx, admin, "acme", reservation(16, 0, 2)); err != nil {
		t.Fatal(err)
	}
	if _, err := e.RequestLease(ctx, admin, "beta", reservation(16, 1, 2)); err != nil {
		t.Fatal(err)
	}
	want := func(allocated int64) []engine.DomainPower {
		return []engine.DomainPower{
			{Site: "s1", Name: "pd-1", Budget: unit.Power(1_000_000_000), Installed: 16 * w, Allocated: unit.Power(allocated) * w, Nodes: 16, AllocatedNodes: allocated},
			{Site: "s1", Name: "pd-2", Budget: unit.Power(4_000_000)},
		}
	}
	for _, tt := range []struct {
		at    time.Duration
		nodes int64
	}{{0, 2}, {time.Hour + time.Minute, 4}, {2 * time.Hour, 2}, {3 * time.Hour, 0}} {
		clk.Set(t0.Add(tt.at))
		got, err := e.PowerByDomain(ctx, admin)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want(tt.nodes), got); diff != "" {
			t.Errorf("at +%s (-want +got):\n%s", tt.at, diff)
		}
	}
	if _, err := e.PowerByDomain(ctx, acmeAdmin()); !errors.Is(err, tenant.ErrForbidden) {
		t.Errorf("tenant: %v, want ErrForbidden", err)
	}
}

func TestCapacityTimeline(t *testing.T) {
	e, clk := setup(t, sqlite.OpenTest(t), 1_000_000)
	ctx := context.Background()
	// 16 GPUs reserved over [+1h, +3h); 8 held back from +6h.
	if _, err := e.RequestLease(ctx, admin, "acme", reservation(16, 1, 2)); err != nil {
		t.Fatal(err)
	}
	if err := e.SetHoldback(ctx, admin, pool, []engine.HoldbackStep{{From: t0.Add(6 * time.Hour), GPUs: 8}}); err != nil {
		t.Fatal(err)
	}
	// Four hours later, with the owner's use measured in the hours gone.
	clk.Set(t0.Add(4 * time.Hour))
	var samples []demand.Sample
	for h := range 4 {
		samples = append(samples, demand.Sample{Pool: pool, Hour: t0.Add(time.Duration(h) * time.Hour), GPUs: int64(10 * (h + 1))})
	}
	if _, err := e.ImportDemand(ctx, admin, samples); err != nil {
		t.Fatal(err)
	}
	got, err := e.CapacityTimeline(ctx, admin, pool, t0.Add(-time.Hour), t0.Add(8*time.Hour), 2*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	at := func(h int) time.Time { return t0.Add(time.Duration(h) * time.Hour) }
	want := []engine.TimelinePoint{
		{At: at(-1), Past: true, Healthy: 128, Internal: 10, Idle: 118},
		{At: at(1), Past: true, Healthy: 128, Internal: 30, Reservation: 16, Idle: 82},
		{At: at(3), Healthy: 128, Internal: 40, Idle: 88}, // half past, half to come
		{At: at(5), Healthy: 128, Holdback: 8, Idle: 120},
		{At: at(7), Healthy: 128, Holdback: 8, Idle: 120},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("timeline (-want +got):\n%s", diff)
	}

	for _, tt := range []struct {
		name, field string
		pool        string
		from, to    time.Time
		step        time.Duration
	}{
		{"unknown pool", "pool", "s1/X", at(0), at(1), time.Hour},
		{"half hours", "step", pool, at(0), at(1), 30 * time.Minute},
		{"too long ago", "from", pool, at(-6 * 366 * 24), at(0), 24 * time.Hour},
		{"empty", "to", pool, at(2), at(1), time.Hour},
		{"too many points", "step", pool, at(-24 * 730), at(0), time.Hour},
	} {
		_, err := e.CapacityTimeline(ctx, admin, tt.pool, tt.from, tt.to, tt.step)
		var v *valid.Error
		if !errors.As(err, &v) || v.Issues[0].Field != tt.field {
			t.Errorf("%s: %v, want an issue with %s", tt.name, err, tt.field)
		}
	}
	if _, err := e.CapacityTimeline(ctx, acmeAdmin(), pool, at(0), at(1), time.Hour); !errors.Is(err, tenant.ErrForbidden) {
		t.Errorf("tenant: %v, want ErrForbidden", err)
	}
}

// Spot runs on holdback the owner does not use: the chart's stack must
// not rise above healthy, now or in the past, and its holdback band is
// the part of the holdback spot has not borrowed.
func TestCapacityTimelineStacksUnderHealthy(t *testing.T) {
	e, clk := setup(t, sqlite.OpenTest(t), 1_000_000)
	ctx := context.Background()
	// 128 GPUs: 64 held back from now, 32 reserved for six hours, and 64
	// on spot (spot counts the owner's use, not the holdback).
	if err := e.SetHoldback(ctx, admin, pool, []engine.HoldbackStep{{From: t0, GPUs: 64}}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.RequestLease(ctx, admin, "acme", reservation(32, 0, 6)); err != nil {
		t.Fatal(err)
	}
	clk.Set(t0.Add(10 * time.Minute))
	if _, err := e.RequestLease(ctx, admin, "beta", spotReq(64, 50, "2m")); err != nil {
		t.Fatal(err)
	}
	// Three hours on, the owner's use measured as 100 GPUs in the hours
	// gone: more than the leases left of today's healthy GPUs.
	clk.Set(t0.Add(3 * time.Hour))
	var samples []demand.Sample
	for h := range 3 {
		samples = append(samples, demand.Sample{Pool: pool, Hour: t0.Add(time.Duration(h) * time.Hour), GPUs: 100})
	}
	if _, err := e.ImportDemand(ctx, admin, samples); err != nil {
		t.Fatal(err)
	}
	at := func(h int) time.Time { return t0.Add(time.Duration(h) * time.Hour) }
	for _, step := range []time.Duration{time.Hour, 2 * time.Hour, 5 * time.Hour} {
		got, err := e.CapacityTimeline(ctx, admin, pool, at(0), at(10), step)
		if err != nil {
			t.Fatal(err)
		}
		for _, pt := range got {
			if sum := pt.Internal + pt.Holdback + pt.Contract + pt.Reservation + pt.Spot + pt.Idle; sum > pt.Healthy {
				t.Errorf("step %s at %s: the bands stack to %d, above %d healthy: %+v", step, pt.At.Format(time.RFC3339), sum, pt.Healthy, pt)
			}
		}
		if step != time.Hour {
			continue
		}
		want := map[int]engine.TimelinePoint{
			1: {At: at(1), Past: true, Healthy: 128, Internal: 32, Reservation: 32, Spot: 64},
			4: {At: at(4), Healthy: 128, Holdback: 32, Reservation: 32, Spot: 64},
			8: {At: at(8), Healthy: 128, Holdback: 64, Spot: 64},
		}
		for h, w := range want {
			if diff := cmp.Diff(w, got[h]); diff != "" {
				t.Errorf("hour %d (-want +got):\n%s", h, diff)
			}
		}
	}
}

func TestPoolsHeld(t *testing.T) {
	e, clk := setup(t, sqlite.OpenTest(t), 1_000_000)
	ctx := context.Background()
	if _, err := e.RequestLease(ctx, admin, "acme", reservation(16, 0, 2)); err != nil {
		t.Fatal(err)
	}
	if _, err := e.RequestLease(ctx, admin, "beta", reservation(24, 1, 2)); err != nil {
		t.Fatal(err)
	}
	nodes, err := e.Nodes(ctx, engine.NodeFilter{})
	if err != nil {
		t.Fatal(err)
	}
	// A node no lease holds fails.
	var down string
	for _, n := range slices.Backward(nodes) {
		down = n.Name
		break
	}
	if _, err := e.SetNodeState(ctx, admin, down, fleet.Failed, "test"); err != nil {
		t.Fatal(err)
	}
	w := nodes[0].ITPower
	want := func(held int64) []engine.PoolHeld {
		return []engine.PoolHeld{{Pool: pool, Nodes: 16, GPUs: 128, ITPower: 16 * w,
			ByState:   map[fleet.State]int64{fleet.Available: 15, fleet.Failed: 1},
			HeldNodes: held, HeldGPUs: unit.GPUs(8 * held), FreeNodes: 15 - held, FreeGPUs: unit.GPUs(8 * (15 - held))}}
	}
	for _, tt := range []struct {
		at   time.Duration
		held int64
	}{{0, 2}, {time.Hour + time.Minute, 5}, {2 * time.Hour, 3}, {3 * time.Hour, 0}} {
		clk.Set(t0.Add(tt.at))
		got, err := e.PoolsHeld(ctx, admin)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want(tt.held), got); diff != "" {
			t.Errorf("at +%s (-want +got):\n%s", tt.at, diff)
		}
	}
	if _, err := e.PoolsHeld(ctx, acmeAdmin()); !errors.Is(err, tenant.ErrForbidden) {
		t.Errorf("tenant: %v, want ErrForbidden", err)
	}
}

func TestTenantSummaries(t *testing.T) {
	e, clk := setup(t, sqlite.OpenTest(t), 1_000_000)
	ctx := context.Background()
	for _, r := range []engine.KeyRequest{{TenantID: "acme", Role: tenant.TenantAdmin}, {TenantID: "acme", Role: tenant.TenantViewer}, {TenantID: "beta", Role: tenant.TenantViewer}} {
		k, _, err := e.CreateKey(ctx, admin, r)
		if err != nil {
			t.Fatal(err)
		}
		if r.Role == tenant.TenantViewer && r.TenantID == "acme" {
			if _, err := e.RevokeKey(ctx, admin, k.ID); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := e.RequestLease(ctx, admin, "acme", reservation(8, 1, 2)); err != nil {
		t.Fatal(err)
	}
	if _, err := e.RequestLease(ctx, admin, "acme", reservation(8, 1, 5)); err != nil {
		t.Fatal(err)
	}
	clk.Set(t0.Add(4 * time.Hour)) // the first has ended
	got, err := e.TenantSummaries(ctx, admin)
	if err != nil {
		t.Fatal(err)
	}
	type row struct {
		ID                     string
		Live, Keys, ActiveKeys int
	}
	var rows []row
	for _, s := range got {
		rows = append(rows, row{s.ID, s.LiveLeases, s.Keys, s.ActiveKeys})
	}
	if diff := cmp.Diff([]row{{"acme", 1, 2, 1}, {"beta", 0, 1, 1}}, rows); diff != "" {
		t.Errorf("summaries (-want +got):\n%s", diff)
	}
	mine, err := e.TenantSummaries(ctx, acmeAdmin())
	if err != nil || len(mine) != 1 || mine[0].ID != "acme" || mine[0].Keys != 2 {
		t.Errorf("a tenant's own summary: %+v, %v", mine, err)
	}
	// One tenant's summary counts as the list does.
	for i, want := range rows {
		one, err := e.TenantSummary(ctx, admin, want.ID)
		if got := (row{one.ID, one.LiveLeases, one.Keys, one.ActiveKeys}); err != nil || got != want {
			t.Errorf("TenantSummary(%s) = %+v, %v; want %+v (row %d)", want.ID, got, err, want, i)
		}
	}
	if _, err := e.TenantSummary(ctx, acmeAdmin(), "beta"); err == nil {
		t.Error("acme read beta's summary")
	}
}

func TestPoolRefs(t *testing.T) {
	e, _ := newEngine(t, sqlite.OpenTest(t))
	ctx := context.Background()
	if _, err := e.ApplyFleet(ctx, admin, specOf(1, 1, 2, 1, "H100-SXM", nil), false); err != nil {
		t.Fatal(err)
	}
	got, err := e.PoolRefs(ctx, admin)
	if err != nil {
		t.Fatal(err)
	}
	want := []engine.PoolRef{{ID: "s1/GB200", Site: "s1", Model: "GB200"}, {ID: "s1/H100-SXM", Site: "s1", Model: "H100-SXM"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("pools (-want +got):\n%s", diff)
	}
}

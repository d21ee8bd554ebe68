package engine_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/neocloud/neocloud/internal/clock"
	"github.com/neocloud/neocloud/internal/engine"
	"github.com/neocloud/neocloud/internal/fleet"
	"github.com/neocloud/neocloud/internal/lease"
	"github.com/neocloud/neocloud/internal/money"
	"github.com/neocloud/neocloud/internal/spot"
	"github.com/neocloud/neocloud/internal/store/dbtest"
	"github.com/neocloud/neocloud/internal/store/sqlite"
	"github.com/neocloud/neocloud/internal/tenant"
	"github.com/neocloud/neocloud/internal/unit"
)

func spotReq(gpus int64, maxUSD float64, notice string) lease.Request {
	return lease.Request{Kind: lease.Spot, Pool: pool, GPUs: unit.GPUs(gpus), MaxPrice: money.USD(int64(maxUSD * 1e6)), Notice: notice}
}

// The test pool: 16 nodes of 8 GPUs; the spot buffer is 3 GPUs.
func TestSpotAdmission(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, st engine.Store) {
		e, clk := setup(t, st, 1_000_000)
		ctx := context.Background()
		clk.Set(t0.Add(10 * time.Minute))
		tests := []struct {
			name   string
			req    lease.Request
			reason string // "" = admitted
		}{
			{"below the price", spotReq(8, 0.50, "2m"), "price"},
			{"unknown tier", spotReq(8, 5, "1h"), "valid"},
			{"more than idle", spotReq(128, 50, "2m"), "capacity"},
			{"admitted", spotReq(64, 5, "30m"), ""},
			{"rest of idle", spotReq(56, 50, "24h"), ""},
			{"nothing left", spotReq(8, 50, "2m"), "capacity"},
		}
		for _, tt := range tests {
			res, err := e.RequestLease(ctx, admin, "acme", tt.req)
			var ref *engine.Refusal
			var ve interface{ Len() int }
			switch {
			case tt.reason == "" && err != nil:
				t.Fatalf("%s: %v", tt.name, err)
			case tt.reason == "valid" && !errors.As(err, &ve):
				t.Fatalf("%s: got %v, want a validation error", tt.name, err)
			case tt.reason != "" && tt.reason != "valid" && (!errors.As(err, &ref) || ref.Reason != tt.reason):
				t.Fatalf("%s: got %v, want refusal %q", tt.name, err, tt.reason)
			case tt.reason == "":
				l := res.Lease
				if !l.Start.Equal(clk.Now()) || !l.End.Equal(t0.Add(engine.DefaultHorizon)) || !l.Noticed.IsZero() {
					t.Fatalf("%s: lease %+v: want start now, open-ended, no notice", tt.name, l)
				}
			}
		}
		m, err := e.SpotMarkets(ctx, admin, pool)
		if err != nil {
			t.Fatal(err)
		}
		if got := m[0]; got.Spot != 120 || got.SpotIdle != 5 || got.Buffer != 3 || got.UtilizationPermille != 937 {
			t.Fatalf("market %+v", got)
		}
		// A tenant sees prices, not the owner's capacity.
		tm, err := e.SpotMarkets(ctx, acmeAdmin(), pool)
		if err != nil {
			t.Fatal(err)
		}
		if tm[0].Visible || tm[0].Healthy != 0 || len(tm[0].Prices) != 3 {
			t.Fatalf("tenant market %+v", tm[0])
		}
	})
}

// The owner's demand returns: the cheapest spot lease is reclaimed, holds
// its nodes until its notice ends, then its nodes are wiped before anyone
// else gets them; the guaranteed lease is never touched.
func TestReclaimForOwner(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, st engine.Store) {
		e, clk := setup(t, st, 1_000_000)
		ctx := context.Background()
		clk.Set(t0.Add(10 * time.Minute))
		res, err := e.RequestLease(ctx, admin, "acme", reservation(32, 1, 48))
		if err != nil {
			t.Fatal(err)
		}
		cheap, err := e.RequestLease(ctx, admin, "acme", spotReq(40, 3, "30m"))
		if err != nil {
			t.Fatal(err)
		}
		dear, err := e.RequestLease(ctx, admin, "beta", spotReq(48, 50, "2m"))
		if err != nil {
			t.Fatal(err)
		}
		clk.Set(t0.Add(2 * time.Hour))
		// 128 healthy − 32 guaranteed − 3 buffer − 88 spot = 5 idle: the
		// owner wants 16 more, so 40 GPUs of the cheapest lease go.
		ids, err := e.SetInternalUse(ctx, admin, pool, 16)
		if err != nil {
			t.Fatal(err)
		}
		if len(ids) != 1 || ids[0] != cheap.Lease.ID {
			t.Fatalf("reclaimed %v, want [%s]", ids, cheap.Lease.ID)
		}
		l, err := st.Lease(ctx, cheap.Lease.ID)
		if err != nil {
			t.Fatal(err)
		}
		release := clk.Now().Add(30 * time.Minute)
		if !l.Noticed.Equal(clk.Now()) || !l.End.Equal(release) {
			t.Fatalf("reclaimed lease noticed %s end %s, want %s and %s", l.Noticed, l.End, clk.Now(), release)
		}
		// The tenant reads why (the lease, its event): nothing of the
		// owner's use.
		evs, err := e.Events(ctx, tenant.Principal{Role: tenant.TenantViewer, TenantID: "acme"}, 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range evs {
			if b, _ := json.Marshal(ev); strings.Contains(string(b), "internal") {
				t.Errorf("tenant event %s tells of the owner's use: %s", ev.Type, b)
			}
		}
		if strings.Contains(l.Reason, "internal") {
			t.Errorf("reclaimed lease's reason %q tells of the owner's use", l.Reason)
		}
		for _, id := range []string{dear.Lease.ID, res.Lease.ID} {
			if l, _ := st.Lease(ctx, id); !l.Noticed.IsZero() {
				t.Fatalf("lease %s was reclaimed too", id)
			}
		}
		// Within the notice the nodes are still the tenant's.
		clk.Set(release.Add(-time.Minute))
		if _, err := e.Tick(ctx); err != nil {
			t.Fatal(err)
		}
		as, _, err := e.LeaseAllocations(ctx, admin, cheap.Lease.ID)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range as {
			if !a.End.Equal(release) {
				t.Fatalf("allocation %s ends %s, want %s", a.ID, a.End, release)
			}
		}
		// After it, the nodes are wiped before another tenant gets them.
		clk.Set(release.Add(time.Minute))
		tr, err := e.Tick(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if tr.Released != 1 || tr.Sanitizing != 5 {
			t.Fatalf("tick %+v, want 1 released and 5 nodes sanitizing", tr)
		}
		if ns, err := e.Nodes(ctx, engine.NodeFilter{State: fleet.Sanitizing}); err != nil || len(ns) != 5 || ns[0].State != fleet.Sanitizing {
			t.Fatalf("nodes sanitizing: %v, %v; want the 5 released", ns, err)
		}
		if ns, err := e.Nodes(ctx, engine.NodeFilter{}); err != nil || !slices.ContainsFunc(ns, func(n fleet.Node) bool { return n.State == fleet.Sanitizing }) {
			t.Fatalf("all nodes: %v; want the released ones shown sanitizing", err)
		}
		if _, err := e.SetInternalUse(ctx, admin, pool, 0); err != nil {
			t.Fatal(err)
		}
		var ref *engine.Refusal
		if _, err := e.RequestLease(ctx, admin, "beta", spotReq(40, 50, "2m")); !errors.As(err, &ref) {
			t.Fatalf("spot on nodes being wiped: got %v, want a refusal", err)
		}
		for _, a := range as {
			names, _ := e.NodeNames(ctx, []lease.Allocation{a.Allocation})
			if _, err := e.ConfirmSanitized(ctx, admin, names[0][0]); err != nil {
				t.Fatal(err)
			}
			if _, err := e.ConfirmSanitized(ctx, admin, names[0][0]); !errors.Is(err, engine.ErrState) {
				t.Fatalf("second confirmation: got %v, want ErrState", err)
			}
		}
		clk.Set(release.Add(31 * time.Minute))
		tr, err = e.Tick(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if tr.Sanitized == 0 {
			t.Fatalf("tick %+v: no wipe ended", tr)
		}
		nodes, err := st.AllNodes(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range nodes {
			if n.State == fleet.Sanitizing {
				t.Fatalf("node %s still sanitizing", n.Name)
			}
		}
		if _, err := e.RequestLease(ctx, admin, "beta", spotReq(40, 50, "2m")); err != nil {
			t.Fatalf("spot after the wipe: %v", err)
		}
	})
}

// The spot a pool's market counts follows each lease's allocations
// through a reclaim: the reclaimed lease counts until its release, not
// after it, even before a tick forgets the lease (the engine remembers
// what each spot lease holds over a span of time: the reclaim ends it).
func TestSpotMarketAcrossRelease(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, st engine.Store) {
		e, clk := setup(t, st, 1_000_000)
		ctx := context.Background()
		clk.Set(t0.Add(10 * time.Minute))
		if _, err := e.RequestLease(ctx, admin, "acme", spotReq(40, 3, "30m")); err != nil {
			t.Fatal(err)
		}
		if _, err := e.RequestLease(ctx, admin, "beta", spotReq(48, 50, "2m")); err != nil {
			t.Fatal(err)
		}
		spotNow := func(at time.Time) int64 {
			t.Helper()
			clk.Set(at)
			m, err := e.SpotMarkets(ctx, admin, pool)
			if err != nil {
				t.Fatal(err)
			}
			return m[0].Spot
		}
		clk.Set(t0.Add(2 * time.Hour))
		// 128 healthy − 3 buffer − 88 spot = 37 idle: the owner's 77 take
		// the cheaper lease back, released after its 30 minutes.
		if ids, err := e.SetInternalUse(ctx, admin, pool, 77); err != nil || len(ids) != 1 {
			t.Fatalf("reclaimed %v, %v; want one lease", ids, err)
		}
		release := t0.Add(2*time.Hour + 30*time.Minute)
		clk.Set(release.Add(-time.Minute))
		if _, err := e.Tick(ctx); err != nil {
			t.Fatal(err)
		}
		for _, tt := range []struct {
			at   time.Time
			want int64
		}{
			{release.Add(-time.Minute), 88},
			{release, 48},
			{release.Add(time.Minute), 48},
		} {
			if got := spotNow(tt.at); got != tt.want {
				t.Errorf("spot at %s: %d GPUs, want %d", tt.at.Format(time.RFC3339), got, tt.want)
			}
		}
		if _, err := e.Tick(ctx); err != nil {
			t.Fatal(err)
		}
		if got := spotNow(release.Add(time.Minute)); got != 48 {
			t.Errorf("spot after the tick: %d GPUs, want 48", got)
		}
	})
}

// A reservation that needs nodes spot holds reclaims them, released when
// it starts; a spot lease whose notice would run past the start is not
// reclaimed, and the reservation waits for it.
func TestGuaranteedReclaimsSpot(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, st engine.Store) {
		e, clk := setup(t, st, 1_000_000)
		ctx := context.Background()
		clk.Set(t0.Add(10 * time.Minute))
		long, err := e.RequestLease(ctx, admin, "beta", spotReq(64, 9, "24h"))
		if err != nil {
			t.Fatal(err)
		}
		short, err := e.RequestLease(ctx, admin, "beta", spotReq(56, 9, "2m"))
		if err != nil {
			t.Fatal(err)
		}
		// 8 GPUs stay free (buffer): a reservation of 64 in 2 h takes the
		// free node and 7 of the 2-minute lease's.
		q, err := e.Quote(ctx, admin, "acme", reservation(64, 2, 24))
		if err != nil || !q.Feasible {
			t.Fatalf("quote: %+v, %v", q, err)
		}
		if l, _ := st.Lease(ctx, short.Lease.ID); !l.Noticed.IsZero() {
			t.Fatal("a quote reclaimed spot")
		}
		res, err := e.RequestLease(ctx, admin, "acme", reservation(64, 2, 24))
		if err != nil {
			t.Fatal(err)
		}
		l, err := st.Lease(ctx, short.Lease.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !l.End.Equal(res.Lease.Start) || !l.Noticed.Equal(clk.Now()) {
			t.Fatalf("2m spot lease: end %s noticed %s, want end %s (the reservation's start)", l.End, l.Noticed, res.Lease.Start)
		}
		if l, _ := st.Lease(ctx, long.Lease.ID); !l.Noticed.IsZero() {
			t.Fatalf("24h spot lease reclaimed for a start 2 h away")
		}
		// More than the reclaimable spot: refused, with the start at which
		// the 24-hour lease could be reclaimed at the earliest.
		_, err = e.RequestLease(ctx, admin, "acme", reservation(64, 3, 24))
		var ref *engine.Refusal
		if !errors.As(err, &ref) {
			t.Fatalf("got %v, want a refusal", err)
		}
	})
}

// A configured policy (by GPU model) sets the prices and tiers, and a
// configured wipe time how long a released node stays out.
func TestSpotPolicyConfig(t *testing.T) {
	st := sqlite.OpenTest(t)
	clk := clock.NewFake(t0.Add(10 * time.Minute))
	pol := spot.DefaultPolicy(money.USD(4_000_000))
	pol.Tiers = []spot.Tier{{Name: "10m", Notice: 10 * time.Minute, PremiumPermille: 1000}}
	if _, err := engine.New(engine.Config{Store: st, Clock: clk, Sanitize: time.Second}); err == nil {
		t.Fatal("a 1 s wipe time was accepted")
	}
	bad := pol
	bad.Tiers = nil
	if _, err := engine.New(engine.Config{Store: st, Clock: clk, Spot: map[string]spot.Policy{"H100-SXM": bad}}); err == nil {
		t.Fatal("a policy without tiers was accepted")
	}
	e, err := engine.New(engine.Config{Store: st, Clock: clk, Spot: map[string]spot.Policy{"H100-SXM": pol}, Sanitize: 5 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := e.ApplyFleet(ctx, admin, leaseFleet(1_000_000), false); err != nil {
		t.Fatal(err)
	}
	if _, err := e.CreateTenant(ctx, admin, tenant.Tenant{ID: "acme"}); err != nil {
		t.Fatal(err)
	}
	q, err := e.Quote(ctx, admin, "acme", spotReq(8, 50, ""))
	if err != nil || !q.Feasible || q.Notice != "10m" || q.Price.Micros != 2_000_000 {
		t.Fatalf("quote %+v, %v: want the 10m tier at $2 (0.5 × $4 on an empty pool)", q, err)
	}
	res, err := e.RequestLease(ctx, admin, "acme", spotReq(8, 50, ""))
	if err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Hour)
	if _, err := e.CancelLease(ctx, admin, res.Lease.ID, "done"); err != nil {
		t.Fatal(err)
	}
	if tr, err := e.Tick(ctx); err != nil || tr.Sanitizing != 1 {
		t.Fatalf("tick after cancel: %+v, %v; want one node wiping", tr, err)
	}
	clk.Advance(6 * time.Minute)
	if tr, err := e.Tick(ctx); err != nil || tr.Sanitized != 1 {
		t.Fatalf("tick after 6 min: %+v, %v; want the wipe over (5 min)", tr, err)
	}
}

package engine_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"pgregory.net/rapid"

	"github.com/neocloud/neocloud/internal/engine"
	"github.com/neocloud/neocloud/internal/fleet"
	"github.com/neocloud/neocloud/internal/handover"
	"github.com/neocloud/neocloud/internal/lease"
	"github.com/neocloud/neocloud/internal/money"
	"github.com/neocloud/neocloud/internal/spot"
	"github.com/neocloud/neocloud/internal/store/dbtest"
	"github.com/neocloud/neocloud/internal/store/postgres"
	"github.com/neocloud/neocloud/internal/store/sqlite"
	"github.com/neocloud/neocloud/internal/unit"
	"github.com/neocloud/neocloud/internal/valid"
)

// propBudgetKW caps the power domain at 11 of the 16 H100 nodes (10.2 kW
// each) so that power really limits placement.
const propBudgetKW = 115

// TestCapacityStateMachine walks random sequences of lease requests (all
// kinds, packings and isolations), cancels, node failures, maintenance and
// repairs, holdback changes and time, each on a fresh store, and after
// every step checks the invariants against a brute-force reading of the
// store:
//   - no node holds two allocations at overlapping times;
//   - from the next hour on, no allocation sits on a node out of service,
//     and allocated power <= each power domain's budget at every hour;
//   - as admitted: over an admitted lease's window, and where a holdback
//     change holds back more, guaranteed allocations + holdback <= healthy
//     capacity at every hour (node failures may break it later: that is
//     what shortfalls and holdback forecasts are for);
//   - every live guaranteed lease holds, at every future hour of its
//     window, exactly its schedule's GPUs counting recorded shortfalls
//     (never preempted; failed nodes replaced or the shortfall recorded);
//   - a restarted engine answers the same capacity series.
func TestCapacityStateMachine(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) {
		capacityStateMachine(t, func() engine.Store { return sqlite.OpenTest(t) })
	})
	t.Run("postgres", func(t *testing.T) {
		dsn := dbtest.PostgresDSN(t)
		capacityStateMachine(t, func() engine.Store { return postgres.OpenTest(t, dsn) })
	})
}

func capacityStateMachine(t *testing.T, open func() engine.Store) {
	rapid.Check(t, func(rt *rapid.T) {
		st := open()
		defer st.Close()
		e, clk := setup(t, st, propBudgetKW)
		defer e.Close()
		ctx := context.Background()
		var leases []string
		steps := rapid.IntRange(1, 25).Draw(rt, "steps")
		var holdback, prevHoldback []engine.HoldbackStep // the pool's schedule now, and before the last change
		for range steps {
			var window [2]time.Time
			var raised []engine.HoldbackStep
			switch rapid.IntRange(0, 9).Draw(rt, "op") {
			case 0, 1, 2, 3:
				if l, ok := requestRandom(rt, e, clk.Now()); ok {
					leases = append(leases, l.ID)
					if l.Kind.Guaranteed() {
						// Admitting spot promises nothing about guaranteed
						// + holdback: it takes only what is idle now, so a
						// window a node failure already squeezed stays so.
						window = [2]time.Time{l.Start, l.End}
					}
				}
			case 4:
				if len(leases) > 0 {
					id := rapid.SampledFrom(leases).Draw(rt, "cancel")
					if _, err := e.CancelLease(ctx, admin, id, "test"); err != nil && !errors.Is(err, engine.ErrState) {
						rt.Fatalf("cancel %s: %v", id, err)
					}
				}
			case 5, 6:
				n := rapid.SampledFrom(nodeNames(rt, st)).Draw(rt, "node")
				s := rapid.SampledFrom(engine.NodeStates).Draw(rt, "state")
				if _, err := e.SetNodeState(ctx, admin, n, s, ""); err != nil {
					rt.Fatalf("node %s → %s: %v", n, s, err)
				}
			case 7:
				from := clk.Now().Truncate(time.Hour).Add(time.Duration(rapid.IntRange(0, 30).Draw(rt, "hb_from")) * time.Hour)
				steps := []engine.HoldbackStep{{From: from, GPUs: unit.GPUs(8 * rapid.IntRange(0, 6).Draw(rt, "hb_nodes"))}}
				err := e.SetHoldback(ctx, admin, pool, steps)
				var ref *engine.Refusal
				switch {
				case err == nil:
					raised = steps
					prevHoldback, holdback = holdback, steps
				case !errors.As(err, &ref):
					rt.Fatalf("holdback: %v", err)
				}
			case 8:
				if _, err := e.Tick(ctx); err != nil {
					rt.Fatalf("tick: %v", err)
				}
				if rapid.Bool().Draw(rt, "internal") {
					g := int64(8 * rapid.IntRange(0, 16).Draw(rt, "internal_nodes"))
					if _, err := e.SetInternalUse(ctx, admin, pool, g); err != nil {
						rt.Fatalf("internal use %d: %v", g, err)
					}
				}
			default:
				clk.Advance(time.Duration(rapid.IntRange(0, 6*60).Draw(rt, "advance_min")) * time.Minute)
			}
			checkInvariants(rt, st, clk.Now(), window, raised, prevHoldback)
		}
		checkRestart(rt, e, st, clk.Now())
	})
}

// requestRandom asks for a random lease; it returns the lease when admitted.
func requestRandom(rt *rapid.T, e *engine.Engine, now time.Time) (lease.Lease, bool) {
	kind := rapid.SampledFrom([]lease.Kind{lease.Reservation, lease.Reservation, lease.Contract, lease.Spot}).Draw(rt, "kind")
	start := now.Truncate(time.Hour).Add(time.Duration(rapid.IntRange(1, 30).Draw(rt, "start_h")) * time.Hour)
	end := start.Add(time.Duration(rapid.IntRange(1, 40).Draw(rt, "hours")) * time.Hour)
	r := lease.Request{Kind: kind, Pool: pool, Start: start, End: end,
		GPUs:      unit.GPUs(8 * rapid.IntRange(1, 8).Draw(rt, "nodes")),
		Packing:   rapid.SampledFrom(lease.Packings).Draw(rt, "packing"),
		Isolation: rapid.SampledFrom(lease.Isolations).Draw(rt, "isolation")}
	switch kind {
	case lease.Spot:
		r.Start = time.Time{}
		r.MaxPrice = money.USD(int64(rapid.IntRange(1, 20).Draw(rt, "max_price_usd")) * 1_000_000)
		r.Notice = rapid.SampledFrom([]string{"", "2m", "30m", "24h"}).Draw(rt, "notice")
		if rapid.Bool().Draw(rt, "open_ended") {
			r.End = time.Time{}
		}
	case lease.Contract:
		if rapid.Bool().Draw(rt, "ramp") && end.Sub(start) > time.Hour {
			mid := start.Add(end.Sub(start) / 2).Truncate(time.Hour)
			if mid.After(start) {
				r.Schedule = []lease.Step{{From: start, GPUs: r.GPUs}, {From: mid, GPUs: unit.GPUs(8 * rapid.IntRange(0, 8).Draw(rt, "ramp_nodes"))}}
				r.GPUs = 0
			}
		}
	}
	tenantID := rapid.SampledFrom([]string{"acme", "beta"}).Draw(rt, "tenant")
	res, err := e.RequestLease(context.Background(), admin, tenantID, r)
	var ref *engine.Refusal
	var ve *valid.Error
	switch {
	case err == nil:
		return res.Lease, true
	case errors.As(err, &ref), errors.As(err, &ve) && r.Kind == lease.Contract:
		// Refused, or a ramp whose second step is empty and first step
		// invalid: nothing changed.
		return lease.Lease{}, false
	default:
		rt.Fatalf("request %+v: %v", r, err)
		return lease.Lease{}, false
	}
}

// world is the store read back in full.
type world struct {
	nodes      map[int64]fleet.Node
	budgetW    map[string]int64
	allocs     []lease.Allocation
	leases     map[string]lease.Lease
	shortfalls []lease.Shortfall
	holdback   []engine.HoldbackStep
}

func readWorld(t tb, st engine.Store) world {
	ctx := context.Background()
	w := world{nodes: map[int64]fleet.Node{}, budgetW: map[string]int64{}, leases: map[string]lease.Lease{}}
	nodes, err := st.AllNodes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		w.nodes[n.Ordinal] = n
	}
	sites, err := st.Sites(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range sites {
		for _, d := range s.PowerDomains {
			w.budgetW[s.Name+"/"+d.Name] = int64(d.Budget)
		}
	}
	if w.allocs, err = st.Allocations(ctx, engine.AllocationFilter{}); err != nil {
		t.Fatal(err)
	}
	ls, err := st.Leases(ctx, engine.LeaseFilter{})
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range ls {
		w.leases[l.ID] = l
	}
	if w.shortfalls, err = st.Shortfalls(ctx, ""); err != nil {
		t.Fatal(err)
	}
	hb, err := st.Holdback(ctx)
	if err != nil {
		t.Fatal(err)
	}
	w.holdback = hb[pool]
	return w
}

// touches reports whether [start, end) touches hour h (rounded outward).
func touches(start, end, h time.Time) bool {
	return start.Before(h.Add(time.Hour)) && end.After(h)
}

// covers reports whether [start, end) covers all of hour h.
func covers(start, end, h time.Time) bool {
	return !start.After(h) && !end.Before(h.Add(time.Hour))
}

// checkInvariants checks the store after a step; window is the lease just
// admitted (zero when none) and raised the holdback just set (nil when
// none), where guaranteed + holdback <= healthy must hold.
func checkInvariants(t *rapid.T, st engine.Store, now time.Time, window [2]time.Time, raised, before []engine.HoldbackStep) {
	w := readWorld(t, st)

	// 1. No node in two overlapping allocations.
	for i, a := range w.allocs {
		for _, b := range w.allocs[i+1:] {
			if a.Overlaps(b) {
				t.Fatalf("allocations overlap: %+v and %+v", a, b)
			}
		}
	}

	// 4. A node passes through a wipe before it changes tenant: an
	// allocation booked after another tenant's allocation on the same node
	// ended starts the wipe time after that end at the earliest. (One
	// booked before the release takes the node when it starts; its
	// delivery waits for the wipe. A tenant that holds the node on from
	// the end — a run split by a failure — has not left it.)
	heldOn := func(x lease.Allocation, o int64) bool {
		for _, z := range w.allocs {
			if z.TenantID == x.TenantID && z.NodeFrom <= o && o < z.NodeTo && !z.Start.After(x.End) && z.End.After(x.End) {
				return true
			}
		}
		return false
	}
	for i, a := range w.allocs {
		for _, b := range w.allocs[i+1:] {
			for _, pair := range [][2]lease.Allocation{{a, b}, {b, a}} {
				x, y := pair[0], pair[1]
				if x.TenantID == y.TenantID || x.NodeTo <= y.NodeFrom || y.NodeTo <= x.NodeFrom || y.Start.Before(x.End) {
					continue
				}
				left := false
				for o := max(x.NodeFrom, y.NodeFrom); o < min(x.NodeTo, y.NodeTo); o++ {
					left = left || !heldOn(x, o)
				}
				if booked := w.leases[y.LeaseID].Created; left && !booked.Before(x.End) && y.Start.Before(x.End.Add(handover.DefaultSanitize)) {
					t.Fatalf("allocation %s (%s) starts %s on a node %s (%s) left at %s, booked at %s: no wipe between",
						y.ID, y.TenantID, y.Start, x.ID, x.TenantID, x.End, booked)
				}
			}
		}
	}

	// 5. Reclaim touches only spot, and only after the tier's notice.
	for _, l := range w.leases {
		if l.Noticed.IsZero() {
			continue
		}
		if l.Kind.Guaranteed() {
			t.Fatalf("guaranteed lease %s was given a reclaim notice: %s", l.ID, l.Reason)
		}
		tier, ok := spot.DefaultPolicy(money.USD(1)).Tier(l.Notice)
		if !ok || l.End.Sub(l.Noticed) < tier.Notice {
			t.Fatalf("spot lease %s (tier %q) noticed at %s is released at %s, within its notice", l.ID, l.Notice, l.Noticed, l.End)
		}
	}

	first := now.Truncate(time.Hour)
	if first.Before(now) {
		first = first.Add(time.Hour)
	}
	last := first
	for _, a := range w.allocs {
		if a.End.After(last) {
			last = a.End
		}
	}
	healthy := int64(0)
	for _, n := range w.nodes {
		if n.State == fleet.Available || n.State == fleet.Allocated || n.State == fleet.Sanitizing {
			healthy += int64(n.GPUs)
		}
	}
	for h := first; h.Before(last); h = h.Add(time.Hour) {
		// 2. Guaranteed + holdback <= healthy; power <= budget.
		guaranteed := int64(0)
		power := map[string]int64{}
		for _, a := range w.allocs {
			if !touches(a.Start, a.End, h) {
				continue
			}
			for o := a.NodeFrom; o < a.NodeTo; o++ {
				n := w.nodes[o]
				if n.State != fleet.Available && n.State != fleet.Allocated && n.State != fleet.Sanitizing {
					t.Fatalf("at %s: allocation %s holds node %s, which is %s", h, a.ID, n.Name, n.State)
				}
				power[n.Site+"/"+n.PowerDomain] += int64(n.ITPower)
				if w.leases[a.LeaseID].Kind.Guaranteed() {
					guaranteed += int64(n.GPUs)
				}
			}
		}
		hb := int64(0)
		for _, s := range w.holdback {
			if !s.From.After(h) {
				hb = int64(s.GPUs)
			}
		}
		admitted := !h.Before(window[0]) && h.Before(window[1])
		// A holdback change promises room only where it holds back more
		// than before: elsewhere a node failure may already have
		// squeezed the hour, as shortfalls allow.
		raisedHere := len(raised) > 0 && engine.HoldbackAt(raised, h) > engine.HoldbackAt(before, h)
		if (admitted || raisedHere) && guaranteed+hb > healthy {
			t.Fatalf("at %s: guaranteed %d + holdback %d > healthy %d right after admission or a holdback change", h, guaranteed, hb, healthy)
		}
		if guaranteed > healthy {
			t.Fatalf("at %s: guaranteed %d > healthy %d", h, guaranteed, healthy)
		}
		for d, p := range power {
			if p > w.budgetW[d] {
				t.Fatalf("at %s: power domain %s draws %d W > budget %d W", h, d, p, w.budgetW[d])
			}
		}
		// 3. Guaranteed leases get their schedule, or a recorded shortfall.
		for _, l := range w.leases {
			if !l.Kind.Guaranteed() || l.State == lease.Cancelled || !covers(l.Start, l.End, h) {
				continue
			}
			got := int64(0)
			for _, a := range w.allocs {
				if a.LeaseID == l.ID && covers(a.Start, a.End, h) {
					for o := a.NodeFrom; o < a.NodeTo; o++ {
						got += int64(w.nodes[o].GPUs)
					}
				}
			}
			for _, s := range w.shortfalls {
				if s.LeaseID == l.ID && covers(s.From, s.To, h) {
					got += int64(s.GPUs)
				}
			}
			if want := int64(l.GPUsAt(h)); got != want {
				t.Fatalf("at %s lease %s (%s) holds %d GPUs + shortfalls, want %d", h, l.ID, l.Kind, got, want)
			}
		}
	}
}

// checkRestart compares the capacity series of the running engine with a
// fresh one's, built from the store.
func checkRestart(t *rapid.T, e *engine.Engine, st engine.Store, now time.Time) {
	ctx := context.Background()
	from := now.Truncate(time.Hour).Add(time.Hour)
	to := from.Add(80 * time.Hour)
	p1, err := e.Capacity(ctx, admin, pool, from, to, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	e2, err := engine.New(engine.Config{Store: st, Clock: e.Clock()})
	if err != nil {
		t.Fatal(err)
	}
	defer e2.Close()
	p2, err := e2.Capacity(ctx, admin, pool, from, to, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(p1, p2); diff != "" {
		t.Fatalf("capacity after a restart differs (-running +restarted):\n%s", diff)
	}
}

// TestPipelinedEqualsOneByOne submits one random workload twice — one
// request at a time, and all at once through SubmitLease — into two
// stores: the outcomes and placements are identical.
func TestPipelinedEqualsOneByOne(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) { pipelinedEqualsOneByOne(t, sqlite.OpenTest(t), sqlite.OpenTest(t)) })
	t.Run("postgres", func(t *testing.T) {
		dsn := dbtest.PostgresDSN(t)
		pipelinedEqualsOneByOne(t, postgres.OpenTest(t, dsn), postgres.OpenTest(t, dsn))
	})
}

func pipelinedEqualsOneByOne(t *testing.T, st, st2 engine.Store) {
	seq, _ := setup(t, st, propBudgetKW)
	ctx := context.Background()
	type outcome struct {
		Admitted bool
		Reason   string
		Nodes    []int64
	}
	reqs := make([]lease.Request, 300)
	for i := range reqs {
		r := reservation(int64(8*(1+i*7%6)), 1+i*13%50, 1+i*29%40)
		r.Packing = lease.Packings[i%len(lease.Packings)]
		r.Isolation = lease.Isolations[i/5%2]
		reqs[i] = r
	}
	record := func(res engine.LeaseResult, err error) outcome {
		var ref *engine.Refusal
		switch {
		case err == nil:
			var nodes []int64
			for _, a := range res.Allocations {
				for o := a.NodeFrom; o < a.NodeTo; o++ {
					nodes = append(nodes, o)
				}
			}
			slices.Sort(nodes)
			return outcome{Admitted: true, Nodes: nodes}
		case errors.As(err, &ref):
			return outcome{Reason: ref.Reason}
		default:
			t.Fatal(err)
			return outcome{}
		}
	}
	var one []outcome
	for i, r := range reqs {
		res, err := seq.RequestLease(ctx, admin, []string{"acme", "beta"}[i%2], r)
		one = append(one, record(res, err))
	}

	pipe, _ := setup(t, st2, propBudgetKW)
	pending := make([]engine.Pending, len(reqs))
	for i, r := range reqs {
		p, err := pipe.SubmitLease(ctx, admin, []string{"acme", "beta"}[i%2], r)
		if err != nil {
			t.Fatal(err)
		}
		pending[i] = p
	}
	var all []outcome
	for _, p := range pending {
		v, err := p.Wait()
		res, _ := v.(engine.LeaseResult)
		all = append(all, record(res, err))
	}
	if diff := cmp.Diff(one, all); diff != "" {
		t.Errorf("pipelined outcomes differ from one-by-one (-one +pipelined):\n%s", diff)
	}
	admitted := 0
	for _, o := range one {
		if o.Admitted {
			admitted++
		}
	}
	if admitted == 0 || admitted == len(reqs) {
		t.Errorf("%d of %d admitted: the workload should be contended", admitted, len(reqs))
	}
}

package engine_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/neocloud/neocloud/internal/engine"
	"github.com/neocloud/neocloud/internal/lease"
	"github.com/neocloud/neocloud/internal/store/sqlite"
	"github.com/neocloud/neocloud/internal/unit"
)

// TestEarliestGroupedMatchesOneByOne: the search for the earliest start,
// which after a failed probe puts close candidates to placement together
// over the part their windows share, answers what probing every candidate
// on its own answers, on the reference fleet holding 10,000 leases (where
// the power budget of the GB200 hall and full NVLink domains make runs of
// candidates fail) for requests in the first 90 days.
func TestEarliestGroupedMatchesOneByOne(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the reference fleet with 10,000 leases")
	}
	e, _, _ := referenceWithLeases(t, 10_000)
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(5, 6))
	runs := 0 // requests whose search saw two or more failed probes
	for range 3000 {
		r := randomLease(rng, e.Clock().Now(), 90)
		if rng.IntN(4) == 0 && r.Kind == lease.Contract {
			// A ramp: two segments, each shifted with the lease.
			mid := r.Start.Add(r.End.Sub(r.Start) / 2).Truncate(time.Hour)
			if mid.After(r.Start) {
				r.Schedule = []lease.Step{{From: r.Start, GPUs: r.GPUs}, {From: mid, GPUs: r.GPUs / 2 / 8 * 8}}
				r.GPUs = 0
			}
		}
		got, want, failed, err := e.EarliestBoth(ctx, "bench", r)
		if err != nil {
			continue // a ramp step that is not whole nodes: invalid
		}
		if failed >= 2 {
			runs++
		}
		if !got.Equal(want) {
			t.Fatalf("request %+v: earliest start %v, probing one by one %v", r, got, want)
		}
		if msg := quotesAgree(ctx, e, "bench", r); msg != "" {
			t.Fatal(msg)
		}
	}
	if runs < 5 {
		t.Errorf("%d requests saw two or more failed probes; the test wants at least 5 to cover the groups", runs)
	}
}

// TestEarliestGroupedMatchesOneByOneSmall is the same on random states of
// a small power-limited fleet, with both tenants, every packing and
// isolation, and ramps.
func TestEarliestGroupedMatchesOneByOneSmall(t *testing.T) {
	var runs atomic.Int64 // questions whose search saw two or more failed probes
	rapid.Check(t, func(rt *rapid.T) {
		st := sqlite.OpenTest(t)
		defer st.Close()
		e, clk := setup(t, st, propBudgetKW)
		defer e.Close()
		ctx := context.Background()
		for range rapid.IntRange(0, 16).Draw(rt, "leases") {
			requestRandom(rt, e, clk.Now())
		}
		for range 32 {
			start := clk.Now().Truncate(time.Hour).Add(time.Duration(rapid.IntRange(1, 30).Draw(rt, "q_start_h")) * time.Hour)
			end := start.Add(time.Duration(rapid.IntRange(1, 40).Draw(rt, "q_hours")) * time.Hour)
			r := lease.Request{Kind: rapid.SampledFrom([]lease.Kind{lease.Reservation, lease.Contract}).Draw(rt, "q_kind"),
				Pool: pool, Start: start, End: end,
				GPUs:      unit.GPUs(8 * rapid.IntRange(1, 12).Draw(rt, "q_nodes")),
				Packing:   rapid.SampledFrom(lease.Packings).Draw(rt, "q_packing"),
				Isolation: rapid.SampledFrom(lease.Isolations).Draw(rt, "q_isolation")}
			if r.Kind == lease.Contract && rapid.Bool().Draw(rt, "q_ramp") {
				if mid := start.Add(end.Sub(start) / 2).Truncate(time.Hour); mid.After(start) {
					r.Schedule = []lease.Step{{From: start, GPUs: r.GPUs}, {From: mid, GPUs: unit.GPUs(8 * rapid.IntRange(1, 12).Draw(rt, "q_ramp_nodes"))}}
					r.GPUs = 0
				}
			}
			tenantID := rapid.SampledFrom([]string{"acme", "beta"}).Draw(rt, "q_tenant")
			got, want, failed, err := e.EarliestBoth(ctx, tenantID, r)
			if err != nil {
				rt.Fatalf("request %+v: %v", r, err)
			}
			if failed >= 2 {
				runs.Add(1)
			}
			if !got.Equal(want) {
				rt.Fatalf("request %+v: earliest start %v, probing one by one %v", r, got, want)
			}
			if msg := quotesAgree(ctx, e, tenantID, r); msg != "" {
				rt.Fatal(msg)
			}
		}
	})
	if runs.Load() == 0 {
		t.Error("no request saw two failed probes: the groups went untested")
	}
}

// quotesAgree returns "" when a quote of r (which decides without
// placing) and a quote with its placement answer alike: feasibility, the
// refusal's reason and detail, the earliest start and the nodes. Else it
// says how they differ.
func quotesAgree(ctx context.Context, e *engine.Engine, tenantID string, r lease.Request) string {
	q, err := e.Quote(ctx, admin, tenantID, r)
	qp, errp := e.QuotePlacement(ctx, admin, tenantID, r)
	if (err == nil) != (errp == nil) || err != nil && err.Error() != errp.Error() {
		return fmt.Sprintf("request %+v: quote error %v, with placement %v", r, err, errp)
	}
	if err != nil {
		return ""
	}
	if q.Feasible != qp.Feasible || q.Nodes != qp.Nodes || (q.Refusal == nil) != (qp.Refusal == nil) ||
		q.Refusal != nil && *q.Refusal != *qp.Refusal {
		return fmt.Sprintf("request %+v: quote %+v (refusal %+v), with placement %+v (refusal %+v)", r, q, q.Refusal, qp, qp.Refusal)
	}
	if qp.Feasible && (qp.LeafGroups < 1 || qp.Pods < 1) {
		return fmt.Sprintf("request %+v: feasible quote with placement in %d leaf groups and %d pods", r, qp.LeafGroups, qp.Pods)
	}
	return ""
}

package engine_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/neocloud/neocloud/internal/engine"
	"github.com/neocloud/neocloud/internal/fleet"
	"github.com/neocloud/neocloud/internal/meter"
	"github.com/neocloud/neocloud/internal/store/dbtest"
	"github.com/neocloud/neocloud/internal/tenant"
)

// readings returns a batch of one node's GPUs read every 10 s over
// [from, to), at util, with energy growing by 1 J per GPU-second.
func readings(id, node string, gpus int, from, to time.Time, util int, xidAt time.Time) meter.Batch {
	b := meter.Batch{ID: id, Agent: "test"}
	for t := from; t.Before(to); t = t.Add(10 * time.Second) {
		for g := range gpus {
			r := meter.Reading{Node: node, GPU: g, Time: t, UtilPct: util, EnergyMJ: t.Sub(t0).Milliseconds()} // 1 J per GPU-second
			if !xidAt.IsZero() && t.Equal(xidAt) && g == 3 {
				r.XID = 79
			}
			b.Readings = append(b.Readings, r)
		}
	}
	return b
}

func TestIngestAttributesToLeases(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, st engine.Store) {
		e, clk := setup(t, st, 1_000_000)
		ctx := context.Background()
		acme := acmeAdmin()
		beta := tenant.Principal{KeyID: "key_beta", TenantID: "beta", Role: tenant.TenantAdmin}
		res, err := e.RequestLease(ctx, acme, "", reservation(8, 2, 2)) // one node, t0+2h .. t0+4h
		if err != nil {
			t.Fatal(err)
		}
		id := res.Lease.ID
		views, _, err := e.LeaseAllocations(ctx, admin, id)
		if err != nil || len(views) != 1 || len(views[0].Nodes) != 1 {
			t.Fatalf("allocations %+v, %v", views, err)
		}
		node := views[0].Nodes[0]
		ns, err := e.Nodes(ctx, engine.NodeFilter{})
		if err != nil {
			t.Fatal(err)
		}
		other := ns[0].Name
		if node == other {
			other = ns[1].Name
		}
		clk.Set(t0.Add(5 * time.Hour))
		agent := tenant.Principal{KeyID: "key_agent", Role: tenant.OperatorAgent}

		// An hour on each side of the lease, busy: internal before and
		// after, the lease's in between; another node idle.
		b := readings("b1", node, 8, t0.Add(1*time.Hour), t0.Add(5*time.Hour), 80, time.Time{})
		b.Readings = append(b.Readings, readings("x", other, 8, t0.Add(1*time.Hour), t0.Add(2*time.Hour), 0, time.Time{}).Readings...)
		got, err := e.Ingest(ctx, agent, b)
		if err != nil {
			t.Fatal(err)
		}
		if got.Accepted != len(b.Readings) || got.Replayed {
			t.Fatalf("ingest %+v, want %d accepted", got, len(b.Readings))
		}
		again, err := e.Ingest(ctx, agent, b)
		if err != nil || !again.Replayed || again.Result != got.Result {
			t.Fatalf("replay: %+v, %v", again, err)
		}
		// The same readings under another batch ID: all duplicates.
		b.ID = "b2"
		dup, err := e.Ingest(ctx, agent, b)
		if err != nil || dup.Duplicates != len(b.Readings) || dup.Accepted != 0 {
			t.Fatalf("duplicates: %+v, %v", dup, err)
		}

		q := engine.UsageQuery{From: t0, To: t0.Add(6 * time.Hour), Step: engine.StepDay}
		mine, err := e.Usage(ctx, acme, q)
		if err != nil {
			t.Fatal(err)
		}
		if len(mine) != 1 || mine[0].LeaseID != id || mine[0].Use != meter.UseLease {
			t.Fatalf("tenant usage %+v", mine)
		}
		twoHours := int64(8 * 2 * time.Hour / time.Millisecond)
		u := mine[0]
		if u.AllocatedGPUms != twoHours || u.GPUms != twoHours || u.UsedMs != twoHours || u.HealthyMs != twoHours {
			t.Errorf("lease usage %+v, want %d GPU-ms allocated, metered, used and healthy", u, twoHours)
		}
		if u.Readings != 8*2*360 {
			t.Errorf("readings %d, want %d", u.Readings, 8*2*360)
		}
		if u.EnergyMJ != 8*2*3600*1000 {
			t.Errorf("energy %d mJ, want %d", u.EnergyMJ, 8*2*3600*1000)
		}
		// Another tenant sees nothing of it.
		if theirs, err := e.Usage(ctx, beta, q); err != nil || len(theirs) != 0 {
			t.Errorf("beta sees %+v, %v", theirs, err)
		}
		if _, err := e.Usage(ctx, beta, engine.UsageQuery{From: t0, To: t0.Add(time.Hour), LeaseID: id}); !errors.Is(err, engine.ErrNotFound) && !errors.Is(err, tenant.ErrForbidden) {
			t.Errorf("beta reading acme's lease: %v", err)
		}
		// The operator sees the owner's internal use and idle time too.
		all, err := e.Usage(ctx, admin, q)
		if err != nil {
			t.Fatal(err)
		}
		uses := map[meter.Use]int64{}
		for _, p := range all {
			uses[p.Use] += p.GPUms
		}
		if want := int64(8*2*time.Hour/time.Millisecond) - 8*10_000; uses[meter.UseInternal] != want || uses[meter.UseIdle] != int64(8*(time.Hour-10*time.Second)/time.Millisecond) {
			t.Errorf("operator usage by use %v, want internal %d", uses, want)
		}
		// Bad input changes nothing.
		for name, bad := range map[string]meter.Batch{
			"unknown node": {ID: "bad1", Readings: []meter.Reading{{Node: "nope", Time: t0}}},
			"gpu index":    {ID: "bad2", Readings: []meter.Reading{{Node: node, GPU: 8, Time: t0}}},
			"util":         {ID: "bad3", Readings: []meter.Reading{{Node: node, Time: t0, UtilPct: 101}}},
		} {
			var ve interface{ Len() int }
			if _, err := e.Ingest(ctx, agent, bad); !errors.As(err, &ve) {
				t.Errorf("%s: %v, want a validation error", name, err)
			}
		}
		if _, err := e.Ingest(ctx, acme, b); !errors.Is(err, tenant.ErrForbidden) {
			t.Errorf("a tenant pushing telemetry: %v", err)
		}

		sla, err := e.SLA(ctx, acme, id, t0)
		if err != nil {
			t.Fatal(err)
		}
		if sla.CommittedGPUms != twoHours || sla.DeliveredGPUms != twoHours || sla.AvailabilityPPM != 1_000_000 {
			t.Errorf("sla %+v", sla)
		}
	})
}

func TestIngestFailsNodeOnFatalXID(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, st engine.Store) {
		e, clk := setup(t, st, 1_000_000)
		ctx := context.Background()
		acme := acmeAdmin()
		res, err := e.RequestLease(ctx, acme, "", reservation(8, 0, 4))
		if err != nil {
			t.Fatal(err)
		}
		views, _, err := e.LeaseAllocations(ctx, admin, res.Lease.ID)
		if err != nil {
			t.Fatal(err)
		}
		node := views[0].Nodes[0]
		clk.Set(t0.Add(time.Hour))
		b := readings("b1", node, 8, t0.Add(50*time.Minute), t0.Add(time.Hour), 90, t0.Add(55*time.Minute))
		if _, err := e.Ingest(ctx, tenant.Principal{KeyID: "a", Role: tenant.OperatorAgent}, b); err != nil {
			t.Fatal(err)
		}
		var fs []meter.Finding
		deadline := time.Now().Add(10 * time.Second)
		for {
			ns, err := e.Nodes(ctx, engine.NodeFilter{})
			if err != nil {
				t.Fatal(err)
			}
			failed := false
			for _, n := range ns {
				failed = failed || (n.Name == node && n.State == fleet.Failed)
			}
			if failed {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("node %s not failed after XID 79", node)
			}
			time.Sleep(10 * time.Millisecond)
		}
		fs, err = e.Findings(ctx, admin, engine.FindingFilter{Node: node})
		if err != nil || len(fs) != 1 || fs[0].Rule != meter.RuleXID || fs[0].Severity != meter.SeverityFailed {
			t.Fatalf("findings %+v, %v", fs, err)
		}
		// Until is exclusive.
		for _, tt := range []struct {
			until time.Time
			want  int
		}{{fs[0].At, 0}, {fs[0].At.Add(time.Millisecond), 1}} {
			if got, err := e.Findings(ctx, admin, engine.FindingFilter{Node: node, Until: tt.until}); err != nil || len(got) != tt.want {
				t.Errorf("findings until %s: %d, %v; want %d", tt.until, len(got), err, tt.want)
			}
		}
		// Nodes keeps the named nodes' findings only.
		for _, tt := range []struct {
			nodes []string
			want  int
		}{{[]string{node}, 1}, {[]string{"no-such-node", node}, 1}, {[]string{"no-such-node"}, 0}} {
			if got, err := e.Findings(ctx, admin, engine.FindingFilter{Nodes: tt.nodes}); err != nil || len(got) != tt.want {
				t.Errorf("findings on %q: %d, %v; want %d", tt.nodes, len(got), err, tt.want)
			}
		}
		// The lease's findings: the node it held then.
		if got, err := e.LeaseFindings(ctx, acme, res.Lease.ID, t0, t0.Add(2*time.Hour)); err != nil || len(got) != 1 || got[0].Node != node || got[0].Open {
			t.Errorf("lease findings %+v, %v; want the XID on %s, closed", got, err, node)
		}
		// The lease got a replacement node.
		views, _, err = e.LeaseAllocations(ctx, admin, res.Lease.ID)
		if err != nil || len(views) != 2 {
			t.Fatalf("allocations after failure: %+v, %v", views, err)
		}
		sla, err := e.SLA(ctx, acme, res.Lease.ID, t0)
		if err != nil {
			t.Fatal(err)
		}
		if sla.UnhealthyGPUms == 0 || len(sla.Episodes) == 0 {
			t.Errorf("sla %+v: want the XID's unhealthy time as an episode", sla)
		}
	})
}

// A node that stops reporting is found silent and failed; old readings are
// pruned but a late reading within the window still finds its neighbour.
func TestMeterTickFindsSilentNodes(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, st engine.Store) {
		e, clk := setup(t, st, 1_000_000)
		ctx := context.Background()
		ns, err := e.Nodes(ctx, engine.NodeFilter{})
		if err != nil {
			t.Fatal(err)
		}
		node := ns[0].Name
		agent := tenant.Principal{KeyID: "a", Role: tenant.OperatorAgent}
		clk.Set(t0.Add(time.Minute))
		if _, err := e.Ingest(ctx, agent, readings("b1", node, 8, t0, t0.Add(time.Minute), 0, time.Time{})); err != nil {
			t.Fatal(err)
		}
		if fs, err := e.MeterTick(ctx); err != nil || len(fs) != 0 {
			t.Fatalf("tick while reporting: %+v, %v", fs, err)
		}
		clk.Set(t0.Add(2 * time.Minute)) // 3 intervals of 10 s passed long ago
		fs, err := e.MeterTick(ctx)
		if err != nil || len(fs) != 1 || fs[0].Rule != meter.RuleNoData || fs[0].Node != node {
			t.Fatalf("tick after silence: %+v, %v", fs, err)
		}
		deadline := time.Now().Add(10 * time.Second)
		for {
			got, err := e.Nodes(ctx, engine.NodeFilter{})
			if err != nil {
				t.Fatal(err)
			}
			if got[0].State == fleet.Failed {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("silent node %s not failed", node)
			}
			time.Sleep(10 * time.Millisecond)
		}
		// A day later: the old readings are pruned (the newest stays); a
		// reading just inside the late window is still applied once.
		clk.Set(t0.Add(25 * time.Hour))
		if _, err := e.MeterTick(ctx); err != nil {
			t.Fatal(err)
		}
		late := readings("b2", node, 1, t0.Add(90*time.Minute), t0.Add(90*time.Minute+time.Second), 0, time.Time{})
		r, err := e.Ingest(ctx, agent, late)
		if err != nil || r.Accepted != 1 {
			t.Fatalf("late reading: %+v, %v", r, err)
		}
		old := readings("b3", node, 1, t0.Add(30*time.Second), t0.Add(31*time.Second), 0, time.Time{})
		if r, err := e.Ingest(ctx, agent, old); err != nil || r.TooLate != 1 {
			t.Fatalf("too late: %+v, %v", r, err)
		}
	})
}

// TestIngestExactUnderFaults sends the same readings for two identical
// leases: one node's in order, once; the other's with 20% of batches
// duplicated, 10% swapped with a later one and 5% held back to the end.
// Through the real store, the two leases' usage must be equal to the
// millisecond and millijoule: nothing double-counted, nothing lost.
func TestIngestExactUnderFaults(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, st engine.Store) {
		e, clk := setup(t, st, 1_000_000)
		ctx := context.Background()
		var leases [2]string
		var nodes [2]string
		for i := range leases {
			res, err := e.RequestLease(ctx, acmeAdmin(), "", reservation(8, 0, 10))
			if err != nil {
				t.Fatal(err)
			}
			views, _, err := e.LeaseAllocations(ctx, admin, res.Lease.ID)
			if err != nil {
				t.Fatal(err)
			}
			leases[i], nodes[i] = res.Lease.ID, views[0].Nodes[0]
		}
		clk.Set(t0.Add(8 * time.Hour))
		rnd := rand.New(rand.NewPCG(7, 7))
		type scrape struct {
			at   time.Time
			util []int
			e    []int64
			xid  []int
		}
		var scrapes []scrape
		energy := make([]int64, 8)
		at := t0.Add(3 * time.Second)
		for at.Before(t0.Add(6 * time.Hour)) {
			s := scrape{at: at}
			for g := range 8 {
				energy[g] += rnd.Int64N(7_000_000)
				if rnd.IntN(500) == 0 {
					energy[g] = rnd.Int64N(1000) // a driver reload
				}
				s.util = append(s.util, rnd.IntN(101))
				s.e = append(s.e, energy[g])
				s.xid = append(s.xid, []int{0, 0, 0, 0, 0, 0, 0, 0, 0, 13}[rnd.IntN(10)])
			}
			scrapes = append(scrapes, s)
			at = at.Add(time.Duration(9_000+rnd.IntN(2_000)) * time.Millisecond)
			if rnd.IntN(300) == 0 {
				at = at.Add(time.Duration(rnd.IntN(40)) * time.Minute) // an outage
			}
		}
		batch := func(id, node string, ss []scrape) meter.Batch {
			b := meter.Batch{ID: id}
			for _, s := range ss {
				for g := range 8 {
					b.Readings = append(b.Readings, meter.Reading{Node: node, GPU: g, Time: s.at, UtilPct: s.util[g], EnergyMJ: s.e[g], XID: s.xid[g]})
				}
			}
			return b
		}
		agent := tenant.Principal{KeyID: "a", Role: tenant.OperatorAgent}
		// In order, six scrapes per batch.
		for i := 0; i < len(scrapes); i += 6 {
			if _, err := e.Ingest(ctx, agent, batch(fmt.Sprint("clean-", i), nodes[0], scrapes[i:min(i+6, len(scrapes))])); err != nil {
				t.Fatal(err)
			}
		}
		// With faults.
		var sent, late []meter.Batch
		for i := 0; i < len(scrapes); i += 6 {
			b := batch(fmt.Sprint("faulty-", i), nodes[1], scrapes[i:min(i+6, len(scrapes))])
			switch r := rnd.IntN(100); {
			case r < 5:
				late = append(late, b)
			case r < 25:
				again := b
				if rnd.IntN(2) == 0 {
					again.ID += "-retry" // same readings under a new ID
				}
				sent = append(sent, b, again)
			default:
				sent = append(sent, b)
			}
		}
		for i := range sent {
			if rnd.IntN(10) == 0 {
				j := min(len(sent)-1, i+1+rnd.IntN(8))
				sent[i], sent[j] = sent[j], sent[i]
			}
		}
		var res meter.Result
		for _, b := range append(sent, late...) {
			r, err := e.Ingest(ctx, agent, b)
			if err != nil {
				t.Fatal(err)
			}
			if !r.Replayed {
				res.Add(r.Result)
			}
		}
		if res.Accepted != len(scrapes)*8 || res.TooLate+res.TooEarly != 0 {
			t.Fatalf("faulty stream: %+v, want %d accepted", res, len(scrapes)*8)
		}
		usage := func(id string) []meter.Usage {
			pts, err := e.Usage(ctx, admin, engine.UsageQuery{From: t0, To: t0.Add(10 * time.Hour), LeaseID: id})
			if err != nil {
				t.Fatal(err)
			}
			var out []meter.Usage
			for _, p := range pts {
				out = append(out, p.Usage)
			}
			return out
		}
		clean, faulty := usage(leases[0]), usage(leases[1])
		if len(clean) < 6 {
			t.Fatalf("clean usage has %d hours", len(clean))
		}
		if diff := cmp.Diff(clean, faulty); diff != "" {
			t.Errorf("usage (-in order +with faults):\n%s", diff)
		}
	})
}

// A node silent for hours pushes its spool: the time a lease held it is
// the lease's, though the lease was made after the meter first saw the
// node and ended long before the readings came.
func TestIngestLateAfterSilence(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, st engine.Store) {
		e, clk := setup(t, st, 1_000_000)
		ctx := context.Background()
		agent := tenant.Principal{KeyID: "a", Role: tenant.OperatorAgent}
		ns, err := e.Nodes(ctx, engine.NodeFilter{})
		if err != nil {
			t.Fatal(err)
		}
		clk.Set(t0.Add(time.Minute))
		first := meter.Batch{ID: "first"}
		for _, n := range ns {
			first.Readings = append(first.Readings, readings("x", n.Name, 8, t0, t0.Add(time.Second), 50, time.Time{}).Readings...)
		}
		if _, err := e.Ingest(ctx, agent, first); err != nil {
			t.Fatal(err)
		}
		res, err := e.RequestLease(ctx, acmeAdmin(), "", reservation(8, 2, 2))
		if err != nil {
			t.Fatal(err)
		}
		views, _, err := e.LeaseAllocations(ctx, admin, res.Lease.ID)
		if err != nil {
			t.Fatal(err)
		}
		node := views[0].Nodes[0]
		clk.Set(t0.Add(5*time.Hour + 30*time.Minute))
		if _, err := e.Tick(ctx); err != nil { // the capacity state may drop what ended
			t.Fatal(err)
		}
		spool := readings("spool", node, 8, t0.Add(10*time.Second), t0.Add(5*time.Hour), 80, time.Time{})
		if _, err := e.Ingest(ctx, agent, spool); err != nil {
			t.Fatal(err)
		}
		pts, err := e.Usage(ctx, acmeAdmin(), engine.UsageQuery{From: t0, To: t0.Add(6 * time.Hour), Step: engine.StepDay})
		if err != nil || len(pts) != 1 {
			t.Fatalf("usage %+v, %v", pts, err)
		}
		if want := int64(8 * 2 * time.Hour / time.Millisecond); pts[0].GPUms != want {
			t.Errorf("the lease's metered GPU-ms %d, want %d (the 2 hours it held the node)", pts[0].GPUms, want)
		}
	})
}

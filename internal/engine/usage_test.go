package engine_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/neocloud/neocloud/internal/engine"
	"github.com/neocloud/neocloud/internal/fleet"
	"github.com/neocloud/neocloud/internal/meter"
	"github.com/neocloud/neocloud/internal/store/dbtest"
)

// A node that fails at any instant, replaced at that instant, costs the
// lease nothing: its SLA holds no episode. A live clock fails nodes at
// instants with a sub-millisecond part; held time measured by truncating
// each allocation's length once reported an hour short by 1 ms per GPU of
// the split run ("held less than committed", 99.9999%).
func TestSLAReplacementAtAnyInstant(t *testing.T) {
	for name, after := range map[string]time.Duration{
		"on the hour":          time.Hour,
		"on a millisecond":     time.Hour + 20*time.Minute + 10*time.Second,
		"within a millisecond": time.Hour + 20*time.Minute + 10*time.Second + 327*time.Microsecond,
		"at a nanosecond":      time.Hour + 43*time.Minute + 53*time.Second + 351_724_917,
	} {
		t.Run(name, func(t *testing.T) {
			dbtest.Each(t, func(t *testing.T, st engine.Store) {
				e, clk := setup(t, st, 1_000_000)
				ctx := context.Background()
				res, err := e.RequestLease(ctx, admin, "acme", reservation(16, 1, 24)) // two nodes, t0+1h .. t0+25h
				if err != nil {
					t.Fatal(err)
				}
				views, _, err := e.LeaseAllocations(ctx, admin, res.Lease.ID)
				if err != nil {
					t.Fatal(err)
				}
				clk.Set(t0.Add(after))
				failed, err := e.SetNodeState(ctx, admin, views[0].Nodes[0], fleet.Failed, "XID 79")
				if err != nil || failed.Replaced != 1 {
					t.Fatalf("failure: %+v, %v; want 1 replacement", failed, err)
				}
				got, err := e.SLA(ctx, acmeAdmin(), res.Lease.ID, t0)
				if err != nil {
					t.Fatal(err)
				}
				committed := int64(16 * 24 * time.Hour / time.Millisecond)
				want := meter.SLA{LeaseID: res.Lease.ID, TenantID: "acme", Month: t0, CommittedGPUms: committed,
					HeldGPUms: committed, DeliveredGPUms: committed, AvailabilityPPM: 1_000_000}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("SLA (-want +got):\n%s", diff)
				}
			})
		})
	}
}

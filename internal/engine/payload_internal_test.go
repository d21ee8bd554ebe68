package engine

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/neocloud/neocloud/internal/event"
	"github.com/neocloud/neocloud/internal/lease"
)

// The admission's event and audit detail are built by hand (no reflection,
// no fmt); these tests hold them to what json.Marshal and fmt.Sprintf made
// of them before.
func TestLeaseCreatedPayloads(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	tests := map[string]struct {
		l         lease.Lease
		allocs    int
		reclaimed int
	}{
		"reservation": {l: lease.Lease{ID: "l_1", TenantID: "acme", Kind: lease.Reservation, Pool: "site/H100-SXM",
			Start: at, End: at.Add(4 * time.Hour), Schedule: []lease.Step{{From: at, GPUs: 64}}}, allocs: 2},
		"contract with steps, other zone": {l: lease.Lease{ID: "l_2", TenantID: "t", Kind: lease.Contract, Pool: "a/B",
			Start: at.In(time.FixedZone("x", 7200)), End: at.Add(90*time.Minute + 1500*time.Microsecond),
			Schedule: []lease.Step{{From: at, GPUs: 8}, {From: at.Add(time.Hour), GPUs: 32}}}, allocs: 7, reclaimed: 3},
		"spot, escapes in the pool": {l: lease.Lease{ID: "l_3", Kind: lease.Spot, Pool: `we"ird<&>`,
			Start: at, End: at.Add(time.Second)}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			l := tc.l
			allocs := make([]lease.Allocation, tc.allocs)
			want := []event.Event{event.New(at, event.LeaseCreated, l.TenantID, l.ID, struct {
				Kind        lease.Kind `json:"kind"`
				Pool        string     `json:"pool"`
				Start       time.Time  `json:"start"`
				End         time.Time  `json:"end"`
				GPUs        int64      `json:"gpus"`
				Allocations int        `json:"allocations"`
			}{l.Kind, l.Pool, l.Start.UTC(), l.End.UTC(), int64(l.MaxGPUs()), len(allocs)})}
			if diff := cmp.Diff(want, leaseCreatedEvents(at, &l, allocs)); diff != "" {
				t.Errorf("leaseCreatedEvents (-want +got)\n%s", diff)
			}
			wantDetail := fmt.Sprintf("kind=%s pool=%s start=%s end=%s gpus=%d allocations=%d spot_reclaimed=%d", l.Kind, l.Pool,
				l.Start.UTC().Format(time.RFC3339), l.End.UTC().Format(time.RFC3339), l.MaxGPUs(), tc.allocs, tc.reclaimed)
			if diff := cmp.Diff(wantDetail, leaseCreatedDetail(&l, tc.allocs, tc.reclaimed)); diff != "" {
				t.Errorf("leaseCreatedDetail (-want +got)\n%s", diff)
			}
		})
	}
}

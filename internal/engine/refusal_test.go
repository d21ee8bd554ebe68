package engine_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/neocloud/neocloud/internal/engine"
	"github.com/neocloud/neocloud/internal/lease"
	"github.com/neocloud/neocloud/internal/store/sqlite"
)

// A tenant reads why a request does not fit, and from when it would, but
// nothing of the owner's use or of other tenants' leases: no free or idle
// counts, no utilization, no lease IDs. Operators read the figures.
func TestRefusalsForTenants(t *testing.T) {
	st := sqlite.OpenTest(t)
	e, clk := setup(t, st, 1_000_000)
	ctx := context.Background()
	clk.Set(t0.Add(10 * time.Minute))
	digits := func(s string) bool { return strings.ContainsAny(s, "0123456789") }
	tests := []struct {
		name   string
		req    lease.Request
		reason string
	}{
		{"more than the pool", reservation(256, 2, 4), "capacity"},
		{"spot too big", spotReq(256, 50, "2m"), "capacity"},
		{"spot price too low", spotReq(8, 0.000001, "2m"), "price"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, err := e.Quote(ctx, acmeAdmin(), "", tt.req)
			if err != nil || q.Feasible || q.Refusal == nil {
				t.Fatalf("tenant quote: %+v, %v; want a refusal", q, err)
			}
			if q.Refusal.Reason != tt.reason || digits(q.Refusal.Detail) {
				t.Errorf("tenant reads (%s) %q; want reason %s and no figures", q.Refusal.Reason, q.Refusal.Detail, tt.reason)
			}
			op, err := e.Quote(ctx, admin, "acme", tt.req)
			if err != nil || op.Refusal == nil || !digits(op.Refusal.Detail) {
				t.Errorf("operator quote: %+v, %v; want the refusal with its figures", op.Refusal, err)
			}
			_, err = e.RequestLease(ctx, acmeAdmin(), "", tt.req)
			var ref *engine.Refusal
			if !errors.As(err, &ref) || ref.Reason != tt.reason || digits(ref.Detail) {
				t.Errorf("tenant request: %v; want reason %s and no figures", err, tt.reason)
			}
		})
	}
	// A guaranteed lease of beta reclaims acme's spot: acme reads that a
	// guaranteed lease starts on its nodes, not which.
	spot, err := e.RequestLease(ctx, acmeAdmin(), "", spotReq(120, 50, "2m"))
	if err != nil {
		t.Fatal(err)
	}
	res, err := e.RequestLease(ctx, admin, "beta", reservation(128, 2, 4))
	if err != nil {
		t.Fatal(err)
	}
	l, err := e.Lease(ctx, acmeAdmin(), spot.Lease.ID)
	if err != nil {
		t.Fatal(err)
	}
	if l.Noticed.IsZero() || strings.Contains(l.Reason, res.Lease.ID) {
		t.Errorf("reclaimed spot lease: noticed %s, reason %q; want a notice that does not name %s", l.Noticed, l.Reason, res.Lease.ID)
	}
}

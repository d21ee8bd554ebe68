package engine_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/neocloud/neocloud/internal/engine"
	"github.com/neocloud/neocloud/internal/fleet"
	"github.com/neocloud/neocloud/internal/lease"
	"github.com/neocloud/neocloud/internal/money"
	"github.com/neocloud/neocloud/internal/store/sqlite"
	"github.com/neocloud/neocloud/internal/tenant"
	"github.com/neocloud/neocloud/internal/valid"
)

func betaAdmin() tenant.Principal {
	return tenant.Principal{KeyID: "key_beta", TenantID: "beta", Role: tenant.TenantAdmin}
}

// dashboardLeases admits, on the 16-node test pool: for acme a 4-node
// reservation held now, a 1-node reservation from hour 2 and a 1-node
// spot lease; for beta a 2-node reservation held now. It returns their
// IDs by name.
func dashboardLeases(t *testing.T, e *engine.Engine) map[string]string {
	t.Helper()
	ctx := context.Background()
	ids := map[string]string{}
	for _, x := range []struct {
		name, tenant string
		req          lease.Request
	}{
		{"acme-now", "acme", reservation(32, 0, 48)},
		{"acme-later", "acme", reservation(8, 2, 4)},
		{"acme-spot", "acme", lease.Request{Kind: lease.Spot, Pool: pool, GPUs: 8, MaxPrice: money.USD(50_000_000)}},
		{"beta-now", "beta", reservation(16, 0, 48)},
	} {
		res, err := e.RequestLease(ctx, admin, x.tenant, x.req)
		if err != nil {
			t.Fatalf("%s: %v", x.name, err)
		}
		ids[x.name] = res.Lease.ID
	}
	return ids
}

func pageIDs(p engine.LeasePage) []string {
	var out []string
	for _, r := range p.Rows {
		out = append(out, r.Lease.ID)
	}
	return out
}

func TestLeasePage(t *testing.T) {
	e, _ := setup(t, sqlite.OpenTest(t), 1_000_000)
	ctx := context.Background()
	ids := dashboardLeases(t, e)
	acme := []string{ids["acme-now"], ids["acme-later"], ids["acme-spot"]}
	tests := []struct {
		name string
		p    tenant.Principal
		q    engine.LeaseQuery
		want []string
		err  error // errors.Is, or a *valid.Error naming field
		bad  string
	}{
		{name: "operator: all", p: admin, q: engine.LeaseQuery{}, want: append(slices.Clone(acme), ids["beta-now"])},
		{name: "operator: one tenant", p: admin, q: engine.LeaseQuery{TenantID: "beta"}, want: []string{ids["beta-now"]}},
		{name: "tenant: its own", p: acmeAdmin(), q: engine.LeaseQuery{}, want: acme},
		{name: "tenant: another's", p: acmeAdmin(), q: engine.LeaseQuery{TenantID: "beta"}, err: tenant.ErrNotFound},
		{name: "kind", p: acmeAdmin(), q: engine.LeaseQuery{Kind: lease.Spot}, want: []string{ids["acme-spot"]}},
		{name: "state active", p: admin, q: engine.LeaseQuery{State: lease.Active}, want: []string{ids["acme-now"], ids["acme-spot"], ids["beta-now"]}},
		{name: "state scheduled", p: admin, q: engine.LeaseQuery{State: lease.Scheduled}, want: []string{ids["acme-later"]}},
		{name: "kind and state", p: admin, q: engine.LeaseQuery{Kind: lease.Reservation, State: lease.Active}, want: []string{ids["acme-now"], ids["beta-now"]}},
		{name: "pool", p: admin, q: engine.LeaseQuery{Pool: "s1/GB200"}, want: nil},
		{name: "after", p: admin, q: engine.LeaseQuery{After: ids["acme-spot"]}, want: []string{ids["beta-now"]}},
		{name: "unknown kind", p: admin, q: engine.LeaseQuery{Kind: "lease"}, bad: "kind"},
		{name: "unknown state", p: admin, q: engine.LeaseQuery{State: lease.Requested}, bad: "state"},
		{name: "limit too large", p: admin, q: engine.LeaseQuery{Limit: engine.MaxLeasePage + 1}, bad: "limit"},
		{name: "viewer without permission", p: tenant.Principal{KeyID: "agent", Role: tenant.OperatorAgent}, err: tenant.ErrForbidden},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := e.LeasePage(ctx, tt.p, tt.q)
			var ve *valid.Error
			switch {
			case tt.err != nil:
				if !errors.Is(err, tt.err) {
					t.Fatalf("err = %v, want %v", err, tt.err)
				}
				return
			case tt.bad != "":
				if !errors.As(err, &ve) || ve.Issues[0].Field != tt.bad {
					t.Fatalf("err = %v, want an issue with %s", err, tt.bad)
				}
				return
			case err != nil:
				t.Fatal(err)
			}
			if ids := pageIDs(got); !slices.Equal(ids, tt.want) {
				t.Errorf("rows %v, want %v", ids, tt.want)
			}
			if got.Next != "" {
				t.Errorf("next %q on the last page", got.Next)
			}
		})
	}

	// Pages of one: every lease once, in order, whatever the filter.
	for _, q := range []engine.LeaseQuery{{Limit: 1}, {Limit: 1, State: lease.Active}, {Limit: 2, Kind: lease.Reservation}} {
		want, err := e.LeasePage(ctx, admin, engine.LeaseQuery{Kind: q.Kind, State: q.State})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for pages := 0; ; pages++ {
			if pages > 10 {
				t.Fatal("pagination does not end")
			}
			p, err := e.LeasePage(ctx, admin, q)
			if err != nil {
				t.Fatal(err)
			}
			if len(p.Rows) > q.Limit {
				t.Fatalf("%d rows, limit %d", len(p.Rows), q.Limit)
			}
			got = append(got, pageIDs(p)...)
			if p.Next == "" {
				break
			}
			q.After = p.Next
		}
		if !slices.Equal(got, pageIDs(want)) {
			t.Errorf("%+v: paged %v, want %v", q, got, pageIDs(want))
		}
	}
}

// A guaranteed lease that lost a node without a replacement is marked.
func TestLeasePageHealth(t *testing.T) {
	e, _ := setup(t, sqlite.OpenTest(t), 1_000_000)
	ctx := context.Background()
	full, err := e.RequestLease(ctx, admin, "acme", reservation(128, 0, 48)) // the whole pool
	if err != nil {
		t.Fatal(err)
	}
	p, err := e.LeasePage(ctx, acmeAdmin(), engine.LeaseQuery{})
	if err != nil || len(p.Rows) != 1 || p.Rows[0].Bad() {
		t.Fatalf("before the failure: %+v, %v", p, err)
	}
	as, _, err := e.LeaseAllocations(ctx, admin, full.Lease.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.SetNodeState(ctx, admin, as[0].Nodes[0], fleet.Failed, "test"); err != nil {
		t.Fatal(err)
	}
	p, err = e.LeasePage(ctx, acmeAdmin(), engine.LeaseQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if h := p.Rows[0].LeaseHealth; h.Shortfalls != 1 || !h.Bad() {
		t.Errorf("health %+v, want one shortfall", h)
	}
}

func TestLeaseFabric(t *testing.T) {
	e, clk := setup(t, sqlite.OpenTest(t), 1_000_000)
	ctx := context.Background()
	ids := dashboardLeases(t, e)
	own := map[string]bool{}
	as, _, err := e.LeaseAllocations(ctx, admin, ids["acme-now"])
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range as {
		for _, n := range a.Nodes {
			own[n] = true
		}
	}
	beta := map[string]bool{}
	if as, _, err = e.LeaseAllocations(ctx, admin, ids["beta-now"]); err != nil {
		t.Fatal(err)
	}
	for _, a := range as {
		for _, n := range a.Nodes {
			beta[n] = true
		}
	}

	// The tenant: its 4 nodes by name, the rest of their leaf groups blank.
	f, err := e.LeaseFabric(ctx, acmeAdmin(), ids["acme-now"])
	if err != nil {
		t.Fatal(err)
	}
	if f.Nodes != 4 || !f.At.Equal(clk.Now()) || f.Pool != pool {
		t.Fatalf("fabric %+v: want 4 nodes now in %s", f, pool)
	}
	mine, others := 0, 0
	for _, p := range f.Pods {
		for _, l := range p.Leafs {
			if len(l.Domains) != 4 {
				t.Errorf("leaf %s/%s: %d NVLink domains, want its 4 nodes", p.Name, l.Name, len(l.Domains))
			}
			for _, d := range l.Domains {
				for _, n := range d.Nodes {
					switch {
					case n.Mine:
						mine++
						if !own[n.Name] || d.Name == "" || n.State != fleet.Available {
							t.Errorf("own node %+v in domain %q", n, d.Name)
						}
					default:
						others++
						if n != (engine.FabricNode{}) || d.Name != "" {
							t.Errorf("a tenant sees another node as %+v in domain %q", n, d.Name)
						}
					}
				}
			}
		}
	}
	if mine != 4 {
		t.Errorf("%d own nodes drawn, want 4", mine)
	}

	// The operator: every node named, beta's held by beta's lease.
	f, err = e.LeaseFabric(ctx, admin, ids["acme-now"])
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, p := range f.Pods {
		for _, l := range p.Leafs {
			for _, d := range l.Domains {
				for _, n := range d.Nodes {
					total++
					if n.Name == "" || d.Name == "" {
						t.Errorf("operator: unnamed node %+v", n)
					}
					if beta[n.Name] && (n.Lease != ids["beta-now"] || n.Tenant != "beta") {
						t.Errorf("operator: beta's node %s shows holder %q/%q", n.Name, n.Lease, n.Tenant)
					}
				}
			}
		}
	}
	if total != mine+others {
		t.Errorf("operator sees %d nodes, tenant %d", total, mine+others)
	}

	// A lease not started is drawn where it will be; another tenant's
	// lease is not found.
	f, err = e.LeaseFabric(ctx, acmeAdmin(), ids["acme-later"])
	if err != nil || f.Nodes != 1 || !f.At.Equal(t0.Add(2*time.Hour)) {
		t.Errorf("scheduled lease: %+v, %v", f, err)
	}
	if _, err := e.LeaseFabric(ctx, betaAdmin(), ids["acme-now"]); !errors.Is(err, tenant.ErrNotFound) {
		t.Errorf("another tenant's fabric: %v", err)
	}
	if _, err := e.LeaseFindings(ctx, betaAdmin(), ids["acme-now"], t0, t0.Add(time.Hour)); !errors.Is(err, tenant.ErrNotFound) {
		t.Errorf("another tenant's findings: %v", err)
	}
	if fs, err := e.LeaseFindings(ctx, acmeAdmin(), ids["acme-now"], t0, t0.Add(time.Hour)); err != nil || len(fs) != 0 {
		t.Errorf("findings %v, %v", fs, err)
	}
}

package engine_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"pgregory.net/rapid"

	"github.com/neocloud/neocloud/internal/clock"
	"github.com/neocloud/neocloud/internal/engine"
	"github.com/neocloud/neocloud/internal/fleet"
	"github.com/neocloud/neocloud/internal/lease"
	"github.com/neocloud/neocloud/internal/store/dbtest"
	"github.com/neocloud/neocloud/internal/store/sqlite"
	"github.com/neocloud/neocloud/internal/tenant"
	"github.com/neocloud/neocloud/internal/valid"
)

var t0 = time.Date(2026, 9, 1, 0, 0, 0, 0, time.UTC)

var admin = tenant.Principal{KeyID: "key_test", Role: tenant.OperatorAdmin}

func newEngine(t testing.TB, st engine.Store) (*engine.Engine, *clock.Fake) {
	t.Helper()
	clk := clock.NewFake(t0)
	e, err := engine.New(engine.Config{Store: st, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	return e, clk
}

// tb is what the helpers need of *testing.T and *rapid.T.
type tb interface {
	Helper()
	Fatal(args ...any)
}

func ptr[T any](v T) *T { return &v }

// specOf builds a one-site fleet: pods × leaves × nodes of H100, plus racks
// of GB200 trays, in domains pd-1/pd-2.
func specOf(pods, leaves, nodes, racks int, model string, absent []string) *fleet.Spec {
	leaf := fleet.LeafGroupSpec{Name: "l{n}", Count: ptr(leaves), Nodes: []fleet.NodeSpec{{Name: "n{n}", Count: ptr(nodes), Model: model}}}
	if racks > 0 {
		leaf.Racks = []fleet.RackSpec{{Name: "r{n}", Count: ptr(racks), Nodes: []fleet.NodeSpec{{Name: "t{n}", Count: ptr(18), Model: "GB200"}}}}
	}
	return &fleet.Spec{Version: 1, Sites: []fleet.SiteSpec{{
		Name: "s1", FacilityMW: 10, PUE: 1.2, Timezone: "UTC",
		PowerDomains: []fleet.PowerDomainSpec{{Name: "pd-1", BudgetKW: 4000}, {Name: "pd-2", BudgetKW: 4000}},
		Pods:         []fleet.PodSpec{{Name: "p{n}", Count: ptr(pods), PowerDomain: "pd-1", LeafGroups: []fleet.LeafGroupSpec{leaf}}},
		Absent:       absent,
	}}}
}

func nodeNames(t tb, st engine.Store) []string {
	t.Helper()
	nodes, err := st.AllNodes(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	out := make([]string, len(nodes))
	for i, n := range nodes {
		out[i] = n.Name
	}
	return out
}

func expandedNames(t tb, spec *fleet.Spec) []string {
	t.Helper()
	f, err := spec.Expand()
	if err != nil {
		t.Fatal(err)
	}
	out := make([]string, len(f.Nodes))
	for i, n := range f.Nodes {
		out[i] = n.Name
	}
	sort.Strings(out)
	return out
}

// TestApplyFleetProperty applies random fleets in sequence, with random
// allocations in between: the nodes in service always equal the last
// accepted file, and an apply is refused exactly when it would retire (or
// re-pool) a node holding an allocation that has not ended — then nothing
// changes. The store lives across rapid's iterations on purpose: each
// iteration is one step of a long random walk of applies, allocations and
// time (shrinking is weaker for it, but the walk reaches deeper states).
func TestApplyFleetProperty(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, st engine.Store) {
		e, clk := newEngine(t, st)
		ctx := context.Background()
		allocs := map[string]time.Time{} // node → end of its latest allocation
		step := 0
		rapid.Check(t, func(rt *rapid.T) {
			step++
			pods := rapid.IntRange(1, 2).Draw(rt, "pods")
			leaves := rapid.IntRange(1, 3).Draw(rt, "leaves")
			nodes := rapid.IntRange(1, 4).Draw(rt, "nodes")
			racks := rapid.IntRange(0, 1).Draw(rt, "racks")
			model := rapid.SampledFrom([]string{"H100-SXM", "H200-SXM"}).Draw(rt, "model")
			spec := specOf(pods, leaves, nodes, racks, model, nil)
			want := expandedNames(rt, spec)
			before := nodeNames(rt, st)

			// Which in-service nodes hold an allocation that has not ended?
			now := clk.Now()
			wantNames := map[string]bool{}
			for _, n := range want {
				wantNames[n] = true
			}
			current, err := st.AllNodes(ctx)
			if err != nil {
				rt.Fatal(err)
			}
			var blocked []string
			for _, n := range current {
				end, held := allocs[n.Name]
				if !held || !end.After(now) {
					continue
				}
				if !wantNames[n.Name] || (n.Model != "GB200" && n.Model != model) {
					blocked = append(blocked, n.Name)
				}
			}
			sort.Strings(blocked)

			res, err := e.ApplyFleet(ctx, admin, spec, false)
			var inUse *engine.NodesInUseError
			switch {
			case len(blocked) > 0:
				if !errors.As(err, &inUse) {
					rt.Fatalf("apply retiring held nodes %v: err %v, want NodesInUseError", blocked, err)
				}
				if diff := cmp.Diff(blocked, inUse.Nodes); diff != "" {
					rt.Errorf("refused nodes (-want +got):\n%s", diff)
				}
				if diff := cmp.Diff(before, nodeNames(rt, st)); diff != "" {
					rt.Errorf("a refused apply changed the nodes (-before +after):\n%s", diff)
				}
			case err != nil:
				rt.Fatalf("apply: %v", err)
			default:
				if diff := cmp.Diff(want, nodeNames(rt, st)); diff != "" {
					rt.Errorf("nodes in service differ from the file (-want +got):\n%s", diff)
				}
				if res.Nodes != len(want) {
					rt.Errorf("result says %d nodes, want %d", res.Nodes, len(want))
				}
			}

			// Allocate a random node in service, some time from now; then
			// let time pass.
			names := nodeNames(rt, st)
			if len(names) > 0 && rapid.Bool().Draw(rt, "allocate") {
				n := names[rapid.IntRange(0, len(names)-1).Draw(rt, "node")]
				start := now.Add(time.Duration(rapid.IntRange(0, 48).Draw(rt, "start_h")) * time.Hour)
				if end, ok := allocs[n]; ok && end.After(start) {
					start = end
				}
				end := start.Add(time.Duration(rapid.IntRange(1, 48).Draw(rt, "len_h")) * time.Hour)
				err := st.Update(ctx, func(tx engine.Tx) error {
					in, err := tx.AllNodes(ctx)
					if err != nil {
						return err
					}
					ord := in[slices.IndexFunc(in, func(m fleet.Node) bool { return m.Name == n })].Ordinal
					return tx.InsertAllocations(ctx, []lease.Allocation{{ID: fmt.Sprintf("a%d", step), LeaseID: "l", TenantID: "x",
						NodeFrom: ord, NodeTo: ord + 1, Start: start, End: end}})
				})
				if err != nil {
					rt.Fatalf("allocate %s: %v", n, err)
				}
				allocs[n] = end
			}
			clk.Advance(time.Duration(rapid.IntRange(0, 72).Draw(rt, "advance_h")) * time.Hour)
		})
	})
}

func TestApplyFleetDryRunAndRevision(t *testing.T) {
	st := sqlite.OpenTest(t)
	e, _ := newEngine(t, st)
	ctx := context.Background()
	spec := specOf(1, 2, 4, 1, "H100-SXM", nil)
	dry, err := e.ApplyFleet(ctx, admin, spec, true)
	if err != nil {
		t.Fatal(err)
	}
	if !dry.DryRun || dry.Revision != 0 || len(dry.Added) != 2*4+2*18 {
		t.Errorf("dry run = %+v", dry)
	}
	if n := nodeNames(t, st); len(n) != 0 {
		t.Fatalf("dry run wrote %d nodes", len(n))
	}
	if _, err := e.FleetRevision(ctx); !errors.Is(err, engine.ErrNotFound) {
		t.Errorf("revision after dry run: %v, want ErrNotFound", err)
	}
	res, err := e.ApplyFleet(ctx, admin, spec, false)
	if err != nil {
		t.Fatal(err)
	}
	if res.Revision == 0 || len(res.Added) != 44 || res.GPUs != 8*8+36*4 {
		t.Errorf("apply = %+v", res)
	}
	again, err := e.ApplyFleet(ctx, admin, spec, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(again.Added)+len(again.Updated)+len(again.Retired) != 0 || again.Unchanged != 44 || again.SHA256 != res.SHA256 || again.Revision != res.Revision {
		t.Errorf("reapply = %+v, want no change", again)
	}
	rev, err := e.FleetRevision(ctx)
	if err != nil {
		t.Fatal(err)
	}
	back, err := fleet.DecodeJSON(rev.Spec)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(spec, back); diff != "" {
		t.Errorf("stored spec (-applied +stored):\n%s", diff)
	}
	// Moving nodes to another power domain is an update that keeps state.
	spec.Sites[0].Pods[0].PowerDomain = "pd-2"
	moved, err := e.ApplyFleet(ctx, admin, spec, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(moved.Updated) != 44 {
		t.Errorf("moved %d nodes, want 44", len(moved.Updated))
	}
	// An invalid file is a *valid.Error and changes nothing.
	spec.Sites[0].Pods[0].PowerDomain = "nowhere"
	_, err = e.ApplyFleet(ctx, admin, spec, false)
	var ve *valid.Error
	if !errors.As(err, &ve) {
		t.Fatalf("invalid apply: %v, want *valid.Error", err)
	}
}

func TestKeysAndTenants(t *testing.T) {
	st := sqlite.OpenTest(t)
	e, _ := newEngine(t, st)
	ctx := context.Background()
	// A failed delivery stores nothing.
	if issued, err := e.Bootstrap(ctx, func(string) error { return errors.New("disk full") }); err == nil || issued {
		t.Fatalf("bootstrap with a failing delivery = %v, %v", issued, err)
	}
	if n, _ := st.CountKeys(ctx); n != 0 {
		t.Fatalf("a failed bootstrap stored %d keys", n)
	}
	var secret string
	issued, err := e.Bootstrap(ctx, func(s string) error { secret = s; return nil })
	if err != nil || !issued || secret == "" {
		t.Fatalf("bootstrap = %v %q, %v", issued, secret, err)
	}
	if again, err := e.Bootstrap(ctx, func(string) error { t.Fatal("delivered twice"); return nil }); err != nil || again {
		t.Fatalf("second bootstrap = %v, %v; want no new key", again, err)
	}
	op, err := e.Authenticate(ctx, secret)
	if err != nil || op.Role != tenant.OperatorAdmin {
		t.Fatalf("authenticate bootstrap key = %v, %v", op, err)
	}
	for _, id := range []string{"a", "b"} {
		if _, err := e.CreateTenant(ctx, op, tenant.Tenant{ID: id}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.CreateTenant(ctx, op, tenant.Tenant{ID: "a"}); !errors.Is(err, tenant.ErrExists) {
		t.Errorf("duplicate tenant: %v, want ErrExists", err)
	}
	_, aSecret, err := e.CreateKey(ctx, op, engine.KeyRequest{TenantID: "a", Role: tenant.TenantAdmin})
	if err != nil {
		t.Fatal(err)
	}
	a, err := e.Authenticate(ctx, aSecret)
	if err != nil || a.TenantID != "a" {
		t.Fatalf("tenant key = %v, %v", a, err)
	}
	tests := []struct {
		name string
		req  engine.KeyRequest
		want error
	}{
		{"own tenant viewer", engine.KeyRequest{TenantID: "a", Role: tenant.TenantViewer}, nil},
		{"operator role", engine.KeyRequest{Role: tenant.OperatorAdmin}, tenant.ErrForbidden},
		{"other tenant", engine.KeyRequest{TenantID: "b", Role: tenant.TenantViewer}, tenant.ErrNotFound},
		{"missing tenant", engine.KeyRequest{TenantID: "zz", Role: tenant.TenantViewer}, tenant.ErrNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := e.CreateKey(ctx, a, tc.req)
			if !errors.Is(err, tc.want) {
				t.Errorf("tenant admin creates %+v: %v, want %v", tc.req, err, tc.want)
			}
		})
	}
	ts, err := e.Tenants(ctx, a)
	if err != nil || len(ts) != 1 || ts[0].ID != "a" {
		t.Errorf("tenant a lists tenants = %v, %v; want only itself", ts, err)
	}
	if _, err := e.Keys(ctx, a, "b", false); !errors.Is(err, tenant.ErrNotFound) {
		t.Errorf("tenant a lists b's keys: %v, want ErrNotFound", err)
	}
	// Revoke: the key stops working; revoking again is harmless.
	id := tenant.KeyID(tenant.HashSecret(aSecret))
	if _, err := e.RevokeKey(ctx, op, id); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Authenticate(ctx, aSecret); !errors.Is(err, tenant.ErrUnauthenticated) {
		t.Errorf("revoked key authenticates: %v", err)
	}
	if k, err := e.RevokeKey(ctx, op, id); err != nil || k.Active() {
		t.Errorf("second revoke = %+v, %v", k, err)
	}
	// Every mutation is in the audit log, newest first.
	entries, err := e.Audit(ctx, op, engine.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, en := range entries {
		if en.Outcome == tenant.OutcomeOK {
			actions = append(actions, en.Action)
		}
	}
	wantActions := []string{"keys.revoke", "keys.create", "keys.create", "tenants.create", "tenants.create", "keys.create"}
	if diff := cmp.Diff(wantActions, actions); diff != "" {
		t.Errorf("audited mutations (-want +got):\n%s", diff)
	}
}

// TestDenialOutlivesHangUp: a caller that cancels its request still leaves
// its denial in the audit log, with secrets and control characters made
// harmless.
func TestDenialOutlivesHangUp(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, st engine.Store) {
		e, _ := newEngine(t, st)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		secret, err := tenant.NewSecret(nil)
		if err != nil {
			t.Fatal(err)
		}
		p := tenant.Principal{KeyID: "key_x", TenantID: "a", Role: tenant.TenantAdmin}
		e.RecordDenial(ctx, p, "keys.revoke", "key/"+secret+"\x00\xff", "probe")
		es, err := st.Audit(context.Background(), engine.AuditFilter{TenantID: "a"})
		if err != nil || len(es) != 1 {
			t.Fatalf("audit = %v, %v; want the denial", es, err)
		}
		obj := es[0].Object
		if strings.Contains(obj, secret) || !strings.Contains(obj, tenant.KeyID(tenant.HashSecret(secret))) || !tenant.ValidText(obj) {
			t.Errorf("audited object %q: want the key ID, no secret, no control bytes", obj)
		}
	})
}

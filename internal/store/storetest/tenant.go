package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/neocloud/neocloud/internal/engine"
	"github.com/neocloud/neocloud/internal/fleet"
	"github.com/neocloud/neocloud/internal/lease"
	"github.com/neocloud/neocloud/internal/tenant"
)

func testTenants(t *testing.T, s engine.Store) {
	ctx := t.Context()
	acme := tenant.Tenant{ID: "acme", DisplayName: "Acme Corp", Created: at(time.Minute + 7*time.Microsecond)}
	rival := tenant.Tenant{ID: "rival-lab", DisplayName: "Rival Lab", Created: at(time.Hour)}
	bravo := tenant.Tenant{ID: "bravo", DisplayName: "", Created: at(2 * time.Hour)}
	update(t, s, func(tx engine.Tx) error {
		if err := tx.CreateTenant(ctx, rival); err != nil {
			return err
		}
		return tx.CreateTenant(ctx, acme)
	})
	// A taken ID is refused and leaves the transaction usable.
	update(t, s, func(tx engine.Tx) error {
		dup := acme
		dup.DisplayName = "Impostor"
		if err := tx.CreateTenant(ctx, dup); !errors.Is(err, tenant.ErrExists) {
			t.Errorf("CreateTenant(taken ID): err = %v, want ErrExists", err)
		}
		return tx.CreateTenant(ctx, bravo)
	})
	got, err := s.Tenant(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(acme, got); diff != "" {
		t.Errorf("Tenant(acme) (-want +got):\n%s", diff)
	}
	if _, err := s.Tenant(ctx, "nobody"); !errors.Is(err, engine.ErrNotFound) {
		t.Errorf("Tenant(nobody): err = %v, want ErrNotFound", err)
	}
	all, err := s.Tenants(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]tenant.Tenant{acme, bravo, rival}, all); diff != "" {
		t.Errorf("Tenants (-want +got):\n%s", diff)
	}
}

// key returns a key named name with the hash of a secret derived from id.
func key(id, tenantID string, role tenant.Role, created time.Time) tenant.Key {
	return tenant.Key{ID: id, TenantID: tenantID, Role: role, Name: "key " + id,
		Hash: tenant.HashSecret("nc_secret_" + id), Created: created, CreatedBy: "bootstrap"}
}

func testKeys(t *testing.T, s engine.Store) {
	ctx := t.Context()
	op := key("key_op", "", tenant.OperatorAdmin, at(0))
	viewer := key("key_view", "", tenant.OperatorViewer, at(time.Minute))
	acmeAdmin := key("key_acme_b", "acme", tenant.TenantAdmin, at(time.Hour))
	acmeViewer := key("key_acme_a", "acme", tenant.TenantViewer, at(time.Hour)) // same instant: ID breaks the tie
	rivalAdmin := key("key_rival", "rival", tenant.TenantAdmin, at(30*time.Minute))
	update(t, s, func(tx engine.Tx) error {
		for _, tn := range []string{"acme", "rival"} {
			if err := tx.CreateTenant(ctx, tenant.Tenant{ID: tn, Created: T0}); err != nil {
				return err
			}
		}
		for _, k := range []tenant.Key{op, viewer, acmeAdmin, acmeViewer, rivalAdmin} {
			if err := tx.CreateKey(ctx, k); err != nil {
				return err
			}
		}
		return nil
	})
	update(t, s, func(tx engine.Tx) error {
		sameID := key("key_op", "", tenant.OperatorViewer, at(time.Hour))
		sameHash := key("key_other", "", tenant.OperatorViewer, at(time.Hour))
		sameHash.Hash = op.Hash
		for name, k := range map[string]tenant.Key{"taken ID": sameID, "taken hash": sameHash} {
			if err := tx.CreateKey(ctx, k); !errors.Is(err, tenant.ErrExists) {
				t.Errorf("CreateKey(%s): err = %v, want ErrExists", name, err)
			}
		}
		return nil
	})
	if err := s.Update(ctx, func(tx engine.Tx) error {
		return tx.CreateKey(ctx, key("key_ghost", "ghost", tenant.TenantAdmin, T0))
	}); err == nil {
		t.Errorf("CreateKey for an unknown tenant: err = nil, want an error")
	}

	revokedAt := at(2*time.Hour + 5*time.Microsecond)
	update(t, s, func(tx engine.Tx) error { return tx.RevokeKey(ctx, viewer.ID, revokedAt) })
	// Revoking again keeps the first revocation time.
	update(t, s, func(tx engine.Tx) error { return tx.RevokeKey(ctx, viewer.ID, at(3*time.Hour)) })
	if err := s.Update(ctx, func(tx engine.Tx) error { return tx.RevokeKey(ctx, "key_nobody", at(0)) }); !errors.Is(err, engine.ErrNotFound) {
		t.Errorf("RevokeKey(unknown): err = %v, want ErrNotFound", err)
	}
	viewer.Revoked = revokedAt

	for _, tc := range []struct {
		name string
		get  func() (tenant.Key, error)
		want tenant.Key
	}{
		{"Key(op)", func() (tenant.Key, error) { return s.Key(ctx, op.ID) }, op},
		{"Key(revoked)", func() (tenant.Key, error) { return s.Key(ctx, viewer.ID) }, viewer},
		{"KeyByHash(acme)", func() (tenant.Key, error) { return s.KeyByHash(ctx, acmeAdmin.Hash) }, acmeAdmin},
		{"KeyByHash(revoked)", func() (tenant.Key, error) { return s.KeyByHash(ctx, viewer.Hash) }, viewer},
	} {
		got, err := tc.get()
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tc.name, diff)
		}
	}
	if _, err := s.Key(ctx, "key_nobody"); !errors.Is(err, engine.ErrNotFound) {
		t.Errorf("Key(unknown): err = %v, want ErrNotFound", err)
	}
	if _, err := s.KeyByHash(ctx, tenant.HashSecret("nc_unknown")); !errors.Is(err, engine.ErrNotFound) {
		t.Errorf("KeyByHash(unknown): err = %v, want ErrNotFound", err)
	}

	for _, tc := range []struct {
		f    engine.KeyFilter
		want []tenant.Key
	}{
		{engine.KeyFilter{}, []tenant.Key{op, rivalAdmin, acmeViewer, acmeAdmin}},
		{engine.KeyFilter{IncludeRevoked: true}, []tenant.Key{op, viewer, rivalAdmin, acmeViewer, acmeAdmin}},
		{engine.KeyFilter{TenantID: "acme"}, []tenant.Key{acmeViewer, acmeAdmin}},
		{engine.KeyFilter{TenantID: "rival", IncludeRevoked: true}, []tenant.Key{rivalAdmin}},
		{engine.KeyFilter{TenantID: "nobody"}, []tenant.Key{}},
	} {
		got, err := s.Keys(ctx, tc.f)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("Keys(%+v) (-want +got):\n%s", tc.f, diff)
		}
	}
	if n, err := s.CountKeys(ctx); err != nil || n != 5 {
		t.Errorf("CountKeys = %d, %v; want 5 (revoked ones included)", n, err)
	}
}

func testAudit(t *testing.T, s engine.Store) {
	ctx := t.Context()
	var all []tenant.AuditEntry // oldest first
	update(t, s, func(tx engine.Tx) error {
		for i := range 130 {
			e := tenant.AuditEntry{
				At:        at(time.Duration(i)*time.Second + time.Microsecond),
				Actor:     tenant.Principal{KeyID: "key_op", Role: tenant.OperatorAdmin},
				Action:    "tenants.create",
				Object:    fmt.Sprintf("tenant/t%03d", i),
				Outcome:   tenant.OutcomeOK,
				Detail:    "created",
				RequestID: fmt.Sprintf("req-%d", i),
			}
			if i%3 == 0 {
				e.Actor = tenant.Principal{KeyID: "key_acme", TenantID: "acme", Role: tenant.TenantAdmin}
				e.TenantID, e.Outcome, e.Action, e.Object = "acme", tenant.OutcomeDenied, "GET /v1/nodes", ""
			}
			seq, err := tx.AppendAudit(ctx, e)
			if err != nil {
				return err
			}
			if len(all) > 0 && seq <= all[len(all)-1].Seq {
				t.Errorf("AppendAudit #%d: Seq = %d, not after %d", i, seq, all[len(all)-1].Seq)
			}
			e.Seq = seq
			all = append(all, e)
		}
		return nil
	})
	newest := func(f func(tenant.AuditEntry) bool) []tenant.AuditEntry {
		out := []tenant.AuditEntry{}
		for i := len(all) - 1; i >= 0; i-- {
			if f(all[i]) {
				out = append(out, all[i])
			}
		}
		return out
	}
	every := func(tenant.AuditEntry) bool { return true }
	acme := func(e tenant.AuditEntry) bool { return e.TenantID == "acme" }
	mid := all[60].Seq
	for _, tc := range []struct {
		f    engine.AuditFilter
		want []tenant.AuditEntry
	}{
		{engine.AuditFilter{}, newest(every)[:100]}, // Limit <= 0 means 100
		{engine.AuditFilter{Limit: 1000}, newest(every)},
		{engine.AuditFilter{Limit: 5}, newest(every)[:5]},
		{engine.AuditFilter{TenantID: "acme", Limit: 1000}, newest(acme)},
		{engine.AuditFilter{Before: mid, Limit: 3}, newest(func(e tenant.AuditEntry) bool { return e.Seq < mid })[:3]},
		{engine.AuditFilter{TenantID: "acme", Before: mid}, newest(func(e tenant.AuditEntry) bool { return acme(e) && e.Seq < mid })},
		{engine.AuditFilter{TenantID: "nobody"}, []tenant.AuditEntry{}},
	} {
		got, err := s.Audit(ctx, tc.f)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("Audit(%+v) (-want +got):\n%s", tc.f, diff)
		}
	}
}

func testAuditAppendOnly(t *testing.T, s engine.Store) {
	d, ok := s.(DBer)
	if !ok {
		t.Skip("the store does not expose its database (DBer)")
	}
	ctx := t.Context()
	e := tenant.AuditEntry{At: T0, Actor: tenant.Principal{KeyID: "key_op", Role: tenant.OperatorAdmin},
		Action: "keys.create", Object: "key/key_x", Outcome: tenant.OutcomeOK}
	update(t, s, func(tx engine.Tx) error {
		var err error
		e.Seq, err = tx.AppendAudit(ctx, e)
		return err
	})
	for _, q := range []string{
		`UPDATE audit_log SET detail = 'rewritten'`,
		`DELETE FROM audit_log`,
	} {
		if _, err := d.DB().ExecContext(ctx, q); err == nil {
			t.Errorf("%s: err = nil, want the append-only trigger's refusal", q)
		}
	}
	got, err := s.Audit(ctx, engine.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]tenant.AuditEntry{e}, got); diff != "" {
		t.Errorf("Audit after UPDATE and DELETE (-want +got):\n%s", diff)
	}
}

// writeEverything makes one write of each kind in tx.
func writeEverything(ctx context.Context, tx engine.Tx, suffix string) error {
	n := node("n-"+suffix, "s-"+suffix, "H100-SXM", "hall-1")
	if err := tx.ApplyFleet(ctx, engine.FleetChange{At: T0, Sites: []fleet.Site{site("s-"+suffix, "hall-1")}, Add: []fleet.Node{n},
		Revision: engine.FleetRevision{At: T0, By: "key_op", SHA256: suffix, Spec: []byte("{}"), NodeCount: 1, GPUCount: 8}}); err != nil {
		return err
	}
	nodes, err := tx.AllNodes(ctx)
	if err != nil {
		return err
	}
	ord := nodes[slices.IndexFunc(nodes, func(m fleet.Node) bool { return m.Name == n.Name })].Ordinal
	if err := tx.InsertAllocations(ctx, []lease.Allocation{alloc("a-"+suffix, ord, ord+1, 0, time.Hour)}); err != nil {
		return err
	}
	if err := tx.InsertLease(ctx, testLease("ls-"+suffix, "t-"+suffix, "s-"+suffix+"/H100-SXM", 0)); err != nil {
		return err
	}
	if err := tx.InsertShortfall(ctx, lease.Shortfall{ID: "sf-" + suffix, LeaseID: "ls-" + suffix, TenantID: "t-" + suffix,
		Node: n.Name, GPUs: 8, From: T0, To: at(time.Hour)}); err != nil {
		return err
	}
	if err := tx.SetHoldback(ctx, "s-"+suffix+"/H100-SXM", []engine.HoldbackStep{{From: T0, GPUs: 8}}); err != nil {
		return err
	}
	if err := tx.SetNodeState(ctx, n.Name, fleet.Draining); err != nil {
		return err
	}
	if err := tx.AppendAudits(ctx, []tenant.AuditEntry{{At: T0, Action: "test.batch", Outcome: tenant.OutcomeOK}}); err != nil {
		return err
	}
	if err := tx.CreateTenant(ctx, tenant.Tenant{ID: "t-" + suffix, Created: T0}); err != nil {
		return err
	}
	if err := tx.CreateKey(ctx, key("key_"+suffix, "t-"+suffix, tenant.TenantAdmin, T0)); err != nil {
		return err
	}
	if err := tx.RevokeKey(ctx, "key_"+suffix, T0); err != nil {
		return err
	}
	_, err = tx.AppendAudit(ctx, tenant.AuditEntry{At: T0, Action: "test", Outcome: tenant.OutcomeOK})
	return err
}

// checkEmpty checks that nothing writeEverything writes is visible.
func checkEmpty(t *testing.T, s engine.Store) {
	t.Helper()
	ctx := t.Context()
	sites, err1 := s.Sites(ctx)
	nodes, err2 := s.AllNodes(ctx)
	tenants, err3 := s.Tenants(ctx)
	keys, err4 := s.CountKeys(ctx)
	audit, err5 := s.Audit(ctx, engine.AuditFilter{})
	_, err6 := s.LatestFleetRevision(ctx)
	leases, err7 := s.Leases(ctx, engine.LeaseFilter{})
	allocs, err8 := s.Allocations(ctx, engine.AllocationFilter{})
	short, err9 := s.Shortfalls(ctx, "")
	hold, err10 := s.Holdback(ctx)
	if err := errors.Join(err1, err2, err3, err4, err5, err7, err8, err9, err10); err != nil {
		t.Fatal(err)
	}
	if len(sites)+len(nodes)+len(tenants)+int(keys)+len(audit) != 0 || !errors.Is(err6, engine.ErrNotFound) {
		t.Errorf("after a rolled-back update: %d sites, %d nodes, %d tenants, %d keys, %d audit entries, revision err %v; want none",
			len(sites), len(nodes), len(tenants), keys, len(audit), err6)
	}
	if len(leases)+len(allocs)+len(short)+len(hold) != 0 {
		t.Errorf("after a rolled-back update: %d leases, %d allocations, %d shortfalls, %d holdback schedules; want none",
			len(leases), len(allocs), len(short), len(hold))
	}
}

func testUpdateError(t *testing.T, s engine.Store) {
	errStop := errors.New("stop")
	err := s.Update(t.Context(), func(tx engine.Tx) error {
		if err := writeEverything(t.Context(), tx, "x"); err != nil {
			return err
		}
		return fmt.Errorf("wrapped: %w", errStop)
	})
	if !errors.Is(err, errStop) {
		t.Fatalf("Update: err = %v, want fn's error", err)
	}
	checkEmpty(t, s)
	// The store still writes.
	update(t, s, func(tx engine.Tx) error { return writeEverything(t.Context(), tx, "y") })
}

func testUpdatePanic(t *testing.T, s engine.Store) {
	func() {
		defer func() {
			if p := recover(); p != "boom" {
				t.Errorf("recovered %v, want the panic of fn", p)
			}
		}()
		_ = s.Update(t.Context(), func(tx engine.Tx) error {
			if err := writeEverything(t.Context(), tx, "x"); err != nil {
				return err
			}
			panic("boom")
		})
	}()
	checkEmpty(t, s)
	update(t, s, func(tx engine.Tx) error { return writeEverything(t.Context(), tx, "y") })
}

// testUpdateReadsOwnWrites checks that the Tx of Update, when it is also an
// engine.Reader, reads the transaction's writes.
func testUpdateReadsOwnWrites(t *testing.T, s engine.Store) {
	update(t, s, func(tx engine.Tx) error {
		r, ok := tx.(engine.Reader)
		if !ok {
			t.Skip("the Tx does not implement engine.Reader")
		}
		if err := writeEverything(t.Context(), tx, "x"); err != nil {
			return err
		}
		nodes, err := r.AllNodes(t.Context())
		if err != nil {
			return err
		}
		if len(nodes) != 1 {
			t.Errorf("AllNodes in the transaction = %d nodes, want 1", len(nodes))
		}
		return nil
	})
	held := heldNodes(t, s, []string{"n-x"}, T0)
	if diff := cmp.Diff([]string{"n-x"}, held); diff != "" {
		t.Errorf("HeldNodes after commit (-want +got):\n%s", diff)
	}
}

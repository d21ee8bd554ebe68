package storetest

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/neocloud/neocloud/internal/engine"
	"github.com/neocloud/neocloud/internal/fleet"
	"github.com/neocloud/neocloud/internal/tenant"
	"github.com/neocloud/neocloud/internal/unit"
)

func testEmpty(t *testing.T, s engine.Store) {
	ctx := t.Context()
	lists := map[string]func() (int, error){
		"Sites":    func() (int, error) { v, err := s.Sites(ctx); return lenNonNil(v, err) },
		"Pools":    func() (int, error) { v, err := s.Pools(ctx, ""); return lenNonNil(v, err) },
		"Nodes":    func() (int, error) { v, err := s.Nodes(ctx, engine.NodeFilter{}); return lenNonNil(v, err) },
		"AllNodes": func() (int, error) { v, err := s.AllNodes(ctx); return lenNonNil(v, err) },
		"Tenants":  func() (int, error) { v, err := s.Tenants(ctx); return lenNonNil(v, err) },
		"Keys": func() (int, error) {
			v, err := s.Keys(ctx, engine.KeyFilter{IncludeRevoked: true})
			return lenNonNil(v, err)
		},
		"Audit":  func() (int, error) { v, err := s.Audit(ctx, engine.AuditFilter{}); return lenNonNil(v, err) },
		"Leases": func() (int, error) { v, err := s.Leases(ctx, engine.LeaseFilter{}); return lenNonNil(v, err) },
		"Allocations": func() (int, error) {
			v, err := s.Allocations(ctx, engine.AllocationFilter{})
			return lenNonNil(v, err)
		},
		"Shortfalls": func() (int, error) { v, err := s.Shortfalls(ctx, ""); return lenNonNil(v, err) },
		"Holdback": func() (int, error) {
			v, err := s.Holdback(ctx)
			if v == nil {
				return -1, err
			}
			return len(v), err
		},
	}
	for name, f := range lists {
		if n, err := f(); err != nil || n != 0 {
			t.Errorf("%s on an empty store = %d items, %v; want an empty non-nil slice, nil", name, n, err)
		}
	}
	if n, err := s.CountKeys(ctx); err != nil || n != 0 {
		t.Errorf("CountKeys = %d, %v; want 0, nil", n, err)
	}
	notFound := map[string]error{}
	_, notFound["LatestFleetRevision"] = s.LatestFleetRevision(ctx)
	_, notFound["Tenant"] = s.Tenant(ctx, "nobody")
	_, notFound["Key"] = s.Key(ctx, "key_0000")
	_, notFound["KeyByHash"] = s.KeyByHash(ctx, tenant.HashSecret("nc_x"))
	_, notFound["Lease"] = s.Lease(ctx, "ls-1")
	for name, err := range notFound {
		if !errors.Is(err, engine.ErrNotFound) {
			t.Errorf("%s on an empty store: err = %v, want ErrNotFound", name, err)
		}
	}
}

// lenNonNil returns len(v), or -1 when v is nil.
func lenNonNil[T any](v []T, err error) (int, error) {
	if v == nil {
		return -1, err
	}
	return len(v), err
}

func testFleetLifecycle(t *testing.T, s engine.Store) {
	ctx := t.Context()
	a := site("dfw-1", "hall-1", "hall-2")
	n1 := node("dfw-1-h100-0001", "dfw-1", "H100-SXM", "hall-1")
	n2 := node("dfw-1-h100-0002", "dfw-1", "H100-SXM", "hall-1")
	n3 := withState(node("dfw-1-gb200-0001", "dfw-1", "GB200", "hall-2"), fleet.Failed)
	n4 := node("dfw-1-gb200-0002", "dfw-1", "GB200", "hall-2")
	n4.State = "" // a new node without a state starts available
	apply(t, s, engine.FleetChange{At: at(0), Sites: []fleet.Site{a}, Add: []fleet.Node{n1, n2, n3, n4},
		Revision: engine.FleetRevision{At: at(0), By: "key_a", SHA256: "sha-1", Spec: []byte(`{"v":1}`), NodeCount: 4, GPUCount: 24}})

	gotSites, err := s.Sites(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]fleet.Site{a}, gotSites); diff != "" {
		t.Errorf("Sites (-want +got):\n%s", diff)
	}
	n4.State = fleet.Available
	wantNodes(t, s, n3, n4, n1, n2)

	// Update moves n1 to hall-2 with more power; its state is not the
	// update's to change. Retire n2 and n3.
	n1u := n1
	n1u.PowerDomain, n1u.ITPower, n1u.Position.Pod, n1u.State = "hall-2", 11_000, "pod-2", fleet.Maintenance
	apply(t, s, engine.FleetChange{At: at(time.Hour), Sites: []fleet.Site{a}, Update: []fleet.Node{n1u},
		Retire: []string{n2.Name, n3.Name}, Revision: engine.FleetRevision{At: at(time.Hour), By: "key_a", SHA256: "sha-2", Spec: []byte(`{"v":2}`)}})
	n1u.State = fleet.Available
	wantNodes(t, s, n4, n1u)

	// Re-adding retired nodes brings them back with the new fields, in the
	// state they left in (whatever state the change carries): a node retired
	// while failed or sanitizing must not come back leasable.
	n2r := n2
	n2r.ITPower, n2r.Position.LeafGroup = 10_500, "leaf-9"
	n3r := withState(n3, fleet.Failed)
	apply(t, s, engine.FleetChange{At: at(2 * time.Hour), Sites: []fleet.Site{a}, Add: []fleet.Node{n2r, n3r},
		Revision: engine.FleetRevision{At: at(2 * time.Hour), By: "key_a", SHA256: "sha-3", Spec: []byte(`{"v":3}`)}})
	n3r.State = n3.State
	wantNodes(t, s, n3r, n4, n1u, n2r)

	got, err := s.AllNodes(ctx)
	if err != nil || len(got) != 4 {
		t.Errorf("AllNodes = %d nodes, %v; want 4", len(got), err)
	}
	for _, n := range got {
		if !n.Retired.IsZero() {
			t.Errorf("node %s in service has Retired = %v, want zero", n.Name, n.Retired)
		}
	}
}

// wantNodes checks that AllNodes returns want (in name order).
func wantNodes(t *testing.T, s engine.Store, want ...fleet.Node) {
	t.Helper()
	want = slices.Clone(want)
	slices.SortFunc(want, func(a, b fleet.Node) int { return strings.Compare(a.Name, b.Name) })
	got, err := s.AllNodes(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	// testOrdinals checks ordinals.
	if diff := cmp.Diff(want, got, cmpopts.IgnoreFields(fleet.Node{}, "Ordinal")); diff != "" {
		t.Errorf("AllNodes (-want +got):\n%s", diff)
	}
}

func testFleetRefusesBadChange(t *testing.T, s engine.Store) {
	a := site("a", "hall-1")
	n1 := node("a-0001", "a", "H100-SXM", "hall-1")
	apply(t, s, engine.FleetChange{At: at(0), Sites: []fleet.Site{a}, Add: []fleet.Node{n1}})
	for _, tc := range []struct {
		name string
		c    engine.FleetChange
		want error
	}{
		{"add a node in service", engine.FleetChange{At: at(1), Sites: []fleet.Site{a}, Add: []fleet.Node{n1}}, tenant.ErrExists},
		{"update an unknown node", engine.FleetChange{At: at(1), Sites: []fleet.Site{a}, Update: []fleet.Node{node("a-0404", "a", "H100-SXM", "hall-1")}}, engine.ErrNotFound},
	} {
		err := s.Update(t.Context(), func(tx engine.Tx) error { return tx.ApplyFleet(t.Context(), tc.c) })
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: err = %v, want %v", tc.name, err, tc.want)
		}
	}
	wantNodes(t, s, n1)
	// A node in a power domain the site does not have breaks a foreign key.
	bad := node("a-0002", "a", "H100-SXM", "hall-404")
	err := s.Update(t.Context(), func(tx engine.Tx) error {
		return tx.ApplyFleet(t.Context(), engine.FleetChange{At: at(1), Sites: []fleet.Site{a}, Add: []fleet.Node{bad}})
	})
	if err == nil {
		t.Errorf("adding a node in an unknown power domain: err = nil, want an error")
	}
	wantNodes(t, s, n1)
}

func testRetireSite(t *testing.T, s engine.Store) {
	ctx := t.Context()
	a, b := site("a", "hall-1"), site("b", "hall-1")
	na := node("a-0001", "a", "H100-SXM", "hall-1")
	nb1, nb2 := node("b-0001", "b", "H200-SXM", "hall-1"), node("b-0002", "b", "H200-SXM", "hall-1")
	apply(t, s, engine.FleetChange{At: at(0), Sites: []fleet.Site{a, b}, Add: []fleet.Node{na, nb1, nb2}})

	apply(t, s, engine.FleetChange{At: at(time.Hour), Sites: []fleet.Site{a}, RetireSites: []string{"b"}})
	sites, err := s.Sites(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]fleet.Site{a}, sites); diff != "" {
		t.Errorf("Sites after retiring b (-want +got):\n%s", diff)
	}
	wantNodes(t, s, na)
	pools, err := s.Pools(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(pools) != 1 || pools[0].ID != "a/H100-SXM" {
		t.Errorf("Pools after retiring b = %+v, want only a/H100-SXM", pools)
	}

	// Listing b again brings the site back, not its nodes; re-adding them
	// does.
	b.FacilityPower = 40 * unit.Megawatt
	apply(t, s, engine.FleetChange{At: at(2 * time.Hour), Sites: []fleet.Site{a, b}})
	sites, err = s.Sites(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]fleet.Site{a, b}, sites); diff != "" {
		t.Errorf("Sites after listing b again (-want +got):\n%s", diff)
	}
	wantNodes(t, s, na)
	apply(t, s, engine.FleetChange{At: at(3 * time.Hour), Sites: []fleet.Site{a, b}, Add: []fleet.Node{nb1}})
	wantNodes(t, s, na, nb1)
}

func testPowerDomains(t *testing.T, s engine.Store) {
	ctx := t.Context()
	a := site("a", "hall-1", "hall-2", "hall-3", "hall-5")
	n1 := node("a-0001", "a", "H100-SXM", "hall-2")
	n2 := node("a-0002", "a", "H100-SXM", "hall-3")
	apply(t, s, engine.FleetChange{At: at(0), Sites: []fleet.Site{a}, Add: []fleet.Node{n1, n2}})

	// The new spec drops hall-1 (unused), hall-2 (its node moves to the new
	// hall-4) and hall-3 (its node is retired, and still names it), and
	// changes hall-5's budget in place.
	a2 := site("a", "hall-4", "hall-5")
	a2.PowerDomains[1].Budget = 5 * unit.Megawatt
	n1.PowerDomain = "hall-4"
	apply(t, s, engine.FleetChange{At: at(time.Hour), Sites: []fleet.Site{a2}, Update: []fleet.Node{n1}, Retire: []string{n2.Name}})
	sites, err := s.Sites(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]fleet.Site{a2}, sites); diff != "" {
		t.Errorf("Sites after replacing power domains (-want +got):\n%s", diff)
	}
	wantNodes(t, s, n1)

	// hall-3 comes back, with a new budget, and so does the node that
	// names it.
	a3 := site("a", "hall-3", "hall-4", "hall-5")
	a3.PowerDomains[0].Budget = 7 * unit.Megawatt
	a3.PowerDomains[2].Budget = 5 * unit.Megawatt
	apply(t, s, engine.FleetChange{At: at(2 * time.Hour), Sites: []fleet.Site{a3}, Add: []fleet.Node{n2}})
	sites, err = s.Sites(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]fleet.Site{a3}, sites); diff != "" {
		t.Errorf("Sites after listing hall-3 again (-want +got):\n%s", diff)
	}
	wantNodes(t, s, n1, n2)
}

func testRevisions(t *testing.T, s engine.Store) {
	ctx := t.Context()
	var last int64
	for i := range 3 {
		rev := engine.FleetRevision{At: at(time.Duration(i)*time.Minute + 123*time.Microsecond), By: "key_op",
			SHA256: fmt.Sprintf("%064d", i), Spec: []byte(fmt.Sprintf(`{"sites":[],"v":%d}`, i)), NodeCount: int64(i), GPUCount: int64(8 * i)}
		apply(t, s, engine.FleetChange{At: at(time.Duration(i) * time.Minute), Revision: rev})
		got, err := s.LatestFleetRevision(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if got.Seq <= last {
			t.Errorf("revision %d: Seq = %d, want > %d", i, got.Seq, last)
		}
		last = got.Seq
		rev.Seq = got.Seq
		if diff := cmp.Diff(rev, got); diff != "" {
			t.Errorf("revision %d (-want +got):\n%s", i, diff)
		}
	}
}

func testPools(t *testing.T, s engine.Store) {
	ctx := t.Context()
	a := site("a", "hall-1")
	b := site("b", "hall-1")
	b.PUEMilli = 1101
	nodes := []fleet.Node{
		node("a-h100-1", "a", "H100-SXM", "hall-1"),
		node("a-h100-2", "a", "H100-SXM", "hall-1"),
		withState(node("a-h100-3", "a", "H100-SXM", "hall-1"), fleet.Failed),
		node("a-gb200-1", "a", "GB200", "hall-1"),
		withState(node("a-gb200-2", "a", "GB200", "hall-1"), fleet.Allocated),
		node("a-gb200-3", "a", "GB200", "hall-1"), // retired below
		node("b-h100-1", "b", "H100-SXM", "hall-1"),
	}
	apply(t, s, engine.FleetChange{At: at(0), Sites: []fleet.Site{a, b}, Add: nodes})
	apply(t, s, engine.FleetChange{At: at(time.Hour), Sites: []fleet.Site{a, b}, Retire: []string{"a-gb200-3"}})

	// 2 x 7,333 W x 1.25 = 18,332.5 W, rounded half away from zero;
	// 10,200 W x 1.101 = 11,230.2 W.
	aGB := fleet.Pool{ID: "a/GB200", Site: "a", Model: "GB200", Nodes: 2, GPUs: 8, ITPower: 14_666, FacilityPower: 18_333,
		ByState: map[fleet.State]int64{fleet.Available: 1, fleet.Allocated: 1}}
	aH := fleet.Pool{ID: "a/H100-SXM", Site: "a", Model: "H100-SXM", Nodes: 3, GPUs: 24, ITPower: 30_600, FacilityPower: 38_250,
		ByState: map[fleet.State]int64{fleet.Available: 2, fleet.Failed: 1}}
	bH := fleet.Pool{ID: "b/H100-SXM", Site: "b", Model: "H100-SXM", Nodes: 1, GPUs: 8, ITPower: 10_200, FacilityPower: 11_230,
		ByState: map[fleet.State]int64{fleet.Available: 1}}
	for _, tc := range []struct {
		site string
		want []fleet.Pool
	}{
		{"", []fleet.Pool{aGB, aH, bH}},
		{"a", []fleet.Pool{aGB, aH}},
		{"b", []fleet.Pool{bH}},
		{"nowhere", []fleet.Pool{}},
	} {
		got, err := s.Pools(ctx, tc.site)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("Pools(%q) (-want +got):\n%s", tc.site, diff)
		}
	}
}

func testNodes(t *testing.T, s engine.Store) {
	ctx := t.Context()
	sites := []fleet.Site{site("a", "hall-1"), site("a-b", "hall-1"), site("b", "hall-1")}
	var add []fleet.Node
	models := []string{"H100-SXM", "H200-SXM", "GB200"}
	for i := range 60 {
		st := sites[i%3].Name
		n := node(fmt.Sprintf("%s-n%03d", st, i), st, models[i%5%3], "hall-1")
		n.State = fleet.States[i%4]
		add = append(add, n)
	}
	apply(t, s, engine.FleetChange{At: at(0), Sites: sites, Add: add})
	apply(t, s, engine.FleetChange{At: at(1), Sites: sites, Retire: []string{add[7].Name, add[8].Name}})
	all, err := s.AllNodes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 58 || !slices.IsSortedFunc(all, func(a, b fleet.Node) int { return strings.Compare(a.Name, b.Name) }) {
		t.Fatalf("AllNodes = %d nodes (sorted: %t), want 58 sorted by name", len(all), slices.IsSorted(names(all)))
	}

	for _, f := range []engine.NodeFilter{
		{},
		{Site: "a"},
		{Site: "a-b"},
		{Pool: "a/GB200"},
		{Pool: "a-b/H200-SXM"},
		{State: fleet.Failed},
		{Site: "b", State: fleet.Available},
		{Site: "b", Pool: "a/GB200"},
		{Pool: "a"},
		{Pool: "a/"},
		{Site: "nowhere"},
	} {
		want := []fleet.Node{}
		for _, n := range all {
			site, model, ok := strings.Cut(f.Pool, "/")
			if (f.Site == "" || n.Site == f.Site) && (f.Pool == "" || ok && n.Site == site && n.Model == model) &&
				(f.State == "" || n.State == f.State) {
				want = append(want, n)
			}
		}
		got, err := s.Nodes(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("Nodes(%+v) (-want +got):\n%s", f, diff)
		}
		// Paging through with a cursor yields the same nodes.
		for _, limit := range []int{1, 7, 100} {
			paged := []fleet.Node{}
			page := f
			page.Limit = limit
			for {
				got, err := s.Nodes(ctx, page)
				if err != nil {
					t.Fatal(err)
				}
				if len(got) > limit {
					t.Fatalf("Nodes(%+v) = %d nodes, more than the limit", page, len(got))
				}
				paged = append(paged, got...)
				if len(got) < limit {
					break
				}
				page.After = got[len(got)-1].Name
			}
			if diff := cmp.Diff(names(want), names(paged)); diff != "" {
				t.Errorf("Nodes(%+v) paged by %d (-want +got):\n%s", f, limit, diff)
			}
		}
	}
}

func names(nodes []fleet.Node) []string {
	out := make([]string, len(nodes))
	for i, n := range nodes {
		out[i] = n.Name
	}
	return out
}

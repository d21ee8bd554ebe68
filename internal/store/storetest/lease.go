package storetest

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/neocloud/neocloud/internal/engine"
	"github.com/neocloud/neocloud/internal/fleet"
	"github.com/neocloud/neocloud/internal/lease"
	"github.com/neocloud/neocloud/internal/tenant"
	"github.com/neocloud/neocloud/internal/unit"
)

// testLease returns a scheduled reservation of tenantID in pool over
// [T0+start, T0+start+8h) with a two-step ramp.
func testLease(id, tenantID, pool string, start time.Duration) lease.Lease {
	return lease.Lease{
		ID: id, TenantID: tenantID, Kind: lease.Reservation, Pool: pool,
		Start: at(start), End: at(start + 8*time.Hour),
		Schedule: []lease.Step{
			{From: at(start), GPUs: 64},
			{From: at(start + 2*time.Hour + 7*time.Microsecond), GPUs: 128, Power: 90 * unit.Kilowatt},
		},
		Packing: lease.PackLeaf, Isolation: lease.DedicatedLeaf, State: lease.Scheduled,
		Reason: "admitted", Created: at(-time.Hour + 3*time.Microsecond),
	}
}

func testLeases(t *testing.T, s engine.Store) {
	ctx := t.Context()
	l1 := testLease("ls-1", "acme", "dfw/H100-SXM", 0)
	l2 := testLease("ls-2", "bravo", "dfw/H100-SXM", time.Hour)
	l2.Kind, l2.Packing, l2.Isolation = lease.Spot, lease.PackAny, lease.SharedLeaf
	l3 := testLease("ls-3", "acme", "dfw/GB200", 2*time.Hour)
	l3.Schedule = l3.Schedule[:1]
	update(t, s, func(tx engine.Tx) error { return tx.InsertLease(ctx, l2) })
	update(t, s, func(tx engine.Tx) error {
		if err := tx.InsertLeases(ctx, []lease.Lease{l3, l1}); err != nil {
			return err
		}
		// Refusals leave the transaction usable and store nothing.
		dup := testLease("ls-1", "rival", "x/y", 0)
		if err := tx.InsertLease(ctx, dup); !errors.Is(err, tenant.ErrExists) {
			t.Errorf("InsertLease(taken ID): err = %v, want ErrExists", err)
		}
		if err := tx.InsertLeases(ctx, []lease.Lease{testLease("ls-8", "acme", "p", 0), dup}); !errors.Is(err, tenant.ErrExists) {
			t.Errorf("InsertLeases(new, taken ID): err = %v, want ErrExists", err)
		}
		twice := testLease("ls-9", "acme", "p", 0)
		if err := tx.InsertLeases(ctx, []lease.Lease{twice, twice}); !errors.Is(err, tenant.ErrExists) {
			t.Errorf("InsertLeases(an ID twice): err = %v, want ErrExists", err)
		}
		// More leases than one statement takes, the taken ID late.
		var big []lease.Lease
		for i := range 600 {
			big = append(big, testLease(fmt.Sprintf("big-%03d", i), "big", "p", 0))
		}
		big[550] = dup
		if err := tx.InsertLeases(ctx, big); !errors.Is(err, tenant.ErrExists) || !strings.Contains(err.Error(), "ls-1") {
			t.Errorf("InsertLeases(600, a taken ID late): err = %v, want ErrExists naming ls-1", err)
		}
		if got, err := tx.Leases(ctx, engine.LeaseFilter{TenantID: "big"}); err != nil || len(got) != 0 {
			t.Errorf("Leases of the refused batch of 600 in its transaction = %d leases, %v; want none", len(got), err)
		}
		bad := testLease("ls-bad", "acme", "p", 0)
		bad.Kind = "lottery"
		empty := testLease("ls-empty", "acme", "p", 0)
		empty.End = empty.Start
		for _, l := range []lease.Lease{bad, empty} {
			if err := tx.InsertLease(ctx, l); !checkErr(err, errOther) {
				t.Errorf("InsertLease(%s): err = %v, want an error", l.ID, err)
			}
		}
		return nil
	})
	for _, want := range []lease.Lease{l1, l2, l3} {
		got, err := s.Lease(ctx, want.ID)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("Lease(%s) (-want +got):\n%s", want.ID, diff)
		}
	}
	if _, err := s.Lease(ctx, "ls-8"); !errors.Is(err, engine.ErrNotFound) {
		t.Errorf("Lease of a refused batch: err = %v, want ErrNotFound", err)
	}

	for _, tc := range []struct {
		f    engine.LeaseFilter
		want []lease.Lease
	}{
		{engine.LeaseFilter{}, []lease.Lease{l1, l2, l3}},
		{engine.LeaseFilter{TenantID: "acme"}, []lease.Lease{l1, l3}},
		{engine.LeaseFilter{Pool: "dfw/H100-SXM"}, []lease.Lease{l1, l2}},
		{engine.LeaseFilter{TenantID: "acme", Pool: "dfw/H100-SXM"}, []lease.Lease{l1}},
		{engine.LeaseFilter{TenantID: "nobody"}, []lease.Lease{}},
		{engine.LeaseFilter{After: "ls-1"}, []lease.Lease{l2, l3}},
		{engine.LeaseFilter{After: "ls-1", Limit: 1}, []lease.Lease{l2}},
		{engine.LeaseFilter{TenantID: "acme", After: "ls-1", Limit: 5}, []lease.Lease{l3}},
		{engine.LeaseFilter{After: "ls-3"}, []lease.Lease{}},
	} {
		got, err := s.Leases(ctx, tc.f)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("Leases(%+v) (-want +got):\n%s", tc.f, diff)
		}
	}

	// UpdateLease writes state, reason, end and cancellation, nothing else.
	u := l1
	u.State, u.Reason, u.End, u.Cancelled = lease.Cancelled, "cancelled by key_x", at(3*time.Hour), at(90*time.Minute)
	moved := u
	moved.Pool, moved.Kind, moved.Schedule = "elsewhere", lease.Spot, nil
	update(t, s, func(tx engine.Tx) error {
		if err := tx.UpdateLease(ctx, lease.Lease{ID: "ls-404", State: lease.Cancelled, End: at(time.Hour)}); !errors.Is(err, engine.ErrNotFound) {
			t.Errorf("UpdateLease(unknown): err = %v, want ErrNotFound", err)
		}
		early := u
		early.End = l1.Start
		if err := tx.UpdateLease(ctx, early); !checkErr(err, errOther) {
			t.Errorf("UpdateLease(end at the start): err = %v, want an error", err)
		}
		return tx.UpdateLease(ctx, moved)
	})
	got, err := s.Lease(ctx, "ls-1")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(u, got); diff != "" {
		t.Errorf("Lease after UpdateLease (-want +got):\n%s", diff)
	}
}

func testHoldback(t *testing.T, s engine.Store) {
	ctx := t.Context()
	a := []engine.HoldbackStep{{From: at(0), GPUs: 64}, {From: at(time.Hour + time.Microsecond), GPUs: 0}, {From: at(5 * time.Hour), GPUs: 8}}
	b := []engine.HoldbackStep{{From: at(-time.Hour), GPUs: 16}}
	update(t, s, func(tx engine.Tx) error {
		if err := tx.SetHoldback(ctx, "dfw/H100-SXM", a); err != nil {
			return err
		}
		return tx.SetHoldback(ctx, "dfw/GB200", b)
	})
	check := func(want map[string][]engine.HoldbackStep) {
		t.Helper()
		got, err := s.Holdback(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("Holdback (-want +got):\n%s", diff)
		}
	}
	check(map[string][]engine.HoldbackStep{"dfw/H100-SXM": a, "dfw/GB200": b})

	// Replacing; refusals change nothing and leave the transaction usable.
	a2 := []engine.HoldbackStep{{From: at(2 * time.Hour), GPUs: 32}}
	update(t, s, func(tx engine.Tx) error {
		for name, bad := range map[string][]engine.HoldbackStep{
			"unordered": {{From: at(time.Hour), GPUs: 1}, {From: at(0), GPUs: 2}},
			"same From": {{From: at(0), GPUs: 1}, {From: at(0), GPUs: 2}},
			"negative":  {{From: at(0), GPUs: -1}},
		} {
			if err := tx.SetHoldback(ctx, "dfw/GB200", bad); !checkErr(err, errOther) {
				t.Errorf("SetHoldback(%s): err = %v, want an error", name, err)
			}
		}
		return tx.SetHoldback(ctx, "dfw/H100-SXM", a2)
	})
	check(map[string][]engine.HoldbackStep{"dfw/H100-SXM": a2, "dfw/GB200": b})

	// No steps removes the schedule.
	update(t, s, func(tx engine.Tx) error {
		if err := tx.SetHoldback(ctx, "dfw/H100-SXM", nil); err != nil {
			return err
		}
		return tx.SetHoldback(ctx, "dfw/GB200", []engine.HoldbackStep{})
	})
	check(map[string][]engine.HoldbackStep{})
}

func testShortfalls(t *testing.T, s engine.Store) {
	ctx := t.Context()
	sf := func(id, leaseID string, from, to time.Duration) lease.Shortfall {
		return lease.Shortfall{ID: id, LeaseID: leaseID, TenantID: "acme", Node: "n-" + id, GPUs: 8, From: at(from), To: at(to)}
	}
	s1 := sf("sf-1", "ls-1", time.Hour, 2*time.Hour)
	s2 := sf("sf-2", "ls-2", 0, time.Hour+time.Microsecond)
	s3 := sf("sf-3", "ls-1", 0, time.Hour)
	s4 := sf("sf-0", "ls-2", time.Hour, 3*time.Hour)
	update(t, s, func(tx engine.Tx) error {
		for _, x := range []lease.Shortfall{s1, s2, s3, s4} {
			if err := tx.InsertShortfall(ctx, x); err != nil {
				return err
			}
		}
		if err := tx.InsertShortfall(ctx, sf("sf-1", "ls-9", 0, time.Hour)); !errors.Is(err, tenant.ErrExists) {
			t.Errorf("InsertShortfall(taken ID): err = %v, want ErrExists", err)
		}
		if err := tx.InsertShortfall(ctx, sf("sf-9", "ls-9", time.Hour, time.Hour)); !checkErr(err, errOther) {
			t.Errorf("InsertShortfall(empty interval): err = %v, want an error", err)
		}
		return nil
	})
	for _, tc := range []struct {
		leaseID string
		want    []lease.Shortfall
	}{
		{"", []lease.Shortfall{s2, s3, s4, s1}},
		{"ls-1", []lease.Shortfall{s3, s1}},
		{"ls-2", []lease.Shortfall{s2, s4}},
		{"ls-404", []lease.Shortfall{}},
	} {
		got, err := s.Shortfalls(ctx, tc.leaseID)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("Shortfalls(%q) (-want +got):\n%s", tc.leaseID, diff)
		}
	}
	for _, tc := range []struct {
		ids  []string
		want map[string]int
	}{
		{nil, map[string]int{}},
		{[]string{"ls-1"}, map[string]int{"ls-1": 2}},
		{[]string{"ls-1", "ls-2", "ls-404"}, map[string]int{"ls-1": 2, "ls-2": 2}},
	} {
		got, err := s.ShortfallCounts(ctx, tc.ids)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("ShortfallCounts(%q) (-want +got):\n%s", tc.ids, diff)
		}
	}
}

func testSetNodeState(t *testing.T, s engine.Store) {
	ctx := t.Context()
	addNodes(t, s, "st-1", "st-2", "st-3")
	apply(t, s, engine.FleetChange{At: T0, Sites: []fleet.Site{site("s", "hall-1")}, Retire: []string{"st-3"}})
	update(t, s, func(tx engine.Tx) error {
		for name, err := range map[string]error{
			"st-3":   tx.SetNodeState(ctx, "st-3", fleet.Failed), // retired
			"st-404": tx.SetNodeState(ctx, "st-404", fleet.Failed),
		} {
			if !errors.Is(err, engine.ErrNotFound) {
				t.Errorf("SetNodeState(%s): err = %v, want ErrNotFound", name, err)
			}
		}
		if err := tx.SetNodeState(ctx, "st-2", "exploded"); !checkErr(err, errOther) {
			t.Errorf("SetNodeState(unknown state): err = %v, want an error", err)
		}
		return tx.SetNodeState(ctx, "st-1", fleet.Draining)
	})
	nodes, err := s.AllNodes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]fleet.State{}
	for _, n := range nodes {
		got[n.Name] = n.State
	}
	if diff := cmp.Diff(map[string]fleet.State{"st-1": fleet.Draining, "st-2": fleet.Available}, got); diff != "" {
		t.Errorf("node states (-want +got):\n%s", diff)
	}
}

// testOrdinals checks that ordinals are given in c.Add order from 1, kept
// across updates and retire/re-add, never reused, and returned by every
// read of nodes.
func testOrdinals(t *testing.T, s engine.Store) {
	ctx := t.Context()
	sites := []fleet.Site{site("s", "hall-1")}
	n := func(name string) fleet.Node {
		nd := node(name, "s", "H100-SXM", "hall-1")
		nd.Ordinal = 999 // ignored
		return nd
	}
	check := func(step string, want map[string]int64) {
		t.Helper()
		all, err := s.AllNodes(ctx)
		if err != nil {
			t.Fatal(err)
		}
		page, err := s.Nodes(ctx, engine.NodeFilter{Pool: "s/H100-SXM"})
		if err != nil {
			t.Fatal(err)
		}
		for what, nodes := range map[string][]fleet.Node{"AllNodes": all, "Nodes": page} {
			got := map[string]int64{}
			for _, nd := range nodes {
				got[nd.Name] = nd.Ordinal
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("%s: ordinals from %s (-want +got):\n%s", step, what, diff)
			}
		}
	}
	// Not in name order: in the order of Add.
	apply(t, s, engine.FleetChange{At: T0, Sites: sites, Add: []fleet.Node{n("c"), n("a"), n("b")}})
	check("first apply", map[string]int64{"c": 1, "a": 2, "b": 3})

	moved := n("a")
	moved.Position.Pod = "pod-9"
	apply(t, s, engine.FleetChange{At: T0, Sites: sites, Update: []fleet.Node{moved}, Retire: []string{"c"}})
	check("update and retire", map[string]int64{"a": 2, "b": 3})

	// c comes back with its ordinal; the new ones take the next, in Add
	// order, around it.
	apply(t, s, engine.FleetChange{At: T0, Sites: sites, Add: []fleet.Node{n("e"), n("c"), n("d")}})
	check("re-add and add", map[string]int64{"a": 2, "b": 3, "c": 1, "d": 5, "e": 4})

	// Retiring the last ordinal does not free it.
	apply(t, s, engine.FleetChange{At: T0, Sites: sites, Retire: []string{"d"}})
	apply(t, s, engine.FleetChange{At: T0, Sites: sites, Add: []fleet.Node{n("f")}})
	check("after retiring the last", map[string]int64{"a": 2, "b": 3, "c": 1, "e": 4, "f": 6})

	// A refused add gives no ordinal away.
	err := s.Update(ctx, func(tx engine.Tx) error {
		return tx.ApplyFleet(ctx, engine.FleetChange{At: T0, Sites: sites, Add: []fleet.Node{n("g"), n("a")}})
	})
	if !errors.Is(err, tenant.ErrExists) {
		t.Errorf("adding a node in service: err = %v, want ErrExists", err)
	}
	apply(t, s, engine.FleetChange{At: T0, Sites: sites, Add: []fleet.Node{n("g"), n("d")}})
	check("after a refused add", map[string]int64{"a": 2, "b": 3, "c": 1, "d": 5, "e": 4, "f": 6, "g": 7})

	// Many at once, across statements.
	var many []fleet.Node
	want := map[string]int64{"a": 2, "b": 3, "c": 1, "d": 5, "e": 4, "f": 6, "g": 7}
	for i := range 1500 {
		name := fmt.Sprintf("m-%04d", 1499-i)
		many = append(many, n(name))
		want[name] = int64(8 + i)
	}
	apply(t, s, engine.FleetChange{At: T0, Sites: sites, Add: many})
	check("many", want)
}

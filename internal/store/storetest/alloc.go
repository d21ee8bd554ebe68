package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"pgregory.net/rapid"

	"github.com/neocloud/neocloud/internal/engine"
	"github.com/neocloud/neocloud/internal/fleet"
	"github.com/neocloud/neocloud/internal/lease"
	"github.com/neocloud/neocloud/internal/tenant"
)

// addNodes puts a site "s" with one power domain and H100 nodes of the
// given names in service.
func addNodes(t tb, s engine.Store, names ...string) {
	t.Helper()
	var add []fleet.Node
	for _, n := range names {
		add = append(add, node(n, "s", "H100-SXM", "hall-1"))
	}
	apply(t, s, engine.FleetChange{At: T0, Sites: []fleet.Site{site("s", "hall-1")}, Add: add})
}

// alloc returns an allocation of node over [T0+from, T0+to).
func alloc(id, node string, from, to time.Duration) lease.Allocation {
	return lease.Allocation{ID: id, LeaseID: "lease-" + id, TenantID: "acme", Node: node, Start: at(from), End: at(to)}
}

// heldNodes calls Tx.HeldNodes in a transaction of its own.
func heldNodes(t testing.TB, s engine.Store, nodes []string, when time.Time) []string {
	t.Helper()
	var held []string
	update(t, s, func(tx engine.Tx) error {
		var err error
		held, err = tx.HeldNodes(context.Background(), nodes, when)
		return err
	})
	return held
}

func testHeldNodes(t *testing.T, s engine.Store) {
	addNodes(t, s, "h1", "h2", "h3", "h4", "h5")
	update(t, s, func(tx engine.Tx) error {
		for _, a := range []lease.Allocation{
			alloc("a1", "h1", 0, time.Hour),
			alloc("a2", "h2", time.Hour, 2*time.Hour),
			alloc("a3", "h3", 0, time.Hour),
			alloc("a4", "h3", 5*time.Hour, 6*time.Hour),
			alloc("a5", "h5", 0, 30*time.Minute),
		} {
			if err := tx.InsertAllocation(t.Context(), a); err != nil {
				return err
			}
		}
		return nil
	})
	ask := []string{"h5", "h4", "h3", "h2", "h1", "h3", "unknown"}
	for _, tc := range []struct {
		at   time.Duration
		want []string
	}{
		{0, []string{"h1", "h2", "h3", "h5"}},
		{30 * time.Minute, []string{"h1", "h2", "h3"}},
		{time.Hour, []string{"h2", "h3"}}, // h1's allocation ends at the instant: not held
		{2 * time.Hour, []string{"h3"}},
		{6 * time.Hour, []string{}},
	} {
		got := heldNodes(t, s, ask, at(tc.at))
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("HeldNodes at T0+%v (-want +got):\n%s", tc.at, diff)
		}
	}
	// More names than one statement takes.
	many := make([]string, 0, 40_001)
	for i := range 40_000 {
		many = append(many, fmt.Sprintf("zz-%05d", i))
	}
	many = append(many, "h2")
	if diff := cmp.Diff([]string{"h2"}, heldNodes(t, s, many, at(time.Hour))); diff != "" {
		t.Errorf("HeldNodes of 40,001 names (-want +got):\n%s", diff)
	}
}

func testAllocationOverlap(t *testing.T, s engine.Store) {
	addNodes(t, s, "o1", "o2")
	insert := func(a lease.Allocation) error {
		return s.Update(t.Context(), func(tx engine.Tx) error { return tx.InsertAllocation(t.Context(), a) })
	}
	if err := insert(alloc("base", "o1", time.Hour, 3*time.Hour)); err != nil {
		t.Fatal(err)
	}
	errOther := errors.New("an error that is neither ErrConflict nor ErrExists")
	for _, tc := range []struct {
		name string
		a    lease.Allocation
		want error // nil, engine.ErrConflict, tenant.ErrExists or errOther
	}{
		{"adjacent before", alloc("before", "o1", 0, time.Hour), nil},
		{"adjacent after", alloc("after", "o1", 3*time.Hour, 4*time.Hour), nil},
		{"same interval", alloc("same", "o1", time.Hour, 3*time.Hour), engine.ErrConflict},
		{"overlaps the end", alloc("end", "o1", 2*time.Hour, 5*time.Hour), engine.ErrConflict},
		{"overlaps the start", alloc("start", "o1", 30*time.Minute, 90*time.Minute), engine.ErrConflict},
		{"inside", alloc("inside", "o1", 90*time.Minute, 2*time.Hour), engine.ErrConflict},
		{"around", alloc("around", "o1", -time.Hour, 10*time.Hour), engine.ErrConflict},
		{"one microsecond", alloc("micro", "o1", 3*time.Hour-time.Microsecond, 3*time.Hour+time.Microsecond), engine.ErrConflict},
		{"another node", alloc("other", "o2", time.Hour, 3*time.Hour), nil},
		{"taken ID", alloc("base", "o2", 10*time.Hour, 11*time.Hour), tenant.ErrExists},
		{"empty interval", alloc("empty", "o2", 20*time.Hour, 20*time.Hour), errOther},
		{"reversed interval", alloc("reversed", "o2", 21*time.Hour, 20*time.Hour), errOther},
		{"unknown node", alloc("ghost", "ghost", 0, time.Hour), errOther},
	} {
		err := insert(tc.a)
		switch {
		case tc.want == errOther:
			if err == nil || errors.Is(err, engine.ErrConflict) || errors.Is(err, tenant.ErrExists) {
				t.Errorf("%s: err = %v, want another error", tc.name, err)
			}
		case !errors.Is(err, tc.want) || (tc.want == nil && err != nil):
			t.Errorf("%s: err = %v, want %v", tc.name, err, tc.want)
		}
	}
	checkAllocations(t, s, []lease.Allocation{
		alloc("base", "o1", time.Hour, 3*time.Hour),
		alloc("before", "o1", 0, time.Hour),
		alloc("after", "o1", 3*time.Hour, 4*time.Hour),
		alloc("other", "o2", time.Hour, 3*time.Hour),
	}, nil)
}

// testAllocationSameTx checks that a refused allocation leaves its
// transaction usable, in every database.
func testAllocationSameTx(t *testing.T, s engine.Store) {
	addNodes(t, s, "x1")
	update(t, s, func(tx engine.Tx) error {
		ctx := t.Context()
		if err := tx.InsertAllocation(ctx, alloc("x", "x1", 0, 2*time.Hour)); err != nil {
			return err
		}
		if err := tx.InsertAllocation(ctx, alloc("y", "x1", time.Hour, 3*time.Hour)); !errors.Is(err, engine.ErrConflict) {
			t.Errorf("overlapping allocation in the same transaction: err = %v, want ErrConflict", err)
		}
		if err := tx.InsertAllocation(ctx, alloc("x", "x1", 10*time.Hour, 11*time.Hour)); !errors.Is(err, tenant.ErrExists) {
			t.Errorf("taken allocation ID in the same transaction: err = %v, want ErrExists", err)
		}
		return tx.InsertAllocation(ctx, alloc("z", "x1", 2*time.Hour, 4*time.Hour))
	})
	checkAllocations(t, s, []lease.Allocation{alloc("x", "x1", 0, 2*time.Hour), alloc("z", "x1", 2*time.Hour, 4*time.Hour)}, nil)
}

// checkAllocations checks, through DBer, that the store holds exactly want
// (of nodes, unless nodes is nil), and that no two of them overlap.
// Without DBer it checks what HeldNodes can tell.
func checkAllocations(t tb, s engine.Store, want []lease.Allocation, nodes []string) {
	t.Helper()
	ctx := context.Background()
	d, ok := s.(DBer)
	if !ok {
		var wantHeld []string
		for _, a := range want {
			wantHeld = append(wantHeld, a.Node)
		}
		slices.Sort(wantHeld)
		wantHeld = slices.Compact(wantHeld)
		var held []string
		update(t, s, func(tx engine.Tx) error {
			var err error
			held, err = tx.HeldNodes(ctx, append(nodes, wantHeld...), time.Time{})
			return err
		})
		if !slices.Equal(wantHeld, held) && !(len(wantHeld) == 0 && len(held) == 0) {
			t.Fatalf("HeldNodes = %v, want %v", held, wantHeld)
		}
		return
	}
	rows, err := d.DB().QueryContext(ctx, `SELECT id, lease_id, tenant_id, node, start_us, end_us FROM allocations`)
	if err != nil {
		t.Fatalf("list allocations: %v", err)
	}
	defer rows.Close()
	var got []lease.Allocation
	for rows.Next() {
		var a lease.Allocation
		var start, end int64
		if err := rows.Scan(&a.ID, &a.LeaseID, &a.TenantID, &a.Node, &start, &end); err != nil {
			t.Fatalf("list allocations: %v", err)
		}
		a.Start, a.End = time.UnixMicro(start).UTC(), time.UnixMicro(end).UTC()
		if nodes == nil || slices.Contains(nodes, a.Node) {
			got = append(got, a)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("list allocations: %v", err)
	}
	byID := func(a, b lease.Allocation) int {
		if a.ID < b.ID {
			return -1
		}
		if a.ID > b.ID {
			return 1
		}
		return 0
	}
	want = slices.Clone(want)
	slices.SortFunc(want, byID)
	slices.SortFunc(got, byID)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("stored allocations (-want +got):\n%s", diff)
	}
	for i, a := range got {
		for _, b := range got[i+1:] {
			if a.Overlaps(b) {
				t.Fatalf("stored allocations %s and %s overlap: %+v, %+v", a.ID, b.ID, a, b)
			}
		}
	}
}

// testAllocationProperty inserts random allocations in random transactions
// (some rolled back) and compares every answer with a brute-force model:
// an allocation is refused exactly when it overlaps one the model holds,
// and the store ends up holding exactly the model's allocations.
func testAllocationProperty(t *testing.T, s engine.Store) {
	type op struct {
		node     int
		from, to int // hours after T0
	}
	type group struct {
		ops      []op
		rollback bool
	}
	opGen := rapid.Custom(func(t *rapid.T) op {
		from := rapid.IntRange(0, 23).Draw(t, "from")
		return op{node: rapid.IntRange(0, 2).Draw(t, "node"), from: from, to: from + rapid.IntRange(1, 6).Draw(t, "hours")}
	})
	groupGen := rapid.Custom(func(t *rapid.T) group {
		return group{ops: rapid.SliceOfN(opGen, 1, 8).Draw(t, "ops"), rollback: rapid.IntRange(0, 4).Draw(t, "rollback") == 0}
	})
	errRollback := errors.New("roll back")
	round := 0
	rapid.Check(t, func(rt *rapid.T) {
		round++
		nodes := []string{fmt.Sprintf("r%04d-a", round), fmt.Sprintf("r%04d-b", round), fmt.Sprintf("r%04d-c", round)}
		addNodes(rt, s, nodes...)
		var model []lease.Allocation
		for gi, g := range rapid.SliceOfN(groupGen, 1, 4).Draw(rt, "groups") {
			var pending []lease.Allocation
			err := s.Update(context.Background(), func(tx engine.Tx) error {
				for oi, o := range g.ops {
					a := alloc(fmt.Sprintf("r%04d-%d-%d", round, gi, oi), nodes[o.node], time.Duration(o.from)*time.Hour, time.Duration(o.to)*time.Hour)
					wantConflict := slices.ContainsFunc(append(slices.Clone(model), pending...), a.Overlaps)
					err := tx.InsertAllocation(context.Background(), a)
					switch {
					case wantConflict && !errors.Is(err, engine.ErrConflict):
						rt.Fatalf("insert %+v: err = %v, want ErrConflict", a, err)
					case !wantConflict && err != nil:
						rt.Fatalf("insert %+v: err = %v, want nil", a, err)
					case err == nil:
						pending = append(pending, a)
					}
				}
				if g.rollback {
					return errRollback
				}
				return nil
			})
			if g.rollback && !errors.Is(err, errRollback) || !g.rollback && err != nil {
				rt.Fatalf("update: err = %v", err)
			}
			if !g.rollback {
				model = append(model, pending...)
			}
		}
		checkAllocations(rt, s, model, nodes)
	})
}

// testRace makes writers on a and b (which may be one store) insert
// overlapping allocations of one node at once: exactly one must win.
func testRace(t *testing.T, a, b engine.Store) {
	const writers = 8
	var nodes []string
	for r := range 5 {
		nodes = append(nodes, fmt.Sprintf("race-%d", r))
	}
	addNodes(t, a, nodes...)
	for _, n := range nodes {
		start := make(chan struct{})
		errs := make([]error, writers)
		var wg sync.WaitGroup
		for i := range writers {
			s := a
			if i%2 == 1 {
				s = b
			}
			wg.Go(func() {
				<-start
				errs[i] = s.Update(context.Background(), func(tx engine.Tx) error {
					return tx.InsertAllocation(context.Background(),
						alloc(fmt.Sprintf("%s-w%d", n, i), n, time.Duration(i)*time.Minute, 3*time.Hour))
				})
			})
		}
		close(start)
		wg.Wait()
		wins := 0
		for i, err := range errs {
			switch {
			case err == nil:
				wins++
			case !errors.Is(err, engine.ErrConflict):
				t.Errorf("node %s, writer %d: err = %v, want nil or ErrConflict", n, i, err)
			}
		}
		if wins != 1 {
			t.Errorf("node %s: %d writers won, want exactly 1 (errors: %v)", n, wins, errs)
		}
	}
	for _, s := range []engine.Store{a, b} {
		if d, ok := s.(DBer); ok {
			var count int64
			if err := d.DB().QueryRowContext(context.Background(), `SELECT COUNT(*) FROM allocations`).Scan(&count); err != nil {
				t.Fatal(err)
			}
			if count != int64(len(nodes)) {
				t.Errorf("%d allocations stored, want %d", count, len(nodes))
			}
		}
	}
	sort.Strings(nodes)
	if diff := cmp.Diff(nodes, heldNodes(t, b, nodes, T0)); diff != "" {
		t.Errorf("HeldNodes after the races (-want +got):\n%s", diff)
	}
}

// testAllocationRetiredNode: a retired node takes no allocation.
func testAllocationRetiredNode(t *testing.T, s engine.Store) {
	addNodes(t, s, "r1", "r2")
	apply(t, s, engine.FleetChange{At: T0, Sites: []fleet.Site{site("s", "hall-1")}, Retire: []string{"r2"}})
	err := s.Update(t.Context(), func(tx engine.Tx) error {
		return tx.InsertAllocation(t.Context(), alloc("on-retired", "r2", time.Hour, 2*time.Hour))
	})
	if !errors.Is(err, engine.ErrNotFound) {
		t.Errorf("allocation of a retired node: %v, want ErrNotFound", err)
	}
}

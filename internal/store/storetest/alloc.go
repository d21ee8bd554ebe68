package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
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
// given names in service, and returns their ordinals, in the order given.
func addNodes(t tb, s engine.Store, names ...string) []int64 {
	t.Helper()
	var add []fleet.Node
	for _, n := range names {
		add = append(add, node(n, "s", "H100-SXM", "hall-1"))
	}
	apply(t, s, engine.FleetChange{At: T0, Sites: []fleet.Site{site("s", "hall-1")}, Add: add})
	ords := ordinals(t, s)
	out := make([]int64, len(names))
	for i, n := range names {
		out[i] = ords[n]
	}
	return out
}

// ordinals returns the ordinal of every node in service, by name.
func ordinals(t tb, s engine.Reader) map[string]int64 {
	t.Helper()
	nodes, err := s.AllNodes(context.Background())
	if err != nil {
		t.Fatalf("all nodes: %v", err)
	}
	out := make(map[string]int64, len(nodes))
	for _, n := range nodes {
		out[n.Name] = n.Ordinal
	}
	return out
}

// alloc returns an allocation of the nodes of ordinals [from, to) over
// [T0+start, T0+end).
func alloc(id string, from, to int64, start, end time.Duration) lease.Allocation {
	return lease.Allocation{ID: id, LeaseID: "lease-" + id, TenantID: "acme", NodeFrom: from, NodeTo: to, Start: at(start), End: at(end)}
}

// insert stores as in one transaction of its own.
func insert(s engine.Store, as ...lease.Allocation) error {
	return s.Update(context.Background(), func(tx engine.Tx) error { return tx.InsertAllocations(context.Background(), as) })
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
	o := addNodes(t, s, "h1", "h2", "h3", "h4", "h5")
	update(t, s, func(tx engine.Tx) error {
		return tx.InsertAllocations(t.Context(), []lease.Allocation{
			alloc("a1", o[0], o[0]+1, 0, time.Hour),
			alloc("a2", o[1], o[1]+1, time.Hour, 2*time.Hour),
			alloc("a3", o[2], o[2]+1, 0, time.Hour),
			alloc("a4", o[2], o[2]+1, 5*time.Hour, 6*time.Hour),
			alloc("a5", o[4], o[4]+1, 0, 30*time.Minute),
			alloc("a6", o[3], o[4]+1, 2*time.Hour, 3*time.Hour), // h4 and h5
		})
	})
	ask := []string{"h5", "h4", "h3", "h2", "h1", "h3", "unknown"}
	for _, tc := range []struct {
		at   time.Duration
		want []string
	}{
		{0, []string{"h1", "h2", "h3", "h4", "h5"}},
		{30 * time.Minute, []string{"h1", "h2", "h3", "h4", "h5"}},
		{time.Hour, []string{"h2", "h3", "h4", "h5"}}, // h1's allocation ends at the instant: not held
		{2 * time.Hour, []string{"h3", "h4", "h5"}},
		{3*time.Hour - time.Microsecond, []string{"h3", "h4", "h5"}},
		{3 * time.Hour, []string{"h3"}},
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

// errOther stands for an error that is none of the store's sentinels.
var errOther = errors.New("an error that is neither ErrConflict, ErrExists nor ErrNotFound")

// checkErr reports whether err is what want names: nil, a sentinel, or
// errOther (any other error).
func checkErr(err, want error) bool {
	if want == errOther {
		return err != nil && !errors.Is(err, engine.ErrConflict) && !errors.Is(err, tenant.ErrExists) && !errors.Is(err, engine.ErrNotFound)
	}
	if want == nil {
		return err == nil
	}
	return errors.Is(err, want)
}

func testAllocationOverlap(t *testing.T, s engine.Store) {
	o := addNodes(t, s, "o1", "o2", "o3", "o4", "o5")
	o1, o2, o3, o4, o5 := o[0], o[1], o[2], o[3], o[4]
	if err := insert(s, alloc("base", o2, o4, time.Hour, 3*time.Hour)); err != nil { // o2, o3
		t.Fatal(err)
	}
	sec := func(h, s int) time.Duration { return time.Duration(h)*time.Hour + time.Duration(s)*time.Second }
	// Far from the epoch (in both directions), beyond 32-bit minutes.
	far := time.Date(9000, 1, 1, 0, 0, 0, 0, time.UTC)
	early := time.Date(-3000, 1, 1, 0, 0, 0, 0, time.UTC)
	farAlloc := func(id string, from, to int64, t0 time.Time, start, end time.Duration) lease.Allocation {
		a := alloc(id, from, to, 0, 0)
		a.Start, a.End = t0.Add(start), t0.Add(end)
		return a
	}
	want := []lease.Allocation{alloc("base", o2, o4, time.Hour, 3*time.Hour)}
	for _, tc := range []struct {
		name string
		a    lease.Allocation
		want error // nil, a sentinel or errOther
	}{
		{"adjacent before", alloc("before", o2, o4, 0, time.Hour), nil},
		{"adjacent after", alloc("after", o2, o4, 3*time.Hour, 4*time.Hour), nil},
		{"adjacent run below", alloc("below", o1, o2, time.Hour, 3*time.Hour), nil},
		{"adjacent run above", alloc("above", o4, o5+1, time.Hour, 3*time.Hour), nil},
		{"same run and interval", alloc("same", o2, o4, time.Hour, 3*time.Hour), engine.ErrConflict},
		{"first node of the run", alloc("first", o2, o2+1, 2*time.Hour, 5*time.Hour), engine.ErrConflict},
		{"last node of the run", alloc("last", o3, o3+1, 2*time.Hour, 5*time.Hour), engine.ErrConflict},
		{"around the run", alloc("around-run", o1, o5+1, 150*time.Minute, 151*time.Minute), engine.ErrConflict},
		{"overlaps the end", alloc("end", o2, o4, 2*time.Hour, 5*time.Hour), engine.ErrConflict},
		{"overlaps the start", alloc("start", o2, o4, 30*time.Minute, 90*time.Minute), engine.ErrConflict},
		{"inside", alloc("inside", o3, o4, 90*time.Minute, 2*time.Hour), engine.ErrConflict},
		{"around", alloc("around", o2, o4, -time.Hour, 10*time.Hour), engine.ErrConflict},
		{"one microsecond", alloc("micro", o2, o4, 3*time.Hour-time.Microsecond, 3*time.Hour+time.Microsecond), engine.ErrConflict},
		// Intervals within one minute, in one cell of any index: the check
		// must still be exact.
		{"seconds", alloc("sec-1", o5, o5+1, sec(10, 10), sec(10, 20)), nil},
		{"seconds adjacent", alloc("sec-2", o5, o5+1, sec(10, 20), sec(10, 30)), nil},
		{"seconds adjacent before", alloc("sec-0", o5, o5+1, sec(10, 0), sec(10, 10)), nil},
		{"seconds overlap", alloc("sec-x", o5, o5+1, sec(10, 15), sec(10, 25)), engine.ErrConflict},
		{"seconds another node", alloc("sec-o1", o1, o2, sec(10, 15), sec(10, 25)), nil},
		// Far from the epoch, beyond 32-bit minutes.
		{"year 9000", farAlloc("far-1", o5, o5+1, far, 0, time.Hour), nil},
		{"year 9000 adjacent", farAlloc("far-2", o5, o5+1, far, time.Hour, 2*time.Hour), nil},
		{"year 9000 overlap", farAlloc("far-x", o5, o5+1, far, 30*time.Minute, 90*time.Minute), engine.ErrConflict},
		{"year 9000 and 9001", farAlloc("far-3", o5, o5+1, far, -time.Hour, 10_000*time.Hour), engine.ErrConflict},
		{"year -3000", farAlloc("early-1", o5, o5+1, early, 0, time.Hour), nil},
		{"year -3000 overlap", farAlloc("early-x", o4, o5+1, early, 59*time.Minute, 61*time.Minute), engine.ErrConflict},
		{"year -3000 to 9000", lease.Allocation{ID: "span", LeaseID: "l", TenantID: "acme", NodeFrom: o4, NodeTo: o5 + 1,
			Start: early.Add(2 * time.Hour), End: far.Add(time.Hour)}, engine.ErrConflict},
		{"year -3000 to 9000 elsewhere", lease.Allocation{ID: "span-o1", LeaseID: "l", TenantID: "acme", NodeFrom: o1, NodeTo: o2,
			Start: early.Add(2 * time.Hour), End: far.Add(time.Hour)}, engine.ErrConflict},
		{"taken ID", alloc("base", o1, o2, 10*time.Hour, 11*time.Hour), tenant.ErrExists},
		{"empty interval", alloc("empty", o1, o2, 20*time.Hour, 20*time.Hour), errOther},
		{"reversed interval", alloc("reversed", o1, o2, 21*time.Hour, 20*time.Hour), errOther},
		{"empty run", alloc("empty-run", o1, o1, 20*time.Hour, 21*time.Hour), errOther},
		{"reversed run", alloc("reversed-run", o2, o1, 20*time.Hour, 21*time.Hour), errOther},
		{"unknown ordinal", alloc("ghost", o5+1, o5+2, 0, time.Hour), engine.ErrNotFound},
		{"run past the last node", alloc("past", o5, o5+2, 30*time.Hour, 31*time.Hour), engine.ErrNotFound},
		{"ordinal 0", alloc("zero", 0, o1+1, 30*time.Hour, 31*time.Hour), engine.ErrNotFound},
		{"negative ordinals", alloc("negative", -5, -2, 30*time.Hour, 31*time.Hour), engine.ErrNotFound},
	} {
		err := insert(s, tc.a)
		if !checkErr(err, tc.want) {
			t.Errorf("%s: err = %v, want %v", tc.name, err, tc.want)
		}
		if err == nil {
			want = append(want, tc.a)
		}
	}
	checkAllocations(t, s, want)
}

// testAllocationBatch checks batches: conflicts between allocations of one
// batch, which allocation the error names, that a failed batch stores
// nothing and leaves the transaction usable, and batches larger than one
// statement takes.
func testAllocationBatch(t *testing.T, s engine.Store) {
	ctx := t.Context()
	names := make([]string, 40)
	for i := range names {
		names[i] = fmt.Sprintf("b%02d", i)
	}
	o := addNodes(t, s, names...)
	n := func(i int) int64 { return o[i] }
	stored := []lease.Allocation{alloc("stored", n(10), n(20), 0, time.Hour)}
	if err := insert(s, stored...); err != nil {
		t.Fatal(err)
	}
	for k, tc := range []struct {
		name  string
		batch []lease.Allocation
		want  error
		names string // the ID the error must name
	}{
		{"adjacent in nodes and time, both ways", []lease.Allocation{
			alloc("adj-1", n(0), n(5), time.Hour, 2*time.Hour),
			alloc("adj-2", n(5), n(10), time.Hour, 2*time.Hour),
			alloc("adj-3", n(0), n(5), 2*time.Hour, 3*time.Hour),
			alloc("adj-4", n(0), n(5), 0, time.Hour),
			alloc("adj-5", n(20), n(25), 0, time.Hour),
		}, nil, ""},
		{"second overlaps first", []lease.Allocation{
			alloc("w-1", n(30), n(35), 0, time.Hour),
			alloc("w-2", n(34), n(36), 30*time.Minute, 2*time.Hour),
			alloc("w-3", n(36), n(37), 0, time.Hour),
		}, engine.ErrConflict, "w-2"},
		{"first earlier one that overlaps is named, within the batch", []lease.Allocation{
			alloc("x-1", n(30), n(35), 0, time.Hour),
			alloc("x-2", n(30), n(31), 0, time.Hour),      // overlaps x-1
			alloc("x-3", n(15), n(16), 0, time.Hour),      // overlaps stored
			alloc("x-4", n(30), n(35), 0, 10*time.Minute), // overlaps x-1
		}, engine.ErrConflict, "x-2"},
		{"first earlier one that overlaps is named, stored", []lease.Allocation{
			alloc("y-1", n(30), n(35), 0, time.Hour),
			alloc("y-2", n(19), n(21), 0, time.Hour), // overlaps stored
			alloc("y-3", n(30), n(35), 0, time.Hour), // overlaps y-1
		}, engine.ErrConflict, "y-2"},
		{"an allocation later in nodes overlaps an earlier one", []lease.Allocation{
			alloc("z-1", n(33), n(35), 0, time.Hour),
			alloc("z-2", n(36), n(38), 0, time.Hour),
			alloc("z-3", n(30), n(34), 0, time.Hour), // overlaps z-1
		}, engine.ErrConflict, "z-3"},
		{"ID twice", []lease.Allocation{
			alloc("d-1", n(30), n(31), 0, time.Hour),
			alloc("d-1", n(31), n(32), 0, time.Hour),
		}, tenant.ErrExists, "d-1"},
		{"a run past the last node", []lease.Allocation{
			alloc("p-1", n(30), n(31), 0, time.Hour),
			alloc("p-2", n(39), n(39)+2, 0, time.Hour),
		}, engine.ErrNotFound, "p-2"},
	} {
		// The batch, then in the same transaction its first allocation
		// shifted far in time, to show the transaction is still usable.
		later := make([]lease.Allocation, len(tc.batch))
		for i, a := range tc.batch {
			a.ID += "-later"
			shift := time.Duration(1000*(k+1)) * time.Hour
			a.Start, a.End = a.Start.Add(shift), a.End.Add(shift)
			later[i] = a
		}
		err := s.Update(ctx, func(tx engine.Tx) error {
			err := tx.InsertAllocations(ctx, tc.batch)
			if !checkErr(err, tc.want) {
				t.Errorf("%s: err = %v, want %v", tc.name, err, tc.want)
			}
			if err != nil && !strings.Contains(err.Error(), tc.names) {
				t.Errorf("%s: err = %v, want it to name %s", tc.name, err, tc.names)
			}
			if err == nil {
				stored = append(stored, tc.batch...)
				return nil
			}
			// Nothing of the failed batch is visible in its transaction.
			as, err := tx.Allocations(ctx, engine.AllocationFilter{})
			if err != nil {
				return err
			}
			if len(as) != len(stored) {
				t.Errorf("%s: %d allocations after the failed batch, want %d", tc.name, len(as), len(stored))
			}
			if tc.want == engine.ErrConflict {
				return tx.InsertAllocations(ctx, []lease.Allocation{later[0]})
			}
			return nil
		})
		if err != nil {
			t.Fatalf("%s: update: %v", tc.name, err)
		}
		if tc.want == engine.ErrConflict {
			stored = append(stored, later[0])
		}
		checkAllocations(t, s, stored)
	}

	// More allocations than one statement takes, conflicting late.
	var big []lease.Allocation
	for i := range 1200 {
		big = append(big, alloc(fmt.Sprintf("big-%04d", i), n(i%40), n(i%40)+1,
			time.Duration(100+i/40)*time.Hour, time.Duration(101+i/40)*time.Hour))
	}
	clash := slices.Clone(big)
	clash[1100] = alloc("clash", n(0), n(1), 100*time.Hour, 101*time.Hour) // overlaps big-0000
	if err := insert(s, clash...); !errors.Is(err, engine.ErrConflict) || !strings.Contains(err.Error(), "clash") {
		t.Errorf("batch of 1,200 with a late clash within: err = %v, want ErrConflict naming clash", err)
	}
	if err := insert(s, big...); err != nil {
		t.Fatalf("batch of 1,200: %v", err)
	}
	stored = append(stored, big...)
	late := []lease.Allocation{alloc("free", n(0), n(39)+1, 500*time.Hour, 501*time.Hour)}
	for i := range 900 {
		late = append(late, alloc(fmt.Sprintf("late-%04d", i), n(i%40), n(i%40)+1,
			time.Duration(600+i/40)*time.Hour, time.Duration(601+i/40)*time.Hour))
	}
	late[800] = alloc("late-clash", n(7), n(8), 120*time.Hour, 121*time.Hour) // overlaps a stored big one
	if err := insert(s, late...); !errors.Is(err, engine.ErrConflict) || !strings.Contains(err.Error(), "late-clash") {
		t.Errorf("batch of 901 with a late clash with a stored one: err = %v, want ErrConflict naming late-clash", err)
	}
	checkAllocations(t, s, stored)
}

// checkAllocations checks that the store holds exactly want, and that no
// two of them overlap.
func checkAllocations(t tb, s engine.Store, want []lease.Allocation) {
	t.Helper()
	got, err := s.Allocations(context.Background(), engine.AllocationFilter{})
	if err != nil {
		t.Fatalf("allocations: %v", err)
	}
	want = slices.Clone(want)
	sortAllocations(want)
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

// sortAllocations sorts as the way Reader.Allocations orders them.
func sortAllocations(as []lease.Allocation) {
	slices.SortFunc(as, func(a, b lease.Allocation) int {
		if c := strings.Compare(a.LeaseID, b.LeaseID); c != 0 {
			return c
		}
		if c := a.Start.Compare(b.Start); c != 0 {
			return c
		}
		if a.NodeFrom != b.NodeFrom {
			if a.NodeFrom < b.NodeFrom {
				return -1
			}
			return 1
		}
		return strings.Compare(a.ID, b.ID)
	})
}

// testAllocationRetiredNode: a run that includes a retired node's ordinal
// is refused, until the node comes back.
func testAllocationRetiredNode(t *testing.T, s engine.Store) {
	o := addNodes(t, s, "r1", "r2", "r3")
	apply(t, s, engine.FleetChange{At: T0, Sites: []fleet.Site{site("s", "hall-1")}, Retire: []string{"r2"}})
	for _, tc := range []struct {
		name string
		a    lease.Allocation
		want error
	}{
		{"the retired node", alloc("on-retired", o[1], o[1]+1, time.Hour, 2*time.Hour), engine.ErrNotFound},
		{"a run across it", alloc("across", o[0], o[2]+1, time.Hour, 2*time.Hour), engine.ErrNotFound},
		{"a run ending at it", alloc("ending", o[0], o[1]+1, time.Hour, 2*time.Hour), engine.ErrNotFound},
		{"the node before", alloc("before", o[0], o[1], time.Hour, 2*time.Hour), nil},
		{"the node after", alloc("after", o[2], o[2]+1, time.Hour, 2*time.Hour), nil},
	} {
		if err := insert(s, tc.a); !checkErr(err, tc.want) {
			t.Errorf("%s: err = %v, want %v", tc.name, err, tc.want)
		}
	}
	addNodes(t, s, "r2")
	if err := insert(s, alloc("back", o[1], o[1]+1, time.Hour, 2*time.Hour)); err != nil {
		t.Errorf("allocation of a node back in service: %v", err)
	}
}

func testEndAllocations(t *testing.T, s engine.Store) {
	ctx := t.Context()
	o := addNodes(t, s, "e1", "e2", "e3", "e4")
	all := []lease.Allocation{
		alloc("x", o[0], o[2], 0, 4*time.Hour),           // ends at 3h
		alloc("y", o[2], o[3], 2*time.Hour, 6*time.Hour), // ends at 3h
		alloc("z", o[0], o[2], 5*time.Hour, 7*time.Hour), // starts after 3h: deleted
		alloc("w", o[3], o[3]+1, 3*time.Hour, 4*time.Hour),
		alloc("v", o[3], o[3]+1, 0, time.Hour),               // ended before 3h: unchanged
		alloc("u", o[3], o[3]+1, 10*time.Hour, 11*time.Hour), // not ended
	}
	if err := insert(s, all...); err != nil {
		t.Fatal(err)
	}
	// An unknown ID changes nothing, and leaves the transaction usable.
	update(t, s, func(tx engine.Tx) error {
		if err := tx.EndAllocations(ctx, []string{"x", "nope"}, at(time.Hour)); !errors.Is(err, engine.ErrNotFound) {
			t.Errorf("EndAllocations with an unknown ID: err = %v, want ErrNotFound", err)
		}
		return tx.EndAllocations(ctx, nil, at(time.Hour))
	})
	checkAllocations(t, s, all)

	update(t, s, func(tx engine.Tx) error {
		return tx.EndAllocations(ctx, []string{"x", "y", "z", "w", "v"}, at(3*time.Hour))
	})
	want := []lease.Allocation{
		alloc("x", o[0], o[2], 0, 3*time.Hour),
		alloc("y", o[2], o[3], 2*time.Hour, 3*time.Hour),
		alloc("v", o[3], o[3]+1, 0, time.Hour),
		alloc("u", o[3], o[3]+1, 10*time.Hour, 11*time.Hour),
	}
	checkAllocations(t, s, want)
	// What was ended or deleted is free again.
	freed := []lease.Allocation{
		alloc("x2", o[0], o[2], 3*time.Hour, 4*time.Hour),
		alloc("y2", o[2], o[3], 3*time.Hour, 6*time.Hour),
		alloc("z2", o[0], o[2], 5*time.Hour, 7*time.Hour),
		alloc("w2", o[3], o[3]+1, 3*time.Hour, 4*time.Hour),
	}
	if err := insert(s, freed...); err != nil {
		t.Fatalf("insert where allocations ended: %v", err)
	}
	// What is still held is not.
	if err := insert(s, alloc("x3", o[1], o[2], 2*time.Hour, 3*time.Hour)); !errors.Is(err, engine.ErrConflict) {
		t.Errorf("insert over an ended allocation's remaining interval: err = %v, want ErrConflict", err)
	}
	checkAllocations(t, s, append(want, freed...))
}

func testAllocationsRead(t *testing.T, s engine.Store) {
	ctx := t.Context()
	o := addNodes(t, s, "q1", "q2", "q3")
	a := func(id, leaseID string, from int64, start, end time.Duration) lease.Allocation {
		al := alloc(id, from, from+1, start, end)
		al.LeaseID = leaseID
		return al
	}
	as := []lease.Allocation{
		a("a-4", "l-1", o[2], 0, time.Hour),
		a("a-3", "l-1", o[0], time.Hour, 2*time.Hour),
		a("a-2", "l-1", o[1], 0, time.Hour),
		a("a-1", "l-2", o[0], 0, time.Hour),
		a("a-0", "l-0", o[1], 5*time.Hour, 6*time.Hour),
	}
	if err := insert(s, as...); err != nil {
		t.Fatal(err)
	}
	ids := func(as []lease.Allocation) []string {
		out := []string{}
		for _, a := range as {
			out = append(out, a.ID)
		}
		return out
	}
	for _, tc := range []struct {
		f    engine.AllocationFilter
		want []string
	}{
		{engine.AllocationFilter{}, []string{"a-0", "a-2", "a-4", "a-3", "a-1"}},
		{engine.AllocationFilter{LeaseID: "l-1"}, []string{"a-2", "a-4", "a-3"}},
		{engine.AllocationFilter{LeaseID: "l-9"}, []string{}},
		{engine.AllocationFilter{EndAfter: at(time.Hour)}, []string{"a-0", "a-3"}},
		{engine.AllocationFilter{EndAfter: at(time.Hour - time.Microsecond)}, []string{"a-0", "a-2", "a-4", "a-3", "a-1"}},
		{engine.AllocationFilter{LeaseID: "l-1", EndAfter: at(time.Hour)}, []string{"a-3"}},
	} {
		got, err := s.Allocations(ctx, tc.f)
		if err != nil {
			t.Fatal(err)
		}
		if got == nil {
			t.Errorf("Allocations(%+v) = nil, want a non-nil slice", tc.f)
		}
		if diff := cmp.Diff(tc.want, ids(got)); diff != "" {
			t.Errorf("Allocations(%+v) (-want +got):\n%s", tc.f, diff)
		}
	}
	got, err := s.Allocations(ctx, engine.AllocationFilter{LeaseID: "l-2"})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]lease.Allocation{as[3]}, got); diff != "" {
		t.Errorf("Allocations of l-2 (-want +got):\n%s", diff)
	}
}

// testAllocationProperty inserts random batches of random runs in random
// transactions (some rolled back), and ends some, and compares every answer
// with a brute-force model: a batch is refused exactly when one of its
// allocations overlaps one the model holds or an earlier one of the batch,
// and the store ends up holding exactly the model's allocations.
func testAllocationProperty(t *testing.T, s engine.Store) {
	const nodes = 8
	type step struct {
		batch    []lease.Allocation
		end      []int // indexes into the model, when ending
		endAt    time.Duration
		rollback bool
	}
	// Times are in quarter hours, some shifted by seconds, so that
	// intervals meet, or nearly, without overlapping.
	timeGen := rapid.Custom(func(t *rapid.T) time.Duration {
		return time.Duration(rapid.IntRange(0, 40).Draw(t, "quarter"))*15*time.Minute +
			time.Duration(rapid.SampledFrom([]int{0, 0, 0, 7, 59}).Draw(t, "seconds"))*time.Second
	})
	errRollback := errors.New("roll back")
	round := 0
	rapid.Check(t, func(rt *rapid.T) {
		round++
		names := make([]string, nodes)
		for i := range names {
			names[i] = fmt.Sprintf("p%04d-%d", round, i)
		}
		ords := addNodes(rt, s, names...)
		base := ords[0] // ordinals of one apply are consecutive
		model := []lease.Allocation{}
		id := 0
		for range rapid.IntRange(1, 6).Draw(rt, "steps") {
			var st step
			if len(model) > 0 && rapid.IntRange(0, 3).Draw(rt, "kind") == 0 {
				st.end = rapid.SliceOfNDistinct(rapid.IntRange(0, len(model)-1), 1, 4, rapid.ID).Draw(rt, "end")
				st.endAt = timeGen.Draw(rt, "end_at")
			} else {
				for range rapid.IntRange(1, 8).Draw(rt, "batch") {
					from := rapid.IntRange(0, nodes-1).Draw(rt, "from")
					to := rapid.IntRange(from+1, min(nodes, from+4)).Draw(rt, "to")
					start := timeGen.Draw(rt, "start")
					end := start + time.Duration(rapid.IntRange(1, 16).Draw(rt, "quarters"))*15*time.Minute +
						time.Duration(rapid.SampledFrom([]int{0, 0, 1, -1}).Draw(rt, "skew"))*time.Second
					id++
					st.batch = append(st.batch, alloc(fmt.Sprintf("p%04d-%03d", round, id), base+int64(from), base+int64(to), start, end))
				}
			}
			st.rollback = rapid.IntRange(0, 4).Draw(rt, "rollback") == 0

			next := slices.Clone(model)
			var wantErr error
			if st.end != nil {
				endAt := at(st.endAt)
				ended := map[string]bool{}
				var ids []string
				for _, i := range st.end {
					ids = append(ids, model[i].ID)
					ended[model[i].ID] = true
				}
				next = next[:0]
				for _, a := range model {
					switch {
					case !ended[a.ID]:
					case !a.Start.Before(endAt):
						continue
					case a.End.After(endAt):
						a.End = endAt
					}
					next = append(next, a)
				}
				err := s.Update(context.Background(), func(tx engine.Tx) error {
					if err := tx.EndAllocations(context.Background(), ids, endAt); err != nil {
						return err
					}
					if st.rollback {
						return errRollback
					}
					return nil
				})
				if st.rollback && !errors.Is(err, errRollback) || !st.rollback && err != nil {
					rt.Fatalf("end %v at %v: err = %v", ids, endAt, err)
				}
			} else {
				first := -1
				for i, a := range st.batch {
					if slices.ContainsFunc(model, a.Overlaps) || slices.ContainsFunc(st.batch[:i], a.Overlaps) {
						first = i
						break
					}
				}
				if first >= 0 {
					wantErr = engine.ErrConflict
				} else {
					next = append(next, st.batch...)
				}
				err := s.Update(context.Background(), func(tx engine.Tx) error {
					err := tx.InsertAllocations(context.Background(), st.batch)
					switch {
					case wantErr == nil && err != nil:
						rt.Fatalf("insert %+v: err = %v, want nil", st.batch, err)
					case wantErr != nil && !errors.Is(err, wantErr):
						rt.Fatalf("insert %+v: err = %v, want ErrConflict", st.batch, err)
					case wantErr != nil && !strings.Contains(err.Error(), "allocation "+st.batch[first].ID+" overlaps"):
						rt.Fatalf("insert %+v: err = %v, want it to name %s", st.batch, err, st.batch[first].ID)
					}
					if st.rollback {
						return errRollback
					}
					return nil
				})
				if st.rollback && !errors.Is(err, errRollback) || !st.rollback && err != nil {
					rt.Fatalf("update: err = %v", err)
				}
			}
			if !st.rollback {
				model = next
			}
		}
		got, err := s.Allocations(context.Background(), engine.AllocationFilter{})
		if err != nil {
			rt.Fatalf("allocations: %v", err)
		}
		got = slices.DeleteFunc(got, func(a lease.Allocation) bool { return !strings.HasPrefix(a.ID, fmt.Sprintf("p%04d-", round)) })
		sortAllocations(model)
		if diff := cmp.Diff(model, got); diff != "" {
			rt.Fatalf("stored allocations (-want +got):\n%s", diff)
		}
		// HeldNodes agrees with the model.
		when := at(timeGen.Draw(rt, "held_at"))
		wantHeld := []string{}
		for i, n := range names {
			if slices.ContainsFunc(model, func(a lease.Allocation) bool {
				return a.NodeFrom <= ords[i] && ords[i] < a.NodeTo && a.End.After(when)
			}) {
				wantHeld = append(wantHeld, n)
			}
		}
		var held []string
		update(rt, s, func(tx engine.Tx) error {
			held, err = tx.HeldNodes(context.Background(), names, when)
			return err
		})
		if diff := cmp.Diff(wantHeld, held); diff != "" {
			rt.Fatalf("HeldNodes at %v (-want +got):\n%s", when, diff)
		}
	})
}

// testRace makes writers on a and b (which may be one store) insert
// overlapping runs at once: exactly one must win each round.
func testRace(t *testing.T, a, b engine.Store) {
	const writers, rounds = 8, 5
	names := make([]string, 10)
	for i := range names {
		names[i] = fmt.Sprintf("race-%d", i)
	}
	o := addNodes(t, a, names...)
	for r := range rounds {
		start := make(chan struct{})
		errs := make([]error, writers)
		var wg sync.WaitGroup
		for i := range writers {
			s := a
			if i%2 == 1 {
				s = b
			}
			// Every run holds o[r]; they differ in length and time.
			from := o[r] - int64(min(r, i%3))
			to := o[r] + 1 + int64(i%4)
			wg.Go(func() {
				<-start
				errs[i] = s.Update(context.Background(), func(tx engine.Tx) error {
					return tx.InsertAllocations(context.Background(), []lease.Allocation{
						alloc(fmt.Sprintf("r%d-w%d", r, i), from, to, time.Duration(100*r+i)*time.Minute, time.Duration(100*r+90)*time.Minute),
					})
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
				t.Errorf("round %d, writer %d: err = %v, want nil or ErrConflict", r, i, err)
			}
		}
		if wins != 1 {
			t.Errorf("round %d: %d writers won, want exactly 1 (errors: %v)", r, wins, errs)
		}
	}
	for _, s := range []engine.Store{a, b} {
		as, err := s.Allocations(context.Background(), engine.AllocationFilter{})
		if err != nil {
			t.Fatal(err)
		}
		if len(as) != rounds {
			t.Errorf("%d allocations stored, want %d", len(as), rounds)
		}
	}
	held := heldNodes(t, b, names[:rounds], T0)
	if diff := cmp.Diff(names[:rounds], held); diff != "" {
		t.Errorf("HeldNodes after the races (-want +got):\n%s", diff)
	}
}

package placement

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"pgregory.net/rapid"
)

// TestPlaceFewestLeavesAtScale checks, on 8 pods × 8 leaf groups × 16
// nodes with random holds, that any-packed plans use the fewest leaf
// groups possible (the largest free counts, summed, reach the request
// first at that many) and a single pod whenever one pod can hold the
// request in that many leaf groups.
func TestPlaceFewestLeavesAtScale(t *testing.T) {
	t.Parallel()
	sh := shape{Pool: "s/P", Pods: 8, Leaves: 8, NVLinks: 16, PerNVLink: 1, PowerW: 10}
	rapid.Check(t, func(t *rapid.T) {
		f := &refFleet{nodes: sh.nodes(), budgets: map[string]int64{"dom": 1 << 40}, origin: t0, slots: 48}
		ix, err := NewIndex(Topology{Nodes: f.nodes, DomainBudgetW: f.budgets}, f.origin, f.slots)
		if err != nil {
			t.Fatal(err)
		}
		for i := range rapid.IntRange(0, 200).Draw(t, "holds") {
			from := rapid.Int64Range(1, int64(sh.size())).Draw(t, "from")
			start := genTime(t, "start", 0, 30)
			h := Hold{ID: fmt.Sprintf("h%d", i), TenantID: "x", NodeFrom: from,
				NodeTo: min(from+rapid.Int64Range(1, 40).Draw(t, "len"), int64(sh.size())+1),
				Start:  start, End: start.Add(time.Duration(rapid.IntRange(1, 15).Draw(t, "hours")) * time.Hour)}
			if ix.Add(h) == nil {
				f.holds = append(f.holds, h)
			}
		}
		start := genTime(t, "window", 0, 30)
		r := Request{Pool: sh.Pool, Nodes: rapid.IntRange(1, 200).Draw(t, "nodes"), Start: start,
			End: start.Add(time.Duration(rapid.IntRange(1, 15).Draw(t, "window hours")) * time.Hour), TenantID: "y"}
		// Free nodes per leaf group, by brute force.
		free := map[string]int{}
		podOf := map[string]string{}
		for _, n := range f.nodes {
			podOf[n.Leaf] = n.Pod
			if n.Schedulable && !f.busy(n.Ordinal, r.Start, r.End) {
				free[n.Leaf]++
			}
		}
		fewest := func(leaves []string) int {
			var c []int
			for _, l := range leaves {
				c = append(c, free[l])
			}
			slices.Sort(c)
			slices.Reverse(c)
			sum := 0
			for k, v := range c {
				if sum += v; sum >= r.Nodes {
					return k + 1
				}
			}
			return -1
		}
		var all []string
		byPod := map[string][]string{}
		for l := range free {
			all = append(all, l)
			byPod[podOf[l]] = append(byPod[podOf[l]], l)
		}
		for _, n := range f.nodes {
			if _, ok := free[n.Leaf]; !ok {
				free[n.Leaf] = 0
				all = append(all, n.Leaf)
				byPod[n.Pod] = append(byPod[n.Pod], n.Leaf)
			}
		}
		k := fewest(all)
		plan, err := Place(ix, r)
		if k < 0 {
			if err == nil {
				t.Fatalf("Place = %v; brute force finds no room", plan)
			}
			return
		}
		if err != nil {
			t.Fatalf("Place: %v; brute force fits in %d leaf groups", err, k)
		}
		if msg := f.valid(r, plan); msg != "" {
			t.Fatalf("Place = %v: %s", plan, msg)
		}
		if plan.LeafGroups != k {
			t.Fatalf("Place = %v in %d leaf groups; %d suffice", plan.Nodes, plan.LeafGroups, k)
		}
		onePod := false
		for _, leaves := range byPod {
			if fewest(leaves) == k {
				onePod = true
			}
		}
		if onePod && plan.Pods != 1 {
			t.Fatalf("Place = %v in %d pods; one holds it in %d leaf groups", plan.Nodes, plan.Pods, k)
		}
	})
}

// TestPlaceConcurrent runs Place from several goroutines on one index, for
// the race detector: Place only reads the index.
func TestPlaceConcurrent(t *testing.T) {
	t.Parallel()
	ix := newIndex(t, map[string]int64{"dom": 1 << 40}, shape{Pool: "s/P", Pods: 4, Leaves: 4, NVLinks: 32, PerNVLink: 1, PowerW: 10})
	add(t, ix, Hold{ID: "h", TenantID: "x", NodeFrom: 1, NodeTo: 100, Start: hr(0), End: hr(10)})
	want, err := Place(ix, Request{Pool: "s/P", Nodes: 50, Start: hr(2), End: hr(4)})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 200 {
				r := Request{Pool: "s/P", Nodes: 1 + (g*7+i)%60, Start: hr(i % 8), End: hr(i%8 + 3)}
				if _, err := Place(ix, r); err != nil {
					t.Error(err)
					return
				}
				if got, _ := Place(ix, Request{Pool: "s/P", Nodes: 50, Start: hr(2), End: hr(4)}); !slices.Equal(got.Nodes, want.Nodes) {
					t.Errorf("Place gave %v, then %v", want.Nodes, got.Nodes)
					return
				}
			}
		})
	}
	wg.Wait()
}

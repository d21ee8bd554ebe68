package placement

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestNewIndexErrors(t *testing.T) {
	t.Parallel()
	n := func(o int64, leaf, pod, nv, pool, dom string) Node {
		return Node{Ordinal: o, Name: "n", Pool: pool, PowerW: 10, PowerDomain: dom, Pod: pod, Leaf: leaf, NVLink: nv, Schedulable: true}
	}
	budgets := map[string]int64{"a": 100, "b": 100}
	tests := map[string]struct {
		nodes   []Node
		budgets map[string]int64
		slots   int
	}{
		"no slots":                    {nodes: []Node{n(1, "l", "p", "", "P", "a")}, slots: 0},
		"ordinal 0":                   {nodes: []Node{n(0, "l", "p", "", "P", "a")}},
		"duplicate ordinal":           {nodes: []Node{n(1, "l", "p", "", "P", "a"), n(1, "l", "p", "", "P", "a")}},
		"no pool":                     {nodes: []Node{n(1, "l", "p", "", "", "a")}},
		"no leaf":                     {nodes: []Node{n(1, "", "p", "", "P", "a")}},
		"domain without budget":       {nodes: []Node{n(1, "l", "p", "", "P", "c")}},
		"negative budget":             {nodes: []Node{n(1, "l", "p", "", "P", "a")}, budgets: map[string]int64{"a": -1}},
		"leaf in two pods":            {nodes: []Node{n(1, "l", "p", "", "P", "a"), n(2, "l", "q", "", "P", "a")}},
		"nvlink in two leaves":        {nodes: []Node{n(1, "l", "p", "x", "P", "a"), n(2, "m", "p", "x", "P", "a")}},
		"nvlink in two pools":         {nodes: []Node{n(1, "l", "p", "x", "P", "a"), n(2, "l", "p", "x", "Q", "a")}},
		"nvlink in two power domains": {nodes: []Node{n(1, "l", "p", "x", "P", "a"), n(2, "l", "p", "x", "P", "b")}},
	}
	for name, tt := range tests {
		b, slots := tt.budgets, tt.slots
		if b == nil {
			b = budgets
		}
		if name != "no slots" {
			slots = 10
		}
		if _, err := NewIndex(Topology{Nodes: tt.nodes, DomainBudgetW: b}, t0, slots); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: NewIndex = %v, want ErrInvalid", name, err)
		}
	}
}

func TestIndexLookups(t *testing.T) {
	t.Parallel()
	other := shape{Pool: "s/B200", First: 1001, Pods: 1, Leaves: 1, NVLinks: 2, PerNVLink: 1, PowerW: 14_300}
	ix := newIndex(t, map[string]int64{"dom": 1 << 40}, small, other)
	if diff := cmp.Diff([]string{"s/B200", "s/H100"}, ix.Pools()); diff != "" {
		t.Errorf("Pools (-want +got):\n%s", diff)
	}
	if got := ix.PoolNodes("s/B200"); len(got) != 2 || got[0].Ordinal != 1001 || got[1].Ordinal != 1002 {
		t.Errorf("PoolNodes = %+v", got)
	}
	if ix.PoolNodes("nope") != nil {
		t.Error("PoolNodes of an unknown pool is not nil")
	}
	if n, ok := ix.Node(5); !ok || n.Leaf != leafKey(small.Pool, 0, 1) {
		t.Errorf("Node(5) = %+v, %v", n, ok)
	}
	if _, ok := ix.Node(99); ok {
		t.Error("Node(99) found")
	}
	if err := ix.SetSchedulable(5, false); err != nil {
		t.Fatal(err)
	}
	if n, _ := ix.Node(5); n.Schedulable {
		t.Error("Node(5) still schedulable")
	}
	if err := ix.SetSchedulable(99, false); !errors.Is(err, ErrNotFound) {
		t.Errorf("SetSchedulable(99) = %v", err)
	}
	add(t, ix, Hold{ID: "a", TenantID: "x", NodeFrom: 3, NodeTo: 7, Start: hr(1), End: hr(5)})
	add(t, ix, Hold{ID: "b", TenantID: "x", NodeFrom: 4, NodeTo: 5, Start: hr(6), End: hr(8)})
	if err := ix.End("a", hr(3)); err != nil {
		t.Fatal(err)
	}
	if h, _ := ix.Hold("a"); !h.End.Equal(hr(3)) {
		t.Errorf("Hold(a).End = %s, want %s", h.End, hr(3))
	}
	if err := ix.End("a", hr(4)); err != nil {
		t.Fatal(err) // after its end: no change
	}
	var got []string
	for _, h := range ix.HoldsOn(4, hr(2)) {
		got = append(got, h.ID)
	}
	if diff := cmp.Diff([]string{"a", "b"}, got); diff != "" {
		t.Errorf("HoldsOn(4) (-want +got):\n%s", diff)
	}
	if hs := ix.HoldsOn(4, hr(3)); len(hs) != 1 || hs[0].ID != "b" {
		t.Errorf("HoldsOn(4, after its end) = %+v", hs)
	}
	if err := ix.End("a", hr(0)); err != nil {
		t.Fatal(err)
	}
	if _, ok := ix.Hold("a"); ok {
		t.Error("End before the start did not remove the hold")
	}
	if err := ix.End("a", hr(0)); !errors.Is(err, ErrNotFound) {
		t.Errorf("End(a) again = %v", err)
	}
	if err := ix.Check(); err != nil {
		t.Error(err)
	}
	// A hold may span leaf groups, pods and pools when its ordinals run on.
	add(t, ix, Hold{ID: "c", TenantID: "x", NodeFrom: 14, NodeTo: 17, Start: hr(0), End: hr(1).Add(time.Minute)})
	if err := ix.Check(); err != nil {
		t.Error(err)
	}
}

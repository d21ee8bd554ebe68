package placement

import (
	"fmt"
	"testing"
	"time"
)

// t0 is the origin of the tests' calendars.
var t0 = time.Date(2026, 9, 1, 0, 0, 0, 0, time.UTC)

// hr returns t0 plus h hours.
func hr(h int) time.Time { return t0.Add(time.Duration(h) * time.Hour) }

// shape describes a pool laid out as pods of leaf groups of NVLink domains
// of nodes, numbered from First in that order.
type shape struct {
	Pool      string
	First     int64
	Pods      int
	Leaves    int // per pod
	NVLinks   int // per leaf
	PerNVLink int // nodes per NVLink domain
	PowerW    int64
	GPUs      int64
	// Domain names the power domain of a leaf; nil puts all in "dom".
	Domain func(pod, leaf int) string
}

func (sh shape) size() int { return sh.Pods * sh.Leaves * sh.NVLinks * sh.PerNVLink }

func (sh shape) nodes() []Node {
	var out []Node
	o := sh.First
	if o == 0 {
		o = 1
	}
	for p := range sh.Pods {
		pod := fmt.Sprintf("%s/p%d", sh.Pool, p)
		for l := range sh.Leaves {
			lf := fmt.Sprintf("%s/l%d", pod, l)
			dom := "dom"
			if sh.Domain != nil {
				dom = sh.Domain(p, l)
			}
			for r := range sh.NVLinks {
				nv := fmt.Sprintf("%s/r%d", lf, r)
				for range sh.PerNVLink {
					out = append(out, Node{Ordinal: o, Name: fmt.Sprintf("n%d", o), Pool: sh.Pool, GPUs: max(sh.GPUs, 8),
						PowerW: sh.PowerW, PowerDomain: dom, Pod: pod, Leaf: lf, NVLink: nv, Schedulable: true})
					o++
				}
			}
		}
	}
	return out
}

// leafKey and podKey name a shape's fabric keys.
func leafKey(pool string, pod, leaf int) string { return fmt.Sprintf("%s/p%d/l%d", pool, pod, leaf) }
func podKey(pool string, pod int) string        { return fmt.Sprintf("%s/p%d", pool, pod) }

// newIndex builds an index of the shapes' nodes with the given budgets
// (every domain a shape names must be there) over 1,000 hours from t0.
func newIndex(t testing.TB, budgets map[string]int64, shapes ...shape) *Index {
	t.Helper()
	var topo Topology
	topo.DomainBudgetW = budgets
	for _, sh := range shapes {
		topo.Nodes = append(topo.Nodes, sh.nodes()...)
	}
	ix, err := NewIndex(topo, t0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	return ix
}

// add records a hold or fails the test.
func add(t testing.TB, ix *Index, h Hold) {
	t.Helper()
	if err := ix.Add(h); err != nil {
		t.Fatal(err)
	}
}

// ords returns the ordinals [from, to).
func ords(from, to int64) []int64 {
	var out []int64
	for o := from; o < to; o++ {
		out = append(out, o)
	}
	return out
}

package placement

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/neocloud/neocloud/internal/lease"
)

// small is a pool of 2 pods × 2 leaf groups × 4 nodes of 10 kW: ordinals
// 1-4 and 5-8 in pod 0, 9-12 and 13-16 in pod 1.
var small = shape{Pool: "s/H100", Pods: 2, Leaves: 2, NVLinks: 4, PerNVLink: 1, PowerW: 10_000}

// racks is a pool of 1 pod × 2 leaf groups × 2 NVLink domains × 3 nodes:
// racks 1-3, 4-6 | 7-9, 10-12.
var racks = shape{Pool: "s/GB200", First: 101, Pods: 1, Leaves: 2, NVLinks: 2, PerNVLink: 3, PowerW: 7_000}

func TestPlace(t *testing.T) {
	t.Parallel()
	big := map[string]int64{"dom": 1 << 40}
	hold := func(id, tenant string, from, to int64, start, end int, dedicated bool) Hold {
		return Hold{ID: id, LeaseID: "l-" + id, TenantID: tenant, Dedicated: dedicated, NodeFrom: from, NodeTo: to, Start: hr(start), End: hr(end)}
	}
	req := func(n int, p lease.Packing) Request {
		return Request{Pool: small.Pool, Nodes: n, Start: hr(10), End: hr(20), Packing: p, TenantID: "a"}
	}
	tests := []struct {
		name    string
		budgets map[string]int64
		shapes  []shape
		holds   []Hold
		unsched []int64
		req     Request
		want    Plan
		reason  Reason // expected refusal, if any
		detail  string // a substring of the refusal's detail
	}{
		{name: "any: first leaf when all are empty", req: req(3, lease.PackAny),
			want: Plan{Nodes: []int64{1, 2, 3}, LeafGroups: 1, Pods: 1}},
		{name: "any: tightest leaf that fits", req: req(3, lease.PackAny),
			holds: []Hold{hold("h", "b", 5, 6, 0, 100, false)},
			want:  Plan{Nodes: []int64{6, 7, 8}, LeafGroups: 1, Pods: 1}},
		{name: "node packing is any", req: req(3, lease.PackNode),
			holds: []Hold{hold("h", "b", 5, 6, 0, 100, false)},
			want:  Plan{Nodes: []int64{6, 7, 8}, LeafGroups: 1, Pods: 1}},
		{name: "empty packing is any", req: req(3, ""),
			holds: []Hold{hold("h", "b", 5, 6, 0, 100, false)},
			want:  Plan{Nodes: []int64{6, 7, 8}, LeafGroups: 1, Pods: 1}},
		{name: "any: holds outside the window do not count", req: req(4, lease.PackAny),
			holds: []Hold{hold("before", "b", 1, 17, 0, 10, false), hold("after", "b", 1, 17, 20, 30, false)},
			want:  Plan{Nodes: []int64{1, 2, 3, 4}, LeafGroups: 1, Pods: 1}},
		{name: "any: two leaf groups of one pod", req: req(6, lease.PackAny),
			want: Plan{Nodes: []int64{1, 2, 3, 4, 5, 6}, LeafGroups: 2, Pods: 1}},
		{name: "any: the tighter pod", req: req(6, lease.PackAny),
			holds: []Hold{hold("h", "b", 1, 2, 0, 100, false)},
			want:  Plan{Nodes: []int64{2, 3, 5, 6, 7, 8}, LeafGroups: 2, Pods: 1}},
		{name: "any: fewest leaf groups beats one pod", req: req(4, lease.PackAny),
			// Pod 0 has 1+1+2 free, pod 1 has 2+0+0: two leaves need both pods.
			shapes: []shape{{Pool: small.Pool, Pods: 2, Leaves: 3, NVLinks: 2, PerNVLink: 1, PowerW: 10_000}},
			holds:  []Hold{hold("h1", "b", 1, 2, 0, 100, false), hold("h2", "b", 3, 4, 0, 100, false), hold("h3", "b", 9, 13, 0, 100, false)},
			want:   Plan{Nodes: []int64{5, 6, 7, 8}, LeafGroups: 2, Pods: 2}},
		{name: "any: across pods", req: req(10, lease.PackAny),
			want: Plan{Nodes: ords(1, 11), LeafGroups: 3, Pods: 2}},
		{name: "leaf: one leaf group", req: req(4, lease.PackLeaf),
			holds: []Hold{hold("h", "b", 1, 2, 0, 100, false)},
			want:  Plan{Nodes: []int64{5, 6, 7, 8}, LeafGroups: 1, Pods: 1}},
		{name: "leaf: too big for any leaf group", req: req(5, lease.PackLeaf),
			reason: ReasonTopology, detail: "no leaf group of pool s/H100 has 5 nodes (packing leaf); the largest has 4"},
		{name: "pod: one pod", req: req(6, lease.PackPod),
			holds: []Hold{hold("h", "b", 1, 5, 0, 100, false)},
			want:  Plan{Nodes: ords(9, 15), LeafGroups: 2, Pods: 1}},
		{name: "pod: too big for any pod", req: req(8, lease.PackPod),
			holds:  []Hold{hold("h1", "b", 1, 2, 0, 100, false), hold("h2", "b", 9, 10, 0, 100, false)},
			reason: ReasonTopology, detail: "no pod of pool s/H100 has 8 free nodes over the window; the most is 7"},
		{name: "nvlink: whole racks in one leaf group", shapes: []shape{racks},
			req:  Request{Pool: racks.Pool, Nodes: 6, Start: hr(0), End: hr(1), Packing: lease.PackNVLinkDomain},
			want: Plan{Nodes: ords(101, 107), LeafGroups: 1, Pods: 1}},
		{name: "nvlink: a held node spoils its rack", shapes: []shape{racks},
			holds: []Hold{hold("h", "b", 102, 103, 0, 100, false)},
			req:   Request{Pool: racks.Pool, Nodes: 3, Start: hr(0), End: hr(1), Packing: lease.PackNVLinkDomain},
			want:  Plan{Nodes: ords(104, 107), LeafGroups: 1, Pods: 1}},
		{name: "nvlink: not a multiple of the domain", shapes: []shape{racks},
			req:    Request{Pool: racks.Pool, Nodes: 4, Start: hr(0), End: hr(1), Packing: lease.PackNVLinkDomain},
			reason: ReasonTopology, detail: "not a multiple of 3"},
		{name: "nvlink: too few complete domains", shapes: []shape{racks},
			holds:  []Hold{hold("h", "b", 102, 103, 0, 100, false), hold("h2", "b", 107, 108, 0, 100, false)},
			req:    Request{Pool: racks.Pool, Nodes: 9, Start: hr(0), End: hr(1), Packing: lease.PackNVLinkDomain},
			reason: ReasonTopology, detail: "2 free complete NVLink domains of 3 nodes"},
		{name: "nvlink: an unschedulable node spoils its rack", shapes: []shape{racks}, unsched: []int64{101},
			req:  Request{Pool: racks.Pool, Nodes: 3, Start: hr(0), End: hr(1), Packing: lease.PackNVLinkDomain},
			want: Plan{Nodes: ords(104, 107), LeafGroups: 1, Pods: 1}},
		{name: "isolation: another tenant's dedicated leaf is closed", req: req(3, lease.PackAny),
			holds: []Hold{hold("h", "b", 1, 2, 15, 30, true)},
			want:  Plan{Nodes: []int64{5, 6, 7}, LeafGroups: 1, Pods: 1}},
		{name: "isolation: another tenant's shared hold is not", req: req(3, lease.PackAny),
			holds: []Hold{hold("h", "b", 1, 2, 15, 30, false)},
			want:  Plan{Nodes: []int64{2, 3, 4}, LeafGroups: 1, Pods: 1}},
		{name: "isolation: a dedicated request avoids other tenants",
			req:   Request{Pool: small.Pool, Nodes: 3, Start: hr(10), End: hr(20), TenantID: "a", Isolation: lease.DedicatedLeaf},
			holds: []Hold{hold("h", "b", 1, 2, 15, 30, false)},
			want:  Plan{Nodes: []int64{5, 6, 7}, LeafGroups: 1, Pods: 1}},
		{name: "isolation: the tenant's own dedicated hold is no bar",
			req:   Request{Pool: small.Pool, Nodes: 3, Start: hr(10), End: hr(20), TenantID: "a", Isolation: lease.DedicatedLeaf},
			holds: []Hold{hold("h", "a", 1, 2, 15, 30, true)},
			want:  Plan{Nodes: []int64{2, 3, 4}, LeafGroups: 1, Pods: 1}},
		{name: "isolation: dedicated hold outside the window is no bar", req: req(3, lease.PackAny),
			holds: []Hold{hold("h", "b", 1, 2, 20, 30, true)},
			want:  Plan{Nodes: []int64{1, 2, 3}, LeafGroups: 1, Pods: 1}},
		{name: "isolation: every leaf closed",
			req: Request{Pool: small.Pool, Nodes: 2, Start: hr(10), End: hr(20), TenantID: "a", Isolation: lease.DedicatedLeaf},
			holds: []Hold{hold("h1", "b", 1, 2, 0, 30, false), hold("h2", "b", 5, 6, 0, 30, false),
				hold("h3", "c", 9, 10, 0, 30, false), hold("h4", "c", 13, 14, 0, 30, false)},
			reason: ReasonIsolation, detail: "0 free nodes"},
		{name: "power: the budget leaves room for 3 nodes", req: req(3, lease.PackAny),
			budgets: map[string]int64{"dom": 40_000},
			holds:   []Hold{hold("h", "b", 16, 17, 0, 100, false)},
			want:    Plan{Nodes: []int64{1, 2, 3}, LeafGroups: 1, Pods: 1}},
		{name: "power: not 4", req: req(4, lease.PackAny),
			budgets: map[string]int64{"dom": 40_000},
			holds:   []Hold{hold("h", "b", 16, 17, 0, 100, false)},
			reason:  ReasonPower, detail: "room for 3"},
		{name: "power: the budgets alone come before capacity", req: req(17, lease.PackAny),
			budgets: map[string]int64{"dom": 40_000},
			holds:   []Hold{hold("h", "b", 16, 17, 0, 100, false)},
			reason:  ReasonPower, detail: "leave room for 3 of its nodes over the window, 17 needed"},
		{name: "power: room in a domain whose nodes are all held", req: req(4, lease.PackAny),
			budgets: map[string]int64{"a": 20_000, "b": 1 << 40},
			shapes: []shape{{Pool: small.Pool, Pods: 2, Leaves: 2, NVLinks: 4, PerNVLink: 1, PowerW: 10_000,
				Domain: func(pod, _ int) string { return []string{"a", "b"}[pod] }}},
			holds:  []Hold{hold("h", "b", 9, 17, 0, 100, false)},
			reason: ReasonPower, detail: "leave room for 2 of its free nodes over the window, 4 needed"},
		{name: "power: a hold counts in every hour it touches", req: req(4, lease.PackAny),
			budgets: map[string]int64{"dom": 40_000},
			holds:   []Hold{{ID: "h", TenantID: "b", NodeFrom: 16, NodeTo: 17, Start: hr(5), End: hr(10).Add(1)}},
			reason:  ReasonPower},
		{name: "power: a hold ending on the hour does not", req: req(4, lease.PackAny),
			budgets: map[string]int64{"dom": 40_000},
			holds:   []Hold{{ID: "h", TenantID: "b", NodeFrom: 16, NodeTo: 17, Start: hr(5), End: hr(10)}},
			want:    Plan{Nodes: []int64{1, 2, 3, 4}, LeafGroups: 1, Pods: 1}},
		{name: "power: the capped domain's leaves are skipped", req: req(4, lease.PackAny),
			budgets: map[string]int64{"a": 20_000, "b": 1 << 40},
			shapes: []shape{{Pool: small.Pool, Pods: 2, Leaves: 2, NVLinks: 4, PerNVLink: 1, PowerW: 10_000,
				Domain: func(pod, _ int) string { return []string{"a", "b"}[pod] }}},
			want: Plan{Nodes: ords(9, 13), LeafGroups: 1, Pods: 1}},
		{name: "power: fewest leaves across capped domains", req: req(6, lease.PackAny),
			budgets: map[string]int64{"a": 20_000, "b": 1 << 40},
			shapes: []shape{{Pool: small.Pool, Pods: 2, Leaves: 2, NVLinks: 4, PerNVLink: 1, PowerW: 10_000,
				Domain: func(pod, _ int) string { return []string{"a", "b"}[pod] }}},
			want: Plan{Nodes: ords(9, 15), LeafGroups: 2, Pods: 1}},
		{name: "prefer: preferred nodes first",
			req:  Request{Pool: small.Pool, Nodes: 3, Start: hr(10), End: hr(20), Prefer: []int64{6, 7, 13}},
			want: Plan{Nodes: []int64{6, 7, 13}, LeafGroups: 2, Pods: 2}},
		{name: "prefer: then their leaf group",
			req:  Request{Pool: small.Pool, Nodes: 3, Start: hr(10), End: hr(20), Prefer: []int64{6}},
			want: Plan{Nodes: []int64{5, 6, 7}, LeafGroups: 1, Pods: 1}},
		{name: "prefer: more preferred than needed takes the fewest leaves",
			req:  Request{Pool: small.Pool, Nodes: 2, Start: hr(10), End: hr(20), Prefer: []int64{1, 9, 10, 30}},
			want: Plan{Nodes: []int64{9, 10}, LeafGroups: 1, Pods: 1}},
		{name: "prefer: held preferred nodes are skipped",
			holds: []Hold{hold("h", "b", 6, 7, 0, 100, false)},
			req:   Request{Pool: small.Pool, Nodes: 2, Start: hr(10), End: hr(20), Prefer: []int64{6, 7}},
			want:  Plan{Nodes: []int64{5, 7}, LeafGroups: 1, Pods: 1}},
		{name: "prefer: leaf packing picks the leaf with most preferred",
			req:  Request{Pool: small.Pool, Nodes: 2, Start: hr(10), End: hr(20), Packing: lease.PackLeaf, Prefer: []int64{14}},
			want: Plan{Nodes: []int64{13, 14}, LeafGroups: 1, Pods: 1}},
		{name: "prefer: pod packing picks the pod with most preferred",
			req:  Request{Pool: small.Pool, Nodes: 5, Start: hr(10), End: hr(20), Packing: lease.PackPod, Prefer: []int64{14}},
			want: Plan{Nodes: []int64{9, 13, 14, 15, 16}, LeafGroups: 2, Pods: 1}},
		{name: "near: its leaf group", unsched: []int64{1},
			req:  Request{Pool: small.Pool, Nodes: 1, Start: hr(10), End: hr(20), Near: 1},
			want: Plan{Nodes: []int64{2}, LeafGroups: 1, Pods: 1}},
		{name: "near: its pod", unsched: []int64{1},
			holds: []Hold{hold("h", "b", 2, 5, 0, 100, false), hold("h2", "b", 5, 6, 0, 100, false)},
			req:   Request{Pool: small.Pool, Nodes: 1, Start: hr(10), End: hr(20), Near: 1},
			want:  Plan{Nodes: []int64{6}, LeafGroups: 1, Pods: 1}},
		{name: "near: anywhere", unsched: []int64{1},
			holds: []Hold{hold("h", "b", 2, 9, 0, 100, false), hold("h2", "b", 9, 10, 0, 100, false)},
			req:   Request{Pool: small.Pool, Nodes: 1, Start: hr(10), End: hr(20), Near: 1},
			want:  Plan{Nodes: []int64{10}, LeafGroups: 1, Pods: 1}},
		{name: "near: leaf packing prefers its pod", unsched: []int64{1},
			req:  Request{Pool: small.Pool, Nodes: 4, Start: hr(10), End: hr(20), Near: 1, Packing: lease.PackLeaf},
			want: Plan{Nodes: ords(5, 9), LeafGroups: 1, Pods: 1}},
		{name: "near: pod packing prefers its pod", holds: []Hold{hold("h", "b", 1, 2, 0, 100, false)},
			req:  Request{Pool: small.Pool, Nodes: 2, Start: hr(10), End: hr(20), Near: 13, Packing: lease.PackPod},
			want: Plan{Nodes: []int64{13, 14}, LeafGroups: 1, Pods: 1}},
		{name: "within: a leaf group",
			req:  Request{Pool: small.Pool, Nodes: 2, Start: hr(10), End: hr(20), Within: leafKey(small.Pool, 1, 1)},
			want: Plan{Nodes: []int64{13, 14}, LeafGroups: 1, Pods: 1}},
		{name: "within: a pod",
			req:  Request{Pool: small.Pool, Nodes: 5, Start: hr(10), End: hr(20), Within: podKey(small.Pool, 1)},
			want: Plan{Nodes: ords(9, 14), LeafGroups: 2, Pods: 1}},
		{name: "within: too small",
			req:    Request{Pool: small.Pool, Nodes: 5, Start: hr(10), End: hr(20), Within: leafKey(small.Pool, 1, 1)},
			reason: ReasonTopology, detail: "has 4 free nodes"},
		{name: "within: unknown key",
			req:    Request{Pool: small.Pool, Nodes: 1, Start: hr(10), End: hr(20), Within: "nowhere"},
			reason: ReasonTopology, detail: `no leaf group or pod "nowhere"`},
		{name: "unschedulable nodes are never picked", unsched: []int64{1, 2, 3},
			req:  req(2, lease.PackAny),
			want: Plan{Nodes: []int64{5, 6}, LeafGroups: 1, Pods: 1}},
		{name: "unschedulable: the last free node of a leaf fits one", unsched: []int64{1, 2, 3},
			req:  req(1, lease.PackAny),
			want: Plan{Nodes: []int64{4}, LeafGroups: 1, Pods: 1}},
		{name: "capacity", req: req(3, lease.PackAny),
			holds:  []Hold{hold("h", "b", 1, 15, 0, 100, false)},
			reason: ReasonCapacity, detail: "pool s/H100 has 2 free nodes over the window, 3 needed"},
		{name: "unknown pool", req: Request{Pool: "nope", Nodes: 1, Start: hr(0), End: hr(1)},
			reason: ReasonPool},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			budgets := tt.budgets
			if budgets == nil {
				budgets = big
			}
			shapes := tt.shapes
			if shapes == nil {
				shapes = []shape{small}
			}
			ix := newIndex(t, budgets, shapes...)
			for _, h := range tt.holds {
				add(t, ix, h)
			}
			for _, o := range tt.unsched {
				if err := ix.SetSchedulable(o, false); err != nil {
					t.Fatal(err)
				}
			}
			got, err := Place(ix, tt.req)
			if derr := Decide(ix, tt.req); (derr == nil) != (err == nil) || derr != nil && derr.Error() != err.Error() {
				t.Fatalf("Decide = %v; Place gave %v", derr, err)
			}
			if tt.reason != "" {
				var pe *Error
				if !errors.As(err, &pe) {
					t.Fatalf("Place = %v, %v; want a %s refusal", got, err, tt.reason)
				}
				if pe.Reason != tt.reason || !strings.Contains(pe.Detail, tt.detail) {
					t.Fatalf("Place refused with %s %q; want %s containing %q", pe.Reason, pe.Detail, tt.reason, tt.detail)
				}
				return
			}
			if err != nil {
				t.Fatalf("Place: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Place (-want +got):\n%s", diff)
			}
			if err := ix.Check(); err != nil {
				t.Error(err)
			}
		})
	}
}

func TestPlaceInvalid(t *testing.T) {
	t.Parallel()
	ix := newIndex(t, map[string]int64{"dom": 1 << 40}, small)
	for name, r := range map[string]Request{
		"no nodes":        {Pool: small.Pool, Nodes: 0, Start: hr(0), End: hr(1)},
		"empty window":    {Pool: small.Pool, Nodes: 1, Start: hr(1), End: hr(1)},
		"zero start":      {Pool: small.Pool, Nodes: 1, End: hr(1)},
		"unknown packing": {Pool: small.Pool, Nodes: 1, Start: hr(0), End: hr(1), Packing: "tight"},
		"unknown isol.":   {Pool: small.Pool, Nodes: 1, Start: hr(0), End: hr(1), Isolation: "alone"},
		"unknown near":    {Pool: small.Pool, Nodes: 1, Start: hr(0), End: hr(1), Near: 99},
	} {
		if _, err := Place(ix, r); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: Place = %v, want ErrInvalid", name, err)
		}
		if err := Decide(ix, r); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: Decide = %v, want ErrInvalid", name, err)
		}
	}
}

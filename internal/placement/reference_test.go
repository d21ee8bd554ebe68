package placement

import (
	"math"
	"math/bits"
	"slices"
	"time"

	"github.com/neocloud/neocloud/internal/lease"
)

// refFleet is a brute-force model of an index: the nodes, the budgets and
// the holds, with none of the index's structures.
type refFleet struct {
	nodes   []Node
	budgets map[string]int64
	holds   []Hold
	origin  time.Time
	slots   int
	// long draws holds and windows of up to 400 hours over 1,000 (the
	// calendar's length then), so that the index's held counts have
	// several levels and windows span them; otherwise up to 10 hours over
	// the first 30.
	long bool
}

// span returns the last hour a drawn start may take and the longest
// drawn duration, in hours.
func (f *refFleet) span() (last, hours int) {
	if f.long {
		return 600, 400
	}
	return 20, 10
}

func (f *refFleet) node(o int64) (Node, bool) {
	for _, n := range f.nodes {
		if n.Ordinal == o {
			return n, true
		}
	}
	return Node{}, false
}

func overlaps(aS, aE, bS, bE time.Time) bool { return aS.Before(bE) && bS.Before(aE) }

// busy reports whether a hold on node o overlaps [s, e).
func (f *refFleet) busy(o int64, s, e time.Time) bool {
	for _, h := range f.holds {
		if o >= h.NodeFrom && o < h.NodeTo && overlaps(h.Start, h.End, s, e) {
			return true
		}
	}
	return false
}

func (f *refFleet) floor(t time.Time) int {
	d := t.Sub(f.origin)
	q := int(d / time.Hour)
	if d%time.Hour < 0 {
		q--
	}
	return q
}

func (f *refFleet) ceil(t time.Time) int {
	d := t.Sub(f.origin)
	q := int(d / time.Hour)
	if d%time.Hour > 0 {
		q++
	}
	return q
}

// room returns the watts domain d may still draw over [s, e): its budget
// less the most its holds draw in any hourly slot the window touches.
func (f *refFleet) room(d string, s, e time.Time) int64 {
	var most int64
	for slot := max(f.floor(s), 0); slot < min(f.ceil(e), f.slots); slot++ {
		var w int64
		for _, h := range f.holds {
			if f.floor(h.Start) <= slot && slot < f.ceil(h.End) {
				for o := h.NodeFrom; o < h.NodeTo; o++ {
					if n, ok := f.node(o); ok && n.PowerDomain == d {
						w += n.PowerW
					}
				}
			}
		}
		most = max(most, w)
	}
	return f.budgets[d] - most
}

// oversize reports whether r packs more nodes in one leaf group (leaf) or
// pod (pod) than any leaf group or pod of the pool has, held or not.
func (f *refFleet) oversize(r Request) bool {
	count := map[string]int{}
	for _, n := range f.nodes {
		if n.Pool != r.Pool {
			continue
		}
		switch r.Packing {
		case lease.PackLeaf:
			count[n.Leaf]++
		case lease.PackPod:
			count[n.Pod]++
		default:
			return false
		}
	}
	for _, c := range count {
		if c >= r.Nodes {
			return false
		}
	}
	return true
}

// powerRoom returns how many of the pool's nodes the power domains'
// budgets leave room for over r's window, whichever nodes are free: per
// domain of the pool, its room at the power of its largest node of the
// pool, in whole units of unit nodes (NVLink domains for nvlink-domain
// packing, else single nodes).
func (f *refFleet) powerRoom(r Request, d int) int {
	unit := 1
	if r.Packing == lease.PackNVLinkDomain {
		unit = d
	}
	largest := map[string]int64{}
	for _, n := range f.nodes {
		if n.Pool == r.Pool {
			largest[n.PowerDomain] = max(largest[n.PowerDomain], n.PowerW)
		}
	}
	room := 0
	for dom, w := range largest {
		if w > 0 {
			room += int(max(f.room(dom, r.Start, r.End), 0)/(w*int64(unit))) * unit
		} else {
			room += r.Nodes // no power drawn: no limit
		}
	}
	return room
}

// closed reports whether leaf is closed to r's tenant over r's window.
func (f *refFleet) closed(leaf string, r Request) bool {
	for _, h := range f.holds {
		if h.TenantID == r.TenantID || !overlaps(h.Start, h.End, r.Start, r.End) {
			continue
		}
		if !h.Dedicated && r.Isolation != lease.DedicatedLeaf {
			continue
		}
		for o := h.NodeFrom; o < h.NodeTo; o++ {
			if n, ok := f.node(o); ok && n.Leaf == leaf {
				return true
			}
		}
	}
	return false
}

// nvlinkSize returns the node count of pool's largest NVLink domain and
// the size of each domain.
func (f *refFleet) nvlinkSize(pool string) (int, map[string]int) {
	sizes := map[string]int{}
	for _, n := range f.nodes {
		if n.Pool == pool {
			sizes[f.nvKey(n)]++
		}
	}
	d := 1
	for _, s := range sizes {
		d = max(d, s)
	}
	return d, sizes
}

func (f *refFleet) nvKey(n Node) string {
	if n.NVLink == "" {
		return "\x00" + n.Name
	}
	return n.NVLink
}

// refResult is what brute force finds for a request.
type refResult struct {
	feasible  bool
	minLeaves int
	reason    Reason
}

// solve enumerates every subset of the pool's nodes.
func (f *refFleet) solve(r Request) refResult {
	if r.Packing == "" {
		r.Packing = lease.PackAny
	}
	d, sizes := f.nvlinkSize(r.Pool)
	var free []Node
	for _, n := range f.nodes {
		if n.Pool == r.Pool && n.Schedulable && !f.busy(n.Ordinal, r.Start, r.End) {
			free = append(free, n)
		}
	}
	if r.Packing == lease.PackNVLinkDomain && r.Nodes%d != 0 {
		return refResult{reason: ReasonTopology}
	}
	if f.oversize(r) {
		return refResult{reason: ReasonTopology}
	}
	if f.powerRoom(r, d) < r.Nodes {
		return refResult{reason: ReasonPower}
	}
	if len(free) < r.Nodes {
		return refResult{reason: ReasonCapacity}
	}
	best := func(iso, power bool) (bool, int) {
		ok, least := false, math.MaxInt
		for m := uint64(0); m < 1<<len(free); m++ {
			if bits.OnesCount64(m) != r.Nodes {
				continue
			}
			var sub []Node
			for i := range free {
				if m>>i&1 == 1 {
					sub = append(sub, free[i])
				}
			}
			if !f.fits(r, sub, d, sizes, iso, power) {
				continue
			}
			ok = true
			least = min(least, countLeaves(sub))
		}
		return ok, least
	}
	if ok, least := best(true, true); ok {
		return refResult{feasible: true, minLeaves: least}
	}
	if ok, _ := best(false, false); !ok {
		return refResult{reason: ReasonTopology}
	}
	if ok, _ := best(true, false); !ok {
		return refResult{reason: ReasonIsolation}
	}
	return refResult{reason: ReasonPower}
}

func countLeaves(sub []Node) int {
	var leaves []string
	for _, n := range sub {
		if !slices.Contains(leaves, n.Leaf) {
			leaves = append(leaves, n.Leaf)
		}
	}
	return len(leaves)
}

// fits checks a subset of free nodes of the pool against the rules other
// than freedom: Within, packing, isolation and power.
func (f *refFleet) fits(r Request, sub []Node, d int, sizes map[string]int, iso, power bool) bool {
	chosen := map[int64]bool{}
	for _, n := range sub {
		chosen[n.Ordinal] = true
	}
	for _, n := range sub {
		if r.Within != "" && n.Leaf != r.Within && n.Pod != r.Within {
			return false
		}
		switch r.Packing {
		case lease.PackLeaf:
			if n.Leaf != sub[0].Leaf {
				return false
			}
		case lease.PackPod:
			if n.Pod != sub[0].Pod {
				return false
			}
		case lease.PackNVLinkDomain:
			if sizes[f.nvKey(n)] != d {
				return false
			}
			for _, m := range f.nodes {
				if m.Pool == r.Pool && f.nvKey(m) == f.nvKey(n) && !chosen[m.Ordinal] {
					return false
				}
			}
		}
		if iso && f.closed(n.Leaf, r) {
			return false
		}
	}
	if power {
		use := map[string]int64{}
		for _, n := range sub {
			use[n.PowerDomain] += n.PowerW
		}
		for dom, w := range use {
			if w > f.room(dom, r.Start, r.End) {
				return false
			}
		}
	}
	return true
}

// valid checks a plan against every rule.
func (f *refFleet) valid(r Request, p Plan) string {
	if r.Packing == "" {
		r.Packing = lease.PackAny
	}
	if len(p.Nodes) != r.Nodes {
		return "wrong node count"
	}
	if !slices.IsSorted(p.Nodes) || len(slices.Compact(slices.Clone(p.Nodes))) != len(p.Nodes) {
		return "nodes not sorted and distinct"
	}
	var sub []Node
	pods := map[string]bool{}
	for _, o := range p.Nodes {
		n, ok := f.node(o)
		switch {
		case !ok:
			return "unknown node"
		case n.Pool != r.Pool:
			return "node of another pool"
		case !n.Schedulable:
			return "unschedulable node"
		case f.busy(o, r.Start, r.End):
			return "node already held"
		}
		sub = append(sub, n)
		pods[n.Pod] = true
	}
	if countLeaves(sub) != p.LeafGroups || len(pods) != p.Pods {
		return "wrong leaf group or pod count"
	}
	d, sizes := f.nvlinkSize(r.Pool)
	if !f.fits(r, sub, d, sizes, true, true) {
		return "breaks packing, isolation or power"
	}
	return ""
}

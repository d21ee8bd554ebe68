package placement

import (
	"math"

	"github.com/neocloud/neocloud/internal/lease"
)

// maxPowerSteps bounds the windows PowerShift looks at; past it, it
// answers that it found no shift.
const maxPowerSteps = 64

// PowerShift returns the least d >= 0, at most limit, such that over r's
// window shifted by d hours the power domains of r.Pool leave room for
// r.Nodes nodes as Place counts it (per domain, the budget less the most
// its holds draw in an hourly slot the window touches, over the pool's
// largest node there, in whole units of r.Packing), and true; false when
// no shift within limit does or none was found in maxPowerSteps steps. Place refuses every window that fails this,
// whatever the holds on the pool's nodes, so a search for the earliest
// start may skip to d. Holds, isolation, Prefer, Near and Within are not
// looked at. A request Place would refuse before power (an unknown pool,
// Nodes < 1, an empty window, nodes not a multiple of the NVLink domain
// size) gets 0 and true; one it refuses at every shift whatever the holds
// (leaf or pod packing of more nodes than any leaf group or pod of the
// pool has) gets false.
//
// Each step is O(domains × log slots) and moves to the first slot at or
// after which some domain could leave room for one more unit: past the
// last slot of the window above its threshold, and on to the first one at
// or below it; after maxPowerSteps steps it gives up (false), so that a
// shift it returns always leaves room.
func (ix *Index) PowerShift(r Request, limit int) (int, bool) {
	p := ix.pools[r.Pool]
	if p == nil || r.Nodes < 1 || limit < 0 {
		return 0, limit >= 0
	}
	s, e, err := interval(r.Start, r.End)
	if err != nil {
		return 0, true
	}
	unit := 1
	if r.Packing == lease.PackNVLinkDomain {
		unit = p.nvlink
		if r.Nodes%unit != 0 {
			return 0, true
		}
	}
	if p.oversize(r.Packing, r.Nodes) {
		return 0, false
	}
	k := int64(r.Nodes / unit)
	// Budgets that leave room over the greatest draw of their whole
	// calendars leave it over every window: no window need be read (the
	// H100 halls of the reference site can power all their nodes).
	var sure int64
	for _, pd := range p.doms {
		w := pd.unitW * int64(unit)
		if w <= 0 {
			return 0, true
		}
		dom := &ix.domains[pd.dom]
		if sure += max(dom.budgetW-max(dom.cal.Ceiling(), 0), 0) / w; sure >= k {
			return 0, true
		}
	}
	from, to := ix.floor(s), ix.ceil(e)
	if len(p.doms) == 1 {
		return ix.powerShiftOne(&p.doms[0], k*int64(unit), from, to, limit)
	}
	// Each domain's window is read once a step (calendar.Span): its
	// greatest draw, then, when the draws leave too little room, its last
	// slot above a threshold that depends on that draw.
	sr := ix.scratch.Get().(*search)
	defer ix.scratch.Put(sr)
	spans := grow(sr.spans, len(p.doms))
	sr.spans = spans
	us := make([]int64, 0, 8) // units per domain
	for d, step := 0, 0; d <= limit; step++ {
		if step == maxPowerSteps {
			return 0, false
		}
		var room int64
		us = us[:0]
		for i, pd := range p.doms {
			w := pd.unitW * int64(unit)
			if w <= 0 {
				return d, true
			}
			dom := &ix.domains[pd.dom]
			u := max(dom.budgetW-max(dom.cal.Span(from+d, to+d, &spans[i]), 0), 0) / w
			if room += u; room >= k {
				return d, true
			}
			us = append(us, u)
		}
		next := math.MaxInt
		for i, pd := range p.doms {
			w, u := pd.unitW*int64(unit), us[i]
			dom := &ix.domains[pd.dom]
			// Room for u+1 units needs every slot of the window at or
			// below thr: no window holding the last slot above it has,
			// nor one starting on a slot above it, so the domain gains
			// no unit before the first slot at or below thr after the
			// last above it. (That jump passes a booked stretch in one
			// step rather than a window's length a step.)
			if thr := dom.budgetW - u*w - w; thr >= 0 {
				if l := spans[i].LastAbove(thr); l >= 0 {
					if f := dom.cal.FirstBelow(l+1, ix.slots, thr+1); f >= 0 {
						next = min(next, f-from)
					}
				}
			}
		}
		if next == math.MaxInt {
			return 0, false
		}
		d = next
	}
	return 0, false
}

// powerShiftOne is PowerShift for a pool in one power domain, pd, and a
// request of nodes nodes over the slots [from, to): the domain has room
// for them over a window exactly when every slot of it draws at most
// thr, the budget less their power at the pool's largest node's, so the
// search is for the first window with no slot above thr: past the last
// slot above it in the window, on to the first at or below it, as
// calendar.EarliestFit does for its need (a step per stretch of slots
// above thr).
func (ix *Index) powerShiftOne(pd *poolDom, nodes int64, from, to, limit int) (int, bool) {
	dom := &ix.domains[pd.dom]
	thr := dom.budgetW - nodes*pd.unitW
	if thr < 0 {
		return 0, false // not even with nothing drawn
	}
	for d, step := 0, 0; d <= limit; step++ {
		if step == maxPowerSteps {
			return 0, false
		}
		l := dom.cal.LastAbove(from+d, to+d, thr)
		if l < 0 {
			return d, true
		}
		f := dom.cal.FirstBelow(l+1, ix.slots, thr+1)
		if f < 0 {
			return 0, false
		}
		d = f - from
	}
	return 0, false
}

// powerRoom returns the units the power budgets leave room for over the
// window (s.capU summed): Place finds no plan for more.
func (s *search) powerRoom() int64 {
	var n int64
	for _, c := range s.capU {
		n += c
		if n >= unlimited {
			return unlimited
		}
	}
	return n
}

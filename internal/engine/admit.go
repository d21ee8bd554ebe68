package engine

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/neocloud/neocloud/internal/event"
	"github.com/neocloud/neocloud/internal/lease"
	"github.com/neocloud/neocloud/internal/money"
	"github.com/neocloud/neocloud/internal/placement"
	"github.com/neocloud/neocloud/internal/unit"
	"github.com/neocloud/neocloud/internal/valid"
)

// Refusal answers a valid request that does not fit: Reason is one word
// (capacity, topology, power, isolation, holdback, state), Detail says why
// in numbers, and EarliestStart, when not zero, is the earliest start at or
// after the one asked for at which the same request (shifted in time) fits.
type Refusal struct {
	Reason        string
	Detail        string
	EarliestStart time.Time
}

func (r *Refusal) Error() string {
	s := fmt.Sprintf("does not fit (%s): %s", r.Reason, r.Detail)
	if !r.EarliestStart.IsZero() {
		s += "; earliest start that fits: " + r.EarliestStart.UTC().Format(time.RFC3339)
	}
	return s
}

// Quote is the answer to a what-if lease request: feasible or not, why,
// and where it would go.
type Quote struct {
	Feasible bool
	Refusal  *Refusal // nil when feasible
	Kind     lease.Kind
	Pool     string
	Start    time.Time
	End      time.Time
	// Schedule is the request's schedule with power converted to GPUs.
	Schedule []lease.Step
	// Nodes is the largest step's nodes. LeafGroups and Pods describe its
	// placement: only in a quote that asks for it (QuotePlacement), 0
	// otherwise.
	Nodes      int
	LeafGroups int
	Pods       int
	// Spot: the price per GPU-hour of the notice tier now, and the pool's
	// utilization it follows.
	Price               money.Money
	Notice              string
	UtilizationPermille int64
}

// maxEarliestTries bounds the placements tried while looking for the
// earliest start of a refused request: counts find each candidate in
// O(log n); placement confirms it.
const maxEarliestTries = 4

// maxEarliestSkips bounds the candidates skipped, without trying a
// placement, because the power budgets leave too little room over them.
const maxEarliestSkips = 16

// resolve validates r against the fleet and returns the lease it asks for
// (without ID, tenant or state) and its pool. Errors are *valid.Error.
func (c *capState) resolve(now time.Time, r lease.Request) (lease.Lease, *poolCap, error) {
	ownSchedule := len(r.Schedule) > 0
	r.Normalize()
	if err := r.Validate(now, c.horizonEnd(now)); err != nil {
		return lease.Lease{}, nil, err
	}
	var e valid.Error
	p := c.pools[r.Pool]
	if p == nil {
		e.Add("pool", r.Pool, "must be a pool of the fleet (site/MODEL); see neocloud pools list")
		return lease.Lease{}, nil, e.Err()
	}
	l := lease.Lease{Kind: r.Kind, Pool: r.Pool, Start: r.Start, End: r.End, Packing: r.Packing, Isolation: r.Isolation}
	if r.Kind == lease.Spot {
		c.resolveSpot(now, p, r, &l, &e)
	}
	if len(r.Schedule) == 0 {
		l.Schedule = []lease.Step{{From: l.Start, GPUs: r.GPUs}}
	} else {
		l.Schedule = slices.Clone(r.Schedule)
	}
	for i, s := range l.Schedule {
		field := "gpus"
		if ownSchedule {
			field = fmt.Sprintf("schedule[%d].gpus", i)
		}
		if s.Power > 0 {
			field = fmt.Sprintf("schedule[%d].mw", i)
			if p.nodeFacilityW <= 0 {
				e.Add(field, s.Power.MW(), "cannot be converted: pool %s has no node with a power rating", p.id)
				continue
			}
			nodes := int64(s.Power / p.nodeFacilityW)
			if nodes == 0 {
				e.Add(field, s.Power.MW(), "is less than one node of pool %s (%s facility power per node)", p.id, p.nodeFacilityW)
				continue
			}
			s.GPUs = unit.GPUs(nodes) * p.gpusPerNode
		}
		if p.gpusPerNode > 0 && s.GPUs%p.gpusPerNode != 0 {
			e.Add(field, int64(s.GPUs), "must be a multiple of %d (whole nodes of pool %s)", p.gpusPerNode, p.id)
		}
		l.Schedule[i] = s
	}
	return l, p, e.Err()
}

// fitMode says what fitsIn finds for each segment.
type fitMode int8

const (
	// fitPlace places the segment (placement.Place): plans, and a
	// refusal that names the rule that fails.
	fitPlace fitMode = iota
	// fitDecide asks whether the segment fits and why not
	// (placement.Decide): no plans, the refusal Place would give.
	fitDecide
	// fitProbe only asks whether the segment fits (placement.Fits): no
	// plans, and the refusal may not name the rule that fails, which
	// spares the search for it. The pool's counts are not read: the
	// search for the earliest start, its only caller, probes windows
	// whose counts it has found to hold the lease's largest step.
	fitProbe
)

// fits checks every step of l, shifted by shift, against the pool's counts
// and, as mode asks, places it or decides whether it fits; it returns the
// nodes of each segment (fitPlace only) or the refusal.
func (c *capState) fits(p *poolCap, l *lease.Lease, shift time.Duration, mode fitMode) ([]placement.Plan, *Refusal) {
	return c.fitsIn(p, l, l.Segments(), shift, shift, mode)
}

// fitsIn is fits for l's segments segs, each with its start shifted by
// startShift and its end by endShift (a segment must not come out empty):
// with startShift the later, each segment's window is the part its
// windows at every shift between the two have in common.
func (c *capState) fitsIn(p *poolCap, l *lease.Lease, segs []lease.Segment, startShift, endShift time.Duration, mode fitMode) ([]placement.Plan, *Refusal) {
	cal, what := p.free, "guaranteed"
	if !l.Kind.Guaranteed() {
		cal, what = p.idle, "spot"
	}
	var plans []placement.Plan // allocated once a segment is placed
	var prev []int64
	for _, s := range segs {
		start, end := s.Start.Add(startShift), s.End.Add(endShift)
		from, to := c.floor(start), c.ceil(end)
		if from < 0 || to > c.slots {
			return nil, &Refusal{Reason: "capacity", Detail: "the window is outside the calendar"}
		}
		nodes := int(s.GPUs / p.gpusPerNode)
		// Packing no leaf group or pod of the pool can hold is
		// placement's to refuse, naming the largest: the counts would
		// only say that too few GPUs are free. (A probe's window holds
		// the counts: see fitProbe.)
		if mode != fitProbe && cal.Min(from, to) < int64(s.GPUs) && !c.ix.Never(l.Pool, l.Packing, nodes) {
			at := cal.FirstBelow(from, to, int64(s.GPUs))
			return nil, &Refusal{Reason: "capacity", Detail: fmt.Sprintf(
				"pool %s has %d GPUs free for %s leases at %s; %d asked",
				p.id, cal.At(at), what, c.timeOf(at).Format(time.RFC3339), s.GPUs)}
		}
		req := placement.Request{Pool: l.Pool, Nodes: nodes,
			Start: start, End: end, Packing: l.Packing, Isolation: l.Isolation, TenantID: l.TenantID, Prefer: prev}
		switch mode {
		case fitProbe:
			ok, err := placement.Fits(c.ix, req)
			switch {
			case err != nil:
				return nil, &Refusal{Reason: "topology", Detail: err.Error()}
			case !ok:
				return nil, &Refusal{Reason: string(placement.ReasonUnknown), Detail: "no placement over the window"}
			}
			continue
		case fitDecide:
			if err := placement.Decide(c.ix, req); err != nil {
				return nil, placementRefusal(err)
			}
			continue
		}
		plan, err := placement.Place(c.ix, req)
		if err != nil {
			return nil, placementRefusal(err)
		}
		if plans == nil {
			plans = make([]placement.Plan, 0, len(segs))
		}
		plans = append(plans, plan)
		prev = plan.Nodes
	}
	return plans, nil
}

// placementRefusal is the refusal for placement's error err.
func placementRefusal(err error) *Refusal {
	if pe := placementError(err); pe != nil {
		return &Refusal{Reason: string(pe.Reason), Detail: pe.Detail}
	}
	return &Refusal{Reason: "topology", Detail: err.Error()}
}

// placementError returns the *placement.Error in err's chain, or nil: as
// errors.As, without the allocation errors.As's target costs, for the
// refusals that most quotes end in.
func placementError(err error) *placement.Error {
	for e := err; e != nil; e = errors.Unwrap(e) {
		if pe, ok := e.(*placement.Error); ok {
			return pe
		}
	}
	var pe *placement.Error // a chain with joined errors, say
	if errors.As(err, &pe) {
		return pe
	}
	return nil
}

// earliest returns the earliest start after l's at which l, shifted,
// fits; zero when none is found within the horizon and the tries. Counts
// propose a candidate; the power budgets, which placement also checks,
// may push it later (placement.Index.PowerShift); placement confirms it.
// Both skip only starts at which l cannot fit.
//
// The candidates do not depend on whether placement confirms the ones
// before them: a candidate that fails moves the search on by an hour.
// After a failure, the next few candidates that lie within a fraction of
// the window of each other are put to placement together first: over
// the part their windows share (l's segments from the last one's start
// to the first one's end). A lease that does not fit over a window fits
// over no window holding it (fewer nodes are free over a longer window,
// the same leaf groups or more are closed to the tenant, and the power
// budgets leave no more room), so when the shared part does not fit, no
// candidate of the group does, and they count as tried without a probe
// each. On the reference fleet, where a refused request's candidates
// that fail come as runs of consecutive hours, this halves the probes of
// the slowest quotes.
func (c *capState) earliest(now time.Time, p *poolCap, l *lease.Lease) time.Time {
	if !l.Kind.Guaranteed() {
		return time.Time{}
	}
	return c.earliestSegs(now, p, l, l.Segments())
}

// earliestSegs is earliest for a guaranteed lease l whose segments are
// segs.
func (c *capState) earliestSegs(now time.Time, p *poolCap, l *lease.Lease, segs []lease.Segment) time.Time {
	for _, s := range segs {
		if c.ix.Never(l.Pool, l.Packing, int(s.GPUs/p.gpusPerNode)) {
			return time.Time{} // no leaf group or pod is that large
		}
	}
	length := c.ceil(l.End) - c.floor(l.Start)
	before := c.ceil(c.horizonEnd(now))
	need := int64(l.MaxGPUs())
	from, skips := c.floor(l.Start)+1, 0
	// roomAt is a start at which powerShift found the budgets to leave
	// room (a shift it returns always does), -1 for none: when the
	// counts then fit from that very start, the budgets are not read
	// again.
	roomAt := -1
	// next returns the next candidate; false when there is none.
	next := func() (int, bool) {
		for {
			s, ok := p.free.EarliestFit(from, before, length, need)
			if !ok {
				return 0, false
			}
			d := 0
			if s != roomAt {
				if d, ok = c.powerShift(p, l, segs, c.timeOf(s).Sub(l.Start), before-(s+length)); !ok {
					return 0, false
				}
			}
			if d > 0 && skips < maxEarliestSkips {
				skips++
				from, roomAt = s+d, s+d
				continue
			}
			from = s + 1
			return s, true
		}
	}
	// take returns the candidate found ahead, if any, else the next.
	ahead, held, done := 0, false, false
	take := func() (int, bool) {
		if held {
			held = false
			return ahead, true
		}
		if done {
			return 0, false
		}
		s, ok := next()
		done = !ok
		return s, ok
	}
	// reach is how far apart a group's first and last candidates may be:
	// the part their windows share is then at least half of each segment.
	reach := length
	for _, sg := range segs {
		reach = min(reach, int(sg.End.Sub(sg.Start)/time.Hour))
	}
	reach /= 2
	var buf [maxEarliestTries]int
	for tries := 0; tries < maxEarliestTries; {
		s, ok := take()
		if !ok {
			return time.Time{}
		}
		group := append(buf[:0], s)
		for tries > 0 && len(group) < maxEarliestTries-tries {
			s2, ok := take()
			if !ok {
				break
			}
			if s2-s > reach {
				ahead, held = s2, true
				break
			}
			group = append(group, s2)
		}
		if len(group) > 1 {
			first, last := c.timeOf(s).Sub(l.Start), c.timeOf(group[len(group)-1]).Sub(l.Start)
			if _, ref := c.fitsIn(p, l, segs, last, first, fitProbe); ref != nil {
				tries += len(group)
				continue
			}
		}
		for _, s := range group {
			if shift := c.timeOf(s).Sub(l.Start); c.probe(p, l, segs, shift) {
				return c.timeOf(s)
			}
			tries++
		}
	}
	return time.Time{}
}

// probe reports whether l's segments segs, shifted by shift, fit.
func (c *capState) probe(p *poolCap, l *lease.Lease, segs []lease.Segment, shift time.Duration) bool {
	_, ref := c.fitsIn(p, l, segs, shift, shift, fitProbe)
	return ref == nil
}

// powerShift returns the least whole hours d >= 0, at most limit, such
// that over every segment segs of l shifted by shift plus d hours the
// power domains leave room for the segment's nodes as placement counts
// it, and false when none within limit does (or placement.PowerShift
// gave up): at the shift returned, every segment has room.
func (c *capState) powerShift(p *poolCap, l *lease.Lease, segs []lease.Segment, shift time.Duration, limit int) (int, bool) {
	d := 0
	for i := 0; i < len(segs); {
		s := segs[i]
		at := shift + time.Duration(d)*time.Hour
		x, ok := c.ix.PowerShift(placement.Request{Pool: l.Pool, Nodes: int(s.GPUs / p.gpusPerNode),
			Start: s.Start.Add(at), End: s.End.Add(at), Packing: l.Packing}, limit-d)
		switch {
		case !ok:
			return 0, false
		case x > 0 && i > 0:
			// The earlier segments are checked again at the new shift.
			d, i = d+x, 0
		default:
			d += x
			i++
		}
	}
	return d, true
}

// admit admits r for tenant as lease id, or returns a *Refusal or a
// *valid.Error. On success the lease and its allocations are in the
// in-memory state; the caller persists them, and what eff gathered: the
// reclaims of spot leases that stood where a guaranteed lease goes, and
// the lease's events.
func (c *capState) admit(now time.Time, id, tenantID string, r lease.Request, eff *effect) (*lease.Lease, []lease.Allocation, error) {
	l, p, err := c.resolve(now, r)
	if err != nil {
		return nil, nil, err
	}
	l.ID, l.TenantID, l.State, l.Created = id, tenantID, lease.Scheduled, now
	c.releaseDue(now, eff) // nodes released since the last tick are wiped first
	plans, victims, ref, err := c.place(now, p, &l, true)
	if err != nil {
		return nil, nil, err
	}
	if ref != nil {
		return nil, nil, ref
	}
	for _, v := range victims {
		if err := c.reclaim(now, v.lease, v.release, "a guaranteed lease starts on its nodes", eff); err != nil {
			return nil, nil, err
		}
	}
	lp := &l
	var allocs []lease.Allocation
	segs := l.Segments()
	ends := make([]int, len(segs)) // segment i's allocations end at allocs[ends[i]]
	for i, s := range segs {
		allocs = append(allocs, c.newAllocs(lp, plans[i].Nodes, s.Start, s.End)...)
		ends[i] = len(allocs)
	}
	// As addAlloc for each allocation, but with the counts changed once
	// per segment: its allocations share its window.
	for i, a := range allocs {
		if err := c.ix.Add(hold(lp, a)); err != nil {
			for _, done := range allocs[:i] {
				_ = c.ix.Remove(done.ID)
			}
			return nil, nil, fmt.Errorf("lease %s: record allocation %s: %w", id, a.ID, err)
		}
	}
	kind, k := p.kindCal(l.Kind), 0
	for i, s := range segs {
		var gpus int64
		for ; k < ends[i]; k++ {
			gpus += c.runGPUs(allocs[k].NodeFrom, allocs[k].NodeTo)
		}
		p.add(kind, c.floor(s.Start), c.ceil(s.End), gpus)
	}
	for _, a := range allocs {
		c.allocs[a.ID] = a
		c.byLease[a.LeaseID] = append(c.byLease[a.LeaseID], a.ID)
		c.noteEnd(a)
	}
	c.leases[id] = lp
	if l.Kind == lease.Spot {
		p.spotLeases[id] = &spotLease{Lease: lp}
		if !l.Noticed.IsZero() {
			eff.events = append(eff.events, event.New(now, event.SpotReclaim, tenantID, id, map[string]any{
				"pool": l.Pool, "gpus": l.MaxGPUs(), "notice": l.Notice, "release_at": l.End.UTC(), "reason": l.Reason}))
		}
	}
	return lp, allocs, nil
}

// place finds l's nodes, or the refusal with the earliest start that
// fits. A spot lease goes on what is idle now (placeSpot). A guaranteed
// lease that spot holds stand in the way of is placed with the spot
// leases that can be released before it starts set aside; they are the
// victims returned, each with its release time.
//
// With commit false (a quote), the index is left as it was.
func (c *capState) place(now time.Time, p *poolCap, l *lease.Lease, commit bool) ([]placement.Plan, []victim, *Refusal, error) {
	if l.Kind == lease.Spot {
		plans, ref := c.placeSpot(now, p, l, commit)
		return plans, nil, ref, nil
	}
	plans, ref := c.fits(p, l, 0, fitPlace)
	if ref == nil {
		return plans, nil, nil, nil
	}
	if len(p.spotLeases) > 0 {
		plans, victims, ref2, err := c.fitsReclaiming(now, p, l, commit)
		switch {
		case err != nil:
			return nil, nil, nil, err
		case plans != nil:
			return plans, victims, nil, nil
		case ref2 != nil:
			return nil, nil, ref2, nil
		}
	}
	ref.EarliestStart = c.earliest(now, p, l)
	return nil, nil, ref, nil
}

// errNeedWriter says a quote must be answered on the writer: it sets
// spot holds aside to see whether reclaiming them would make room.
var errNeedWriter = errors.New("quote needs the writer")

// quote answers r without changing anything (on the writer, the spot
// holds set aside are put back before it returns). With shape set it
// places every step for Quote's LeafGroups and Pods; without, it only
// decides whether r fits and why not, which spares the search for the
// preferred plan.
func (c *capState) quote(now time.Time, tenantID string, r lease.Request, writer, shape bool) (Quote, error) {
	l, p, err := c.resolve(now, r)
	if err != nil {
		return Quote{}, err
	}
	l.TenantID = tenantID
	// l is the quote's own (resolve made its schedule) and stays as it is:
	// the quote shares its schedule.
	q := Quote{Kind: l.Kind, Pool: l.Pool, Schedule: l.Schedule}
	if l.Kind == lease.Spot {
		st := c.poolNow(p, now)
		q.UtilizationPermille = st.UtilizationPermille
		q.Price, _ = c.policy(p).Price(st.UtilizationPermille, l.Notice)
		q.Notice = l.Notice
	}
	var plans []placement.Plan
	var ref *Refusal
	if writer || l.Kind == lease.Spot {
		// The writer may set spot holds aside; a spot placement may end
		// the lease early, which the quote shows.
		plans, _, ref, err = c.place(now, p, &l, false)
		if err != nil {
			return Quote{}, err
		}
	} else {
		segs := l.Segments()
		mode := fitDecide
		if shape {
			mode = fitPlace
		}
		plans, ref = c.fitsIn(p, &l, segs, 0, 0, mode)
		if ref != nil && len(p.spotLeases) > 0 && len(c.reclaimable(now, p, l.Start)) > 0 {
			return Quote{}, errNeedWriter
		}
		if ref != nil && l.Kind.Guaranteed() {
			ref.EarliestStart = c.earliestSegs(now, p, &l, segs)
		}
	}
	q.Start, q.End = l.Start, l.End
	if ref != nil {
		q.Refusal = ref
		return q, nil
	}
	q.Feasible = true
	if p.gpusPerNode > 0 {
		q.Nodes = int(l.MaxGPUs() / p.gpusPerNode)
	}
	if shape {
		// The first of the largest steps' placements.
		for _, pl := range plans {
			if len(pl.Nodes) >= q.Nodes {
				q.Nodes, q.LeafGroups, q.Pods = len(pl.Nodes), pl.LeafGroups, pl.Pods
				break
			}
		}
	}
	return q, nil
}

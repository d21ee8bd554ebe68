package engine

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/neocloud/neocloud/internal/fleet"
	"github.com/neocloud/neocloud/internal/lease"
	"github.com/neocloud/neocloud/internal/placement"
	"github.com/neocloud/neocloud/internal/unit"
	"github.com/neocloud/neocloud/internal/valid"
)

// changes is what one capacity command changed, for the store.
type changes struct {
	ends       []string // allocation IDs ended at `at`
	at         time.Time
	allocs     []lease.Allocation
	shortfalls []lease.Shortfall
	replaced   int // allocations given a replacement node
}

// cancel ends lease id at now: allocations that have not started are
// dropped, running ones end now. It returns nil when the lease is not live
// (unknown, ended or already cancelled).
func (c *capState) cancel(now time.Time, id, reason string) (*lease.Lease, changes, error) {
	l := c.leases[id]
	if l == nil || !now.Before(l.End) {
		return nil, changes{}, nil
	}
	ch := changes{at: now}
	for _, aid := range slices.Clone(c.byLease[id]) {
		a := c.allocs[aid]
		if !a.End.After(now) {
			continue
		}
		if _, err := c.endAlloc(l, a, now); err != nil {
			return nil, changes{}, fmt.Errorf("lease %s: end allocation %s: %w", id, aid, err)
		}
		ch.ends = append(ch.ends, aid)
	}
	l.State, l.Cancelled, l.Reason = lease.Cancelled, now, reason
	delete(c.leases, id)
	if p := c.pools[l.Pool]; p != nil {
		delete(p.spotLeases, id)
	}
	delete(c.rebalanced, id)
	out := *l
	return &out, ch, nil
}

// NodeStates an operator may set: the others (allocated, draining,
// sanitizing) are the engine's to set as leases come and go.
var NodeStates = []fleet.State{fleet.Available, fleet.Failed, fleet.Maintenance}

// setNodeState moves a node to st. A node that stops being schedulable
// (failed, maintenance) leaves the healthy count from now's hour on; every
// guaranteed lease holding it from now on gets a replacement node for the
// rest of its allocation — in the same leaf group, else the same pod, else
// anywhere its packing allows — or, when none is free, a recorded
// shortfall. Spot holds on it end now. A repaired node (available again)
// rejoins the healthy count from the next hour.
func (c *capState) setNodeState(now time.Time, name string, st fleet.State) (fleet.Node, changes, error) {
	n, ok := c.byName[name]
	if !ok {
		return fleet.Node{}, changes{}, fmt.Errorf("node %s: %w", name, ErrNotFound)
	}
	if !slices.Contains(NodeStates, st) {
		var e valid.Error
		e.Add("state", string(st), "must be one of %v", NodeStates)
		return fleet.Node{}, changes{}, e.Err()
	}
	ch := changes{at: now}
	old := n.State
	was, will := inService(n.State), inService(st)
	n.State = st
	c.setNode(n)
	// A wipe under way goes on through a failure (and starts again at the
	// repair, below): only its time or a confirmation ends it.
	if err := c.ix.SetSchedulable(n.Ordinal, schedulable(st)); err != nil {
		return fleet.Node{}, changes{}, err
	}
	p := c.pools[n.PoolID()]
	switch {
	case was && !will:
		p.add(p.healthy, c.floor(now), c.slots, -int64(n.GPUs))
		if err := c.evict(now, n, &ch); err != nil {
			return fleet.Node{}, changes{}, err
		}
	case !was && will:
		p.add(p.healthy, c.ceil(now), c.slots, int64(n.GPUs))
	}
	if ho, wiping := c.wiping[n.Ordinal]; wiping && schedulable(st) && !schedulable(old) {
		// Repaired during or after the wipe of a hand-over: a repair is
		// not a wipe, which starts again now.
		c.startWipes(n.Ordinal, n.Ordinal+1, ho.Holder, now)
	}
	return n, ch, nil
}

// evict takes node n out of every hold ending after now, replacing it for
// guaranteed leases.
func (c *capState) evict(now time.Time, n fleet.Node, ch *changes) error {
	for _, h := range c.ix.HoldsOn(n.Ordinal, now) {
		l := c.leases[h.LeaseID]
		a, ok := c.allocs[h.ID]
		if l == nil || !ok {
			continue
		}
		if _, err := c.endAlloc(l, a, now); err != nil {
			return err
		}
		ch.ends = append(ch.ends, a.ID)
		from := a.Start
		if from.Before(now) {
			from = now
		}
		var keep []int64
		for o := a.NodeFrom; o < a.NodeTo; o++ {
			if o != n.Ordinal {
				keep = append(keep, o)
			}
		}
		// The rest of the run keeps its nodes; they are held before the
		// replacement is placed, so that it cannot pick one of them.
		if err := c.addAllocs(l, c.newAllocs(l, keep, from, a.End), ch); err != nil {
			return err
		}
		if l.Kind.Guaranteed() && from.Equal(now) && !now.Equal(now.Truncate(time.Hour)) {
			// Both parts of the run touch this hour and count in it;
			// the capacity now (poolNow) knows the nodes once.
			c.noteSplit(l.Pool, l.Kind, now, c.runGPUs(a.NodeFrom, a.NodeTo)-int64(n.GPUs))
		}
		if !l.Kind.Guaranteed() {
			continue // spot on a failed node ends now (invariant 5 allows it)
		}
		req := placement.Request{Pool: l.Pool, Nodes: 1, Start: from, End: a.End, Packing: lease.PackAny,
			Isolation: l.Isolation, TenantID: l.TenantID, Near: n.Ordinal}
		switch l.Packing {
		case lease.PackLeaf:
			req.Within = placementNode(n).Leaf
		case lease.PackPod:
			req.Within = placementNode(n).Pod
		}
		// A replacement must also fit the counts (from the next whole
		// hour: the current one still counts the failed node's hold), so
		// that it never takes holdback or another lease's promise.
		p := c.pools[l.Pool]
		spare := p.free.Min(c.ceil(from), c.ceil(a.End)) >= int64(n.GPUs)
		var plan placement.Plan
		err := errNoSpare
		if spare {
			plan, err = placement.Place(c.ix, req)
		}
		if err != nil {
			ch.shortfalls = append(ch.shortfalls, lease.Shortfall{
				ID: a.ID + ".short", LeaseID: l.ID, TenantID: l.TenantID,
				Node: n.Name, GPUs: n.GPUs, From: from, To: a.End})
			continue
		}
		if err := c.addAllocs(l, c.newAllocs(l, plan.Nodes, from, a.End), ch); err != nil {
			return err
		}
		ch.replaced++
	}
	return nil
}

var errNoSpare = errors.New("no spare capacity")

func (c *capState) addAllocs(l *lease.Lease, as []lease.Allocation, ch *changes) error {
	for _, a := range as {
		if err := c.addAlloc(l, a); err != nil {
			return fmt.Errorf("lease %s: record allocation %s: %w", l.ID, a.ID, err)
		}
		ch.allocs = append(ch.allocs, a)
	}
	return nil
}

// MaxHoldbackSteps bounds one pool's holdback schedule.
const MaxHoldbackSteps = 10_000

// setHoldback replaces a pool's holdback schedule. Where the new schedule
// holds back more than the old one at some hour from now on, guaranteed
// allocations already admitted must still fit (invariant 2): otherwise it
// returns a *Refusal naming the first such hour and changes nothing.
func (c *capState) setHoldback(now time.Time, pool string, steps []HoldbackStep) error {
	var e valid.Error
	p := c.pools[pool]
	if p == nil {
		e.Add("pool", pool, "must be a pool of the fleet (site/MODEL)")
		return e.Err()
	}
	if len(steps) > MaxHoldbackSteps {
		e.Add("steps", len(steps), "must have at most %d steps", MaxHoldbackSteps)
		return e.Err()
	}
	for i, s := range steps {
		f := fmt.Sprintf("steps[%d]", i)
		wholeHourField(&e, f+".from", s.From)
		if i > 0 && !s.From.After(steps[i-1].From) {
			e.Add(f+".from", s.From.Format(time.RFC3339), "must be after steps[%d].from", i-1)
		}
		if s.GPUs < 0 || s.GPUs > p.physical {
			e.Add(f+".gpus", int64(s.GPUs), "must be between 0 and the pool's %d GPUs", p.physical)
		}
	}
	if err := e.Err(); err != nil {
		return err
	}
	old := p.holdbackSteps
	c.applyHoldback(p, steps)
	bounds := []int{max(c.floor(now), 0)}
	for _, s := range slices.Concat(old, steps) {
		if b := c.floor(s.From); b > bounds[0] && b < c.slots {
			bounds = append(bounds, b)
		}
	}
	sort.Ints(bounds)
	bounds = append(slices.Compact(bounds), c.slots)
	for i := 0; i+1 < len(bounds); i++ {
		from, to := bounds[i], bounds[i+1]
		t := c.timeOf(from)
		if HoldbackAt(steps, t) <= HoldbackAt(old, t) {
			continue
		}
		if at := p.free.FirstBelow(from, to, 0); at >= 0 {
			short := -p.free.At(at)
			c.applyHoldback(p, old)
			return &Refusal{Reason: "holdback", Detail: fmt.Sprintf(
				"at %s pool %s would hold back %d GPUs, %d more than guaranteed leases already admitted leave free",
				c.timeOf(at).Format(time.RFC3339), pool, HoldbackAt(steps, c.timeOf(at)), short)}
		}
	}
	return nil
}

// HoldbackAt returns the GPUs steps (ordered by From) hold back at t.
func HoldbackAt(steps []HoldbackStep, t time.Time) unit.GPUs {
	var g unit.GPUs
	for _, s := range steps {
		if s.From.After(t) {
			break
		}
		g = s.GPUs
	}
	return g
}

func wholeHourField(e *valid.Error, field string, t time.Time) {
	switch {
	case t.IsZero():
		e.Add(field, nil, "is required (RFC 3339, on a whole UTC hour)")
	case !t.Equal(t.Truncate(time.Hour)):
		e.Add(field, t.Format(time.RFC3339Nano), "must be on a whole UTC hour")
	}
}

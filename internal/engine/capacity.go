package engine

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/neocloud/neocloud/internal/calendar"
	"github.com/neocloud/neocloud/internal/fleet"
	"github.com/neocloud/neocloud/internal/handover"
	"github.com/neocloud/neocloud/internal/lease"
	"github.com/neocloud/neocloud/internal/placement"
	"github.com/neocloud/neocloud/internal/spot"
	"github.com/neocloud/neocloud/internal/unit"
)

// DefaultHorizon is how far ahead leases may be booked: five years.
const DefaultHorizon = 5 * 365 * 24 * time.Hour

// calendarSlack is how much longer than the horizon the calendars run, so
// that they are rebuilt on a new origin about once a year of uptime rather
// than every hour.
const calendarSlack = 366 * 24 * time.Hour

// poolCap is one pool's capacity calendars, in GPUs per hourly slot. An
// allocation counts in every slot it touches (its span, rounded outward),
// so a slot shared by an allocation ending and another starting within one
// hour counts both: admission errs on the safe side.
//
// free = healthy − holdback − contract − reservation: what a guaranteed
// lease may still take. idle = free − spot: what spot may still take.
type poolCap struct {
	id            string
	nodes         int64
	physical      unit.GPUs // GPUs of the nodes in service, healthy or not
	gpusPerNode   unit.GPUs
	nodeFacilityW unit.Power // the largest node's facility power (IT × PUE)
	holdbackSteps []HoldbackStep
	internal      int64                 // the owner's own use now, as last reported
	sanitizing    int64                 // GPUs of its nodes being wiped
	policy        *spot.Policy          // its spot policy, once looked up
	spotLeases    map[string]*spotLease // live spot leases, by ID

	healthy, holdback, contract, reservation, spot, free, idle *calendar.Calendar
}

// kindCal returns the calendar that counts leases of kind k.
func (p *poolCap) kindCal(k lease.Kind) *calendar.Calendar {
	switch k {
	case lease.Contract:
		return p.contract
	case lease.Reservation:
		return p.reservation
	default:
		return p.spot
	}
}

// capState is the engine's in-memory view of capacity: the calendars per
// pool, the placement index of nodes and holds, and the leases that hold
// or will hold nodes. Only the writer changes it (under Engine.capMu);
// readers take the read lock.
type capState struct {
	origin  time.Time
	slots   int
	horizon time.Duration

	pools  map[string]*poolCap
	ix     *placement.Index
	byName map[string]fleet.Node // written through setNode, with byOrd
	byOrd  map[int64]fleet.Node  // written through setNode, which keeps ords in step
	// gpuSum[o-gpuBase] is the GPUs of the nodes with ordinals in
	// [gpuBase, o), so that a run's GPUs are one subtraction, and
	// ords[o-gpuBase] what wipes read of the node of ordinal o, node by
	// node, by the thousand per tick (a lookup in byOrd, a map of whole
	// nodes, misses the cache); both nil when the ordinals are too sparse,
	// and runGPUs and ordNode then read byOrd.
	gpuBase int64
	gpuSum  []int64
	ords    []ordNode

	leases    map[string]*lease.Lease // live: not cancelled, ending after origin
	allocs    map[string]lease.Allocation
	byLease   map[string][]string // lease ID → allocation IDs
	nextAlloc map[string]int      // lease ID → next allocation suffix

	// Spot and hand-over (spot.go).
	spotPolicy map[string]spot.Policy // by pool ID or GPU model; others get the default
	handover   handover.Policy
	wiping     map[int64]handover.Node   // nodes sanitizing, by ordinal
	wipeHold   map[int64]string          // their placement holds' IDs
	wipeRuns   map[string]placement.Hold // the holds, by ID
	wipeSeq    int64
	ends       endHeap               // allocation ends not yet ticked
	loaded     time.Time             // the origin at load: ends before it were wiped then
	pruned     time.Time             // the last prune
	rebalanced map[string]bool       // spot leases sent a rebalance event
	split      map[string]splitCount // by pool: runs split this hour
	reclaims   int64                 // reclaim notices given since load
}

// schedulable reports whether placement may put leases on a node in state s.
func schedulable(s fleet.State) bool { return s == fleet.Available || s == fleet.Allocated }

// inService reports whether a node in state s counts as healthy capacity:
// schedulable, or passing through hand-over.
func inService(s fleet.State) bool {
	return schedulable(s) || s == fleet.Sanitizing || s == fleet.Draining
}

// loadCapacity rebuilds the in-memory capacity from the store, with the
// calendars' origin at the start of now's hour.
// capConfig is what the engine's configuration says about capacity.
type capConfig struct {
	spot     map[string]spot.Policy // by pool ID or GPU model
	sanitize time.Duration
}

func loadCapacity(ctx context.Context, r Reader, now time.Time, horizon time.Duration, cfg capConfig) (*capState, error) {
	origin := now.UTC().Truncate(time.Hour)
	slots := int((horizon + calendarSlack) / time.Hour)
	c := &capState{origin: origin, slots: slots, horizon: horizon,
		pools: map[string]*poolCap{}, byName: map[string]fleet.Node{}, byOrd: map[int64]fleet.Node{},
		leases: map[string]*lease.Lease{}, allocs: map[string]lease.Allocation{},
		byLease: map[string][]string{}, nextAlloc: map[string]int{},
		handover: handover.Policy{Sanitize: cmp.Or(cfg.sanitize, handover.DefaultSanitize)}, spotPolicy: cfg.spot, wiping: map[int64]handover.Node{}, wipeHold: map[int64]string{}, wipeRuns: map[string]placement.Hold{},
		loaded: origin, pruned: origin, rebalanced: map[string]bool{}, split: map[string]splitCount{}}

	sites, err := r.Sites(ctx)
	if err != nil {
		return nil, err
	}
	nodes, err := r.AllNodes(ctx)
	if err != nil {
		return nil, err
	}
	pue := map[string]int64{}
	topo := placement.Topology{DomainBudgetW: map[string]int64{}}
	for _, s := range sites {
		pue[s.Name] = s.PUEMilli
		for _, d := range s.PowerDomains {
			topo.DomainBudgetW[s.Name+"/"+d.Name] = int64(d.Budget)
		}
	}
	topo.Nodes = make([]placement.Node, 0, len(nodes))
	for _, n := range nodes {
		c.byName[n.Name] = n
		c.byOrd[n.Ordinal] = n
		topo.Nodes = append(topo.Nodes, placementNode(n))
		p := c.pool(n.PoolID())
		p.nodes++
		p.physical += n.GPUs
		p.gpusPerNode = max(p.gpusPerNode, n.GPUs)
		p.nodeFacilityW = max(p.nodeFacilityW, n.ITPower.Scale(pue[n.Site], 1000))
		if inService(n.State) {
			p.add(p.healthy, 0, slots, int64(n.GPUs))
		}
		if n.State == fleet.Sanitizing {
			// A store of an earlier version kept the state: the wipe
			// lasts its time from now.
			c.wiping[n.Ordinal] = handover.Node{State: handover.Sanitizing, Since: now}
			p.sanitizing += int64(n.GPUs)
		}
	}
	c.sumGPUs(nodes)
	if c.ix, err = placement.NewIndex(topo, origin, slots); err != nil {
		return nil, fmt.Errorf("capacity: placement index: %w", err)
	}

	hb, err := r.Holdback(ctx)
	if err != nil {
		return nil, err
	}
	for pool, steps := range hb {
		if p := c.pools[pool]; p != nil {
			c.applyHoldback(p, steps)
		}
	}

	leases, err := r.Leases(ctx, LeaseFilter{})
	if err != nil {
		return nil, err
	}
	for i := range leases {
		l := &leases[i]
		if l.State == lease.Cancelled || !l.End.After(origin) {
			continue
		}
		c.leases[l.ID] = l
		if p := c.pools[l.Pool]; p != nil && l.Kind == lease.Spot {
			p.spotLeases[l.ID] = &spotLease{Lease: l}
		}
	}
	// Allocations that ended within the hand-over time left their nodes
	// to wipe (wipes are not stored: they follow from allocations).
	since := origin
	if t := now.Add(-c.handover.Sanitize); t.Before(since) {
		since = t
	}
	allocs, err := r.Allocations(ctx, AllocationFilter{EndAfter: since})
	if err != nil {
		return nil, err
	}
	var ended []lease.Allocation
	allocs = slices.DeleteFunc(allocs, func(a lease.Allocation) bool {
		if !a.End.After(now) {
			ended = append(ended, a)
		}
		return !a.End.After(origin)
	})
	for _, a := range allocs {
		l := c.leases[a.LeaseID]
		if l == nil {
			continue // a cancelled lease's past
		}
		if err := c.addAlloc(l, a); err != nil {
			return nil, fmt.Errorf("capacity: load allocation %s: %w", a.ID, err)
		}
	}
	for _, a := range ended {
		for o := a.NodeFrom; o < a.NodeTo; o++ {
			if n, ok := c.byOrd[o]; ok && schedulable(n.State) && a.End.After(now.Add(-c.handover.Sanitize)) && !c.heldBy(o, a.TenantID, a.End) {
				c.startWipes(o, o+1, a.TenantID, a.End)
			}
		}
	}
	for id, ids := range c.byLease {
		for _, aid := range ids {
			if n, err := strconv.Atoi(aid[strings.LastIndexByte(aid, '.')+1:]); err == nil && n >= c.nextAlloc[id] {
				c.nextAlloc[id] = n + 1
			}
		}
	}
	return c, nil
}

// sumGPUs fills gpuSum and ords from nodes when their ordinals are dense
// enough. The pools must exist.
func (c *capState) sumGPUs(nodes []fleet.Node) {
	if len(nodes) == 0 {
		return
	}
	lo, hi := nodes[0].Ordinal, nodes[0].Ordinal
	for _, n := range nodes {
		lo, hi = min(lo, n.Ordinal), max(hi, n.Ordinal)
	}
	if hi-lo+1 > 2*int64(len(nodes))+1024 {
		return
	}
	c.gpuBase = lo
	c.gpuSum = make([]int64, hi-lo+2)
	c.ords = make([]ordNode, hi-lo+1)
	for _, n := range nodes {
		c.gpuSum[n.Ordinal-lo+1] = int64(n.GPUs)
		c.ords[n.Ordinal-lo] = ordNode{pool: c.pools[n.PoolID()], name: n.Name, state: n.State}
	}
	for i := 1; i < len(c.gpuSum); i++ {
		c.gpuSum[i] += c.gpuSum[i-1]
	}
}

// runGPUs returns the GPUs of the nodes with ordinals in [from, to).
func (c *capState) runGPUs(from, to int64) int64 {
	if c.gpuSum == nil {
		gpus := int64(0)
		for o := from; o < to; o++ {
			if n, ok := c.byOrd[o]; ok {
				gpus += int64(n.GPUs)
			}
		}
		return gpus
	}
	at := func(o int64) int64 {
		return c.gpuSum[min(max(o-c.gpuBase, 0), int64(len(c.gpuSum)-1))]
	}
	return at(to) - at(from)
}

// ordNode is what wipes read of a node: its pool, name and state.
type ordNode struct {
	pool  *poolCap // nil: no node has the ordinal
	name  string
	state fleet.State
}

// ordNode returns what wipes read of the node of ordinal o; a zero
// ordNode when there is none.
func (c *capState) ordNode(o int64) ordNode {
	if c.ords != nil {
		if i := o - c.gpuBase; i >= 0 && i < int64(len(c.ords)) {
			return c.ords[i]
		}
		return ordNode{}
	}
	n, ok := c.byOrd[o]
	if !ok {
		return ordNode{}
	}
	return ordNode{pool: c.pools[n.PoolID()], name: n.Name, state: n.State}
}

// setNode records n, a node of the capacity state whose state changed.
func (c *capState) setNode(n fleet.Node) {
	c.byName[n.Name], c.byOrd[n.Ordinal] = n, n
	if i := n.Ordinal - c.gpuBase; c.ords != nil && i >= 0 && i < int64(len(c.ords)) {
		c.ords[i].state = n.State
	}
}

func placementNode(n fleet.Node) placement.Node {
	pod := n.Site + "/" + n.Position.Pod
	leaf := pod + "/" + n.Position.LeafGroup
	return placement.Node{Ordinal: n.Ordinal, Name: n.Name, Pool: n.PoolID(), GPUs: int64(n.GPUs),
		PowerW: int64(n.ITPower), PowerDomain: n.Site + "/" + n.PowerDomain,
		Pod: pod, Leaf: leaf, NVLink: leaf + "/" + n.Position.NVLinkDomain, Schedulable: schedulable(n.State)}
}

func (c *capState) pool(id string) *poolCap {
	if p := c.pools[id]; p != nil {
		return p
	}
	nc := func() *calendar.Calendar { return calendar.New(c.origin, c.slots) }
	p := &poolCap{id: id, healthy: nc(), holdback: nc(), contract: nc(), reservation: nc(), spot: nc(), free: nc(), idle: nc(),
		spotLeases: map[string]*spotLease{}}
	c.pools[id] = p
	return p
}

// add adds delta to cal over slots [from, to) and keeps free and idle in
// step: healthy adds to both, holdback and guaranteed kinds subtract from
// both, spot subtracts from idle only.
func (p *poolCap) add(cal *calendar.Calendar, from, to int, delta int64) {
	cal.Add(from, to, delta)
	switch cal {
	case p.healthy:
		p.free.Add(from, to, delta)
		p.idle.Add(from, to, delta)
	case p.holdback, p.contract, p.reservation:
		p.free.Add(from, to, -delta)
		p.idle.Add(from, to, -delta)
	case p.spot:
		p.idle.Add(from, to, -delta)
	}
}

func (c *capState) floor(t time.Time) int {
	d := t.Sub(c.origin)
	s := int(d / time.Hour)
	if d < 0 && d%time.Hour != 0 {
		s--
	}
	return s
}

func (c *capState) ceil(t time.Time) int {
	d := t.Sub(c.origin)
	s := int(d / time.Hour)
	if d > 0 && d%time.Hour != 0 {
		s++
	}
	return s
}

func (c *capState) timeOf(slot int) time.Time { return c.origin.Add(time.Duration(slot) * time.Hour) }

// horizonEnd is the last instant a lease booked at now may end.
func (c *capState) horizonEnd(now time.Time) time.Time {
	return now.UTC().Truncate(time.Hour).Add(c.horizon)
}

// stale reports whether the calendars no longer reach the horizon.
func (c *capState) stale(now time.Time) bool {
	return c.ceil(c.horizonEnd(now)) > c.slots
}

// applyHoldback replaces p's holdback schedule with steps.
func (c *capState) applyHoldback(p *poolCap, steps []HoldbackStep) {
	c.holdbackDelta(p, p.holdbackSteps, -1)
	c.holdbackDelta(p, steps, +1)
	p.holdbackSteps = slices.Clone(steps)
}

func (c *capState) holdbackDelta(p *poolCap, steps []HoldbackStep, sign int64) {
	for i, s := range steps {
		to := c.slots
		if i+1 < len(steps) {
			to = c.floor(steps[i+1].From)
		}
		if s.GPUs != 0 {
			p.add(p.holdback, c.floor(s.From), to, sign*int64(s.GPUs))
		}
	}
}

// addAlloc records a in the index and the calendars.
func (c *capState) addAlloc(l *lease.Lease, a lease.Allocation) error {
	if err := c.ix.Add(hold(l, a)); err != nil {
		return err
	}
	c.count(l, a, +1)
	c.allocs[a.ID] = a
	c.byLease[a.LeaseID] = append(c.byLease[a.LeaseID], a.ID)
	c.noteEnd(a)
	c.allocsChanged(l)
	return nil
}

// endAlloc ends a at `at` (removing it when it starts at or after at) in
// the index and the calendars, and returns whether it was removed.
func (c *capState) endAlloc(l *lease.Lease, a lease.Allocation, at time.Time) (removed bool, err error) {
	if !at.Before(a.End) {
		return false, nil
	}
	c.allocsChanged(l)
	c.count(l, a, -1)
	if !at.After(a.Start) {
		if err := c.ix.Remove(a.ID); err != nil {
			return false, err
		}
		delete(c.allocs, a.ID)
		ids := c.byLease[a.LeaseID]
		if i := slices.Index(ids, a.ID); i >= 0 {
			c.byLease[a.LeaseID] = slices.Delete(ids, i, i+1)
		}
		return true, nil
	}
	if err := c.ix.End(a.ID, at); err != nil {
		return false, err
	}
	a.End = at
	c.allocs[a.ID] = a
	c.count(l, a, +1)
	c.noteEnd(a)
	return false, nil
}

// count adds (sign +1) or removes (−1) a's GPUs in its lease kind's
// calendar over a's span.
func (c *capState) count(l *lease.Lease, a lease.Allocation, sign int64) {
	p := c.pools[l.Pool]
	if p == nil {
		return
	}
	from, to := c.floor(a.Start), c.ceil(a.End)
	p.add(p.kindCal(l.Kind), from, to, sign*c.runGPUs(a.NodeFrom, a.NodeTo))
}

func hold(l *lease.Lease, a lease.Allocation) placement.Hold {
	return placement.Hold{ID: a.ID, LeaseID: a.LeaseID, TenantID: a.TenantID, Dedicated: l.Isolation == lease.DedicatedLeaf,
		NodeFrom: a.NodeFrom, NodeTo: a.NodeTo, Start: a.Start, End: a.End}
}

// newAllocs turns a plan's nodes into allocations of l over [start, end),
// one per run of consecutive ordinals.
func (c *capState) newAllocs(l *lease.Lease, nodes []int64, start, end time.Time) []lease.Allocation {
	runs := lease.Runs(nodes)
	if len(runs) == 0 {
		return nil
	}
	n := c.nextAlloc[l.ID]
	c.nextAlloc[l.ID] = n + len(runs)
	out := make([]lease.Allocation, len(runs))
	var id []byte // l.ID + "." + the suffix
	for i, r := range runs {
		id = strconv.AppendInt(append(append(id[:0], l.ID...), '.'), int64(n+i), 10)
		out[i] = lease.Allocation{ID: string(id), LeaseID: l.ID, TenantID: l.TenantID,
			NodeFrom: r[0], NodeTo: r[1], Start: start, End: end}
	}
	return out
}

// nodeNames returns the names of the nodes of a run.
func (c *capState) nodeNames(a lease.Allocation) []string {
	names := make([]string, 0, a.Nodes())
	for o := a.NodeFrom; o < a.NodeTo; o++ {
		if n, ok := c.byOrd[o]; ok {
			names = append(names, n.Name)
		}
	}
	return names
}

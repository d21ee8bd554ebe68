package engine

import (
	"cmp"
	"context"
	"slices"
	"strings"
	"time"

	"github.com/neocloud/neocloud/internal/fleet"
	"github.com/neocloud/neocloud/internal/lease"
	"github.com/neocloud/neocloud/internal/tenant"
	"github.com/neocloud/neocloud/internal/unit"
	"github.com/neocloud/neocloud/internal/valid"
)

// The reads of the dashboard's operator pages (internal/web): what the
// capacity state holds, summed the way a page shows it, so that a page
// makes one call rather than one per node or lease.

// DomainPower is one power domain's IT power at full load: its budget,
// what its nodes in service could draw, and what the nodes leases hold
// now could draw.
type DomainPower struct {
	Site, Name string
	Budget     unit.Power
	// Installed is the IT power of the domain's nodes in service (any
	// state), Allocated that of those a lease holds now.
	Installed, Allocated unit.Power
	// Nodes and AllocatedNodes count the same nodes.
	Nodes, AllocatedNodes int64
}

// PowerByDomain returns every power domain of the fleet, by site then
// name, with the IT power at full load of the nodes that leases hold at
// the clock's current instant. Operators only (tenant.ErrForbidden for
// others).
func (e *Engine) PowerByDomain(ctx context.Context, p tenant.Principal) ([]DomainPower, error) {
	if err := e.check(ctx, p, tenant.PermNodesRead, "power.get", "power", ""); err != nil {
		return nil, err
	}
	sites, err := e.store.Sites(ctx)
	if err != nil {
		return nil, err
	}
	type key struct{ site, name string }
	idx := map[key]int{}
	var out []DomainPower
	for _, s := range sites {
		for _, d := range s.PowerDomains {
			idx[key{s.Name, d.Name}] = len(out)
			out = append(out, DomainPower{Site: s.Name, Name: d.Name, Budget: d.Budget})
		}
	}
	now := e.clock.Now()
	err = e.readCap(ctx, func(c *capState) error {
		for _, n := range c.byOrd {
			if i, ok := idx[key{n.Site, n.PowerDomain}]; ok {
				out[i].Installed += n.ITPower
				out[i].Nodes++
			}
		}
		for _, a := range c.allocs {
			if a.Start.After(now) || !a.End.After(now) {
				continue
			}
			for o := a.NodeFrom; o < a.NodeTo; o++ {
				n, ok := c.byOrd[o]
				if !ok {
					continue
				}
				if i, ok := idx[key{n.Site, n.PowerDomain}]; ok {
					out[i].Allocated += n.ITPower
					out[i].AllocatedNodes++
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b DomainPower) int { return cmp.Or(cmp.Compare(a.Site, b.Site), cmp.Compare(a.Name, b.Name)) })
	return out, nil
}

// PoolHeld is one pool's nodes now, from the capacity state: how many in
// each state, and how many of them leases hold at the current instant.
type PoolHeld struct {
	Pool    string
	Nodes   int64
	GPUs    unit.GPUs
	ITPower unit.Power
	// ByState counts the nodes by state as Nodes reports them: a node
	// being wiped after a hand-over is sanitizing. Nodes leases hold are
	// available: the engine keeps holds in the calendars, not as a state.
	ByState map[fleet.State]int64
	// HeldNodes and HeldGPUs are the nodes an allocation holds now, in
	// any state.
	HeldNodes int64
	HeldGPUs  unit.GPUs
	// FreeNodes and FreeGPUs are the available nodes no allocation holds
	// now: what a lease starting now could take (before the holdback).
	FreeNodes int64
	FreeGPUs  unit.GPUs
}

// PoolsHeld returns every pool of the nodes in service, by ID, with its
// nodes by state and those leases hold at the clock's current instant,
// from memory (no store read). Operators only (tenant.ErrForbidden for
// others).
func (e *Engine) PoolsHeld(ctx context.Context, p tenant.Principal) ([]PoolHeld, error) {
	if err := e.check(ctx, p, tenant.PermNodesRead, "pools.held", "pools", ""); err != nil {
		return nil, err
	}
	now := e.clock.Now()
	var out []PoolHeld
	err := e.readCap(ctx, func(c *capState) error {
		idx := map[string]int{}
		held := map[int64]bool{}
		for _, a := range c.allocs {
			if a.Start.After(now) || !a.End.After(now) {
				continue
			}
			for o := a.NodeFrom; o < a.NodeTo; o++ {
				held[o] = true
			}
		}
		for o, n := range c.byOrd {
			id := n.PoolID()
			i, ok := idx[id]
			if !ok {
				i = len(out)
				idx[id] = i
				out = append(out, PoolHeld{Pool: id, ByState: map[fleet.State]int64{}})
			}
			ph := &out[i]
			st := n.State
			if _, ok := c.wiping[o]; ok && schedulable(st) {
				st = fleet.Sanitizing
			}
			ph.Nodes++
			ph.GPUs += n.GPUs
			ph.ITPower += n.ITPower
			ph.ByState[st]++
			switch {
			case held[o]:
				ph.HeldNodes++
				ph.HeldGPUs += n.GPUs
			case schedulable(st):
				ph.FreeNodes++
				ph.FreeGPUs += n.GPUs
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b PoolHeld) int { return cmp.Compare(a.Pool, b.Pool) })
	return out, nil
}

// TimelinePoint is one step of a pool's capacity timeline, in GPUs: the
// most each use held in any hour of the step, and the least healthy and
// idle. Past hours have Internal (the owner's measured use) and no
// Holdback; the current hour and later have Holdback and no Internal.
//
// The bands stack to at most Healthy (see fit): the leases' GPUs stand
// as held (contract, then reservation, then spot); Internal and Holdback
// are what they leave at most. So Holdback is the part of the forecast
// reserve not lent to spot — spot may run on holdback the owner does not
// use yet, and is reclaimed when the owner's use returns — and Internal,
// before the current hour, is cut where the owner's use and the leases
// add up to more than the healthy GPUs counted (today's: nodes since
// failed or retired held them then; an hour two allocations shared at a
// hand-over counts both). Idle is the least idle, at most what the other
// bands leave.
type TimelinePoint struct {
	At          time.Time
	Past        bool // the whole step is before the current hour
	Healthy     unit.GPUs
	Internal    unit.GPUs
	Holdback    unit.GPUs
	Contract    unit.GPUs
	Reservation unit.GPUs
	Spot        unit.GPUs
	Idle        unit.GPUs
}

// MaxTimelineHistory is how far before the current hour a timeline may
// start.
const MaxTimelineHistory = 5 * 366 * 24 * time.Hour

// CapacityTimeline returns pool's capacity over [from, to) in steps of
// step (a whole number of hours), the past included: from the current
// hour on it reads the calendars, as Capacity does; before it, the
// allocations and the owner's demand samples stored. Node health is not
// recorded over time, so past hours count the pool's healthy GPUs of
// the current hour. Each step's bands stack to at most its healthy GPUs
// (see TimelinePoint). Operators only; bad input (an unknown pool, a step
// that is not whole hours, an empty window, from more than
// MaxTimelineHistory ago, to past the calendars' end, more than
// MaxCapacityPoints points) is a *valid.Error naming the field.
func (e *Engine) CapacityTimeline(ctx context.Context, p tenant.Principal, pool string, from, to time.Time, step time.Duration) ([]TimelinePoint, error) {
	if err := e.check(ctx, p, tenant.PermCapacityRead, "capacity.timeline", "pool/"+pool, ""); err != nil {
		return nil, err
	}
	from, to = from.UTC().Truncate(time.Hour), ceilHour(to.UTC())
	now := e.clock.Now().UTC().Truncate(time.Hour)
	// First look: validate, and find the pool's nodes for the store read.
	var lo, hi int64 = -1, -1 // the pool's ordinals, [lo, hi)
	err := e.readCap(ctx, func(c *capState) error {
		var v valid.Error
		pc := c.pools[pool]
		if pc == nil {
			v.Add("pool", pool, "must be a pool of the fleet (site/MODEL)")
		}
		if step < time.Hour || step%time.Hour != 0 {
			v.Add("step", step.String(), "must be a whole number of hours, at least 1h")
		}
		if earliest := now.Add(-MaxTimelineHistory); from.Before(earliest) {
			v.Add("from", from.Format(time.RFC3339), "must not be before %s (five years ago)", earliest.Format(time.RFC3339))
		}
		if !to.After(from) {
			v.Add("to", to.Format(time.RFC3339), "must be after from")
		} else if end := c.timeOf(c.slots); to.After(end) {
			v.Add("to", to.Format(time.RFC3339), "must not be after %s (the end of the calendar)", end.Format(time.RFC3339))
		}
		if v.Len() == 0 && (to.Sub(from)+step-1)/step > MaxCapacityPoints {
			v.Add("step", step.String(), "gives more than %d points over [from, to); use a larger step", MaxCapacityPoints)
		}
		if err := v.Err(); err != nil {
			return err
		}
		if from.Before(now) {
			for o, n := range c.byOrd {
				if n.PoolID() == pool {
					if lo < 0 || o < lo {
						lo = o
					}
					hi = max(hi, o+1)
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	var past *pastUse
	if from.Before(now) {
		if past, err = e.readPast(ctx, pool, from, earlier(now, to), lo, hi); err != nil {
			return nil, err
		}
	}
	var out []TimelinePoint
	err = e.readCap(ctx, func(c *capState) error {
		pc := c.pools[pool]
		if pc == nil { // the fleet changed since the first look
			var v valid.Error
			v.Add("pool", pool, "must be a pool of the fleet (site/MODEL)")
			return v.Err()
		}
		nowSlot := c.floor(now)
		healthyNow := pc.healthy.At(nowSlot)
		if past != nil {
			past.count(c, healthyNow)
		}
		for t := from; t.Before(to); t = t.Add(step) {
			end := earlier(t.Add(step), to)
			pt := TimelinePoint{At: t, Past: !end.After(now)}
			healthy, idle := int64(-1), int64(-1)
			lower := func(cur *int64, v int64) {
				if *cur < 0 || v < *cur {
					*cur = v
				}
			}
			if t.Before(now) {
				h0, h1 := int(t.Sub(past.from)/time.Hour), int(earlier(end, now).Sub(past.from)/time.Hour)
				for h := h0; h < h1; h++ {
					pt.Internal = max(pt.Internal, unit.GPUs(past.internal[h]))
					pt.Contract = max(pt.Contract, unit.GPUs(past.contract[h]))
					pt.Reservation = max(pt.Reservation, unit.GPUs(past.reservation[h]))
					pt.Spot = max(pt.Spot, unit.GPUs(past.spot[h]))
					lower(&idle, past.idle[h])
				}
				lower(&healthy, healthyNow)
			}
			if end.After(now) {
				s, e := c.floor(later(t, now)), c.ceil(end)
				pt.Holdback = unit.GPUs(pc.holdback.Max(s, e))
				pt.Contract = max(pt.Contract, unit.GPUs(pc.contract.Max(s, e)))
				pt.Reservation = max(pt.Reservation, unit.GPUs(pc.reservation.Max(s, e)))
				pt.Spot = max(pt.Spot, unit.GPUs(pc.spot.Max(s, e)))
				lower(&healthy, pc.healthy.Min(s, e))
				lower(&idle, pc.idle.Min(s, e))
			}
			pt.Healthy, pt.Idle = unit.GPUs(max(healthy, 0)), unit.GPUs(max(idle, 0))
			pt.fit()
			out = append(out, pt)
		}
		return nil
	})
	return out, err
}

// fit cuts pt's bands, in the order they yield, so that they stack to at
// most pt.Healthy: the leases' GPUs first (contract, reservation, spot:
// what allocations hold), then the owner's (internal, holdback), then
// idle. A step's bands are maxima over its hours and its healthy GPUs a
// minimum, so even hours that each fit may not without the cut.
func (pt *TimelinePoint) fit() {
	room := pt.Healthy
	for _, band := range []*unit.GPUs{&pt.Contract, &pt.Reservation, &pt.Spot, &pt.Internal, &pt.Holdback, &pt.Idle} {
		*band = max(min(*band, room), 0)
		room -= *band
	}
}

// pastUse is a pool's use over the hours [from, to) before the current
// hour, hour by hour, from the store.
type pastUse struct {
	from                                  time.Time
	allocs                                []lease.Allocation
	kinds                                 map[string]lease.Kind
	internal, contract, reservation, spot []int64
	idle                                  []int64
}

// readPast reads pool's allocations (those holding nodes of ordinals in
// [lo, hi)) and demand samples over [from, to).
func (e *Engine) readPast(ctx context.Context, pool string, from, to time.Time, lo, hi int64) (*pastUse, error) {
	n := int(to.Sub(from) / time.Hour)
	pu := &pastUse{from: from, kinds: map[string]lease.Kind{},
		internal: make([]int64, n), contract: make([]int64, n), reservation: make([]int64, n), spot: make([]int64, n), idle: make([]int64, n)}
	samples, err := e.store.Demand(ctx, pool, from, to)
	if err != nil {
		return nil, err
	}
	for _, s := range samples {
		if h := int(s.Hour.Sub(from) / time.Hour); h >= 0 && h < n {
			pu.internal[h] = s.GPUs
		}
	}
	if hi <= lo {
		return pu, nil
	}
	ls, err := e.store.Leases(ctx, LeaseFilter{Pool: pool})
	if err != nil {
		return nil, err
	}
	for _, l := range ls {
		pu.kinds[l.ID] = l.Kind
	}
	as, err := e.store.Allocations(ctx, AllocationFilter{EndAfter: from, NodeFrom: lo, NodeTo: hi})
	if err != nil {
		return nil, err
	}
	for _, a := range as {
		if _, ok := pu.kinds[a.LeaseID]; ok && a.Start.Before(to) {
			pu.allocs = append(pu.allocs, a)
		}
	}
	return pu, nil
}

// count adds the allocations' GPUs (each in every hour it touches, as the
// calendars count) and the idle GPUs left of healthy; c is read-locked.
func (pu *pastUse) count(c *capState, healthy int64) {
	n := len(pu.internal)
	diff := map[lease.Kind][]int64{lease.Contract: make([]int64, n+1), lease.Reservation: make([]int64, n+1), lease.Spot: make([]int64, n+1)}
	for _, a := range pu.allocs {
		d := diff[pu.kinds[a.LeaseID]]
		if d == nil {
			continue
		}
		s := max(int(a.Start.Sub(pu.from)/time.Hour), 0) // an earlier start counts from 0
		e := min(int(ceilHour(a.End).Sub(pu.from)/time.Hour), n)
		if s >= e {
			continue
		}
		g := c.runGPUs(a.NodeFrom, a.NodeTo)
		d[s] += g
		d[e] -= g
	}
	var ct, rs, sp int64
	for h := range n {
		ct += diff[lease.Contract][h]
		rs += diff[lease.Reservation][h]
		sp += diff[lease.Spot][h]
		pu.contract[h], pu.reservation[h], pu.spot[h] = ct, rs, sp
		pu.idle[h] = healthy - pu.internal[h] - ct - rs - sp
	}
}

// TenantSummary is a tenant with its counts of live leases (admitted, not
// cancelled, not ended) and keys.
type TenantSummary struct {
	tenant.Tenant
	LiveLeases       int
	Keys, ActiveKeys int
}

// TenantSummaries returns the tenants p may see (all for operators, its
// own for a tenant), by ID, each with its live leases and keys counted
// from the capacity state and one read of the keys.
func (e *Engine) TenantSummaries(ctx context.Context, p tenant.Principal) ([]TenantSummary, error) {
	ts, err := e.Tenants(ctx, p)
	if err != nil {
		return nil, err
	}
	keys, err := e.store.Keys(ctx, KeyFilter{TenantID: p.Scope(), IncludeRevoked: true})
	if err != nil {
		return nil, err
	}
	out := make([]TenantSummary, len(ts))
	idx := make(map[string]int, len(ts))
	for i, t := range ts {
		out[i] = TenantSummary{Tenant: t}
		idx[t.ID] = i
	}
	for _, k := range keys {
		if i, ok := idx[k.TenantID]; ok {
			out[i].Keys++
			if k.Active() {
				out[i].ActiveKeys++
			}
		}
	}
	now := e.clock.Now()
	err = e.readCap(ctx, func(c *capState) error {
		for _, l := range c.leases {
			if i, ok := idx[l.TenantID]; ok && l.State != lease.Cancelled && l.End.After(now) {
				out[i].LiveLeases++
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b TenantSummary) int { return cmp.Compare(a.ID, b.ID) })
	return out, nil
}

// TenantSummary returns tenant id with its live leases and keys counted:
// one read of that tenant's keys, not every tenant's. ErrNotFound for a
// missing tenant or, for a tenant key, another tenant.
func (e *Engine) TenantSummary(ctx context.Context, p tenant.Principal, id string) (TenantSummary, error) {
	t, err := e.Tenant(ctx, p, id)
	if err != nil {
		return TenantSummary{}, err
	}
	keys, err := e.store.Keys(ctx, KeyFilter{TenantID: t.ID, IncludeRevoked: true})
	if err != nil {
		return TenantSummary{}, err
	}
	out := TenantSummary{Tenant: t}
	for _, k := range keys {
		if k.TenantID == t.ID {
			out.Keys++
			if k.Active() {
				out.ActiveKeys++
			}
		}
	}
	now := e.clock.Now()
	err = e.readCap(ctx, func(c *capState) error {
		for _, l := range c.leases {
			if l.TenantID == t.ID && l.State != lease.Cancelled && l.End.After(now) {
				out.LiveLeases++
			}
		}
		return nil
	})
	return out, err
}

// PoolRef names a pool of the fleet: its ID (site/MODEL), site and GPU
// model.
type PoolRef struct{ ID, Site, Model string }

// PoolRefs returns the pools of the nodes in service, by ID, from the
// capacity state: the pool selectors' list, without counting nodes as
// Pools does.
func (e *Engine) PoolRefs(ctx context.Context, p tenant.Principal) ([]PoolRef, error) {
	if err := e.check(ctx, p, tenant.PermFleetRead, "pools.list", "pools", ""); err != nil {
		return nil, err
	}
	var out []PoolRef
	err := e.readCap(ctx, func(c *capState) error {
		for id, pc := range c.pools {
			if pc.nodes == 0 {
				continue
			}
			site, model, _ := strings.Cut(id, "/") // site names are slugs
			out = append(out, PoolRef{ID: id, Site: site, Model: model})
		}
		return nil
	})
	slices.SortFunc(out, func(a, b PoolRef) int { return cmp.Compare(a.ID, b.ID) })
	return out, err
}

package engine

import (
	"cmp"
	"container/heap"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/neocloud/neocloud/internal/event"
	"github.com/neocloud/neocloud/internal/fleet"
	"github.com/neocloud/neocloud/internal/handover"
	"github.com/neocloud/neocloud/internal/lease"
	"github.com/neocloud/neocloud/internal/money"
	"github.com/neocloud/neocloud/internal/placement"
	"github.com/neocloud/neocloud/internal/spot"
	"github.com/neocloud/neocloud/internal/valid"
)

// Spot, reclaim and hand-over in the capacity state (docs/spot-reclaim.md).
//
// A spot lease holds its nodes from the moment it is admitted until the
// tenant ends it, its end, or a reclaim: then its allocations end at the
// release time, at least its notice tier after the notice. Guaranteed
// admission counts ignore spot (free = healthy − holdback − guaranteed);
// when placement finds no nodes because spot holds them, the spot holds
// that can be released by the lease's start (their notice fits before it)
// are set aside, placement runs again, and the spot leases whose nodes it
// picks are reclaimed. Spot itself is admitted on what is idle now:
// healthy − guaranteed − the owner's actual use − a buffer − spot.

// DefaultSpotBase is the spot base price per GPU-hour (the price at 50%
// utilization, before the notice tier's premium) by GPU model, from the
// open-market prices in FLEET.md; other models get DefaultSpotBaseOther.
var DefaultSpotBase = map[string]money.Money{
	"H100-SXM": money.USD(2_100_000),
	"H200-SXM": money.USD(2_600_000),
	"GB200":    money.USD(4_550_000), // $9.1 per superchip of 2 GPUs
}

// DefaultSpotBaseOther is the base price of a model DefaultSpotBase lacks.
var DefaultSpotBaseOther = money.USD(2_000_000)

// RebalancePermille is the headroom, in thousandths of a pool's healthy
// GPUs, under which the leases next in line for a reclaim get a
// best-effort rebalance event: the owner's demand is closing in.
const RebalancePermille = 20

// policy returns pool p's spot policy.
func (c *capState) policy(p *poolCap) spot.Policy {
	if p.policy != nil {
		return *p.policy
	}
	pol := c.lookupPolicy(p)
	p.policy = &pol
	return pol
}

// lookupPolicy finds pool p's spot policy: the pool's, else its model's,
// else the default over its model's base price.
func (c *capState) lookupPolicy(p *poolCap) spot.Policy {
	model := p.id[strings.IndexByte(p.id, '/')+1:]
	if pol, ok := c.spotPolicy[p.id]; ok {
		return pol
	}
	if pol, ok := c.spotPolicy[model]; ok {
		return pol
	}
	base, ok := DefaultSpotBase[model]
	if !ok {
		base = DefaultSpotBaseOther
	}
	return spot.DefaultPolicy(base)
}

// price returns the price of the notice tier named tier, zero for none.
func (st PoolNow) price(tier string) money.Money {
	for _, t := range st.Prices {
		if t.Tier == tier {
			return t.Price
		}
	}
	return money.Money{}
}

// PoolNow is a pool's capacity at one instant, in GPUs, and its spot
// prices.
type PoolNow struct {
	Pool       string
	At         time.Time
	Healthy    int64
	Guaranteed int64 // contract and reservation allocations this hour
	Contract   int64
	Internal   int64 // the owner's own use, as last reported
	Spot       int64 // held by spot leases now
	SpotLive   int64 // of Spot, held by leases not under a reclaim notice
	Buffer     int64 // never sold as spot
	Sanitizing int64 // GPUs of nodes being wiped
	// SpotIdle is what spot may still take: healthy − guaranteed −
	// internal − buffer − spot, at least 0.
	SpotIdle int64
	// UtilizationPermille is (internal + guaranteed + spot) / healthy.
	UtilizationPermille int64
	// Prices are the spot price per GPU-hour of each notice tier now.
	Prices []TierPrice
	// SpotByTier is the GPUs held by spot leases now, by tier name.
	SpotByTier map[string]int64
}

// TierPrice is a notice tier's price per GPU-hour now.
type TierPrice struct {
	Tier   string
	Notice time.Duration
	Price  money.Money
}

// poolNow returns p's capacity at now. It only reads c: readers call it
// under the capacity read lock.
func (c *capState) poolNow(p *poolCap, now time.Time) PoolNow {
	return c.poolNowEach(p, now, false, nil)
}

// poolNowEach is poolNow that also tells each, when set, every spot lease
// of the pool with the GPUs it holds (one pass for reclaimForOwner). With
// keep (the writer only), the spot leases remember the GPUs they hold
// (spotLease.held), so that the next call needs no allocation of theirs.
func (c *capState) poolNowEach(p *poolCap, now time.Time, keep bool, each func(l *lease.Lease, gpus int64)) PoolNow {
	s := max(c.floor(now), 0)
	pol := c.policy(p)
	st := PoolNow{Pool: p.id, At: now, Healthy: p.healthy.At(s), Contract: p.contract.At(s),
		Internal: p.internal, SpotByTier: map[string]int64{}}
	reservation := p.reservation.At(s)
	if sp := c.split[p.id]; sp.slot == s {
		// Runs split by a failure this hour count twice in it.
		st.Contract = max(st.Contract-sp.contract, 0)
		reservation = max(reservation-sp.reservation, 0)
	}
	st.Guaranteed = st.Contract + reservation
	for _, sl := range p.spotLeases {
		l := sl.Lease
		g := c.spotHeld(sl, now, keep)
		st.Spot += g
		st.SpotByTier[l.Notice] += g
		if l.Noticed.IsZero() {
			st.SpotLive += g
		}
		if each != nil {
			each(l, g)
		}
	}
	st.Sanitizing = p.sanitizing
	st.Buffer = (st.Healthy*pol.BufferPermille + 999) / 1000
	st.SpotIdle = max(pol.Sellable(st.Healthy, st.Guaranteed, st.Internal)-st.Spot, 0)
	st.UtilizationPermille = spot.Utilization(st.Internal+st.Guaranteed+st.Spot, st.Healthy)
	for _, t := range pol.Tiers {
		price, _ := pol.Price(st.UtilizationPermille, t.Name)
		st.Prices = append(st.Prices, TierPrice{Tier: t.Name, Notice: t.Notice, Price: price})
	}
	return st
}

// heldGPUs returns the GPUs lease l holds at now.
func (c *capState) heldGPUs(l *lease.Lease, now time.Time) int64 {
	g, _ := c.heldSpan(l, now)
	return g
}

// spotLease is a live spot lease of a pool, with the GPUs it holds over
// a span of time in which none of its allocations starts or ends: every
// admission, tick and reading of the spot market counts the pool's spot
// leases, which would otherwise read their allocations each time.
type spotLease struct {
	*lease.Lease
	held heldCount // zero: not known
}

// heldCount is what a lease holds over [from, to) (to zero: for ever).
type heldCount struct {
	gpus     int64
	from, to time.Time
	known    bool
}

func (h heldCount) covers(t time.Time) bool {
	return h.known && !t.Before(h.from) && (h.to.IsZero() || t.Before(h.to))
}

// spotHeld returns the GPUs sl holds at now, from what it remembers when
// that covers now; with keep it remembers what it read.
func (c *capState) spotHeld(sl *spotLease, now time.Time, keep bool) int64 {
	if sl.held.covers(now) {
		return sl.held.gpus
	}
	g, h := c.heldSpan(sl.Lease, now)
	if keep {
		sl.held = h
	}
	return g
}

// heldSpan returns the GPUs lease l holds at now, and the span around now
// over which it holds as many: up to the next start or end of one of its
// allocations, from the last before now.
func (c *capState) heldSpan(l *lease.Lease, now time.Time) (int64, heldCount) {
	h := heldCount{known: true}
	until := func(t time.Time) { // the span ends by t
		if h.to.IsZero() || t.Before(h.to) {
			h.to = t
		}
	}
	since := func(t time.Time) { // the span starts at t or later
		if t.After(h.from) {
			h.from = t
		}
	}
	for _, aid := range c.byLease[l.ID] {
		switch a := c.allocs[aid]; {
		case now.Before(a.Start):
			until(a.Start)
		case now.Before(a.End):
			h.gpus += c.runGPUs(a.NodeFrom, a.NodeTo)
			since(a.Start)
			until(a.End)
		default:
			since(a.End)
		}
	}
	return h.gpus, h
}

// allocsChanged forgets what spot lease l remembers holding: one of its
// allocations was added, ended or removed.
func (c *capState) allocsChanged(l *lease.Lease) {
	if l.Kind != lease.Spot {
		return
	}
	if p := c.pools[l.Pool]; p != nil {
		if sl := p.spotLeases[l.ID]; sl != nil {
			sl.held = heldCount{}
		}
	}
}

// resolveSpot fills a spot lease's terms: it starts now, runs until the
// horizon when no end is given, and takes the pool's shortest notice tier
// when none is named.
func (c *capState) resolveSpot(now time.Time, p *poolCap, r lease.Request, l *lease.Lease, e *valid.Error) {
	l.Start = now
	if l.End.IsZero() {
		l.End = c.horizonEnd(now)
	}
	l.MaxPrice = r.MaxPrice
	pol := c.policy(p)
	l.Notice = r.Notice
	if l.Notice == "" && len(pol.Tiers) > 0 {
		l.Notice = pol.Tiers[0].Name
	}
	if _, ok := pol.Tier(l.Notice); !ok {
		names := make([]string, len(pol.Tiers))
		for i, t := range pol.Tiers {
			names[i] = t.Name
		}
		e.Add("notice", r.Notice, "must be one of pool %s's notice tiers %v", p.id, names)
	}
}

// notice returns spot lease l's notice period.
func (c *capState) notice(l *lease.Lease) time.Duration {
	if p := c.pools[l.Pool]; p != nil {
		if t, ok := c.policy(p).Tier(l.Notice); ok {
			return t.Notice
		}
	}
	return 0
}

// placeSpot admits spot lease l on what is idle now: its price and the
// idle GPUs are checked, then nodes are placed over its whole window when
// they are free that long, else over the notice period (plus an hour) —
// so that no guaranteed allocation starts on them within the notice — and
// the lease then ends where the first of its nodes is booked; it is told
// so at once (l.Noticed). keep is poolNowEach's (on the writer, admitting).
func (c *capState) placeSpot(now time.Time, p *poolCap, l *lease.Lease, keep bool) ([]placement.Plan, *Refusal) {
	st := c.poolNowEach(p, now, keep, nil)
	pol := c.policy(p)
	tier, _ := pol.Tier(l.Notice)
	price, err := pol.Price(st.UtilizationPermille, l.Notice)
	if err != nil {
		return nil, &Refusal{Reason: "price", Detail: err.Error()}
	}
	if l.MaxPrice.Micros < price.Micros {
		return nil, &Refusal{Reason: "price", Detail: fmt.Sprintf(
			"the %s spot price in pool %s is %s per GPU-hour at %.1f%% utilization, above max_price %s",
			l.Notice, p.id, price, float64(st.UtilizationPermille)/10, l.MaxPrice)}
	}
	need := int64(l.MaxGPUs())
	if need > st.SpotIdle {
		return nil, &Refusal{Reason: "capacity", Detail: fmt.Sprintf(
			"pool %s has %d GPUs idle for spot now; %d asked", p.id, st.SpotIdle, need)}
	}
	// The longest window, of a few, over which nodes are free and power
	// has room; the shortest is the notice (at least an hour), so that no
	// guaranteed allocation starts on them within it.
	req := placement.Request{Pool: l.Pool, Nodes: int(need / int64(p.gpusPerNode)), Start: now,
		Packing: l.Packing, Isolation: l.Isolation, TenantID: l.TenantID}
	var plan placement.Plan
	err = nil
	for _, w := range []time.Duration{0, 30 * 24 * time.Hour, 7 * 24 * time.Hour, 24 * time.Hour, max(tier.Notice, time.Hour)} {
		req.End = l.End
		if w > 0 && now.Add(w).Before(l.End) {
			req.End = now.Add(w)
		} else if w > 0 {
			continue
		}
		if plan, err = placement.Place(c.ix, req); err == nil {
			break
		}
	}
	if err != nil {
		if pe, ok := err.(*placement.Error); ok {
			return nil, &Refusal{Reason: string(pe.Reason), Detail: pe.Detail}
		}
		return nil, &Refusal{Reason: "topology", Detail: err.Error()}
	}
	if req.End.Before(l.End) {
		// The lease runs while its nodes stay free and power has room,
		// and is told at once when that ends.
		end := l.End
		for _, o := range plan.Nodes {
			for _, h := range c.ix.HoldsOn(o, now) {
				if h.Start.After(now) && h.Start.Before(end) {
					end = h.Start
				}
			}
		}
		if !c.ix.PowerFits(plan.Nodes, now, end) {
			end = req.End
		}
		if end.Before(l.End) {
			l.End = end
			l.Noticed = now
			l.Reason = "reclaim scheduled: its nodes are booked or their power is committed from " + end.UTC().Format(time.RFC3339)
		}
	}
	return []placement.Plan{plan}, nil
}

// reclaimable returns pool p's spot holds that can be released by
// start: those of leases not already under notice whose notice period,
// given now, ends by start — in victim order (spot.Victims).
func (c *capState) reclaimable(now time.Time, p *poolCap, start time.Time) []*lease.Lease {
	var out []*lease.Lease
	for _, sl := range p.spotLeases {
		if l := sl.Lease; l.Noticed.IsZero() && !now.Add(c.notice(l)).After(start) {
			out = append(out, l)
		}
	}
	slices.SortFunc(out, victimOrder)
	return out
}

// victimOrder orders spot leases as spot.Victims does: lowest maximum
// price first, then the newest, then by ID.
func victimOrder(a, b *lease.Lease) int {
	return cmp.Or(cmp.Compare(a.MaxPrice.Micros, b.MaxPrice.Micros), b.Start.Compare(a.Start), cmp.Compare(a.ID, b.ID))
}

// setAside takes the holds of leases ls out of the placement index and
// returns them, by lease.
func (c *capState) setAside(now time.Time, ls []*lease.Lease) (map[string][]placement.Hold, error) {
	out := map[string][]placement.Hold{}
	for _, l := range ls {
		for _, aid := range c.byLease[l.ID] {
			a := c.allocs[aid]
			if !a.End.After(now) {
				continue
			}
			if err := c.ix.Remove(aid); err != nil {
				return nil, err
			}
			out[l.ID] = append(out[l.ID], hold(l, a))
		}
	}
	return out, nil
}

// putBack returns holds to the index, ended at until when it is earlier
// than their end (zero: as they were).
func (c *capState) putBack(hs []placement.Hold, until time.Time) error {
	for _, h := range hs {
		if !until.IsZero() && until.Before(h.End) {
			if !until.After(h.Start) {
				continue
			}
			h.End = until
		}
		if err := c.ix.Add(h); err != nil {
			return fmt.Errorf("put back spot hold %s: %w", h.ID, err)
		}
	}
	return nil
}

// fitsReclaiming is fits for a guaranteed lease that spot holds stand in
// the way of: with the spot holds that can be released by l's start set
// aside, it places l; the spot leases whose nodes the plans take are the
// victims, each released at the first start of a segment that takes one of
// its nodes. When the power budgets then lack room (the others are back in
// full), more spot leases, in victim order, are released at l's start
// until they have it. In the index the victims' holds end at their
// release: the caller reclaims them (commit) or they are put back as they
// were. The refusal's earliest start is searched with the spot set aside.
// It returns nothing at all when no spot lease can be released in time.
func (c *capState) fitsReclaiming(now time.Time, p *poolCap, l *lease.Lease, commit bool) ([]placement.Plan, []victim, *Refusal, error) {
	for _, s := range l.Segments() {
		if from, to := c.floor(s.Start), c.ceil(s.End); from < 0 || to > c.slots || p.free.Min(from, to) < int64(s.GPUs) {
			return nil, nil, nil, nil // the counts refuse it: spot is not what stands in the way
		}
	}
	cands := c.reclaimable(now, p, l.Start)
	if len(cands) == 0 {
		return nil, nil, nil, nil
	}
	aside, err := c.setAside(now, cands)
	if err != nil {
		return nil, nil, nil, err
	}
	restore := func(victims []victim) error {
		for _, v := range victims {
			for _, h := range aside[v.lease.ID] {
				if err := c.ix.Remove(h.ID); err != nil && !errors.Is(err, placement.ErrNotFound) {
					return err
				}
			}
			delete(aside, v.lease.ID)
			if err := c.putBack(c.holdsOf(v.lease, now), time.Time{}); err != nil {
				return err
			}
		}
		return nil
	}
	plans, ref := c.fits(p, l, 0, fitPlace)
	if ref != nil {
		ref.EarliestStart = c.earliest(now, p, l)
		for _, v := range cands {
			if err := c.putBack(aside[v.ID], time.Time{}); err != nil {
				return nil, nil, nil, err
			}
		}
		return nil, nil, ref, nil
	}
	segs := l.Segments()
	var victims []victim
	isVictim := map[string]bool{}
	for _, v := range cands {
		release := time.Time{}
		for _, h := range aside[v.ID] {
			for i, pl := range plans {
				s := segs[i]
				if !s.Start.Before(h.End) || !h.Start.Before(s.End) {
					continue
				}
				if slices.ContainsFunc(pl.Nodes, func(o int64) bool { return o >= h.NodeFrom && o < h.NodeTo }) &&
					(release.IsZero() || s.Start.Before(release)) {
					release = s.Start
				}
			}
		}
		if !release.IsZero() {
			victims = append(victims, victim{lease: v, release: release})
			isVictim[v.ID] = true
		}
	}
	for _, v := range cands {
		if !isVictim[v.ID] {
			if err := c.putBack(aside[v.ID], time.Time{}); err != nil {
				return nil, nil, nil, err
			}
		}
	}
	for _, v := range victims {
		if err := c.putBack(aside[v.lease.ID], v.release); err != nil {
			return nil, nil, nil, err
		}
	}
	powerOK := func() bool {
		for i, pl := range plans {
			if !c.ix.PowerFits(pl.Nodes, segs[i].Start, segs[i].End) {
				return false
			}
		}
		return true
	}
	for _, v := range cands {
		if powerOK() {
			break
		}
		if isVictim[v.ID] {
			continue
		}
		for _, h := range aside[v.ID] {
			if err := c.ix.End(h.ID, l.Start); err != nil {
				return nil, nil, nil, err
			}
		}
		victims = append(victims, victim{lease: v, release: l.Start})
		isVictim[v.ID] = true
	}
	if !powerOK() {
		if err := restore(victims); err != nil {
			return nil, nil, nil, err
		}
		return nil, nil, &Refusal{Reason: "power", Detail: fmt.Sprintf(
			"pool %s: the power domains lack room over the window even with the spot leases that can be released by %s reclaimed",
			p.id, l.Start.UTC().Format(time.RFC3339))}, nil
	}
	if !commit {
		if err := restore(victims); err != nil {
			return nil, nil, nil, err
		}
	}
	return plans, victims, nil, nil
}

// holdsOf returns lease l's holds in the index's terms, from its
// allocations ending after now.
func (c *capState) holdsOf(l *lease.Lease, now time.Time) []placement.Hold {
	var out []placement.Hold
	for _, aid := range c.byLease[l.ID] {
		if a := c.allocs[aid]; a.End.After(now) {
			out = append(out, hold(l, a))
		}
	}
	return out
}

// victim is a spot lease to reclaim, released at release.
type victim struct {
	lease   *lease.Lease
	release time.Time
}

// reclaim gives spot lease l notice at now: its allocations end at
// release (at least its notice after now, as the callers choose it), the
// lease records the notice, and the tenant gets a spot.reclaim event.
func (c *capState) reclaim(now time.Time, l *lease.Lease, release time.Time, why string, eff *effect) error {
	if release.Before(now.Add(c.notice(l))) {
		return fmt.Errorf("reclaim %s: release %s is within the %s notice", l.ID, release.Format(time.RFC3339), l.Notice)
	}
	if !release.Before(l.End) {
		return nil // it ends by itself by then: nothing to reclaim
	}
	ch := changes{at: release}
	gpus := c.heldGPUs(l, now)
	for _, aid := range slices.Clone(c.byLease[l.ID]) {
		a := c.allocs[aid]
		if !a.End.After(release) {
			continue
		}
		if _, err := c.endAlloc(l, a, release); err != nil {
			return fmt.Errorf("reclaim %s: %w", l.ID, err)
		}
		ch.ends = append(ch.ends, aid)
	}
	l.End = release
	l.Noticed, l.Reason = now, "reclaimed: "+why
	eff.more = append(eff.more, ch)
	eff.leases = append(eff.leases, *l)
	eff.events = append(eff.events, event.New(now, event.SpotReclaim, l.TenantID, l.ID, map[string]any{
		"pool": l.Pool, "gpus": gpus, "notice": l.Notice, "release_at": release.UTC(), "reason": why}))
	c.reclaims++
	return nil
}

// reclaimForOwner reclaims spot in pool p until the owner's use, the
// guaranteed leases and the spot not under notice fit the healthy GPUs
// with the buffer to spare, in victim order, each released after its
// notice; then it sends rebalance events to the next leases in line when
// the headroom is under RebalancePermille.
func (c *capState) reclaimForOwner(now time.Time, p *poolCap, eff *effect) error {
	var holders []spot.Holder
	byID := map[string]*lease.Lease{}
	st := c.poolNowEach(p, now, true, func(l *lease.Lease, gpus int64) {
		if l.Noticed.IsZero() {
			byID[l.ID] = l
			holders = append(holders, spot.Holder{LeaseID: l.ID, GPUs: gpus, MaxPrice: l.MaxPrice, Start: l.Start, Tier: l.Notice})
		}
	})
	need := st.Internal + st.Guaranteed + st.SpotLive + st.Buffer - st.Healthy
	slices.SortFunc(holders, func(a, b spot.Holder) int { return cmp.Compare(a.LeaseID, b.LeaseID) })
	// Outbid: the price of its tier rose above the lease's maximum.
	for _, h := range c.policy(p).Outbid(holders, st.UtilizationPermille) {
		price := st.price(h.Tier)
		l := byID[h.LeaseID]
		if err := c.reclaim(now, l, now.Add(c.notice(l)), fmt.Sprintf("outbid: the %s price is %s per GPU-hour, above max_price %s", l.Notice, price, l.MaxPrice), eff); err != nil {
			return err
		}
		need -= h.GPUs
		delete(byID, h.LeaseID)
	}
	holders = slices.DeleteFunc(holders, func(h spot.Holder) bool { return byID[h.LeaseID] == nil })
	victims, _ := spot.Victims(holders, need)
	var why string
	if len(victims) > 0 { // most calls reclaim nothing: no reason to write
		// Tenants read this reason (events, the lease): it says nothing of
		// the owner's use; the operator's audit entry has the figures.
		why = "the owner needs its capacity back"
	}
	for _, h := range victims {
		l := byID[h.LeaseID]
		if err := c.reclaim(now, l, now.Add(c.notice(l)), why, eff); err != nil {
			return err
		}
		delete(byID, h.LeaseID)
	}
	holders = slices.DeleteFunc(holders, func(h spot.Holder) bool { return byID[h.LeaseID] == nil })
	// Rebalance: the next in line, once each.
	want := st.Healthy * RebalancePermille / 1000
	headroom := -need
	if victims != nil {
		headroom = 0
	}
	if headroom < want {
		next, _ := spot.Victims(slices.DeleteFunc(holders, func(h spot.Holder) bool { return c.rebalanced[h.LeaseID] }), want-headroom)
		for _, h := range next {
			c.rebalanced[h.LeaseID] = true
			l := byID[h.LeaseID]
			eff.events = append(eff.events, event.New(now, event.SpotRebalance, l.TenantID, l.ID, map[string]any{
				"pool": l.Pool, "gpus": h.GPUs, "notice": l.Notice,
				"reason": fmt.Sprintf("pool %s has %d GPUs of headroom before spot is reclaimed", p.id, max(headroom, 0))}))
		}
	}
	return nil
}

// setInternal records the owner's use of pool now and reclaims spot for it.
func (c *capState) setInternal(now time.Time, pool string, gpus int64) (*effect, error) {
	p := c.pools[pool]
	var e valid.Error
	if p == nil {
		e.Add("pool", pool, "must be a pool of the fleet (site/MODEL)")
		return nil, e.Err()
	}
	if gpus < 0 || gpus > int64(p.physical) {
		e.Add("gpus", gpus, "must be between 0 and the pool's %d GPUs", p.physical)
		return nil, e.Err()
	}
	p.internal = gpus
	eff := &effect{}
	if err := c.reclaimForOwner(now, p, eff); err != nil {
		return nil, err
	}
	return eff, nil
}

// endHeap orders allocation ends, earliest first, so that the tick finds
// the nodes released since the last one.
type endHeap []allocEnd

type allocEnd struct {
	at time.Time
	id string
}

func (h endHeap) Len() int { return len(h) }
func (h endHeap) Less(i, j int) bool {
	return h[i].at.Before(h[j].at) || h[i].at.Equal(h[j].at) && h[i].id < h[j].id
}
func (h endHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *endHeap) Push(x any)   { *h = append(*h, x.(allocEnd)) }
func (h *endHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// noteEnd records that allocation a ends at a.End.
func (c *capState) noteEnd(a lease.Allocation) {
	heap.Push(&c.ends, allocEnd{at: a.End, id: a.ID})
}

// tick brings the capacity state to now: nodes whose allocations ended
// are wiped (hand-over), wipes that have lasted their time end, spot
// leases whose release came are gone, and every pool's spot is checked
// against the owner's use and prices.
func (c *capState) tick(now time.Time) (*effect, error) {
	eff := &effect{}
	c.releaseDue(now, eff)
	// Wipes that have lasted their time.
	var done []int64
	for o, n := range c.wiping {
		// A node out of service finishes its wipe after its repair
		// (setNodeState starts it again then).
		if n2, ok := n.Tick(c.handover, now); ok && n2.State == handover.Available && schedulable(c.ordNode(o).state) {
			done = append(done, o)
		}
	}
	slices.Sort(done)
	// Runs whose wipe is over go at once (node by node would split them).
	for _, o := range done {
		if id, ok := c.wipeHold[o]; ok {
			if h := c.wipeRuns[id]; !h.End.After(now) {
				c.removeWipeHold(id)
			}
		}
	}
	wiped := map[string][]string{} // pool → nodes
	for _, o := range done {
		if n, ok := c.sanitized(o, now); ok {
			wiped[n.pool.id] = append(wiped[n.pool.id], n.name)
		}
	}
	for _, pool := range slices.Sorted(maps.Keys(wiped)) {
		eff.events = append(eff.events, sanitizedEvent(now, pool, wiped[pool]))
	}
	// Spot leases whose release came.
	var gone []*lease.Lease
	for _, p := range c.pools {
		for _, sl := range p.spotLeases {
			if !sl.End.After(now) {
				gone = append(gone, sl.Lease)
			}
		}
	}
	slices.SortFunc(gone, func(a, b *lease.Lease) int { return cmp.Compare(a.ID, b.ID) })
	for _, l := range gone {
		delete(c.pools[l.Pool].spotLeases, l.ID)
		delete(c.rebalanced, l.ID)
		if !l.Noticed.IsZero() {
			eff.events = append(eff.events, event.New(now, event.SpotReleased, l.TenantID, l.ID, map[string]any{
				"pool": l.Pool, "released_at": l.End.UTC(), "reason": l.Reason}))
		}
	}
	if now.Sub(c.pruned) >= pruneEvery {
		c.prune(now)
	}
	ids := make([]string, 0, len(c.pools))
	for id := range c.pools {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		if err := c.reclaimForOwner(now, c.pools[id], eff); err != nil {
			return nil, err
		}
	}
	return eff, nil
}

// releaseDue starts the wipe of the nodes whose allocations ended by now.
// Admission calls it first, so that no node is placed between its release
// and the next tick without a wipe.
func (c *capState) releaseDue(now time.Time, eff *effect) {
	for len(c.ends) > 0 && !c.ends[0].at.After(now) {
		x := heap.Pop(&c.ends).(allocEnd)
		a, ok := c.allocs[x.id]
		if !ok || !a.End.Equal(x.at) || !x.at.After(c.loaded) {
			continue
		}
		c.releaseRun(a.NodeFrom, a.NodeTo, a.TenantID, a.End, eff)
	}
}

// releaseRun starts the wipe of the nodes [from, to) that tenantID held
// until at, with one placement hold per run of them: each node, unless the
// same tenant holds it on (then it keeps its data: no hand-over).
func (c *capState) releaseRun(from, to int64, tenantID string, at time.Time, eff *effect) {
	var nodes []int64
	for o := from; o < to; o++ {
		// A node out of service (failed under the tenant) is wiped too,
		// once repaired.
		if c.ordNode(o).pool != nil && !c.heldBy(o, tenantID, at) {
			nodes = append(nodes, o)
		}
	}
	for _, run := range lease.Runs(nodes) {
		c.startWipes(run[0], run[1], tenantID, at)
		eff.wipes += int(run[1] - run[0])
	}
}

// startWipes puts the nodes [from, to) (all in byOrd) in sanitizing from
// at, after tenantID held them. Wipes are kept in memory only: they follow
// from the allocations, which are stored (loadCapacity restarts the wipes
// of allocations that ended within the hand-over time), so that the
// fleet's nodes are not rewritten on every release. A confirmation lost to
// a restart wipes again: safe.
//
// Placement sees a wipe as a hold of the nodes over the wipe time (by the
// tenant that left, so that another's dedicated leaf stays closed
// meanwhile): it places nothing on them until then, and anything after.
// One hold covers the run; where it cannot (an allocation already starts
// on a node within the wipe time — a reclaim for a guaranteed lease — and
// the new holder's delivery waits for the wipe instead), each node gets
// its own, or none.
func (c *capState) startWipes(from, to int64, tenantID string, at time.Time) {
	// The node's state stays as it was in byOrd (and in the store): being
	// wiped is c.wiping (GET /v1/nodes shows it), so that a release
	// rewrites no node.
	for o := from; o < to; o++ {
		ho := handover.Node{State: handover.Assigned, Holder: tenantID, Since: at}
		ho, _ = ho.Release(at)
		ho, _ = ho.Released(at)
		if _, already := c.wiping[o]; !already {
			c.ordNode(o).pool.sanitizing += c.runGPUs(o, o+1)
		}
		c.wiping[o] = ho
		c.dropWipeHold(o, at)
	}
	end := at.Add(max(c.handover.Sanitize, time.Minute))
	if c.addWipeHold(from, to, tenantID, at, end) || to-from == 1 {
		return
	}
	for o := from; o < to; o++ {
		c.addWipeHold(o, o+1, tenantID, at, end)
	}
}

// addWipeHold adds one hold over nodes [from, to) for [start, end) and
// reports whether the index took it.
func (c *capState) addWipeHold(from, to int64, tenantID string, start, end time.Time) bool {
	c.wipeSeq++
	h := placement.Hold{ID: wipeHoldPrefix + strconv.FormatInt(c.wipeSeq, 10), LeaseID: wipeHoldPrefix, TenantID: tenantID,
		NodeFrom: from, NodeTo: to, Start: start, End: end}
	if c.ix.Add(h) != nil {
		return false
	}
	c.wipeRuns[h.ID] = h
	for o := from; o < to; o++ {
		c.wipeHold[o] = h.ID
	}
	return true
}

// removeWipeHold removes wipe hold id from the index and its nodes.
func (c *capState) removeWipeHold(id string) {
	h := c.wipeRuns[id]
	delete(c.wipeRuns, id)
	_ = c.ix.Remove(id)
	for o := h.NodeFrom; o < h.NodeTo; o++ {
		if c.wipeHold[o] == id {
			delete(c.wipeHold, o)
		}
	}
}

// dropWipeHold takes node o out of its wipe hold, if any: the hold goes,
// and the other nodes of its run get holds of their own parts again.
func (c *capState) dropWipeHold(o int64, now time.Time) {
	id, ok := c.wipeHold[o]
	if !ok {
		return
	}
	h := c.wipeRuns[id]
	c.removeWipeHold(id)
	if !h.End.After(now) {
		return
	}
	for _, part := range [][2]int64{{h.NodeFrom, o}, {o + 1, h.NodeTo}} {
		if part[0] < part[1] {
			c.addWipeHold(part[0], part[1], h.TenantID, h.Start, h.End)
		}
	}
}

// wipeHoldPrefix names the placement holds of wipes (no lease has it).
const wipeHoldPrefix = "wipe:"

// sanitized ends node o's wipe: the node is available again (false when
// it left service meanwhile).
func (c *capState) sanitized(o int64, now time.Time) (ordNode, bool) {
	_, wiping := c.wiping[o]
	c.endWipe(o, now)
	on := c.ordNode(o)
	switch {
	case on.state == fleet.Sanitizing:
		// A store of an earlier version kept the state: it ends here.
		n := c.byOrd[o]
		n.State = fleet.Available
		c.setNode(n)
		_ = c.ix.SetSchedulable(o, true)
		return on, true
	case wiping && schedulable(on.state):
		return on, true
	}
	return ordNode{}, false
}

// maxEventNodes bounds the node names one node.sanitized event lists.
const maxEventNodes = 100

// sanitizedEvent is the operators' event for nodes of pool whose wipe
// ended at now: their count and the first maxEventNodes names.
func sanitizedEvent(now time.Time, pool string, nodes []string) event.Event {
	return event.New(now, event.NodeSanitized, "", "", map[string]any{"pool": pool, "count": len(nodes), "nodes": nodes[:min(len(nodes), maxEventNodes)]})
}

// endWipe forgets node o's wipe at now; its placement hold goes (holds in
// the past constrain nothing).
func (c *capState) endWipe(o int64, now time.Time) {
	c.dropWipeHold(o, now)
	if _, ok := c.wiping[o]; ok {
		delete(c.wiping, o)
		if p := c.ordNode(o).pool; p != nil {
			p.sanitizing -= c.runGPUs(o, o+1)
		}
	}
}

// heldBy reports whether tenantID holds node o at at (it keeps the node).
func (c *capState) heldBy(o int64, tenantID string, at time.Time) bool {
	for _, h := range c.ix.HoldsOn(o, at) {
		if h.TenantID == tenantID && !h.Start.After(at) && h.LeaseID != wipeHoldPrefix {
			return true
		}
	}
	return false
}

// splitCount is the GPUs of a pool's guaranteed runs that a failure split
// in one hourly slot: the calendars count them twice there (both parts
// touch it), which is safe for admission; poolNow subtracts them.
type splitCount struct {
	slot                  int
	contract, reservation int64
}

// noteSplit records a run of gpus of a lease of kind k split at now in
// pool.
func (c *capState) noteSplit(pool string, k lease.Kind, now time.Time, gpus int64) {
	s := c.floor(now)
	sp := c.split[pool]
	if sp.slot != s {
		sp = splitCount{slot: s}
	}
	if k == lease.Contract {
		sp.contract += gpus
	} else {
		sp.reservation += gpus
	}
	c.split[pool] = sp
}

// pruneEvery is how often the tick forgets what ended: allocations and
// leases that ended more than pruneAfter ago leave the placement index
// and the maps (the calendars keep their counts; the store keeps them all),
// so that a long-running engine places as fast on its first day as on its
// thousandth.
const (
	pruneEvery = 24 * time.Hour
	pruneAfter = time.Hour
)

// prune forgets the allocations and leases that ended before now −
// pruneAfter.
func (c *capState) prune(now time.Time) {
	c.pruned = now
	before := now.Add(-pruneAfter)
	// Only the leases that lost allocations have IDs to drop (a contract
	// has thousands of allocations, which are not read again here).
	pruned := map[string]bool{}
	for id, a := range c.allocs {
		if a.End.After(before) {
			continue
		}
		_ = c.ix.Remove(id)
		delete(c.allocs, id)
		pruned[a.LeaseID] = true
	}
	for id, ids := range c.byLease {
		if pruned[id] {
			ids = slices.DeleteFunc(ids, func(aid string) bool { _, ok := c.allocs[aid]; return !ok })
			c.byLease[id] = ids
		}
		if len(ids) == 0 {
			delete(c.byLease, id)
		}
	}
	for id, l := range c.leases {
		if !l.End.After(before) && len(c.byLease[id]) == 0 {
			delete(c.leases, id)
		}
	}
	// Spot leases read what they hold again, without what was forgotten.
	for _, p := range c.pools {
		for _, sl := range p.spotLeases {
			sl.held = heldCount{}
		}
	}
}

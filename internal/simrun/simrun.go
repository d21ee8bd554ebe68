// Package simrun runs the real engine on virtual time: a fleet, the
// owner's demand (a year of history, then the simulated months), the
// anchor contract, reservation and spot arrivals, node failures and
// maintenance, hour by hour, and measures what happened (internal/sim's
// points, summary, baseline and report). The same seed gives the same
// summary, byte for byte: the engine's clock is a fake one and its lease
// IDs come from a seeded generator.
package simrun

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/neocloud/neocloud/internal/billing"
	"github.com/neocloud/neocloud/internal/clock"
	"github.com/neocloud/neocloud/internal/demand"
	"github.com/neocloud/neocloud/internal/engine"
	"github.com/neocloud/neocloud/internal/event"
	"github.com/neocloud/neocloud/internal/fleet"
	"github.com/neocloud/neocloud/internal/forecast"
	"github.com/neocloud/neocloud/internal/lease"
	"github.com/neocloud/neocloud/internal/money"
	"github.com/neocloud/neocloud/internal/sim"
	"github.com/neocloud/neocloud/internal/store/sqlite"
	"github.com/neocloud/neocloud/internal/tenant"
	"github.com/neocloud/neocloud/internal/unit"
	"github.com/neocloud/neocloud/internal/valid"
)

// Config is one simulation.
type Config struct {
	Fleet     *fleet.Spec
	FleetName string // for the summary
	Months    int
	Seed      uint64
	Scenario  Scenario
	// Dir holds the scratch database; a temporary directory when empty.
	Dir string
	// Progress, when set, is told the virtual time reached each hour.
	Progress func(at time.Time)

	// Live runs on an existing engine (the demo's server) instead of a
	// scratch one: its fleet is used (Fleet may be nil), tenants that exist
	// are kept, the simulation starts at the next whole hour of Clock,
	// whose Set paces the run (clock.Scaled waits). Admin acts for it.
	Engine *engine.Engine
	Clock  Clock
	Admin  tenant.Principal
}

// Clock is the simulation's time: Set moves it (a fake clock) or waits
// for it (an accelerated one).
type Clock interface {
	Now() time.Time
	Set(t time.Time)
}

// Result is what a simulation measured.
type Result struct {
	Summary  sim.Summary
	Points   []sim.Point
	Baseline []sim.Point
}

// MaxMonths bounds one simulation.
const MaxMonths = 36

// tenants of the simulation.
const (
	anchorTenant = "rival-lab"
	resTenants   = 4
	spotTenants  = 8
)

// runner is one simulation's state.
type runner struct {
	cfg   Config
	sc    Scenario
	eng   *engine.Engine
	clk   Clock
	live  bool
	admin tenant.Principal
	rng   *rand.Rand
	pools []poolRun
	start time.Time
	hours int

	pending  []queued
	older    int // pending[:older] were queued before the last hour's end
	commands int64
	spotOK   int64
	spotNo   int64
	resOK    int64
	resNo    int64
	failures []int // per hour
}

// poolRun is one pool's inputs.
type poolRun struct {
	fleet.Pool
	gpn      int64
	actual   []int64 // the owner's demand, per simulated hour
	holdback []engine.HoldbackStep
	resPrice money.Money // per GPU-hour
	spotBase money.Money
	contract int64 // GPUs of the contract's final step
	maxHB    int64
}

// Run runs one simulation.
func Run(ctx context.Context, cfg Config) (Result, error) {
	var v valid.Error
	if cfg.Fleet == nil && cfg.Engine == nil {
		v.Add("fleet", nil, "is required")
	}
	if cfg.Engine != nil && cfg.Clock == nil {
		v.Add("clock", nil, "is required with an engine")
	}
	if cfg.Months < 1 || cfg.Months > MaxMonths {
		v.Add("months", cfg.Months, "must be between 1 and %d", MaxMonths)
	}
	sc := cfg.Scenario.withDefaults()
	if cfg.Engine != nil {
		sc.Start = cfg.Clock.Now().UTC().Truncate(time.Hour).Add(time.Hour)
	}
	if err := sc.Validate(&v); err != nil {
		return Result{}, err
	}
	if err := v.Err(); err != nil {
		return Result{}, err
	}
	start := sc.Start.UTC().Truncate(time.Hour)
	if cfg.Engine != nil {
		r := &runner{cfg: cfg, sc: sc, eng: cfg.Engine, clk: cfg.Clock, admin: cfg.Admin, live: true,
			rng: rand.New(rand.NewPCG(cfg.Seed, 0x5eed)), start: start}
		return r.run(ctx)
	}
	dir := cfg.Dir
	if dir == "" {
		d, err := os.MkdirTemp("", "neocloud-sim-")
		if err != nil {
			return Result{}, err
		}
		defer os.RemoveAll(d)
		dir = d
	}
	st, err := sqlite.OpenScratch(ctx, filepath.Join(dir, "sim.db"))
	if err != nil {
		return Result{}, err
	}
	defer st.Close()
	clk := clock.NewFake(start)
	seed := [32]byte{}
	for i := range 8 {
		seed[i] = byte(cfg.Seed >> (8 * i))
	}
	eng, err := engine.New(engine.Config{Store: st, Clock: clk, Rand: rand.NewChaCha8(seed)})
	if err != nil {
		return Result{}, err
	}
	defer eng.Close()
	r := &runner{cfg: cfg, sc: sc, eng: eng, clk: clk, admin: tenant.Principal{KeyID: "simulator", Role: tenant.OperatorAdmin},
		rng: rand.New(rand.NewPCG(cfg.Seed, 0x5eed)), start: start}
	return r.run(ctx)
}

// run runs the simulation on r's engine.
func (r *runner) run(ctx context.Context) (Result, error) {
	cfg := r.cfg
	start := r.start
	r.hours = int(start.AddDate(0, cfg.Months, 0).Sub(start) / time.Hour)
	if err := r.setup(ctx); err != nil {
		return Result{}, err
	}
	points, err := r.loop(ctx)
	if err != nil {
		return Result{}, err
	}
	if err := r.countReclaims(ctx, points); err != nil {
		return Result{}, err
	}
	base, err := r.baseline(points)
	if err != nil {
		return Result{}, err
	}
	s, err := sim.NewSummary(cfg.FleetName, cfg.Seed, cfg.Months, points, base)
	if err != nil {
		return Result{}, err
	}
	s.Engine = map[string]int64{"commands": r.commands, "spot_leases": r.spotOK, "spot_refused": r.spotNo,
		"reservations": r.resOK, "reservations_refused": r.resNo, "pools": int64(len(r.pools))}
	for _, p := range r.pools {
		s.Engine["contract_gpus/"+p.ID] = p.contract
		s.Engine["peak_holdback_gpus/"+p.ID] = p.maxHB
	}
	return Result{Summary: s, Points: points, Baseline: base}, nil
}

// setup applies the fleet, creates the tenants, imports a year of the
// owner's demand, sets the holdback from its forecast and books the
// anchor contract.
func (r *runner) setup(ctx context.Context) error {
	if r.cfg.Fleet != nil {
		if _, err := r.eng.ApplyFleet(ctx, r.admin, r.cfg.Fleet, false); err != nil {
			return fmt.Errorf("simulate: apply fleet: %w", err)
		}
	}
	ids := []string{anchorTenant}
	for i := range resTenants {
		ids = append(ids, fmt.Sprintf("blocks-%d", i+1))
	}
	for i := range spotTenants {
		ids = append(ids, fmt.Sprintf("spot-%d", i+1))
	}
	for _, id := range ids {
		if _, err := r.eng.CreateTenant(ctx, r.admin, tenant.Tenant{ID: id}); err != nil && !(r.live && errors.Is(err, tenant.ErrExists)) {
			return fmt.Errorf("simulate: tenant %s: %w", id, err)
		}
	}
	pools, err := r.eng.Pools(ctx, "")
	if err != nil {
		return err
	}
	histHours := 52 * 7 * 24
	for i, p := range pools {
		if p.Nodes == 0 || p.GPUs == 0 {
			continue
		}
		pr := poolRun{Pool: p, gpn: int64(p.GPUs) / p.Nodes}
		g := float64(p.GPUs)
		d := r.sc.Demand
		syn := forecast.Synth{Start: r.start.Add(-time.Duration(histHours) * time.Hour), Hours: histHours + r.hours,
			Seed: r.cfg.Seed*100 + uint64(i), Base: d.Base * g, TrendPerYear: d.TrendPerYear * g, Daily: d.Daily * g,
			PeakHour: d.PeakHour, Weekend: d.Weekend * g,
			Noise:  forecast.Noise{Dist: forecast.Normal, SD: d.NoiseSD * g, AR: 0.8},
			Bursts: forecast.Bursts{PerWeek: d.BurstsPerWeek, Hours: 8, GPUs: d.Burst * g}}
		pts, err := syn.Generate()
		if err != nil {
			return fmt.Errorf("simulate: demand of %s: %w", p.ID, err)
		}
		var hist []demand.Sample
		for j, pt := range pts {
			gpus := min(max(int64(pt.GPUs+0.5), 0), int64(p.GPUs))
			if j < histHours {
				hist = append(hist, demand.Sample{Pool: p.ID, Hour: pt.At, GPUs: gpus})
			} else {
				pr.actual = append(pr.actual, gpus)
			}
		}
		for chunk := range slices.Chunk(hist, engine.MaxDemandSamples) {
			if _, err := r.eng.ImportDemand(ctx, r.admin, chunk); err != nil {
				return fmt.Errorf("simulate: demand history of %s: %w", p.ID, err)
			}
		}
		plan, err := r.eng.PlanHoldback(ctx, r.admin, p.ID, r.cfg.Months+1, r.sc.Holdback)
		if err != nil {
			return fmt.Errorf("simulate: holdback of %s: %w", p.ID, err)
		}
		pr.holdback = plan.Steps
		for _, s := range pr.holdback {
			pr.maxHB = max(pr.maxHB, int64(s.GPUs))
		}
		model := p.Model
		pr.spotBase = engine.DefaultSpotBase[model]
		if pr.spotBase.IsZero() {
			pr.spotBase = engine.DefaultSpotBaseOther
		}
		if pr.resPrice, err = pr.spotBase.MulRatio(r.sc.Reservations.PricePermille, 1000); err != nil {
			return err
		}
		r.pools = append(r.pools, pr)
	}
	if len(r.pools) == 0 {
		return errors.New("simulate: the fleet has no pool with GPUs")
	}
	return r.bookContract(ctx)
}

// bookContract books the anchor contract: in every pool, Share of what the
// holdback's peak leaves, in MW (facility power), at half that for the
// discounted months while capacity comes online.
func (r *runner) bookContract(ctx context.Context) error {
	c := r.sc.Contract
	if c.Share == 0 {
		return nil
	}
	end := c.End
	if horizon := r.start.Add(engine.DefaultHorizon); end.After(horizon) {
		end = horizon
	}
	start := r.start
	if next := r.clk.Now().UTC().Truncate(time.Hour).Add(time.Hour); r.live && next.After(start) {
		start = next // the live clock ran on during the setup
	}
	var booked []lease.Lease
	var power []int64
	for i := range r.pools {
		p := &r.pools[i]
		surplus := max(int64(p.GPUs)-p.maxHB, 0)
		nodes := int64(math.Floor(c.Share*float64(surplus))) / p.gpn
		if nodes < 2 {
			continue
		}
		perNode := p.FacilityPower / unit.Power(p.Nodes)
		full := unit.Power(nodes) * perNode
		steps := []lease.Step{{From: start, Power: full / 2}}
		if ramp := r.start.AddDate(0, c.DiscountMonths, 0); c.DiscountMonths > 0 && ramp.After(start) && ramp.Before(end) {
			steps = append(steps, lease.Step{From: ramp, Power: full})
		} else {
			steps[0].Power = full
		}
		res, err := r.eng.RequestLease(ctx, r.admin, anchorTenant, lease.Request{Kind: lease.Contract, Pool: p.ID,
			Start: start, End: end, Schedule: steps})
		if err != nil {
			return fmt.Errorf("simulate: anchor contract in %s (%d nodes): %w", p.ID, nodes, err)
		}
		p.contract = int64(res.Lease.MaxGPUs())
		booked = append(booked, res.Lease)
		power = append(power, int64(full))
	}
	return r.priceContract(ctx, booked, power)
}

// priceContract attaches the anchor contract's price plan to its leases
// (one per pool): the monthly fee shared in proportion to each lease's
// full power (the last takes the rounding remainder, so that the shares
// add up to the fee exactly), the discounted months, and the SLA credit
// tiers of shared/FLEET.md (10% below 99.5%, 30% below 99.0%, 100% below
// 95.0%, capped at 50% of the month). Invoices then bill the story's $40B.
func (r *runner) priceContract(ctx context.Context, leases []lease.Lease, power []int64) error {
	c := r.sc.Contract
	var total int64
	for _, w := range power {
		total += w
	}
	given := money.New(0, c.MonthlyFee.Currency)
	for i, l := range leases {
		fee, err := c.MonthlyFee.MulRatio(power[i], total)
		if err != nil {
			return fmt.Errorf("simulate: contract fee: %w", err)
		}
		if i == len(leases)-1 {
			if fee, err = c.MonthlyFee.Sub(given); err != nil {
				return fmt.Errorf("simulate: contract fee: %w", err)
			}
		}
		if given, err = given.Add(fee); err != nil {
			return fmt.Errorf("simulate: contract fee: %w", err)
		}
		plan := billing.Plan{Kind: lease.Contract, Currency: fee.Currency, Fee: &billing.Fee{Basis: billing.PerMonth, Rate: fee},
			SLA: &billing.SLATerms{TargetPPM: 995_000, CapBP: 5000, Tiers: []billing.CreditTier{
				{BelowPPM: 995_000, CreditBP: 1000}, {BelowPPM: 990_000, CreditBP: 3000}, {BelowPPM: 950_000, CreditBP: 10_000}}}}
		first := time.Date(r.start.Year(), r.start.Month(), 1, 0, 0, 0, 0, time.UTC)
		for m := range c.DiscountMonths {
			if month := first.AddDate(0, m, 0); month.Before(l.End) && !month.Before(time.Date(l.Start.Year(), l.Start.Month(), 1, 0, 0, 0, 0, time.UTC)) {
				plan.Discounts = append(plan.Discounts, billing.Discount{Month: month, BasisPoints: c.DiscountPermille * 10})
			}
		}
		if err := r.eng.SetPlan(ctx, r.admin, l.ID, plan); err != nil {
			return fmt.Errorf("simulate: anchor contract plan in %s: %w", l.Pool, err)
		}
	}
	return nil
}

// event is a node changing state at a time.
type nodeEvent struct {
	at    time.Time
	node  string
	state fleet.State
}

// loop runs the hours and returns one point per hour.
func (r *runner) loop(ctx context.Context) ([]sim.Point, error) {
	nodes, err := r.eng.Nodes(ctx, engine.NodeFilter{})
	if err != nil {
		return nil, err
	}
	names := make([]string, len(nodes))
	for i, n := range nodes {
		names[i] = n.Name
	}
	end := r.start.Add(time.Duration(r.hours) * time.Hour)
	outs, err := r.sc.Failures.Outages(names, r.start, end, r.cfg.Seed)
	if err != nil {
		return nil, fmt.Errorf("simulate: failures: %w", err)
	}
	var evs []nodeEvent
	r.failures = make([]int, r.hours)
	for _, o := range outs {
		st := fleet.Failed
		if o.Kind == sim.Maintenance {
			st = fleet.Maintenance
		} else {
			r.failures[int(o.Start.Sub(r.start)/time.Hour)]++
		}
		evs = append(evs, nodeEvent{o.Start, o.Node, st})
		if o.End.Before(end) {
			evs = append(evs, nodeEvent{o.End, o.Node, fleet.Available})
		}
	}
	slices.SortStableFunc(evs, func(a, b nodeEvent) int { return a.at.Compare(b.at) })
	next := 0
	applyUntil := func(t time.Time) error {
		for ; next < len(evs) && !evs[next].at.After(t); next++ {
			ev := evs[next]
			r.clk.Set(ev.at)
			pend, err := r.eng.SubmitNodeState(ctx, r.admin, ev.node, ev.state, "simulated "+string(ev.state))
			if err := r.queue(pend, err, "node "+ev.node+" "+string(ev.state), nil); err != nil {
				return err
			}
		}
		return nil
	}
	points := make([]sim.Point, 0, r.hours)
	first := 0
	if r.live {
		// The live clock ran on during the setup: start at its next hour.
		first = min(int(r.clk.Now().Sub(r.start)/time.Hour)+1, r.hours)
	}
	for h := first; h < r.hours; h++ {
		t := r.start.Add(time.Duration(h) * time.Hour)
		if err := applyUntil(t); err != nil {
			return nil, err
		}
		r.clk.Set(t)
		if h > first && t.Day() == 1 && t.Hour() == 0 {
			// Replanning reads and writes the store outside the command
			// queue: what was queued before it is committed first.
			if err := r.flush(); err != nil {
				return nil, err
			}
			if err := r.replan(ctx, first, h); err != nil {
				return nil, err
			}
		}
		if err := r.hourStart(ctx, h, t); err != nil {
			return nil, err
		}
		if err := r.sync(ctx); err != nil {
			return nil, err
		}
		if err := r.fillSpot(ctx, t); err != nil {
			return nil, err
		}
		mid := t.Add(30 * time.Minute)
		if err := applyUntil(mid); err != nil {
			return nil, err
		}
		r.clk.Set(mid)
		if err := r.queue(r.eng.SubmitTick(ctx), nil, "tick", nil); err != nil {
			return nil, err
		}
		if err := r.sync(ctx); err != nil {
			return nil, err
		}
		pt, err := r.measure(ctx, h, t)
		if err != nil {
			return nil, err
		}
		points = append(points, pt)
		// The answers of the hour before this one: the store has committed
		// them by now, most often.
		if err := r.answered(); err != nil {
			return nil, err
		}
		if r.cfg.Progress != nil {
			r.cfg.Progress(t.Add(time.Hour))
		}
	}
	if err := r.flush(); err != nil {
		return nil, err
	}
	return points, nil
}

// replan runs at the start of each month (hour h): the owner's measured
// demand of the past month joins the history, and the holdback is set
// again from a forecast fitted to it, as an operator would (a holdback
// fixed a year ahead misses where the demand went).
func (r *runner) replan(ctx context.Context, first, h int) error {
	from := max(first, h-24*31)
	for i := range r.pools {
		p := &r.pools[i]
		samples := make([]demand.Sample, 0, h-from)
		for k := from; k < h; k++ {
			samples = append(samples, demand.Sample{Pool: p.ID, Hour: r.start.Add(time.Duration(k) * time.Hour), GPUs: p.actual[k]})
		}
		if len(samples) > 0 {
			r.commands++
			if _, err := r.eng.ImportDemand(ctx, r.admin, samples); err != nil {
				return fmt.Errorf("simulate: demand of %s: %w", p.ID, err)
			}
		}
		t := r.start.Add(time.Duration(h) * time.Hour)
		elapsed := (t.Year()-r.start.Year())*12 + int(t.Month()) - int(r.start.Month())
		r.commands++
		plan, err := r.eng.PlanHoldback(ctx, r.admin, p.ID, min(max(r.cfg.Months-elapsed, 1)+1, engine.MaxSellableMonths), r.sc.Holdback)
		if err != nil {
			return fmt.Errorf("simulate: holdback of %s: %w", p.ID, err)
		}
		p.holdback = plan.Steps
	}
	return nil
}

// queued is a command submitted and not yet answered; then, when set,
// takes its answer (and decides which errors are fatal).
type queued struct {
	pend engine.Pending
	what string
	then func(v any, err error) error
}

// queue adds a submitted command. Commands are pipelined: the engine
// applies them in order and commits those that arrive while it commits
// others together (group commit). The simulation reads the engine's
// capacity once they are applied (sync), and takes their answers, in
// order, an hour later (answered) or at flush.
func (r *runner) queue(pend engine.Pending, err error, what string, then func(v any, err error) error) error {
	if err != nil {
		return fmt.Errorf("simulate: %s: %w", what, err)
	}
	r.commands++
	r.pending = append(r.pending, queued{pend, what, then})
	return nil
}

// sync waits until the queued commands are applied, so that what the
// simulation reads next (SpotMarkets) sees them; their answers wait.
// Waiting for the commit instead would commit every step on its own.
func (r *runner) sync(ctx context.Context) error {
	if err := r.eng.Sync(ctx); err != nil {
		return fmt.Errorf("simulate: sync: %w", err)
	}
	return nil
}

// answered takes the answers of the commands queued before the last call
// (an hour ago), waiting for those not answered yet.
func (r *runner) answered() error {
	err := r.take(r.older)
	r.older = len(r.pending)
	return err
}

// flush waits for the queued commands' answers.
func (r *runner) flush() error {
	err := r.take(len(r.pending))
	r.older = 0
	return err
}

// take waits for the answers of the first n queued commands, in order,
// and drops them from the queue.
func (r *runner) take(n int) error {
	defer func() {
		k := copy(r.pending, r.pending[n:])
		clear(r.pending[k:]) // the answers' closures
		r.pending = r.pending[:k]
	}()
	for _, q := range r.pending[:n] {
		v, err := q.pend.Wait()
		if q.then != nil {
			err = q.then(v, err)
		}
		if err != nil {
			return fmt.Errorf("simulate: %s: %w", q.what, err)
		}
	}
	return nil
}

// hourStart: the owner's use this hour, the tick, reservations arriving.
func (r *runner) hourStart(ctx context.Context, h int, t time.Time) error {
	for _, p := range r.pools {
		pend, err := r.eng.SubmitInternalUse(ctx, r.admin, p.ID, p.actual[h])
		if err := r.queue(pend, err, "internal use of "+p.ID, nil); err != nil {
			return err
		}
	}
	if err := r.queue(r.eng.SubmitTick(ctx), nil, "tick", nil); err != nil {
		return err
	}
	return r.reservations(ctx, t)
}

// reservations books the blocks that arrive this hour (Poisson per pool).
func (r *runner) reservations(ctx context.Context, t time.Time) error {
	rs := r.sc.Reservations
	for _, p := range r.pools {
		n := poisson(r.rng, rs.PerDay/24)
		for range n {
			nodes := int64(rs.MinNodes + r.rng.IntN(rs.MaxNodes-rs.MinNodes+1))
			days := rs.MinDays + r.rng.IntN(rs.MaxDays-rs.MinDays+1)
			lead := time.Duration(1+r.rng.IntN(rs.LeadDays*24+1)) * time.Hour
			start := t.Add(lead)
			req := lease.Request{Kind: lease.Reservation, Pool: p.ID, Start: start, End: start.Add(time.Duration(days) * 24 * time.Hour),
				GPUs: unit.GPUs(nodes * p.gpn)}
			who := fmt.Sprintf("blocks-%d", 1+r.rng.IntN(resTenants))
			pend, err := r.eng.SubmitLease(ctx, r.admin, who, req)
			err = r.queue(pend, err, "reservation in "+p.ID, func(_ any, err error) error {
				var ref *engine.Refusal
				switch {
				case err == nil:
					r.resOK++
				case errors.As(err, &ref):
					r.resNo++
				default:
					return err
				}
				return nil
			})
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// fillSpot lets spot buyers take what is idle: each draws a size, a
// notice tier, a maximum price and how long it will stay, and bids only
// at or above the price it reads.
func (r *runner) fillSpot(ctx context.Context, t time.Time) error {
	ms, err := r.eng.SpotMarkets(ctx, r.admin, "")
	if err != nil {
		return err
	}
	sp := r.sc.Spot
	for i, p := range r.pools {
		m := ms[slices.IndexFunc(ms, func(m engine.SpotMarket) bool { return m.Pool == p.ID })]
		idle := m.SpotIdle
		for tries := 0; tries < sp.AttemptsPerHour && idle >= int64(sp.MinNodes)*p.gpn; tries++ {
			nodes := int64(sp.MinNodes + r.rng.IntN(sp.MaxNodes-sp.MinNodes+1))
			gpus := min(nodes*p.gpn, idle/p.gpn*p.gpn)
			tier := pickTier(r.rng, sp.TierShares)
			mult := sp.MaxPriceMin + r.rng.Float64()*(sp.MaxPriceMax-sp.MaxPriceMin)
			maxPrice, err := r.pools[i].spotBase.MulRatio(int64(mult*1000), 1000)
			if err != nil {
				return err
			}
			stay := max(time.Duration(r.rng.ExpFloat64()*sp.MeanHours*float64(time.Hour)).Truncate(time.Minute), time.Hour)
			from := t
			if now := r.clk.Now(); r.live && now.After(from) {
				from = now // a live run behind its clock: the lease starts now
			}
			who := fmt.Sprintf("spot-%d", 1+r.rng.IntN(spotTenants))
			if k := slices.IndexFunc(m.Prices, func(tp engine.TierPrice) bool { return tp.Tier == tier }); k >= 0 && maxPrice.Micros < m.Prices[k].Price.Micros {
				r.spotNo++
				continue
			}
			idle -= gpus
			// Buyers ask for their stay (rounded up to the hour): the lease
			// ends by itself unless reclaimed first.
			pend, err := r.eng.SubmitLease(ctx, r.admin, who, lease.Request{Kind: lease.Spot, Pool: p.ID, GPUs: unit.GPUs(gpus),
				MaxPrice: maxPrice, Notice: tier, End: from.Add(stay + time.Hour - 1).Truncate(time.Hour)})
			err = r.queue(pend, err, "spot in "+p.ID, func(_ any, err error) error {
				var ref *engine.Refusal
				switch {
				case err == nil:
					r.spotOK++
				case errors.As(err, &ref):
					r.spotNo++
				default:
					return err
				}
				return nil
			})
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// measure reads the engine at mid-hour: one point for hour h.
func (r *runner) measure(ctx context.Context, h int, t time.Time) (sim.Point, error) {
	ms, err := r.eng.SpotMarkets(ctx, r.admin, "")
	if err != nil {
		return sim.Point{}, err
	}
	pt := sim.Point{At: t, Failures: r.failures[h], ContractUSD: money.USD(0), ReservationUSD: money.USD(0), SpotUSD: money.USD(0)}
	for _, p := range r.pools {
		m := ms[slices.IndexFunc(ms, func(m engine.SpotMarket) bool { return m.Pool == p.ID })]
		internal := p.actual[h]
		reservation := m.Guaranteed - m.Contract
		room := max(m.Healthy-m.Guaranteed-m.Spot-m.Sanitizing, 0)
		met := min(internal, room)
		// Waiting beyond notice: what neither the spot under (or given)
		// notice nor the nodes being wiped after their release will serve.
		// The wipe (invariant 4) follows the notice: the owner's demand may
		// wait for both.
		late := max(internal-met-m.Spot-m.Sanitizing, 0)
		pt.Healthy += m.Healthy
		pt.Internal += internal
		pt.InternalMet += met
		pt.InternalLate += late
		pt.Holdback += int64(engine.HoldbackAt(p.holdback, t))
		pt.Contract += m.Contract
		pt.Reservation += reservation
		pt.Spot += m.Spot
		pt.Sanitizing += m.Sanitizing
		rv, err := p.resPrice.Mul(reservation)
		if err != nil {
			return sim.Point{}, err
		}
		if pt.ReservationUSD, err = pt.ReservationUSD.Add(rv); err != nil {
			return sim.Point{}, err
		}
		for _, tp := range m.Prices {
			v, err := tp.Price.Mul(m.SpotByTier[tp.Tier])
			if err != nil {
				return sim.Point{}, err
			}
			if pt.SpotUSD, err = pt.SpotUSD.Add(v); err != nil {
				return sim.Point{}, err
			}
		}
	}
	fee, err := r.contractFee(t)
	if err != nil {
		return sim.Point{}, err
	}
	pt.ContractUSD = fee
	return pt, nil
}

// contractFee is the anchor contract's fee accrued over hour t: the
// month's fee (discounted in the first months) spread over its hours.
func (r *runner) contractFee(t time.Time) (money.Money, error) {
	c := r.sc.Contract
	if c.Share == 0 || !t.Before(c.End) {
		return money.USD(0), nil
	}
	fee := c.MonthlyFee
	month := time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
	if month.Before(r.start.AddDate(0, c.DiscountMonths, 0)) {
		var err error
		if fee, err = fee.MulRatio(1000-c.DiscountPermille, 1000); err != nil {
			return money.Money{}, err
		}
	}
	// The month's hours k share the fee as fee×(k+1)/n − fee×k/n: they
	// add up to it exactly.
	hours := int64(month.AddDate(0, 1, 0).Sub(month) / time.Hour)
	k := int64(t.Sub(month) / time.Hour)
	hi, err := fee.MulRatio(k+1, hours)
	if err != nil {
		return money.Money{}, err
	}
	lo, err := fee.MulRatio(k, hours)
	if err != nil {
		return money.Money{}, err
	}
	return hi.Sub(lo)
}

// countReclaims adds the reclaim notices of each hour, from the events.
func (r *runner) countReclaims(ctx context.Context, points []sim.Point) error {
	var after int64
	for {
		evs, err := r.eng.Events(ctx, r.admin, after, 1000)
		if err != nil {
			return err
		}
		if len(evs) == 0 {
			return nil
		}
		for _, ev := range evs {
			after = ev.Seq
			if ev.Type != event.SpotReclaim {
				continue
			}
			h := int(ev.At.Sub(r.start) / time.Hour)
			if h < 0 || h >= len(points) {
				continue
			}
			var d struct {
				GPUs int64 `json:"gpus"`
			}
			_ = json.Unmarshal(ev.Data, &d)
			points[h].Reclaims++
			points[h].ReclaimedGPUs += d.GPUs
		}
	}
}

// baseline is the static partition: on top of the same contract, each
// pool leases a fixed block of what its peak holdback leaves, as
// reservations at the pool's rate, and never takes it back.
func (r *runner) baseline(points []sim.Point) ([]sim.Point, error) {
	var fixed int64
	var rate money.Money = money.USD(0)
	var weighted float64
	for _, p := range r.pools {
		block := max(int64(p.GPUs)-p.maxHB-p.contract, 0)
		fixed += block
		weighted += float64(block) * float64(p.resPrice.Micros)
	}
	if fixed > 0 {
		rate = money.USD(int64(math.Round(weighted / float64(fixed))))
	}
	leased := make([]int64, len(points))
	for i := range leased {
		leased[i] = fixed
	}
	return sim.Baseline(points, leased, rate)
}

// poisson draws a Poisson count of mean lambda (Knuth; lambda is small).
func poisson(rng *rand.Rand, lambda float64) int {
	l, k, p := math.Exp(-lambda), 0, 1.0
	for {
		p *= rng.Float64()
		if p <= l {
			return k
		}
		k++
	}
}

func pickTier(rng *rand.Rand, shares map[string]float64) string {
	names := make([]string, 0, len(shares))
	total := 0.0
	for n, s := range shares {
		names = append(names, n)
		total += s
	}
	slices.Sort(names)
	x := rng.Float64() * total
	for _, n := range names {
		if x -= shares[n]; x < 0 {
			return n
		}
	}
	return names[len(names)-1]
}

// Name returns a fleet file's name for the summary.
func Name(path string) string {
	return strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))
}

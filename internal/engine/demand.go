package engine

import (
	"context"
	"fmt"
	"maps"
	"math"
	"slices"
	"time"

	"github.com/neocloud/neocloud/internal/demand"
	"github.com/neocloud/neocloud/internal/forecast"
	"github.com/neocloud/neocloud/internal/tenant"
	"github.com/neocloud/neocloud/internal/unit"
	"github.com/neocloud/neocloud/internal/valid"
)

// MaxDemandSamples bounds one import: a year of hours for eleven pools.
const MaxDemandSamples = 100_000

// ImportDemand stores the owner's measured internal demand: each sample
// replaces any stored for its pool and hour. Samples name pools of the
// fleet, whole UTC hours and 0 to demand.MaxSampleGPUs GPUs; a pool and
// hour given twice is refused. Bad input is a *valid.Error naming each
// sample's field (samples[i].pool, .hour, .gpus) and changes nothing.
func (e *Engine) ImportDemand(ctx context.Context, p tenant.Principal, samples []demand.Sample) (int, error) {
	if err := e.check(ctx, p, tenant.PermCapacityWrite, "demand.import", "demand", ""); err != nil {
		return 0, err
	}
	pools, err := e.store.Pools(ctx, "")
	if err != nil {
		return 0, err
	}
	now := e.clock.Now()
	known := map[string]bool{}
	physical := map[string]int64{}
	for _, pl := range pools {
		known[pl.ID] = true
		physical[pl.ID] = int64(pl.GPUs)
	}
	var issues valid.Error
	switch {
	case len(samples) == 0:
		issues.Add("samples", 0, "must hold at least one sample")
	case len(samples) > MaxDemandSamples:
		issues.Add("samples", len(samples), "must hold at most %d samples; split the import", MaxDemandSamples)
	}
	type key struct {
		pool string
		hour int64
	}
	first := map[key]int{}
	for i, s := range samples {
		if issues.Len() >= 20 {
			break
		}
		f := fmt.Sprintf("samples[%d]", i)
		if !known[s.Pool] {
			issues.Add(f+".pool", s.Pool, "must be a pool of the fleet (site/MODEL)")
		}
		if s.Hour.IsZero() || !s.Hour.Equal(s.Hour.Truncate(time.Hour)) {
			issues.Add(f+".hour", s.Hour.Format(time.RFC3339Nano), "must be a whole UTC hour")
		} else if s.Hour.After(now) {
			issues.Add(f+".hour", s.Hour.UTC().Format(time.RFC3339), "must not be after the current hour: demand is measured, not planned")
		}
		if s.GPUs < 0 || s.GPUs > demand.MaxSampleGPUs {
			issues.Add(f+".gpus", s.GPUs, "must be between 0 and %d", demand.MaxSampleGPUs)
		}
		k := key{s.Pool, s.Hour.Unix()}
		if j, dup := first[k]; dup {
			issues.Add(f+".hour", s.Hour.UTC().Format(time.RFC3339), "repeats samples[%d] of the same pool", j)
		} else {
			first[k] = i
		}
	}
	if err := issues.Err(); err != nil {
		return 0, err
	}
	err = e.write(ctx, p, func(tx Tx) (*tenant.AuditEntry, error) {
		if err := tx.UpsertDemand(ctx, samples); err != nil {
			return nil, err
		}
		return &tenant.AuditEntry{Action: "demand.import", Object: "demand",
			Detail: fmt.Sprintf("samples=%d pools=%d", len(samples), len(poolsOf(samples)))}, nil
	})
	if err != nil {
		return 0, err
	}
	// A sample of the current hour is the owner's use now: spot makes
	// room for it.
	hour := now.UTC().Truncate(time.Hour)
	current := map[string]int64{}
	for _, s := range samples {
		if s.Hour.Equal(hour) {
			current[s.Pool] = s.GPUs
		}
	}
	for _, pool := range slices.Sorted(maps.Keys(current)) {
		if _, err := e.SetInternalUse(ctx, p, pool, min(current[pool], physical[pool])); err != nil {
			return len(samples), fmt.Errorf("demand stored; internal use of %s now: %w", pool, err)
		}
	}
	return len(samples), nil
}

func poolsOf(samples []demand.Sample) map[string]bool {
	out := map[string]bool{}
	for _, s := range samples {
		out[s.Pool] = true
	}
	return out
}

// Demand returns pool's measured internal demand over [from, to) (a zero
// to means no end), ordered by hour; an empty slice when none is stored.
func (e *Engine) Demand(ctx context.Context, p tenant.Principal, pool string, from, to time.Time) ([]demand.Sample, error) {
	if err := e.check(ctx, p, tenant.PermCapacityRead, "demand.get", "demand", ""); err != nil {
		return nil, err
	}
	return e.store.Demand(ctx, pool, from, to)
}

// SellableReport is what a pool can still sell as guaranteed capacity,
// month by month, under a holdback policy.
type SellableReport struct {
	Pool   string
	Policy demand.Policy
	// HistoryHours and HistoryEnd describe the demand history the
	// forecast was fitted to.
	HistoryHours int
	HistoryEnd   time.Time
	Months       []demand.Month
}

// MaxSellableMonths bounds a sellable report: the forecast's horizon.
const MaxSellableMonths = 36

// Sellable fits the forecast to pool's stored demand history and reports,
// for the current month and the months-1 after it, the GPUs (and MW) that
// can still be promised as guaranteed capacity if the holdback followed
// pol: the pool's least healthy GPUs over the month, less the most held
// back under pol (the forecast's quantile peak plus the buffer), less the
// most already guaranteed (contracts and reservations); and the risk taken
// (expected hours and GPU-hours of internal demand above that holdback).
// Bad input is a *valid.Error; a pool with under two weeks of history
// names the rule.
func (e *Engine) Sellable(ctx context.Context, p tenant.Principal, pool string, months int, pol demand.Policy) (SellableReport, error) {
	if err := e.check(ctx, p, tenant.PermCapacityRead, "sellable.get", "pool/"+pool, ""); err != nil {
		return SellableReport{}, err
	}
	var v valid.Error
	if months < 1 || months > MaxSellableMonths {
		v.Add("months", months, "must be between 1 and %d", MaxSellableMonths)
	}
	if err := pol.Validate(); err != nil {
		return SellableReport{}, err
	}
	if err := v.Err(); err != nil {
		return SellableReport{}, err
	}
	pred, histLen, first, err := e.predict(ctx, pool, months)
	if err != nil {
		return SellableReport{}, err
	}
	hours := int(first.AddDate(0, months, 0).Sub(pred.Start()) / time.Hour)
	// Copy the calendars' figures out under the read lock; the report is
	// computed outside it.
	type capHour struct{ healthy, guaranteed int64 }
	caps := make([]capHour, hours)
	var perGPU unit.Power
	err = e.readCap(ctx, func(c *capState) error {
		pc := c.pools[pool]
		if pc == nil {
			var fv valid.Error
			fv.Add("pool", pool, "must be a pool of the fleet (site/MODEL)")
			return fv.Err()
		}
		perGPU = pc.nodeFacilityW / unit.Power(max(pc.gpusPerNode, 1))
		s0 := c.floor(pred.Start())
		for i := range caps {
			s := min(max(s0+i, 0), c.slots-1)
			caps[i] = capHour{pc.healthy.At(s), pc.contract.At(s) + pc.reservation.At(s)}
		}
		return nil
	})
	if err != nil {
		return SellableReport{}, err
	}
	steps, err := demand.Holdback(pred, pol, math.MaxInt64)
	if err != nil {
		return SellableReport{}, err
	}
	rows, err := demand.Sellable(pred, func(t time.Time) demand.Capacity {
		i := int(t.Sub(pred.Start()) / time.Hour)
		return demand.Capacity{Healthy: caps[i].healthy, Holdback: demand.At(steps, t), Guaranteed: caps[i].guaranteed}
	}, perGPU)
	if err != nil {
		return SellableReport{}, err
	}
	out := SellableReport{Pool: pool, Policy: pol, HistoryHours: histLen, HistoryEnd: pred.Start()}
	for _, m := range rows {
		if !m.Start.Before(first) {
			out.Months = append(out.Months, m)
		}
	}
	return out, nil
}

// predict fits the forecast to pool's stored demand history and predicts
// it from the history's end through the end of the month months after
// the current one began. It returns the prediction, the hours of history
// fitted and the current month's first instant; errors name the field.
func (e *Engine) predict(ctx context.Context, pool string, months int) (*forecast.Prediction, int, time.Time, error) {
	samples, err := e.store.Demand(ctx, pool, time.Time{}, time.Time{})
	if err != nil {
		return nil, 0, time.Time{}, err
	}
	hist := demand.History(samples, pool)
	if len(hist) > forecast.MaxHistory {
		hist = hist[len(hist)-forecast.MaxHistory:]
	}
	model, err := forecast.Fit(hist, forecast.Options{})
	if err != nil {
		var fv valid.Error
		fv.Add("pool", pool, "needs a demand history the forecast can fit (%d hours stored; at least %d, two weeks, without long gaps): %v",
			len(hist), forecast.MinHistory, err)
		return nil, 0, time.Time{}, fv.Err()
	}
	now := e.clock.Now().UTC()
	first := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC)
	end := first.AddDate(0, months, 0)
	if !end.After(model.End()) {
		var fv valid.Error
		fv.Add("months", months, "must reach past the end of the demand history (%s)", model.End().Format(time.RFC3339))
		return nil, 0, time.Time{}, fv.Err()
	}
	hours := int(end.Sub(model.End()) / time.Hour)
	if hours > forecast.MaxHorizon {
		var fv valid.Error
		fv.Add("pool", pool, "demand history ends %s: too long ago to forecast %d months from now; import recent history",
			model.End().Format(time.RFC3339), months)
		return nil, 0, time.Time{}, fv.Err()
	}
	pred, err := model.Predict(hours)
	if err != nil {
		return nil, 0, time.Time{}, err
	}
	return pred, len(hist), first, nil
}

// PlanHoldback sets pool's holdback schedule from its demand forecast
// under pol, month by month through months ahead (see demand.Holdback):
// the forecast drives the calendar. A month whose holdback the guaranteed
// leases already admitted leave no room for is set as high as they allow
// (never refused); the result says which steps were lowered.
func (e *Engine) PlanHoldback(ctx context.Context, p tenant.Principal, pool string, months int, pol demand.Policy) (PlannedHoldback, error) {
	if err := e.check(ctx, p, tenant.PermCapacityWrite, "holdback.plan", "pool/"+pool, ""); err != nil {
		return PlannedHoldback{}, err
	}
	var v valid.Error
	if months < 1 || months > MaxSellableMonths {
		v.Add("months", months, "must be between 1 and %d", MaxSellableMonths)
	}
	if err := pol.Validate(); err != nil {
		return PlannedHoldback{}, err
	}
	if err := v.Err(); err != nil {
		return PlannedHoldback{}, err
	}
	var physical int64 = -1
	_ = e.readCap(ctx, func(c *capState) error {
		if pc := c.pools[pool]; pc != nil {
			physical = int64(pc.physical)
		}
		return nil
	})
	if physical < 0 {
		var fv valid.Error
		fv.Add("pool", pool, "must be a pool of the fleet (site/MODEL)")
		return PlannedHoldback{}, fv.Err()
	}
	pred, _, _, err := e.predict(ctx, pool, months)
	if err != nil {
		return PlannedHoldback{}, err
	}
	ds, err := demand.Holdback(pred, pol, physical)
	if err != nil {
		return PlannedHoldback{}, err
	}
	want := make([]HoldbackStep, len(ds))
	for i, d := range ds {
		want[i] = HoldbackStep{From: d.From, GPUs: unit.GPUs(d.GPUs)}
	}
	ctx = withPrincipal(ctx, p)
	res, err := e.submit(ctx, func(c *capState, now time.Time, _ *leaseIDs) (*effect, any, error) {
		steps := c.clampHoldback(now, pool, want)
		if err := c.setHoldback(now, pool, steps); err != nil {
			return nil, nil, err
		}
		short := 0
		for i := range steps {
			if steps[i].GPUs < want[i].GPUs {
				short++
			}
		}
		return &effect{holdback: &holdbackChange{pool: pool, steps: steps}, audit: &tenant.AuditEntry{Action: "holdback.plan",
			Object: "pool/" + pool, Detail: fmt.Sprintf("quantile=%g buffer_permille=%d months=%d steps=%d clamped=%d",
				pol.Quantile, pol.BufferPermille, months, len(steps), short)}}, PlannedHoldback{Steps: steps, Wanted: want}, nil
	}).Wait()
	if err != nil {
		return PlannedHoldback{}, err
	}
	return res.(PlannedHoldback), nil
}

// PlannedHoldback is a holdback plan: the steps set, and the steps the
// policy wanted; a step set lower than wanted is as much as the
// guaranteed leases already admitted leave (the rest is risk taken).
type PlannedHoldback struct {
	Steps  []HoldbackStep
	Wanted []HoldbackStep
}

// clampHoldback returns steps each lowered to what the guaranteed leases
// admitted leave of pool's healthy GPUs over its span from now on, so that
// setting them is never refused.
func (c *capState) clampHoldback(now time.Time, pool string, steps []HoldbackStep) []HoldbackStep {
	p := c.pools[pool]
	out := slices.Clone(steps)
	if p == nil {
		return out
	}
	for i := range out {
		from := max(c.floor(out[i].From), c.floor(now), 0)
		to := c.slots
		if i+1 < len(out) {
			to = min(c.floor(out[i+1].From), c.slots)
		}
		for s := from; s < to; s++ {
			room := p.healthy.At(s) - p.contract.At(s) - p.reservation.At(s)
			out[i].GPUs = max(min(out[i].GPUs, unit.GPUs(room)), 0)
		}
	}
	return out
}

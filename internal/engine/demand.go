package engine

import (
	"context"
	"fmt"
	"time"

	"github.com/neocloud/neocloud/internal/demand"
	"github.com/neocloud/neocloud/internal/tenant"
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
	known := map[string]bool{}
	for _, pl := range pools {
		known[pl.ID] = true
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
	for i := range samples {
		samples[i].Hour = samples[i].Hour.UTC()
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

package lease

import (
	"fmt"
	"slices"
	"time"

	"github.com/neocloud/neocloud/internal/money"
	"github.com/neocloud/neocloud/internal/unit"
	"github.com/neocloud/neocloud/internal/valid"
)

// Request asks for a lease. Field names in errors are the API's JSON names.
type Request struct {
	Kind Kind
	// Pool is "site/MODEL".
	Pool string
	// Start is the first hour; spot leases start now and leave it zero.
	Start time.Time
	End   time.Time
	// GPUs is the size of a reservation or spot lease, or of a contract
	// without ramp steps.
	GPUs unit.GPUs
	// Schedule is a contract's ramp: the first step starts at Start.
	Schedule  []Step
	Packing   Packing   // "" = any
	Isolation Isolation // "" = shared-leaf
	// MaxPrice is a spot lease's highest price per GPU-hour: when the
	// price of its notice tier rises above it, the lease is reclaimed
	// (after notice). Required for spot, empty otherwise.
	MaxPrice money.Money
	// Notice is a spot lease's notice tier (e.g. "2m", "30m", "24h"; ""
	// = the shortest the pool offers). Empty for other kinds.
	Notice string
}

// MaxPriceMicros bounds a spot lease's maximum price: $10,000 per GPU-hour.
const MaxPriceMicros = 10_000_000_000

// MaxGPUs bounds one request; it keeps every product of GPUs and hours far
// from overflow.
const MaxGPUs unit.GPUs = 100_000_000

// Normalize fills defaults: packing any, isolation shared-leaf, and a
// contract given as GPUs becomes one step.
func (r *Request) Normalize() {
	if r.Packing == "" {
		r.Packing = PackAny
	}
	if r.Isolation == "" {
		r.Isolation = SharedLeaf
	}
	if r.Kind == Contract && len(r.Schedule) == 0 && r.GPUs > 0 {
		r.Schedule = []Step{{From: r.Start, GPUs: r.GPUs}}
		r.GPUs = 0
	}
}

// Validate checks what needs no fleet: now is the current instant (spot
// leases start then; nothing may start before the current hour) and
// horizon the last instant a lease may end. Call Normalize first. Errors
// are a *valid.Error naming each field and rule.
func (r Request) Validate(now, horizon time.Time) error {
	var e valid.Error
	if !slices.Contains(Kinds, r.Kind) {
		e.Add("kind", string(r.Kind), "must be one of %v", Kinds)
	}
	if r.Pool == "" {
		e.Add("pool", nil, "is required (site/MODEL, e.g. ref-300mw/H100-SXM)")
	}
	if !slices.Contains(Packings, r.Packing) {
		e.Add("packing", string(r.Packing), "must be one of %v", Packings)
	}
	if !slices.Contains(Isolations, r.Isolation) {
		e.Add("isolation", string(r.Isolation), "must be one of %v", Isolations)
	}
	start := r.Start
	if r.Kind == Spot {
		if !r.Start.IsZero() {
			e.Add("start", r.Start.Format(time.RFC3339), "must be empty for spot: a spot lease starts now")
		}
		start = now
	} else {
		wholeHour(&e, "start", r.Start)
		if !r.Start.IsZero() && r.Start.Before(now.Truncate(time.Hour)) {
			e.Add("start", r.Start.Format(time.RFC3339), "must not be before the current hour (%s)", now.Truncate(time.Hour).UTC().Format(time.RFC3339))
		}
	}
	if r.Kind != Spot || !r.End.IsZero() {
		wholeHour(&e, "end", r.End) // a spot lease without end runs until ended or reclaimed
	}
	if r.Kind == Spot {
		if r.MaxPrice.Micros <= 0 || r.MaxPrice.Micros > MaxPriceMicros {
			e.Add("max_price", r.MaxPrice.String(), "is required for spot: the most you pay per GPU-hour, above 0 and at most %s", money.Format(MaxPriceMicros))
		}
	} else {
		if !r.MaxPrice.IsZero() {
			e.Add("max_price", r.MaxPrice.String(), "is only for spot leases")
		}
		if r.Notice != "" {
			e.Add("notice", r.Notice, "is only for spot leases")
		}
	}
	if !r.End.IsZero() && !start.IsZero() && !r.End.After(start) {
		e.Add("end", r.End.Format(time.RFC3339), "must be after start")
	}
	if !r.End.IsZero() && r.End.After(horizon) {
		e.Add("end", r.End.Format(time.RFC3339), "is beyond the booking horizon (%s)", horizon.UTC().Format(time.RFC3339))
	}
	switch {
	case r.Kind == Contract && len(r.Schedule) > 0:
		if r.GPUs != 0 {
			e.Add("gpus", int64(r.GPUs), "must be empty when schedule is given")
		}
		r.validateSchedule(&e)
	case r.Kind == Contract || r.Kind == Reservation || r.Kind == Spot:
		if len(r.Schedule) > 0 {
			e.Add("schedule", nil, "is only for contracts; give gpus")
		}
		if r.GPUs <= 0 || r.GPUs > MaxGPUs {
			e.Add("gpus", int64(r.GPUs), "must be between 1 and %d", MaxGPUs)
		}
	}
	return e.Err()
}

func (r Request) validateSchedule(e *valid.Error) {
	const maxSteps = 1000
	if len(r.Schedule) > maxSteps {
		e.Add("schedule", len(r.Schedule), "must have at most %d steps", maxSteps)
		return
	}
	positive := false
	for i, s := range r.Schedule {
		f := fmt.Sprintf("schedule[%d]", i)
		wholeHour(e, f+".from", s.From)
		switch {
		case i == 0 && !s.From.Equal(r.Start):
			e.Add(f+".from", s.From.Format(time.RFC3339), "must equal start (the first step starts the contract)")
		case i > 0 && !s.From.After(r.Schedule[i-1].From):
			e.Add(f+".from", s.From.Format(time.RFC3339), "must be after schedule[%d].from", i-1)
		}
		if !r.End.IsZero() && !s.From.Before(r.End) {
			e.Add(f+".from", s.From.Format(time.RFC3339), "must be before end")
		}
		switch {
		case s.GPUs != 0 && s.Power != 0:
			e.Add(f, nil, "give gpus or mw, not both")
		case s.Power < 0 || s.Power > 100_000*unit.Megawatt:
			e.Add(f+".mw", s.Power.MW(), "must be between 0 and 100000")
		case s.GPUs < 0 || s.GPUs > MaxGPUs:
			e.Add(f+".gpus", int64(s.GPUs), "must be between 0 and %d", MaxGPUs)
		}
		if s.GPUs > 0 || s.Power > 0 {
			positive = true
		}
	}
	if !positive {
		e.Add("schedule", nil, "must have a step with more than 0 gpus or mw")
	}
}

func wholeHour(e *valid.Error, field string, t time.Time) {
	switch {
	case t.IsZero():
		e.Add(field, nil, "is required (RFC 3339, on a whole UTC hour)")
	case !t.Equal(t.Truncate(time.Hour)):
		e.Add(field, t.Format(time.RFC3339Nano), "must be on a whole UTC hour")
	}
}

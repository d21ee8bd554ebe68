// Package spot prices preemptible capacity and chooses what to reclaim.
//
// A spot lease asks for GPUs of a pool with a maximum price per GPU-hour
// and a notice tier. Its price follows the pool's utilization through a
// piecewise-linear curve (a multiplier of the pool's base price); a longer
// notice tier costs a premium. When capacity is needed back — the owner's
// own demand, a guaranteed lease starting, a node failing — Victims picks
// the spot leases to reclaim: lowest maximum price first, then the newest.
//
// Multipliers and utilizations are integers in thousandths (permille) and
// prices are money.Money, so a price is exact and the same on every
// machine: the simulator's summaries are byte-identical per seed.
package spot

import (
	"cmp"
	"fmt"
	"slices"
	"time"

	"github.com/neocloud/neocloud/internal/money"
	"github.com/neocloud/neocloud/internal/valid"
)

// Point is a point of the price curve: at UtilizationPermille of the
// pool's healthy GPUs in use (internal demand, guaranteed leases and
// spot), the price is MultiplierPermille thousandths of the base price.
type Point struct {
	UtilizationPermille int64 `json:"utilization_permille"`
	MultiplierPermille  int64 `json:"multiplier_permille"`
}

// Tier is a notice tier: how long a spot lease is warned before its
// capacity is taken back, and the premium paid for that warning.
type Tier struct {
	Name            string        `json:"name"`
	Notice          time.Duration `json:"notice"`
	PremiumPermille int64         `json:"premium_permille"` // 1000: no premium
}

// Policy is a pool's spot pricing.
type Policy struct {
	// Base is the price of a GPU-hour at multiplier 1000.
	Base money.Money `json:"base"`
	// Curve is sorted by utilization, from 0 to 1000; between points the
	// multiplier is interpolated, rounded down to the permille.
	Curve []Point `json:"curve"`
	// Tiers are the notice tiers offered, the shortest first.
	Tiers []Tier `json:"tiers"`
	// BufferPermille of the pool's healthy GPUs are never sold as spot: a
	// cushion for the owner's demand between measurements.
	BufferPermille int64 `json:"buffer_permille"`
}

// DefaultCurve is the price curve a pool gets unless configured: half the
// base price when the pool is empty, the base price at 50% use, rising
// steeply past 80% so that the last GPUs go to who values them most.
var DefaultCurve = []Point{{0, 500}, {500, 1000}, {800, 1500}, {950, 3000}, {1000, 5000}}

// DefaultTiers are the notice tiers offered unless configured: two minutes
// (as AWS Spot), thirty minutes and a day.
var DefaultTiers = []Tier{
	{Name: "2m", Notice: 2 * time.Minute, PremiumPermille: 1000},
	{Name: "30m", Notice: 30 * time.Minute, PremiumPermille: 1150},
	{Name: "24h", Notice: 24 * time.Hour, PremiumPermille: 1600},
}

// DefaultBufferPermille is the safety buffer unless configured: 2% of the
// pool's healthy GPUs.
const DefaultBufferPermille = 20

// DefaultPolicy returns the default policy over base.
func DefaultPolicy(base money.Money) Policy {
	return Policy{Base: base, Curve: slices.Clone(DefaultCurve), Tiers: slices.Clone(DefaultTiers), BufferPermille: DefaultBufferPermille}
}

// Validate checks p; the error is a *valid.Error naming each field.
func (p Policy) Validate() error {
	var e valid.Error
	if p.Base.Micros <= 0 {
		e.Add("base", p.Base.String(), "must be a positive price per GPU-hour")
	}
	if len(p.Curve) < 2 {
		e.Add("curve", len(p.Curve), "needs at least two points")
	}
	for i, pt := range p.Curve {
		f := fmt.Sprintf("curve[%d]", i)
		switch {
		case i == 0 && pt.UtilizationPermille != 0:
			e.Add(f+".utilization_permille", pt.UtilizationPermille, "the first point must be at 0")
		case i == len(p.Curve)-1 && pt.UtilizationPermille != 1000:
			e.Add(f+".utilization_permille", pt.UtilizationPermille, "the last point must be at 1000")
		case i > 0 && pt.UtilizationPermille <= p.Curve[i-1].UtilizationPermille:
			e.Add(f+".utilization_permille", pt.UtilizationPermille, "must be above the previous point's")
		}
		if pt.MultiplierPermille <= 0 || pt.MultiplierPermille > 1_000_000 {
			e.Add(f+".multiplier_permille", pt.MultiplierPermille, "must be in 1..1000000")
		}
		if i > 0 && pt.MultiplierPermille < p.Curve[i-1].MultiplierPermille {
			e.Add(f+".multiplier_permille", pt.MultiplierPermille, "must not be below the previous point's: price does not fall as use rises")
		}
	}
	if len(p.Tiers) == 0 {
		e.Add("tiers", 0, "needs at least one notice tier")
	}
	names := map[string]bool{}
	for i, t := range p.Tiers {
		f := fmt.Sprintf("tiers[%d]", i)
		if t.Name == "" || names[t.Name] {
			e.Add(f+".name", t.Name, "must be set and unique")
		}
		names[t.Name] = true
		if t.Notice <= 0 {
			e.Add(f+".notice", t.Notice.String(), "must be positive")
		}
		if i > 0 && t.Notice <= p.Tiers[i-1].Notice {
			e.Add(f+".notice", t.Notice.String(), "must be longer than the previous tier's")
		}
		if t.PremiumPermille < 1000 || t.PremiumPermille > 100_000 {
			e.Add(f+".premium_permille", t.PremiumPermille, "must be in 1000..100000")
		}
	}
	if p.BufferPermille < 0 || p.BufferPermille > 1000 {
		e.Add("buffer_permille", p.BufferPermille, "must be in 0..1000")
	}
	return e.Err()
}

// Tier returns the tier named name, or false.
func (p Policy) Tier(name string) (Tier, bool) {
	i := slices.IndexFunc(p.Tiers, func(t Tier) bool { return t.Name == name })
	if i < 0 {
		return Tier{}, false
	}
	return p.Tiers[i], true
}

// Multiplier returns the curve's multiplier in permille at utilization
// util (permille, clamped to 0..1000).
func (p Policy) Multiplier(util int64) int64 {
	util = min(max(util, 0), 1000)
	i, found := slices.BinarySearchFunc(p.Curve, util, func(pt Point, u int64) int { return cmp.Compare(pt.UtilizationPermille, u) })
	if found {
		return p.Curve[i].MultiplierPermille
	}
	a, b := p.Curve[i-1], p.Curve[i]
	return a.MultiplierPermille + (b.MultiplierPermille-a.MultiplierPermille)*(util-a.UtilizationPermille)/(b.UtilizationPermille-a.UtilizationPermille)
}

// Price returns the price of a GPU-hour at utilization util (permille) in
// the notice tier named tier, or an error for an unknown tier. p must be
// valid.
func (p Policy) Price(util int64, tier string) (money.Money, error) {
	t, ok := p.Tier(tier)
	if !ok {
		return money.Money{}, fmt.Errorf("spot: unknown notice tier %q", tier)
	}
	return p.Base.MulRatio(p.Multiplier(util)*t.PremiumPermille, 1_000_000)
}

// Utilization returns used over healthy GPUs in permille, rounded down; a
// pool without healthy GPUs is full (1000).
func Utilization(used, healthy int64) int64 {
	if healthy <= 0 {
		return 1000
	}
	return min(max(used, 0)*1000/healthy, 1000)
}

// Sellable returns the GPUs spot may take: idle GPUs (healthy minus
// guaranteed minus the owner's actual use) less the policy's buffer of the
// healthy GPUs, never below zero.
func (p Policy) Sellable(healthy, guaranteed, internal int64) int64 {
	buffer := (healthy*p.BufferPermille + 999) / 1000
	return max(healthy-guaranteed-internal-buffer, 0)
}

// Holder is a spot lease holding capacity, as Victims sees it.
type Holder struct {
	LeaseID  string
	GPUs     int64
	MaxPrice money.Money // per GPU-hour
	Start    time.Time
	Tier     string // notice tier name
}

// Victims chooses holders to reclaim need GPUs from: lowest maximum price
// first, then the newest (latest Start), then by lease ID, so that the
// choice is the same on every run. It returns the chosen holders in that
// order and the GPUs they free, which is less than need when all of hs is
// not enough. hs is not modified.
func Victims(hs []Holder, need int64) ([]Holder, int64) {
	if need <= 0 {
		return nil, 0
	}
	order := slices.Clone(hs)
	slices.SortFunc(order, func(a, b Holder) int {
		return cmp.Or(cmp.Compare(a.MaxPrice.Micros, b.MaxPrice.Micros), b.Start.Compare(a.Start), cmp.Compare(a.LeaseID, b.LeaseID))
	})
	var freed int64
	n := 0
	for n < len(order) && freed < need {
		freed += order[n].GPUs
		n++
	}
	return order[:n:n], freed
}

// Outbid returns the holders whose maximum price is below the price of
// their tier at utilization util: their leases end (after notice), as the
// tenant asked by setting the maximum. A holder of an unknown tier is
// outbid.
func (p Policy) Outbid(hs []Holder, util int64) []Holder {
	prices := make(map[string]int64, len(p.Tiers)) // each tier's price, once
	for _, t := range p.Tiers {
		if price, err := p.Price(util, t.Name); err == nil {
			prices[t.Name] = price.Micros
		}
	}
	var out []Holder
	for _, h := range hs {
		if price, ok := prices[h.Tier]; !ok || h.MaxPrice.Micros < price {
			out = append(out, h)
		}
	}
	return out
}

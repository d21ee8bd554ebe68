package simrun

import (
	"fmt"
	"math"
	"time"

	"github.com/goccy/go-yaml"

	"github.com/neocloud/neocloud/internal/demand"
	"github.com/neocloud/neocloud/internal/money"
	"github.com/neocloud/neocloud/internal/sim"
	"github.com/neocloud/neocloud/internal/valid"
)

// Scenario is what a simulation assumes; every field has a default (the
// story: an owner whose demand falls, the rival lab's anchor contract,
// short blocks and a deep spot market). A scenario file (YAML or JSON)
// sets the fields it names.
type Scenario struct {
	// Start is the first simulated hour (default 2026-09-01, the anchor
	// contract's start).
	Start time.Time `yaml:"start" json:"start"`
	// Demand is the owner's demand per pool, as shares of the pool's GPUs.
	Demand DemandStory `yaml:"demand" json:"demand"`
	// Holdback is the policy that sets the holdback from the forecast.
	Holdback demand.Policy `yaml:"holdback" json:"holdback"`
	// Failures is the node failure and maintenance model.
	Failures sim.FailureModel `yaml:"failures" json:"failures"`
	Contract Contract         `yaml:"contract" json:"contract"`
	// Reservations are short guaranteed blocks.
	Reservations Reservations `yaml:"reservations" json:"reservations"`
	Spot         SpotDemand   `yaml:"spot" json:"spot"`
}

// DemandStory shapes the owner's demand (forecast.Synth), each GPU figure
// a share of the pool's GPUs.
type DemandStory struct {
	Base          float64 `yaml:"base" json:"base"`                     // level at the start of the history
	TrendPerYear  float64 `yaml:"trend_per_year" json:"trend_per_year"` // negative: falling
	Daily         float64 `yaml:"daily" json:"daily"`                   // amplitude of the daily cycle
	PeakHour      int     `yaml:"peak_hour" json:"peak_hour"`
	Weekend       float64 `yaml:"weekend" json:"weekend"` // drop on weekends
	NoiseSD       float64 `yaml:"noise_sd" json:"noise_sd"`
	BurstsPerWeek float64 `yaml:"bursts_per_week" json:"bursts_per_week"`
	Burst         float64 `yaml:"burst" json:"burst"`
}

// Contract is the anchor contract: in each pool, Share of what the peak
// holdback leaves, as MW of facility power, at half for DiscountMonths.
type Contract struct {
	Share            float64     `yaml:"share" json:"share"` // 0 books none
	End              time.Time   `yaml:"end" json:"end"`
	MonthlyFee       money.Money `yaml:"-" json:"-"`
	MonthlyFeeUSD    string      `yaml:"monthly_fee_usd" json:"monthly_fee_usd"`
	DiscountMonths   int         `yaml:"discount_months" json:"discount_months"`
	DiscountPermille int64       `yaml:"discount_permille" json:"discount_permille"`
}

// Reservations arrive per pool as a Poisson process.
type Reservations struct {
	PerDay        float64 `yaml:"per_day" json:"per_day"`
	MinNodes      int     `yaml:"min_nodes" json:"min_nodes"`
	MaxNodes      int     `yaml:"max_nodes" json:"max_nodes"`
	MinDays       int     `yaml:"min_days" json:"min_days"`
	MaxDays       int     `yaml:"max_days" json:"max_days"`
	LeadDays      int     `yaml:"lead_days" json:"lead_days"`           // start up to this far ahead
	PricePermille int64   `yaml:"price_permille" json:"price_permille"` // of the pool's spot base price
}

// SpotDemand is the spot market: each hour, per pool, buyers try to take
// what is idle.
type SpotDemand struct {
	AttemptsPerHour int                `yaml:"attempts_per_hour" json:"attempts_per_hour"`
	MinNodes        int                `yaml:"min_nodes" json:"min_nodes"`
	MaxNodes        int                `yaml:"max_nodes" json:"max_nodes"`
	MeanHours       float64            `yaml:"mean_hours" json:"mean_hours"` // how long a buyer stays (exponential)
	TierShares      map[string]float64 `yaml:"tier_shares" json:"tier_shares"`
	// A buyer's maximum price is uniform over [MaxPriceMin, MaxPriceMax]
	// times the pool's base price.
	MaxPriceMin float64 `yaml:"max_price_min" json:"max_price_min"`
	MaxPriceMax float64 `yaml:"max_price_max" json:"max_price_max"`
}

// DefaultScenario is the story's.
func DefaultScenario() Scenario {
	return Scenario{
		Start:  time.Date(2026, 9, 1, 0, 0, 0, 0, time.UTC),
		Demand: DemandStory{Base: 0.45, TrendPerYear: -0.08, Daily: 0.04, PeakHour: 15, Weekend: 0.05, NoiseSD: 0.012, BurstsPerWeek: 1, Burst: 0.03},
		// P99 + 40%, not the server's default P95 + 5%: the story's bursts
		// (exponential in size and length, ~1 a week) reach 10-30% of a
		// pool a few times a year, above any quantile of the forecast, and
		// guaranteed leases are never preempted; spot sells what the
		// larger holdback leaves idle, so little is lost (docs/simulator.md).
		Holdback:     demand.Policy{Quantile: 0.99, BufferPermille: 400},
		Failures:     sim.DefaultFailures,
		Contract:     Contract{Share: 0.7, End: time.Date(2029, 6, 1, 0, 0, 0, 0, time.UTC), MonthlyFeeUSD: "1250000000", DiscountMonths: 2, DiscountPermille: 500},
		Reservations: Reservations{PerDay: 3, MinNodes: 4, MaxNodes: 64, MinDays: 1, MaxDays: 28, LeadDays: 14, PricePermille: 1800},
		Spot: SpotDemand{AttemptsPerHour: 8, MinNodes: 8, MaxNodes: 256, MeanHours: 48,
			TierShares: map[string]float64{"2m": 0.6, "30m": 0.3, "24h": 0.1}, MaxPriceMin: 1.5, MaxPriceMax: 6},
	}
}

// ParseScenario reads a scenario file over the defaults: the fields it
// names replace them; unknown fields are an error.
func ParseScenario(data []byte) (Scenario, error) {
	sc := DefaultScenario()
	if err := yaml.UnmarshalWithOptions(data, &sc, yaml.Strict()); err != nil {
		return Scenario{}, fmt.Errorf("scenario: %w", err)
	}
	return sc, nil
}

// withDefaults returns s, or the default scenario when s is zero.
func (s Scenario) withDefaults() Scenario {
	if s.Start.IsZero() && s.Contract.MonthlyFeeUSD == "" && s.Spot.AttemptsPerHour == 0 {
		return DefaultScenario()
	}
	return s
}

// Validate checks s, adding to v, and parses the contract fee.
func (s *Scenario) Validate(v *valid.Error) error {
	if !s.Start.Equal(s.Start.Truncate(time.Hour)) || s.Start.IsZero() {
		v.Add("scenario.start", s.Start.Format(time.RFC3339), "must be a whole UTC hour")
	}
	d := s.Demand
	for name, x := range map[string]float64{"base": d.Base, "daily": d.Daily, "weekend": d.Weekend, "noise_sd": d.NoiseSD, "burst": d.Burst} {
		if !(x >= 0 && x <= 1) {
			v.Add("scenario.demand."+name, x, "must be a share of the pool between 0 and 1")
		}
	}
	if !(d.TrendPerYear >= -1 && d.TrendPerYear <= 1) {
		v.Add("scenario.demand.trend_per_year", d.TrendPerYear, "must be between -1 and 1")
	}
	if d.PeakHour < 0 || d.PeakHour > 23 {
		v.Add("scenario.demand.peak_hour", d.PeakHour, "must be between 0 and 23")
	}
	if err := s.Holdback.Validate(); err != nil {
		v.Add("scenario.holdback", nil, "%v", err)
	}
	if err := s.Failures.Validate(); err != nil {
		v.Add("scenario.failures", nil, "%v", err)
	}
	c := &s.Contract
	if !(c.Share >= 0 && c.Share <= 1) {
		v.Add("scenario.contract.share", c.Share, "must be between 0 and 1")
	}
	if c.Share > 0 {
		fee, err := money.Parse(c.MonthlyFeeUSD, "USD")
		if err != nil || fee.Micros < 0 {
			v.Add("scenario.contract.monthly_fee_usd", c.MonthlyFeeUSD, "must be a decimal amount of USD")
		}
		c.MonthlyFee = fee
		if !c.End.After(s.Start) {
			v.Add("scenario.contract.end", c.End.Format(time.RFC3339), "must be after scenario.start")
		}
		if c.DiscountMonths < 0 || c.DiscountMonths > 120 || c.DiscountPermille < 0 || c.DiscountPermille > 1000 {
			v.Add("scenario.contract.discount_months", c.DiscountMonths, "must be 0-120, with discount_permille 0-1000")
		}
	}
	r := s.Reservations
	if !(r.PerDay >= 0 && r.PerDay <= 1000) || r.MinNodes < 1 || r.MaxNodes < r.MinNodes || r.MinDays < 1 || r.MaxDays < r.MinDays || r.LeadDays < 0 || r.PricePermille < 1 {
		v.Add("scenario.reservations", nil, "needs per_day 0-1000, 1 <= min_nodes <= max_nodes, 1 <= min_days <= max_days, lead_days >= 0, price_permille >= 1")
	}
	sp := s.Spot
	total := 0.0
	for _, x := range sp.TierShares {
		total += x
	}
	if sp.AttemptsPerHour < 0 || sp.AttemptsPerHour > 1000 || sp.MinNodes < 1 || sp.MaxNodes < sp.MinNodes || !(sp.MeanHours > 0) ||
		!(sp.MaxPriceMin > 0) || sp.MaxPriceMax < sp.MaxPriceMin || math.IsNaN(total) || total <= 0 {
		v.Add("scenario.spot", nil, "needs attempts_per_hour 0-1000, 1 <= min_nodes <= max_nodes, mean_hours > 0, 0 < max_price_min <= max_price_max and tier_shares summing above 0")
	}
	return nil
}

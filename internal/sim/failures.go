// Package sim holds the simulator's generators: traces of what happens to
// a fleet that no one decides — node failures and repairs, planned
// maintenance — drawn from a seed so that a simulation is reproducible.
// The simulator runs the real engine over these traces on virtual time.
package sim

import (
	"cmp"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/neocloud/neocloud/internal/valid"
)

// FailureModel says how often nodes fail and for how long.
type FailureModel struct {
	// PerThousandNodeDays is the rate of unplanned interruptions: 3.8 per
	// 1,000 node-days in Meta's 54-day, 16,384-GPU H100 run (FLEET.md),
	// about 100 a day at a 220k-GPU site.
	PerThousandNodeDays float64 `yaml:"per_thousand_node_days" json:"per_thousand_node_days"`
	// RepairMean is the mean time a failed node is out; repair times are
	// log-normal with RepairSigma (most repairs are a reboot or a part
	// swap, a few wait for RMA).
	RepairMean  time.Duration `yaml:"repair_mean" json:"repair_mean"`
	RepairSigma float64       `yaml:"repair_sigma" json:"repair_sigma"`
	// MaintenanceShare is planned maintenance as a share of the
	// unplanned count (about 0.1, FLEET.md); each takes Maintenance and
	// is announced MaintenanceNotice ahead.
	MaintenanceShare  float64       `yaml:"maintenance_share" json:"maintenance_share"`
	Maintenance       time.Duration `yaml:"maintenance" json:"maintenance"`
	MaintenanceNotice time.Duration `yaml:"maintenance_notice" json:"maintenance_notice"`
}

// DefaultFailures is the FLEET.md model: 3.8 per 1,000 node-days,
// repairs of 8 h on average (log-normal, σ 1), planned maintenance at 10%
// of that, 4 h each, announced a week ahead.
var DefaultFailures = FailureModel{
	PerThousandNodeDays: 3.8, RepairMean: 8 * time.Hour, RepairSigma: 1,
	MaintenanceShare: 0.1, Maintenance: 4 * time.Hour, MaintenanceNotice: 7 * 24 * time.Hour,
}

// Validate checks m; the error is a *valid.Error naming each field.
func (m FailureModel) Validate() error {
	var e valid.Error
	if !(m.PerThousandNodeDays >= 0 && m.PerThousandNodeDays <= 1000) {
		e.Add("per_thousand_node_days", m.PerThousandNodeDays, "must be between 0 and 1000")
	}
	if m.RepairMean < time.Minute || m.RepairMean > 365*24*time.Hour {
		e.Add("repair_mean", m.RepairMean.String(), "must be between 1m and a year")
	}
	if !(m.RepairSigma >= 0 && m.RepairSigma <= 3) {
		e.Add("repair_sigma", m.RepairSigma, "must be between 0 and 3")
	}
	if !(m.MaintenanceShare >= 0 && m.MaintenanceShare <= 10) {
		e.Add("maintenance_share", m.MaintenanceShare, "must be between 0 and 10")
	}
	if m.MaintenanceShare > 0 && (m.Maintenance < time.Minute || m.Maintenance > 30*24*time.Hour) {
		e.Add("maintenance", m.Maintenance.String(), "must be between 1m and 30 days when maintenance_share is set")
	}
	if m.MaintenanceNotice < 0 {
		e.Add("maintenance_notice", m.MaintenanceNotice.String(), "must not be negative")
	}
	return e.Err()
}

// Kind says whether an outage was planned.
type Kind string

// Outage kinds.
const (
	Failure     Kind = "failure"
	Maintenance Kind = "maintenance"
)

// Outage is a node out of service over [Start, End). A planned one is
// known from Announced on; a failure from its Start.
type Outage struct {
	Node       string
	Kind       Kind
	Announced  time.Time
	Start, End time.Time
}

// Outages draws the outages of nodes over [from, to) under m from seed:
// failures as a Poisson process per node at m's rate (a node out is not
// failed again until it is back), maintenance likewise at the planned
// rate. The result is sorted by Start, then node, and is the same for the
// same arguments. Outages may end after to.
func (m FailureModel) Outages(nodes []string, from, to time.Time, seed uint64) ([]Outage, error) {
	if err := m.Validate(); err != nil {
		return nil, err
	}
	if !to.After(from) {
		return nil, fmt.Errorf("sim: outages over [%s, %s): the end must be after the start", from.Format(time.RFC3339), to.Format(time.RFC3339))
	}
	perHour := m.PerThousandNodeDays / 1000 / 24
	planned := perHour * m.MaintenanceShare
	total := perHour + planned
	// Log-normal with mean RepairMean: μ = ln(mean) − σ²/2.
	mu := math.Log(m.RepairMean.Hours()) - m.RepairSigma*m.RepairSigma/2
	var out []Outage
	for i, n := range nodes {
		if total <= 0 {
			break
		}
		rng := rand.New(rand.NewPCG(seed, uint64(i)))
		t := from
		for {
			t = t.Add(time.Duration(rng.ExpFloat64() / total * float64(time.Hour)))
			if !t.Before(to) {
				break
			}
			o := Outage{Node: n, Kind: Failure, Announced: t, Start: t}
			if rng.Float64()*total < planned {
				o.Kind, o.Announced = Maintenance, t.Add(-m.MaintenanceNotice)
				o.End = t.Add(m.Maintenance)
			} else {
				hours := math.Exp(mu + m.RepairSigma*rng.NormFloat64())
				o.End = t.Add(max(time.Duration(hours*float64(time.Hour)), time.Minute))
			}
			out = append(out, o)
			t = o.End
		}
	}
	slices.SortFunc(out, func(a, b Outage) int { return cmp.Or(a.Start.Compare(b.Start), cmp.Compare(a.Node, b.Node)) })
	return out, nil
}

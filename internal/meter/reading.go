package meter

import (
	"regexp"
	"strconv"
	"time"

	"github.com/neocloud/neocloud/internal/valid"
)

// Reading is one GPU's telemetry at one instant, as the agent scraped it
// from a DCGM exporter. Its identity is (Node, GPU, Time): a second reading
// with the same identity is a duplicate, whatever its values.
type Reading struct {
	Node string // the node's name in the fleet
	GPU  int    // the GPU's index on the node, from 0
	UUID string // the GPU's UUID when the exporter gives it; optional
	// Time is when the reading was taken (UTC); the wire carries whole
	// milliseconds.
	Time    time.Time
	UtilPct int   // DCGM_FI_DEV_GPU_UTIL: 0..100
	PowerMW int64 // DCGM_FI_DEV_POWER_USAGE, in milliwatts
	// EnergyMJ is DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION: millijoules since
	// the driver loaded. It only grows, except that it restarts from 0
	// when the driver reloads (a counter reset).
	EnergyMJ int64
	TempC    int // DCGM_FI_DEV_GPU_TEMP
	// XID is the last XID error code the exporter reports
	// (DCGM_FI_DEV_XID_ERRORS); 0 when none.
	XID int
	// PowerViolationUS and ThermalViolationUS are DCGM's cumulative
	// throttling counters (DCGM_FI_DEV_POWER_VIOLATION,
	// DCGM_FI_DEV_THERMAL_VIOLATION), in microseconds; 0 when the
	// exporter does not collect them.
	PowerViolationUS   int64
	ThermalViolationUS int64
	// RemapFailure is DCGM_FI_DEV_ROW_REMAP_FAILURE: the GPU could not
	// remap a faulty memory row.
	RemapFailure bool
}

// Batch is what one push carries: readings of any nodes, with an ID the
// agent chose so that a retried push is recognised.
type Batch struct {
	ID       string
	Agent    string // the pushing agent's name, for logs and metrics; optional
	Readings []Reading
}

// Limits on one batch and its fields.
const (
	MaxBatchReadings = 100_000
	MaxGPU           = 255
	maxIDLen         = 128
)

var (
	idPattern   = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,128}$`)
	nodePattern = regexp.MustCompile(`^[A-Za-z0-9._-]{1,253}$`)
)

// Validate checks a batch field by field: an ID of 1..128 letters, digits
// or ._:-; at most MaxBatchReadings readings; in each reading a node name
// of letters, digits and ._-, a GPU index in 0..MaxGPU, a time after 2000,
// utilization in 0..100, and no negative counter or power. It returns a
// *valid.Error naming every field that broke a rule (readings by index),
// or nil.
func (b Batch) Validate() error {
	var e valid.Error
	if !idPattern.MatchString(b.ID) {
		e.Add("batch_id", b.ID, "must be 1-%d letters, digits or . _ : -", maxIDLen)
	}
	if b.Agent != "" && !idPattern.MatchString(b.Agent) {
		e.Add("agent", b.Agent, "must be 1-%d letters, digits or . _ : -", maxIDLen)
	}
	if len(b.Readings) > MaxBatchReadings {
		e.Add("readings", len(b.Readings), "must be at most %d per batch", MaxBatchReadings)
		return e.Err()
	}
	min := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range b.Readings {
		if e.Len() >= 20 { // enough to fix the agent; do not drown the caller
			break
		}
		r := &b.Readings[i]
		f := func(name string) string { return "readings[" + strconv.Itoa(i) + "]." + name }
		if !nodePattern.MatchString(r.Node) {
			e.Add(f("node"), r.Node, "must be a node name: letters, digits, . _ -")
		}
		if r.GPU < 0 || r.GPU > MaxGPU {
			e.Add(f("gpu"), r.GPU, "must be within 0..%d", MaxGPU)
		}
		if r.Time.Before(min) {
			e.Add(f("time_ms"), r.Time.UnixMilli(), "must be after 2000-01-01")
		}
		if r.UtilPct < 0 || r.UtilPct > 100 {
			e.Add(f("util_pct"), r.UtilPct, "must be within 0..100")
		}
		for _, c := range []struct {
			name string
			v    int64
		}{{"power_mw", r.PowerMW}, {"energy_mj", r.EnergyMJ}, {"power_violation_us", r.PowerViolationUS},
			{"thermal_violation_us", r.ThermalViolationUS}, {"xid", int64(r.XID)}} {
			if c.v < 0 {
				e.Add(f(c.name), c.v, "must not be negative")
			}
		}
		if r.UUID != "" && !idPattern.MatchString(r.UUID) {
			e.Add(f("uuid"), r.UUID, "must be 1-%d letters, digits or . _ : -", maxIDLen)
		}
	}
	return e.Err()
}

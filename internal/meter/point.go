package meter

import "slices"

// Point is what the ledger keeps of a reading: the fields that usage and
// health are computed from. T is Unix milliseconds.
type Point struct {
	T                  int64
	UtilPct            int
	EnergyMJ           int64
	XID                int
	PowerViolationUS   int64
	ThermalViolationUS int64
	RemapFailure       bool
}

// PointOf returns the part of r that the ledger keeps.
func PointOf(r Reading) Point {
	return Point{T: r.Time.UnixMilli(), UtilPct: r.UtilPct, EnergyMJ: r.EnergyMJ, XID: r.XID,
		PowerViolationUS: r.PowerViolationUS, ThermalViolationUS: r.ThermalViolationUS, RemapFailure: r.RemapFailure}
}

// DefaultFatalXIDs are the XID error codes that mean the GPU (not the
// tenant's program) is broken and the node must leave service: double-bit
// ECC (48), GPU fallen off the bus (79), uncontained ECC (95), row-remap
// failure (64), NVLink error (74), GSP errors (119, 120), internal
// micro-controller halt (62), and memory page retirement failure (63 is a
// recoverable retirement and is not listed). See NVIDIA's XID catalog.
var DefaultFatalXIDs = []int{48, 62, 64, 74, 79, 92, 94, 95, 119, 120}

// HealthPolicy says which readings count as unhealthy.
type HealthPolicy struct {
	// FatalXIDs are the XID codes that make a GPU unhealthy and fail its
	// node; nil means DefaultFatalXIDs.
	FatalXIDs []int
	// ThermalDegrades makes time during which the thermal-violation
	// counter grew count as unhealthy (the node is degraded, not failed).
	ThermalDegrades bool
}

// DefaultHealthPolicy is DefaultFatalXIDs with thermal throttling counted
// as unhealthy time.
var DefaultHealthPolicy = HealthPolicy{ThermalDegrades: true}

// Fatal reports whether xid is one of p's fatal codes.
func (p HealthPolicy) Fatal(xid int) bool {
	if xid == 0 {
		return false
	}
	if p.FatalXIDs == nil {
		return slices.Contains(DefaultFatalXIDs, xid)
	}
	return slices.Contains(p.FatalXIDs, xid)
}

// Healthy reports whether the stretch of time that ends at cur (and began
// at prev, the GPU's previous reading) was healthy: no fatal XID and no
// row-remap failure at cur, and — when ThermalDegrades — no growth of the
// thermal-violation counter since prev (a reset, cur below prev, is not
// growth).
func (p HealthPolicy) Healthy(prev, cur Point) bool {
	if p.Fatal(cur.XID) || cur.RemapFailure {
		return false
	}
	if p.ThermalDegrades && cur.ThermalViolationUS > prev.ThermalViolationUS {
		return false
	}
	return true
}

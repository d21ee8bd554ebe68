package meter

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// Severity is how bad a finding is for the node: a failed node must leave
// service (its guaranteed leases need a replacement); a degraded one still
// works, slower.
type Severity string

// The severities of a Finding.
const (
	SeverityFailed   Severity = "failed"
	SeverityDegraded Severity = "degraded"
)

// The rules a Watch applies, as Finding.Rule names them.
const (
	RuleXID      = "xid"       // a fatal XID error (HealthPolicy.Fatal): failed
	RuleRowRemap = "row-remap" // a row-remap failure: failed
	RuleThermal  = "thermal"   // the thermal-violation counter grew: degraded
	RulePower    = "power"     // the power-violation counter grew: degraded
	RuleNoData   = "no-data"   // no reading for too long: failed
)

// Finding is one health problem a Watch noticed on a node.
type Finding struct {
	Node string
	// GPU is the GPU's index on the node, or -1 when the finding is about
	// the whole node (no data).
	GPU int
	// At is the time of the reading that showed the problem or, for no
	// data, the time the caller passed to Stale.
	At       time.Time
	Severity Severity
	Rule     string // one of the Rule constants
	Detail   string // for people: "XID 79 on GPU 3 (GPU has fallen off the bus)"
}

// Defaults that NewWatch applies to zero WatchOptions fields.
const (
	// DefaultInterval is the DCGM exporter's default collection interval.
	DefaultInterval = 15 * time.Second
	// DefaultStaleAfter missed intervals make a node silent: one missed
	// push is routine (a retry, a slow scrape), three is not.
	DefaultStaleAfter = 3
)

// WatchOptions configure a Watch. The zero value is a usable
// configuration: DefaultHealthPolicy is not implied (a zero Policy has no
// thermal rule), so callers normally set Policy.
type WatchOptions struct {
	// Policy says which XIDs are fatal and, with ThermalDegrades, whether
	// thermal throttling is reported (as degraded); it is the policy the
	// ledger counts unhealthy time with, so both agree.
	Policy HealthPolicy
	// PowerDegrades reports growth of the power-violation counter as
	// degraded. It is off by default because power capping is often the
	// owner's deliberate choice, not a fault.
	PowerDegrades bool
	// Interval is how often the agent reads each GPU; below a millisecond
	// (including 0) it means DefaultInterval.
	Interval time.Duration
	// StaleAfter is how many intervals without a reading make a node
	// silent; below 1 it means DefaultStaleAfter.
	StaleAfter int
}

// Watch turns a stream of readings into health findings, each reported
// once per node and rule until Clear. It keeps, per node, the time of its
// latest reading and which rules it has reported, and per GPU the latest
// reading's violation counters: memory is O(nodes × GPUs).
//
// Readings may arrive late, out of order or twice. The XID and row-remap
// rules apply to every reading. The counter rules (thermal, power) compare
// a reading only with the GPU's latest earlier reading: a reading no newer
// than the latest one seen for its GPU is ignored by them, so a late
// reading never counts as growth against a newer one. Times compare at
// millisecond resolution, the wire's.
//
// A Watch is not safe for concurrent use: the caller serialises calls (it
// runs on the ingestion path, where a lock per reading would cost more than
// the watch itself).
type Watch struct {
	policy        HealthPolicy
	powerDegrades bool
	interval      time.Duration
	staleAfter    int
	staleMS       int64 // staleAfter × interval, in ms
	nodes         map[string]*nodeWatch
}

// nodeWatch is what a Watch keeps of one node.
type nodeWatch struct {
	lastMS   int64 // Unix ms of the node's newest reading
	reported ruleSet
	gpus     []gpuWatch // by GPU index
}

// gpuWatch is the latest reading of one GPU, for the counter rules.
type gpuWatch struct {
	seen      bool
	ms        int64
	thermalUS int64
	powerUS   int64
}

// ruleSet holds the rules already reported for a node, one bit per rule.
type ruleSet uint8

const (
	bitXID ruleSet = 1 << iota
	bitRowRemap
	bitThermal
	bitPower
	bitNoData
)

// NewWatch returns a Watch that applies o to every reading, with no node
// watched yet.
func NewWatch(o WatchOptions) *Watch {
	if o.Interval < time.Millisecond {
		o.Interval = DefaultInterval
	}
	if o.StaleAfter < 1 {
		o.StaleAfter = DefaultStaleAfter
	}
	staleMS := o.Interval.Milliseconds()
	if staleMS > math.MaxInt64/int64(o.StaleAfter) {
		staleMS = math.MaxInt64 // never stale, rather than overflow
	} else {
		staleMS *= int64(o.StaleAfter)
	}
	return &Watch{
		policy:        o.Policy,
		powerDegrades: o.PowerDegrades,
		interval:      o.Interval,
		staleAfter:    o.StaleAfter,
		staleMS:       staleMS,
		nodes:         map[string]*nodeWatch{},
	}
}

// Observe records r and returns the findings it causes, in rule order (xid,
// row-remap, thermal, power); nil when it causes none, which is the common
// case and allocates nothing. A node is watched from its first reading on.
func (w *Watch) Observe(r Reading) []Finding {
	n := w.nodes[r.Node]
	if n == nil {
		n = &nodeWatch{lastMS: math.MinInt64}
		// The name may point into a whole decoded batch; do not keep that
		// alive for as long as the node is watched.
		w.nodes[strings.Clone(r.Node)] = n
	}
	ms := r.Time.UnixMilli()
	if ms > n.lastMS {
		n.lastMS = ms
		// A late reading older than the newest one says nothing about
		// whether the node is sending now; only a newer one ends silence.
		n.reported &^= bitNoData
	}

	var out []Finding
	if w.policy.Fatal(r.XID) && n.reported&bitXID == 0 {
		n.reported |= bitXID
		out = append(out, Finding{Node: r.Node, GPU: r.GPU, At: r.Time, Severity: SeverityFailed, Rule: RuleXID,
			Detail: fmt.Sprintf("XID %d on GPU %d (%s)", r.XID, r.GPU, XIDMeaning(r.XID))})
	}
	if r.RemapFailure && n.reported&bitRowRemap == 0 {
		n.reported |= bitRowRemap
		out = append(out, Finding{Node: r.Node, GPU: r.GPU, At: r.Time, Severity: SeverityFailed, Rule: RuleRowRemap,
			Detail: fmt.Sprintf("row-remap failure on GPU %d (a faulty memory row could not be remapped)", r.GPU)})
	}

	if r.GPU < 0 || r.GPU > MaxGPU {
		return out // Batch.Validate refuses these; keep memory bounded anyway
	}
	if r.GPU >= len(n.gpus) {
		n.gpus = append(n.gpus, make([]gpuWatch, r.GPU+1-len(n.gpus))...)
	}
	g := &n.gpus[r.GPU]
	if g.seen && ms <= g.ms {
		return out // late or duplicate: the counter rules look forward only
	}
	prev := *g
	*g = gpuWatch{seen: true, ms: ms, thermalUS: r.ThermalViolationUS, powerUS: r.PowerViolationUS}
	if !prev.seen {
		return out
	}
	// A counter below its previous value was reset (driver reload): that
	// is not growth, and the new value is the base for the next reading.
	if w.policy.ThermalDegrades && r.ThermalViolationUS > prev.thermalUS && n.reported&bitThermal == 0 {
		n.reported |= bitThermal
		out = append(out, Finding{Node: r.Node, GPU: r.GPU, At: r.Time, Severity: SeverityDegraded, Rule: RuleThermal,
			Detail: fmt.Sprintf("thermal throttling on GPU %d: violation counter grew %s in %s",
				r.GPU, micros(r.ThermalViolationUS-prev.thermalUS), msDuration(ms-prev.ms))})
	}
	if w.powerDegrades && r.PowerViolationUS > prev.powerUS && n.reported&bitPower == 0 {
		n.reported |= bitPower
		out = append(out, Finding{Node: r.Node, GPU: r.GPU, At: r.Time, Severity: SeverityDegraded, Rule: RulePower,
			Detail: fmt.Sprintf("power throttling on GPU %d: violation counter grew %s in %s",
				r.GPU, micros(r.PowerViolationUS-prev.powerUS), msDuration(ms-prev.ms))})
	}
	return out
}

// Stale returns a no-data finding, at now, for each watched node whose
// newest reading is more than StaleAfter intervals older than now and that
// has not been reported silent since its last reading (or Clear); nil when
// there is none. Findings are ordered by node name. Only nodes that have
// sent at least one reading are watched, so a node never heard from is
// never stale.
func (w *Watch) Stale(now time.Time) []Finding {
	nowMS := now.UnixMilli()
	var out []Finding
	for name, n := range w.nodes {
		if n.reported&bitNoData != 0 || n.lastMS == math.MinInt64 {
			continue
		}
		age := nowMS - n.lastMS
		if age <= w.staleMS || age < 0 { // age < 0: overflow from a far-future reading
			continue
		}
		n.reported |= bitNoData
		out = append(out, Finding{Node: name, GPU: -1, At: now, Severity: SeverityFailed, Rule: RuleNoData,
			Detail: fmt.Sprintf("no readings for %s (more than %d intervals of %s)",
				msDuration(age), w.staleAfter, w.interval)})
	}
	// Map order is random; callers log and store these, so make it stable.
	slices.SortFunc(out, func(a, b Finding) int { return strings.Compare(a.Node, b.Node) })
	return out
}

// Clear forgets which rules have been reported for node, typically after an
// operator repaired it, so that a problem seen again is reported again. The
// node stays watched and its latest counters are kept (growth is still
// measured from them). Clearing a node that is not watched does nothing.
//
// A GPU whose exporter still reports the old XID after Clear (DCGM keeps
// the last XID until the driver reloads) is reported again: that is the
// point, as the repair did not take.
func (w *Watch) Clear(node string) {
	if n := w.nodes[node]; n != nil {
		n.reported = 0
	}
}

// Forget stops watching node (it was retired) and frees what was kept of
// it; a later reading from it starts watching it afresh. Forgetting a node
// that is not watched does nothing.
func (w *Watch) Forget(node string) {
	delete(w.nodes, node)
}

// XIDMeaning returns what an XID error code means, in a few words, for the
// codes that health findings are about; any other code gets a pointer to
// NVIDIA's XID catalog.
func XIDMeaning(xid int) string {
	switch xid {
	case 48:
		return "double-bit ECC error"
	case 62:
		return "internal micro-controller halt"
	case 63:
		return "ECC page retirement or row remap recorded"
	case 64:
		return "ECC page retirement or row remap failed"
	case 74:
		return "NVLink error"
	case 79:
		return "GPU has fallen off the bus"
	case 92:
		return "high single-bit ECC error rate"
	case 94:
		return "contained ECC error"
	case 95:
		return "uncontained ECC error"
	case 119:
		return "GSP RPC timeout"
	case 120:
		return "GSP error"
	}
	return "see NVIDIA's XID catalog"
}

// micros formats a counter delta in microseconds as a duration, or as a
// plain number when it is too large for one.
func micros(us int64) string {
	if us > math.MaxInt64/int64(time.Microsecond) {
		return fmt.Sprintf("%dµs", us)
	}
	return (time.Duration(us) * time.Microsecond).String()
}

// msDuration formats a span in milliseconds as a duration, or as a plain
// number when it is too large for one.
func msDuration(ms int64) string {
	if ms > math.MaxInt64/int64(time.Millisecond) {
		return fmt.Sprintf("%dms", ms)
	}
	return (time.Duration(ms) * time.Millisecond).String()
}

package meter

import (
	"cmp"
	"fmt"
	"math/bits"
	"slices"
	"time"
)

// Use says what a stretch of a GPU's time was: held by a lease, or — on a
// node no lease held — the owner's internal use (utilization at or above
// the threshold) or idle.
type Use string

// Uses.
const (
	UseLease    Use = "lease"
	UseInternal Use = "internal"
	UseIdle     Use = "idle"
)

// Span is one stretch [From, To) (Unix ms) of a node held by a lease, as
// an allocation records it.
type Span struct {
	ID       string // the allocation's ID
	From, To int64
	LeaseID  string
	TenantID string
}

// Holders tells who held a node when.
type Holders interface {
	// Spans appends to dst the spans of the node with ordinal node that
	// overlap [from, to), sorted by From, not overlapping each other.
	Spans(node int64, from, to int64, dst []Span) []Span
}

// NodeRef is what the ledger needs to know of a node.
type NodeRef struct {
	Ordinal int64
	Pool    string
}

// GPU identifies one GPU of the fleet: its node's ordinal and its index.
type GPU struct {
	Node  int64
	Index int
}

// UsageKey is one row of the hourly rollup: a pool's hour, for one lease
// (LeaseID and TenantID set, Use UseLease) or for the owner's internal use
// or idle time of nodes no lease held.
type UsageKey struct {
	Hour     int64 // Unix ms of the hour's start
	Pool     string
	Use      Use
	LeaseID  string
	TenantID string
}

// Usage is the telemetry-derived part of a rollup row. GPUms is GPU time
// covered by readings; UsedMs the part at or above the utilization
// threshold; HealthyMs the part the health policy calls healthy;
// EnergyMJ the energy of the total-energy counter's increments; Readings
// how many readings ended in the row's hour and use.
type Usage struct {
	GPUms     int64
	UsedMs    int64
	HealthyMs int64
	EnergyMJ  int64
	Readings  int64
}

// Add adds u to x.
func (x *Usage) Add(u Usage) {
	x.GPUms += u.GPUms
	x.UsedMs += u.UsedMs
	x.HealthyMs += u.HealthyMs
	x.EnergyMJ += u.EnergyMJ
	x.Readings += u.Readings
}

// Zero reports whether every field of x is 0.
func (x Usage) Zero() bool { return x == Usage{} }

// Acc accumulates usage deltas by key. The zero value is ready to use.
// It remembers the last key added to: consecutive readings of a GPU
// nearly always add to the same row, and comparing a key costs less than
// hashing it.
type Acc struct {
	m       map[UsageKey]*Usage
	lastKey UsageKey
	last    *Usage
}

// Add adds u under k.
func (a *Acc) Add(k UsageKey, u Usage) {
	if u.Zero() {
		return
	}
	if a.last != nil && k == a.lastKey {
		a.last.Add(u)
		return
	}
	x := a.m[k]
	if x == nil {
		if a.m == nil {
			a.m = map[UsageKey]*Usage{}
		}
		x = &Usage{}
		a.m[k] = x
	}
	x.Add(u)
	a.lastKey, a.last = k, x
}

// Reset empties a.
func (a *Acc) Reset() {
	clear(a.m)
	a.last = nil
}

// Rows returns a's non-zero rows sorted by hour, pool, use, lease.
func (a *Acc) Rows() []Row {
	out := make([]Row, 0, len(a.m))
	for k, u := range a.m {
		if !u.Zero() {
			out = append(out, Row{UsageKey: k, Usage: *u})
		}
	}
	slices.SortFunc(out, func(x, y Row) int { return CompareKeys(x.UsageKey, y.UsageKey) })
	return out
}

// Row is one rollup row.
type Row struct {
	UsageKey
	Usage
}

// CompareKeys orders keys by hour, pool, use, lease.
func CompareKeys(x, y UsageKey) int {
	return cmp.Or(cmp.Compare(x.Hour, y.Hour), cmp.Compare(x.Pool, y.Pool), cmp.Compare(x.Use, y.Use),
		cmp.Compare(x.LeaseID, y.LeaseID), cmp.Compare(x.TenantID, y.TenantID))
}

// Config tunes the ledger; the zero value of a field means its default.
type Config struct {
	// MaxGap is the most time one reading accounts for: the stretch since
	// the GPU's previous reading, but at most MaxGap (default 30s, three
	// scrape intervals). Time beyond it is not covered: no data.
	MaxGap time.Duration
	// EnergyWindow is the most time the energy between two readings is
	// spread over (default 24h): a GPU silent for longer gets its
	// counter's growth in the last EnergyWindow before the new reading.
	EnergyWindow time.Duration
	// UsedPct is the utilization at or above which time counts as used
	// (default 5).
	UsedPct int
	// Health says which time is healthy (default DefaultHealthPolicy).
	Health *HealthPolicy
	// LateWindow is how late a reading may arrive (default 24h): one
	// older than now − LateWindow is refused as too late, and stored
	// readings older than it may be pruned (Ledger.Cutoff).
	LateWindow time.Duration
	// MaxSkew is how far ahead of now a reading's time may be (default
	// 5m); later ones are refused as too early.
	MaxSkew time.Duration
}

// DefaultConfig is Config with every default filled in.
var DefaultConfig = Config{}.withDefaults()

func (c Config) withDefaults() Config {
	if c.MaxGap == 0 {
		c.MaxGap = 30 * time.Second
	}
	if c.EnergyWindow == 0 {
		c.EnergyWindow = 24 * time.Hour
	}
	if c.UsedPct == 0 {
		c.UsedPct = 5
	}
	if c.Health == nil {
		p := DefaultHealthPolicy
		c.Health = &p
	}
	if c.LateWindow == 0 {
		c.LateWindow = 24 * time.Hour
	}
	if c.MaxSkew == 0 {
		c.MaxSkew = 5 * time.Minute
	}
	return c
}

// Validate checks c's fields; it returns an error naming the first field
// out of range, or nil.
func (c Config) Validate() error {
	c = c.withDefaults()
	switch {
	case c.MaxGap < time.Second || c.MaxGap > time.Hour:
		return fmt.Errorf("meter: max gap %s: must be between 1s and 1h", c.MaxGap)
	case c.EnergyWindow < c.MaxGap || c.EnergyWindow > 7*24*time.Hour:
		return fmt.Errorf("meter: energy window %s: must be between the max gap and 7 days", c.EnergyWindow)
	case c.UsedPct < 1 || c.UsedPct > 100:
		return fmt.Errorf("meter: used threshold %d%%: must be within 1..100", c.UsedPct)
	case c.LateWindow < time.Minute || c.LateWindow > 30*24*time.Hour:
		return fmt.Errorf("meter: late window %s: must be between 1m and 30 days", c.LateWindow)
	case c.MaxSkew < 0 || c.MaxSkew > time.Hour:
		return fmt.Errorf("meter: max skew %s: must be between 0 and 1h", c.MaxSkew)
	}
	return nil
}

const hourMs = int64(time.Hour / time.Millisecond)

// Contribute adds to acc, times sign (+1 or −1), what the pair of
// consecutive readings prev, cur of one GPU on node contributes: the
// stretch [prev.T, cur.T) split at hour boundaries and at changes of
// holder. Covered time is the last MaxGap of it; energy (the counter's
// growth, or cur's value after a reset) is spread over it in proportion to
// time, rounded so that the pieces sum exactly. The result depends on the
// pair alone, so that removing a pair (sign −1) undoes adding it, which is
// what makes ingestion exact in any arrival order.
func (c *Config) Contribute(acc *Acc, node NodeRef, prev, cur Point, spans []Span, sign int64) {
	a, b := prev.T, cur.T
	if b <= a {
		return
	}
	energy := cur.EnergyMJ - prev.EnergyMJ
	if cur.EnergyMJ < prev.EnergyMJ {
		energy = cur.EnergyMJ // the counter restarted from 0 in between
	}
	eStart := max(a, b-c.EnergyWindow.Milliseconds())
	tStart := max(a, b-c.MaxGap.Milliseconds())
	used := cur.UtilPct >= c.UsedPct
	healthy := c.Health.Healthy(prev, cur)
	total := uint64(b - eStart)
	var done, given uint64 // energy time walked, energy given out
	x, si := eStart, 0
	for x < b {
		hourEnd := x - x%hourMs + hourMs // times are after 2000: positive
		y := min(b, hourEnd)
		for si < len(spans) && spans[si].To <= x {
			si++
		}
		key := UsageKey{Hour: hourEnd - hourMs, Pool: node.Pool}
		if si < len(spans) && spans[si].From <= x {
			y = min(y, spans[si].To)
			key.Use, key.LeaseID, key.TenantID = UseLease, spans[si].LeaseID, spans[si].TenantID
		} else {
			if si < len(spans) {
				y = min(y, spans[si].From)
			}
			key.Use = UseIdle
			if used {
				key.Use = UseInternal
			}
		}
		done += uint64(y - x)
		share := mulDiv(uint64(energy), done, total)
		var u Usage
		u.EnergyMJ = sign * int64(share-given)
		given = share
		if t := y - max(x, tStart); t > 0 {
			u.GPUms = sign * t
			if used {
				u.UsedMs = u.GPUms
			}
			if healthy {
				u.HealthyMs = u.GPUms
			}
		}
		acc.Add(key, u)
		x = y
	}
}

// keyAt returns the rollup key of the instant t on node for a reading of
// utilization util.
func (c *Config) keyAt(node NodeRef, t int64, util int, spans []Span) UsageKey {
	k := UsageKey{Hour: t - t%hourMs, Pool: node.Pool, Use: UseIdle}
	for _, s := range spans {
		if s.From <= t && t < s.To {
			k.Use, k.LeaseID, k.TenantID = UseLease, s.LeaseID, s.TenantID
			return k
		}
	}
	if util >= c.UsedPct {
		k.Use = UseInternal
	}
	return k
}

// mulDiv returns x*y/z for y ≤ z, z > 0, without overflow.
func mulDiv(x, y, z uint64) uint64 {
	hi, lo := bits.Mul64(x, y)
	q, _ := bits.Div64(hi, lo, z)
	return q
}

// Samples is the stored points the ledger reads and writes, within one
// transaction.
type Samples interface {
	// Last returns the GPU's latest stored point; false when it has none.
	Last(g GPU) (Point, bool, error)
	// Around returns the GPU's stored points just before and just after
	// t, and whether one is stored at t exactly.
	Around(g GPU, t int64) (prev Point, okPrev bool, next Point, okNext bool, at bool, err error)
	// Put stores p (never a duplicate: the ledger checks first).
	Put(g GPU, p Point) error
}

// Result counts what became of a batch's readings.
type Result struct {
	Accepted   int `json:"accepted"`
	Duplicates int `json:"duplicates"`
	TooLate    int `json:"too_late"`
	TooEarly   int `json:"too_early"`
}

// Add adds r to x.
func (x *Result) Add(r Result) {
	x.Accepted += r.Accepted
	x.Duplicates += r.Duplicates
	x.TooLate += r.TooLate
	x.TooEarly += r.TooEarly
}

// Ledger applies readings to the hourly rollup exactly once each. It
// caches each GPU's latest point, so that readings in time order — the
// common case — read no store; a reading older than its GPU's latest is
// placed between its stored neighbours. A Ledger is not safe for
// concurrent use; after a failed transaction call Reset.
type Ledger struct {
	cfg   Config
	last  lastPoints
	spans []Span
}

// lastPoints is each GPU's latest point, by node ordinal then GPU index:
// ordinals are small dense integers, and a slice lookup costs a fraction
// of hashing a key into a map of a few hundred thousand GPUs.
type lastPoints struct {
	nodes [][]lastPoint
	far   map[GPU]Point // ordinals beyond maxDense
}

type lastPoint struct {
	p  Point
	ok bool
}

const maxDense = 1 << 22

func (x *lastPoints) get(g GPU) (Point, bool) {
	if g.Node < 0 || g.Node >= maxDense || g.Index < 0 {
		p, ok := x.far[g]
		return p, ok
	}
	if g.Node >= int64(len(x.nodes)) || g.Index >= len(x.nodes[g.Node]) {
		return Point{}, false
	}
	lp := x.nodes[g.Node][g.Index]
	return lp.p, lp.ok
}

func (x *lastPoints) set(g GPU, p Point) {
	if g.Node < 0 || g.Node >= maxDense || g.Index < 0 {
		if x.far == nil {
			x.far = map[GPU]Point{}
		}
		x.far[g] = p
		return
	}
	if g.Node >= int64(len(x.nodes)) {
		x.nodes = append(x.nodes, make([][]lastPoint, int(g.Node)+1-len(x.nodes)+len(x.nodes)/4)...)
	}
	gs := x.nodes[g.Node]
	if g.Index >= len(gs) {
		gs = append(gs, make([]lastPoint, g.Index+1-len(gs))...)
		x.nodes[g.Node] = gs
	}
	gs[g.Index] = lastPoint{p, true}
}

func (x *lastPoints) drop(g GPU) {
	if g.Node < 0 || g.Node >= maxDense || g.Index < 0 {
		delete(x.far, g)
		return
	}
	if g.Node < int64(len(x.nodes)) && g.Index < len(x.nodes[g.Node]) {
		x.nodes[g.Node][g.Index] = lastPoint{}
	}
}

// NewLedger returns a ledger with cfg (defaults filled in); it fails when
// cfg is invalid.
func NewLedger(cfg Config) (*Ledger, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Ledger{cfg: cfg.withDefaults()}, nil
}

// Config returns the ledger's configuration with defaults filled in.
func (l *Ledger) Config() Config { return l.cfg }

// Reset forgets the cached latest points (after a failed transaction).
func (l *Ledger) Reset() { l.last = lastPoints{} }

// Cutoff returns the oldest time (Unix ms) a reading may have at now;
// stored points older than it are needed only as the latest one per GPU.
func (l *Ledger) Cutoff(now time.Time) int64 {
	return now.UnixMilli() - l.cfg.LateWindow.Milliseconds()
}

// Forget drops a GPU's cached latest point (when its stored points are
// pruned or its node leaves the fleet).
func (l *Ledger) Forget(g GPU) { l.last.drop(g) }

// Apply applies one reading of GPU g on node at now: a duplicate of a
// stored one (same GPU and time) changes nothing; one too late or too
// early is refused; any other is stored and its contribution — and the
// change it makes to its neighbours' — added to acc.
func (l *Ledger) Apply(st Samples, h Holders, node NodeRef, g GPU, p Point, now int64, acc *Acc) (Result, error) {
	if p.T < now-l.cfg.LateWindow.Milliseconds() {
		return Result{TooLate: 1}, nil
	}
	if p.T > now+l.cfg.MaxSkew.Milliseconds() {
		return Result{TooEarly: 1}, nil
	}
	last, ok := l.last.get(g)
	if !ok {
		var err error
		if last, ok, err = st.Last(g); err != nil {
			return Result{}, err
		}
	}
	var prev, next Point
	okPrev, okNext := false, false
	switch {
	case ok && p.T == last.T:
		l.last.set(g, last)
		return Result{Duplicates: 1}, nil
	case !ok || p.T > last.T:
		prev, okPrev = last, ok
	default:
		var at bool
		var err error
		if prev, okPrev, next, okNext, at, err = st.Around(g, p.T); err != nil {
			return Result{}, err
		}
		if at {
			l.last.set(g, last)
			return Result{Duplicates: 1}, nil
		}
	}
	if err := st.Put(g, p); err != nil {
		return Result{}, err
	}
	from, to := p.T-1, p.T
	if okPrev {
		from = min(from, max(prev.T, p.T-l.cfg.EnergyWindow.Milliseconds()))
	}
	if okNext {
		to = next.T
	}
	l.spans = h.Spans(node.Ordinal, from, to, l.spans[:0])
	if okPrev {
		l.cfg.Contribute(acc, node, prev, p, l.spans, 1)
	}
	if okNext {
		if okPrev {
			l.cfg.Contribute(acc, node, prev, next, l.spans, -1)
		}
		l.cfg.Contribute(acc, node, p, next, l.spans, 1)
	}
	acc.Add(l.cfg.keyAt(node, p.T-1, p.UtilPct, l.spans), Usage{Readings: 1})
	if !ok || p.T > last.T {
		last = p
	}
	l.last.set(g, last)
	return Result{Accepted: 1}, nil
}

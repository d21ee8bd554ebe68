package engine

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/neocloud/neocloud/internal/fleet"
	"github.com/neocloud/neocloud/internal/meter"
	"github.com/neocloud/neocloud/internal/tenant"
	"github.com/neocloud/neocloud/internal/valid"
)

// MeterTx is what telemetry ingestion reads and writes within one store
// transaction: the stored points (meter.Samples; Put may buffer until
// Flush, and Around flushes first), the batches already applied, the
// hourly rollup and the health findings.
type MeterTx interface {
	meter.Samples
	// Flush writes the points Put buffered.
	Flush() error
	// BatchResult returns what the batch with that ID came to when it was
	// applied; false when it never was.
	BatchResult(id string) (meter.Result, bool, error)
	// RecordBatch remembers an applied batch.
	RecordBatch(b BatchRecord) error
	// AddUsage adds each row's amounts to the stored row of its key
	// (creating it).
	AddUsage(rows []meter.Row) error
	// AddFindings appends health findings.
	AddFindings(fs []meter.Finding) error
	// PruneSamples deletes, per GPU of the nodes with ordinals in
	// [fromNode, toNode), the points older than cutoff (Unix ms) except
	// the latest of them, and the batch records older than cutoff; it
	// returns how many points it deleted.
	PruneSamples(cutoff, fromNode, toNode int64) (int64, error)
}

// BatchRecord is one applied telemetry batch.
type BatchRecord struct {
	ID       string
	Agent    string
	Received time.Time
	Result   meter.Result
}

// UsageFilter selects rollup rows: hours in [From, To) (zero: no bound),
// one lease, one tenant's leases, one pool, one use; empty fields select
// all.
type UsageFilter struct {
	From, To time.Time
	LeaseID  string
	TenantID string
	Pool     string
	Use      meter.Use
	// Unhealthy keeps the lease rows whose healthy time is below their
	// covered time.
	Unhealthy bool
}

// MaxFindingNodes is the most node names one FindingFilter names: the
// store binds each as a parameter.
const MaxFindingNodes = 500

// FindingFilter selects health findings: one node ("" all), at or after
// Since, newest first, at most Limit (0: 100).
type FindingFilter struct {
	Node string
	// Nodes, when set, keeps findings on these nodes only (at most
	// MaxFindingNodes names; Node, when also set, must be among them).
	Nodes []string
	Since time.Time
	// Until, when set, keeps findings before it (exclusive).
	Until time.Time
	Limit int
}

// IngestResult answers a telemetry push.
type IngestResult struct {
	BatchID string
	meter.Result
	// Replayed is true when the batch had been applied before: the result
	// is that first application's, and nothing changed now.
	Replayed bool
}

// meterState is the ingestion side of the engine: its own single writer
// (a goroutine that applies queued batches, several per transaction), so
// that telemetry never waits behind capacity commands and vice versa.
type meterState struct {
	cfg    meter.Config
	watch  meter.WatchOptions
	ledger *meter.Ledger
	health *meter.Watch
	in     chan *ingestOp
	once   sync.Once
	// mu is held while a group of batches is applied and by MeterTick:
	// the ledger, the watch and the spans below are the writer's.
	mu sync.Mutex

	// holders is who held each node when: allocations' exact spans by
	// node ordinal, refreshed from the capacity state for the nodes of
	// each transaction, and keeping ended ones for the late window (the
	// capacity state drops them an hour or so after they end).
	holders   map[int64][]meter.Span
	refreshed map[int64]time.Time // when each node's spans were last brought up to date
	// The prune's pass over node ordinals: the next to prune (0: no pass
	// running), when the last pass began, and the largest ordinal seen.
	pruneNext int64
	pruned    time.Time
	maxOrd    int64
}

// ingestOp is one batch waiting for the meter's writer.
type ingestOp struct {
	ctx   context.Context
	b     meter.Batch
	refs  []meter.NodeRef // by reading
	gpus  []int           // each reading's node's GPU count
	names []string        // distinct node names of the batch
	done  chan ingestDone
}

type ingestDone struct {
	res IngestResult
	err error
}

// maxIngestGroup bounds the readings one transaction applies.
const maxIngestGroup = 200_000

func newMeterState(cfg meter.Config, watch meter.WatchOptions) (*meterState, error) {
	l, err := meter.NewLedger(cfg)
	if err != nil {
		return nil, err
	}
	cfg = l.Config()
	if watch.Policy.FatalXIDs == nil && !watch.Policy.ThermalDegrades {
		watch.Policy = *cfg.Health // the rules and the healthy time agree
	}
	if watch.Interval == 0 {
		watch.Interval = 10 * time.Second // the agent's default
	}
	return &meterState{cfg: cfg, watch: watch, ledger: l, health: meter.NewWatch(watch),
		in: make(chan *ingestOp, 256), holders: map[int64][]meter.Span{}, refreshed: map[int64]time.Time{}}, nil
}

// Ingest applies a batch of GPU readings: each reading is attributed to
// the lease that held its node at its time (or to internal use or idle)
// and added to the hourly usage rollup exactly once — a duplicate of a
// stored reading, or a batch ID seen before, changes nothing. Readings
// older than the late window or ahead of the clock are counted and left
// out. Invalid input (a *valid.Error: a field breaking a rule, a node the
// fleet does not have, a GPU index beyond the node's) changes nothing.
// Health findings (a fatal XID, a row-remap failure) are recorded, and a
// node found failed is taken out of service like an operator would, which
// replaces it for the guaranteed leases holding it.
func (e *Engine) Ingest(ctx context.Context, p tenant.Principal, b meter.Batch) (IngestResult, error) {
	if err := e.check(ctx, p, tenant.PermTelemetryWrite, "telemetry.push", "batch/"+b.ID, ""); err != nil {
		return IngestResult{}, err
	}
	if err := b.Validate(); err != nil {
		return IngestResult{}, err
	}
	o := &ingestOp{ctx: ctx, b: b, refs: make([]meter.NodeRef, len(b.Readings)), gpus: make([]int, len(b.Readings)), done: make(chan ingestDone, 1)}
	err := e.readCap(ctx, func(c *capState) error {
		var bad valid.Error
		for i, r := range b.Readings {
			n, ok := c.byName[r.Node]
			if !ok || !n.Retired.IsZero() {
				if bad.Len() < 20 {
					bad.Add("readings["+strconv.Itoa(i)+"].node", r.Node, "must name a node in service")
				}
				continue
			}
			if r.GPU >= int(n.GPUs) {
				if bad.Len() < 20 {
					bad.Add("readings["+strconv.Itoa(i)+"].gpu", r.GPU, "must be below the node's %d GPUs", n.GPUs)
				}
				continue
			}
			if i == 0 || r.Node != b.Readings[i-1].Node {
				o.names = append(o.names, r.Node)
			}
			o.refs[i] = meter.NodeRef{Ordinal: n.Ordinal, Pool: n.PoolID()}
		}
		return bad.Err()
	})
	if err != nil {
		return IngestResult{}, err
	}
	slices.Sort(o.names)
	o.names = slices.Compact(o.names)
	m := e.meter
	m.once.Do(func() { go e.meterWriter() })
	select {
	case m.in <- o:
	case <-ctx.Done():
		return IngestResult{}, ctx.Err()
	case <-e.closed:
		return IngestResult{}, ErrClosed
	}
	select {
	case d := <-o.done:
		return d.res, d.err
	case <-e.closed:
		return IngestResult{}, ErrClosed
	}
}

// meterWriter applies queued batches, as many as are waiting (up to
// maxIngestGroup readings) per transaction, until the engine closes.
func (e *Engine) meterWriter() {
	m := e.meter
	for {
		var group []*ingestOp
		select {
		case o := <-m.in:
			group = append(group, o)
		case <-e.closed:
			return
		}
		n := len(group[0].b.Readings)
	more:
		for n < maxIngestGroup {
			select {
			case o := <-m.in:
				group = append(group, o)
				n += len(o.b.Readings)
			default:
				break more
			}
		}
		e.applyIngest(group)
	}
}

// applyIngest applies a group of batches in one transaction and answers
// them; then it acts on the failures the health rules found.
func (e *Engine) applyIngest(group []*ingestOp) {
	m := e.meter
	m.mu.Lock()
	unlocked := false
	defer func() {
		if !unlocked {
			m.mu.Unlock()
		}
	}()
	now := e.clock.Now()
	ctx, cancel := context.WithTimeout(context.Background(), commitTimeout)
	defer cancel()
	results := make([]IngestResult, len(group))
	var findings []meter.Finding
	err := e.refreshHolders(ctx, group, now)
	if err == nil {
		err = e.store.Update(ctx, func(tx Tx) error {
			findings = findings[:0]
			return e.ingestTx(ctx, tx.Meter(ctx), group, results, now, &findings)
		})
	}
	if err != nil {
		m.ledger.Reset()
		// The watch noted what these readings showed; nothing of it was
		// stored, so let the retry report it again.
		for _, o := range group {
			for _, name := range o.names {
				m.health.Clear(name)
			}
		}
		err = fmt.Errorf("ingest: %w", err)
	}
	for i, o := range group {
		o.done <- ingestDone{res: results[i], err: err}
	}
	m.mu.Unlock()
	unlocked = true
	if err == nil {
		e.failNodes(findings) // outside the lock: it waits for the capacity writer
	}
}

// ingestTx applies group within one transaction.
func (e *Engine) ingestTx(ctx context.Context, mt MeterTx, group []*ingestOp, results []IngestResult, now time.Time, findings *[]meter.Finding) error {
	m := e.meter
	acc := &meter.Acc{}
	nowMs := now.UnixMilli()
	seen := map[string]int{} // batch ID → index in group, for a batch pushed twice at once
	var order []int
	for gi, o := range group {
		results[gi].BatchID = o.b.ID
		if j, ok := seen[o.b.ID]; ok {
			results[gi] = results[j]
			results[gi].Replayed = true
			continue
		}
		seen[o.b.ID] = gi
		if r, ok, err := mt.BatchResult(o.b.ID); err != nil {
			return err
		} else if ok {
			results[gi].Result, results[gi].Replayed = r, true
			continue
		}
		// In time order per GPU, so that the readings of one batch take
		// the cheap in-order path.
		order = order[:0]
		for i := range o.b.Readings {
			order = append(order, i)
		}
		rs := o.b.Readings
		slices.SortFunc(order, func(x, y int) int {
			a, b := o.refs[x], o.refs[y]
			if a.Ordinal != b.Ordinal {
				return cmp.Compare(a.Ordinal, b.Ordinal)
			}
			if rs[x].GPU != rs[y].GPU {
				return rs[x].GPU - rs[y].GPU
			}
			return rs[x].Time.Compare(rs[y].Time)
		})
		var res meter.Result
		h := holderView{m.holders}
		for _, i := range order {
			r := rs[i]
			ref := o.refs[i]
			out, err := m.ledger.Apply(mt, h, ref, meter.GPU{Node: ref.Ordinal, Index: r.GPU}, meter.PointOf(r), nowMs, acc)
			if err != nil {
				return fmt.Errorf("batch %s: reading of %s GPU %d at %s: %w", o.b.ID, r.Node, r.GPU, r.Time.Format(time.RFC3339Nano), err)
			}
			res.Add(out)
			m.maxOrd = max(m.maxOrd, ref.Ordinal)
			if out.Accepted == 1 {
				*findings = append(*findings, m.health.Observe(r)...)
			}
		}
		results[gi].Result = res
		if err := mt.RecordBatch(BatchRecord{ID: o.b.ID, Agent: o.b.Agent, Received: now, Result: res}); err != nil {
			return fmt.Errorf("batch %s: %w", o.b.ID, err)
		}
	}
	if err := mt.Flush(); err != nil {
		return err
	}
	if err := mt.AddUsage(acc.Rows()); err != nil {
		return err
	}
	if len(*findings) > 0 {
		if err := mt.AddFindings(*findings); err != nil {
			return err
		}
	}
	return nil
}

// holderView is meter.Holders over the meter's spans.
type holderView struct{ m map[int64][]meter.Span }

func (h holderView) Spans(node int64, from, to int64, dst []meter.Span) []meter.Span {
	for _, s := range h.m[node] {
		if s.From < to && from < s.To {
			dst = append(dst, s)
		}
	}
	return dst
}

// refreshHolders brings the spans of the group's nodes up to date. The
// capacity state holds every allocation that ends after complete — the
// later of its load's origin and an hour ago (it drops ended ones an hour
// or so after their end) — exactly. A node whose spans were refreshed at
// or after complete can take the capacity state's allocations ending
// after complete over its own (older ones cannot change any more, and an
// allocation made or cut since then ends after it). Any other node — first
// seen, or silent for over an hour — is read from the store, which keeps
// every allocation, over the late window.
func (e *Engine) refreshHolders(ctx context.Context, group []*ingestOp, now time.Time) error {
	m := e.meter
	var stale []int64
	err := e.readCap(ctx, func(c *capState) error {
		complete := later(c.loaded, now.Add(-time.Hour))
		for _, o := range group {
			for _, name := range o.names {
				n := c.byName[name]
				if n.Ordinal == 0 {
					continue
				}
				if r, ok := m.refreshed[n.Ordinal]; !ok || r.Before(complete) {
					stale = append(stale, n.Ordinal)
					continue
				}
				keep := slices.DeleteFunc(slices.Clone(m.holders[n.Ordinal]), func(s meter.Span) bool { return s.To > complete.UnixMilli() })
				for _, h := range c.ix.HoldsOn(n.Ordinal, complete) {
					a, ok := c.allocs[h.ID]
					if !ok || !a.End.After(complete) {
						continue // a wipe's hold
					}
					keep = append(keep, meter.Span{ID: a.ID, From: a.Start.UnixMilli(), To: a.End.UnixMilli(), LeaseID: a.LeaseID, TenantID: a.TenantID})
				}
				sortSpans(keep)
				m.holders[n.Ordinal] = keep
				m.refreshed[n.Ordinal] = now
			}
		}
		return nil
	})
	if err != nil || len(stale) == 0 {
		return err
	}
	slices.Sort(stale)
	stale = slices.Compact(stale)
	as, err := e.store.Allocations(ctx, AllocationFilter{EndAfter: now.Add(-m.cfg.LateWindow - m.cfg.EnergyWindow),
		NodeFrom: stale[0], NodeTo: stale[len(stale)-1] + 1})
	if err != nil {
		return fmt.Errorf("holders: %w", err)
	}
	for _, o := range stale {
		var spans []meter.Span
		for _, a := range as {
			if a.NodeFrom <= o && o < a.NodeTo {
				spans = append(spans, meter.Span{ID: a.ID, From: a.Start.UnixMilli(), To: a.End.UnixMilli(), LeaseID: a.LeaseID, TenantID: a.TenantID})
			}
		}
		sortSpans(spans)
		m.holders[o] = spans
		m.refreshed[o] = now
	}
	return nil
}

func sortSpans(s []meter.Span) {
	slices.SortFunc(s, func(a, b meter.Span) int { return cmp.Compare(a.From, b.From) })
}

// meterPrincipal acts for the health rules when they fail a node.
var meterPrincipal = tenant.Principal{KeyID: "meter", Role: tenant.OperatorAdmin}

// failNodes takes out of service the nodes with a failed finding that are
// still in service: like an operator marking them failed, which replaces
// them for the guaranteed leases holding them.
func (e *Engine) failNodes(fs []meter.Finding) {
	done := map[string]bool{}
	for _, f := range fs {
		if f.Severity != meter.SeverityFailed || done[f.Node] {
			continue
		}
		done[f.Node] = true
		var st fleet.State
		_ = e.readCap(context.Background(), func(c *capState) error {
			st = c.byName[f.Node].State
			return nil
		})
		if !schedulable(st) {
			continue
		}
		reason := "health: " + f.Detail
		if len(reason) > 500 {
			reason = reason[:500]
		}
		ctx := WithRequestID(context.Background(), "meter")
		if _, err := e.SubmitNodeState(ctx, meterPrincipal, f.Node, fleet.Failed, reason); err != nil {
			e.log.Error("health: fail node", "node", f.Node, "err", err)
		}
	}
}

// pruneNodes is how many nodes' old readings one MeterTick prunes: a
// bounded delete (about 64 × 8 GPUs × 360 readings an hour), so that the
// prune never holds the meter's writer for long; a pass over the fleet
// starts at most once an hour.
const pruneNodes = 64

// MeterTick runs the meter's periodic work at the clock's now: nodes that
// have stopped reporting are found (a no-data finding, recorded, and the
// node failed), and the stored readings older than the late window are
// pruned, a few nodes per tick (the latest of them per GPU stays: a late
// reading's neighbour). The server calls it with the engine's Tick.
func (e *Engine) MeterTick(ctx context.Context) ([]meter.Finding, error) {
	fs, err := e.meterTick(ctx)
	if err != nil {
		return nil, err
	}
	e.failNodes(fs) // outside the lock: it waits for the capacity writer
	return fs, nil
}

func (e *Engine) meterTick(ctx context.Context) ([]meter.Finding, error) {
	m := e.meter
	m.mu.Lock()
	defer m.mu.Unlock()
	now := e.clock.Now()
	fs := m.health.Stale(now)
	if m.pruneNext == 0 && now.Sub(m.pruned) >= time.Hour && m.maxOrd > 0 {
		m.pruneNext, m.pruned = 1, now // a new pass
	}
	from := m.pruneNext
	if len(fs) == 0 && from == 0 {
		return nil, nil
	}
	cutoff := m.ledger.Cutoff(now)
	err := e.store.Update(ctx, func(tx Tx) error {
		mt := tx.Meter(ctx)
		if len(fs) > 0 {
			if err := mt.AddFindings(fs); err != nil {
				return err
			}
		}
		if from > 0 {
			if _, err := mt.PruneSamples(cutoff, from, from+pruneNodes); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		for _, f := range fs {
			m.health.Clear(f.Node) // not stored: report it again next tick
		}
		return nil, fmt.Errorf("meter tick: %w", err)
	}
	if from > 0 {
		m.pruneNext = from + pruneNodes
		if m.pruneNext > m.maxOrd {
			m.pruneNext = 0 // the pass is done
			old := cutoff - m.cfg.EnergyWindow.Milliseconds()
			for o, ss := range m.holders {
				ss = slices.DeleteFunc(ss, func(s meter.Span) bool { return s.To < old })
				if len(ss) == 0 {
					delete(m.holders, o)
					delete(m.refreshed, o) // read from the store when it reports again
				} else {
					m.holders[o] = ss
				}
			}
		}
	}
	return fs, nil
}

// ClearHealth forgets the findings reported for a node, so that a new
// problem after its repair is reported again.
func (e *Engine) ClearHealth(node string) {
	m := e.meter
	m.mu.Lock()
	m.health.Clear(node)
	m.mu.Unlock()
}

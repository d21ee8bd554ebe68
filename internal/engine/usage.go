package engine

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/neocloud/neocloud/internal/lease"
	"github.com/neocloud/neocloud/internal/meter"
	"github.com/neocloud/neocloud/internal/tenant"
	"github.com/neocloud/neocloud/internal/valid"
)

// Steps of a usage query.
const (
	StepHour  = "hour"
	StepDay   = "day"
	StepMonth = "month"
)

// maxUsageSteps bounds the buckets one usage query returns per series.
const maxUsageSteps = 24 * 93

// UsageQuery selects usage: [From, To) in Steps (hour, day or month, UTC),
// optionally one lease, one tenant's leases, one pool, one use.
type UsageQuery struct {
	From, To time.Time
	Step     string
	LeaseID  string
	TenantID string
	Pool     string
	Use      meter.Use
}

// UsagePoint is one series' amounts over one step: a lease's (Use lease),
// or a pool's internal use or idle time. AllocatedGPUms is what the
// lease's allocations held (GPUs × ms), whether or not telemetry came;
// the embedded meter.Usage is what the readings showed.
type UsagePoint struct {
	From, To       time.Time
	Pool           string
	Use            meter.Use
	LeaseID        string
	TenantID       string
	AllocatedGPUms int64
	meter.Usage
}

// stepStart returns the start of the step that holds t.
func stepStart(step string, t time.Time) time.Time {
	t = t.UTC()
	switch step {
	case StepDay:
		return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
	case StepMonth:
		return time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
	}
	return t.Truncate(time.Hour)
}

func stepNext(step string, t time.Time) time.Time {
	switch step {
	case StepDay:
		return t.AddDate(0, 0, 1)
	case StepMonth:
		return t.AddDate(0, 1, 0)
	}
	return t.Add(time.Hour)
}

// Validate checks q: a step of hour, day or month; From before To, both
// set; at most maxUsageSteps steps; a known use.
func (q UsageQuery) Validate() error {
	var e valid.Error
	if !slices.Contains([]string{StepHour, StepDay, StepMonth}, q.Step) {
		e.Add("step", q.Step, "must be hour, day or month")
	}
	if q.From.IsZero() {
		e.Add("from", nil, "is required")
	}
	if q.To.IsZero() {
		e.Add("to", nil, "is required")
	}
	if !q.From.IsZero() && !q.To.IsZero() {
		if !q.From.Before(q.To) {
			e.Add("to", q.To.Format(time.RFC3339), "must be after from")
		} else if e.Len() == 0 {
			n := 0
			for t := stepStart(q.Step, q.From); t.Before(q.To) && n <= maxUsageSteps; t = stepNext(q.Step, t) {
				n++
			}
			if n > maxUsageSteps {
				e.Add("to", q.To.Format(time.RFC3339), "must be at most %d %ss after from", maxUsageSteps, q.Step)
			}
		}
	}
	if q.Use != "" && !slices.Contains([]meter.Use{meter.UseLease, meter.UseInternal, meter.UseIdle}, q.Use) {
		e.Add("use", string(q.Use), "must be lease, internal or idle")
	}
	return e.Err()
}

// Usage returns usage by step: per lease what its allocations held and
// what telemetry showed of it, and — for operators — each pool's internal
// use and idle time. A tenant sees only its own leases, and only the time
// it held their nodes: readings of a node outside that time are never
// attributed to it. Points are ordered by step, pool, use and lease.
func (e *Engine) Usage(ctx context.Context, p tenant.Principal, q UsageQuery) ([]UsagePoint, error) {
	if q.Step == "" {
		q.Step = StepHour
	}
	if err := q.Validate(); err != nil {
		return nil, err
	}
	if q.LeaseID != "" {
		l, err := e.usageLease(ctx, p, "usage.get", q.LeaseID)
		if err != nil {
			return nil, err
		}
		if q.TenantID != "" && q.TenantID != l.TenantID {
			return []UsagePoint{}, nil
		}
	}
	t, err := e.scope(ctx, p, tenant.PermUsageRead, "usage.list", q.TenantID)
	if err != nil {
		return nil, err
	}
	q.TenantID = t
	if q.TenantID != "" {
		if q.Use != "" && q.Use != meter.UseLease {
			return []UsagePoint{}, nil
		}
		q.Use = meter.UseLease // a tenant's own leases: never the owner's internal or idle time
	}
	from, to := stepStart(q.Step, q.From), q.To
	rows, err := e.store.UsageRows(ctx, UsageFilter{From: from.Truncate(time.Hour), To: to, LeaseID: q.LeaseID, TenantID: q.TenantID, Pool: q.Pool, Use: q.Use})
	if err != nil {
		return nil, err
	}
	type key struct {
		step              time.Time
		pool              string
		use               meter.Use
		leaseID, tenantID string
	}
	points := map[key]*UsagePoint{}
	get := func(k key) *UsagePoint {
		pt := points[k]
		if pt == nil {
			pt = &UsagePoint{From: k.step, To: stepNext(q.Step, k.step), Pool: k.pool, Use: k.use, LeaseID: k.leaseID, TenantID: k.tenantID}
			points[k] = pt
		}
		return pt
	}
	for _, r := range rows {
		s := stepStart(q.Step, time.UnixMilli(r.Hour))
		get(key{s, r.Pool, r.Use, r.LeaseID, r.TenantID}).Add(r.Usage)
	}
	// What the leases held: those with readings, the one asked for, and a
	// tenant's leases.
	if q.Use == "" || q.Use == meter.UseLease {
		leases := map[string]bool{}
		for _, r := range rows {
			if r.LeaseID != "" {
				leases[r.LeaseID] = true
			}
		}
		if q.LeaseID != "" {
			leases[q.LeaseID] = true
		}
		if q.TenantID != "" {
			ls, err := e.store.Leases(ctx, LeaseFilter{TenantID: q.TenantID, Pool: q.Pool})
			if err != nil {
				return nil, err
			}
			for _, l := range ls {
				if l.Start.Before(to) && from.Before(l.End) && (q.LeaseID == "" || l.ID == q.LeaseID) {
					leases[l.ID] = true
				}
			}
		}
		for _, id := range slices.Sorted(maps.Keys(leases)) {
			l, err := e.store.Lease(ctx, id)
			if err != nil {
				return nil, fmt.Errorf("usage: lease %s: %w", id, err)
			}
			if q.Pool != "" && l.Pool != q.Pool {
				continue
			}
			held, err := e.heldByHour(ctx, id, from, to)
			if err != nil {
				return nil, err
			}
			for h, ms := range held {
				s := stepStart(q.Step, h)
				get(key{s, l.Pool, meter.UseLease, l.ID, l.TenantID}).AllocatedGPUms += ms
			}
		}
	}
	out := make([]UsagePoint, 0, len(points))
	for _, pt := range points {
		if pt.From.Before(to) && from.Before(pt.To) {
			out = append(out, *pt)
		}
	}
	slices.SortFunc(out, func(a, b UsagePoint) int {
		return meter.CompareKeys(
			meter.UsageKey{Hour: a.From.UnixMilli(), Pool: a.Pool, Use: a.Use, LeaseID: a.LeaseID, TenantID: a.TenantID},
			meter.UsageKey{Hour: b.From.UnixMilli(), Pool: b.Pool, Use: b.Use, LeaseID: b.LeaseID, TenantID: b.TenantID})
	})
	return out, nil
}

// usageLease returns lease id when p may read its usage.
func (e *Engine) usageLease(ctx context.Context, p tenant.Principal, action, id string) (lease.Lease, error) {
	return e.leaseFor(ctx, p, tenant.PermUsageRead, action, id)
}

// leaseFor returns lease id when p holds perm for it: ErrNotFound (after
// the permission check, so that a tenant learns nothing of others' IDs)
// when there is none or it is another tenant's.
func (e *Engine) leaseFor(ctx context.Context, p tenant.Principal, perm tenant.Permission, action, id string) (lease.Lease, error) {
	l, err := e.store.Lease(ctx, id)
	owner := l.TenantID
	if errors.Is(err, ErrNotFound) {
		owner = tenant.Missing
	} else if err != nil {
		return lease.Lease{}, err
	}
	if err := e.check(ctx, p, perm, action, "lease/"+id, owner); err != nil {
		return lease.Lease{}, err
	}
	if owner == tenant.Missing {
		return lease.Lease{}, fmt.Errorf("lease %s: %w", id, ErrNotFound)
	}
	return l, nil
}

// heldByHour returns, per UTC hour within [from, to), the GPU-ms lease
// id's allocations held, and the nodes they held (by ordinal, with names).
func (e *Engine) heldByHour(ctx context.Context, id string, from, to time.Time) (map[time.Time]int64, error) {
	as, err := e.store.Allocations(ctx, AllocationFilter{LeaseID: id})
	if err != nil {
		return nil, fmt.Errorf("usage: allocations of %s: %w", id, err)
	}
	return e.heldOf(ctx, as, from, to)
}

// heldOf is heldByHour over allocations as, already read.
func (e *Engine) heldOf(ctx context.Context, as []lease.Allocation, from, to time.Time) (map[time.Time]int64, error) {
	out := map[time.Time]int64{}
	err := e.readCap(ctx, func(c *capState) error {
		for _, a := range as {
			s, t := later(a.Start, from), earlier(a.End, to)
			if !s.Before(t) {
				continue
			}
			gpus := c.runGPUs(a.NodeFrom, a.NodeTo)
			byHour(s, t, func(h time.Time, ms int64) { out[h] += gpus * ms })
		}
		return nil
	})
	return out, err
}

// byHour calls f with each UTC hour that [s, t) touches, in order, and
// the milliseconds of [s, t) in it (msBetween); never when t is not after
// s.
func byHour(s, t time.Time, f func(h time.Time, ms int64)) {
	if !s.Before(t) {
		return
	}
	for h := s.Truncate(time.Hour); h.Before(t); h = h.Add(time.Hour) {
		f(h, msBetween(later(h, s), earlier(h.Add(time.Hour), t)))
	}
}

// msBetween returns the milliseconds from s to t: the difference of their
// Unix milliseconds, each instant counted from the millisecond that holds
// it, as the meter's spans count an allocation. Instants carry the clock's
// sub-millisecond part (a live clock's, or a replacement's start at the
// instant a node failed), and the store keeps microseconds. Truncating
// each interval's length instead would lose up to a millisecond at every
// instant that splits an hour: an allocation ended there and its
// replacement started there would together hold 1 ms less than the hour,
// for every GPU of the run, and the SLA would report that as an episode
// short of the commitment. Differences of the same grid add up exactly.
func msBetween(s, t time.Time) int64 {
	return t.UnixMilli() - s.UnixMilli()
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func earlier(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// SLA returns a guaranteed lease's delivery in the UTC month that holds
// month: committed GPU-hours (its schedule), held (its allocations),
// unhealthy (telemetry), delivered, availability, and the episodes short
// of the commitment with their causes (failed nodes without replacement,
// health findings on its nodes). A spot lease has no SLA: a *valid.Error.
func (e *Engine) SLA(ctx context.Context, p tenant.Principal, leaseID string, month time.Time) (meter.SLA, error) {
	l, err := e.usageLease(ctx, p, "sla.get", leaseID)
	if err != nil {
		return meter.SLA{}, err
	}
	if l.Kind == lease.Spot {
		var v valid.Error
		v.Add("lease", leaseID, "must be a guaranteed lease (contract or reservation): spot has no SLA")
		return meter.SLA{}, v.Err()
	}
	start := stepStart(StepMonth, month)
	end := start.AddDate(0, 1, 0)
	// One read of the allocations for the held time and the findings.
	as, err := e.store.Allocations(ctx, AllocationFilter{LeaseID: leaseID})
	if err != nil {
		return meter.SLA{}, fmt.Errorf("sla: allocations of %s: %w", leaseID, err)
	}
	held, err := e.heldOf(ctx, as, start, end)
	if err != nil {
		return meter.SLA{}, err
	}
	hours := map[time.Time]*meter.HourAmounts{}
	at := func(h time.Time) *meter.HourAmounts {
		x := hours[h]
		if x == nil {
			x = &meter.HourAmounts{Hour: h}
			hours[h] = x
		}
		return x
	}
	for h, ms := range held {
		at(h).Held += ms
	}
	for _, seg := range l.Segments() {
		byHour(later(seg.Start, start), earlier(seg.End, end), func(h time.Time, ms int64) {
			at(h).Committed += int64(seg.GPUs) * ms
		})
	}
	rows, err := e.store.UsageRows(ctx, UsageFilter{From: start, To: end, LeaseID: leaseID})
	if err != nil {
		return meter.SLA{}, err
	}
	for _, r := range rows {
		x := at(time.UnixMilli(r.Hour).UTC())
		x.Unhealthy += r.GPUms - r.HealthyMs
		x.Unhealthy = min(x.Unhealthy, x.Held)
	}
	in := meter.SLAInput{LeaseID: l.ID, TenantID: l.TenantID, Month: start}
	for _, x := range hours {
		in.Hours = append(in.Hours, *x)
	}
	sfs, err := e.store.Shortfalls(ctx, leaseID)
	if err != nil {
		return meter.SLA{}, err
	}
	for _, s := range sfs {
		if s.From.Before(end) && (s.To.IsZero() || start.Before(s.To)) {
			in.Causes = append(in.Causes, meter.Cause{From: s.From, To: s.To,
				Text: fmt.Sprintf("node %s failed: no replacement for %d GPUs", s.Node, s.GPUs)})
		}
	}
	fs, err := e.findingsOf(ctx, as, start, end)
	if err != nil {
		return meter.SLA{}, err
	}
	for _, f := range fs {
		in.Causes = append(in.Causes, meter.Cause{From: f.At, To: f.At, Text: f.Detail + " on " + f.Node})
	}
	return meter.Deliver(in)
}

// leaseFindings returns the health findings in [from, to) on nodes lease
// id held at the finding's time.
func (e *Engine) leaseFindings(ctx context.Context, id string, from, to time.Time) ([]meter.Finding, error) {
	as, err := e.store.Allocations(ctx, AllocationFilter{LeaseID: id})
	if err != nil {
		return nil, err
	}
	return e.findingsOf(ctx, as, from, to)
}

// findingsOf is leaseFindings over the lease's allocations as, already
// read.
func (e *Engine) findingsOf(ctx context.Context, as []lease.Allocation, from, to time.Time) ([]meter.Finding, error) {
	// Findings of [from, to) on the nodes the lease held in it only: a
	// busy fleet's findings elsewhere would otherwise cost the read and
	// fill the limit, leaving a past month without its causes.
	var names []string
	err := e.readCap(ctx, func(c *capState) error {
		seen := map[int64]bool{}
		for _, a := range as {
			if !a.Start.Before(to) || !from.Before(a.End) {
				continue
			}
			for o := a.NodeFrom; o < a.NodeTo; o++ {
				if n, ok := c.byOrd[o]; ok && !seen[o] {
					seen[o] = true
					names = append(names, n.Name)
				}
			}
		}
		return nil
	})
	if err != nil || len(names) == 0 {
		return nil, err
	}
	fs, err := e.nodeFindings(ctx, names, from, to, 10_000)
	if err != nil || len(fs) == 0 {
		return nil, err
	}
	var out []meter.Finding
	err = e.readCap(ctx, func(c *capState) error {
		for _, f := range fs {
			if !f.At.Before(to) {
				continue
			}
			n, ok := c.byName[f.Node]
			if !ok {
				continue
			}
			for _, a := range as {
				if a.NodeFrom <= n.Ordinal && n.Ordinal < a.NodeTo && !f.At.Before(a.Start) && f.At.Before(a.End) {
					out = append(out, f)
					break
				}
			}
		}
		return nil
	})
	return out, err
}

// Findings returns recent health findings (operators only), newest first.
func (e *Engine) Findings(ctx context.Context, p tenant.Principal, f FindingFilter) ([]meter.Finding, error) {
	if err := e.check(ctx, p, tenant.PermNodesRead, "health.list", "", ""); err != nil {
		return nil, err
	}
	return e.store.Findings(ctx, f)
}

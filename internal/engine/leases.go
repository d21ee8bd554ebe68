package engine

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/neocloud/neocloud/internal/fleet"
	"github.com/neocloud/neocloud/internal/lease"
	"github.com/neocloud/neocloud/internal/tenant"
	"github.com/neocloud/neocloud/internal/unit"
	"github.com/neocloud/neocloud/internal/valid"
)

// ErrState refuses a change a lease's state does not allow (cancelling an
// ended or cancelled lease).
var ErrState = errors.New("not allowed in this state")

// LeaseResult is an admitted lease with its allocations.
type LeaseResult struct {
	Lease       lease.Lease
	Allocations []lease.Allocation
}

// leaseTenant returns the tenant a lease command acts for: a tenant key
// acts for its own tenant (naming another answers ErrNotFound, like a
// missing tenant); an operator must name an existing tenant.
func (e *Engine) leaseTenant(ctx context.Context, p tenant.Principal, perm tenant.Permission, action, tenantID string) (string, error) {
	if tenantID == "" {
		tenantID = p.Scope()
	}
	owner := tenantID
	if owner == "" {
		owner = tenant.Missing
	}
	// As e.check, with the audit object built only for a denial: a quote
	// is answered in microseconds, and spares the allocation.
	if err := p.Check(perm, owner); err != nil {
		e.RecordDenial(ctx, p, action, "tenant/"+tenantID, err.Error())
		return "", err
	}
	if tenantID == "" {
		var v valid.Error
		v.Add("tenant", nil, "is required for an operator key: the tenant the lease is for")
		return "", v.Err()
	}
	if _, known := e.tenants.Load(tenantID); known {
		return tenantID, nil // tenants are never deleted
	}
	if _, err := e.store.Tenant(ctx, tenantID); errors.Is(err, ErrNotFound) {
		var v valid.Error
		v.Add("tenant", tenantID, "must be an existing tenant")
		return "", v.Err()
	} else if err != nil {
		return "", err
	}
	e.tenants.Store(tenantID, true)
	return tenantID, nil
}

// RequestLease admits r for tenantID ("" = the caller's tenant) and places
// it, or refuses it: a *valid.Error for bad input, a *Refusal when it does
// not fit (with the earliest start that would). The lease and its
// allocations are committed before it returns.
func (e *Engine) RequestLease(ctx context.Context, p tenant.Principal, tenantID string, r lease.Request) (LeaseResult, error) {
	pend, err := e.SubmitLease(ctx, p, tenantID, r)
	if err != nil {
		return LeaseResult{}, err
	}
	v, err := pend.Wait()
	if err != nil {
		return LeaseResult{}, err
	}
	return v.(LeaseResult), nil
}

// SubmitLease queues a lease request and returns without waiting for the
// answer, so that a client may pipeline requests (the benchmark does):
// requests submitted from one goroutine are applied in submission order.
// Authorization and tenant checks happen before it returns.
func (e *Engine) SubmitLease(ctx context.Context, p tenant.Principal, tenantID string, r lease.Request) (Pending, error) {
	tenantID, err := e.leaseTenant(ctx, p, tenant.PermLeasesWrite, "lease.create", tenantID)
	if err != nil {
		return Pending{}, err
	}
	ctx = withPrincipal(ctx, p)
	return e.submit(ctx, func(c *capState, now time.Time, ids *leaseIDs) (*effect, any, error) {
		id, err := ids.next(now)
		if err != nil {
			return nil, nil, err
		}
		eff := &effect{}
		l, allocs, err := c.admit(now, id, tenantID, r, eff)
		var ref *Refusal
		switch {
		case errors.As(err, &ref):
			// Refusals change nothing but are worth an audit line.
			return &effect{audit: &tenant.AuditEntry{Action: "lease.create", Object: "lease/" + id, TenantID: tenantID,
				Outcome: tenant.OutcomeRefused, Detail: ref.Error()}}, nil, ref.forPrincipal(p)
		case err != nil:
			return nil, nil, err
		}
		// The lease as admitted: l is the capacity state's, which later
		// commands change (a reclaim) while this one commits.
		admitted := *l
		eff.insertLease, eff.changes = &admitted, changes{allocs: allocs}
		eff.events = append(eff.events, leaseCreatedEvents(now, l, allocs)...)
		eff.audit = &tenant.AuditEntry{Action: "lease.create", Object: "lease/" + id, TenantID: tenantID,
			Detail: leaseCreatedDetail(l, len(allocs), len(eff.leases))}
		return eff, LeaseResult{Lease: *l, Allocations: allocs}, nil
	}), nil
}

// Quote answers whether r would be admitted now for tenantID ("" = the
// caller's tenant), or why not and from when it would fit: the admission
// query. It changes nothing; bad input is a *valid.Error. It does not
// choose the nodes (Quote.LeafGroups and Pods are 0): QuotePlacement
// does, at the cost of the search for the preferred plan.
func (e *Engine) Quote(ctx context.Context, p tenant.Principal, tenantID string, r lease.Request) (Quote, error) {
	return e.quote(ctx, p, tenantID, r, false)
}

// QuotePlacement is Quote with the placement an admission now would
// choose: Quote.LeafGroups and Pods of the largest step.
func (e *Engine) QuotePlacement(ctx context.Context, p tenant.Principal, tenantID string, r lease.Request) (Quote, error) {
	return e.quote(ctx, p, tenantID, r, true)
}

func (e *Engine) quote(ctx context.Context, p tenant.Principal, tenantID string, r lease.Request, shape bool) (Quote, error) {
	tenantID, err := e.leaseTenant(ctx, p, tenant.PermLeasesRead, "quote", tenantID)
	if err != nil {
		return Quote{}, err
	}
	var q Quote
	err = e.readCap(ctx, func(c *capState) error {
		q, err = c.quote(e.clock.Now(), tenantID, r, false, shape)
		return err
	})
	if errors.Is(err, errNeedWriter) {
		// Spot holds stand where the lease would go: the writer sets
		// them aside to see whether reclaiming them makes room. (The
		// writer's closure takes a copy of r, so that r itself stays
		// off the heap on the usual path.)
		r := r
		v, werr := e.submit(ctx, func(c *capState, now time.Time, _ *leaseIDs) (*effect, any, error) {
			q, err := c.quote(now, tenantID, r, true, shape)
			return nil, q, err
		}).Wait()
		if werr != nil {
			return Quote{}, werr
		}
		q, err = v.(Quote), nil
	}
	q.Refusal = q.Refusal.forPrincipal(p)
	return q, err
}

// CancelLease cancels lease id: allocations not yet started are dropped,
// running ones end now. ErrNotFound for a missing or foreign lease;
// ErrState for one already ended or cancelled.
func (e *Engine) CancelLease(ctx context.Context, p tenant.Principal, id, reason string) (lease.Lease, error) {
	pend, err := e.SubmitCancel(ctx, p, id, reason)
	if err != nil {
		return lease.Lease{}, err
	}
	v, err := pend.Wait()
	if err != nil {
		return lease.Lease{}, err
	}
	return v.(lease.Lease), nil
}

// SubmitCancel is CancelLease without waiting; Wait answers the
// lease.Lease.
func (e *Engine) SubmitCancel(ctx context.Context, p tenant.Principal, id, reason string) (Pending, error) {
	l, err := e.store.Lease(ctx, id)
	owner := l.TenantID
	if errors.Is(err, ErrNotFound) {
		owner = tenant.Missing
	} else if err != nil {
		return Pending{}, err
	}
	if err := e.check(ctx, p, tenant.PermLeasesWrite, "lease.cancel", "lease/"+id, owner); err != nil {
		return Pending{}, err
	}
	if owner == tenant.Missing {
		return Pending{}, fmt.Errorf("lease %s: %w", id, ErrNotFound)
	}
	if len(reason) > 500 || !tenant.ValidText(reason) {
		var v valid.Error
		v.Add("reason", nil, "must be at most 500 characters of printable text")
		return Pending{}, v.Err()
	}
	if reason == "" {
		reason = "cancelled by " + p.String()
	}
	ctx = withPrincipal(ctx, p)
	return e.submit(ctx, func(c *capState, now time.Time, _ *leaseIDs) (*effect, any, error) {
		cl, ch, err := c.cancel(now, id, reason)
		if err != nil {
			return nil, nil, err
		}
		if cl == nil {
			return nil, nil, fmt.Errorf("lease %s is %s: %w", id, l.StateAt(now), ErrState)
		}
		return &effect{changes: ch, updateLease: cl, events: leaseCancelledEvents(now, cl, ch), audit: &tenant.AuditEntry{Action: "lease.cancel", Object: "lease/" + id,
			TenantID: cl.TenantID, Detail: fmt.Sprintf("reason=%q allocations_ended=%d", reason, len(ch.ends))}}, *cl, nil
	}), nil
}

// Lease returns lease id; ErrNotFound for a missing or foreign one.
func (e *Engine) Lease(ctx context.Context, p tenant.Principal, id string) (lease.Lease, error) {
	l, err := e.store.Lease(ctx, id)
	owner := l.TenantID
	if errors.Is(err, ErrNotFound) {
		owner = tenant.Missing
	} else if err != nil {
		return lease.Lease{}, err
	}
	if err := e.check(ctx, p, tenant.PermLeasesRead, "lease.get", "lease/"+id, owner); err != nil {
		return lease.Lease{}, err
	}
	if owner == tenant.Missing {
		return lease.Lease{}, fmt.Errorf("lease %s: %w", id, ErrNotFound)
	}
	return l, nil
}

// Leases lists leases by ID; a tenant sees only its own.
func (e *Engine) Leases(ctx context.Context, p tenant.Principal, f LeaseFilter) ([]lease.Lease, error) {
	t, err := e.scope(ctx, p, tenant.PermLeasesRead, "lease.list", f.TenantID)
	if err != nil {
		return nil, err
	}
	f.TenantID = t
	return e.store.Leases(ctx, f)
}

// AllocationView is an allocation with its nodes' names.
type AllocationView struct {
	lease.Allocation
	Nodes []string
}

// LeaseAllocations returns lease id's allocations (past ones included),
// and its recorded shortfalls; ErrNotFound for a missing or foreign lease.
func (e *Engine) LeaseAllocations(ctx context.Context, p tenant.Principal, id string) ([]AllocationView, []lease.Shortfall, error) {
	if _, err := e.Lease(ctx, p, id); err != nil {
		return nil, nil, err
	}
	as, err := e.store.Allocations(ctx, AllocationFilter{LeaseID: id})
	if err != nil {
		return nil, nil, err
	}
	short, err := e.store.Shortfalls(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	out := make([]AllocationView, len(as))
	err = e.readCap(ctx, func(c *capState) error {
		for i, a := range as {
			out[i] = AllocationView{Allocation: a, Nodes: c.nodeNames(a)}
		}
		return nil
	})
	return out, short, err
}

// LoadCapacity builds the in-memory capacity from the store now rather
// than on first use (a server does it at start; the benchmark times it).
func (e *Engine) LoadCapacity(ctx context.Context) error {
	return e.readCap(ctx, func(*capState) error { return nil })
}

// NodeNames returns the names of each allocation's nodes.
func (e *Engine) NodeNames(ctx context.Context, as []lease.Allocation) ([][]string, error) {
	out := make([][]string, len(as))
	err := e.readCap(ctx, func(c *capState) error {
		for i, a := range as {
			out[i] = c.nodeNames(a)
		}
		return nil
	})
	return out, err
}

// NodeStateResult says what a node state change did to the leases on it.
type NodeStateResult struct {
	Node fleet.Node
	// Replaced counts allocations given a replacement node.
	Replaced   int
	Shortfalls []lease.Shortfall
	Ended      int // allocations ended or split at the change
}

// SetNodeState sets a node's state (available, failed, maintenance) as an
// operator; see capState.setNodeState for what happens to its leases.
func (e *Engine) SetNodeState(ctx context.Context, p tenant.Principal, name string, st fleet.State, reason string) (NodeStateResult, error) {
	pend, err := e.SubmitNodeState(ctx, p, name, st, reason)
	if err != nil {
		return NodeStateResult{}, err
	}
	v, err := pend.Wait()
	if err != nil {
		return NodeStateResult{}, err
	}
	if st == fleet.Available {
		e.ClearHealth(name) // repaired: a new problem is reported again
	}
	return v.(NodeStateResult), nil
}

// SubmitNodeState is SetNodeState without waiting: the answer, a
// NodeStateResult, comes from Wait (see SubmitLease).
func (e *Engine) SubmitNodeState(ctx context.Context, p tenant.Principal, name string, st fleet.State, reason string) (Pending, error) {
	if err := e.check(ctx, p, tenant.PermNodesWrite, "node.state", "node/"+name, ""); err != nil {
		return Pending{}, err
	}
	if len(reason) > 500 || !tenant.ValidText(reason) {
		var v valid.Error
		v.Add("reason", nil, "must be at most 500 characters of printable text")
		return Pending{}, v.Err()
	}
	ctx = withPrincipal(ctx, p)
	return e.submit(ctx, func(c *capState, now time.Time, _ *leaseIDs) (*effect, any, error) {
		old := c.byName[name].State
		n, ch, err := c.setNodeState(now, name, st)
		if err != nil {
			return nil, nil, err
		}
		res := NodeStateResult{Node: n, Shortfalls: ch.shortfalls, Ended: len(ch.ends)}
		if old == st {
			return nil, res, nil
		}
		res.Replaced = ch.replaced
		return &effect{changes: ch, nodeState: &n, events: nodeStateEvents(c, now, n, old, reason, ch), audit: &tenant.AuditEntry{Action: "node.state", Object: "node/" + name,
			Detail: fmt.Sprintf("state=%s from=%s reason=%q allocations_ended=%d shortfalls=%d", st, old, reason, len(ch.ends), len(ch.shortfalls))}}, res, nil
	}), nil
}

// SetHoldback replaces a pool's holdback schedule: from each step's From
// until the next, its GPUs are never leased as guaranteed capacity. A
// *Refusal when guaranteed leases already admitted would no longer fit.
func (e *Engine) SetHoldback(ctx context.Context, p tenant.Principal, pool string, steps []HoldbackStep) error {
	if err := e.check(ctx, p, tenant.PermCapacityWrite, "holdback.set", "pool/"+pool, ""); err != nil {
		return err
	}
	steps = slices.Clone(steps)
	ctx = withPrincipal(ctx, p)
	_, err := e.submit(ctx, func(c *capState, now time.Time, _ *leaseIDs) (*effect, any, error) {
		if err := c.setHoldback(now, pool, steps); err != nil {
			return nil, nil, err
		}
		var b strings.Builder
		for i, s := range steps {
			if i == 8 {
				fmt.Fprintf(&b, " ... (%d steps)", len(steps))
				break
			}
			fmt.Fprintf(&b, " %s=%d", s.From.UTC().Format(time.RFC3339), s.GPUs)
		}
		return &effect{holdback: &holdbackChange{pool: pool, steps: steps}, audit: &tenant.AuditEntry{Action: "holdback.set",
			Object: "pool/" + pool, Detail: "steps:" + b.String()}}, nil, nil
	}).Wait()
	return err
}

// Holdback returns a pool's holdback schedule.
func (e *Engine) Holdback(ctx context.Context, p tenant.Principal, pool string) ([]HoldbackStep, error) {
	if err := e.check(ctx, p, tenant.PermCapacityRead, "holdback.get", "pool/"+pool, ""); err != nil {
		return nil, err
	}
	var out []HoldbackStep
	err := e.readCap(ctx, func(c *capState) error {
		pc := c.pools[pool]
		if pc == nil {
			return fmt.Errorf("pool %s: %w", pool, ErrNotFound)
		}
		out = slices.Clone(pc.holdbackSteps)
		return nil
	})
	return out, err
}

// CapacityPoint is one step of a pool's capacity series: the fewest GPUs
// healthy and free and the most held back and allocated by kind over
// [At, At+step).
type CapacityPoint struct {
	At          time.Time
	Physical    unit.GPUs
	Healthy     unit.GPUs
	Holdback    unit.GPUs
	Contract    unit.GPUs
	Reservation unit.GPUs
	Spot        unit.GPUs
	Free        unit.GPUs
}

// MaxCapacityPoints bounds one capacity series.
const MaxCapacityPoints = 10_000

// Capacity returns pool's capacity series over [from, to) in steps of
// step (a whole number of hours). Bad input is a *valid.Error.
func (e *Engine) Capacity(ctx context.Context, p tenant.Principal, pool string, from, to time.Time, step time.Duration) ([]CapacityPoint, error) {
	if err := e.check(ctx, p, tenant.PermCapacityRead, "capacity.get", "pool/"+pool, ""); err != nil {
		return nil, err
	}
	var out []CapacityPoint
	err := e.readCap(ctx, func(c *capState) error {
		var v valid.Error
		pc := c.pools[pool]
		if pc == nil {
			v.Add("pool", pool, "must be a pool of the fleet (site/MODEL)")
		}
		if step < time.Hour || step%time.Hour != 0 {
			v.Add("step", step.String(), "must be a whole number of hours, at least 1h")
		}
		if from.Before(c.origin) {
			v.Add("from", from.UTC().Format(time.RFC3339), "must not be before %s (the calendar starts at the current hour)", c.origin.Format(time.RFC3339))
		}
		if !to.After(from) {
			v.Add("to", to.UTC().Format(time.RFC3339), "must be after from")
		} else if end := c.timeOf(c.slots); to.After(end) {
			v.Add("to", to.UTC().Format(time.RFC3339), "must not be after %s (the end of the calendar)", end.Format(time.RFC3339))
		}
		if v.Len() == 0 && (to.Sub(from)+step-1)/step > MaxCapacityPoints {
			v.Add("step", step.String(), "gives more than %d points over [from, to); use a larger step", MaxCapacityPoints)
		}
		if err := v.Err(); err != nil {
			return err
		}
		s, end := c.floor(from), c.ceil(to)
		n := int(step / time.Hour)
		for ; s < end; s += n {
			t := min(s+n, end)
			out = append(out, CapacityPoint{At: c.timeOf(s), Physical: pc.physical,
				Healthy: unit.GPUs(pc.healthy.Min(s, t)), Holdback: unit.GPUs(pc.holdback.Max(s, t)),
				Contract: unit.GPUs(pc.contract.Max(s, t)), Reservation: unit.GPUs(pc.reservation.Max(s, t)),
				Spot: unit.GPUs(pc.spot.Max(s, t)), Free: unit.GPUs(pc.free.Min(s, t))})
		}
		return nil
	})
	return out, err
}

// leaseIDs issues lease IDs on the writer goroutine, in the order leases
// are applied, so that they sort as the leases were admitted: the store's
// indexes keyed by lease ID (leases, by tenant, by pool, allocations by
// lease) then take a group commit's rows on their last pages, rather than
// one random page per row each. An ID is "ls_" and 16 hex digits: 34 bits
// of the second it was issued in and 30 bits that start, at each new
// second, at a random point of their lower half and count up. IDs never
// repeat within one engine (when the clock steps back, they count on);
// two engines (a restart within the second, a frozen test clock, a second
// server) repeat one only when their counts in one second overlap, with a
// chance of about (n1 + n2) / 2^29 for n1 and n2 IDs each.
type leaseIDs struct {
	rand io.Reader
	last uint64
}

const (
	leaseIDCountBits = 30
	leaseIDSecBits   = 64 - leaseIDCountBits
)

// next returns the ID of a lease applied at now.
func (s *leaseIDs) next(now time.Time) (string, error) {
	sec := uint64(max(now.Unix(), 0)) & (1<<leaseIDSecBits - 1)
	v := s.last + 1
	if first := sec << leaseIDCountBits; first > s.last {
		var b [4]byte
		if _, err := io.ReadFull(s.rand, b[:]); err != nil {
			return "", fmt.Errorf("engine: random lease ID: %w", err)
		}
		v = first | uint64(binary.BigEndian.Uint32(b[:]))&(1<<(leaseIDCountBits-1)-1)
	}
	s.last = v
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], v)
	return "ls_" + hex.EncodeToString(b[:]), nil
}

// leaseCreatedDetail returns the detail of l's lease.create audit entry,
// "kind=K pool=P start=S end=E gpus=G allocations=A spot_reclaimed=R"
// (instants in RFC 3339, UTC), built without fmt: every admission writes
// one.
func leaseCreatedDetail(l *lease.Lease, allocs, reclaimed int) string {
	b := make([]byte, 0, 128)
	b = append(b, "kind="...)
	b = append(b, l.Kind...)
	b = append(b, " pool="...)
	b = append(b, l.Pool...)
	b = append(b, " start="...)
	b = l.Start.UTC().AppendFormat(b, time.RFC3339)
	b = append(b, " end="...)
	b = l.End.UTC().AppendFormat(b, time.RFC3339)
	b = append(b, " gpus="...)
	b = strconv.AppendInt(b, int64(l.MaxGPUs()), 10)
	b = append(b, " allocations="...)
	b = strconv.AppendInt(b, int64(allocs), 10)
	b = append(b, " spot_reclaimed="...)
	b = strconv.AppendInt(b, int64(reclaimed), 10)
	return string(b)
}

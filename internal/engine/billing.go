package engine

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/neocloud/neocloud/internal/billing"
	"github.com/neocloud/neocloud/internal/lease"
	"github.com/neocloud/neocloud/internal/meter"
	"github.com/neocloud/neocloud/internal/money"
	"github.com/neocloud/neocloud/internal/tenant"
	"github.com/neocloud/neocloud/internal/valid"
)

// DefaultReservationRates are the list prices per GPU-hour (micro-USD) of
// a reservation that has no plan of its own, by GPU model: capacity-block
// prices of 2025-2026 (shared/FLEET.md: H100 ~$4.9; H200 ~1.2x; B200 at
// the on-demand $6.8; GB200 ~$9.1 per superchip of 2 GPUs).
var DefaultReservationRates = map[string]int64{
	"H100-SXM": 4_900_000,
	"H200-SXM": 5_900_000,
	"B200":     6_800_000,
	"GB200":    4_550_000,
}

// defaultPlan returns the plan a lease without one is billed on: a
// reservation at its model's list price in arrears, spot at the market
// price; false for a contract (it must have its own).
func defaultPlan(l lease.Lease) (billing.Plan, bool) {
	switch l.Kind {
	case lease.Spot:
		return billing.Plan{Kind: lease.Spot, Currency: "USD"}, true
	case lease.Reservation:
		_, model, _ := strings.Cut(l.Pool, "/")
		rate, ok := DefaultReservationRates[model]
		if !ok {
			rate = DefaultReservationRates["H100-SXM"]
		}
		return billing.Plan{Kind: lease.Reservation, Currency: "USD",
			Reservation: &billing.ReservationTerms{Rate: money.USD(rate), Billing: billing.Arrears}}, true
	}
	return billing.Plan{}, false
}

// SetPlan attaches a price plan to a lease (operator admins), replacing
// any: a *valid.Error when the plan does not fit the lease.
func (e *Engine) SetPlan(ctx context.Context, p tenant.Principal, leaseID string, plan billing.Plan) error {
	if err := e.check(ctx, p, tenant.PermBillingWrite, "plan.set", "lease/"+leaseID, ""); err != nil {
		return err
	}
	l, err := e.store.Lease(ctx, leaseID)
	if err != nil {
		return err
	}
	if err := plan.ValidateFor(l); err != nil {
		return err
	}
	if plan.Currency != "USD" {
		// Invoice runs, revenue and list prices are in USD: one plan in
		// another currency would make a tenant's invoice mix currencies.
		var v valid.Error
		v.Add("currency", plan.Currency, "must be USD (billing in other currencies is not supported yet)")
		return v.Err()
	}
	return e.write(ctx, p, func(tx Tx) (*tenant.AuditEntry, error) {
		if err := tx.SetPlan(ctx, leaseID, plan, e.clock.Now()); err != nil {
			return nil, err
		}
		return &tenant.AuditEntry{Action: "plan.set", Object: "lease/" + leaseID, TenantID: l.TenantID,
			Detail: fmt.Sprintf("%s plan in %s", plan.Kind, plan.Currency)}, nil
	})
}

// LeasePlan returns the plan lease id is billed on, and whether it is the
// default (no plan set); ErrNotFound for a contract without one.
func (e *Engine) LeasePlan(ctx context.Context, p tenant.Principal, id string) (billing.Plan, bool, error) {
	l, err := e.billingLease(ctx, p, "plan.get", id)
	if err != nil {
		return billing.Plan{}, false, err
	}
	plan, err := e.store.Plan(ctx, id)
	if err == nil {
		return plan, false, nil
	}
	if !errors.Is(err, ErrNotFound) {
		return billing.Plan{}, false, err
	}
	if d, ok := defaultPlan(l); ok {
		return d, true, nil
	}
	return billing.Plan{}, false, fmt.Errorf("lease %s is a contract without a price plan: %w", id, ErrNotFound)
}

// billingLease returns lease id when p may read its billing.
func (e *Engine) billingLease(ctx context.Context, p tenant.Principal, action, id string) (lease.Lease, error) {
	return e.leaseFor(ctx, p, tenant.PermBillingRead, action, id)
}

// spotPriceLog remembers the last spot price recorded per pool and tier.
type spotPriceLog struct {
	mu   sync.Mutex
	last map[string]int64
}

// RecordSpotPrices stores each pool's spot price per notice tier when it
// differs from the last one stored since start: spot is billed at the
// price in effect while it held capacity. The server calls it with the
// engine's tick.
func (e *Engine) RecordSpotPrices(ctx context.Context) (int, error) {
	ms, err := e.SpotMarkets(ctx, meterPrincipal, "")
	if err != nil {
		return 0, err
	}
	e.prices.mu.Lock()
	defer e.prices.mu.Unlock()
	if e.prices.last == nil {
		e.prices.last = map[string]int64{}
	}
	var ps []SpotPrice
	for _, m := range ms {
		for _, t := range m.Prices {
			k := m.Pool + "\x00" + t.Tier
			if last, ok := e.prices.last[k]; ok && last == t.Price.Micros {
				continue
			}
			ps = append(ps, SpotPrice{Pool: m.Pool, Tier: t.Tier, From: m.At, Price: t.Price})
		}
	}
	if len(ps) == 0 {
		return 0, nil
	}
	err = e.store.Update(ctx, func(tx Tx) error { return tx.AppendSpotPrices(ctx, ps) })
	if err != nil {
		return 0, fmt.Errorf("record spot prices: %w", err)
	}
	for _, sp := range ps {
		e.prices.last[sp.Pool+"\x00"+sp.Tier] = sp.Price.Micros
	}
	return len(ps), nil
}

// InvoiceRun is what one invoice run did.
type InvoiceRun struct {
	Month    time.Time
	Leases   int      // leases rated
	Drafts   int      // draft invoices written (new or replaced)
	Lines    int      // their lines
	Skipped  []string // tenants whose invoice of the month is already finalized
	NoPlan   []string // contracts without a price plan, not billed
	Total    money.Money
	Invoices []string // the drafts' IDs
}

// RunInvoices rates every lease that held or promised capacity in the UTC
// month of month and writes one draft invoice per tenant (operator
// admins). It is idempotent: a rerun replaces the drafts with what the
// facts say now, keeping their IDs, and leaves finalized invoices alone
// (their tenants are listed as skipped; corrections are credit notes or
// adjustments on a later month).
func (e *Engine) RunInvoices(ctx context.Context, p tenant.Principal, month time.Time) (InvoiceRun, error) {
	if err := e.check(ctx, p, tenant.PermBillingWrite, "invoice.run", "", ""); err != nil {
		return InvoiceRun{}, err
	}
	start := stepStart(StepMonth, month)
	end := start.AddDate(0, 1, 0)
	run := InvoiceRun{Month: start, Total: money.USD(0)}
	f, err := e.monthFacts(ctx, start, end)
	if err != nil {
		return InvoiceRun{}, err
	}
	byTenant := map[string][]billing.Line{}
	for _, l := range f.leases {
		plan, ok := f.plans[l.ID]
		if !ok {
			if plan, ok = defaultPlan(l); !ok {
				run.NoPlan = append(run.NoPlan, l.ID)
				continue
			}
		}
		in := billing.LeaseMonth{Lease: l, Plan: plan, Month: start, EnergyMJ: f.usage[l.ID].EnergyMJ}
		if l.Kind != lease.Spot && plan.SLA != nil {
			in.SLAApplies = true
			in.AvailabilityPPM = f.availability(l, start, end)
		}
		if l.Kind == lease.Spot {
			// Spot is billed for what it held: up to now in a month
			// still running.
			in.Spot = f.spotPieces(l, start, earlier(end, later(start, e.clock.Now())))
		}
		lines, err := billing.Rate(in)
		if err != nil {
			return InvoiceRun{}, fmt.Errorf("invoice run: lease %s: %w", l.ID, err)
		}
		run.Leases++
		if len(lines) > 0 {
			byTenant[l.TenantID] = append(byTenant[l.TenantID], lines...)
		}
	}
	existing, err := e.store.Invoices(ctx, InvoiceFilter{Month: start})
	if err != nil {
		return InvoiceRun{}, err
	}
	ids := map[string]string{} // tenant → the draft's ID to keep
	voids := map[string]int{}
	frozen := map[string]bool{}
	for _, inv := range existing {
		switch inv.State {
		case billing.Draft:
			ids[inv.TenantID] = inv.ID
		case billing.Voided:
			voids[inv.TenantID]++
		default:
			frozen[inv.TenantID] = true
		}
	}
	now := e.clock.Now()
	var drafts []billing.Invoice
	for _, t := range slices.Sorted(maps.Keys(byTenant)) {
		if frozen[t] {
			run.Skipped = append(run.Skipped, t)
			continue
		}
		inv, err := billing.Assemble(t, start, byTenant[t])
		if err != nil {
			return InvoiceRun{}, fmt.Errorf("invoice run: tenant %s: %w", t, err)
		}
		inv.ID = ids[t]
		if inv.ID == "" {
			inv.ID = fmt.Sprintf("inv-%s-%s", t, start.Format("200601"))
			if n := voids[t]; n > 0 {
				inv.ID = fmt.Sprintf("%s-%d", inv.ID, n+1)
			}
		}
		inv.Created = now
		drafts = append(drafts, inv)
		run.Drafts++
		run.Lines += len(inv.Lines)
		run.Invoices = append(run.Invoices, inv.ID)
		if run.Total, err = run.Total.Add(inv.Total); err != nil {
			return InvoiceRun{}, fmt.Errorf("invoice run: total: %w", err)
		}
	}
	// Drafts of tenants with nothing to bill any more (a lease cancelled
	// before its start since the last run) are dropped.
	var stale []string
	for t, id := range ids {
		if _, ok := byTenant[t]; !ok {
			stale = append(stale, id)
		}
	}
	slices.Sort(stale)
	err = e.write(ctx, p, func(tx Tx) (*tenant.AuditEntry, error) {
		for _, id := range stale {
			if err := tx.DeleteDraft(ctx, id); err != nil {
				return nil, err
			}
		}
		for _, inv := range drafts {
			if err := tx.PutDraft(ctx, inv); err != nil {
				return nil, err
			}
		}
		return &tenant.AuditEntry{Action: "invoice.run", Object: "month/" + start.Format("2006-01"),
			Detail: fmt.Sprintf("%d drafts, %d lines, total %s", run.Drafts, run.Lines, run.Total)}, nil
	})
	if err != nil {
		return InvoiceRun{}, fmt.Errorf("invoice run: %w", err)
	}
	return run, nil
}

// monthFacts is what rating a month reads, in a few bulk reads.
type monthFacts struct {
	leases     []lease.Lease // overlapping the month, End clipped at cancellation
	plans      map[string]billing.Plan
	usage      map[string]meter.Usage
	unhealthy  map[string][]meter.Row
	allocs     map[string][]lease.Allocation
	shortfalls map[string][]lease.Shortfall
	gpus       map[string]int64       // GPUs of each allocation (by ID)
	prices     map[string][]SpotPrice // by pool/tier, ordered by From
}

func (e *Engine) monthFacts(ctx context.Context, start, end time.Time) (*monthFacts, error) {
	f := &monthFacts{unhealthy: map[string][]meter.Row{}, allocs: map[string][]lease.Allocation{},
		shortfalls: map[string][]lease.Shortfall{}, prices: map[string][]SpotPrice{}}
	all, err := e.store.Leases(ctx, LeaseFilter{})
	if err != nil {
		return nil, err
	}
	spotPools := map[string]bool{}
	for _, l := range all {
		if !l.Cancelled.IsZero() && l.Cancelled.Before(l.End) {
			// Billed up to its cancellation: guaranteed leases by the
			// started hour (their plans count whole hours), spot to the
			// minute mark. Cancelled before its start: nothing.
			l.End = l.Cancelled
			if l.Kind != lease.Spot {
				l.End = ceilHour(l.Cancelled)
			}
			if !l.Start.Before(l.End) {
				continue
			}
		}
		if !l.Start.Before(end) || !start.Before(l.End) {
			continue
		}
		f.leases = append(f.leases, l)
		if l.Kind == lease.Spot {
			spotPools[l.Pool] = true
		}
	}
	if f.plans, err = e.store.Plans(ctx); err != nil {
		return nil, err
	}
	if f.usage, err = e.store.UsageByLease(ctx, start, end); err != nil {
		return nil, err
	}
	rows, err := e.store.UnhealthyHours(ctx, start, end)
	if err != nil {
		return nil, err
	}
	for _, r := range rows {
		f.unhealthy[r.LeaseID] = append(f.unhealthy[r.LeaseID], r)
	}
	as, err := e.store.Allocations(ctx, AllocationFilter{EndAfter: start})
	if err != nil {
		return nil, err
	}
	for _, a := range as {
		if a.Start.Before(end) {
			f.allocs[a.LeaseID] = append(f.allocs[a.LeaseID], a)
		}
	}
	sfs, err := e.store.Shortfalls(ctx, "")
	if err != nil {
		return nil, err
	}
	for _, s := range sfs {
		if s.From.Before(end) && (s.To.IsZero() || start.Before(s.To)) {
			f.shortfalls[s.LeaseID] = append(f.shortfalls[s.LeaseID], s)
		}
	}
	for pool := range spotPools {
		ps, err := e.store.SpotPrices(ctx, pool, start, end)
		if err != nil {
			return nil, err
		}
		for _, sp := range ps {
			k := pool + "/" + sp.Tier
			f.prices[k] = append(f.prices[k], sp)
		}
	}
	f.gpus = map[string]int64{}
	err = e.readCap(ctx, func(c *capState) error {
		for _, as := range f.allocs {
			for _, a := range as {
				f.gpus[a.ID] = c.runGPUs(a.NodeFrom, a.NodeTo)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return f, nil
}

// availability returns a guaranteed lease's delivered / committed in the
// month, in parts per million: exactly 1,000,000 when it had no shortfall
// and no unhealthy time (the common case, read from totals), else from
// the hour-by-hour delivery (meter.Deliver).
func (f *monthFacts) availability(l lease.Lease, start, end time.Time) int64 {
	if len(f.unhealthy[l.ID]) == 0 && len(f.shortfalls[l.ID]) == 0 {
		return billing.PPM
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
	for _, a := range f.allocs[l.ID] {
		g := f.gpus[a.ID]
		byHour(later(a.Start, start), earlier(a.End, end), func(h time.Time, ms int64) { at(h).Held += g * ms })
	}
	for _, seg := range l.Segments() {
		byHour(later(seg.Start, start), earlier(seg.End, end), func(h time.Time, ms int64) {
			at(h).Committed += int64(seg.GPUs) * ms
		})
	}
	for _, r := range f.unhealthy[l.ID] {
		x := at(time.UnixMilli(r.Hour).UTC())
		x.Unhealthy = min(x.Unhealthy+r.GPUms-r.HealthyMs, x.Held)
	}
	in := meter.SLAInput{LeaseID: l.ID, TenantID: l.TenantID, Month: start}
	for _, x := range hours {
		in.Hours = append(in.Hours, *x)
	}
	s, err := meter.Deliver(in)
	if err != nil {
		return billing.PPM // amounts come from the engine's own records; Deliver refuses only malformed input
	}
	return s.AvailabilityPPM
}

// spotPieces returns what a spot lease held in [start, end), split at
// each change of its tier's price.
func (f *monthFacts) spotPieces(l lease.Lease, start, end time.Time) []billing.SpotPiece {
	prices := f.prices[l.Pool+"/"+l.Notice]
	var out []billing.SpotPiece
	for _, a := range f.allocs[l.ID] {
		s, t := later(a.Start, start), earlier(a.End, end)
		if !s.Before(t) {
			continue
		}
		g := f.gpus[a.ID]
		for i, p := range prices {
			ps, pe := p.From, end
			if i+1 < len(prices) {
				pe = prices[i+1].From
			}
			if i == 0 {
				ps = start // the price in effect at the month's start (or the first known)
			}
			from, to := later(s, ps), earlier(t, pe)
			if from.Before(to) {
				out = append(out, billing.SpotPiece{From: from, To: to, GPUs: g, PricePerGPUHour: p.Price})
			}
		}
	}
	slices.SortFunc(out, func(a, b billing.SpotPiece) int { return a.From.Compare(b.From) })
	return out
}

// QuotePrice prices a quoted lease on plan (nil: the default plan of its
// kind): the charge of every month and the total. A contract without a
// plan, and spot (priced by the hour, Quote.Price), have no schedule:
// ok is false then.
func QuotePrice(q Quote, plan *billing.Plan) (charges []billing.MonthCharge, total money.Money, isDefault, ok bool, err error) {
	l := lease.Lease{ID: "quote", Kind: q.Kind, Pool: q.Pool, Start: q.Start, End: q.End, Schedule: q.Schedule}
	if plan == nil {
		d, found := defaultPlan(l)
		if !found || l.Kind == lease.Spot {
			return nil, money.Money{}, false, false, nil
		}
		plan, isDefault = &d, true
	}
	if l.Kind == lease.Spot {
		return nil, money.Money{}, false, false, nil
	}
	charges, total, err = billing.Schedule(l, *plan)
	if err != nil {
		return nil, money.Money{}, false, false, err
	}
	return charges, total, isDefault, true, nil
}

// ceilHour returns t rounded up to a whole UTC hour.
func ceilHour(t time.Time) time.Time {
	h := t.Truncate(time.Hour)
	if h.Equal(t) {
		return t
	}
	return h.Add(time.Hour)
}

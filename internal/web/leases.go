package web

import (
	"context"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/neocloud/neocloud/internal/billing"
	"github.com/neocloud/neocloud/internal/engine"
	"github.com/neocloud/neocloud/internal/lease"
	"github.com/neocloud/neocloud/internal/meter"
	"github.com/neocloud/neocloud/internal/tenant"
	"github.com/neocloud/neocloud/internal/valid"
)

// leaseEngine is what the lease pages read and change.
type leaseEngine interface {
	Leases(ctx context.Context, p tenant.Principal, f engine.LeaseFilter) ([]lease.Lease, error)
	LeasePage(ctx context.Context, p tenant.Principal, q engine.LeaseQuery) (engine.LeasePage, error)
	Lease(ctx context.Context, p tenant.Principal, id string) (lease.Lease, error)
	LeaseAllocations(ctx context.Context, p tenant.Principal, id string) ([]engine.AllocationView, []lease.Shortfall, error)
	LeaseFabric(ctx context.Context, p tenant.Principal, id string) (engine.LeaseFabric, error)
	LeaseFindings(ctx context.Context, p tenant.Principal, id string, from, to time.Time) ([]engine.LeaseFinding, error)
	LeasePlan(ctx context.Context, p tenant.Principal, id string) (billing.Plan, bool, error)
	SLA(ctx context.Context, p tenant.Principal, leaseID string, month time.Time) (meter.SLA, error)
	CancelLease(ctx context.Context, p tenant.Principal, id, reason string) (lease.Lease, error)
	LeasePools(ctx context.Context, p tenant.Principal) ([]string, error)
}

func (s *Server) leaseRoutes() {
	s.mux.HandleFunc("GET /leases", s.signedIn(s.leases))
	s.mux.HandleFunc("GET /leases/{id}", s.signedIn(s.leaseDetail))
	s.mux.HandleFunc("POST /leases/{id}/cancel", s.form(s.cancelLease))
}

type leaseRow struct {
	ID, TenantID, Kind, Pool, Start, End, State string
	GPUs                                        int64
	Bad                                         bool
	Health                                      string
}

// listedLeaseStates are the states a stored lease shows (requested and admitted
// pass within one command).
var listedLeaseStates = []lease.State{lease.Scheduled, lease.Active, lease.Ended, lease.Cancelled}

type leasesData struct {
	Rows                        []leaseRow
	Kind, State, Pool, Tenant   string
	Limit                       int
	Kinds, States, Pools, Sizes []string
	NextURL, FirstURL           string
	Paged, Partial              bool
	Scanned                     int
}

// leaseHealthText says what a lease's health mark shows.
func leaseHealthText(h engine.LeaseHealth) string {
	var parts []string
	plural := func(n int, one, many string) string {
		if n == 1 {
			return "1 " + one
		}
		return strconv.Itoa(n) + " " + many
	}
	if h.Shortfalls > 0 {
		parts = append(parts, plural(h.Shortfalls, "shortfall", "shortfalls"))
	}
	if h.Findings > 0 {
		parts = append(parts, plural(h.Findings, "health finding", "health findings"))
	}
	if h.Down > 0 {
		parts = append(parts, plural(h.Down, "node down", "nodes down"))
	}
	return strings.Join(parts, " · ")
}

// leases lists leases a page at a time, filtered by state, kind, pool and
// (operators) tenant, each with its health mark.
func (s *Server) leases(w http.ResponseWriter, r *http.Request, p tenant.Principal, v view) {
	v.Title, v.Page = "Leases", "leases"
	ctx := r.Context()
	q := r.URL.Query()
	lq := engine.LeaseQuery{Kind: lease.Kind(q.Get("kind")), State: lease.State(q.Get("state")), Pool: q.Get("pool"), After: q.Get("after")}
	if p.Role.IsOperator() {
		lq.TenantID = q.Get("tenant")
	}
	var limitErr error
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 {
			limitErr = fieldIssue("limit", l, "must be a whole number between 1 and %d", engine.MaxLeasePage)
		}
		lq.Limit = n
	}
	d := leasesData{Kind: string(lq.Kind), State: string(lq.State), Pool: lq.Pool, Tenant: lq.TenantID, Limit: max(lq.Limit, 0),
		Sizes: []string{"25", "50", "100", "200", "500"}, Paged: lq.After != ""}
	for _, k := range lease.Kinds {
		d.Kinds = append(d.Kinds, string(k))
	}
	for _, st := range listedLeaseStates {
		d.States = append(d.States, string(st))
	}
	pools, err := s.eng.LeasePools(ctx, p)
	if err != nil {
		s.fail(w, v, err)
		return
	}
	d.Pools = pools
	status := http.StatusOK
	page, err := engine.LeasePage{}, limitErr
	if err == nil {
		page, err = s.eng.LeasePage(ctx, p, lq)
	}
	var ve *valid.Error
	switch {
	case errors.As(err, &ve):
		status, v.Error = s.formAnswer(ctx, v.Page, err)
	case err != nil:
		s.fail(w, v, err)
		return
	}
	if d.Limit == 0 {
		d.Limit = engine.DefaultLeasePage
	}
	for _, row := range page.Rows {
		l := row.Lease
		d.Rows = append(d.Rows, leaseRow{ID: l.ID, TenantID: l.TenantID, Kind: string(l.Kind), Pool: l.Pool,
			Start: utcMinute(l.Start), End: utcMinute(l.End), GPUs: int64(l.MaxGPUs()), State: string(row.Now),
			Bad: row.Bad(), Health: leaseHealthText(row.LeaseHealth)})
	}
	d.Partial, d.Scanned = page.Partial, page.Scanned
	base := url.Values{}
	for k, val := range map[string]string{"kind": d.Kind, "state": d.State, "pool": d.Pool, "tenant": d.Tenant, "limit": q.Get("limit")} {
		if val != "" {
			base.Set(k, val)
		}
	}
	d.FirstURL = "/leases"
	if enc := base.Encode(); enc != "" {
		d.FirstURL += "?" + enc
	}
	if page.Next != "" {
		base.Set("after", page.Next)
		d.NextURL = "/leases?" + base.Encode()
	}
	v.Data = d
	s.render(w, status, "leases", v)
}

// termRow is one term of a price plan; Exact, when set, is the exact
// amount behind a Value rounded for reading (a tooltip).
type termRow struct{ Key, Value, Exact string }

type leaseStepRow struct {
	From, To string
	GPUs     int64
	MW       string
}

type leaseAllocRow struct {
	ID, Start, End, Names string
	Nodes                 int
	Now                   bool
}

type leaseShortRow struct {
	Node, From, To, GPUHours string
	GPUs                     int64
}

type leaseFindingRow struct {
	At, Node, Severity, Rule, Detail string
	GPU                              string
	Open                             bool
}

type slaEpisodeRow struct {
	From, To, Short, Causes string
}

type leaseSLAView struct {
	Month, Committed, Held, Unhealthy, Delivered, Short, Availability string
	Episodes                                                          []slaEpisodeRow
}

type leaseDetailData struct {
	ID, TenantID, Kind, Pool, State, Reason, Start, End, Created, Cancelled string
	Packing, Isolation                                                      string
	GPUs                                                                    int64
	Schedule                                                                []leaseStepRow
	Spot                                                                    bool
	MaxPrice, Notice, Noticed                                               string
	Plan                                                                    []termRow
	PlanNote                                                                string
	Allocs                                                                  []leaseAllocRow
	MoreAllocs                                                              int
	Shortfalls                                                              []leaseShortRow
	Fabric                                                                  template.HTML
	FabricAt, FabricNote                                                    string
	FabricNodes                                                             int
	Findings                                                                []leaseFindingRow
	SLA                                                                     *leaseSLAView
	SLANote, Month, UsageURL                                                string
	CanCancel                                                               bool
	CancelReason                                                            string
}

// maxAllocRows bounds the allocations a lease page lists (a contract for a
// site's surplus holds hundreds of runs at once and more over its life):
// those held now come first.
const maxAllocRows = 50

// maxNodeNames bounds the node names one allocation row lists.
const maxNodeNames = 8

func (s *Server) leaseDetail(w http.ResponseWriter, r *http.Request, p tenant.Principal, v view) {
	s.showLease(w, r, p, v, http.StatusOK, "")
}

// showLease renders lease detail with status, an error message (v.Error)
// and the cancel form's reason as submitted.
func (s *Server) showLease(w http.ResponseWriter, r *http.Request, p tenant.Principal, v view, status int, reason string) {
	v.Title, v.Page = "Lease", "leases"
	d, err := s.leaseData(r.Context(), p, r.PathValue("id"))
	if err != nil {
		s.fail(w, v, err)
		return
	}
	d.CancelReason = reason
	v.Title = "Lease " + d.ID
	v.Data = d
	s.render(w, status, "lease", v)
}

func (s *Server) leaseData(ctx context.Context, p tenant.Principal, id string) (leaseDetailData, error) {
	l, err := s.eng.Lease(ctx, p, id)
	if err != nil {
		return leaseDetailData{}, err
	}
	now := s.eng.Clock().Now().UTC()
	st := l.StateAt(now)
	d := leaseDetailData{ID: l.ID, TenantID: l.TenantID, Kind: string(l.Kind), Pool: l.Pool, State: string(st), Reason: l.Reason,
		Start: utcMinute(l.Start), End: utcMinute(l.End), Created: utcMinute(l.Created), Cancelled: utcMinute(l.Cancelled),
		Packing: string(l.Packing), Isolation: string(l.Isolation), GPUs: int64(l.MaxGPUs()), Spot: l.Kind == lease.Spot,
		CanCancel: (st == lease.Scheduled || st == lease.Active) && p.Can(tenant.PermLeasesWrite)}
	for i, step := range l.Schedule {
		to := l.End
		if i+1 < len(l.Schedule) {
			to = l.Schedule[i+1].From
		}
		row := leaseStepRow{From: utcMinute(step.From), To: utcMinute(to), GPUs: int64(step.GPUs)}
		if step.Power != 0 {
			row.MW = strconv.FormatFloat(step.Power.MW(), 'f', -1, 64)
		}
		d.Schedule = append(d.Schedule, row)
	}
	if d.Spot {
		d.MaxPrice, d.Notice, d.Noticed = moneyText(l.MaxPrice), l.Notice, utcMinute(l.Noticed)
	}

	plan, def, err := s.eng.LeasePlan(ctx, p, id)
	switch {
	case errors.Is(err, engine.ErrNotFound) || errors.Is(err, tenant.ErrNotFound):
		d.PlanNote = "No price plan is attached to this lease."
	case errors.Is(err, tenant.ErrForbidden):
		d.PlanNote = "Your key may not read billing."
	case err != nil:
		return leaseDetailData{}, err
	default:
		d.Plan = planTermRows(plan)
		if def {
			d.PlanNote = "The list price of its kind (no plan was attached)."
		}
	}

	as, shorts, err := s.eng.LeaseAllocations(ctx, p, id)
	if err != nil {
		return leaseDetailData{}, err
	}
	// Held now first, then the rest by start (as the engine lists them).
	slices.SortStableFunc(as, func(a, b engine.AllocationView) int {
		an, bn := !now.Before(a.Start) && now.Before(a.End), !now.Before(b.Start) && now.Before(b.End)
		switch {
		case an && !bn:
			return -1
		case bn && !an:
			return 1
		}
		return 0
	})
	for i, a := range as {
		if i == maxAllocRows {
			d.MoreAllocs = len(as) - i
			break
		}
		names := a.Nodes
		more := ""
		if len(names) > maxNodeNames {
			more = fmt.Sprintf(" … and %d more", len(names)-maxNodeNames)
			names = names[:maxNodeNames]
		}
		d.Allocs = append(d.Allocs, leaseAllocRow{ID: a.ID, Start: utcMinute(a.Start), End: utcMinute(a.End), Nodes: len(a.Nodes),
			Names: strings.Join(names, ", ") + more, Now: !now.Before(a.Start) && now.Before(a.End)})
	}
	for _, sf := range shorts {
		d.Shortfalls = append(d.Shortfalls, leaseShortRow{Node: sf.Node, GPUs: int64(sf.GPUs), From: utcMinute(sf.From), To: utcMinute(sf.To),
			GPUHours: strconv.FormatFloat(sf.GPUHours(), 'f', 1, 64)})
	}

	fab, err := s.eng.LeaseFabric(ctx, p, id)
	if err != nil {
		return leaseDetailData{}, err
	}
	d.Fabric, d.FabricNote = fabricSVG(fab, p.Role.IsOperator()), fabricNote(fab)
	d.FabricAt, d.FabricNodes = utcMinute(fab.At), fab.Nodes

	month := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC)
	d.Month = month.Format("2006-01")
	d.UsageURL = "/usage?" + url.Values{"lease": {id}, "month": {d.Month}}.Encode()
	fs, err := s.eng.LeaseFindings(ctx, p, id, month, now.Add(time.Millisecond))
	if err != nil {
		return leaseDetailData{}, err
	}
	for _, f := range fs {
		gpu := "node"
		if f.GPU >= 0 {
			gpu = strconv.Itoa(f.GPU)
		}
		d.Findings = append(d.Findings, leaseFindingRow{At: utcMinute(f.At), Node: f.Node, GPU: gpu, Severity: string(f.Severity), Rule: f.Rule, Detail: f.Detail, Open: f.Open})
	}

	if l.Kind == lease.Spot {
		d.SLANote = "Spot leases carry no SLA: they may be reclaimed after their notice."
		return d, nil
	}
	sla, err := s.eng.SLA(ctx, p, id, month)
	var ve *valid.Error
	switch {
	case errors.As(err, &ve):
		d.SLANote = ve.Error()
	case errors.Is(err, tenant.ErrForbidden):
		d.SLANote = "Your key may not read usage."
	case err != nil:
		return leaseDetailData{}, err
	default:
		d.SLA = leaseSLAOf(sla)
	}
	return d, nil
}

func leaseSLAOf(s meter.SLA) *leaseSLAView {
	out := &leaseSLAView{Month: s.Month.Format("2006-01"), Committed: gpuHoursOf(s.CommittedGPUms), Held: gpuHoursOf(s.HeldGPUms),
		Unhealthy: gpuHoursOf(s.UnhealthyGPUms), Delivered: gpuHoursOf(s.DeliveredGPUms), Short: gpuHoursOf(s.ShortGPUms),
		Availability: ppmPercent(s.AvailabilityPPM)}
	for _, e := range s.Episodes {
		out.Episodes = append(out.Episodes, slaEpisodeRow{From: utcMinute(e.From), To: utcMinute(e.To), Short: gpuHoursOf(e.ShortGPUms), Causes: strings.Join(e.Causes, "; ")})
	}
	return out
}

// planTermRows describes a price plan in words, one term a row.
func planTermRows(p billing.Plan) []termRow {
	rows := []termRow{{Key: "Kind", Value: string(p.Kind)}, {Key: "Currency", Value: p.Currency}}
	if f := p.Fee; f != nil {
		switch f.Basis {
		case billing.PerMonth:
			fee, exact := amountText(f.Rate)
			rows = append(rows, termRow{"Fee", fee + " per month (prorated by the hour)", exact})
		case billing.PerGPUHour:
			rows = append(rows, termRow{Key: "Fee", Value: rateText(f.Rate) + " per committed GPU-hour"})
		case billing.PerMWMonth:
			fee, exact := amountText(f.Rate)
			rows = append(rows, termRow{"Fee", fmt.Sprintf("%s per MW-month on %s MW", fee, strconv.FormatFloat(f.Power.MW(), 'f', -1, 64)), exact})
		}
	}
	for _, dc := range p.Discounts {
		row := termRow{Key: "Discount " + dc.Month.UTC().Format("2006-01")}
		row.Value, row.Exact = amountText(dc.Amount)
		row.Value += " off"
		if dc.BasisPoints > 0 {
			row.Value, row.Exact = bpPercent(dc.BasisPoints)+"% off", ""
		}
		rows = append(rows, row)
	}
	if rt := p.Reservation; rt != nil {
		rows = append(rows, termRow{Key: "Reservation", Value: rateText(rt.Rate) + " per GPU-hour, billed " + string(rt.Billing)})
	}
	if e := p.Energy; e != nil {
		rows = append(rows, termRow{Key: "Energy", Value: fmt.Sprintf("metered IT energy × PUE %d.%03d × %s per kWh", e.PUEMilli/1000, e.PUEMilli%1000, rateText(e.Tariff))})
	}
	if t := p.SLA; t != nil {
		txt := "target " + trimPercent(ppmPercent(t.TargetPPM)) + "%"
		for _, tier := range t.Tiers {
			txt += fmt.Sprintf("; below %s%% credit %s%%", trimPercent(ppmPercent(tier.BelowPPM)), bpPercent(tier.CreditBP))
		}
		if t.CapBP > 0 {
			txt += fmt.Sprintf("; capped at %s%% of the fee", bpPercent(t.CapBP))
		}
		rows = append(rows, termRow{Key: "SLA", Value: txt})
	}
	if p.Kind == lease.Spot {
		rows = append(rows, termRow{Key: "Spot", Value: "the notice tier's spot price per GPU-hour, hour by hour"})
	}
	return rows
}

// cancelLease cancels a lease from its page (tenant admins, operator
// admins); the engine refuses the others, and the page shows why.
func (s *Server) cancelLease(w http.ResponseWriter, r *http.Request, p tenant.Principal, v view) {
	id := r.PathValue("id")
	reason := r.PostFormValue("reason")
	_, err := s.eng.CancelLease(r.Context(), p, id, reason)
	if err == nil {
		http.Redirect(w, r, "/leases/"+url.PathEscape(id), http.StatusSeeOther)
		return
	}
	status, msg := s.formAnswer(r.Context(), "lease", err)
	if status == http.StatusNotFound {
		s.fail(w, v, err)
		return
	}
	v.Error = msg
	s.showLease(w, r, p, v, status, reason)
}

// bpPercent formats basis points as a percentage without trailing zeros.
func bpPercent(bp int64) string { return trimPercent(fmt.Sprintf("%d.%02d", bp/100, bp%100)) }

// trimPercent drops a percentage's trailing fraction zeros ("99.5000" →
// "99.5", "50.00" → "50").
func trimPercent(s string) string {
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	return s
}

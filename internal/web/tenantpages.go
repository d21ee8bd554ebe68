package web

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"html/template"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/neocloud/neocloud/internal/engine"
	"github.com/neocloud/neocloud/internal/lease"
	"github.com/neocloud/neocloud/internal/meter"
	"github.com/neocloud/neocloud/internal/money"
	"github.com/neocloud/neocloud/internal/tenant"
	"github.com/neocloud/neocloud/internal/valid"
)

// tenantEngine is what the tenant pages (usage, SLA, quotes, spot
// requests) read and submit.
type tenantEngine interface {
	Usage(ctx context.Context, p tenant.Principal, q engine.UsageQuery) ([]engine.UsagePoint, error)
	SLA(ctx context.Context, p tenant.Principal, leaseID string, month time.Time) (meter.SLA, error)
	QuotePlacement(ctx context.Context, p tenant.Principal, tenantID string, r lease.Request) (engine.Quote, error)
	RequestLease(ctx context.Context, p tenant.Principal, tenantID string, r lease.Request) (engine.LeaseResult, error)
	SpotMarkets(ctx context.Context, p tenant.Principal, pool string) ([]engine.SpotMarket, error)
	Tenants(ctx context.Context, p tenant.Principal) ([]tenant.Tenant, error)
	IdempotentResponse(ctx context.Context, scope, key string) (engine.IdempotentResponse, error)
}

func (s *Server) tenantRoutes() {
	locks := &onceLocks{}
	s.mux.HandleFunc("GET /usage", s.signedIn(s.usage))
	s.mux.HandleFunc("GET /usage.csv", s.signedIn(s.usageCSV))
	s.mux.HandleFunc("GET /quotes", s.signedIn(s.quotes))
	s.mux.HandleFunc("POST /quotes", s.form(func(w http.ResponseWriter, r *http.Request, p tenant.Principal, v view) {
		s.acceptQuote(w, r, p, v, locks)
	}))
	s.mux.HandleFunc("GET /spot", s.signedIn(s.spot))
	s.mux.HandleFunc("POST /spot", s.form(func(w http.ResponseWriter, r *http.Request, p tenant.Principal, v view) {
		s.requestSpot(w, r, p, v, locks)
	}))
}

// ---- Usage and SLA ----

// maxSLALeases bounds the SLAs the usage page computes for a tenant's
// whole month (each reads the lease's allocations, rollup and findings).
const maxSLALeases = 20

// usageSteps are the steps the usage page offers.
var usageSteps = []string{engine.StepHour, engine.StepDay}

type usageStepRow struct {
	From, Held, Metered, Used, Healthy, Energy string
}

type leaseUsageRow struct {
	ID, Pool, URL, Held, Metered, Used string
}

type leaseSLA struct {
	LeaseID, Kind, Note string
	SLA                 *leaseSLAView
}

type usageData struct {
	Lease, Tenant, Month, Step string
	Steps                      []string
	Note                       string
	Chart                      template.JS
	Points                     int
	Rows                       []usageStepRow
	Total                      usageStepRow
	Leases                     []leaseUsageRow
	SLAs                       []leaseSLA
	MoreSLAs, Episodes         int
	CSVURL, PrevURL, NextURL   string
}

// usageQuery is a usage page's query, read and checked.
type usageQuery struct {
	lease, tenant, step string
	month, from, to     time.Time
	ok                  bool // false: nothing to query (an operator chose neither lease nor tenant)
}

// readUsageQuery reads lease, tenant (operators), month (YYYY-MM, default
// this month) and step (hour or day, default day). The usage runs from
// the month's start to its end or now, whichever is first.
func (s *Server) readUsageQuery(p tenant.Principal, q url.Values) (usageQuery, error) {
	now := s.eng.Clock().Now().UTC()
	u := usageQuery{lease: q.Get("lease"), step: q.Get("step")}
	if p.Role.IsOperator() {
		u.tenant = q.Get("tenant")
	}
	var v valid.Error
	if u.step == "" {
		u.step = engine.StepDay
	}
	if !slices.Contains(usageSteps, u.step) {
		v.Add("step", u.step, "must be hour or day")
	}
	u.month = time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC)
	if m := q.Get("month"); m != "" {
		t, err := time.ParseInLocation("2006-01", m, time.UTC)
		if err != nil {
			v.Add("month", m, "must be a month as YYYY-MM")
		}
		u.month = t
	}
	if err := v.Err(); err != nil {
		return u, err
	}
	u.from, u.to = u.month, u.month.AddDate(0, 1, 0)
	if end := now.Truncate(time.Hour).Add(time.Hour); end.Before(u.to) {
		u.to = end
	}
	u.ok = (u.lease != "" || u.tenant != "" || !p.Role.IsOperator()) && u.from.Before(u.to)
	return u, nil
}

func (u usageQuery) engine() engine.UsageQuery {
	return engine.UsageQuery{From: u.from, To: u.to, Step: u.step, LeaseID: u.lease, TenantID: u.tenant}
}

func (u usageQuery) values(month time.Time) url.Values {
	out := url.Values{"month": {month.Format("2006-01")}, "step": {u.step}}
	if u.lease != "" {
		out.Set("lease", u.lease)
	}
	if u.tenant != "" {
		out.Set("tenant", u.tenant)
	}
	return out
}

func usageStepAfter(step string, t time.Time) time.Time {
	if step == engine.StepDay {
		return t.AddDate(0, 0, 1)
	}
	return t.Add(time.Hour)
}

func gpuHoursFloat(ms int64) float64 {
	return math.Round(float64(ms)/float64(gpuMsPerHour)*1000) / 1000
}

// usage shows GPU-hours by hour or day for a lease (or all of a tenant's
// leases) over a month, a chart and a table, and the month's SLA of the
// guaranteed leases, with a CSV of the same points.
func (s *Server) usage(w http.ResponseWriter, r *http.Request, p tenant.Principal, v view) {
	v.Title, v.Page = "Usage & SLA", "usage"
	ctx := r.Context()
	u, err := s.readUsageQuery(p, r.URL.Query())
	d := usageData{Lease: u.lease, Tenant: u.tenant, Step: u.step, Steps: usageSteps}
	if err != nil {
		status, msg := s.formAnswer(ctx, v.Page, err)
		v.Error, v.Data = msg, d
		s.render(w, status, "usage", v)
		return
	}
	d.Month = u.month.Format("2006-01")
	d.PrevURL = "/usage?" + u.values(u.month.AddDate(0, -1, 0)).Encode()
	d.NextURL = "/usage?" + u.values(u.month.AddDate(0, 1, 0)).Encode()
	d.CSVURL = "/usage.csv?" + u.values(u.month).Encode()
	switch {
	case !u.ok && u.lease == "" && u.tenant == "" && p.Role.IsOperator():
		d.Note = "Choose a lease (from its page) or a tenant."
		v.Data = d
		s.render(w, http.StatusOK, "usage", v)
		return
	case !u.ok:
		d.Note = "This month has not started."
		v.Data = d
		s.render(w, http.StatusOK, "usage", v)
		return
	}
	pts, err := s.eng.Usage(ctx, p, u.engine())
	if err != nil {
		var ve *valid.Error
		if errors.As(err, &ve) {
			status, msg := s.formAnswer(ctx, v.Page, err)
			v.Error, v.Data = msg, d
			s.render(w, status, "usage", v)
			return
		}
		s.fail(w, v, err)
		return
	}
	// Sum the points by step, over the leases; and by lease, over steps.
	bySteps := map[time.Time]*engine.UsagePoint{}
	byLease := map[string]*engine.UsagePoint{}
	var leaseOrder []string
	var total engine.UsagePoint
	for _, pt := range pts {
		if pt.Use != meter.UseLease {
			continue // operators' tenant-wide view: leases only
		}
		x := bySteps[pt.From]
		if x == nil {
			x = &engine.UsagePoint{From: pt.From}
			bySteps[pt.From] = x
		}
		x.AllocatedGPUms += pt.AllocatedGPUms
		x.Add(pt.Usage)
		total.AllocatedGPUms += pt.AllocatedGPUms
		total.Add(pt.Usage)
		y := byLease[pt.LeaseID]
		if y == nil {
			y = &engine.UsagePoint{LeaseID: pt.LeaseID, Pool: pt.Pool}
			byLease[pt.LeaseID] = y
			leaseOrder = append(leaseOrder, pt.LeaseID)
		}
		y.AllocatedGPUms += pt.AllocatedGPUms
		y.Add(pt.Usage)
	}
	series := map[string][]float64{}
	var ts []int64
	for t := u.from; t.Before(u.to); t = usageStepAfter(u.step, t) {
		x := bySteps[t]
		if x == nil {
			x = &engine.UsagePoint{From: t}
		}
		ts = append(ts, t.Unix())
		series["held"] = append(series["held"], gpuHoursFloat(x.AllocatedGPUms))
		series["metered"] = append(series["metered"], gpuHoursFloat(x.GPUms))
		series["used"] = append(series["used"], gpuHoursFloat(x.UsedMs))
		d.Rows = append(d.Rows, usageStepRow{From: utcMinute(t), Held: gpuHoursOf(x.AllocatedGPUms), Metered: gpuHoursOf(x.GPUms),
			Used: gpuHoursOf(x.UsedMs), Healthy: gpuHoursOf(x.HealthyMs), Energy: kwhOf(x.EnergyMJ)})
	}
	d.Total = usageStepRow{Held: gpuHoursOf(total.AllocatedGPUms), Metered: gpuHoursOf(total.GPUms), Used: gpuHoursOf(total.UsedMs),
		Healthy: gpuHoursOf(total.HealthyMs), Energy: kwhOf(total.EnergyMJ)}
	d.Points = len(ts)
	// The x axis spans the whole month, however few steps have passed.
	chart, err := json.Marshal(map[string]any{"t": ts, "held": series["held"], "metered": series["metered"], "used": series["used"],
		"step": u.step, "from": u.month.Unix(), "to": u.month.AddDate(0, 1, 0).Unix()})
	if err != nil {
		s.fail(w, v, err)
		return
	}
	d.Chart = template.JS(chart)
	slices.Sort(leaseOrder)
	for _, id := range leaseOrder {
		if u.lease != "" {
			break // one lease: the table would repeat the total
		}
		y := byLease[id]
		vals := u.values(u.month)
		vals.Set("lease", id)
		d.Leases = append(d.Leases, leaseUsageRow{ID: id, Pool: y.Pool, URL: "/usage?" + vals.Encode(),
			Held: gpuHoursOf(y.AllocatedGPUms), Metered: gpuHoursOf(y.GPUms), Used: gpuHoursOf(y.UsedMs)})
	}
	// SLAs: of the lease asked for, else of the tenant's leases shown.
	ids := leaseOrder
	if u.lease != "" {
		ids = []string{u.lease}
	}
	for i, id := range ids {
		if i == maxSLALeases {
			d.MoreSLAs = len(ids) - i
			break
		}
		ls, err := s.leaseSLA(ctx, p, id, u.month)
		if err != nil {
			s.fail(w, v, err)
			return
		}
		d.SLAs = append(d.SLAs, ls)
		if ls.SLA != nil {
			d.Episodes += len(ls.SLA.Episodes)
		}
	}
	v.Data = d
	s.render(w, http.StatusOK, "usage", v)
}

// leaseSLA returns a lease's SLA in month, or a note saying why it has
// none (spot).
func (s *Server) leaseSLA(ctx context.Context, p tenant.Principal, id string, month time.Time) (leaseSLA, error) {
	l, err := s.eng.Lease(ctx, p, id)
	if err != nil {
		return leaseSLA{}, err
	}
	out := leaseSLA{LeaseID: id, Kind: string(l.Kind)}
	if l.Kind == lease.Spot {
		out.Note = "spot: no SLA"
		return out, nil
	}
	sla, err := s.eng.SLA(ctx, p, id, month)
	var ve *valid.Error
	switch {
	case errors.As(err, &ve):
		out.Note = ve.Error()
	case err != nil:
		return leaseSLA{}, err
	default:
		out.SLA = leaseSLAOf(sla)
	}
	return out, nil
}

// usageCSV serves the usage page's points as CSV, one row per lease and
// step, with the API's columns (GET /v1/usage?format=csv).
func (s *Server) usageCSV(w http.ResponseWriter, r *http.Request, p tenant.Principal, v view) {
	v.Page = "usage"
	ctx := r.Context()
	u, err := s.readUsageQuery(p, r.URL.Query())
	if err == nil && !u.ok {
		err = fieldIssue("lease", nil, "choose a lease or a tenant, in a month that has started")
	}
	var pts []engine.UsagePoint
	if err == nil {
		pts, err = s.eng.Usage(ctx, p, u.engine())
	}
	var ve *valid.Error
	switch {
	case errors.As(err, &ve):
		status, msg := s.formAnswer(ctx, v.Page, err)
		http.Error(w, msg, status)
		return
	case err != nil:
		s.fail(w, v, err)
		return
	}
	name := "usage-" + u.month.Format("2006-01")
	switch {
	case u.lease != "":
		name += "-" + u.lease
	case u.tenant != "":
		name += "-" + u.tenant
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="`+name+`.csv"`)
	w.Header().Set("Cache-Control", "no-store")
	cw := csv.NewWriter(w)
	_ = cw.Write([]string{"from", "to", "pool", "use", "lease_id", "tenant_id", "allocated_gpu_ms", "metered_gpu_ms", "used_gpu_ms",
		"healthy_gpu_ms", "energy_mj", "readings", "allocated_gpu_hours", "used_gpu_hours", "healthy_gpu_hours", "energy_kwh"})
	i := func(x int64) string { return strconv.FormatInt(x, 10) }
	for _, pt := range pts {
		if pt.Use != meter.UseLease {
			continue
		}
		_ = cw.Write([]string{pt.From.UTC().Format(time.RFC3339), pt.To.UTC().Format(time.RFC3339), pt.Pool, string(pt.Use), pt.LeaseID, pt.TenantID,
			i(pt.AllocatedGPUms), i(pt.GPUms), i(pt.UsedMs), i(pt.HealthyMs), i(pt.EnergyMJ), i(pt.Readings),
			gpuHoursOf(pt.AllocatedGPUms), gpuHoursOf(pt.UsedMs), gpuHoursOf(pt.HealthyMs), kwhOf(pt.EnergyMJ)})
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		s.log.ErrorContext(ctx, "web: usage csv", "err", err)
	}
}

// ---- Quotes ----

type quoteChargeRow struct{ Month, Fee, Proration, Discount, Amount string }

type quoteView struct {
	Feasible                               bool
	Reason, Detail, EarliestStart, Requote string
	Kind, Pool, Start, End                 string
	Schedule                               []leaseStepRow
	Nodes, LeafGroups, Pods                int
	Charges                                []quoteChargeRow
	Total, Price, Notice                   string
	ListPrice                              bool
}

type quotesData struct {
	Form                               leaseForm
	Tenants                            []choice
	Pools, Kinds, Packings, Isolations []string
	Quote                              *quoteView
	Once                               string
}

// quoteKinds are the kinds the quote page offers (spot has its page).
var quoteKinds = []string{string(lease.Reservation), string(lease.Contract)}

func (s *Server) leaseFormChoices(ctx context.Context, p tenant.Principal) (pools []string, tenants []choice, err error) {
	if pools, err = s.eng.LeasePools(ctx, p); err != nil {
		return nil, nil, err
	}
	tenants, err = s.tenantOptions(ctx, p)
	return pools, tenants, err
}

func enumNames[T ~string](xs []T) []string {
	out := make([]string, len(xs))
	for i, x := range xs {
		out[i] = string(x)
	}
	return out
}

// quotes answers a what-if lease request (a GET form: a quote changes
// nothing) with feasibility, the reason and the earliest start that fits,
// and the price month by month; a feasible quote carries a form that
// requests the lease (POST /quotes).
func (s *Server) quotes(w http.ResponseWriter, r *http.Request, p tenant.Principal, v view) {
	f := leaseFormOf(p, r.URL.Query())
	if f.Pool == "" {
		// A blank form: a day's reservation from the next hour.
		start := s.eng.Clock().Now().UTC().Truncate(time.Hour).Add(time.Hour)
		f = leaseForm{Tenant: f.Tenant, Kind: string(lease.Reservation), Start: formTimeValue(start), End: formTimeValue(start.Add(24 * time.Hour)), GPUs: "8"}
		s.showQuotes(w, r, p, v, http.StatusOK, f, false)
		return
	}
	s.showQuotes(w, r, p, v, http.StatusOK, f, true)
}

// showQuotes renders the quote page with f in the form, and its quote
// when run is set.
func (s *Server) showQuotes(w http.ResponseWriter, r *http.Request, p tenant.Principal, v view, status int, f leaseForm, run bool) {
	v.Title, v.Page = "Quotes", "quotes"
	ctx := r.Context()
	d := quotesData{Form: f, Kinds: quoteKinds, Packings: enumNames(lease.Packings), Isolations: enumNames(lease.Isolations)}
	var err error
	if d.Pools, d.Tenants, err = s.leaseFormChoices(ctx, p); err != nil {
		s.fail(w, v, err)
		return
	}
	if run {
		qv, err := s.quote(ctx, p, f)
		if err != nil {
			status, v.Error = s.formAnswer(ctx, v.Page, err)
			if status == http.StatusInternalServerError {
				s.fail(w, v, err)
				return
			}
		}
		d.Quote = qv
		if qv != nil && qv.Feasible {
			d.Once = token()
		}
	}
	v.Data = d
	s.render(w, status, "quotes", v)
}

func (s *Server) quote(ctx context.Context, p tenant.Principal, f leaseForm) (*quoteView, error) {
	req, err := f.request()
	if err != nil {
		return nil, err
	}
	q, err := s.eng.QuotePlacement(ctx, p, f.Tenant, req)
	if err != nil {
		return nil, err
	}
	out := &quoteView{Feasible: q.Feasible, Kind: string(q.Kind), Pool: q.Pool, Start: utcMinute(q.Start), End: utcMinute(q.End),
		Nodes: q.Nodes, LeafGroups: q.LeafGroups, Pods: q.Pods, Notice: q.Notice}
	for i, st := range q.Schedule {
		to := q.End
		if i+1 < len(q.Schedule) {
			to = q.Schedule[i+1].From
		}
		out.Schedule = append(out.Schedule, leaseStepRow{From: utcMinute(st.From), To: utcMinute(to), GPUs: int64(st.GPUs)})
	}
	if q.Kind == lease.Spot {
		out.Price = moneyText(q.Price) // not the utilization: it tells the owner's use
	}
	if ref := q.Refusal; ref != nil {
		out.Reason, out.Detail = ref.Reason, ref.Detail
		if !ref.EarliestStart.IsZero() {
			out.EarliestStart = utcMinute(ref.EarliestStart)
			if req.Schedule == nil && !req.Start.IsZero() && !req.End.IsZero() {
				g := f
				g.Start, g.End = formTimeValue(ref.EarliestStart), formTimeValue(ref.EarliestStart.Add(req.End.Sub(req.Start)))
				out.Requote = "/quotes?" + g.values().Encode()
			}
		}
	}
	if q.Feasible || q.Refusal == nil || !q.Start.IsZero() {
		charges, total, def, ok, err := engine.QuotePrice(q, nil)
		if err != nil {
			return nil, err
		}
		if ok {
			// Amounts for reading: to the cent, with thousands separators
			// (the currency once, on the total).
			amount := func(m money.Money) string { return groupThousands(money.Format(m.RoundCents().Micros)) }
			for _, c := range charges {
				out.Charges = append(out.Charges, quoteChargeRow{Month: c.Month.Format("2006-01"), Fee: amount(c.Fee),
					Proration: amount(c.Proration), Discount: amount(c.Discount), Amount: amount(c.Amount)})
			}
			out.Total, _ = amountText(total)
			out.ListPrice = def
		}
	}
	return out, nil
}

// acceptQuote turns a quoted request into a lease (once per form token).
func (s *Server) acceptQuote(w http.ResponseWriter, r *http.Request, p tenant.Principal, v view, locks *onceLocks) {
	f := leaseFormOf(p, r.PostForm)
	req, err := f.request()
	if err == nil {
		var id string
		if id, _, err = s.requestOnce(r.Context(), locks, p, r.PostFormValue("once"), "/quotes", f, req); err == nil {
			http.Redirect(w, r, "/leases/"+url.PathEscape(id), http.StatusSeeOther)
			return
		}
	}
	status, msg := s.formAnswer(r.Context(), "quotes", err)
	v.Error = msg
	s.showQuotes(w, r, p, v, status, f, false)
}

// ---- Spot ----

type spotTierRow struct{ Tier, Notice, Price string }

type spotMarketRow struct {
	Pool                        string
	Tiers                       []spotTierRow
	Visible                     bool
	Utilization, Idle, SpotGPUs string
}

type spotLeaseRow struct {
	ID, TenantID, Pool, Start, End, MaxPrice, Notice, Noticed string
	GPUs                                                      int64
}

type spotData struct {
	Markets                            []spotMarketRow
	Form                               leaseForm
	Tenants                            []choice
	Pools, Tiers, Packings, Isolations []string
	Once                               string
	Leases                             []spotLeaseRow
	MoreLeases                         bool
}

// maxSpotRows bounds the active spot leases the spot page lists.
const maxSpotRows = 100

func (s *Server) spot(w http.ResponseWriter, r *http.Request, p tenant.Principal, v view) {
	f := leaseFormOf(p, r.URL.Query())
	if f.GPUs == "" {
		f.GPUs = "8"
	}
	s.showSpot(w, r, p, v, http.StatusOK, f)
}

// showSpot renders the spot page: prices by notice tier now, the request
// form (f), and the active spot leases with their reclaim notices.
func (s *Server) showSpot(w http.ResponseWriter, r *http.Request, p tenant.Principal, v view, status int, f leaseForm) {
	v.Title, v.Page = "Spot", "spot"
	ctx := r.Context()
	f.Kind = string(lease.Spot)
	d := spotData{Form: f, Once: token(), Packings: enumNames(lease.Packings), Isolations: enumNames(lease.Isolations)}
	var err error
	if d.Pools, d.Tenants, err = s.leaseFormChoices(ctx, p); err != nil {
		s.fail(w, v, err)
		return
	}
	ms, err := s.eng.SpotMarkets(ctx, p, "")
	if err != nil {
		s.fail(w, v, err)
		return
	}
	for _, m := range ms {
		row := spotMarketRow{Pool: m.Pool, Visible: m.Visible}
		for _, t := range m.Prices {
			row.Tiers = append(row.Tiers, spotTierRow{Tier: t.Tier, Notice: noticeText(t.Notice), Price: money.Format(t.Price.Micros)})
			if !slices.Contains(d.Tiers, t.Tier) {
				d.Tiers = append(d.Tiers, t.Tier)
			}
		}
		if m.Visible {
			row.Utilization = strconv.FormatFloat(float64(m.UtilizationPermille)/10, 'f', 1, 64) + "%"
			row.Idle, row.SpotGPUs = strconv.FormatInt(m.SpotIdle, 10), strconv.FormatInt(m.Spot, 10)
		}
		d.Markets = append(d.Markets, row)
	}
	page, err := s.eng.LeasePage(ctx, p, engine.LeaseQuery{TenantID: f.Tenant, Kind: lease.Spot, State: lease.Active, Limit: maxSpotRows})
	if err != nil && !errors.Is(err, tenant.ErrNotFound) {
		s.fail(w, v, err)
		return
	}
	d.MoreLeases = page.Next != ""
	for _, row := range page.Rows {
		l := row.Lease
		d.Leases = append(d.Leases, spotLeaseRow{ID: l.ID, TenantID: l.TenantID, Pool: l.Pool, Start: utcMinute(l.Start), End: utcMinute(l.End),
			MaxPrice: money.Format(l.MaxPrice.Micros), Notice: l.Notice, Noticed: utcMinute(l.Noticed), GPUs: int64(l.MaxGPUs())})
	}
	v.Data = d
	s.render(w, status, "spot", v)
}

// requestSpot asks for a spot lease (once per form token).
func (s *Server) requestSpot(w http.ResponseWriter, r *http.Request, p tenant.Principal, v view, locks *onceLocks) {
	f := leaseFormOf(p, r.PostForm)
	f.Kind, f.Start, f.Schedule = string(lease.Spot), "", ""
	req, err := f.request()
	if err == nil {
		var id string
		if id, _, err = s.requestOnce(r.Context(), locks, p, r.PostFormValue("once"), "/spot", f, req); err == nil {
			http.Redirect(w, r, "/leases/"+url.PathEscape(id), http.StatusSeeOther)
			return
		}
	}
	status, msg := s.formAnswer(r.Context(), "spot", err)
	v.Error = msg
	s.showSpot(w, r, p, v, status, f)
}

// noticeText formats a notice period in its largest whole unit (2m, 24h).
func noticeText(d time.Duration) string {
	switch {
	case d > 0 && d%time.Hour == 0:
		return strconv.FormatInt(int64(d/time.Hour), 10) + "h"
	case d > 0 && d%time.Minute == 0:
		return strconv.FormatInt(int64(d/time.Minute), 10) + "m"
	}
	return d.String()
}

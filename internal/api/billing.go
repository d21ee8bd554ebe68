package api

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/neocloud/neocloud/internal/billing"
	"github.com/neocloud/neocloud/internal/engine"
	"github.com/neocloud/neocloud/internal/lease"
	"github.com/neocloud/neocloud/internal/money"
	"github.com/neocloud/neocloud/internal/tenant"
	"github.com/neocloud/neocloud/internal/unit"
	"github.com/neocloud/neocloud/internal/valid"
)

// registerBillingRoutes adds price plans, invoices, credit notes and the
// revenue report; called from registerRoutes.
func (s *Server) registerBillingRoutes() {
	register(s, huma.Operation{OperationID: "set-plan", Method: http.MethodPut, Path: "/v1/leases/{lease}/plan", Tags: []string{"billing"},
		Summary: "Attach a price plan to a lease (operator admins)",
		Description: "Contract: a monthly fee (prorated by the hour; discounted months as a percent or an amount), or a committed rate per GPU-hour or per MW-month; " +
			"optional energy pass-through and SLA credit tiers. Reservation: a rate per GPU-hour, upfront or in arrears. Spot: the market price. Money as decimal strings."},
		tenant.PermBillingWrite, s.setPlan)
	register(s, huma.Operation{OperationID: "get-plan", Method: http.MethodGet, Path: "/v1/leases/{lease}/plan", Tags: []string{"billing"},
		Summary: "A lease's price plan (default: the list price of a reservation, the market price of spot)"},
		tenant.PermBillingRead, s.getPlan)
	register(s, huma.Operation{OperationID: "run-invoices", Method: http.MethodPost, Path: "/v1/invoices/run", Tags: []string{"billing"},
		Summary: "Rate a month and write one draft invoice per tenant (idempotent: a rerun replaces drafts, leaves finalized invoices alone)"},
		tenant.PermBillingWrite, s.runInvoices)
	register(s, huma.Operation{OperationID: "list-invoices", Method: http.MethodGet, Path: "/v1/invoices", Tags: []string{"billing"},
		Summary: "Invoices (a tenant sees its own), without lines"},
		tenant.PermBillingRead, s.listInvoices)
	register(s, huma.Operation{OperationID: "get-invoice", Method: http.MethodGet, Path: "/v1/invoices/{invoice}", Tags: []string{"billing"},
		Summary: "One invoice with its lines: JSON, or format=csv, or format=html (printable)"},
		tenant.PermBillingRead, s.getInvoice)
	for _, a := range []struct{ verb, summary string }{
		{"finalize", "Finalize a draft: lines rounded to the cent (half-even), totalled and hashed; it never changes again"},
		{"pay", "Mark a finalized invoice paid"},
		{"void", "Void a draft or an unpaid finalized invoice; the next run writes a new draft"},
	} {
		verb := a.verb
		register(s, huma.Operation{OperationID: verb + "-invoice", Method: http.MethodPost, Path: "/v1/invoices/{invoice}/" + verb, Tags: []string{"billing"},
			Summary: a.summary}, tenant.PermBillingWrite, func(ctx context.Context, p tenant.Principal, in *invoiceIn) (*body[Invoice], error) {
			return s.moveInvoice(ctx, p, verb, in.ID)
		})
	}
	register(s, huma.Operation{OperationID: "issue-credit-note", Method: http.MethodPost, Path: "/v1/invoices/{invoice}/credit-notes", Tags: []string{"billing"},
		Summary: "Credit a finalized invoice (corrections never change it); the credits never exceed its total"},
		tenant.PermBillingWrite, s.issueCreditNote)
	register(s, huma.Operation{OperationID: "list-credit-notes", Method: http.MethodGet, Path: "/v1/invoices/{invoice}/credit-notes", Tags: []string{"billing"},
		Summary: "The credit notes against an invoice"},
		tenant.PermBillingRead, s.listCreditNotes)
	register(s, huma.Operation{OperationID: "get-revenue", Method: http.MethodGet, Path: "/v1/revenue", Tags: []string{"billing"},
		Summary: "Revenue by month and kind (contract, reservation, spot, energy, credits): invoiced, in drafts, and forecast from signed contracts (operators)"},
		tenant.PermBillingRead, s.getRevenue)
}

// Plan is a price plan. Money is a decimal string in the plan's currency;
// shares are decimal percents.
type Plan struct {
	Kind        string           `json:"kind" enum:"contract,reservation,spot"`
	Currency    string           `json:"currency,omitempty" default:"USD" pattern:"^[A-Z]{3}$"`
	Fee         *PlanFee         `json:"fee,omitempty"`
	Discounts   []PlanDiscount   `json:"discounts,omitempty" maxItems:"1000"`
	Energy      *PlanEnergy      `json:"energy,omitempty"`
	SLA         *PlanSLA         `json:"sla,omitempty"`
	Reservation *PlanReservation `json:"reservation,omitempty"`
}

// PlanFee is a contract's fee.
type PlanFee struct {
	Basis  string `json:"basis" enum:"month,gpu-hour,mw-month"`
	Rate   string `json:"rate" doc:"Per month, per GPU-hour or per MW-month."`
	PowerW int64  `json:"power_w,omitempty" doc:"mw-month: the committed power, in watts."`
}

// PlanDiscount takes a percent or an amount off one month's fee.
type PlanDiscount struct {
	Month   string `json:"month" pattern:"^[0-9]{4}-[0-9]{2}$"`
	Percent string `json:"percent,omitempty" doc:"e.g. \"50\"; or amount."`
	Amount  string `json:"amount,omitempty"`
}

// PlanEnergy passes metered energy through.
type PlanEnergy struct {
	PUE          string `json:"pue" doc:"e.g. \"1.25\"."`
	TariffPerKWh string `json:"tariff_per_kwh"`
}

// PlanSLA credits a month's fee when availability falls short.
type PlanSLA struct {
	TargetPct string          `json:"target_pct" doc:"e.g. \"99.5\"."`
	Tiers     []PlanSLACredit `json:"tiers" maxItems:"20"`
	CapPct    string          `json:"cap_pct,omitempty" doc:"Credits at most this share of the month's fee."`
}

// PlanSLACredit is one credit tier: availability below BelowPct credits
// CreditPct of the month's fee.
type PlanSLACredit struct {
	BelowPct  string `json:"below_pct"`
	CreditPct string `json:"credit_pct"`
}

// PlanReservation prices a reservation.
type PlanReservation struct {
	Rate    string `json:"rate" doc:"Per GPU-hour."`
	Billing string `json:"billing" enum:"upfront,arrears"`
}

// parseDecimalMicros parses a decimal into millionths, naming field on
// error.
func parseDecimalMicros(e *valid.Error, field, s string) int64 {
	v, err := money.ParseMicros(s)
	if err != nil {
		e.Add(field, s, "must be a decimal number")
	}
	return v
}

func (p Plan) domain() (billing.Plan, error) {
	var e valid.Error
	cur := p.Currency
	if cur == "" {
		cur = "USD"
	}
	amount := func(field, s string) money.Money {
		m, err := money.Parse(s, cur)
		if err != nil {
			e.Add(field, s, "must be a decimal amount of %s", cur)
		}
		return m
	}
	out := billing.Plan{Kind: lease.Kind(p.Kind), Currency: cur}
	if f := p.Fee; f != nil {
		out.Fee = &billing.Fee{Basis: billing.FeeBasis(f.Basis), Rate: amount("fee.rate", f.Rate), Power: unit.Power(f.PowerW)}
	}
	for i, d := range p.Discounts {
		field := fmt.Sprintf("discounts[%d]", i)
		m, err := time.Parse("2006-01", d.Month)
		if err != nil {
			e.Add(field+".month", d.Month, "must be YYYY-MM")
		}
		x := billing.Discount{Month: m}
		if d.Percent != "" {
			x.BasisPoints = parseDecimalMicros(&e, field+".percent", d.Percent) / 10_000
		}
		if d.Amount != "" {
			x.Amount = amount(field+".amount", d.Amount)
		}
		out.Discounts = append(out.Discounts, x)
	}
	if en := p.Energy; en != nil {
		out.Energy = &billing.Energy{PUEMilli: parseDecimalMicros(&e, "energy.pue", en.PUE) / 1000, Tariff: amount("energy.tariff_per_kwh", en.TariffPerKWh)}
	}
	if sla := p.SLA; sla != nil {
		t := &billing.SLATerms{TargetPPM: parseDecimalMicros(&e, "sla.target_pct", sla.TargetPct) / 100}
		for i, tier := range sla.Tiers {
			t.Tiers = append(t.Tiers, billing.CreditTier{BelowPPM: parseDecimalMicros(&e, fmt.Sprintf("sla.tiers[%d].below_pct", i), tier.BelowPct) / 100,
				CreditBP: parseDecimalMicros(&e, fmt.Sprintf("sla.tiers[%d].credit_pct", i), tier.CreditPct) / 10_000})
		}
		if sla.CapPct != "" {
			t.CapBP = parseDecimalMicros(&e, "sla.cap_pct", sla.CapPct) / 10_000
		}
		out.SLA = t
	}
	if r := p.Reservation; r != nil {
		out.Reservation = &billing.ReservationTerms{Rate: amount("reservation.rate", r.Rate), Billing: billing.ReservationBilling(r.Billing)}
	}
	if err := e.Err(); err != nil {
		return billing.Plan{}, err
	}
	return out, out.Validate()
}

// pct formats n parts of unit as a decimal percent.
func pct(n, whole int64) string {
	return strconv.FormatFloat(float64(n)*100/float64(whole), 'f', -1, 64)
}

func planJSON(p billing.Plan) Plan {
	out := Plan{Kind: string(p.Kind), Currency: p.Currency}
	if f := p.Fee; f != nil {
		out.Fee = &PlanFee{Basis: string(f.Basis), Rate: money.Format(f.Rate.Micros), PowerW: int64(f.Power)}
	}
	for _, d := range p.Discounts {
		x := PlanDiscount{Month: d.Month.Format("2006-01")}
		if d.BasisPoints != 0 {
			x.Percent = pct(d.BasisPoints, billing.BP)
		} else {
			x.Amount = money.Format(d.Amount.Micros)
		}
		out.Discounts = append(out.Discounts, x)
	}
	if en := p.Energy; en != nil {
		out.Energy = &PlanEnergy{PUE: strconv.FormatFloat(float64(en.PUEMilli)/1000, 'f', -1, 64), TariffPerKWh: money.Format(en.Tariff.Micros)}
	}
	if sla := p.SLA; sla != nil {
		t := &PlanSLA{TargetPct: pct(sla.TargetPPM, billing.PPM)}
		for _, tier := range sla.Tiers {
			t.Tiers = append(t.Tiers, PlanSLACredit{BelowPct: pct(tier.BelowPPM, billing.PPM), CreditPct: pct(tier.CreditBP, billing.BP)})
		}
		if sla.CapBP != 0 {
			t.CapPct = pct(sla.CapBP, billing.BP)
		}
		out.SLA = t
	}
	if r := p.Reservation; r != nil {
		out.Reservation = &PlanReservation{Rate: money.Format(r.Rate.Micros), Billing: string(r.Billing)}
	}
	return out
}

// LeasePlan is a lease's plan, and whether it is the default.
type LeasePlan struct {
	LeaseID string `json:"lease_id"`
	Default bool   `json:"default" doc:"No plan was set: the lease is billed at its kind's default (list price or market price)."`
	Plan    Plan   `json:"plan"`
}

type setPlanIn struct {
	Lease string `path:"lease" pattern:"^ls_[0-9a-f]{16}$"`
	Body  Plan
}

func (s *Server) setPlan(ctx context.Context, p tenant.Principal, in *setPlanIn) (*body[LeasePlan], error) {
	plan, err := in.Body.domain()
	if err != nil {
		return nil, err
	}
	if err := s.eng.SetPlan(ctx, p, in.Lease, plan); err != nil {
		return nil, err
	}
	return ok(LeasePlan{LeaseID: in.Lease, Plan: planJSON(plan)})
}

type leaseIDIn struct {
	Lease string `path:"lease" pattern:"^ls_[0-9a-f]{16}$"`
}

func (s *Server) getPlan(ctx context.Context, p tenant.Principal, in *leaseIDIn) (*body[LeasePlan], error) {
	plan, def, err := s.eng.LeasePlan(ctx, p, in.Lease)
	if err != nil {
		return nil, err
	}
	return ok(LeasePlan{LeaseID: in.Lease, Default: def, Plan: planJSON(plan)})
}

// InvoiceRunResult is what an invoice run did.
type InvoiceRunResult struct {
	Month    string   `json:"month"`
	Leases   int      `json:"leases"`
	Drafts   int      `json:"drafts"`
	Lines    int      `json:"lines"`
	Total    string   `json:"total" doc:"Of the drafts, before rounding to the cent."`
	Invoices []string `json:"invoices"`
	Skipped  []string `json:"skipped" doc:"Tenants whose invoice of the month is finalized: left alone."`
	NoPlan   []string `json:"no_plan" doc:"Contracts without a price plan: not billed."`
}

type runIn struct {
	Body struct {
		Month string `json:"month" required:"true" pattern:"^[0-9]{4}-[0-9]{2}$" doc:"YYYY-MM (UTC)."`
	}
}

func parseMonth(field, s string) (time.Time, error) {
	m, err := time.Parse("2006-01", s)
	if err != nil {
		var v valid.Error
		v.Add(field, s, "must be YYYY-MM")
		return time.Time{}, v.Err()
	}
	return m, nil
}

func (s *Server) runInvoices(ctx context.Context, p tenant.Principal, in *runIn) (*body[InvoiceRunResult], error) {
	m, err := parseMonth("month", in.Body.Month)
	if err != nil {
		return nil, err
	}
	r, err := s.eng.RunInvoices(ctx, p, m)
	if err != nil {
		return nil, err
	}
	return ok(InvoiceRunResult{Month: r.Month.Format("2006-01"), Leases: r.Leases, Drafts: r.Drafts, Lines: r.Lines,
		Total: money.Format(r.Total.Micros), Invoices: orEmpty(r.Invoices), Skipped: orEmpty(r.Skipped), NoPlan: orEmpty(r.NoPlan)})
}

func orEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// InvoiceLine is one line of an invoice.
type InvoiceLine struct {
	Kind        string    `json:"kind" enum:"fee,proration,discount,sla-credit,usage,energy,adjustment"`
	LeaseID     string    `json:"lease_id,omitempty"`
	Description string    `json:"description"`
	From        time.Time `json:"from"`
	To          time.Time `json:"to"`
	Quantity    string    `json:"quantity"`
	Unit        string    `json:"unit"`
	UnitPrice   string    `json:"unit_price"`
	Per         int64     `json:"per" doc:"The unit price is for this many units (spot: per 60 GPU-minutes)."`
	Amount      string    `json:"amount"`
}

// Invoice is one tenant's invoice for one month.
type Invoice struct {
	ID        string        `json:"id"`
	TenantID  string        `json:"tenant_id"`
	Month     string        `json:"month"`
	Currency  string        `json:"currency"`
	State     string        `json:"state" enum:"draft,finalized,paid,void"`
	Total     string        `json:"total"`
	Hash      string        `json:"hash,omitempty" doc:"SHA-256 of the finalized content."`
	Created   time.Time     `json:"created"`
	Finalized *time.Time    `json:"finalized,omitempty"`
	Paid      *time.Time    `json:"paid,omitempty"`
	Voided    *time.Time    `json:"voided,omitempty"`
	Lines     []InvoiceLine `json:"lines,omitempty"`
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func invoiceJSON(inv billing.Invoice) Invoice {
	out := Invoice{ID: inv.ID, TenantID: inv.TenantID, Month: inv.Month.Format("2006-01"), Currency: inv.Currency, State: string(inv.State),
		Total: money.Format(inv.Total.Micros), Hash: inv.Hash, Created: inv.Created, Finalized: timePtr(inv.Finalized), Paid: timePtr(inv.Paid), Voided: timePtr(inv.Voided)}
	for _, l := range inv.Lines {
		out.Lines = append(out.Lines, InvoiceLine{Kind: string(l.Kind), LeaseID: l.LeaseID, Description: l.Description, From: l.From, To: l.To,
			Quantity: l.Quantity, Unit: string(l.Unit), UnitPrice: money.Format(l.UnitPrice.Micros), Per: l.Per, Amount: money.Format(l.Amount.Micros)})
	}
	return out
}

// Invoices lists invoices.
type Invoices struct {
	Items []Invoice `json:"items"`
}

type invoicesIn struct {
	Tenant string `query:"tenant" pattern:"^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)?$"`
	Month  string `query:"month" pattern:"^([0-9]{4}-[0-9]{2})?$"`
	State  string `query:"state" enum:"draft,finalized,paid,void,"`
}

func (s *Server) listInvoices(ctx context.Context, p tenant.Principal, in *invoicesIn) (*body[Invoices], error) {
	f := engine.InvoiceFilter{TenantID: in.Tenant, State: billing.State(in.State)}
	if in.Month != "" {
		m, err := parseMonth("month", in.Month)
		if err != nil {
			return nil, err
		}
		f.Month = m
	}
	invs, err := s.eng.Invoices(ctx, p, f)
	if err != nil {
		return nil, err
	}
	out := Invoices{Items: make([]Invoice, len(invs))}
	for i, inv := range invs {
		out.Items[i] = invoiceJSON(inv)
	}
	return ok(out)
}

type invoiceIn struct {
	ID string `path:"invoice" pattern:"^[A-Za-z0-9._-]{1,128}$"`
}

type invoiceGetIn struct {
	ID     string `path:"invoice" pattern:"^[A-Za-z0-9._-]{1,128}$"`
	Format string `query:"format" enum:"json,csv,html" default:"json"`
}

type rawOut struct {
	ContentType string `header:"Content-Type"`
	Body        []byte
}

var invoiceHTML = template.Must(template.New("invoice").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Invoice {{.ID}}</title>
<style>body{font:14px/1.4 system-ui,sans-serif;margin:2em auto;max-width:60em;color:#111}
table{border-collapse:collapse;width:100%}th,td{padding:.35em .5em;border-bottom:1px solid #ddd;text-align:left;vertical-align:top}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}tfoot td{font-weight:600;border-top:2px solid #111}
.muted{color:#666;font-size:12px}@media print{body{margin:0}}</style></head><body>
<h1>Invoice {{.ID}}</h1>
<p>Tenant <b>{{.TenantID}}</b> · month <b>{{.Month}}</b> · {{.Currency}} · state <b>{{.State}}</b></p>
<table><thead><tr><th>Kind</th><th>Lease</th><th>Description</th><th class="n">Quantity</th><th>Unit</th><th class="n">Unit price</th><th class="n">Amount</th></tr></thead>
<tbody>{{range .Lines}}<tr><td>{{.Kind}}</td><td>{{.LeaseID}}</td><td>{{.Description}}<div class="muted">{{.From.Format "2006-01-02 15:04"}} – {{.To.Format "2006-01-02 15:04"}} UTC</div></td>
<td class="n">{{.Quantity}}</td><td>{{.Unit}}</td><td class="n">{{.UnitPrice}}{{if gt .Per 1}} / {{.Per}}{{end}}</td><td class="n">{{.Amount}}</td></tr>{{end}}</tbody>
<tfoot><tr><td colspan="6">Total</td><td class="n">{{.Total}} {{.Currency}}</td></tr></tfoot></table>
{{if .Hash}}<p class="muted">Finalized {{.Finalized}} · SHA-256 {{.Hash}}</p>{{else}}<p class="muted">Draft: amounts are rounded to the cent when finalized.</p>{{end}}
</body></html>
`))

func (s *Server) getInvoice(ctx context.Context, p tenant.Principal, in *invoiceGetIn) (*rawOut, error) {
	inv, err := s.eng.Invoice(ctx, p, in.ID)
	if err != nil {
		return nil, err
	}
	j := invoiceJSON(inv)
	var buf bytes.Buffer
	switch in.Format {
	case "csv":
		w := csv.NewWriter(&buf)
		_ = w.Write([]string{"invoice", "tenant", "month", "state", "kind", "lease_id", "description", "from", "to", "quantity", "unit", "unit_price", "per", "amount", "currency"})
		for _, l := range j.Lines {
			_ = w.Write([]string{j.ID, j.TenantID, j.Month, j.State, l.Kind, l.LeaseID, l.Description, l.From.Format(time.RFC3339), l.To.Format(time.RFC3339),
				l.Quantity, l.Unit, l.UnitPrice, strconv.FormatInt(l.Per, 10), l.Amount, j.Currency})
		}
		_ = w.Write([]string{j.ID, j.TenantID, j.Month, j.State, "total", "", "", "", "", "", "", "", "", j.Total, j.Currency})
		w.Flush()
		return &rawOut{ContentType: "text/csv; charset=utf-8", Body: buf.Bytes()}, w.Error()
	case "html":
		if err := invoiceHTML.Execute(&buf, j); err != nil {
			return nil, fmt.Errorf("invoice html: %w", err)
		}
		return &rawOut{ContentType: "text/html; charset=utf-8", Body: buf.Bytes()}, nil
	}
	data, err := json.Marshal(j)
	if err != nil {
		return nil, err
	}
	return &rawOut{ContentType: "application/json", Body: data}, nil
}

func (s *Server) moveInvoice(ctx context.Context, p tenant.Principal, verb, id string) (*body[Invoice], error) {
	var inv billing.Invoice
	var err error
	switch verb {
	case "finalize":
		inv, err = s.eng.FinalizeInvoice(ctx, p, id)
	case "pay":
		inv, err = s.eng.PayInvoice(ctx, p, id)
	default:
		inv, err = s.eng.VoidInvoice(ctx, p, id)
	}
	if err != nil {
		return nil, err
	}
	return ok(invoiceJSON(inv))
}

// CreditNoteLine is one credit.
type CreditNoteLine struct {
	LeaseID     string `json:"lease_id,omitempty" doc:"One of the invoice's leases; empty for the whole invoice."`
	Description string `json:"description" maxLength:"500"`
	Amount      string `json:"amount" doc:"The credit, a positive decimal amount."`
}

// CreditNote corrects a finalized invoice.
type CreditNote struct {
	ID        string           `json:"id"`
	InvoiceID string           `json:"invoice_id"`
	TenantID  string           `json:"tenant_id"`
	Reason    string           `json:"reason"`
	Total     string           `json:"total"`
	Issued    time.Time        `json:"issued"`
	Hash      string           `json:"hash"`
	Lines     []CreditNoteLine `json:"lines"`
}

type creditNoteIn struct {
	ID   string `path:"invoice" pattern:"^[A-Za-z0-9._-]{1,128}$"`
	Body struct {
		Reason string           `json:"reason" required:"true" maxLength:"500"`
		Lines  []CreditNoteLine `json:"lines" required:"true" minItems:"1" maxItems:"1000"`
	}
}

func creditNoteJSON(n billing.CreditNote) CreditNote {
	out := CreditNote{ID: n.ID, InvoiceID: n.InvoiceID, TenantID: n.TenantID, Reason: n.Reason, Total: money.Format(n.Total.Micros), Issued: n.Issued, Hash: n.Hash}
	for _, l := range n.Lines {
		out.Lines = append(out.Lines, CreditNoteLine{LeaseID: l.LeaseID, Description: l.Description, Amount: money.Format(-l.Amount.Micros)})
	}
	return out
}

func (s *Server) issueCreditNote(ctx context.Context, p tenant.Principal, in *creditNoteIn) (*body[CreditNote], error) {
	inv, err := s.eng.Invoice(ctx, p, in.ID)
	if err != nil {
		return nil, err
	}
	var e valid.Error
	var lines []billing.Line
	for i, l := range in.Body.Lines {
		m, err := money.Parse(l.Amount, inv.Currency)
		if err != nil || m.Micros <= 0 {
			e.Add(fmt.Sprintf("lines[%d].amount", i), l.Amount, "must be a positive decimal amount of %s", inv.Currency)
			continue
		}
		neg, _ := m.Neg()
		lines = append(lines, billing.Adjustment(l.LeaseID, l.Description, inv.Month, inv.Month.AddDate(0, 1, 0), neg))
	}
	if err := e.Err(); err != nil {
		return nil, err
	}
	n, err := s.eng.IssueCreditNote(ctx, p, in.ID, in.Body.Reason, lines)
	if err != nil {
		return nil, err
	}
	return ok(creditNoteJSON(n))
}

// CreditNotes lists credit notes.
type CreditNotes struct {
	Items []CreditNote `json:"items"`
}

func (s *Server) listCreditNotes(ctx context.Context, p tenant.Principal, in *invoiceIn) (*body[CreditNotes], error) {
	ns, err := s.eng.CreditNotes(ctx, p, in.ID)
	if err != nil {
		return nil, err
	}
	out := CreditNotes{Items: make([]CreditNote, len(ns))}
	for i, n := range ns {
		out.Items[i] = creditNoteJSON(n)
	}
	return ok(out)
}

// RevenueRow is one month's revenue of one kind, USD.
type RevenueRow struct {
	Month    string `json:"month"`
	Kind     string `json:"kind" enum:"contract,reservation,spot,energy,credits"`
	Invoiced string `json:"invoiced" doc:"Finalized or paid invoices."`
	Draft    string `json:"draft"`
	Forecast string `json:"forecast" doc:"Signed contracts' scheduled charges for months not invoiced yet."`
}

// Revenue is the revenue report.
type Revenue struct {
	Items []RevenueRow `json:"items"`
}

type revenueIn struct {
	From string `query:"from" required:"true" pattern:"^[0-9]{4}-[0-9]{2}$" doc:"First month, YYYY-MM."`
	To   string `query:"to" required:"true" pattern:"^[0-9]{4}-[0-9]{2}$" doc:"Last month, YYYY-MM (included)."`
}

func (s *Server) getRevenue(ctx context.Context, p tenant.Principal, in *revenueIn) (*body[Revenue], error) {
	from, err := parseMonth("from", in.From)
	if err != nil {
		return nil, err
	}
	to, err := parseMonth("to", in.To)
	if err != nil {
		return nil, err
	}
	if to.Before(from) {
		var v valid.Error
		v.Add("to", in.To, "must not be before from")
		return nil, v.Err()
	}
	rows, err := s.eng.Revenue(ctx, p, from, to.AddDate(0, 1, 0))
	if err != nil {
		return nil, err
	}
	out := Revenue{Items: make([]RevenueRow, len(rows))}
	for i, r := range rows {
		out.Items[i] = RevenueRow{Month: r.Month.Format("2006-01"), Kind: r.Kind, Invoiced: money.Format(r.Invoiced.Micros),
			Draft: money.Format(r.Draft.Micros), Forecast: money.Format(r.Forecast.Micros)}
	}
	return ok(out)
}

// MonthCharge is one month of a quoted lease's price.
type MonthCharge struct {
	Month     string `json:"month"`
	Fee       string `json:"fee"`
	Proration string `json:"proration"`
	Discount  string `json:"discount"`
	Amount    string `json:"amount"`
}

// quotePrice fills q's price schedule from plan (nil: the default).
func quotePrice(out *Quote, q engine.Quote, plan *billing.Plan) error {
	charges, total, def, ok, err := engine.QuotePrice(q, plan)
	if err != nil || !ok {
		return err
	}
	out.Charges = make([]MonthCharge, len(charges))
	for i, c := range charges {
		out.Charges[i] = MonthCharge{Month: c.Month.Format("2006-01"), Fee: money.Format(c.Fee.Micros), Proration: money.Format(c.Proration.Micros),
			Discount: money.Format(c.Discount.Micros), Amount: money.Format(c.Amount.Micros)}
	}
	out.Total = money.Format(total.Micros)
	out.Currency = total.Currency
	out.ListPrice = def
	return nil
}

// planFieldNames maps the domain's field names (shares in basis points
// and parts per million) to the transport's (percents).
var planFieldNames = strings.NewReplacer("basis_points", "percent", "credit_bp", "credit_pct", "below_ppm", "below_pct",
	"target_ppm", "target_pct", "cap_bp", "cap_pct", "pue_milli", "pue", "energy.tariff", "energy.tariff_per_kwh")

// prefixFields returns err with prefix before the field of each of its
// issues (a plan's fields within a lease request), or err unchanged.
func prefixFields(err error, prefix string) error {
	var v *valid.Error
	if !errors.As(err, &v) {
		return err
	}
	out := valid.Error{}
	for _, is := range v.Issues {
		is.Field = prefix + planFieldNames.Replace(is.Field)
		out.Issues = append(out.Issues, is)
	}
	return out.Err()
}

// createLeaseWithPlan admits a lease and attaches its plan: the plan is
// checked first (only operator admins may set one, and it must be valid);
// when attaching it fails after all, the lease is cancelled, so that a
// lease never exists without the plan it was asked with.
func (s *Server) createLeaseWithPlan(ctx context.Context, p tenant.Principal, in *leaseRequestIn, r lease.Request) (*body[LeaseCreated], error) {
	plan, err := in.Body.Plan.domain()
	if err != nil {
		return nil, prefixFields(err, "plan.")
	}
	if !p.Can(tenant.PermBillingWrite) {
		return nil, fmt.Errorf("%w: only operator admins attach price plans", tenant.ErrForbidden)
	}
	// Checked against the lease as asked before it is admitted: a plan
	// that does not fit must not leave an admitted (then cancelled, and
	// billed) lease behind.
	if err := plan.ValidateFor(lease.Lease{Kind: r.Kind, Pool: r.Pool, Start: r.Start, End: r.End, Schedule: r.Schedule}); err != nil {
		return nil, prefixFields(err, "plan.")
	}
	res, err := s.eng.RequestLease(ctx, p, in.Body.Tenant, r)
	if err != nil {
		return nil, err
	}
	if err := s.eng.SetPlan(ctx, p, res.Lease.ID, plan); err != nil {
		if _, cerr := s.eng.CancelLease(ctx, p, res.Lease.ID, "its price plan was refused"); cerr != nil {
			return nil, fmt.Errorf("lease %s admitted, its plan refused (%w), and cancelling it failed: %v", res.Lease.ID, err, cerr)
		}
		return nil, prefixFields(err, "plan.")
	}
	out, err := s.leaseCreated(ctx, res)
	if err != nil {
		return nil, err
	}
	return ok(out) // the idempotency middleware remembers this answer itself
}

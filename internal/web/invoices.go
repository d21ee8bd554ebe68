package web

import (
	"context"
	"net/http"
	"time"

	"github.com/neocloud/neocloud/internal/billing"
	"github.com/neocloud/neocloud/internal/engine"
	"github.com/neocloud/neocloud/internal/money"
	"github.com/neocloud/neocloud/internal/tenant"
	"github.com/neocloud/neocloud/internal/valid"
)

// billingEngine is what the invoice and revenue pages read.
type billingEngine interface {
	Invoices(ctx context.Context, p tenant.Principal, f engine.InvoiceFilter) ([]billing.Invoice, error)
	Invoice(ctx context.Context, p tenant.Principal, id string) (billing.Invoice, error)
}

func (s *Server) billingRoutes() {
	s.mux.HandleFunc("GET /invoices", s.signedIn(s.invoices))
	s.mux.HandleFunc("GET /invoices/{id}", s.signedIn(s.invoice))
}

type invoiceRow struct {
	ID, TenantID, Month, State, Total, Currency, Hash string
	Lines                                             []lineRow
}

type lineRow struct{ Kind, LeaseID, Description, Quantity, Unit, Amount string }

func invoiceView(inv billing.Invoice) invoiceRow {
	out := invoiceRow{ID: inv.ID, TenantID: inv.TenantID, Month: inv.Month.Format("2006-01"), State: string(inv.State),
		Total: money.Format(inv.Total.Micros), Currency: inv.Currency, Hash: inv.Hash}
	for _, l := range inv.Lines {
		out.Lines = append(out.Lines, lineRow{string(l.Kind), l.LeaseID, l.Description, l.Quantity, string(l.Unit), money.Format(l.Amount.Micros)})
	}
	return out
}

// maxInvoiceRows is how many invoices the list shows: the newest, with a
// notice to pick a month for older ones when there are more.
const maxInvoiceRows = 500

// invoicesData is the invoice list: at most maxInvoiceRows invoices, of
// Month when one is asked for.
type invoicesData struct {
	Rows  []invoiceRow
	Month string
	More  bool // more invoices than shown
}

func (s *Server) invoices(w http.ResponseWriter, r *http.Request, p tenant.Principal, v view) {
	v.Title, v.Page = "Invoices", "invoices"
	var data invoicesData
	f := engine.InvoiceFilter{Limit: s.invoiceRows + 1}
	if m := r.URL.Query().Get("month"); m != "" {
		month, err := time.ParseInLocation("2006-01", m, time.UTC)
		if err != nil {
			var bad valid.Error
			bad.Add("month", m, "must be a month as YYYY-MM")
			v.Error, v.Data = bad.Error(), data
			s.render(w, http.StatusBadRequest, "invoices", v)
			return
		}
		f.Month, data.Month = month, m
	}
	invs, err := s.eng.Invoices(r.Context(), p, f) // newest month first
	if err != nil {
		s.fail(w, v, err)
		return
	}
	if len(invs) > s.invoiceRows {
		invs, data.More = invs[:s.invoiceRows], true
	}
	data.Rows = make([]invoiceRow, len(invs))
	for i, inv := range invs {
		data.Rows[i] = invoiceView(inv)
	}
	v.Data = data
	s.render(w, http.StatusOK, "invoices", v)
}

func (s *Server) invoice(w http.ResponseWriter, r *http.Request, p tenant.Principal, v view) {
	v.Title, v.Page = "Invoice", "invoices"
	inv, err := s.eng.Invoice(r.Context(), p, r.PathValue("id"))
	if err != nil {
		s.fail(w, v, err)
		return
	}
	v.Data = invoiceView(inv)
	s.render(w, http.StatusOK, "invoice", v)
}

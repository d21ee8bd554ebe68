package web

import (
	"context"
	"net/http"
	"slices"

	"github.com/neocloud/neocloud/internal/billing"
	"github.com/neocloud/neocloud/internal/engine"
	"github.com/neocloud/neocloud/internal/money"
	"github.com/neocloud/neocloud/internal/tenant"
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

func (s *Server) invoices(w http.ResponseWriter, r *http.Request, p tenant.Principal, v view) {
	v.Title, v.Page = "Invoices", "invoices"
	invs, err := s.eng.Invoices(r.Context(), p, engine.InvoiceFilter{})
	if err != nil {
		s.fail(w, v, err)
		return
	}
	slices.Reverse(invs) // newest month first
	rows := make([]invoiceRow, len(invs))
	for i, inv := range invs {
		rows[i] = invoiceView(inv)
	}
	v.Data = rows
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

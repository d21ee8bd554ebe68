package api_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/neocloud/neocloud/internal/api"
	"github.com/neocloud/neocloud/internal/engine"
	"github.com/neocloud/neocloud/internal/store/dbtest"
)

// anchorPlan is the story's contract: $1.25B a month, the first two
// months at 50% off, SLA credits 10/30/100% below 99.5/99.0/95.0%.
func anchorPlan() map[string]any {
	return map[string]any{"kind": "contract", "currency": "USD",
		"fee":       map[string]any{"basis": "month", "rate": "1250000000.00"},
		"discounts": []map[string]string{{"month": "2026-09", "percent": "50"}, {"month": "2026-10", "percent": "50"}},
		"sla": map[string]any{"target_pct": "99.5", "cap_pct": "100", "tiers": []map[string]string{
			{"below_pct": "99.5", "credit_pct": "10"}, {"below_pct": "99.0", "credit_pct": "30"}, {"below_pct": "95.0", "credit_pct": "100"}}}}
}

// TestBillingOverHTTP: a contract quote is priced month by month on its
// plan ($40B for the anchor); a lease is created with its plan; a plan
// that does not fit is a 422 naming the field; the month's invoice is
// run, exported as CSV and HTML, finalized, and then refuses changes.
func TestBillingOverHTTP(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, st engine.Store) {
		f := newFixture(t, st)
		admin := f.keys["operator-admin"]
		req := map[string]any{"tenant": "tenant-a", "kind": "contract", "pool": "lab-1/H100-SXM", "gpus": 8,
			"start": "2026-09-01T00:00:00Z", "end": "2029-06-01T00:00:00Z", "plan": anchorPlan()}
		var q api.Quote
		code, body := f.do(admin, "POST", "/v1/quotes", req)
		if code != http.StatusOK || json.Unmarshal(body, &q) != nil {
			t.Fatalf("quote: %d %s", code, body)
		}
		if q.Total != "40000000000.00" || len(q.Charges) != 33 || q.Charges[0].Amount != "625000000.00" || q.Charges[2].Amount != "1250000000.00" {
			t.Fatalf("anchor quote: total %s, %d months, first %+v", q.Total, len(q.Charges), q.Charges[0])
		}
		// A reservation without a plan is quoted at the list price.
		code, body = f.do(f.keys["tenant-admin@tenant-a"], "POST", "/v1/quotes", map[string]any{"kind": "reservation", "pool": "lab-1/H100-SXM",
			"gpus": 8, "start": "2026-09-02T00:00:00Z", "end": "2026-09-03T00:00:00Z"})
		if code != http.StatusOK || json.Unmarshal(body, &q) != nil || !q.ListPrice || q.Total != "940.80" || q.Nodes != 1 || q.LeafGroups != 0 {
			t.Fatalf("reservation quote: %d %s", code, body)
		}
		// With placement=true the quote also chooses the nodes.
		q = api.Quote{}
		code, body = f.do(f.keys["tenant-admin@tenant-a"], "POST", "/v1/quotes?placement=true", map[string]any{"kind": "reservation", "pool": "lab-1/H100-SXM",
			"gpus": 8, "start": "2026-09-02T00:00:00Z", "end": "2026-09-03T00:00:00Z"})
		if code != http.StatusOK || json.Unmarshal(body, &q) != nil || !q.Feasible || q.Nodes != 1 || q.LeafGroups != 1 || q.Pods != 1 || q.Total != "940.80" {
			t.Fatalf("reservation quote with placement: %d %s", code, body)
		}
		// A tenant cannot attach a plan; an operator can.
		if code, body := f.do(f.keys["tenant-admin@tenant-a"], "POST", "/v1/leases", req); code != http.StatusForbidden {
			t.Errorf("tenant creating a lease with a plan: %d %s", code, body)
		}
		var l api.LeaseCreated
		code, body = f.do(admin, "POST", "/v1/leases", req)
		if code != http.StatusCreated || json.Unmarshal(body, &l) != nil {
			t.Fatalf("create with plan: %d %s", code, body)
		}
		var lp api.LeasePlan
		code, body = f.do(f.keys["tenant-viewer@tenant-a"], "GET", "/v1/leases/"+l.ID+"/plan", nil)
		if code != http.StatusOK || json.Unmarshal(body, &lp) != nil || lp.Default || lp.Plan.Fee.Rate != "1250000000.00" {
			t.Errorf("plan: %d %s", code, body)
		}
		code, body = f.do(admin, "PUT", "/v1/leases/"+l.ID+"/plan", map[string]any{"kind": "reservation", "reservation": map[string]string{"rate": "2", "billing": "arrears"}})
		if code != http.StatusUnprocessableEntity && code != http.StatusBadRequest || !strings.Contains(string(body), "kind") {
			t.Errorf("a reservation plan on a contract: %d %s", code, body)
		}

		f.clk.Set(time.Date(2026, 10, 1, 1, 0, 0, 0, time.UTC))
		var run api.InvoiceRunResult
		code, body = f.do(admin, "POST", "/v1/invoices/run", map[string]string{"month": "2026-09"})
		if code != http.StatusOK || json.Unmarshal(body, &run) != nil || run.Drafts != 1 || run.Total != "625000000.00" {
			t.Fatalf("run: %d %s", code, body)
		}
		id := run.Invoices[0]
		code, body, hdr := f.doFull(f.keys["tenant-viewer@tenant-a"], "GET", "/v1/invoices/"+id+"?format=csv", nil, nil)
		if code != http.StatusOK || !strings.HasPrefix(hdr.Get("Content-Type"), "text/csv") || !strings.Contains(string(body), "625000000.00") {
			t.Errorf("csv: %d %s %s", code, hdr.Get("Content-Type"), body)
		}
		code, body, hdr = f.doFull(f.keys["tenant-viewer@tenant-a"], "GET", "/v1/invoices/"+id+"?format=html", nil, nil)
		if code != http.StatusOK || !strings.HasPrefix(hdr.Get("Content-Type"), "text/html") || !strings.Contains(string(body), "<table>") {
			t.Errorf("html: %d %s", code, hdr.Get("Content-Type"))
		}
		if code, _ := f.do(f.keys["tenant-viewer@tenant-b"], "GET", "/v1/invoices/"+id, nil); code != http.StatusNotFound {
			t.Errorf("tenant-b reading tenant-a's invoice: %d", code)
		}
		if code, _ := f.do(f.keys["operator-viewer"], "POST", "/v1/invoices/"+id+"/finalize", nil); code != http.StatusForbidden {
			t.Errorf("operator-viewer finalizing: %d", code)
		}
		var inv api.Invoice
		code, body = f.do(admin, "POST", "/v1/invoices/"+id+"/finalize", nil)
		if code != http.StatusOK || json.Unmarshal(body, &inv) != nil || inv.State != "finalized" || inv.Hash == "" || inv.Total != "625000000.00" {
			t.Fatalf("finalize: %d %s", code, body)
		}
		if code, body := f.do(admin, "POST", "/v1/invoices/"+id+"/finalize", nil); code != http.StatusConflict && code != http.StatusUnprocessableEntity {
			t.Errorf("finalizing twice: %d %s", code, body)
		}
		var rev api.Revenue
		code, body = f.do(admin, "GET", "/v1/revenue?from=2026-09&to=2026-12", nil)
		if code != http.StatusOK || json.Unmarshal(body, &rev) != nil || len(rev.Items) != 4 {
			t.Fatalf("revenue: %d %s", code, body)
		}
		if r := rev.Items[0]; r.Month != "2026-09" || r.Invoiced != "625000000.00" || rev.Items[1].Forecast != "625000000.00" || rev.Items[2].Forecast != "1250000000.00" {
			t.Errorf("revenue rows %+v", rev.Items)
		}
	})
}

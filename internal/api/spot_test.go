package api_test

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/neocloud/neocloud/internal/api"
	"github.com/neocloud/neocloud/internal/engine"
	"github.com/neocloud/neocloud/internal/store/dbtest"
)

// TestSpotOverHTTP: a tenant buys spot with a max price and a notice
// tier; the owner reports its use; the tenant's lease is reclaimed with
// the notice and its event stream says so, and nothing of the other
// tenant's.
func TestSpotOverHTTP(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, st engine.Store) {
		f := newFixture(t, st)
		f.clk.Set(t0.Add(5 * time.Minute))
		pool := "lab-1/H100-SXM"
		buy := func(tenantKey string, gpus int64, maxPrice, notice string) (int, api.LeaseCreated, []byte) {
			code, body := f.do(f.keys[tenantKey], "POST", "/v1/leases", map[string]any{
				"kind": "spot", "pool": pool, "gpus": gpus, "max_price": maxPrice, "notice": notice})
			var l api.LeaseCreated
			_ = json.Unmarshal(body, &l)
			return code, l, body
		}
		// Bad input names the field.
		if code, _, body := buy("tenant-admin@tenant-a", 8, "", "2m"); code != http.StatusUnprocessableEntity || decodeProblem(t, body).Errors[0].Location != "body.max_price" {
			t.Fatalf("no max price: %d %s", code, body)
		}
		if code, _, body := buy("tenant-admin@tenant-a", 8, "5", "1h"); code != http.StatusUnprocessableEntity || decodeProblem(t, body).Errors[0].Location != "body.notice" {
			t.Fatalf("unknown tier: %d %s", code, body)
		}
		// The price is quoted, and too low a max price is a 409.
		code, body := f.do(f.keys["tenant-admin@tenant-a"], "POST", "/v1/quotes", map[string]any{"kind": "spot", "pool": pool, "gpus": 8, "max_price": "50", "notice": "30m"})
		var q api.Quote
		if code != http.StatusOK || json.Unmarshal(body, &q) != nil || !q.Feasible || q.Price != "1.2075" || q.Notice != "30m" {
			t.Fatalf("quote: %d %s", code, body)
		}
		if code, _, body := buy("tenant-admin@tenant-a", 8, "0.10", "2m"); code != http.StatusConflict {
			t.Fatalf("below the price: %d %s", code, body)
		}
		code, a, body := buy("tenant-admin@tenant-a", 16, "3.00", "30m")
		if code != http.StatusCreated || a.MaxPrice != "3.00" || a.Notice != "30m" || a.Noticed != nil || len(a.Allocations) == 0 {
			t.Fatalf("spot for tenant-a: %d %s", code, body)
		}
		if code, _, body := buy("tenant-admin@tenant-b", 16, "20", "2m"); code != http.StatusCreated {
			t.Fatalf("spot for tenant-b: %d %s", code, body)
		}
		// Prices for a tenant, capacity for the operator.
		var m api.SpotMarkets
		code, body = f.do(f.keys["tenant-viewer@tenant-a"], "GET", "/v1/spot/prices?pool="+pool, nil)
		if code != http.StatusOK || json.Unmarshal(body, &m) != nil || len(m.Items) != 1 || len(m.Items[0].Prices) != 3 || m.Items[0].Healthy != nil {
			t.Fatalf("tenant prices: %d %s", code, body)
		}
		code, body = f.do(f.keys["operator-viewer"], "GET", "/v1/spot/prices?pool="+pool, nil)
		if code != http.StatusOK || json.Unmarshal(body, &m) != nil || m.Items[0].Spot == nil || *m.Items[0].Spot != 32 {
			t.Fatalf("operator prices: %d %s", code, body)
		}
		// The owner wants everything back.
		healthy := *m.Items[0].Healthy
		code, body = f.do(f.keys["operator-admin"], "POST", "/v1/internal-use", map[string]any{"pool": pool, "gpus": healthy})
		var iu api.InternalUse
		if code != http.StatusOK || json.Unmarshal(body, &iu) != nil || len(iu.Reclaimed) != 2 {
			t.Fatalf("internal use: %d %s", code, body)
		}
		code, body = f.do(f.keys["tenant-viewer@tenant-a"], "GET", "/v1/leases/"+a.ID, nil)
		var got api.Lease
		if code != http.StatusOK || json.Unmarshal(body, &got) != nil || got.Noticed == nil || !got.End.Equal(f.clk.Now().Add(30*time.Minute)) {
			t.Fatalf("reclaimed lease: %d %s", code, body)
		}
		code, body = f.do(f.keys["tenant-viewer@tenant-a"], "GET", "/v1/events?follow=false", nil)
		var evs []api.Event
		if code != http.StatusOK || json.Unmarshal(body, &evs) != nil {
			t.Fatalf("events: %d %s", code, body)
		}
		var reclaims int
		for _, e := range evs {
			if e.Tenant != "tenant-a" {
				t.Fatalf("tenant-a sees %+v", e)
			}
			if e.Type == "spot.reclaim" && e.Lease == a.ID {
				reclaims++
			}
		}
		if reclaims != 1 {
			t.Fatalf("tenant-a's events %+v: want one spot.reclaim for %s", evs, a.ID)
		}
	})
}

package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/neocloud/neocloud/internal/api"
	"github.com/neocloud/neocloud/internal/clock"
	"github.com/neocloud/neocloud/internal/engine"
	"github.com/neocloud/neocloud/internal/fleet"
	"github.com/neocloud/neocloud/internal/store/sqlite"
	"github.com/neocloud/neocloud/internal/tenant"
)

// BenchmarkLeaseCreateHTTP creates leases through the HTTP API (a real
// listener on 127.0.0.1) with 32 concurrent clients, each request with
// its own Idempotency-Key, on SQLite with the reference-300mw fleet:
// reservations of 1-8 nodes in the three pools, starting within 90 days,
// lasting 1-72 hours. Target (issue 3): >= 5,000 leases/s, p99 <= 20 ms.
//
//	go test -run '^$' -bench LeaseCreateHTTP -benchtime 20000x ./internal/api/
func BenchmarkLeaseCreateHTTP(b *testing.B) {
	st := sqlite.OpenTest(b)
	clk := clock.NewFake(t0)
	eng, err := engine.New(engine.Config{Store: st, Clock: clk})
	if err != nil {
		b.Fatal(err)
	}
	defer eng.Close()
	ctx := context.Background()
	admin := tenant.Principal{KeyID: "bench", Role: tenant.OperatorAdmin}
	spec, err := fleet.Generate(fleet.PresetReference300MW, 1)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := eng.ApplyFleet(ctx, admin, spec, false); err != nil {
		b.Fatal(err)
	}
	if _, err := eng.CreateTenant(ctx, admin, tenant.Tenant{ID: "bench"}); err != nil {
		b.Fatal(err)
	}
	_, secret, err := eng.CreateKey(ctx, admin, engine.KeyRequest{TenantID: "bench", Role: tenant.TenantAdmin, Name: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	if err := eng.LoadCapacity(ctx); err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(api.New(api.Config{Engine: eng}))
	defer srv.Close()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}

	pools := []string{"ref-300mw/H100-SXM", "ref-300mw/H200-SXM", "ref-300mw/GB200"}
	gpn := []int{8, 8, 4}
	const clients = 32
	var seq atomic.Int64
	var mu sync.Mutex
	var lat []time.Duration
	created, refused := atomic.Int64{}, atomic.Int64{}
	b.SetParallelism(clients / max(1, runtime.GOMAXPROCS(0))) // 32 client goroutines
	b.ResetTimer()
	t := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		rng := rand.New(rand.NewPCG(uint64(seq.Add(1)), 7))
		var mine []time.Duration
		for pb.Next() {
			p := rng.IntN(len(pools))
			start := t0.Add(time.Duration(1+rng.IntN(90*24)) * time.Hour)
			body, _ := json.Marshal(map[string]any{"kind": "reservation", "pool": pools[p], "gpus": gpn[p] * (1 + rng.IntN(8)),
				"start": start.Format(time.RFC3339), "end": start.Add(time.Duration(1+rng.IntN(72)) * time.Hour).Format(time.RFC3339)})
			req, _ := http.NewRequest("POST", srv.URL+"/v1/leases", bytes.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+secret)
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Idempotency-Key", fmt.Sprintf("k%d", seq.Add(1)))
			t := time.Now()
			resp, err := client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			var sink bytes.Buffer
			_, _ = sink.ReadFrom(resp.Body)
			resp.Body.Close()
			mine = append(mine, time.Since(t))
			switch resp.StatusCode {
			case http.StatusCreated:
				created.Add(1)
			case http.StatusConflict:
				refused.Add(1)
			default:
				b.Errorf("status %d: %s", resp.StatusCode, sink.String())
				return
			}
		}
		mu.Lock()
		lat = append(lat, mine...)
		mu.Unlock()
	})
	elapsed := time.Since(t)
	slices.Sort(lat)
	if len(lat) == 0 {
		return
	}
	b.ReportMetric(float64(len(lat))/elapsed.Seconds(), "leases/s")
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(created.Load())/float64(len(lat)), "admitted")
}

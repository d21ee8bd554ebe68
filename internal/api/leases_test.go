package api_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/neocloud/neocloud/internal/engine"
	"github.com/neocloud/neocloud/internal/store/dbtest"
)

// TestRaceForTheLastCapacity has 16 clients race, over real HTTP, for the
// last 2 nodes of a pool's window: exactly 2 are admitted, the rest get
// 409 with the reason, and no node is allocated twice.
func TestRaceForTheLastCapacity(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, st engine.Store) {
		f := newFixture(t, st)
		start := t0.Add(5 * time.Hour)
		window := func(gpus int, tenantID string) map[string]any {
			return map[string]any{"tenant": tenantID, "kind": "reservation", "pool": "lab-1/H100-SXM",
				"start": start.Format(time.RFC3339), "end": start.Add(10 * time.Hour).Format(time.RFC3339), "gpus": gpus}
		}
		// 30 of the pool's 32 nodes go first.
		if code, body := f.do(f.keys["operator-admin"], "POST", "/v1/leases", window(240, "tenant-b")); code != http.StatusCreated {
			t.Fatalf("fill: %d %s", code, body)
		}
		srv := httptest.NewServer(f.srv)
		defer srv.Close()

		const clients = 16
		codes := make([]int, clients)
		bodies := make([]string, clients)
		var wg sync.WaitGroup
		startGun := make(chan struct{})
		for i := range clients {
			wg.Go(func() {
				tenantID := []string{"tenant-a", "tenant-b"}[i%2]
				buf, _ := json.Marshal(window(8, tenantID))
				req, _ := http.NewRequest("POST", srv.URL+"/v1/leases", bytes.NewReader(buf))
				req.Header.Set("Authorization", "Bearer "+f.keys["tenant-admin@"+tenantID])
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Idempotency-Key", fmt.Sprintf("race-%d", i))
				<-startGun
				resp, err := srv.Client().Do(req)
				if err != nil {
					bodies[i] = err.Error()
					return
				}
				defer resp.Body.Close()
				var b bytes.Buffer
				_, _ = b.ReadFrom(resp.Body)
				codes[i], bodies[i] = resp.StatusCode, b.String()
			})
		}
		close(startGun)
		wg.Wait()
		created, refused := 0, 0
		for i, c := range codes {
			switch c {
			case http.StatusCreated:
				created++
			case http.StatusConflict:
				refused++
				var p struct {
					Reason        string `json:"reason"`
					EarliestStart string `json:"earliest_start"`
				}
				if err := json.Unmarshal([]byte(bodies[i]), &p); err != nil || p.Reason != "capacity" || p.EarliestStart != start.Add(10*time.Hour).Format(time.RFC3339) {
					t.Errorf("client %d: 409 body %s: want reason capacity and earliest_start %s", i, bodies[i], start.Add(10*time.Hour).Format(time.RFC3339))
				}
			default:
				t.Errorf("client %d: %d %s", i, c, bodies[i])
			}
		}
		if created != 2 || refused != clients-2 {
			t.Errorf("%d admitted, %d refused; want exactly 2 admitted", created, refused)
		}
		allocs, err := st.Allocations(t.Context(), engine.AllocationFilter{})
		if err != nil {
			t.Fatal(err)
		}
		held := 0
		for i, a := range allocs {
			held += int(a.Nodes())
			for _, b := range allocs[i+1:] {
				if a.Overlaps(b) {
					t.Errorf("overlapping allocations %+v and %+v", a, b)
				}
			}
		}
		if held != 32 {
			t.Errorf("%d nodes allocated, want the pool's 32", held)
		}
	})
}

// TestLeaseBadInputOverHTTP: bad lease requests answer 4xx naming the
// field, and change nothing.
func TestLeaseBadInputOverHTTP(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, st engine.Store) {
		f := newFixture(t, st)
		start := t0.Add(2 * time.Hour)
		base := func() map[string]any {
			return map[string]any{"kind": "reservation", "pool": "lab-1/H100-SXM",
				"start": start.Format(time.RFC3339), "end": start.Add(4 * time.Hour).Format(time.RFC3339), "gpus": 8}
		}
		tests := map[string]struct {
			edit     func(m map[string]any)
			status   int
			location string
		}{
			"end before start": {func(m map[string]any) { m["end"] = start.Add(-time.Hour).Format(time.RFC3339) }, 422, "body.end"},
			"unknown pool":     {func(m map[string]any) { m["pool"] = "lab-1/B300" }, 422, "body.pool"},
			"zero gpus":        {func(m map[string]any) { m["gpus"] = 0 }, 422, "body.gpus"},
			"negative gpus":    {func(m map[string]any) { m["gpus"] = -8 }, 422, "body.gpus"},
			"MW less than a node": {func(m map[string]any) {
				m["kind"], m["gpus"] = "contract", 0
				m["schedule"] = []map[string]any{{"from": start.Format(time.RFC3339), "mw": 0.001}}
			}, 422, "body.schedule[0].mw"},
			"beyond the horizon":   {func(m map[string]any) { m["end"] = t0.Add(6 * 365 * 24 * time.Hour).Format(time.RFC3339) }, 422, "body.end"},
			"unknown packing":      {func(m map[string]any) { m["packing"] = "rack" }, 422, "body.packing"},
			"unknown isolation":    {func(m map[string]any) { m["isolation"] = "private" }, 422, "body.isolation"},
			"unknown field":        {func(m map[string]any) { m["colour"] = "blue" }, 422, "body.colour"},
			"wrong type":           {func(m map[string]any) { m["gpus"] = "eight" }, 422, "body.gpus"},
			"no tenant (operator)": {func(m map[string]any) {}, 422, "body.tenant"},
		}
		before := dbtest.Dump(t, st)
		for name, tc := range tests {
			m := base()
			tc.edit(m)
			key := f.keys["tenant-admin@tenant-a"]
			if name == "no tenant (operator)" {
				key = f.keys["operator-admin"]
			}
			for _, path := range []string{"/v1/leases", "/v1/quotes"} {
				code, body := f.do(key, "POST", path, m)
				if code != tc.status || !bytes.Contains(body, []byte(`"location":"`+tc.location+`"`)) {
					t.Errorf("%s %s: %d %s; want %d naming %s", name, path, code, body, tc.status, tc.location)
				}
			}
		}
		after := dbtest.Dump(t, st)
		if before != after {
			t.Errorf("bad input changed the store")
		}
	})
}

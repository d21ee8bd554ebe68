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

	"github.com/neocloud/neocloud/internal/api"
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

// TestLeaseIdempotencyKey: a lease request's answer is remembered in the
// transaction that commits the lease (admitted or refused), and answers
// as the same request without an Idempotency-Key would: the replay gets
// it again and changes nothing; a cancel's answer likewise.
func TestLeaseIdempotencyKey(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, st engine.Store) {
		f := newFixture(t, st)
		key := f.keys["tenant-admin@tenant-a"]
		scope := keyIDOf(key)
		start := t0.Add(3 * time.Hour)
		window := func(gpus int) map[string]any {
			return map[string]any{"kind": "reservation", "pool": "lab-1/H100-SXM",
				"start": start.Format(time.RFC3339), "end": start.Add(4 * time.Hour).Format(time.RFC3339), "gpus": gpus}
		}
		ctx := t.Context()

		code1, body1, h1 := f.doFull(key, "POST", "/v1/leases", window(16), map[string]string{api.IdempotencyHeader: "lease-1"})
		if code1 != http.StatusCreated || h1.Get("Content-Type") != "application/json" {
			t.Fatalf("create = %d %s %q", code1, body1, h1.Get("Content-Type"))
		}
		var created api.LeaseCreated
		if err := json.Unmarshal(body1, &created); err != nil || len(created.Allocations) == 0 || len(created.Allocations[0].Nodes) != 2 {
			t.Fatalf("create answered %s (%v): want the lease with 2 nodes", body1, err)
		}
		rec, err := st.Idempotent(ctx, scope, "lease-1", time.Time{})
		if err != nil || rec.Status != code1 || string(rec.Body) != string(body1) {
			t.Fatalf("remembered %d %s (%v), want the answer %d %s", rec.Status, rec.Body, err, code1, body1)
		}
		// The answer is the one a request without the header gets, but for
		// the lease's ID and allocations.
		_, plain := f.do(key, "POST", "/v1/leases", window(8))
		var other api.LeaseCreated
		if err := json.Unmarshal(plain, &other); err != nil {
			t.Fatal(err)
		}
		other.ID, other.Allocations, other.GPUs = created.ID, created.Allocations, created.GPUs
		other.Schedule = created.Schedule
		if fmt.Sprint(other) != fmt.Sprint(created) {
			t.Errorf("idempotent answer %+v, plain answer %+v", created, other)
		}
		before := dbtest.Dump(t, st)
		code2, body2, h2 := f.doFull(key, "POST", "/v1/leases", window(16), map[string]string{api.IdempotencyHeader: "lease-1"})
		if code2 != code1 || string(body2) != string(body1) || h2.Get("Idempotent-Replayed") != "true" {
			t.Errorf("replay = %d %s, want %d %s replayed", code2, body2, code1, body1)
		}
		if dbtest.Dump(t, st) != before {
			t.Errorf("the replay changed the store")
		}

		// A refusal is remembered too, and reads as a refusal without the header.
		huge := window(8 * 1000)
		code3, body3, h3 := f.doFull(key, "POST", "/v1/leases", huge, map[string]string{api.IdempotencyHeader: "lease-2"})
		code4, body4, h4 := f.doFull(key, "POST", "/v1/leases", huge, nil)
		if code3 != http.StatusConflict || code4 != code3 || string(body3) != string(body4) ||
			h3.Get("Content-Type") != h4.Get("Content-Type") {
			t.Errorf("refusal = %d %q %s, without the header %d %q %s", code3, h3.Get("Content-Type"), body3, code4, h4.Get("Content-Type"), body4)
		}
		if rec, err := st.Idempotent(ctx, scope, "lease-2", time.Time{}); err != nil || string(rec.Body) != string(body3) {
			t.Errorf("refusal remembered as %s (%v)", rec.Body, err)
		}

		// A cancel.
		path := "/v1/leases/" + created.ID + "/cancel"
		code5, body5 := f.doHeader(key, "POST", path, map[string]string{}, map[string]string{api.IdempotencyHeader: "cancel-1"})
		code6, body6, h6 := f.doFull(key, "POST", path, map[string]string{}, map[string]string{api.IdempotencyHeader: "cancel-1"})
		if code5 != http.StatusOK || code6 != code5 || string(body6) != string(body5) || h6.Get("Idempotent-Replayed") != "true" {
			t.Errorf("cancel = %d %s, replay %d %s", code5, body5, code6, body6)
		}
		if code, body := f.do(key, "POST", path, map[string]string{}); code != http.StatusConflict {
			t.Errorf("cancel again without the header = %d %s, want 409", code, body)
		}
	})
}

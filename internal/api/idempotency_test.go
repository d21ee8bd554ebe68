package api_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/neocloud/neocloud/internal/api"
	"github.com/neocloud/neocloud/internal/engine"
	"github.com/neocloud/neocloud/internal/store/dbtest"
)

// TestIdempotencyAcrossRestart: after a restart (a new engine and server
// over the same store) a replay still gets the first answer byte for
// byte, the same key with another body is still 422, and a new key still
// creates a lease.
func TestIdempotencyAcrossRestart(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, st engine.Store) {
		f := newFixture(t, st)
		key := f.keys["tenant-admin@tenant-a"]
		start := t0.Add(3 * time.Hour)
		window := func(gpus int) map[string]any {
			return map[string]any{"kind": "reservation", "pool": "lab-1/H100-SXM",
				"start": start.Format(time.RFC3339), "end": start.Add(4 * time.Hour).Format(time.RFC3339), "gpus": gpus}
		}
		hdr := func(k string) map[string]string { return map[string]string{api.IdempotencyHeader: k} }
		code1, body1, _ := f.doFull(key, "POST", "/v1/leases", window(16), hdr("restart-1"))
		if code1 != http.StatusCreated {
			t.Fatalf("create = %d %s", code1, body1)
		}

		f.eng.Close()
		eng, err := engine.New(engine.Config{Store: st, Clock: f.clk})
		if err != nil {
			t.Fatal(err)
		}
		defer eng.Close()
		f.eng, f.srv = eng, api.New(api.Config{Engine: eng})

		for _, tc := range []struct {
			name       string
			key        string
			gpus       int
			wantCode   int
			wantBody   []byte // nil: not checked
			wantReplay string
		}{
			{name: "replay", key: "restart-1", gpus: 16, wantCode: code1, wantBody: body1, wantReplay: "true"},
			{name: "same key, other body", key: "restart-1", gpus: 8, wantCode: http.StatusUnprocessableEntity},
			{name: "new key", key: "restart-2", gpus: 8, wantCode: http.StatusCreated},
			{name: "new key replayed", key: "restart-2", gpus: 8, wantCode: http.StatusCreated, wantReplay: "true"},
		} {
			code, body, h := f.doFull(key, "POST", "/v1/leases", window(tc.gpus), hdr(tc.key))
			if code != tc.wantCode || (tc.wantBody != nil && !bytes.Equal(body, tc.wantBody)) || h.Get("Idempotent-Replayed") != tc.wantReplay {
				t.Errorf("%s: %d %s (replayed %q), want %d %s (replayed %q)", tc.name, code, body, h.Get("Idempotent-Replayed"),
					tc.wantCode, tc.wantBody, tc.wantReplay)
			}
		}
	})
}

// TestIdempotencyConcurrentSameKey: clients sending the same request with
// the same key at once get one answer, byte for byte, and one lease is
// created.
func TestIdempotencyConcurrentSameKey(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, st engine.Store) {
		f := newFixture(t, st)
		srv := httptest.NewServer(f.srv)
		defer srv.Close()
		key := f.keys["tenant-admin@tenant-a"]
		start := t0.Add(3 * time.Hour)
		buf, _ := json.Marshal(map[string]any{"kind": "reservation", "pool": "lab-1/H100-SXM",
			"start": start.Format(time.RFC3339), "end": start.Add(4 * time.Hour).Format(time.RFC3339), "gpus": 8})

		const clients = 8
		codes := make([]int, clients)
		bodies := make([]string, clients)
		var wg sync.WaitGroup
		gun := make(chan struct{})
		for i := range clients {
			wg.Go(func() {
				req, _ := http.NewRequest("POST", srv.URL+"/v1/leases", bytes.NewReader(buf))
				req.Header.Set("Authorization", "Bearer "+key)
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set(api.IdempotencyHeader, "same")
				<-gun
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
		close(gun)
		wg.Wait()
		for i := range clients {
			if codes[i] != http.StatusCreated || bodies[i] != bodies[0] {
				t.Errorf("client %d: %d %s, want 201 %s", i, codes[i], bodies[i], bodies[0])
			}
		}
		code, body := f.do(key, "GET", "/v1/leases", nil)
		var page api.LeasePage
		if err := json.Unmarshal(body, &page); code != http.StatusOK || err != nil {
			t.Fatalf("list = %d %s (%v)", code, body, err)
		}
		if len(page.Items) != 1 {
			t.Errorf("%d leases, want 1: %s", len(page.Items), body)
		}
	})
}

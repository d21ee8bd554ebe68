package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/neocloud/neocloud/internal/api"
	"github.com/neocloud/neocloud/internal/webhook"
)

// hookCall is one call a webhook receiver got.
type hookCall struct {
	id, typ, sig string
	body         []byte
}

// TestEventsAndWebhooks drives the event stream and webhooks through the
// command line against a real server: a tenant's follow stream carries its
// own events only; a webhook registered by the tenant receives its events
// signed with the secret printed once; the server's dispatcher runs.
func TestEventsAndWebhooks(t *testing.T) {
	eachBackend(t, func(t *testing.T, db string) {
		// The receiver below is a plain http server on loopback, which
		// webhooks may not reach unless the operator allows it.
		s := startServer(t, db, "--webhook-allow-cidr", "127.0.0.1/32", "--webhook-allow-http")
		fleetFile := filepath.Join(t.TempDir(), "fleet.yaml")
		if _, err := s.admin(t, "fleet", "generate", "--preset", "uniform", "--nodes", "16", "-f", fleetFile); err != nil {
			t.Fatal(err)
		}
		if _, err := s.admin(t, "fleet", "apply", "-f", fleetFile); err != nil {
			t.Fatal(err)
		}
		for _, id := range []string{"acme", "beta"} {
			if _, err := s.admin(t, "tenants", "create", id); err != nil {
				t.Fatal(err)
			}
		}
		acme := mustJSON[api.KeyCreated](t, s, "", "keys", "create", "--tenant", "acme", "--role", "tenant-admin").Secret
		s.secrets = append(s.secrets, acme)

		// A receiver for acme's webhook.
		var mu sync.Mutex
		var calls []hookCall
		got := make(chan struct{}, 10)
		rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			mu.Lock()
			calls = append(calls, hookCall{r.Header.Get(webhook.HeaderEventID), r.Header.Get(webhook.HeaderEventType), r.Header.Get(webhook.HeaderSignature), b})
			mu.Unlock()
			got <- struct{}{}
		}))
		defer rcv.Close()

		_, err := s.as(t, acme, "webhooks", "create", "--url", "ftp://hooks.example/x")
		wantProblem(t, err, http.StatusUnprocessableEntity, "url")
		_, err = s.as(t, acme, "webhooks", "create", "--url", "http://169.254.169.254/latest/meta-data/")
		wantProblem(t, err, http.StatusUnprocessableEntity, "url", "metadata")
		hook := mustJSON[api.WebhookCreated](t, s, acme, "webhooks", "create", "--url", rcv.URL+"/neocloud")
		if hook.Tenant != "acme" || len(hook.Secret) != 64 {
			t.Fatalf("webhook = %+v", hook)
		}
		s.secrets = append(s.secrets, hook.Secret)
		if hooks := mustJSON[[]api.Webhook](t, s, acme, "webhooks", "list"); len(hooks) != 1 || hooks[0].ID != hook.ID {
			t.Errorf("webhooks list = %+v", hooks)
		}

		// acme follows its events.
		out := newSyncBuffer()
		ctx, cancel := context.WithCancel(context.Background())
		followed := make(chan error, 1)
		go func() {
			followed <- run(ctx, []string{"--server", s.url, "--token", acme, "events", "--follow", "-o", "json"}, envOf(nil),
				strings.NewReader(""), out, io.Discard)
		}()
		defer func() {
			cancel()
			if err := <-followed; err != nil {
				t.Errorf("events --follow ended with %v, want nil when interrupted", err)
			}
		}()

		start := time.Now().UTC().Truncate(time.Hour).Add(2 * time.Hour).Format(time.RFC3339)
		lease := func(tenantID string) string {
			t.Helper()
			l := mustJSON[api.LeaseCreated](t, s, "", "leases", "create", "--tenant", tenantID, "--pool", "uni/H100-SXM",
				"--gpus", "8", "--start", start, "--end", "1h")
			return l.ID
		}
		lb := lease("beta")
		la := lease("acme")

		// The stream shows acme's lease and never beta's.
		deadline := time.After(20 * time.Second)
		for !strings.Contains(out.String(), la) {
			select {
			case <-out.changed:
			case <-deadline:
				t.Fatalf("events --follow printed no event of lease %s:\n%s", la, out)
			}
		}
		line, _, _ := strings.Cut(out.String(), "\n")
		var ev api.Event
		if err := json.Unmarshal([]byte(line), &ev); err != nil || ev.Type != "lease.created" || ev.Tenant != "acme" || ev.Lease != la {
			t.Errorf("first line %q (%v), want acme's lease.created", line, err)
		}
		if strings.Contains(out.String(), lb) || strings.Contains(out.String(), `"beta"`) {
			t.Errorf("acme's stream shows beta's event:\n%s", out)
		}

		// The webhook got acme's event, signed with its secret.
		select {
		case <-got:
		case <-time.After(20 * time.Second):
			t.Fatal("the webhook received nothing")
		}
		mu.Lock()
		c := calls[0]
		mu.Unlock()
		if err := webhook.Verify(c.sig, c.body, []byte(hook.Secret), time.Now(), 0); err != nil {
			t.Errorf("webhook signature: %v", err)
		}
		var body api.Event
		if err := json.Unmarshal(c.body, &body); err != nil || body.ID != c.id || body.Type != c.typ || body.Lease != la || body.Tenant != "acme" {
			t.Errorf("webhook call %s %s %s (%v), want acme's lease.created", c.id, c.typ, c.body, err)
		}

		// The operator's page has both; a page after the first has one.
		all := mustJSON[[]api.Event](t, s, "", "events")
		if len(all) != 2 || all[0].Lease != lb || all[1].Lease != la {
			t.Fatalf("events as the operator = %+v", all)
		}
		if rest := mustJSON[[]api.Event](t, s, "", "events", "--after", i64(all[0].Seq)); len(rest) != 1 || rest[0].Lease != la {
			t.Errorf("events --after %d = %+v", all[0].Seq, rest)
		}
		if table, err := s.admin(t, "events"); err != nil || !strings.Contains(table, "lease.created") || !strings.Contains(table, la) {
			t.Errorf("events table = %q, %v", table, err)
		}

		if _, err := s.as(t, acme, "webhooks", "delete", hook.ID); err != nil {
			t.Fatal(err)
		}
		if hooks := mustJSON[[]api.Webhook](t, s, acme, "webhooks", "list"); len(hooks) != 0 {
			t.Errorf("webhooks after delete = %+v", hooks)
		}
	})
}

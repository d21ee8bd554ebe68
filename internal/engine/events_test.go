package engine_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/netip"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/neocloud/neocloud/internal/egress"
	"github.com/neocloud/neocloud/internal/engine"
	"github.com/neocloud/neocloud/internal/event"
	"github.com/neocloud/neocloud/internal/fleet"
	"github.com/neocloud/neocloud/internal/store/dbtest"
	"github.com/neocloud/neocloud/internal/tenant"
	"github.com/neocloud/neocloud/internal/valid"
)

// kinds returns "type tenant lease" of each event, the lease ID replaced
// by a name from names when known.
func kinds(evs []event.Event, names map[string]string) []string {
	out := []string{}
	for _, ev := range evs {
		l := ev.LeaseID
		if n, ok := names[l]; ok {
			l = n
		}
		out = append(out, string(ev.Type)+" "+ev.TenantID+" "+l)
	}
	return out
}

// TestEventsOfCommands: the lease and node commands append their events in
// commit order; a tenant reads only its own, operators every one; a
// committed event wakes EventsChanged.
func TestEventsOfCommands(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, st engine.Store) {
		e, clk := setup(t, st, 1_000_000)
		ctx := context.Background()
		beta := tenant.Principal{KeyID: "key_beta", TenantID: "beta", Role: tenant.TenantViewer}

		changed := e.EventsChanged()
		a, err := e.RequestLease(ctx, acmeAdmin(), "", reservation(16, 1, 24))
		if err != nil {
			t.Fatal(err)
		}
		select {
		case <-changed:
		default:
			t.Fatal("EventsChanged not closed by a commit that appended an event")
		}
		changed = e.EventsChanged()
		if _, err := e.RequestLease(ctx, acmeAdmin(), "", reservation(8000, 1, 24)); err == nil {
			t.Fatal("a request for more than the pool was admitted")
		}
		select {
		case <-changed:
			t.Error("EventsChanged closed by a refusal, which appends no event")
		default:
		}
		views, _, err := e.LeaseAllocations(ctx, admin, a.Lease.ID)
		if err != nil {
			t.Fatal(err)
		}
		victim := views[0].Nodes[0]
		clk.Advance(2 * time.Hour)
		if _, err := e.SetNodeState(ctx, admin, victim, fleet.Failed, "XID 79"); err != nil {
			t.Fatal(err)
		}
		// Fill the pool, then fail another of the lease's nodes: a shortfall.
		b, err := e.RequestLease(ctx, admin, "beta", reservation(128-16-8, 3, 24))
		if err != nil {
			t.Fatal(err)
		}
		views, _, err = e.LeaseAllocations(ctx, admin, a.Lease.ID)
		if err != nil {
			t.Fatal(err)
		}
		var second string
		for _, v := range views {
			if v.End.After(clk.Now()) && v.Nodes[0] != victim {
				second = v.Nodes[0]
			}
		}
		if _, err := e.SetNodeState(ctx, admin, second, fleet.Maintenance, ""); err != nil {
			t.Fatal(err)
		}
		if _, err := e.CancelLease(ctx, acmeAdmin(), a.Lease.ID, "done"); err != nil {
			t.Fatal(err)
		}

		names := map[string]string{a.Lease.ID: "A", b.Lease.ID: "B"}
		all, err := e.Events(ctx, admin, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		want := []string{
			"lease.created acme A",
			"node.state  ",
			"allocation.replaced acme A",
			"lease.created beta B",
			"node.state  ",
			"lease.shortfall acme A",
			"lease.cancelled acme A",
		}
		if diff := cmp.Diff(want, kinds(all, names)); diff != "" {
			t.Fatalf("operator's events (-want +got):\n%s", diff)
		}
		for i, ev := range all {
			if i > 0 && ev.Seq <= all[i-1].Seq {
				t.Errorf("event %d: seq %d after %d", i, ev.Seq, all[i-1].Seq)
			}
			if !json.Valid(ev.Data) || ev.At.IsZero() {
				t.Errorf("event %d = %+v", i, ev)
			}
		}
		var ns struct {
			Node, State, From, Reason string
			Replaced                  int
		}
		if err := json.Unmarshal(all[1].Data, &ns); err != nil || ns.Node != victim || ns.State != "failed" || ns.From != "available" ||
			ns.Reason != "XID 79" || ns.Replaced != 1 {
			t.Errorf("node.state data = %s (%v)", all[1].Data, err)
		}
		var short struct {
			Node string
			GPUs int64
		}
		if err := json.Unmarshal(all[5].Data, &short); err != nil || short.Node != second || short.GPUs != 8 {
			t.Errorf("shortfall data = %s (%v)", all[5].Data, err)
		}

		// A tenant sees its own events only: never another tenant's, never
		// the operators' node events.
		own, err := e.Events(ctx, acmeAdmin(), 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]string{"lease.created acme A", "allocation.replaced acme A", "lease.shortfall acme A", "lease.cancelled acme A"},
			kinds(own, names)); diff != "" {
			t.Errorf("acme's events (-want +got):\n%s", diff)
		}
		theirs, err := e.Events(ctx, beta, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]string{"lease.created beta B"}, kinds(theirs, names)); diff != "" {
			t.Errorf("beta's events (-want +got):\n%s", diff)
		}
		// Newest first before a cursor, scoped alike.
		recent, err := e.RecentEvents(ctx, acmeAdmin(), own[3].Seq, 2)
		if diff := cmp.Diff([]string{"lease.shortfall acme A", "allocation.replaced acme A"}, kinds(recent, names)); err != nil || diff != "" {
			t.Errorf("acme's 2 newest before its last (-want +got):\n%s%v", diff, err)
		}
		if recent, err := e.RecentEvents(ctx, beta, 0, 10); err != nil || len(recent) != 1 || recent[0].Seq != theirs[0].Seq {
			t.Errorf("beta's newest = %v, %v", kinds(recent, names), err)
		}
		if recent, err := e.RecentEvents(ctx, admin, 0, 1); err != nil || len(recent) != 1 || recent[0].Seq != all[len(all)-1].Seq {
			t.Errorf("the newest event = %v, %v", kinds(recent, names), err)
		}
		if _, err := e.RecentEvents(ctx, tenant.Principal{KeyID: "key_x", Role: tenant.TenantViewer}, 0, 0); err == nil {
			t.Error("a tenant principal without a tenant read recent events")
		}
		// After a cursor, limited.
		page, err := e.Events(ctx, admin, all[2].Seq, 2)
		if err != nil || len(page) != 2 || page[0].Seq != all[3].Seq {
			t.Errorf("page after event 2 = %v, %v", kinds(page, names), err)
		}
		if seq, err := e.LastEventSeq(ctx); err != nil || seq != all[len(all)-1].Seq {
			t.Errorf("LastEventSeq = %d, %v", seq, err)
		}
		// A tenant-role principal without a tenant reads nothing.
		if _, err := e.Events(ctx, tenant.Principal{KeyID: "key_x", Role: tenant.TenantViewer}, 0, 0); err == nil {
			t.Error("a tenant principal without a tenant read events")
		}
	})
}

// TestWebhookEgressAllowed: the operator's allowlist and --webhook-allow-http
// let an internal receiver be registered; other blocked ranges stay
// refused.
func TestWebhookEgressAllowed(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, st engine.Store) {
		e, err := engine.New(engine.Config{Store: st, Egress: egress.Policy{AllowHTTP: true,
			Allow: []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16")}}})
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		for url, ok := range map[string]bool{"http://10.1.2.3:9000/hook": true, "https://10.1.2.3/hook": true,
			"http://hooks.example/x": true, "http://10.2.0.1/hook": false, "http://127.0.0.1/hook": false} {
			_, _, err := e.CreateWebhook(ctx, admin, "", url)
			var ve *valid.Error
			if ok && err != nil || !ok && (!errors.As(err, &ve) || ve.Issues[0].Field != "url") {
				t.Errorf("%s: err = %v, want accepted %v", url, err, ok)
			}
		}
	})
}

// TestWebhookCRUD: endpoints are created with a secret shown once, for the
// caller's tenant (or every event, for an operator endpoint), from the
// events after their creation on; a bad URL names the field; a tenant
// cannot reach another's; deletion disables; every change is audited.
func TestWebhookCRUD(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, st engine.Store) {
		e, clk := setup(t, st, 1_000_000)
		ctx := context.Background()
		acme := acmeAdmin()
		beta := tenant.Principal{KeyID: "key_beta", TenantID: "beta", Role: tenant.TenantAdmin}
		if _, err := e.RequestLease(ctx, acme, "", reservation(8, 1, 2)); err != nil {
			t.Fatal(err)
		}
		last, err := e.LastEventSeq(ctx)
		if err != nil || last == 0 {
			t.Fatalf("LastEventSeq = %d, %v", last, err)
		}

		for _, tt := range []struct{ name, url, rule string }{
			{"empty", "", "is required"}, {"relative", "/hooks", "absolute"}, {"ftp", "ftp://hooks.example/x", "absolute"},
			{"no host", "https:///x", "with a host"}, {"credentials", "https://user:pw@hooks.example/x", "credentials"},
			{"fragment", "https://hooks.example/x#y", "fragment"}, {"space", "https://hooks.example/a b", "without spaces"},
			{"opaque", "mailto:ops@example.com", "absolute"},
			// The egress guard: https only by default, no literal IP in
			// the server's own networks.
			{"http", "http://hooks.example/x", "must use https"},
			{"loopback", "https://127.0.0.1:8080/x", "loopback (127.0.0.0/8)"},
			{"metadata", "https://169.254.169.254/latest/meta-data/", "cloud metadata service"},
			{"private", "https://10.0.0.7/x", "private (RFC 1918)"},
			{"CGNAT", "https://100.64.1.1/x", "carrier-grade NAT"},
			{"unique-local", "https://[fd12::1]/x", "unique-local"},
			{"mapped", "https://[::ffff:127.0.0.1]/x", "loopback"},
			{"unspecified", "https://0.0.0.0/x", "this network"},
			{"decimal IPv4", "https://2130706433/x", "standard IP literal"},
		} {
			name, url := tt.name, tt.url
			_, _, err := e.CreateWebhook(ctx, acme, "", url)
			var ve *valid.Error
			if !errors.As(err, &ve) || ve.Issues[0].Field != "url" || !strings.Contains(ve.Issues[0].Rule, tt.rule) {
				t.Errorf("%s URL %q: err = %v, want a *valid.Error naming url and %q", name, url, err, tt.rule)
			}
			if name == "credentials" && ve != nil && regexp.MustCompile(`pw`).MatchString(ve.Error()) {
				t.Errorf("the refusal echoes the URL's password: %v", ve)
			}
		}
		if _, _, err := e.CreateWebhook(ctx, acme, "beta", "https://hooks.example/x"); !errors.Is(err, tenant.ErrNotFound) {
			t.Errorf("acme creating beta's webhook: err = %v, want ErrNotFound", err)
		}
		viewer := tenant.Principal{KeyID: "key_v", TenantID: "acme", Role: tenant.TenantViewer}
		if _, _, err := e.CreateWebhook(ctx, viewer, "", "https://hooks.example/x"); !errors.Is(err, tenant.ErrForbidden) {
			t.Errorf("a tenant viewer creating a webhook: err = %v, want ErrForbidden", err)
		}
		var ve *valid.Error
		if _, _, err := e.CreateWebhook(ctx, admin, "nobody", "https://hooks.example/x"); !errors.As(err, &ve) || ve.Issues[0].Field != "tenant" {
			t.Errorf("a webhook for an unknown tenant: err = %v, want a *valid.Error naming tenant", err)
		}

		w, secret, err := e.CreateWebhook(ctx, acme, "", "https://hooks.example/acme?token=t0ps3cret")
		if err != nil {
			t.Fatal(err)
		}
		if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(secret) || w.Secret != "" || w.TenantID != "acme" ||
			!regexp.MustCompile(`^wh_[0-9a-f]{16}$`).MatchString(w.ID) || w.Delivery.LastSeq != last {
			t.Errorf("created %+v with secret %q; want an ID, a 64-hex secret apart, acme, from seq %d", w, secret, last)
		}
		stored, err := st.Webhook(ctx, w.ID)
		if err != nil || stored.Secret != secret {
			t.Errorf("stored secret = %q, %v; want the one returned", stored.Secret, err)
		}
		clk.Advance(time.Minute) // listed by creation time
		opw, _, err := e.CreateWebhook(ctx, admin, "", "https://ops.example/hook")
		if err != nil || opw.TenantID != "" {
			t.Fatalf("operator endpoint = %+v, %v", opw, err)
		}

		list := func(p tenant.Principal, tenantID string) []string {
			t.Helper()
			ws, err := e.Webhooks(ctx, p, tenantID)
			if err != nil {
				t.Fatal(err)
			}
			ids := []string{}
			for _, w := range ws {
				if w.Secret != "" {
					t.Errorf("Webhooks shows the secret of %s", w.ID)
				}
				ids = append(ids, w.ID)
			}
			return ids
		}
		if diff := cmp.Diff([]string{w.ID}, list(acme, "")); diff != "" {
			t.Errorf("acme's webhooks (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([]string{}, list(beta, "")); diff != "" {
			t.Errorf("beta's webhooks (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([]string{w.ID, opw.ID}, list(admin, "")); diff != "" {
			t.Errorf("every webhook (-want +got):\n%s", diff)
		}
		if _, err := e.Webhooks(ctx, beta, "acme"); !errors.Is(err, tenant.ErrNotFound) {
			t.Errorf("beta listing acme's webhooks: err = %v, want ErrNotFound", err)
		}
		if eps, err := e.WebhookEndpoints(ctx); err != nil || len(eps) != 2 || eps[0].Secret != secret {
			t.Errorf("WebhookEndpoints = %+v, %v; want both with their secrets", eps, err)
		}

		for _, p := range []tenant.Principal{beta} {
			for _, id := range []string{w.ID, opw.ID, "wh_0000000000000000"} {
				if _, err := e.DeleteWebhook(ctx, p, id); !errors.Is(err, tenant.ErrNotFound) {
					t.Errorf("%s deleting %s: err = %v, want ErrNotFound", p.KeyID, id, err)
				}
			}
		}
		del, err := e.DeleteWebhook(ctx, acme, w.ID)
		if err != nil || del.Disabled.IsZero() || del.Secret != "" {
			t.Fatalf("delete = %+v, %v", del, err)
		}
		if again, err := e.DeleteWebhook(ctx, acme, w.ID); err != nil || !again.Disabled.Equal(del.Disabled) {
			t.Errorf("second delete = %+v, %v; want the first disable time", again, err)
		}
		if diff := cmp.Diff([]string{}, list(acme, "")); diff != "" {
			t.Errorf("acme's webhooks after delete (-want +got):\n%s", diff)
		}

		// The delivery state the dispatcher writes.
		d := event.Delivery{LastSeq: last, Attempts: 2, NextAttempt: t0.Add(time.Minute), LastError: "503", LastStatus: 503}
		if err := e.SaveWebhookDelivery(ctx, opw.ID, d); err != nil {
			t.Fatal(err)
		}
		if got, err := st.Webhook(ctx, opw.ID); err != nil || !cmp.Equal(d, got.Delivery) {
			t.Errorf("delivery = %+v, %v; want %+v", got.Delivery, err, d)
		}

		// Audited, without the URL's query.
		entries, err := st.Audit(ctx, engine.AuditFilter{Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		var actions []string
		for _, en := range entries {
			if en.Outcome == tenant.OutcomeOK && (en.Action == "webhooks.create" || en.Action == "webhooks.delete") {
				actions = append(actions, en.Action+" "+en.TenantID)
			}
			if regexp.MustCompile(`t0ps3cret`).MatchString(en.Detail) {
				t.Errorf("audit entry %s holds the URL's query: %s", en.Action, en.Detail)
			}
		}
		if diff := cmp.Diff([]string{"webhooks.delete acme", "webhooks.create ", "webhooks.create acme"}, actions); diff != "" {
			t.Errorf("audited webhook changes, newest first (-want +got):\n%s", diff)
		}
	})
}

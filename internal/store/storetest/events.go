package storetest

import (
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/neocloud/neocloud/internal/engine"
	"github.com/neocloud/neocloud/internal/event"
	"github.com/neocloud/neocloud/internal/tenant"
)

// testEvents: the outbox numbers events in append order, across and
// within transactions; reads filter by tenant, page by seq and give the
// data back byte for byte; a refused append leaves the transaction usable
// and a rolled-back one leaves nothing.
func testEvents(t *testing.T, s engine.Store) {
	ctx := t.Context()
	if got, err := s.Events(ctx, engine.EventFilter{}); err != nil || got == nil || len(got) != 0 {
		t.Fatalf("Events of an empty store = %v, %v; want an empty slice", got, err)
	}
	if seq, err := s.LastEventSeq(ctx); err != nil || seq != 0 {
		t.Fatalf("LastEventSeq of an empty store = %d, %v; want 0", seq, err)
	}
	ev := func(i int, typ event.Type, tenantID, leaseID, data string) event.Event {
		return event.Event{Seq: 999, At: at(time.Duration(i)*time.Second + 7*time.Microsecond), Type: typ, TenantID: tenantID,
			LeaseID: leaseID, Data: json.RawMessage(data)}
	}
	first := []event.Event{
		ev(1, event.LeaseCreated, "acme", "ls_1", `{"pool":"dfw/H100-SXM", "gpus":8}`), // spacing and key order kept
		ev(2, event.NodeState, "", "", `{"node":"n1","state":"failed"}`),
		ev(3, event.Shortfall, "rival", "ls_2", `{"gpus":8,"from":"2026-03-01T00:00:00Z"}`),
	}
	update(t, s, func(tx engine.Tx) error { return tx.AppendEvents(ctx, first) })
	// A refused event (data that is not JSON) stores nothing of its call
	// and leaves the transaction usable; a transaction that fails stores
	// nothing.
	update(t, s, func(tx engine.Tx) error {
		bad := []event.Event{ev(4, event.LeaseCancelled, "acme", "ls_1", `{}`), ev(5, event.LeaseCancelled, "acme", "ls_1", `{not json`)}
		if err := tx.AppendEvents(ctx, bad); err == nil {
			t.Errorf("AppendEvents with data that is not JSON: err = nil, want an error")
		}
		return tx.AppendEvents(ctx, []event.Event{ev(6, event.LeaseCancelled, "acme", "ls_1", `{"reason":"done"}`)})
	})
	boom := errors.New("boom")
	if err := s.Update(ctx, func(tx engine.Tx) error {
		if err := tx.AppendEvents(ctx, []event.Event{ev(7, event.LeaseCreated, "acme", "ls_x", `{}`)}); err != nil {
			return err
		}
		return boom
	}); !errors.Is(err, boom) {
		t.Fatalf("Update = %v, want boom", err)
	}
	var many []event.Event
	for i := range 1300 { // more than one multi-row statement
		many = append(many, ev(100+i, event.LeaseCreated, []string{"acme", "rival"}[i%2], fmt.Sprintf("ls_m%04d", i), fmt.Sprintf(`{"i":%d}`, i)))
	}
	update(t, s, func(tx engine.Tx) error { return tx.AppendEvents(ctx, many) })

	all, err := s.Events(ctx, engine.EventFilter{Limit: 10_000})
	if err != nil {
		t.Fatal(err)
	}
	want := append(append(append([]event.Event{}, first...), ev(6, event.LeaseCancelled, "acme", "ls_1", `{"reason":"done"}`)), many...)
	if len(all) != len(want) {
		t.Fatalf("Events: %d events, want %d", len(all), len(want))
	}
	for i := range all {
		if i > 0 && all[i].Seq <= all[i-1].Seq {
			t.Fatalf("event %d has seq %d after %d: want increasing", i, all[i].Seq, all[i-1].Seq)
		}
		want[i].Seq = all[i].Seq
	}
	if diff := cmp.Diff(want, all); diff != "" {
		t.Fatalf("Events (-want +got):\n%s", diff)
	}
	if seq, err := s.LastEventSeq(ctx); err != nil || seq != all[len(all)-1].Seq {
		t.Errorf("LastEventSeq = %d, %v; want %d", seq, err, all[len(all)-1].Seq)
	}

	// Filters: a tenant's own only (never operator-only ones), after a
	// cursor, limited; the default limit is 100.
	acme, err := s.Events(ctx, engine.EventFilter{TenantID: "acme", After: all[0].Seq, Limit: 3})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]event.Event{all[3], all[4], all[6]}, acme); diff != "" {
		t.Errorf("acme's events after the first, 3 (-want +got):\n%s", diff)
	}
	if got, err := s.Events(ctx, engine.EventFilter{}); err != nil || len(got) != 100 || got[0].Seq != all[0].Seq {
		t.Errorf("Events with no limit: %d events from %d, %v; want 100 from the first", len(got), got[0].Seq, err)
	}
	if got, err := s.Events(ctx, engine.EventFilter{After: all[len(all)-1].Seq}); err != nil || got == nil || len(got) != 0 {
		t.Errorf("Events after the last = %v, %v; want an empty slice", got, err)
	}
	if got, err := s.Events(ctx, engine.EventFilter{TenantID: "nobody"}); err != nil || len(got) != 0 {
		t.Errorf("Events of a tenant with none = %v, %v", got, err)
	}
	// Newest first, before a cursor: a tenant's newest, however many
	// others' events follow.
	for _, tc := range []struct {
		name string
		f    engine.EventFilter
		want []event.Event
	}{
		{"acme's newest 2 before the 7th", engine.EventFilter{TenantID: "acme", Before: all[6].Seq, Newest: true, Limit: 2}, []event.Event{all[4], all[3]}},
		{"rival's before its second", engine.EventFilter{TenantID: "rival", Before: all[5].Seq, Newest: true, Limit: 5}, []event.Event{all[2]}},
		{"the newest 2", engine.EventFilter{Newest: true, Limit: 2}, []event.Event{all[len(all)-1], all[len(all)-2]}},
		{"between cursors", engine.EventFilter{After: all[1].Seq, Before: all[4].Seq}, []event.Event{all[2], all[3]}},
	} {
		got, err := s.Events(ctx, tc.f)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("Events, %s (-want +got):\n%s", tc.name, diff)
		}
	}
}

// testWebhooks: endpoints are stored with their secret and delivery state,
// listed by tenant (all for ""), disabled rather than deleted, and their
// delivery state updated.
func testWebhooks(t *testing.T, s engine.Store) {
	ctx := t.Context()
	wh := func(id, tenantID string, created time.Duration) event.Webhook {
		return event.Webhook{ID: id, TenantID: tenantID, URL: "https://hooks.example/" + id, Secret: "secret-" + id, Created: at(created)}
	}
	op := wh("wh_op", "", 0)
	acme := wh("wh_acme", "acme", time.Minute)
	acme.Delivery = event.Delivery{LastSeq: 41}
	acme2 := wh("wh_acme2", "acme", time.Minute) // same instant: the ID breaks the tie
	rival := wh("wh_rival", "rival", time.Hour)
	update(t, s, func(tx engine.Tx) error {
		for _, w := range []event.Webhook{rival, acme2, acme, op} {
			if err := tx.CreateWebhook(ctx, w); err != nil {
				return err
			}
		}
		dup := wh("wh_acme", "rival", 2*time.Hour)
		if err := tx.CreateWebhook(ctx, dup); !errors.Is(err, tenant.ErrExists) {
			t.Errorf("CreateWebhook(taken ID): err = %v, want ErrExists", err)
		}
		return nil
	})
	got, err := s.Webhook(ctx, "wh_acme")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(acme, got); diff != "" {
		t.Errorf("Webhook(wh_acme) (-want +got):\n%s", diff)
	}
	if _, err := s.Webhook(ctx, "wh_none"); !errors.Is(err, engine.ErrNotFound) {
		t.Errorf("Webhook(unknown): err = %v, want ErrNotFound", err)
	}
	list := func(f engine.WebhookFilter) []string {
		t.Helper()
		ws, err := s.Webhooks(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		ids := []string{}
		for _, w := range ws {
			ids = append(ids, w.ID)
		}
		return ids
	}
	if diff := cmp.Diff([]string{"wh_op", "wh_acme", "wh_acme2", "wh_rival"}, list(engine.WebhookFilter{})); diff != "" {
		t.Errorf("Webhooks(all) (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"wh_acme", "wh_acme2"}, list(engine.WebhookFilter{TenantID: "acme"})); diff != "" {
		t.Errorf("Webhooks(acme) (-want +got):\n%s", diff)
	}

	// Disabling keeps the first time; a disabled endpoint is listed only
	// when asked for.
	update(t, s, func(tx engine.Tx) error {
		if err := tx.DisableWebhook(ctx, "wh_acme", at(2*time.Hour)); err != nil {
			return err
		}
		if err := tx.DisableWebhook(ctx, "wh_acme", at(3*time.Hour)); err != nil {
			return err
		}
		if err := tx.DisableWebhook(ctx, "wh_none", at(3*time.Hour)); !errors.Is(err, engine.ErrNotFound) {
			t.Errorf("DisableWebhook(unknown): err = %v, want ErrNotFound", err)
		}
		return nil
	})
	if diff := cmp.Diff([]string{"wh_acme2"}, list(engine.WebhookFilter{TenantID: "acme"})); diff != "" {
		t.Errorf("Webhooks(acme) after disabling one (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"wh_acme", "wh_acme2"}, list(engine.WebhookFilter{TenantID: "acme", IncludeDisabled: true})); diff != "" {
		t.Errorf("Webhooks(acme, disabled too) (-want +got):\n%s", diff)
	}
	if got, err := s.Webhook(ctx, "wh_acme"); err != nil || !got.Disabled.Equal(at(2*time.Hour)) {
		t.Errorf("disabled at %v, %v; want the first time %v", got.Disabled, err, at(2*time.Hour))
	}

	// Delivery state: written whole, read back; the zero time is none.
	d := event.Delivery{LastSeq: 7, Attempts: 3, NextAttempt: at(time.Hour + 5*time.Microsecond), LastError: "503 Service Unavailable", LastStatus: 503}
	update(t, s, func(tx engine.Tx) error {
		if err := tx.UpdateWebhookDelivery(ctx, "wh_rival", d); err != nil {
			return err
		}
		if err := tx.UpdateWebhookDelivery(ctx, "wh_none", d); !errors.Is(err, engine.ErrNotFound) {
			t.Errorf("UpdateWebhookDelivery(unknown): err = %v, want ErrNotFound", err)
		}
		return nil
	})
	if got, err := s.Webhook(ctx, "wh_rival"); err != nil || !cmp.Equal(d, got.Delivery) || got.Secret != rival.Secret {
		t.Errorf("wh_rival after an update = %+v, %v; want delivery %+v", got, err, d)
	}
	d = event.Delivery{LastSeq: 8, LastStatus: 204}
	update(t, s, func(tx engine.Tx) error { return tx.UpdateWebhookDelivery(ctx, "wh_rival", d) })
	if got, err := s.Webhook(ctx, "wh_rival"); err != nil || !cmp.Equal(d, got.Delivery) {
		t.Errorf("wh_rival after a success = %+v, %v; want delivery %+v", got.Delivery, err, d)
	}
}

package webhook

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/neocloud/neocloud/internal/clock"
	"github.com/neocloud/neocloud/internal/egress"
	"github.com/neocloud/neocloud/internal/event"
)

// Source is what the dispatcher needs of the engine: the endpoints, the
// outbox, and a place to keep each endpoint's cursor. The engine
// implements it.
type Source interface {
	// WebhookEndpoints returns every enabled endpoint with its secret and
	// delivery state.
	WebhookEndpoints(ctx context.Context) ([]event.Webhook, error)
	// WebhookEvents returns up to limit events with Seq above after, by
	// Seq: tenantID's, or every event for "".
	WebhookEvents(ctx context.Context, tenantID string, after int64, limit int) ([]event.Event, error)
	// SaveWebhookDelivery stores endpoint id's delivery state.
	SaveWebhookDelivery(ctx context.Context, id string, d event.Delivery) error
}

// Config holds a Dispatcher's dependencies. Source and Changed are
// required; the others default to NewClient(Egress) (a 10-second client
// that connects only where Egress allows and follows no redirect), the
// real clock and timers, DefaultBackoff and a discarding logger.
type Config struct {
	Source Source
	// Changed returns a channel closed when events are appended or
	// endpoints change after the call (the engine's EventsChanged).
	Changed func() <-chan struct{}
	Client  Doer
	// Egress is what the default client may connect to (ignored when
	// Client is set): the zero value blocks the server's own networks.
	Egress egress.Policy
	Clock  clock.Clock
	// After waits: it returns a channel that receives after d (tests
	// move a fake clock instead of sleeping).
	After   func(d time.Duration) <-chan time.Time
	Backoff Backoff
	Logger  *slog.Logger
}

// Dispatcher delivers the outbox to the webhook endpoints: per endpoint,
// events in Seq order after its cursor, one at a time, each signed at the
// time of its attempt. A failed event is retried with Backoff, blocking
// the ones after it (order is kept); after the last attempt, or at once
// for an answer that says it will never be taken (a 4xx other than 408,
// 425, 429), it is given up: the failure is recorded in the endpoint's
// delivery state and the next event goes. Delivery is at least once (a
// crash between a delivery and the cursor's save sends it again);
// receivers dedupe on the event ID, the same on every attempt.
type Dispatcher struct {
	src     Source
	changed func() <-chan struct{}
	client  Doer
	egress  egress.Policy
	clock   clock.Clock
	after   func(time.Duration) <-chan time.Time
	backoff Backoff
	log     *slog.Logger
}

// pageSize is how many events an endpoint reads at a time.
const pageSize = 100

// errorRetry is how long the dispatcher waits after the store failed it.
const errorRetry = 5 * time.Second

// NewDispatcher returns a dispatcher; Run starts it.
func NewDispatcher(cfg Config) *Dispatcher {
	d := &Dispatcher{src: cfg.Source, changed: cfg.Changed, client: cfg.Client, egress: cfg.Egress, clock: cfg.Clock, after: cfg.After,
		backoff: cfg.Backoff, log: cfg.Logger}
	if d.client == nil {
		d.client = NewClient(cfg.Egress)
	}
	if d.clock == nil {
		d.clock = clock.Real{}
	}
	if d.after == nil {
		d.after = time.After
	}
	if d.backoff.Attempts == 0 {
		d.backoff = DefaultBackoff
	}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	return d
}

// Run delivers until ctx ends, then waits for the deliveries in flight
// to stop (their attempts are cancelled, and not recorded) and returns.
// It reads the endpoints at start and again whenever Changed fires, with
// one goroutine per endpoint.
func (d *Dispatcher) Run(ctx context.Context) {
	type worker struct {
		cancel context.CancelFunc
		poke   chan struct{}
	}
	var wg sync.WaitGroup
	workers := map[string]*worker{}
	defer func() {
		for _, w := range workers {
			w.cancel()
		}
		wg.Wait()
	}()
	for {
		changed := d.changed()
		var retry <-chan time.Time
		eps, err := d.src.WebhookEndpoints(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			d.log.Error("webhook: list endpoints", "err", err)
			retry = d.after(errorRetry)
		}
		seen := make(map[string]bool, len(eps))
		for _, ep := range eps {
			seen[ep.ID] = true
			if w := workers[ep.ID]; w != nil {
				select {
				case w.poke <- struct{}{}:
				default: // already poked
				}
				continue
			}
			wctx, cancel := context.WithCancel(ctx)
			w := &worker{cancel: cancel, poke: make(chan struct{}, 1)}
			workers[ep.ID] = w
			wg.Add(1)
			go func() {
				defer wg.Done()
				d.serve(wctx, ep, w.poke)
			}()
		}
		if err == nil {
			for id, w := range workers {
				if !seen[id] { // deleted
					w.cancel()
					delete(workers, id)
				}
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-changed:
		case <-retry:
		}
	}
}

// serve delivers to one endpoint until ctx ends: what is due, then waits
// for a poke (new events) or the next retry.
func (d *Dispatcher) serve(ctx context.Context, ep event.Webhook, poke <-chan struct{}) {
	cur := ep.Delivery
	for {
		due := d.deliver(ctx, ep, &cur)
		var timer <-chan time.Time
		if !due.IsZero() {
			timer = d.after(max(due.Sub(d.clock.Now()), 0))
		}
		select {
		case <-ctx.Done():
			return
		case <-poke:
		case <-timer:
		}
	}
}

// deliver sends ep the events due after cur, advancing cur and saving
// it, until none is left (it returns the zero time) or one waits for a
// retry (it returns when).
func (d *Dispatcher) deliver(ctx context.Context, ep event.Webhook, cur *event.Delivery) time.Time {
	target := Endpoint{URL: ep.URL, Secrets: [][]byte{[]byte(ep.Secret)}}
	dirty := false
	save := func() bool {
		if !dirty {
			return true
		}
		if err := d.src.SaveWebhookDelivery(ctx, ep.ID, *cur); err != nil {
			if ctx.Err() == nil {
				d.log.Error("webhook: save delivery state", "webhook_id", ep.ID, "err", err)
			}
			return false
		}
		dirty = false
		return true
	}
	defer save()
	for ctx.Err() == nil {
		if now := d.clock.Now(); !cur.NextAttempt.IsZero() && now.Before(cur.NextAttempt) {
			return cur.NextAttempt
		}
		evs, err := d.src.WebhookEvents(ctx, ep.TenantID, cur.LastSeq, pageSize)
		if err != nil {
			if ctx.Err() == nil {
				d.log.Error("webhook: read events", "webhook_id", ep.ID, "err", err)
			}
			return d.clock.Now().Add(errorRetry)
		}
		if len(evs) == 0 {
			return time.Time{}
		}
		for _, ev := range evs {
			res := d.attempt(ctx, target, ev)
			if ctx.Err() != nil {
				return time.Time{} // shutting down: this attempt does not count
			}
			if res.OK() {
				*cur = event.Delivery{LastSeq: ev.Seq, LastStatus: res.Status}
				dirty = true
				continue
			}
			cur.Attempts++
			cur.LastStatus, cur.LastError = res.Status, redact(res.Err.Error(), ep.URL)
			cur.NextAttempt = time.Time{}
			dirty = true
			if delay, ok := d.backoff.Delay(ev.ID(), cur.Attempts); ok && res.Retryable() {
				cur.NextAttempt = d.clock.Now().Add(delay)
				save()
				return cur.NextAttempt
			}
			d.log.Warn("webhook: event given up", "webhook_id", ep.ID, "event_id", ev.ID(), "attempts", cur.Attempts,
				"status", res.Status, "err", cur.LastError)
			cur.LastSeq, cur.Attempts = ev.Seq, 0
			save()
		}
		if !save() {
			return d.clock.Now().Add(errorRetry)
		}
	}
	return time.Time{}
}

// attempt makes one attempt of ev to target, refused without a call when
// the URL is plain http and the operator has not allowed it (an endpoint
// registered before the server was restarted without
// --webhook-allow-http).
func (d *Dispatcher) attempt(ctx context.Context, target Endpoint, ev event.Event) Result {
	if !d.egress.AllowHTTP && !strings.HasPrefix(strings.ToLower(target.URL), "https://") {
		return Result{Err: fmt.Errorf("webhook %s: %w", ev.ID(),
			&egress.BlockedError{Range: "plain http webhooks are not allowed (the operator may allow them with --webhook-allow-http)"})}
	}
	return Attempt(ctx, d.client, target, Event{ID: ev.ID(), Type: string(ev.Type), Body: Payload(ev)}, d.clock.Now())
}

// redact replaces rawURL in msg by its scheme, host and path: a query may
// hold the receiver's token, which must not reach logs or the API.
func redact(msg, rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return strings.ReplaceAll(msg, rawURL, "(webhook URL)")
	}
	return strings.ReplaceAll(msg, rawURL, (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}).String())
}

// payload is an event on the wire: the body of a webhook call and the
// data of a server-sent event.
type payload struct {
	ID     string          `json:"id"`
	Seq    int64           `json:"seq"`
	At     time.Time       `json:"at"`
	Type   string          `json:"type"`
	Tenant string          `json:"tenant,omitempty"`
	Lease  string          `json:"lease,omitempty"`
	Data   json.RawMessage `json:"data"`
}

// Payload returns the JSON body of ev's webhook call: {"id", "seq", "at",
// "type", "tenant", "lease", "data"} (tenant and lease left out when
// empty).
func Payload(ev event.Event) []byte {
	data := ev.Data
	if len(data) == 0 {
		data = json.RawMessage("null")
	}
	b, err := json.Marshal(payload{ID: ev.ID(), Seq: ev.Seq, At: ev.At.UTC(), Type: string(ev.Type), Tenant: ev.TenantID,
		Lease: ev.LeaseID, Data: data})
	if err != nil {
		// Only data that is not JSON fails, and the store refuses it.
		b, _ = json.Marshal(payload{ID: ev.ID(), Seq: ev.Seq, At: ev.At.UTC(), Type: string(ev.Type), Tenant: ev.TenantID,
			Lease: ev.LeaseID, Data: json.RawMessage("null")})
	}
	return b
}

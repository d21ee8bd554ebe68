package engine

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/neocloud/neocloud/internal/egress"
	"github.com/neocloud/neocloud/internal/event"
	"github.com/neocloud/neocloud/internal/fleet"
	"github.com/neocloud/neocloud/internal/lease"
	"github.com/neocloud/neocloud/internal/tenant"
	"github.com/neocloud/neocloud/internal/valid"
)

// Commands put what they did in their effect's events; the group commit
// appends them to the store's outbox in the transaction that writes the
// effects (so an event exists exactly when its change does), numbered in
// commit order. Readers (the event stream, the webhook dispatcher) read
// the outbox after a cursor and wait on EventsChanged for more.

// notifier wakes whoever waits for the next commit that appended events:
// wait returns a channel that notify closes. The zero value is ready.
type notifier struct {
	mu sync.Mutex
	ch chan struct{} // nil until someone waits
}

func (n *notifier) wait() <-chan struct{} {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.ch == nil {
		n.ch = make(chan struct{})
	}
	return n.ch
}

func (n *notifier) notify() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.ch != nil {
		close(n.ch)
		n.ch = nil
	}
}

// eventsCommitted wakes the waiters when one of the committed effects
// appended events.
func (e *Engine) eventsCommitted(effects []*effect) {
	for _, eff := range effects {
		if eff != nil && len(eff.events) > 0 {
			e.events.notify()
			return
		}
	}
}

// EventsChanged returns a channel closed when, after this call, a commit
// appends events or a webhook endpoint is created or deleted. Take it
// before reading the events, then wait on it: an event committed in
// between closes it, so none is missed.
func (e *Engine) EventsChanged() <-chan struct{} { return e.events.wait() }

// MaxEventsPage bounds one read of events.
const MaxEventsPage = 1000

// Events returns up to limit events with Seq above after, by Seq (limit
// <= 0 means 100, and at most MaxEventsPage): a tenant's own events for a
// tenant key, every event (operator-only ones too) for an operator.
func (e *Engine) Events(ctx context.Context, p tenant.Principal, after int64, limit int) ([]event.Event, error) {
	scope, err := e.scope(ctx, p, tenant.PermEventsRead, "events.list", "")
	if err != nil {
		return nil, err
	}
	if scope == "" && !p.Role.IsOperator() {
		// Only operators read every tenant's events; a tenant key always
		// has its tenant, and anything else sees nothing.
		return nil, tenant.ErrNotFound
	}
	return e.WebhookEvents(ctx, scope, after, limit)
}

// RecentEvents returns up to limit events with Seq below before (0: no
// bound), newest first, scoped as Events scopes them: a tenant's own for a
// tenant key, every event for an operator. The store reads them from its
// (tenant, seq) index, so a quiet tenant's events are found however many
// other events the fleet has committed since.
func (e *Engine) RecentEvents(ctx context.Context, p tenant.Principal, before int64, limit int) ([]event.Event, error) {
	scope, err := e.scope(ctx, p, tenant.PermEventsRead, "events.list", "")
	if err != nil {
		return nil, err
	}
	if scope == "" && !p.Role.IsOperator() {
		return nil, tenant.ErrNotFound
	}
	if limit <= 0 {
		limit = 100
	}
	return e.store.Events(ctx, EventFilter{TenantID: scope, Before: before, Newest: true, Limit: min(limit, MaxEventsPage)})
}

// LastEventSeq returns the Seq of the last event committed (0 when none),
// where a reader that wants only new events starts.
func (e *Engine) LastEventSeq(ctx context.Context) (int64, error) {
	return e.store.LastEventSeq(ctx)
}

// WebhookEndpoints returns every enabled webhook endpoint with its
// delivery state, for the dispatcher. It checks no permission: it is the
// server's own work, not a caller's.
func (e *Engine) WebhookEndpoints(ctx context.Context) ([]event.Webhook, error) {
	return e.store.Webhooks(ctx, WebhookFilter{})
}

// WebhookEvents returns up to limit events with Seq above after, by Seq:
// tenantID's only, or every event for "" (an operator endpoint). It
// checks no permission (the dispatcher's and Events' read).
func (e *Engine) WebhookEvents(ctx context.Context, tenantID string, after int64, limit int) ([]event.Event, error) {
	if limit <= 0 {
		limit = 100
	}
	return e.store.Events(ctx, EventFilter{TenantID: tenantID, After: after, Limit: min(limit, MaxEventsPage)})
}

// SaveWebhookDelivery writes endpoint id's delivery state (the
// dispatcher's cursor). Not audited: it records deliveries, not changes
// anyone asked for.
func (e *Engine) SaveWebhookDelivery(ctx context.Context, id string, d event.Delivery) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.store.Update(ctx, func(tx Tx) error { return tx.UpdateWebhookDelivery(ctx, id, d) })
}

// MaxWebhookURL bounds a webhook URL's length.
const MaxWebhookURL = 2048

// validWebhookURL checks that raw is an absolute https URL (http too when
// the policy allows it) with a host, without credentials or a fragment,
// whose host is not a literal IP in a blocked range. A host name is not
// resolved here: the dispatcher checks the address it connects to.
func validWebhookURL(raw string, policy egress.Policy) error {
	var v valid.Error
	u, err := url.Parse(raw)
	switch {
	case raw == "":
		v.Add("url", nil, "is required: an absolute http or https URL")
	case len(raw) > MaxWebhookURL:
		v.Add("url", nil, "must be at most %d characters", MaxWebhookURL)
	case !tenant.ValidText(raw) || strings.ContainsAny(raw, " \t"):
		v.Add("url", nil, "must be printable text without spaces")
	case err != nil || !u.IsAbs() || (u.Scheme != "http" && u.Scheme != "https") || u.Opaque != "" || u.Hostname() == "":
		v.Add("url", raw, "must be an absolute http or https URL with a host, such as https://hooks.example.com/neocloud")
	case u.User != nil:
		// Not echoed: it holds a password.
		v.Add("url", nil, "must not carry credentials (user:password@): calls are authenticated by their signature")
	case u.Fragment != "":
		v.Add("url", raw, "must not have a #fragment")
	default:
		if rule := policy.URLIssue(u); rule != "" {
			v.Add("url", auditURL(raw), "%s", rule)
		}
	}
	return v.Err()
}

// auditURL is what the audit log keeps of a webhook URL: its scheme, host
// and path, not its query, which may hold a receiver's token.
func auditURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	return (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}).String()
}

// CreateWebhook registers url to receive events by signed POST and
// returns the endpoint and its signing secret, which is shown this once.
// tenantID "" means the caller's tenant for a tenant key and, for an
// operator, an operator endpoint that receives every event; an operator
// may also name a tenant. A *valid.Error for a bad URL or an unknown
// tenant; tenant.ErrNotFound for another tenant's. The endpoint receives
// the events committed after it.
func (e *Engine) CreateWebhook(ctx context.Context, p tenant.Principal, tenantID, rawURL string) (event.Webhook, string, error) {
	if tenantID == "" {
		tenantID = p.Scope()
	}
	object := "webhooks"
	if tenantID != "" {
		object = "tenant/" + tenantID
	}
	if err := e.check(ctx, p, tenant.PermWebhooksWrite, "webhooks.create", object, tenantID); err != nil {
		return event.Webhook{}, "", err
	}
	if tenantID == "" && !p.Role.IsOperator() {
		return event.Webhook{}, "", tenant.ErrNotFound
	}
	if err := validWebhookURL(rawURL, e.egress); err != nil {
		return event.Webhook{}, "", err
	}
	if tenantID != "" {
		if _, err := e.store.Tenant(ctx, tenantID); errors.Is(err, ErrNotFound) {
			var v valid.Error
			v.Add("tenant", tenantID, "must name an existing tenant")
			return event.Webhook{}, "", v.Err()
		} else if err != nil {
			return event.Webhook{}, "", err
		}
	}
	var buf [40]byte
	if _, err := io.ReadFull(e.rand, buf[:]); err != nil {
		return event.Webhook{}, "", fmt.Errorf("webhook: random: %w", err)
	}
	w := event.Webhook{ID: "wh_" + hex.EncodeToString(buf[:8]), TenantID: tenantID, URL: rawURL,
		Secret: hex.EncodeToString(buf[8:]), Created: e.clock.Now()}
	err := e.write(ctx, p, func(tx Tx) (*tenant.AuditEntry, error) {
		// From now on: an endpoint is not sent the history before it.
		seq, err := tx.LastEventSeq(ctx)
		if err != nil {
			return nil, err
		}
		w.Delivery.LastSeq = seq
		if err := tx.CreateWebhook(ctx, w); err != nil {
			return nil, err
		}
		return &tenant.AuditEntry{Action: "webhooks.create", Object: "webhook/" + w.ID, TenantID: tenantID,
			Detail: fmt.Sprintf("url=%q", auditURL(rawURL))}, nil
	})
	if err != nil {
		return event.Webhook{}, "", fmt.Errorf("webhook: %w", err)
	}
	e.events.notify() // the dispatcher picks the endpoint up
	secret := w.Secret
	w.Secret = ""
	return w, secret, nil
}

// Webhooks lists the enabled webhook endpoints p may see, without their
// secrets: a tenant's own for a tenant key; for an operator, tenantID's,
// or every endpoint for "".
func (e *Engine) Webhooks(ctx context.Context, p tenant.Principal, tenantID string) ([]event.Webhook, error) {
	scope, err := e.scope(ctx, p, tenant.PermWebhooksRead, "webhooks.list", tenantID)
	if err != nil {
		return nil, err
	}
	if scope == "" && !p.Role.IsOperator() {
		return nil, tenant.ErrNotFound
	}
	ws, err := e.store.Webhooks(ctx, WebhookFilter{TenantID: scope})
	if err != nil {
		return nil, err
	}
	for i := range ws {
		ws[i].Secret = ""
	}
	return ws, nil
}

// DeleteWebhook disables endpoint id: nothing more is sent to it. It
// returns the endpoint (without its secret); deleting twice is not an
// error. tenant.ErrNotFound for a missing or foreign endpoint (an
// operator endpoint is foreign to every tenant).
func (e *Engine) DeleteWebhook(ctx context.Context, p tenant.Principal, id string) (event.Webhook, error) {
	w, lookupErr := e.store.Webhook(ctx, id)
	owner := w.TenantID
	switch {
	case errors.Is(lookupErr, ErrNotFound):
		owner = tenant.Missing
	case lookupErr != nil:
		return event.Webhook{}, lookupErr
	}
	if err := e.check(ctx, p, tenant.PermWebhooksWrite, "webhooks.delete", "webhook/"+id, owner); err != nil {
		return event.Webhook{}, err
	}
	if lookupErr != nil {
		return event.Webhook{}, lookupErr
	}
	w.Secret = ""
	if !w.Disabled.IsZero() {
		return w, nil
	}
	w.Disabled = e.clock.Now()
	err := e.write(ctx, p, func(tx Tx) (*tenant.AuditEntry, error) {
		if err := tx.DisableWebhook(ctx, id, w.Disabled); err != nil {
			return nil, err
		}
		return &tenant.AuditEntry{Action: "webhooks.delete", Object: "webhook/" + id, TenantID: w.TenantID,
			Detail: fmt.Sprintf("url=%q", auditURL(w.URL))}, nil
	})
	if err != nil {
		return event.Webhook{}, fmt.Errorf("webhook %s: %w", id, err)
	}
	e.events.notify() // the dispatcher drops the endpoint
	return w, nil
}

// The events of the lease and node commands (leases.go): built while the
// command is applied, committed with its effects.

// leaseCreatedEvents returns the lease.created event of l, with the data
// {kind, pool, start, end, gpus, allocations}, built without reflection:
// every admission makes one.
func leaseCreatedEvents(now time.Time, l *lease.Lease, allocs []lease.Allocation) []event.Event {
	o := event.NewObject(160)
	o.String("kind", string(l.Kind))
	o.String("pool", l.Pool)
	o.Time("start", l.Start.UTC())
	o.Time("end", l.End.UTC())
	o.Int("gpus", int64(l.MaxGPUs()))
	o.Int("allocations", int64(len(allocs)))
	return []event.Event{o.Event(now, event.LeaseCreated, l.TenantID, l.ID)}
}

func leaseCancelledEvents(now time.Time, l *lease.Lease, ch changes) []event.Event {
	return []event.Event{event.New(now, event.LeaseCancelled, l.TenantID, l.ID, struct {
		Reason           string `json:"reason"`
		AllocationsEnded int    `json:"allocations_ended"`
	}{l.Reason, len(ch.ends)})}
}

// nodeStateEvents returns, for a node moved from old to n.State: the
// operators' node.state event, then per guaranteed lease holding it one
// allocation.replaced event when it got replacement nodes and one
// lease.shortfall event per shortfall, each for the lease's tenant. An
// ended allocation counts as replaced unless it has a shortfall (whose ID
// is the allocation's + ".short", see capState.evict).
func nodeStateEvents(c *capState, now time.Time, n fleet.Node, old fleet.State, reason string, ch changes) []event.Event {
	out := []event.Event{event.New(now, event.NodeState, "", "", struct {
		Node             string      `json:"node"`
		State            fleet.State `json:"state"`
		From             fleet.State `json:"from"`
		Reason           string      `json:"reason,omitempty"`
		AllocationsEnded int         `json:"allocations_ended"`
		Replaced         int         `json:"replaced"`
		Shortfalls       int         `json:"shortfalls"`
	}{n.Name, n.State, old, reason, len(ch.ends), ch.replaced, len(ch.shortfalls)})}

	short := make(map[string]bool, len(ch.shortfalls))
	for _, s := range ch.shortfalls {
		short[s.ID] = true
	}
	type replaced struct{ ended, allocs []string }
	var order []string
	byLease := map[string]*replaced{}
	for _, aid := range ch.ends {
		i := strings.LastIndexByte(aid, '.') // an allocation's ID is its lease's + "." + a number
		if i < 0 {
			continue
		}
		lid := aid[:i]
		l := c.leases[lid]
		if l == nil || !l.Kind.Guaranteed() || short[aid+".short"] {
			continue
		}
		r := byLease[lid]
		if r == nil {
			r = &replaced{}
			byLease[lid] = r
			order = append(order, lid)
		}
		r.ended = append(r.ended, aid)
	}
	for _, a := range ch.allocs {
		if r := byLease[a.LeaseID]; r != nil {
			r.allocs = append(r.allocs, a.ID)
		}
	}
	for _, lid := range order {
		r := byLease[lid]
		out = append(out, event.New(now, event.AllocationReplaced, c.leases[lid].TenantID, lid, struct {
			Node        string   `json:"node"`
			Ended       []string `json:"ended"`
			Allocations []string `json:"allocations"`
		}{n.Name, r.ended, r.allocs}))
	}
	for _, s := range ch.shortfalls {
		out = append(out, event.New(now, event.Shortfall, s.TenantID, s.LeaseID, struct {
			Shortfall string    `json:"shortfall"`
			Node      string    `json:"node"`
			GPUs      int64     `json:"gpus"`
			From      time.Time `json:"from"`
			To        time.Time `json:"to"`
		}{s.ID, s.Node, int64(s.GPUs), s.From.UTC(), s.To.UTC()}))
	}
	return out
}

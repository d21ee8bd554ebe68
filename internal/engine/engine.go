package engine

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"strconv"
	"sync"
	"time"

	"github.com/neocloud/neocloud/internal/clock"
	"github.com/neocloud/neocloud/internal/egress"
	"github.com/neocloud/neocloud/internal/handover"
	"github.com/neocloud/neocloud/internal/meter"
	"github.com/neocloud/neocloud/internal/spot"
	"github.com/neocloud/neocloud/internal/tenant"
)

// Engine applies commands one at a time. Its methods are safe for
// concurrent use: writes are serialised, reads go to the store directly.
type Engine struct {
	store Store
	clock clock.Clock
	log   *slog.Logger
	rand  io.Reader

	mu sync.Mutex // the single writer

	// Capacity: the in-memory calendars and placement index (nil until
	// first use, and after a fleet change), guarded by capMu; capacity
	// commands go through ops to the writer goroutine (batch.go).
	horizon time.Duration
	capMu   sync.RWMutex
	cap     *capState
	gen     uint64 // bumped when the in-memory capacity is dropped after a failed commit
	ops     chan *op
	// Spot policies and the wipe time, handed to every capacity state.
	spotPolicies map[string]spot.Policy
	sanitize     time.Duration
	egress       egress.Policy // where webhook URLs may point
	applied      time.Time     // the time the last command applied at (writer only)
	writerOnce   sync.Once
	closeOnce    sync.Once
	closed       chan struct{}
	tenants      sync.Map // tenant IDs known to exist

	// Active keys by hash, so that authenticating a request reads no
	// store; a revocation empties it (one server per database: another
	// process's revocation is not seen until restart — see docs).
	keyMu    sync.Mutex
	keyCache map[string]tenant.Key
	keyGen   uint64

	// idem indexes the remembered idempotency keys (idemindex.go).
	idem idemIndex

	// meter is telemetry ingestion (meter.go).
	meter *meterState
	// prices is the last spot price recorded per pool and tier (billing.go).
	prices spotPriceLog

	// events wakes the readers of the event outbox after a commit that
	// appended to it (events.go).
	events notifier
}

// Config holds the engine's dependencies; Store is required, the others
// default to the real clock, a discarding logger, crypto/rand and
// DefaultHorizon.
type Config struct {
	Store  Store
	Clock  clock.Clock
	Logger *slog.Logger
	Rand   io.Reader
	// Horizon is how far ahead leases may be booked.
	Horizon time.Duration
	// Spot holds spot policies (price curve, notice tiers, buffer) by
	// pool ID or GPU model; other pools get spot.DefaultPolicy of
	// DefaultSpotBase. Each must be valid.
	Spot map[string]spot.Policy
	// Sanitize is how long a wipe lasts unless confirmed; 0 means
	// handover.DefaultSanitize.
	Sanitize time.Duration
	// Meter tunes telemetry ingestion (zero fields: meter's defaults);
	// Health the health rules (a zero Policy means Meter's).
	Meter  meter.Config
	Health meter.WatchOptions
	// Egress is where webhook URLs may point (https only and no literal
	// IP in the server's own networks, by default); the dispatcher
	// applies the same policy when it connects.
	Egress egress.Policy
}

// New returns an engine over cfg.Store.
func New(cfg Config) (*Engine, error) {
	if cfg.Store == nil {
		return nil, errors.New("engine: a store is required")
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	if cfg.Horizon == 0 {
		cfg.Horizon = DefaultHorizon
	}
	if cfg.Horizon < time.Hour || cfg.Horizon > 50*365*24*time.Hour {
		return nil, fmt.Errorf("engine: horizon %s: must be between 1h and 50 years", cfg.Horizon)
	}
	if cfg.Sanitize == 0 {
		cfg.Sanitize = handover.DefaultSanitize
	}
	if cfg.Sanitize < time.Minute || cfg.Sanitize > 7*24*time.Hour {
		return nil, fmt.Errorf("engine: sanitize %s: must be between 1m and 7 days", cfg.Sanitize)
	}
	for k, pol := range cfg.Spot {
		if err := pol.Validate(); err != nil {
			return nil, fmt.Errorf("engine: spot policy of %s: %w", k, err)
		}
	}
	ms, err := newMeterState(cfg.Meter, cfg.Health)
	if err != nil {
		return nil, fmt.Errorf("engine: %w", err)
	}
	return &Engine{store: cfg.Store, meter: ms, clock: cfg.Clock, log: cfg.Logger, rand: cfg.Rand, horizon: cfg.Horizon.Truncate(time.Hour),
		spotPolicies: maps.Clone(cfg.Spot), sanitize: cfg.Sanitize, egress: cfg.Egress,
		ops: make(chan *op, maxBatch), closed: make(chan struct{}), keyCache: map[string]tenant.Key{}}, nil
}

// Clock returns the engine's clock.
func (e *Engine) Clock() clock.Clock { return e.clock }

// write runs fn as one command: under the writer lock, in one transaction,
// with the audit entry for it appended in the same transaction. fn returns
// the entry to append (its At, Actor and RequestID are filled in here);
// a nil entry appends nothing.
func (e *Engine) write(ctx context.Context, p tenant.Principal, fn func(Tx) (*tenant.AuditEntry, error)) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.store.Update(ctx, func(tx Tx) error {
		entry, err := fn(tx)
		if err != nil {
			return err
		}
		if entry == nil {
			return nil
		}
		e.stamp(ctx, p, entry)
		if _, err := tx.AppendAudit(ctx, *entry); err != nil {
			return fmt.Errorf("audit: %w", err)
		}
		return nil
	})
}

func (e *Engine) stamp(ctx context.Context, p tenant.Principal, entry *tenant.AuditEntry) {
	entry.Object = auditText(entry.Object)
	entry.Detail = auditText(entry.Detail)
	entry.At = e.clock.Now()
	entry.Actor = p
	entry.RequestID = RequestID(ctx)
	if entry.Outcome == "" {
		entry.Outcome = tenant.OutcomeOK
	}
}

// RecordDenial appends a denied request to the audit log. action names what
// was attempted ("GET /v1/nodes"); object may be empty. The entry is filed
// under the caller's tenant, not the object's owner: a tenant's admin sees
// its own keys' denials, and nobody learns who probed their objects' IDs.
func (e *Engine) RecordDenial(ctx context.Context, p tenant.Principal, action, object, detail string) {
	entry := tenant.AuditEntry{Action: action, Object: object, TenantID: p.TenantID, Outcome: tenant.OutcomeDenied, Detail: detail}
	e.stamp(ctx, p, &entry)
	// A caller that hangs up must not escape the audit log: the write
	// outlives the request's context, bounded by its own timeout.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	e.mu.Lock()
	defer e.mu.Unlock()
	err := e.store.Update(ctx, func(tx Tx) error {
		_, err := tx.AppendAudit(ctx, entry)
		return err
	})
	if err != nil {
		// The caller is already being refused; losing the audit line is
		// logged loudly rather than turned into a 500.
		e.log.Error("audit denial", "err", err, "action", action, "key_id", p.KeyID)
	}
}

// check applies the object-level rule and audits a denial.
func (e *Engine) check(ctx context.Context, p tenant.Principal, perm tenant.Permission, action, object, owner string) error {
	err := p.Check(perm, owner)
	if err != nil {
		e.RecordDenial(ctx, p, action, object, err.Error())
	}
	return err
}

type requestIDKey struct{}

// WithRequestID returns ctx carrying a request ID for audit entries.
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDKey{}, id)
}

// RequestID returns the request ID carried by ctx, or "".
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// scope returns the tenant a list must be narrowed to. Operators get what
// they asked for ("" = every tenant); a tenant principal gets its own
// tenant, and asking for another one answers tenant.ErrNotFound.
func (e *Engine) scope(ctx context.Context, p tenant.Principal, perm tenant.Permission, action, requested string) (string, error) {
	if own := p.Scope(); own != "" && requested == "" {
		requested = own
	}
	owner := requested
	if p.Role.IsOperator() {
		owner = "" // Check ignores owners for operators
	}
	object := ""
	if requested != "" {
		object = "tenant/" + requested
	}
	if err := e.check(ctx, p, perm, action, object, owner); err != nil {
		return "", err
	}
	return requested, nil
}

// auditText makes caller-supplied text fit for the append-only log: key
// secrets become key IDs, and text that is not valid UTF-8 or has control
// characters (which PostgreSQL refuses) is quoted with escapes.
func auditText(s string) string {
	s = tenant.RedactSecrets(s)
	if !tenant.ValidText(s) {
		s = strconv.QuoteToASCII(s)
	}
	return s
}

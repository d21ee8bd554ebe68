package engine

import (
	"context"
	"errors"
	"time"

	"github.com/neocloud/neocloud/internal/billing"
	"github.com/neocloud/neocloud/internal/demand"
	"github.com/neocloud/neocloud/internal/event"
	"github.com/neocloud/neocloud/internal/fleet"
	"github.com/neocloud/neocloud/internal/lease"
	"github.com/neocloud/neocloud/internal/meter"
	"github.com/neocloud/neocloud/internal/money"
	"github.com/neocloud/neocloud/internal/tenant"
	"github.com/neocloud/neocloud/internal/unit"
)

// Store is the persistence the engine needs. Reads may run concurrently
// with each other and with one Update; Update runs fn in one transaction and
// commits only when fn returns nil. Implementations: store/sqlite and
// store/postgres; store/storetest is their conformance suite.
type Store interface {
	Reader
	// Update runs fn in one read-write transaction. The engine calls it
	// from a single goroutine at a time.
	Update(ctx context.Context, fn func(Tx) error) error
	Close() error
}

// Reader is the read side of the store. Methods return ErrNotFound for a
// missing single object; list methods return an empty slice, not nil error,
// when nothing matches.
type Reader interface {
	// Sites returns the sites in service with their power domains, by name.
	Sites(ctx context.Context) ([]fleet.Site, error)
	// Pools returns per-pool counts of nodes in service, by pool ID;
	// site "" means every site.
	Pools(ctx context.Context, site string) ([]fleet.Pool, error)
	// Nodes returns one page of nodes in service, ordered by name, with
	// their ordinals (as every read of nodes does).
	Nodes(ctx context.Context, f NodeFilter) ([]fleet.Node, error)
	// AllNodes returns every node in service, ordered by name.
	AllNodes(ctx context.Context) ([]fleet.Node, error)
	// LatestFleetRevision returns the last applied fleet revision, or
	// ErrNotFound when none was applied.
	LatestFleetRevision(ctx context.Context) (FleetRevision, error)

	Tenant(ctx context.Context, id string) (tenant.Tenant, error)
	Tenants(ctx context.Context) ([]tenant.Tenant, error)
	// KeyByHash returns the key with that hash, revoked or not.
	KeyByHash(ctx context.Context, hash string) (tenant.Key, error)
	Key(ctx context.Context, id string) (tenant.Key, error)
	// Keys returns keys ordered by creation time then ID; tenant "" means
	// all keys, operator keys included.
	Keys(ctx context.Context, f KeyFilter) ([]tenant.Key, error)
	// CountKeys returns how many keys exist, revoked or not.
	CountKeys(ctx context.Context) (int64, error)
	// Audit returns entries newest first.
	Audit(ctx context.Context, f AuditFilter) ([]tenant.AuditEntry, error)
	// Idempotent returns the response remembered for (scope, key) if it
	// was created at or after notBefore, else ErrNotFound.
	Idempotent(ctx context.Context, scope, key string, notBefore time.Time) (IdempotentResponse, error)

	// Lease returns the lease with that ID, or ErrNotFound.
	Lease(ctx context.Context, id string) (lease.Lease, error)
	// Leases returns the leases f selects, ordered by ID.
	Leases(ctx context.Context, f LeaseFilter) ([]lease.Lease, error)
	// Allocations returns the allocations f selects, ordered by lease ID,
	// start, first node ordinal and ID.
	Allocations(ctx context.Context, f AllocationFilter) ([]lease.Allocation, error)
	// Holdback returns every pool's holdback schedule, by pool ID, each
	// ordered by From; an empty map when no pool has one.
	Holdback(ctx context.Context) (map[string][]HoldbackStep, error)
	// Shortfalls returns the shortfalls of one lease, or of every lease
	// when leaseID is "", ordered by From then ID.
	Shortfalls(ctx context.Context, leaseID string) ([]lease.Shortfall, error)
	// ShortfallCounts returns how many shortfalls each of leaseIDs has
	// (at most MaxLeasePage of them); a lease without any is absent.
	ShortfallCounts(ctx context.Context, leaseIDs []string) (map[string]int, error)
	// Demand returns pool's measured internal demand over [from, to),
	// ordered by hour; a zero to means no end.
	Demand(ctx context.Context, pool string, from, to time.Time) ([]demand.Sample, error)

	// Events returns the events f selects, ordered by Seq (newest first
	// when f.Newest).
	Events(ctx context.Context, f EventFilter) ([]event.Event, error)

	// UsageRows returns the hourly rollup rows f selects, ordered by hour,
	// pool, use and lease.
	UsageRows(ctx context.Context, f UsageFilter) ([]meter.Row, error)
	// Findings returns the health findings f selects, newest first.
	Findings(ctx context.Context, f FindingFilter) ([]meter.Finding, error)
	// UsageByLease returns, per lease, the sums of its rollup rows with
	// hours in [from, to).
	UsageByLease(ctx context.Context, from, to time.Time) (map[string]meter.Usage, error)
	// UnhealthyHours returns the lease rows with hours in [from, to) whose
	// healthy time is below their covered time, by hour.
	UnhealthyHours(ctx context.Context, from, to time.Time) ([]meter.Row, error)

	// Plan returns lease id's price plan, or ErrNotFound.
	Plan(ctx context.Context, leaseID string) (billing.Plan, error)
	// Plans returns every lease's price plan, by lease ID.
	Plans(ctx context.Context) (map[string]billing.Plan, error)
	// SpotPrices returns the price points of pool with From in [from, to),
	// preceded by the last one before from (the price in effect at from),
	// ordered by tier then From.
	SpotPrices(ctx context.Context, pool string, from, to time.Time) ([]SpotPrice, error)
	// Invoice returns the invoice with that ID, lines included, or
	// ErrNotFound.
	Invoice(ctx context.Context, id string) (billing.Invoice, error)
	// Invoices returns the invoices f selects without their lines, by
	// month then tenant then ID.
	Invoices(ctx context.Context, f InvoiceFilter) ([]billing.Invoice, error)
	// InvoiceLines returns the lines of every invoice of the months in
	// [from, to) that is not void, by invoice ID.
	InvoiceLines(ctx context.Context, from, to time.Time) (map[string][]billing.Line, error)
	// CreditNotes returns the credit notes against an invoice ("" every
	// one), by issue time.
	CreditNotes(ctx context.Context, invoiceID string) ([]billing.CreditNote, error)
	// LastEventSeq returns the Seq of the last event appended, 0 when
	// there is none.
	LastEventSeq(ctx context.Context) (int64, error)
	// Webhook returns the webhook endpoint with that ID, disabled or not,
	// or ErrNotFound.
	Webhook(ctx context.Context, id string) (event.Webhook, error)
	// Webhooks returns the endpoints f selects, ordered by creation time
	// then ID.
	Webhooks(ctx context.Context, f WebhookFilter) ([]event.Webhook, error)
}

// Tx is one read-write transaction. Its reads see its own writes.
type Tx interface {
	Reader
	// ApplyFleet writes a fleet change: upserts the sites and power domains
	// of c.Sites, retires the sites in c.RetireSites, inserts c.Add (a node of the same
	// name that was retired comes back in service in the state it left in,
	// so a node retired while sanitizing still sanitizes, and with its
	// ordinal; a new node gets the next ordinal, in c.Add order), updates
	// c.Update (all fields but State, Retired and Ordinal), and marks
	// c.Retire retired at c.At. It records c.Revision.
	ApplyFleet(ctx context.Context, c FleetChange) error
	// HeldNodes returns the names among nodes that have an allocation
	// ending after t (held now or later), sorted; names of no node are
	// left out.
	HeldNodes(ctx context.Context, nodes []string, t time.Time) ([]string, error)
	// InsertAllocations stores every allocation of as, in order. It
	// returns, looking for them in this order: a plain error for an empty
	// run or interval; one wrapping ErrNotFound when a run includes an
	// ordinal of no node in service; tenant.ErrExists for a taken ID (or
	// one given twice); ErrConflict naming the first allocation that
	// overlaps a stored one or an earlier one of as. After an error the
	// transaction stays usable and nothing of as is stored.
	InsertAllocations(ctx context.Context, as []lease.Allocation) error
	// EndAllocations ends each allocation of ids at at: it is deleted when
	// it starts at or after at, else its End becomes at when End is later.
	// An unknown ID is an error wrapping ErrNotFound, and then nothing
	// changes.
	EndAllocations(ctx context.Context, ids []string, at time.Time) error
	// UpsertDemand stores samples, each replacing any stored for its pool
	// and hour. A (pool, hour) given twice is a plain error and stores
	// nothing.
	UpsertDemand(ctx context.Context, samples []demand.Sample) error
	// InsertLease stores l; tenant.ErrExists when the ID is taken.
	InsertLease(ctx context.Context, l lease.Lease) error
	// InsertLeases stores every lease of ls; tenant.ErrExists when an ID
	// is taken or given twice. After an error the transaction stays usable
	// and nothing of ls is stored.
	InsertLeases(ctx context.Context, ls []lease.Lease) error
	// UpdateLease writes l's State, Reason, End, Cancelled and Noticed over the
	// stored lease of l.ID; ErrNotFound when there is none.
	UpdateLease(ctx context.Context, l lease.Lease) error
	// InsertShortfall stores s; tenant.ErrExists when the ID is taken.
	InsertShortfall(ctx context.Context, s lease.Shortfall) error
	// SetNodeState sets the state of the named node; ErrNotFound when no
	// node of that name is in service.
	SetNodeState(ctx context.Context, name string, s fleet.State) error
	// SetHoldback replaces the holdback schedule of pool (a pool ID) with
	// steps, whose From must be strictly increasing; no steps removes it.
	SetHoldback(ctx context.Context, pool string, steps []HoldbackStep) error

	// CreateTenant returns tenant.ErrExists when the ID is taken.
	CreateTenant(ctx context.Context, t tenant.Tenant) error
	// CreateKey returns tenant.ErrExists when the ID or hash is taken.
	CreateKey(ctx context.Context, k tenant.Key) error
	// RevokeKey sets the revocation time; ErrNotFound when no such key.
	RevokeKey(ctx context.Context, id string, at time.Time) error
	// AppendAudit appends e and returns its sequence number.
	AppendAudit(ctx context.Context, e tenant.AuditEntry) (int64, error)
	// AppendAudits appends es in order (sequence numbers increasing).
	AppendAudits(ctx context.Context, es []tenant.AuditEntry) error
	// RememberResponses stores rs, each replacing a record of the same
	// scope and key (of two in rs, the later), and deletes every record
	// created before expireBefore.
	RememberResponses(ctx context.Context, rs []IdempotentResponse, expireBefore time.Time) error

	// AppendEvents appends es in order; the store numbers them (their Seq
	// is ignored), each above every event appended before. Data must be a
	// JSON value (nil stores null).
	AppendEvents(ctx context.Context, es []event.Event) error
	// Meter returns the transaction's telemetry side, bound to ctx.
	Meter(ctx context.Context) MeterTx
	// SetPlan stores lease id's price plan, replacing any.
	SetPlan(ctx context.Context, leaseID string, p billing.Plan, at time.Time) error
	// AppendSpotPrices stores price points; a point already stored (pool,
	// tier, From) is an error.
	AppendSpotPrices(ctx context.Context, ps []SpotPrice) error
	// PutDraft stores a draft invoice with its lines, replacing the draft
	// of its tenant and month if there is one (lines included). A
	// finalized or paid invoice of the tenant and month is an error
	// wrapping ErrConflict.
	PutDraft(ctx context.Context, inv billing.Invoice) error
	// DeleteDraft deletes a draft invoice and its lines; an invoice that
	// is not a draft is left alone (an error wrapping ErrConflict).
	DeleteDraft(ctx context.Context, id string) error
	// UpdateInvoice writes inv over the stored invoice of its ID: lines,
	// total, hash and state (the database refuses any change to a
	// finalized invoice but its move to paid or void).
	UpdateInvoice(ctx context.Context, inv billing.Invoice) error
	// InsertCreditNote stores n; tenant.ErrExists when the ID is taken.
	InsertCreditNote(ctx context.Context, n billing.CreditNote) error
	// CreateWebhook stores w (its Disabled and Delivery too);
	// tenant.ErrExists when the ID is taken.
	CreateWebhook(ctx context.Context, w event.Webhook) error
	// DisableWebhook marks webhook id disabled at at; one already
	// disabled keeps its first time. ErrNotFound when there is none.
	DisableWebhook(ctx context.Context, id string, at time.Time) error
	// UpdateWebhookDelivery writes d over webhook id's delivery state;
	// ErrNotFound when there is none.
	UpdateWebhookDelivery(ctx context.Context, id string, d event.Delivery) error
}

// Store errors.
var (
	ErrNotFound = tenant.ErrNotFound
	// ErrConflict reports a write that would break an invariant the store
	// guards (two allocations holding one node at one instant).
	ErrConflict = errors.New("conflict")
)

// NodeFilter selects nodes; zero fields match all. After is a cursor: only
// nodes with a name greater than After are returned. Limit <= 0 means no
// limit.
type NodeFilter struct {
	Site  string
	Pool  string // "site/MODEL"
	State fleet.State
	After string
	Limit int
}

// LeaseFilter selects leases; zero fields match all. After is a cursor:
// only leases with an ID greater than After are returned. Limit <= 0 means
// no limit.
type LeaseFilter struct {
	TenantID string
	Pool     string // "site/MODEL"
	After    string
	Limit    int
}

// AllocationFilter selects allocations; zero fields match all.
type AllocationFilter struct {
	LeaseID string
	// EndAfter keeps the allocations that end after it (held then or
	// later); the zero time keeps every one.
	EndAfter time.Time
	// NodeFrom and NodeTo, when NodeTo > NodeFrom, keep the allocations
	// holding a node with an ordinal in [NodeFrom, NodeTo).
	NodeFrom, NodeTo int64
}

// HoldbackStep is one step of a pool's holdback schedule: from From until
// the next step, GPUs of the pool are held back from guaranteed leases.
type HoldbackStep struct {
	From time.Time
	GPUs unit.GPUs
}

// KeyFilter selects keys.
type KeyFilter struct {
	TenantID       string // "" = all
	IncludeRevoked bool
}

// AuditFilter selects audit entries, newest first. Before is a cursor: only
// entries with Seq < Before (0 = no bound). Limit <= 0 means 100.
type AuditFilter struct {
	TenantID string // "" = all
	Before   int64
	Limit    int
}

// EventFilter selects events, ordered by Seq. After is a cursor: only
// events with Seq > After. TenantID "" selects every event, operator-only
// ones included; a tenant ID selects that tenant's only. Limit <= 0 means
// 100.
type EventFilter struct {
	TenantID string
	After    int64
	// Before, when above 0, keeps events with Seq < Before only.
	Before int64
	// Newest orders the events newest first: Limit then keeps the
	// newest ones.
	Newest bool
	Limit  int
}

// WebhookFilter selects webhook endpoints. TenantID "" selects every
// endpoint, operators' and every tenant's.
type WebhookFilter struct {
	TenantID        string
	IncludeDisabled bool
}

// FleetRevision is one applied fleet file.
type FleetRevision struct {
	Seq       int64
	At        time.Time
	By        string // key ID
	SHA256    string // of the canonical JSON of the fleet spec
	Spec      []byte // the canonical JSON of the fleet spec
	NodeCount int64
	GPUCount  int64
}

// FleetChange is the diff of one apply, computed by the engine.
type FleetChange struct {
	At          time.Time
	Sites       []fleet.Site // every site of the new fleet, with power domains
	RetireSites []string
	Add         []fleet.Node
	Update      []fleet.Node
	Retire      []string
	Revision    FleetRevision
}

// IdempotentResponse is the first answer to a mutating request that carried
// an Idempotency-Key: replays of the same request get it again.
type IdempotentResponse struct {
	Scope         string // the caller's key ID
	Key           string // the Idempotency-Key header
	RequestSHA256 string // of method, path, query and body
	Status        int
	ContentType   string
	Body          []byte
	Created       time.Time
}

// SpotPrice is a pool's spot price for one notice tier from From on.
type SpotPrice struct {
	Pool, Tier string
	From       time.Time
	Price      money.Money // per GPU-hour
}

// InvoiceFilter selects invoices; zero fields match all.
type InvoiceFilter struct {
	TenantID string
	Month    time.Time // the first instant of a UTC month
	State    billing.State
	// Limit, when above 0, keeps the newest Limit invoices: ordered by
	// month, newest first, then tenant and ID.
	Limit int
}

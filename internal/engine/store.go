package engine

import (
	"context"
	"errors"
	"time"

	"github.com/neocloud/neocloud/internal/fleet"
	"github.com/neocloud/neocloud/internal/lease"
	"github.com/neocloud/neocloud/internal/tenant"
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
	// Nodes returns one page of nodes in service, ordered by name.
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
}

// Tx is one read-write transaction. Its reads see its own writes.
type Tx interface {
	Reader
	// ApplyFleet writes a fleet change: upserts the sites and power domains
	// of c.Sites, retires the sites in c.RetireSites, inserts c.Add (a node of the same
	// name that was retired comes back in service in the state it left in,
	// so a node retired while sanitizing still sanitizes), updates
	// c.Update (all fields but State and Retired), and marks c.Retire
	// retired at c.At. It records c.Revision.
	ApplyFleet(ctx context.Context, c FleetChange) error
	// HeldNodes returns the names among nodes that have an allocation
	// ending after t (held now or later), sorted.
	HeldNodes(ctx context.Context, nodes []string, t time.Time) ([]string, error)
	// InsertAllocation stores a; it returns ErrConflict when the node is
	// already allocated over an overlapping interval, and ErrNotFound when
	// the node is not in service.
	InsertAllocation(ctx context.Context, a lease.Allocation) error

	// CreateTenant returns tenant.ErrExists when the ID is taken.
	CreateTenant(ctx context.Context, t tenant.Tenant) error
	// CreateKey returns tenant.ErrExists when the ID or hash is taken.
	CreateKey(ctx context.Context, k tenant.Key) error
	// RevokeKey sets the revocation time; ErrNotFound when no such key.
	RevokeKey(ctx context.Context, id string, at time.Time) error
	// AppendAudit appends e and returns its sequence number.
	AppendAudit(ctx context.Context, e tenant.AuditEntry) (int64, error)
	// RememberResponse stores r, replacing a record of the same scope and
	// key, and deletes every record created before expireBefore.
	RememberResponse(ctx context.Context, r IdempotentResponse, expireBefore time.Time) error
}

// Store errors.
var (
	ErrNotFound = tenant.ErrNotFound
	// ErrConflict reports a write that would break an invariant the store
	// guards (double allocation of a node).
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

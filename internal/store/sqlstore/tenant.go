package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/neocloud/neocloud/internal/engine"
	"github.com/neocloud/neocloud/internal/tenant"
)

// Tenant returns the tenant with that ID, or an error wrapping
// engine.ErrNotFound.
func (r reader) Tenant(ctx context.Context, id string) (tenant.Tenant, error) {
	var t tenant.Tenant
	var created int64
	err := r.c.queryRow(ctx, `SELECT id, display_name, created_us FROM tenants WHERE id = ?`, id).
		Scan(&t.ID, &t.DisplayName, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return tenant.Tenant{}, fmt.Errorf("store: tenant %s: %w", id, engine.ErrNotFound)
	}
	if err != nil {
		return tenant.Tenant{}, fmt.Errorf("store: tenant %s: %w", id, err)
	}
	t.Created = fromMicros(created)
	return t, nil
}

// Tenants returns every tenant, by ID.
func (r reader) Tenants(ctx context.Context) ([]tenant.Tenant, error) {
	rows, err := r.c.query(ctx, `SELECT id, display_name, created_us FROM tenants ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("store: tenants: %w", err)
	}
	tenants := []tenant.Tenant{}
	for rows.Next() {
		var t tenant.Tenant
		var created int64
		if err := rows.Scan(&t.ID, &t.DisplayName, &created); err != nil {
			rows.Close()
			return nil, fmt.Errorf("store: tenants: %w", err)
		}
		t.Created = fromMicros(created)
		tenants = append(tenants, t)
	}
	if err := closeRows(rows); err != nil {
		return nil, fmt.Errorf("store: tenants: %w", err)
	}
	return tenants, nil
}

const keyColumns = `id, tenant_id, role, name, hash, created_us, created_by, revoked_us`

func scanKey(row interface{ Scan(...any) error }) (tenant.Key, error) {
	var k tenant.Key
	var tenantID sql.NullString
	var created int64
	var revoked sql.NullInt64
	if err := row.Scan(&k.ID, &tenantID, &k.Role, &k.Name, &k.Hash, &created, &k.CreatedBy, &revoked); err != nil {
		return tenant.Key{}, err
	}
	k.TenantID = tenantID.String
	k.Created = fromMicros(created)
	k.Revoked = fromNullMicros(revoked)
	return k, nil
}

// KeyByHash returns the key with that hash, revoked or not, or an error
// wrapping engine.ErrNotFound.
func (r reader) KeyByHash(ctx context.Context, hash string) (tenant.Key, error) {
	k, err := scanKey(r.c.queryRow(ctx, `SELECT `+keyColumns+` FROM api_keys WHERE hash = ?`, hash))
	if errors.Is(err, sql.ErrNoRows) {
		return tenant.Key{}, fmt.Errorf("store: key by hash: %w", engine.ErrNotFound)
	}
	if err != nil {
		return tenant.Key{}, fmt.Errorf("store: key by hash: %w", err)
	}
	return k, nil
}

// Key returns the key with that ID, revoked or not, or an error wrapping
// engine.ErrNotFound.
func (r reader) Key(ctx context.Context, id string) (tenant.Key, error) {
	k, err := scanKey(r.c.queryRow(ctx, `SELECT `+keyColumns+` FROM api_keys WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return tenant.Key{}, fmt.Errorf("store: key %s: %w", id, engine.ErrNotFound)
	}
	if err != nil {
		return tenant.Key{}, fmt.Errorf("store: key %s: %w", id, err)
	}
	return k, nil
}

// Keys returns the keys f selects, by creation time then ID.
func (r reader) Keys(ctx context.Context, f engine.KeyFilter) ([]tenant.Key, error) {
	q := `SELECT ` + keyColumns + ` FROM api_keys WHERE 1 = 1`
	var args []any
	if f.TenantID != "" {
		q += ` AND tenant_id = ?`
		args = append(args, f.TenantID)
	}
	if !f.IncludeRevoked {
		q += ` AND revoked_us IS NULL`
	}
	q += ` ORDER BY created_us, id`
	rows, err := r.c.query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("store: keys: %w", err)
	}
	keys := []tenant.Key{}
	for rows.Next() {
		k, err := scanKey(rows)
		if err != nil {
			rows.Close()
			return nil, fmt.Errorf("store: keys: %w", err)
		}
		keys = append(keys, k)
	}
	if err := closeRows(rows); err != nil {
		return nil, fmt.Errorf("store: keys: %w", err)
	}
	return keys, nil
}

// CountKeys returns how many keys exist, revoked or not.
func (r reader) CountKeys(ctx context.Context) (int64, error) {
	var n int64
	if err := r.c.queryRow(ctx, `SELECT COUNT(*) FROM api_keys`).Scan(&n); err != nil {
		return 0, fmt.Errorf("store: count keys: %w", err)
	}
	return n, nil
}

const auditColumns = `seq, at_us, actor_key, actor_tenant, actor_role, action, object, tenant_id, outcome, detail, request_id`

// Audit returns the entries f selects, newest first.
func (r reader) Audit(ctx context.Context, f engine.AuditFilter) ([]tenant.AuditEntry, error) {
	q := `SELECT ` + auditColumns + ` FROM audit_log WHERE 1 = 1`
	var args []any
	if f.TenantID != "" {
		q += ` AND tenant_id = ?`
		args = append(args, f.TenantID)
	}
	if f.Before > 0 {
		q += ` AND seq < ?`
		args = append(args, f.Before)
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	q += ` ORDER BY seq DESC LIMIT ?`
	args = append(args, limit)
	rows, err := r.c.query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("store: audit: %w", err)
	}
	entries := []tenant.AuditEntry{}
	for rows.Next() {
		var e tenant.AuditEntry
		var at int64
		if err := rows.Scan(&e.Seq, &at, &e.Actor.KeyID, &e.Actor.TenantID, &e.Actor.Role, &e.Action,
			&e.Object, &e.TenantID, &e.Outcome, &e.Detail, &e.RequestID); err != nil {
			rows.Close()
			return nil, fmt.Errorf("store: audit: %w", err)
		}
		e.At = fromMicros(at)
		entries = append(entries, e)
	}
	if err := closeRows(rows); err != nil {
		return nil, fmt.Errorf("store: audit: %w", err)
	}
	return entries, nil
}

// CreateTenant stores t; it returns an error wrapping tenant.ErrExists when
// the ID is taken. A taken ID is detected with ON CONFLICT DO NOTHING, so
// the transaction stays usable in both databases.
func (t *tx) CreateTenant(ctx context.Context, tn tenant.Tenant) error {
	n, err := t.c.execCount(ctx, `INSERT INTO tenants (id, display_name, created_us) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`,
		tn.ID, tn.DisplayName, micros(tn.Created))
	if err != nil {
		return fmt.Errorf("store: create tenant %s: %w", tn.ID, err)
	}
	if n == 0 {
		return fmt.Errorf("store: create tenant %s: %w", tn.ID, tenant.ErrExists)
	}
	return nil
}

// CreateKey stores k; it returns an error wrapping tenant.ErrExists when
// the ID or the hash is taken. Only the hash of the secret is stored.
func (t *tx) CreateKey(ctx context.Context, k tenant.Key) error {
	n, err := t.c.execCount(ctx, `INSERT INTO api_keys (`+keyColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
		k.ID, nullString(k.TenantID), string(k.Role), k.Name, k.Hash, micros(k.Created), k.CreatedBy, nullMicros(k.Revoked))
	if err != nil {
		return fmt.Errorf("store: create key %s: %w", k.ID, err)
	}
	if n == 0 {
		return fmt.Errorf("store: create key %s: %w", k.ID, tenant.ErrExists)
	}
	return nil
}

// RevokeKey sets the key's revocation time; a key already revoked keeps
// its first one. It returns an error wrapping engine.ErrNotFound when no
// such key exists.
func (t *tx) RevokeKey(ctx context.Context, id string, at time.Time) error {
	n, err := t.c.execCount(ctx, `UPDATE api_keys SET revoked_us = ? WHERE id = ? AND revoked_us IS NULL`, micros(at), id)
	if err != nil {
		return fmt.Errorf("store: revoke key %s: %w", id, err)
	}
	if n == 1 {
		return nil
	}
	if _, err := t.Key(ctx, id); err != nil {
		return fmt.Errorf("store: revoke key %s: %w", id, engine.ErrNotFound)
	}
	return nil
}

// AppendAudit appends e and returns its sequence number, assigned by the
// database and increasing. e.Seq is ignored.
func (t *tx) AppendAudit(ctx context.Context, e tenant.AuditEntry) (int64, error) {
	var seq int64
	err := t.c.queryRow(ctx, `INSERT INTO audit_log (at_us, actor_key, actor_tenant, actor_role, action, object,
			tenant_id, outcome, detail, request_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING seq`,
		micros(e.At), e.Actor.KeyID, e.Actor.TenantID, string(e.Actor.Role), e.Action, e.Object,
		e.TenantID, string(e.Outcome), e.Detail, e.RequestID).Scan(&seq)
	if err != nil {
		return 0, fmt.Errorf("store: append audit: %w", t.c.d.classify(err))
	}
	return seq, nil
}

// AppendAudits appends es in order, with multi-row inserts; the database
// assigns their sequence numbers, increasing. Seq of es is ignored. After
// an error nothing of es is stored: in SQLite, whose audit log refuses the
// DELETE that would undo a failure half-way (see insertAll), the
// transaction can then only roll back.
func (t *tx) AppendAudits(ctx context.Context, es []tenant.AuditEntry) error {
	err := t.insertAll(ctx, auditInsert, len(es), func(i int, args []any) ([]any, error) {
		e := es[i]
		return append(args, micros(e.At), e.Actor.KeyID, e.Actor.TenantID, string(e.Actor.Role), e.Action, e.Object,
			e.TenantID, string(e.Outcome), e.Detail, e.RequestID), nil
	}, func(err error) error { return err })
	if err != nil {
		return fmt.Errorf("store: append audits: %w", err)
	}
	return nil
}

// auditInsert appends to the audit log, which refuses DELETE.
var auditInsert = bulkInsert{table: "audit_log", columns: `at_us, actor_key, actor_tenant, actor_role, action, object,
		tenant_id, outcome, detail, request_id`, cols: 10, appendOnly: true}

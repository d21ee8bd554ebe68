package engine

import (
	"context"
	"errors"
	"fmt"

	"github.com/neocloud/neocloud/internal/tenant"
	"github.com/neocloud/neocloud/internal/valid"
)

// BootstrapKeyID is the CreatedBy of the first operator key.
const BootstrapKeyID = "bootstrap"

// CreateTenant creates t. It returns a *valid.Error for bad fields and
// tenant.ErrExists when the ID is taken.
func (e *Engine) CreateTenant(ctx context.Context, p tenant.Principal, t tenant.Tenant) (tenant.Tenant, error) {
	if err := e.check(ctx, p, tenant.PermTenantWrite, "tenants.create", "tenant/"+t.ID, ""); err != nil {
		return tenant.Tenant{}, err
	}
	if err := t.Validate(); err != nil {
		return tenant.Tenant{}, err
	}
	t.Created = e.clock.Now()
	err := e.write(ctx, p, func(tx Tx) (*tenant.AuditEntry, error) {
		if err := tx.CreateTenant(ctx, t); err != nil {
			return nil, err
		}
		return &tenant.AuditEntry{Action: "tenants.create", Object: "tenant/" + t.ID, TenantID: t.ID,
			Detail: fmt.Sprintf("display_name=%q", t.DisplayName)}, nil
	})
	if err != nil {
		return tenant.Tenant{}, fmt.Errorf("tenant %s: %w", t.ID, err)
	}
	return t, nil
}

// Tenant returns the tenant id as p may see it: tenant.ErrNotFound when it
// does not exist or belongs to someone else.
func (e *Engine) Tenant(ctx context.Context, p tenant.Principal, id string) (tenant.Tenant, error) {
	if err := e.check(ctx, p, tenant.PermTenantRead, "tenants.get", "tenant/"+id, id); err != nil {
		return tenant.Tenant{}, err
	}
	return e.store.Tenant(ctx, id)
}

// Tenants returns the tenants p may see: all for operators, its own for a
// tenant.
func (e *Engine) Tenants(ctx context.Context, p tenant.Principal) ([]tenant.Tenant, error) {
	scope, err := e.scope(ctx, p, tenant.PermTenantRead, "tenants.list", "")
	if err != nil {
		return nil, err
	}
	if scope == "" {
		return e.store.Tenants(ctx)
	}
	t, err := e.store.Tenant(ctx, scope)
	if err != nil {
		return nil, err
	}
	return []tenant.Tenant{t}, nil
}

// KeyRequest asks for a new API key.
type KeyRequest struct {
	TenantID string // "" for operator roles
	Role     tenant.Role
	Name     string
}

// CreateKey issues a key and returns it with its secret, which is not
// stored and cannot be shown again. A tenant admin may issue only tenant
// roles of its own tenant; an operator admin may issue any role. It returns
// a *valid.Error for bad fields, tenant.ErrForbidden when the caller may not
// grant the role, and tenant.ErrNotFound for an unknown (or foreign) tenant.
func (e *Engine) CreateKey(ctx context.Context, p tenant.Principal, req KeyRequest) (tenant.Key, string, error) {
	k := tenant.Key{TenantID: req.TenantID, Role: req.Role, Name: req.Name, CreatedBy: p.KeyID}
	object := "tenant/" + req.TenantID
	if err := k.Validate(); err != nil {
		return tenant.Key{}, "", err
	}
	if err := p.CanGrant(req.Role); err != nil {
		e.RecordDenial(ctx, p, "keys.create", "role/"+string(req.Role), err.Error())
		return tenant.Key{}, "", err
	}
	if err := e.check(ctx, p, tenant.PermKeysWrite, "keys.create", object, req.TenantID); err != nil {
		return tenant.Key{}, "", err
	}
	if k.TenantID != "" {
		if _, err := e.store.Tenant(ctx, k.TenantID); err != nil {
			if errors.Is(err, tenant.ErrNotFound) {
				var v valid.Error
				v.Add("tenant", k.TenantID, "must name an existing tenant")
				return tenant.Key{}, "", v.Err()
			}
			return tenant.Key{}, "", err
		}
	}
	secret, err := tenant.NewSecret(e.rand)
	if err != nil {
		return tenant.Key{}, "", err
	}
	k.Hash = tenant.HashSecret(secret)
	k.ID = tenant.KeyID(k.Hash)
	k.Created = e.clock.Now()
	err = e.write(ctx, p, func(tx Tx) (*tenant.AuditEntry, error) {
		if err := tx.CreateKey(ctx, k); err != nil {
			return nil, err
		}
		return &tenant.AuditEntry{Action: "keys.create", Object: "key/" + k.ID, TenantID: k.TenantID,
			Detail: fmt.Sprintf("role=%s name=%q", k.Role, k.Name)}, nil
	})
	if err != nil {
		return tenant.Key{}, "", fmt.Errorf("key: %w", err)
	}
	return k, secret, nil
}

// RevokeKey revokes key id (a key ID, or a leaked secret, which is turned
// into its ID first). Revoking twice is not an error; the first revocation
// time stays.
func (e *Engine) RevokeKey(ctx context.Context, p tenant.Principal, id string) (tenant.Key, error) {
	id = tenant.IDFromSecretOrID(id)
	k, lookupErr := e.store.Key(ctx, id)
	owner := k.TenantID
	switch {
	case errors.Is(lookupErr, tenant.ErrNotFound):
		owner = tenant.Missing
	case lookupErr != nil:
		return tenant.Key{}, lookupErr
	}
	if err := e.check(ctx, p, tenant.PermKeysWrite, "keys.revoke", "key/"+id, owner); err != nil {
		return tenant.Key{}, err
	}
	if lookupErr != nil {
		return tenant.Key{}, lookupErr
	}
	if !k.Active() {
		return k, nil
	}
	at := e.clock.Now()
	// The cache is emptied before and after the commit: a lookup racing
	// the revocation cannot leave the key cached (see Authenticate).
	e.forgetKeys()
	err := e.write(ctx, p, func(tx Tx) (*tenant.AuditEntry, error) {
		if err := tx.RevokeKey(ctx, id, at); err != nil {
			return nil, err
		}
		return &tenant.AuditEntry{Action: "keys.revoke", Object: "key/" + id, TenantID: k.TenantID}, nil
	})
	e.forgetKeys()
	if err != nil {
		return tenant.Key{}, fmt.Errorf("key %s: revoke: %w", id, err)
	}
	k.Revoked = at
	return k, nil
}

// Keys lists the keys p may see. tenantID narrows an operator's list ("" =
// all); a tenant principal sees only its own tenant's keys, and asking for
// another tenant answers tenant.ErrNotFound.
func (e *Engine) Keys(ctx context.Context, p tenant.Principal, tenantID string, includeRevoked bool) ([]tenant.Key, error) {
	tenantID, err := e.scope(ctx, p, tenant.PermKeysRead, "keys.list", tenantID)
	if err != nil {
		return nil, err
	}
	return e.store.Keys(ctx, KeyFilter{TenantID: tenantID, IncludeRevoked: includeRevoked})
}

// Authenticate returns the principal of an API key secret, or
// tenant.ErrUnauthenticated for a malformed, unknown or revoked one.
func (e *Engine) Authenticate(ctx context.Context, secret string) (tenant.Principal, error) {
	if !tenant.WellFormed(secret) {
		return tenant.Anonymous(), tenant.ErrUnauthenticated
	}
	hash := tenant.HashSecret(secret)
	e.keyMu.Lock()
	k, cached := e.keyCache[hash]
	gen := e.keyGen
	e.keyMu.Unlock()
	if cached {
		return k.Principal(), nil
	}
	k, err := e.store.KeyByHash(ctx, hash)
	if errors.Is(err, tenant.ErrNotFound) || (err == nil && !k.Active()) {
		return tenant.Anonymous(), tenant.ErrUnauthenticated
	}
	if err != nil {
		return tenant.Anonymous(), fmt.Errorf("authenticate: %w", err)
	}
	// Remember active keys, unless a revocation happened since the read
	// began (it might be this key's).
	e.keyMu.Lock()
	if e.keyGen == gen && len(e.keyCache) < maxCachedKeys {
		e.keyCache[hash] = k
	}
	e.keyMu.Unlock()
	return k.Principal(), nil
}

// maxCachedKeys bounds the cache of active keys Authenticate keeps.
const maxCachedKeys = 100_000

// forgetKeys empties the key cache; a revocation calls it, so that a
// revoked key is refused from the moment its revocation commits.
func (e *Engine) forgetKeys() {
	e.keyMu.Lock()
	e.keyGen++
	clear(e.keyCache)
	e.keyMu.Unlock()
}

// Bootstrap issues an operator-admin key when the store holds no active
// one — on first start, or to recover when every admin key was revoked —
// and hands its secret to deliver (which writes the key file) before the
// transaction commits: if deliver fails, no key is stored, so the operator
// is never left with a key nobody holds. It reports whether a key was
// issued.
func (e *Engine) Bootstrap(ctx context.Context, deliver func(secret string) error) (bool, error) {
	secret, err := tenant.NewSecret(e.rand)
	if err != nil {
		return false, err
	}
	k := tenant.Key{Role: tenant.OperatorAdmin, Name: "bootstrap admin", CreatedBy: BootstrapKeyID,
		Hash: tenant.HashSecret(secret), Created: e.clock.Now()}
	k.ID = tenant.KeyID(k.Hash)
	p := tenant.Principal{KeyID: BootstrapKeyID, Role: tenant.OperatorAdmin}
	created := false
	err = e.write(ctx, p, func(tx Tx) (*tenant.AuditEntry, error) {
		keys, err := tx.Keys(ctx, KeyFilter{})
		if err != nil {
			return nil, err
		}
		for _, old := range keys {
			if old.Role == tenant.OperatorAdmin && old.Active() {
				return nil, nil
			}
		}
		if err := tx.CreateKey(ctx, k); err != nil {
			return nil, err
		}
		if err := deliver(secret); err != nil {
			return nil, fmt.Errorf("deliver the key: %w", err)
		}
		created = true
		return &tenant.AuditEntry{Action: "keys.create", Object: "key/" + k.ID, Detail: "role=operator-admin bootstrap"}, nil
	})
	if err != nil {
		return false, fmt.Errorf("bootstrap: %w", err)
	}
	return created, nil
}

// Audit returns audit entries p may see, newest first: all for operators,
// its own tenant's for a tenant admin.
func (e *Engine) Audit(ctx context.Context, p tenant.Principal, f AuditFilter) ([]tenant.AuditEntry, error) {
	var err error
	if f.TenantID, err = e.scope(ctx, p, tenant.PermAuditRead, "audit.list", f.TenantID); err != nil {
		return nil, err
	}
	if f.Limit <= 0 || f.Limit > 1000 {
		f.Limit = 100
	}
	return e.store.Audit(ctx, f)
}

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
	if req.Role.IsOperator() && !p.Role.IsOperator() {
		e.RecordDenial(ctx, p, "keys.create", "role/"+string(req.Role), "tenant keys cannot grant operator roles")
		return tenant.Key{}, "", fmt.Errorf("%w: a %s key cannot grant the operator role %s", tenant.ErrForbidden, p.Role, req.Role)
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
	secret, err := e.issue(ctx, p, k)
	if err != nil {
		return tenant.Key{}, "", err
	}
	k, err = e.store.KeyByHash(ctx, tenant.HashSecret(secret))
	return k, secret, err
}

// issue stores a new key for k's tenant and role and returns its secret.
func (e *Engine) issue(ctx context.Context, p tenant.Principal, k tenant.Key) (string, error) {
	secret, err := tenant.NewSecret(e.rand)
	if err != nil {
		return "", err
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
		return "", fmt.Errorf("key: %w", err)
	}
	return secret, nil
}

// RevokeKey revokes key id. Revoking twice is not an error; the first
// revocation time stays.
func (e *Engine) RevokeKey(ctx context.Context, p tenant.Principal, id string) (tenant.Key, error) {
	k, lookupErr := e.store.Key(ctx, id)
	owner := k.TenantID
	switch {
	case errors.Is(lookupErr, tenant.ErrNotFound):
		owner = "\x00missing" // never a caller's tenant: a tenant gets the same 404 as for a foreign key
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
	err := e.write(ctx, p, func(tx Tx) (*tenant.AuditEntry, error) {
		if err := tx.RevokeKey(ctx, id, at); err != nil {
			return nil, err
		}
		return &tenant.AuditEntry{Action: "keys.revoke", Object: "key/" + id, TenantID: k.TenantID}, nil
	})
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
		return tenant.Anonymous, tenant.ErrUnauthenticated
	}
	k, err := e.store.KeyByHash(ctx, tenant.HashSecret(secret))
	if errors.Is(err, tenant.ErrNotFound) || (err == nil && !k.Active()) {
		return tenant.Anonymous, tenant.ErrUnauthenticated
	}
	if err != nil {
		return tenant.Anonymous, fmt.Errorf("authenticate: %w", err)
	}
	return k.Principal(), nil
}

// Bootstrap issues the first operator-admin key when the store holds no key
// at all, and returns its secret; it returns "" when keys exist already.
// The count and the insert share one transaction under the writer lock.
func (e *Engine) Bootstrap(ctx context.Context) (string, error) {
	secret, err := tenant.NewSecret(e.rand)
	if err != nil {
		return "", err
	}
	k := tenant.Key{Role: tenant.OperatorAdmin, Name: "bootstrap admin", CreatedBy: BootstrapKeyID,
		Hash: tenant.HashSecret(secret), Created: e.clock.Now()}
	k.ID = tenant.KeyID(k.Hash)
	p := tenant.Principal{KeyID: BootstrapKeyID, Role: tenant.OperatorAdmin}
	created := false
	err = e.write(ctx, p, func(tx Tx) (*tenant.AuditEntry, error) {
		n, err := tx.CountKeys(ctx)
		if err != nil || n > 0 {
			return nil, err
		}
		if err := tx.CreateKey(ctx, k); err != nil {
			return nil, err
		}
		created = true
		return &tenant.AuditEntry{Action: "keys.create", Object: "key/" + k.ID, Detail: "role=operator-admin bootstrap"}, nil
	})
	if err != nil || !created {
		return "", err
	}
	return secret, nil
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

package tenant

import "fmt"

// Principal is who is calling: the key, its tenant (empty for operator
// keys) and its role.
type Principal struct {
	KeyID    string
	TenantID string
	Role     Role
}

// Anonymous returns the principal of a request without a valid key.
func Anonymous() Principal { return Principal{KeyID: "anonymous"} }

// Missing is the owner to check a missing object against: it is never a
// tenant's ID, so a tenant gets for a missing object exactly the answer (and
// the audit entry) it gets for another tenant's.
const Missing = "\x00missing"

// CanGrant reports whether p may issue a key of role r: operator admins any
// role, tenant admins only tenant roles. It returns nil or a wrapped
// ErrForbidden naming both roles.
func (p Principal) CanGrant(r Role) error {
	if !p.Role.Allows(PermKeysWrite) || (r.IsOperator() && !p.Role.IsOperator()) {
		return fmt.Errorf("%w: a %s key cannot grant the role %s", ErrForbidden, p.Role, r)
	}
	return nil
}

// String names the principal for logs and the audit log.
func (p Principal) String() string {
	if p.TenantID == "" {
		return fmt.Sprintf("%s(%s)", p.KeyID, p.Role)
	}
	return fmt.Sprintf("%s(%s@%s)", p.KeyID, p.Role, p.TenantID)
}

// Can reports whether p's role holds perm, regardless of any object.
func (p Principal) Can(perm Permission) bool { return p.Role.Allows(perm) }

// Check is the one object-level access rule. owner is the tenant that owns
// the object ("" for objects of the owner, such as nodes). It returns nil,
// ErrForbidden (wrapped, naming role and permission) when the role lacks perm, or ErrNotFound when the object
// belongs to someone else — so that a tenant cannot learn whether another
// tenant's object exists.
func (p Principal) Check(perm Permission, owner string) error {
	if !p.Role.Allows(perm) {
		return fmt.Errorf("%w: role %s lacks permission %s", ErrForbidden, p.Role, perm)
	}
	if p.Role.IsOperator() || perm == PermPublic {
		return nil
	}
	if owner != p.TenantID {
		return ErrNotFound
	}
	return nil
}

// Scope returns the tenant a list query must be restricted to: "" (all) for
// operators, the principal's tenant otherwise.
func (p Principal) Scope() string {
	if p.Role.IsOperator() {
		return ""
	}
	return p.TenantID
}

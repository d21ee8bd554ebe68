package tenant_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"pgregory.net/rapid"

	"github.com/neocloud/neocloud/internal/tenant"
)

func TestNewSecret(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		s, err := tenant.NewSecret(nil)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(s, "nc_") || len(s) != 46 || !tenant.WellFormed(s) {
			t.Fatalf("secret %q: want nc_ + 43 base62 characters", s)
		}
		if seen[s] {
			t.Fatalf("secret repeated after %d draws", len(seen))
		}
		seen[s] = true
	}
	// All-zero and all-one random bytes still give well-formed keys: the
	// encoding is fixed-width.
	for _, b := range []byte{0x00, 0xff} {
		s, err := tenant.NewSecret(bytes.NewReader(bytes.Repeat([]byte{b}, 32)))
		if err != nil || !tenant.WellFormed(s) {
			t.Errorf("secret from %#x bytes = %q, %v", b, s, err)
		}
	}
	if _, err := tenant.NewSecret(bytes.NewReader(make([]byte, 31))); err == nil {
		t.Error("a short random source gave a key")
	}
}

func TestWellFormed(t *testing.T) {
	good, _ := tenant.NewSecret(nil)
	tests := map[string]bool{
		good:                            true,
		"":                              false,
		"nc_":                           false,
		good[:len(good)-1]:              false,
		good + "a":                      false,
		"xx_" + good[3:]:                false,
		"nc_" + strings.Repeat("-", 43): false,
		"Bearer " + good:                false,
	}
	for in, want := range tests {
		if got := tenant.WellFormed(in); got != want {
			t.Errorf("WellFormed(%q) = %v, want %v", in, got, want)
		}
	}
}

// TestKeyIDProperty: key IDs are derived from the hash, never contain the
// secret, and differ for different secrets.
func TestKeyIDProperty(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		raw := rapid.SliceOfN(rapid.Byte(), 32, 32).Draw(t, "random")
		s, err := tenant.NewSecret(bytes.NewReader(raw))
		if err != nil {
			t.Fatal(err)
		}
		h := tenant.HashSecret(s)
		id := tenant.KeyID(h)
		if len(h) != 64 || !strings.HasPrefix(id, "key_") || strings.Contains(id, s[3:12]) || strings.Contains(h, s[3:]) {
			t.Fatalf("secret %q: hash %q id %q", s, h, id)
		}
	})
}

func TestRolePermissions(t *testing.T) {
	tests := []struct {
		role tenant.Role
		perm tenant.Permission
		want bool
	}{
		{tenant.OperatorAdmin, tenant.PermFleetWrite, true},
		{tenant.OperatorViewer, tenant.PermFleetWrite, false},
		{tenant.OperatorViewer, tenant.PermNodesRead, true},
		{tenant.TenantAdmin, tenant.PermNodesRead, false},
		{tenant.TenantAdmin, tenant.PermKeysWrite, true},
		{tenant.TenantViewer, tenant.PermKeysRead, false},
		{tenant.TenantViewer, tenant.PermFleetRead, true},
		{tenant.TenantViewer, tenant.PermPublic, true},
		{tenant.TenantViewer, tenant.PermEventsRead, true},
		{tenant.TenantViewer, tenant.PermWebhooksRead, false},
		{tenant.TenantAdmin, tenant.PermWebhooksWrite, true},
		{tenant.OperatorViewer, tenant.PermWebhooksWrite, false},
		{tenant.Role("root"), tenant.PermSelf, false},
		{tenant.OperatorAdmin, tenant.Permission(""), false},
	}
	for _, tc := range tests {
		if got := tc.role.Allows(tc.perm); got != tc.want {
			t.Errorf("%s allows %q = %v, want %v", tc.role, tc.perm, got, tc.want)
		}
	}
}

func TestPrincipalCheck(t *testing.T) {
	op := tenant.Principal{KeyID: "k1", Role: tenant.OperatorViewer}
	a := tenant.Principal{KeyID: "k2", Role: tenant.TenantAdmin, TenantID: "a"}
	tests := []struct {
		name  string
		p     tenant.Principal
		perm  tenant.Permission
		owner string
		want  error
	}{
		{"operator reads any tenant", op, tenant.PermTenantRead, "b", nil},
		{"operator lacks write", op, tenant.PermTenantWrite, "b", tenant.ErrForbidden},
		{"tenant reads own", a, tenant.PermKeysRead, "a", nil},
		{"tenant reads foreign: not found", a, tenant.PermKeysRead, "b", tenant.ErrNotFound},
		{"tenant reads owner's object: not found", a, tenant.PermKeysRead, "", tenant.ErrNotFound},
		{"tenant lacks permission: forbidden before ownership", a, tenant.PermNodesRead, "b", tenant.ErrForbidden},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.p.Check(tc.perm, tc.owner)
			if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Errorf("Check = %v, want %v", err, tc.want)
			}
		})
	}
	if got := a.Scope(); got != "a" {
		t.Errorf("tenant scope = %q", got)
	}
	if got := op.Scope(); got != "" {
		t.Errorf("operator scope = %q", got)
	}
}

func TestKeyValidate(t *testing.T) {
	tests := []struct {
		name    string
		key     tenant.Key
		wantErr string
	}{
		{"operator", tenant.Key{Role: tenant.OperatorAdmin}, ""},
		{"tenant", tenant.Key{Role: tenant.TenantViewer, TenantID: "a"}, ""},
		{"operator with tenant", tenant.Key{Role: tenant.OperatorViewer, TenantID: "a"}, "tenant: must be empty"},
		{"tenant without tenant", tenant.Key{Role: tenant.TenantAdmin}, "tenant: is required"},
		{"unknown role", tenant.Key{Role: "root"}, "role: must be one of"},
		{"long name", tenant.Key{Role: tenant.OperatorAdmin, Name: strings.Repeat("x", 101)}, "name: must be at most 100"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.key.Validate()
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Errorf("Validate = %v, want %q", err, tc.wantErr)
			}
		})
	}
}

func FuzzWellFormed(f *testing.F) {
	good, _ := tenant.NewSecret(nil)
	f.Add(good)
	f.Add("nc_")
	f.Fuzz(func(t *testing.T, s string) {
		if tenant.WellFormed(s) && (len(s) != 46 || !strings.HasPrefix(s, "nc_")) {
			t.Fatalf("WellFormed(%q) = true", s)
		}
	})
}

package tenant

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math/big"
	"strings"
	"time"

	"github.com/neocloud/neocloud/internal/valid"
)

// KeyPrefix starts every API key, so that secret scanners and people can
// tell a Neocloud key from other strings.
const KeyPrefix = "nc_"

// keyRandomBytes is 256 bits of entropy.
const keyRandomBytes = 32

const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// keyBodyLen is the base62 length of 256 bits: ceil(256 / log2(62)) = 43.
const keyBodyLen = 43

// Key is an API key as stored: never the secret, only its SHA-256. A
// SHA-256 without salt is enough because the secret has 256 random bits: it
// cannot be guessed, so there is no dictionary to slow down.
type Key struct {
	ID       string
	TenantID string // "" for operator keys
	Role     Role
	Name     string // a label chosen by its creator
	Hash     string // hex SHA-256 of the secret
	Created  time.Time
	// CreatedBy is the key ID that created this key ("bootstrap" for the
	// first operator key).
	CreatedBy string
	// Revoked is when the key was revoked; zero while it is valid.
	Revoked time.Time
}

// Active reports whether k may still authenticate.
func (k Key) Active() bool { return k.Revoked.IsZero() }

// Principal returns the principal k authenticates as.
func (k Key) Principal() Principal {
	return Principal{KeyID: k.ID, TenantID: k.TenantID, Role: k.Role}
}

// Validate checks that the role fits the tenant: operator roles have no
// tenant, tenant roles need one.
func (k Key) Validate() error {
	var e valid.Error
	if _, err := ParseRole(string(k.Role)); err != nil {
		e.Add("role", string(k.Role), "must be one of operator-admin, operator-viewer, operator-agent, tenant-admin, tenant-viewer")
	} else if k.Role.IsOperator() && k.TenantID != "" {
		e.Add("tenant", k.TenantID, "must be empty for operator roles")
	} else if !k.Role.IsOperator() && k.TenantID == "" {
		e.Add("tenant", k.TenantID, "is required for tenant roles")
	}
	if len(k.Name) > 100 {
		e.Add("name", len(k.Name), "must be at most 100 characters")
	} else if !ValidText(k.Name) {
		e.Add("name", k.Name, TextRule)
	}
	return e.Err()
}

// NewSecret returns a fresh API key secret read from r (crypto/rand when r
// is nil): "nc_" and 43 base62 characters carrying 256 random bits.
func NewSecret(r io.Reader) (string, error) {
	if r == nil {
		r = rand.Reader
	}
	buf := make([]byte, keyRandomBytes)
	if _, err := io.ReadFull(r, buf); err != nil {
		return "", fmt.Errorf("key: read random: %w", err)
	}
	n := new(big.Int).SetBytes(buf)
	body := make([]byte, keyBodyLen)
	base := big.NewInt(62)
	mod := new(big.Int)
	for i := keyBodyLen - 1; i >= 0; i-- {
		n.QuoRem(n, base, mod)
		body[i] = base62[mod.Int64()]
	}
	return KeyPrefix + string(body), nil
}

// WellFormed reports whether secret has the shape of a key, without a
// lookup; used to refuse garbage before touching the store.
func WellFormed(secret string) bool {
	if !strings.HasPrefix(secret, KeyPrefix) || len(secret) != len(KeyPrefix)+keyBodyLen {
		return false
	}
	for _, c := range secret[len(KeyPrefix):] {
		if !strings.ContainsRune(base62, c) {
			return false
		}
	}
	return true
}

// HashSecret returns the stored form of a secret: hex SHA-256.
func HashSecret(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// KeyID derives a key's public ID from its hash, so that the holder of a
// key can tell which stored key it is without the server keeping the secret.
func KeyID(hash string) string { return "key_" + hash[:16] }

// IDFromSecretOrID returns s unchanged, or the key ID of s when s is a
// secret: so that a leaked key can be revoked by what leaked, and a secret
// never travels further (into the audit log) than this call.
func IDFromSecretOrID(s string) string {
	if WellFormed(s) {
		return KeyID(HashSecret(s))
	}
	return s
}

// RedactSecrets replaces every well-formed key secret inside s with its key
// ID. The audit log and error texts pass caller-supplied strings through it.
func RedactSecrets(s string) string {
	i := strings.Index(s, KeyPrefix)
	if i < 0 {
		return s
	}
	var b strings.Builder
	for i >= 0 {
		b.WriteString(s[:i])
		end := i + len(KeyPrefix) + keyBodyLen
		if end <= len(s) && WellFormed(s[i:end]) {
			b.WriteString(KeyID(HashSecret(s[i:end])))
			s = s[end:]
		} else {
			b.WriteString(KeyPrefix)
			s = s[i+len(KeyPrefix):]
		}
		i = strings.Index(s, KeyPrefix)
	}
	b.WriteString(s)
	return b.String()
}

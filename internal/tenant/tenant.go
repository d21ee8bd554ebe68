// Package tenant holds who may do what: tenants, API keys, roles and their
// permissions, the object-level access rule, and the audit log's entries.
package tenant

import (
	"errors"
	"regexp"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/neocloud/neocloud/internal/valid"
)

// Errors returned by the authorization rule and by lookups.
var (
	// ErrNotFound reports a missing object — or another tenant's, which
	// must be indistinguishable from a missing one.
	ErrNotFound = errors.New("not found")
	// ErrForbidden reports a principal whose role lacks the permission.
	ErrForbidden = errors.New("forbidden")
	// ErrUnauthenticated reports a missing, malformed, unknown or revoked key.
	ErrUnauthenticated = errors.New("unauthenticated")
	// ErrExists reports a create of an object whose ID is taken.
	ErrExists = errors.New("already exists")
)

// Tenant is an organisation that leases capacity.
type Tenant struct {
	// ID is a slug chosen at creation ("rival-lab"); it never changes.
	ID          string
	DisplayName string
	Created     time.Time
}

var slugRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// ValidSlug reports whether s is a lowercase DNS label (1-63 characters of
// a-z, 0-9 and '-', not starting or ending with '-').
func ValidSlug(s string) bool { return slugRE.MatchString(s) }

// SlugRule is the rule ValidSlug checks, in words for error messages.
const SlugRule = "must be 1-63 lowercase letters, digits or '-', starting and ending with a letter or digit"

// Validate checks t's fields.
func (t Tenant) Validate() error {
	var e valid.Error
	if !ValidSlug(t.ID) {
		e.Add("id", t.ID, SlugRule)
	}
	if len(t.DisplayName) > 200 {
		e.Add("display_name", len(t.DisplayName), "must be at most 200 characters")
	} else if !ValidText(t.DisplayName) {
		e.Add("display_name", t.DisplayName, TextRule)
	}
	return e.Err()
}

// TextRule is the rule ValidText checks, in words for error messages.
const TextRule = "must be valid UTF-8 without control characters"

// ValidText reports whether s is valid UTF-8 without control characters
// (which no label needs, and which some databases refuse).
func ValidText(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return false
		}
	}
	return true
}

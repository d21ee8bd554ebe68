// Package store opens the persistence behind the engine from a URL:
// "sqlite:PATH" (the default, embedded) or "postgres://..." (production).
// The implementations live in store/sqlite and store/postgres over the one
// database/sql implementation in store/sqlstore; store/storetest is their
// conformance suite.
package store

import (
	"context"
	"fmt"
	"net/url"
	"strings"

	"github.com/neocloud/neocloud/internal/engine"
	"github.com/neocloud/neocloud/internal/store/postgres"
	"github.com/neocloud/neocloud/internal/store/sqlite"
)

// Open opens and migrates the store named by url: "sqlite:PATH" or
// "postgres://..." / "postgresql://...".
func Open(ctx context.Context, url string) (engine.Store, error) {
	switch {
	case strings.HasPrefix(url, "sqlite:"):
		path := strings.TrimPrefix(url, "sqlite:")
		if path == "" {
			return nil, fmt.Errorf("db %q: sqlite needs a path, e.g. sqlite:./neocloud.db", url)
		}
		return sqlite.Open(ctx, path)
	case strings.HasPrefix(url, "postgres://"), strings.HasPrefix(url, "postgresql://"):
		return postgres.Open(ctx, url)
	default:
		return nil, fmt.Errorf("db %q: want sqlite:PATH or postgres://user@host/db", Redact(url))
	}
}

// Redact hides passwords in a database URL — in its user info and in a
// password query parameter — for logs and errors.
func Redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" {
		return raw
	}
	if _, has := u.User.Password(); has {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	q := u.Query()
	if q.Has("password") {
		q.Set("password", "xxxxx")
		u.RawQuery = q.Encode()
	}
	return u.String()
}

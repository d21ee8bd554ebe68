package store_test

import (
	"context"
	"strings"
	"testing"

	"github.com/neocloud/neocloud/internal/store"
)

func TestRedact(t *testing.T) {
	tests := map[string]string{
		"postgres://neo:s3cret@db:5432/nc?sslmode=disable": "postgres://neo:xxxxx@db:5432/nc?sslmode=disable",
		"postgres://neo@db/nc?password=s3cret":             "postgres://neo@db/nc?password=xxxxx",
		"postgres://neo@db/nc":                             "postgres://neo@db/nc",
		"sqlite:/var/lib/neocloud/nc.db":                   "sqlite:/var/lib/neocloud/nc.db",
	}
	for in, want := range tests {
		if got := store.Redact(in); got != want || strings.Contains(got, "s3cret") {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestOpenRefusesUnknownURLs(t *testing.T) {
	for _, url := range []string{"", "sqlite:", "mysql://u:s3cret@y/z"} {
		_, err := store.Open(context.Background(), url)
		if err == nil {
			t.Errorf("Open(%q) succeeded", url)
		} else if strings.Contains(err.Error(), "s3cret") {
			t.Errorf("Open(%q) error leaks the password: %v", url, err)
		}
	}
}

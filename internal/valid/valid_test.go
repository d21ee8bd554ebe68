package valid_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/neocloud/neocloud/internal/valid"
)

func TestError(t *testing.T) {
	var e valid.Error
	if e.Err() != nil {
		t.Fatal("empty Error is an error")
	}
	e.Add("sites[0].name", "Bad Name", "must be a slug")
	e.Add("sites[0].pue", 0.5, "must be between %.1f and %.1f", 1.0, 3.0)
	e.Add("version", nil, "is required")
	err := e.Err()
	var ve *valid.Error
	if !errors.As(err, &ve) || ve.Len() != 3 {
		t.Fatalf("Err() = %v", err)
	}
	want := []string{
		`sites[0].name: must be a slug (got "Bad Name")`,
		`sites[0].pue: must be between 1.0 and 3.0 (got 0.5)`,
		`version: is required`,
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("message %q lacks %q", err, w)
		}
	}
	for range 20 {
		e.Add("x", 1, "r")
	}
	if !strings.Contains(e.Error(), "and 13 more") {
		t.Errorf("long list not truncated: %s", e.Error())
	}
}

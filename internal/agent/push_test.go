package agent

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestBackoff(t *testing.T) {
	var b backoff
	for n := range 12 {
		step := min(backoffBase<<n, backoffCap)
		for range 50 {
			c := b // the same failure count each time
			if d := c.next(0); d < step/2 || d > step {
				t.Fatalf("after %d failures: wait %s, want within [%s, %s]", n, d, step/2, step)
			}
		}
		b.next(0)
	}
	if d := b.next(0); d > backoffCap {
		t.Errorf("wait %s beyond the cap %s", d, backoffCap)
	}
	if d := b.next(90 * time.Second); d != 90*time.Second {
		t.Errorf("with Retry-After 90s: wait %s, want 90s", d)
	}
	b.reset()
	if d := b.next(0); d > backoffBase {
		t.Errorf("after reset: wait %s, want at most %s", d, backoffBase)
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC)
	tests := []struct {
		header string
		want   time.Duration
	}{
		{"", 0},
		{"7", 7 * time.Second},
		{" 7 ", 7 * time.Second},
		{"0", 0},
		{"-3", 0},
		{"86400", maxRetryAfter},
		{now.Add(30 * time.Second).Format(http.TimeFormat), 30 * time.Second},
		{now.Add(-time.Hour).Format(http.TimeFormat), 0},
		{now.Add(time.Hour).Format(http.TimeFormat), maxRetryAfter},
		{"soon", 0},
	}
	for _, tt := range tests {
		if got := retryAfter(tt.header, now); got != tt.want {
			t.Errorf("retryAfter(%q) = %s, want %s", tt.header, got, tt.want)
		}
	}
}

func TestMessage(t *testing.T) {
	tests := []struct {
		name, body, want string
	}{
		{"problem", `{"title":"Bad Request","detail":"invalid batch","errors":[{"message":"must be 0..100","location":"body.readings[0].util_pct","value":101}]}`,
			"invalid batch; body.readings[0].util_pct: must be 0..100 (got 101)"},
		{"title only", `{"title":"Unauthorized","status":401}`, "Unauthorized"},
		{"text", "  no such route\n", "no such route"},
		{"empty", "", ""},
		{"long", strings.Repeat("x", 5000), strings.Repeat("x", 1024) + "…"},
	}
	for _, tt := range tests {
		if got := message([]byte(tt.body)); got != tt.want {
			t.Errorf("%s: message = %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestBatchID(t *testing.T) {
	for in, want := range map[string]string{
		"# batch_id=a:b:1 agent=a\nnode,gpu\n": "a:b:1",
		"# agent=a batch_id=x\n":               "x",
		"node,gpu\n":                           "?",
		"":                                     "?",
	} {
		if got := batchID([]byte(in)); got != want {
			t.Errorf("batchID(%q) = %q, want %q", in, got, want)
		}
	}
}

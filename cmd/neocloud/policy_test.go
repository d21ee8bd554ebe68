package main

import (
	"strings"
	"testing"
	"time"
)

func TestParsePolicy(t *testing.T) {
	sanitize, pols, err := parsePolicy([]byte(`
sanitize: 10m
spot:
  H100-SXM:
    base_usd: "3.00"
    tiers: [{name: 5m, notice: 5m, premium_permille: 1000}, {name: 1h, notice: 1h, premium_permille: 1300}]
  lab-1/GB200:
    base_usd: "9.10"
    buffer_permille: 50
`))
	if err != nil {
		t.Fatal(err)
	}
	if sanitize != 10*time.Minute || len(pols) != 2 || pols["H100-SXM"].Base.Micros != 3_000_000 ||
		len(pols["H100-SXM"].Tiers) != 2 || pols["lab-1/GB200"].BufferPermille != 50 || len(pols["lab-1/GB200"].Curve) == 0 {
		t.Fatalf("parsed %s, %+v", sanitize, pols)
	}
	for _, tt := range []struct{ in, want string }{
		{"sanitize: 5s\n", "sanitize"},
		{"spot:\n  H100-SXM: {}\n", "spot.H100-SXM.base_usd"},
		{"spot:\n  H100-SXM:\n    base_usd: \"1\"\n    curve: [{utilization_permille: 0, multiplier_permille: 500}]\n", "spot.H100-SXM.curve"},
		{"spot:\n  H100-SXM:\n    base_usd: \"1\"\n    tiers: [{name: a, notice: 1h, premium_permille: 1000}, {name: b, notice: 5m, premium_permille: 1000}]\n", "spot.H100-SXM.tiers[1].notice"},
		{"bogus: 1\n", "bogus"},
	} {
		if _, _, err := parsePolicy([]byte(tt.in)); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: err = %v, want one naming %s", tt.in, err, tt.want)
		}
	}
}

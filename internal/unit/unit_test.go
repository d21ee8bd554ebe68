package unit_test

import (
	"math"
	"math/big"
	"testing"

	"pgregory.net/rapid"

	"github.com/neocloud/neocloud/internal/unit"
)

func TestPowerConversions(t *testing.T) {
	tests := []struct {
		in      float64
		fromMW  bool
		want    unit.Power
		wantErr bool
	}{
		{10.2, false, 10_200, false},
		{7.3333, false, 7_333, false},
		{300, true, 300_000_000, false},
		{0.0000004, true, 0, false},
		{math.NaN(), false, 0, true},
		{math.Inf(1), true, 0, true},
		{1e16, true, 0, true},
	}
	for _, tc := range tests {
		f := unit.PowerFromKW
		if tc.fromMW {
			f = unit.PowerFromMW
		}
		got, err := f(tc.in)
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("from(%v, MW=%v) = %v, %v; want %v, err %v", tc.in, tc.fromMW, got, err, tc.want, tc.wantErr)
		}
	}
	if s := unit.Power(301_360_896).String(); s != "301.361 MW" {
		t.Errorf("String = %q", s)
	}
}

// TestScaleProperty checks Scale against exact rational arithmetic:
// round half away from zero, never overflowing in between.
func TestScaleProperty(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		p := rapid.Int64Range(-1<<50, 1<<50).Draw(t, "watts")
		num := rapid.Int64Range(1, 5000).Draw(t, "num")
		den := rapid.Int64Range(1, 5000).Draw(t, "den")
		got := unit.Power(p).Scale(num, den)
		exact := new(big.Rat).SetFrac(new(big.Int).Mul(big.NewInt(p), big.NewInt(num)), big.NewInt(den))
		// Compared exactly: products beyond 2^53 do not fit a float64.
		diff := new(big.Rat).Sub(new(big.Rat).SetInt64(int64(got)), exact)
		if diff.Abs(diff).Cmp(big.NewRat(1, 2)) > 0 {
			t.Fatalf("%d × %d/%d = %d, exact %v: more than half a watt off", p, num, den, got, exact)
		}
		// Half-way cases round away from zero.
		twice := new(big.Int).Mul(big.NewInt(p), big.NewInt(2*num))
		q, m := new(big.Int).QuoRem(twice, big.NewInt(den), new(big.Int))
		if m.Sign() == 0 && q.Bit(0) == 1 { // exactly .5
			want := (q.Int64() + sign(p)) / 2
			if int64(got) != want {
				t.Fatalf("%d × %d/%d = %d, want %d (half away from zero)", p, num, den, got, want)
			}
		}
	})
}

func sign(x int64) int64 {
	if x < 0 {
		return -1
	}
	return 1
}

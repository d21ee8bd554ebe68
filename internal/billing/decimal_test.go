package billing

import (
	"errors"
	"math"
	"math/big"
	"testing"

	"pgregory.net/rapid"

	"github.com/neocloud/neocloud/internal/money"
)

func TestDecimal(t *testing.T) {
	tests := []struct {
		in      string
		want    decimal
		str     string
		wantErr error
	}{
		{"0", dec(0, 0), "0", nil},
		{"-0", dec(0, 0), "0", nil},
		{"720", dec(720, 0), "720", nil},
		{"-348", dec(-348, 0), "-348", nil},
		{"-0.5", dec(-5, 1), "-0.5", nil},
		{"347.222222", dec(347222222, 6), "347.222222", nil},
		{"1.500", dec(1500, 3), "1.5", nil},
		{"0.000001", dec(1, 6), "0.000001", nil},
		{"9223372036854775807", dec(1<<63-1, 0), "9223372036854775807", nil},
		{"-9223372036854775808", dec(-1<<63, 0), "-9223372036854775808", nil},
		{"-0.9223372036854775808", dec(-1<<63, 19), "", errDecimal}, // 19 fraction digits
		{"9223372036854775808", decimal{}, "", money.ErrOverflow},
		{"", decimal{}, "", errDecimal},
		{"-", decimal{}, "", errDecimal},
		{".5", decimal{}, "", errDecimal},
		{"5.", decimal{}, "", errDecimal},
		{"+5", decimal{}, "", errDecimal},
		{"1e3", decimal{}, "", errDecimal},
		{"1 000", decimal{}, "", errDecimal},
		{"--1", decimal{}, "", errDecimal},
	}
	for _, tt := range tests {
		got, err := parseDecimal(tt.in)
		if !errors.Is(err, tt.wantErr) {
			t.Errorf("parseDecimal(%q) err = %v, want %v", tt.in, err, tt.wantErr)
			continue
		}
		if err != nil {
			continue
		}
		if got != tt.want || got.String() != tt.str {
			t.Errorf("parseDecimal(%q) = %+v (%s), want %+v (%s)", tt.in, got, got, tt.want, tt.str)
		}
	}
	for _, tt := range []struct {
		d    decimal
		want string
	}{
		{dec(-5000, 4), "-0.5"}, {dec(1000, 2), "10"}, {dec(5, 6), "0.000005"}, {dec(-1<<63, 0), "-9223372036854775808"},
		{dec(-1<<63, 18), "-9.223372036854775808"}, {dec(301_360_896, 6), "301.360896"},
	} {
		if got := tt.d.String(); got != tt.want {
			t.Errorf("%+v.String() = %q, want %q", tt.d, got, tt.want)
		}
	}
}

// FuzzDecimal checks the quantity parser against math/big: whatever it
// accepts is the same number to big.Rat, prints back canonically and
// parses again to the same value; it never panics.
func FuzzDecimal(f *testing.F) {
	for _, s := range []string{"0", "-348", "-0.5", "347.222222", "1.500", "9223372036854775807", "-9223372036854775808", "0.000000000000000001", "", "-", "1e3", "٣"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := parseDecimal(s)
		r, ok := new(big.Rat).SetString(s)
		if err != nil {
			return
		}
		if !ok {
			t.Fatalf("parseDecimal(%q) = %+v, but big.Rat refuses it", s, d)
		}
		want := new(big.Rat).SetFrac(big.NewInt(d.unscaled), new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(d.scale)), nil))
		if r.Cmp(want) != 0 {
			t.Fatalf("parseDecimal(%q) = %s, big.Rat says %s", s, want.RatString(), r.RatString())
		}
		canon := d.String()
		again, err := parseDecimal(canon)
		if err != nil || again.String() != canon {
			t.Fatalf("%q prints as %q, which parses to %+v, %v", s, canon, again, err)
		}
		if r2, _ := new(big.Rat).SetString(canon); r2.Cmp(r) != 0 {
			t.Fatalf("%q prints as %q, another number", s, canon)
		}
	})
}

// TestMulRatio checks the 128-bit fast path against money.MulRatio (which
// is checked against math/big): the same result or the same error.
func TestMulRatio(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		edge := rapid.SampledFrom([]int64{0, 1, -1, 2, math.MaxInt64, math.MinInt64, math.MaxInt64 - 1, math.MinInt64 + 1})
		gen := rapid.OneOf(rapid.Int64(), rapid.Int64Range(-1e16, 1e16), rapid.Int64Range(-1000, 1000), edge)
		m, num := gen.Draw(t, "m"), gen.Draw(t, "num")
		den := rapid.OneOf(rapid.Int64Range(1, 1e18), rapid.Int64Range(1, 1000), rapid.SampledFrom([]int64{1, 2, 60, 720, 10_000, 1_000_000, math.MaxInt64})).Draw(t, "den")
		got, err := mulRatio(money.USD(m), num, den)
		want, werr := money.USD(m).MulRatio(num, den)
		if got != want || (err == nil) != (werr == nil) {
			t.Fatalf("mulRatio(%d, %d, %d) = %v, %v; money.MulRatio: %v, %v", m, num, den, got, err, want, werr)
		}
	})
	for _, tt := range [][3]int64{{3, 1, 2}, {-3, 1, 2}, {5, 1, 2}, {-5, 1, 2}, {7, 3, 4}, {math.MinInt64, 1, 1}, {math.MaxInt64, 2, 2}, {math.MaxInt64, 3, 2}} {
		got, err := mulRatio(money.USD(tt[0]), tt[1], tt[2])
		want, werr := money.USD(tt[0]).MulRatio(tt[1], tt[2])
		if got != want || (err == nil) != (werr == nil) {
			t.Errorf("mulRatio%v = %v, %v; money.MulRatio: %v, %v", tt, got, err, want, werr)
		}
	}
}

package money

import (
	"errors"
	"math"
	"math/big"
	"testing"

	"pgregory.net/rapid"
)

func TestParseFormat(t *testing.T) {
	tests := []struct {
		in      string
		def     string
		want    Money
		str     string
		wantErr error
	}{
		{"4.2", "USD", USD(4_200_000), "4.20 USD", nil},
		{"4.20 USD", "", USD(4_200_000), "4.20 USD", nil},
		{"-0.000001", "USD", USD(-1), "-0.000001 USD", nil},
		{"1250000000", "USD", USD(1_250_000_000 * Micro), "1250000000.00 USD", nil},
		{".5 EUR", "", New(500_000, "EUR"), "0.50 EUR", nil},
		{"+7", "", New(7*Micro, ""), "7.00", nil},
		{"-9223372036854.775808", "USD", USD(math.MinInt64), "-9223372036854.775808 USD", nil},
		{"9223372036854.775807", "USD", USD(math.MaxInt64), "9223372036854.775807 USD", nil},
		{"9223372036854.775808", "USD", Money{}, "", ErrOverflow},
		{"99999999999999999999", "USD", Money{}, "", ErrOverflow},
		{"1.0000001", "USD", Money{}, "", ErrSyntax},
		{"1.", "USD", Money{}, "", ErrSyntax},
		{".", "USD", Money{}, "", ErrSyntax},
		{"", "USD", Money{}, "", ErrSyntax},
		{"1e6", "USD", Money{}, "", ErrSyntax},
		{"1,000", "USD", Money{}, "", ErrSyntax},
		{"4.2 usd", "", Money{}, "", ErrSyntax},
		{"4.2 DOLLARS", "", Money{}, "", ErrSyntax},
	}
	for _, tt := range tests {
		got, err := Parse(tt.in, tt.def)
		if !errors.Is(err, tt.wantErr) {
			t.Errorf("Parse(%q, %q) err = %v, want %v", tt.in, tt.def, err, tt.wantErr)
			continue
		}
		if err != nil {
			continue
		}
		if got != tt.want || got.String() != tt.str {
			t.Errorf("Parse(%q, %q) = %#v (%s), want %#v (%s)", tt.in, tt.def, got, got, tt.want, tt.str)
		}
	}
}

func TestArithmeticErrors(t *testing.T) {
	max := USD(math.MaxInt64)
	if _, err := max.Add(USD(1)); !errors.Is(err, ErrOverflow) {
		t.Errorf("MaxInt64 + 1: err = %v, want ErrOverflow", err)
	}
	if _, err := USD(math.MinInt64).Sub(USD(1)); !errors.Is(err, ErrOverflow) {
		t.Errorf("MinInt64 − 1: err = %v, want ErrOverflow", err)
	}
	if _, err := USD(0).Sub(USD(math.MinInt64)); !errors.Is(err, ErrOverflow) {
		t.Errorf("0 − MinInt64: err = %v, want ErrOverflow", err)
	}
	if got, err := USD(-1).Sub(USD(math.MinInt64)); err != nil || got.Micros != math.MaxInt64 {
		t.Errorf("−1 − MinInt64 = %v, %v; want MaxInt64 (found by TestAgainstBig)", got, err)
	}
	if _, err := USD(1).Add(New(1, "EUR")); !errors.Is(err, ErrCurrency) {
		t.Errorf("USD + EUR: err = %v, want ErrCurrency", err)
	}
	if got, err := (Money{}).Add(New(5, "EUR")); err != nil || got != New(5, "EUR") {
		t.Errorf("zero + 5 EUR = %v, %v; want 5 EUR", got, err)
	}
	if _, err := max.Mul(2); !errors.Is(err, ErrOverflow) {
		t.Errorf("MaxInt64 × 2: err = %v, want ErrOverflow", err)
	}
	if _, err := USD(1).MulRatio(1, 0); err == nil {
		t.Error("MulRatio by zero: err = nil")
	}
	if _, err := USD(1).Cmp(New(1, "EUR")); !errors.Is(err, ErrCurrency) {
		t.Errorf("Cmp USD EUR: err = %v, want ErrCurrency", err)
	}
}

// TestRounding pins half-even rounding, the rule invoices finalize with.
func TestRounding(t *testing.T) {
	tests := []struct {
		micros, cents int64
	}{
		{5_000, 0},         // 0.005 → 0.00 (tie, 0 even)
		{15_000, 20_000},   // 0.015 → 0.02 (tie, 2 even)
		{25_000, 20_000},   // 0.025 → 0.02
		{25_001, 30_000},   // above the tie
		{-25_000, -20_000}, // negative tie
		{-35_000, -40_000},
		{1_234_567, 1_230_000},
		{math.MaxInt64, math.MaxInt64 / 10_000 * 10_000},
		{math.MinInt64, math.MinInt64 / 10_000 * 10_000},
	}
	for _, tt := range tests {
		if got := USD(tt.micros).RoundCents(); got.Micros != tt.cents {
			t.Errorf("RoundCents(%d) = %d, want %d", tt.micros, got.Micros, tt.cents)
		}
	}
	// MulRatio ties go to even micro-units too.
	for _, tt := range []struct{ m, num, den, want int64 }{
		{1, 1, 2, 0}, {3, 1, 2, 2}, {-3, 1, 2, -2}, {7, 3, 4, 5}, {10, 1, 3, 3},
	} {
		if got, _ := USD(tt.m).MulRatio(tt.num, tt.den); got.Micros != tt.want {
			t.Errorf("%d × %d / %d = %d, want %d", tt.m, tt.num, tt.den, got.Micros, tt.want)
		}
	}
}

// TestAgainstBig checks Add, Sub and MulRatio against math/big: the result
// is exact (half-even for MulRatio) or an overflow error, never wrong.
func TestAgainstBig(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		gen := rapid.OneOf(rapid.Int64(), rapid.Int64Range(-1e12, 1e12), rapid.SampledFrom([]int64{0, 1, -1, math.MaxInt64, math.MinInt64}))
		a, b := gen.Draw(t, "a"), gen.Draw(t, "b")
		check := func(op string, got Money, err error, want *big.Int) {
			fits := want.IsInt64()
			switch {
			case fits && err != nil:
				t.Fatalf("%s: err = %v, want %s", op, err, want)
			case fits && got.Micros != want.Int64():
				t.Fatalf("%s = %d, want %s", op, got.Micros, want)
			case !fits && !errors.Is(err, ErrOverflow):
				t.Fatalf("%s = %d, %v; want ErrOverflow (exact %s)", op, got.Micros, err, want)
			}
		}
		sum, err := USD(a).Add(USD(b))
		check("add", sum, err, new(big.Int).Add(big.NewInt(a), big.NewInt(b)))
		diff, err := USD(a).Sub(USD(b))
		check("sub", diff, err, new(big.Int).Sub(big.NewInt(a), big.NewInt(b)))
		num, den := rapid.Int64Range(-1e6, 1e6).Draw(t, "num"), rapid.Int64Range(1, 1e6).Draw(t, "den")
		prod, err := USD(a).MulRatio(num, den)
		exact := new(big.Rat).SetFrac(new(big.Int).Mul(big.NewInt(a), big.NewInt(num)), big.NewInt(den))
		check("mulratio", prod, err, roundHalfEven(exact))
	})
}

// roundHalfEven rounds r the slow way, as a reference.
func roundHalfEven(r *big.Rat) *big.Int {
	fl := new(big.Int).Div(r.Num(), r.Denom()) // Euclidean: floor for a positive denominator
	rem := new(big.Rat).Sub(r, new(big.Rat).SetInt(fl))
	switch rem.Cmp(big.NewRat(1, 2)) {
	case 1:
		return fl.Add(fl, big.NewInt(1))
	case 0:
		if fl.Bit(0) == 1 {
			return fl.Add(fl, big.NewInt(1))
		}
	}
	return fl
}

func FuzzParseMicros(f *testing.F) {
	for _, s := range []string{"0", "4.2", "-0.000001", "9223372036854.775807", "1e6", ".", "+.1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m, err := ParseMicros(s)
		if err != nil {
			return
		}
		back, err := ParseMicros(Format(m))
		if err != nil || back != m {
			t.Fatalf("ParseMicros(Format(%d)) = %d, %v (from %q)", m, back, err, s)
		}
		r, ok := new(big.Rat).SetString(s)
		if !ok {
			t.Fatalf("ParseMicros accepted %q, which is not a decimal", s)
		}
		if want := new(big.Rat).Mul(r, big.NewRat(Micro, 1)); want.Cmp(new(big.Rat).SetInt64(m)) != 0 {
			t.Fatalf("ParseMicros(%q) = %d, want %s", s, m, want.FloatString(0))
		}
	})
}

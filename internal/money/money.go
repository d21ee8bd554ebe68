// Package money is Neocloud's money type: an amount in integer
// micro-units (millionths) of a currency. Arithmetic is checked — an
// overflow or a mix of currencies is an error, never a wrong number — and
// no float64 is on any money path: prices are parsed from decimal text and
// scaled with 128-bit intermediates. Amounts round to cents (half-even)
// only when asked, which billing does when an invoice line is finalized.
package money

import (
	"errors"
	"fmt"
	"math"
	"math/big"
	"strings"
)

// Micro is the number of micro-units in one unit of a currency.
const Micro = 1_000_000

// Errors returned by the arithmetic and the parser.
var (
	ErrOverflow = errors.New("money: amount out of range")
	ErrCurrency = errors.New("money: currencies differ")
	ErrSyntax   = errors.New("money: not a decimal amount")
)

// Money is an amount of a currency in micro-units. The zero Money is zero
// of no currency; it adds to an amount of any currency.
type Money struct {
	Micros   int64
	Currency string // ISO 4217 code, e.g. "USD"
}

// New returns micros micro-units of currency.
func New(micros int64, currency string) Money { return Money{Micros: micros, Currency: currency} }

// USD returns micros micro-dollars.
func USD(micros int64) Money { return Money{Micros: micros, Currency: "USD"} }

// IsZero reports whether m is zero, whatever its currency.
func (m Money) IsZero() bool { return m.Micros == 0 }

// currency returns the currency of a sum of a and b, or ErrCurrency. A
// zero amount without a currency takes the other's.
func currency(a, b Money) (string, error) {
	switch {
	case a.Currency == b.Currency:
		return a.Currency, nil
	case a.Currency == "" && a.Micros == 0:
		return b.Currency, nil
	case b.Currency == "" && b.Micros == 0:
		return a.Currency, nil
	}
	return "", fmt.Errorf("%w: %s and %s", ErrCurrency, a.Currency, b.Currency)
}

// Add returns m + o, or ErrCurrency or ErrOverflow.
func (m Money) Add(o Money) (Money, error) {
	c, err := currency(m, o)
	if err != nil {
		return Money{}, err
	}
	s := m.Micros + o.Micros
	if (s > m.Micros) != (o.Micros > 0) {
		return Money{}, fmt.Errorf("%w: %s + %s", ErrOverflow, m, o)
	}
	return Money{Micros: s, Currency: c}, nil
}

// Sub returns m − o, or ErrCurrency or ErrOverflow.
func (m Money) Sub(o Money) (Money, error) {
	c, err := currency(m, o)
	if err != nil {
		return Money{}, err
	}
	d := m.Micros - o.Micros
	if (d < m.Micros) != (o.Micros > 0) {
		return Money{}, fmt.Errorf("%w: %s − %s", ErrOverflow, m, o)
	}
	return Money{Micros: d, Currency: c}, nil
}

// Neg returns −m, or ErrOverflow.
func (m Money) Neg() (Money, error) {
	if m.Micros == math.MinInt64 {
		return Money{}, fmt.Errorf("%w: −%s", ErrOverflow, m)
	}
	return Money{Micros: -m.Micros, Currency: m.Currency}, nil
}

// Mul returns m × n, or ErrOverflow.
func (m Money) Mul(n int64) (Money, error) {
	return m.MulRatio(n, 1)
}

// MulRatio returns m × num / den rounded half-even to the micro-unit, or
// ErrOverflow; den must not be zero. It prices quantities: a rate per
// GPU-hour times GPU-seconds over 3600, a monthly fee times hours held over
// hours in the month.
func (m Money) MulRatio(num, den int64) (Money, error) {
	if den == 0 {
		return Money{}, fmt.Errorf("money: %s × %d / 0: division by zero", m, num)
	}
	p := new(big.Int).Mul(big.NewInt(m.Micros), big.NewInt(num))
	q := divHalfEven(p, big.NewInt(den))
	if !q.IsInt64() {
		return Money{}, fmt.Errorf("%w: %s × %d / %d", ErrOverflow, m, num, den)
	}
	return Money{Micros: q.Int64(), Currency: m.Currency}, nil
}

// divHalfEven returns n / d rounded to the nearest integer, ties to even.
func divHalfEven(n, d *big.Int) *big.Int {
	q, r := new(big.Int).QuoRem(n, d, new(big.Int))
	if r.Sign() == 0 {
		return q
	}
	twice := new(big.Int).Abs(r)
	twice.Lsh(twice, 1)
	switch twice.Cmp(new(big.Int).Abs(d)) {
	case -1:
		return q
	case 0:
		if q.Bit(0) == 0 {
			return q
		}
	}
	// The exact quotient lies beyond q, away from zero.
	if (n.Sign() < 0) != (d.Sign() < 0) {
		return q.Sub(q, big.NewInt(1))
	}
	return q.Add(q, big.NewInt(1))
}

// RoundCents returns m rounded half-even to a hundredth of a unit (a cent).
func (m Money) RoundCents() Money {
	const cent = Micro / 100
	q := divHalfEven(big.NewInt(m.Micros), big.NewInt(cent))
	// |q × cent| ≤ |m| + cent/2, which fits unless m is within half a cent
	// of the int64 limits; stay at the limit's cent then.
	r := new(big.Int).Mul(q, big.NewInt(cent))
	if !r.IsInt64() {
		r.Sub(r, big.NewInt(int64(q.Sign())*cent))
	}
	return Money{Micros: r.Int64(), Currency: m.Currency}
}

// Cmp compares m and o: −1, 0 or +1; it returns ErrCurrency when their
// currencies differ (zero without a currency compares with any).
func (m Money) Cmp(o Money) (int, error) {
	if _, err := currency(m, o); err != nil {
		return 0, err
	}
	switch {
	case m.Micros < o.Micros:
		return -1, nil
	case m.Micros > o.Micros:
		return 1, nil
	}
	return 0, nil
}

// String formats m as a decimal with as many fraction digits as needed
// (at least two) and its currency: "4.20 USD", "0.000001 USD", "-3.50".
func (m Money) String() string {
	s := Format(m.Micros)
	if m.Currency == "" {
		return s
	}
	return s + " " + m.Currency
}

// Format writes micros as a decimal amount with at least two fraction
// digits and no trailing zeros beyond them.
func Format(micros int64) string {
	neg := micros < 0
	u := uint64(micros)
	if neg {
		u = -u
	}
	frac := fmt.Sprintf("%06d", u%Micro)
	frac = strings.TrimRight(frac, "0")
	for len(frac) < 2 {
		frac += "0"
	}
	s := fmt.Sprintf("%d.%s", u/Micro, frac)
	if neg {
		s = "-" + s
	}
	return s
}

// ParseMicros reads a decimal amount ("4.2", "-0.000001", "1250000000")
// as micro-units: at most 6 fraction digits, no exponent, no separators.
// It returns ErrSyntax or ErrOverflow.
func ParseMicros(s string) (int64, error) {
	t := s
	neg := false
	if t != "" && (t[0] == '-' || t[0] == '+') {
		neg = t[0] == '-'
		t = t[1:]
	}
	whole, frac, dot := strings.Cut(t, ".")
	if whole == "" && frac == "" || dot && frac == "" {
		return 0, fmt.Errorf("%w: %q", ErrSyntax, s)
	}
	if len(frac) > 6 {
		return 0, fmt.Errorf("%w: %q has more than 6 fraction digits", ErrSyntax, s)
	}
	var u uint64
	for _, c := range whole + frac + strings.Repeat("0", 6-len(frac)) {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("%w: %q", ErrSyntax, s)
		}
		if u > 1<<63/10 {
			return 0, fmt.Errorf("%w: %q", ErrOverflow, s)
		}
		u = u*10 + uint64(c-'0') // ≤ 2^63 + 9: no wrap
		if u > 1<<63 {
			return 0, fmt.Errorf("%w: %q", ErrOverflow, s)
		}
	}
	switch {
	case neg && u <= 1<<63:
		return int64(-u), nil
	case !neg && u <= math.MaxInt64:
		return int64(u), nil
	}
	return 0, fmt.Errorf("%w: %q", ErrOverflow, s)
}

// Parse reads "AMOUNT CURRENCY" or a bare amount of currency def, e.g.
// Parse("4.20 USD", "") or Parse("4.2", "USD").
func Parse(s, def string) (Money, error) {
	amount, cur, ok := strings.Cut(strings.TrimSpace(s), " ")
	if !ok {
		cur = def
	}
	cur = strings.TrimSpace(cur)
	if cur != "" && !isCode(cur) {
		return Money{}, fmt.Errorf("%w: currency %q is not a 3-letter ISO 4217 code", ErrSyntax, cur)
	}
	m, err := ParseMicros(amount)
	if err != nil {
		return Money{}, err
	}
	return Money{Micros: m, Currency: cur}, nil
}

func isCode(c string) bool {
	if len(c) != 3 {
		return false
	}
	for _, r := range c {
		if r < 'A' || r > 'Z' {
			return false
		}
	}
	return true
}

package billing

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/neocloud/neocloud/internal/money"
)

// LineKind says what an invoice line is.
type LineKind string

// Line kinds, in the order an invoice lists them within one lease.
const (
	LineFee        LineKind = "fee"        // a contract's monthly fee or commitment, a reservation
	LineProration  LineKind = "proration"  // the part of a monthly fee for hours not held
	LineDiscount   LineKind = "discount"   // a discounted month
	LineSLACredit  LineKind = "sla-credit" // a credit for availability under the SLA target
	LineUsage      LineKind = "usage"      // spot GPU-minutes
	LineEnergy     LineKind = "energy"     // energy passed through at the tariff
	LineAdjustment LineKind = "adjustment" // a correction (credit notes, next month's draft)
)

// LineKinds lists every line kind in invoice order.
var LineKinds = []LineKind{LineFee, LineProration, LineDiscount, LineSLACredit, LineUsage, LineEnergy, LineAdjustment}

// rank returns k's place in LineKinds, or len(LineKinds) for an unknown kind.
func (k LineKind) rank() int {
	if i := slices.Index(LineKinds, k); i >= 0 {
		return i
	}
	return len(LineKinds)
}

// Unit is what a line's quantity counts.
type Unit string

// Units of line quantities.
const (
	UnitMonth     Unit = "month"
	UnitHour      Unit = "hour"
	UnitGPUHour   Unit = "GPU-hour"
	UnitGPUMinute Unit = "GPU-minute"
	UnitKWh       Unit = "kWh"
	UnitMWMonth   Unit = "MW-month"
	UnitEach      Unit = "each"
)

// Line is one invoice line: what one lease was charged or credited for
// one thing in one month.
//
// A line carries its own proof: Amount is Quantity × UnitPrice / Per,
// computed exactly and rounded half-even to the micro-unit — and, once the
// invoice is finalized, rounded again half-even to the cent. Per exists
// because some prices are not for one unit of the quantity: a spot price
// is per GPU-hour but spot is billed by the GPU-minute (Per 60), and a
// proration prices hours at the month's fee per hours in that month (Per
// 720 in a 30-day month). Check verifies the rule.
type Line struct {
	Kind        LineKind
	LeaseID     string // empty for a line about the whole invoice
	Description string
	// From and To bound the service the line is for, [From, To).
	From, To time.Time
	// Quantity is an exact decimal ("1", "-348", "-0.5", "1234.567891"),
	// negative for discounts, prorations and credits.
	Quantity  string
	Unit      Unit
	UnitPrice money.Money // the price of Per units
	Per       int64       // ≥ 1
	Amount    money.Money
}

// ErrLineAmount reports a line whose amount is not its quantity times its
// unit price (per Per units), rounded as the rules say.
var ErrLineAmount = errors.New("billing: line amount is not quantity × unit price")

// Exact returns Quantity × UnitPrice / Per rounded half-even to the
// micro-unit: what Amount is until the invoice is finalized. It returns an
// error when Quantity is not a decimal or Per is below 1, and one wrapping
// money.ErrOverflow when the result does not fit.
func (l Line) Exact() (money.Money, error) {
	q, err := parseDecimal(l.Quantity)
	if err != nil {
		return money.Money{}, fmt.Errorf("quantity: %w", err)
	}
	if l.Per <= 0 {
		return money.Money{}, fmt.Errorf("per %d: must be at least 1", l.Per)
	}
	den, ok := mul64(pow10(q.scale), l.Per)
	if !ok {
		return money.Money{}, fmt.Errorf("per %d × 10^%d: %w", l.Per, q.scale, money.ErrOverflow)
	}
	return mulRatio(l.UnitPrice, q.unscaled, den)
}

// mulRatio returns money.MulRatio(m, num, den) — m × num / den rounded
// half-even to the micro-unit, or money.ErrOverflow — in 128-bit integers
// when the quotient fits 64 bits, which is nearly always: the fast path
// of rating, which makes one product per line.
func mulRatio(m money.Money, num, den int64) (money.Money, error) {
	if den > 0 && m.Micros != math.MinInt64 && num != math.MinInt64 {
		a, b, d := uint64(m.Micros), uint64(num), uint64(den)
		if m.Micros < 0 {
			a = -a
		}
		if num < 0 {
			b = -b
		}
		if hi, lo := bits.Mul64(a, b); hi < d {
			q, r := bits.Div64(hi, lo, d)
			// Half-even on the magnitude is half-even on the signed value.
			if r > d-r || r == d-r && q&1 == 1 {
				q++
			}
			if q <= math.MaxInt64 {
				v := int64(q)
				if (m.Micros < 0) != (num < 0) {
					v = -v
				}
				return money.Money{Micros: v, Currency: m.Currency}, nil
			}
		}
	}
	return m.MulRatio(num, den)
}

// Check returns nil when Amount is exactly Exact (an unfinalized line), or
// an error wrapping ErrLineAmount.
func (l Line) Check() error { return l.check(false) }

// check verifies Amount against Exact, rounded to the cent when
// finalized.
func (l Line) check(finalized bool) error {
	want, err := l.Exact()
	if err != nil {
		return fmt.Errorf("%w: %w", ErrLineAmount, err)
	}
	if finalized {
		want = want.RoundCents()
	}
	if want != l.Amount {
		return fmt.Errorf("%w: %s %s × %s / %d is %s, not %s", ErrLineAmount, l.Quantity, l.Unit, l.UnitPrice, l.Per, want, l.Amount)
	}
	return nil
}

// newLine returns a line whose Amount is quantity × price / per.
func newLine(kind LineKind, leaseID, desc string, from, to time.Time, q decimal, u Unit, price money.Money, per int64) (Line, error) {
	// Exact on q itself, without printing and parsing it back.
	den, ok := mul64(pow10(q.scale), per)
	if !ok {
		return Line{}, fmt.Errorf("%s line: per %d × 10^%d: %w", kind, per, q.scale, money.ErrOverflow)
	}
	amount, err := mulRatio(price, q.unscaled, den)
	if err != nil {
		return Line{}, fmt.Errorf("%s line: %w", kind, err)
	}
	return Line{Kind: kind, LeaseID: leaseID, Description: desc, From: from, To: to,
		Quantity: q.String(), Unit: u, UnitPrice: price, Per: per, Amount: amount}, nil
}

// Adjustment returns an adjustment line of amount for leaseID (empty for
// the whole invoice) over [from, to): quantity 1 "each" at amount. Credit
// notes carry negative adjustments; an undercharge found after an invoice
// was finalized goes on the next month's draft as a positive one.
func Adjustment(leaseID, description string, from, to time.Time, amount money.Money) Line {
	return Line{Kind: LineAdjustment, LeaseID: leaseID, Description: description, From: from, To: to,
		Quantity: "1", Unit: UnitEach, UnitPrice: amount, Per: 1, Amount: amount}
}

// compareLines orders lines on an invoice: by lease (lines without a lease
// last), kind (LineKinds order), service period, then every other field,
// so that the order is total and does not depend on how lines arrived.
func compareLines(a, b Line) int {
	if (a.LeaseID == "") != (b.LeaseID == "") {
		if a.LeaseID == "" {
			return 1
		}
		return -1
	}
	return cmp.Or(
		strings.Compare(a.LeaseID, b.LeaseID),
		cmp.Compare(a.Kind.rank(), b.Kind.rank()),
		strings.Compare(string(a.Kind), string(b.Kind)),
		a.From.Compare(b.From),
		a.To.Compare(b.To),
		strings.Compare(a.Description, b.Description),
		strings.Compare(a.Quantity, b.Quantity),
		strings.Compare(string(a.Unit), string(b.Unit)),
		strings.Compare(a.UnitPrice.Currency, b.UnitPrice.Currency),
		cmp.Compare(a.UnitPrice.Micros, b.UnitPrice.Micros),
		cmp.Compare(a.Per, b.Per),
		strings.Compare(a.Amount.Currency, b.Amount.Currency),
		cmp.Compare(a.Amount.Micros, b.Amount.Micros),
	)
}

// decimal is an exact decimal number: unscaled / 10^scale.
type decimal struct {
	unscaled int64
	scale    int
}

// maxScale bounds fraction digits: quantities need at most 6 (kWh to the
// milliwatt-hour, MW to the watt), and 10^18 still fits an int64.
const maxScale = 18

// pow10 returns 10^n for 0 <= n <= maxScale.
func pow10(n int) int64 {
	p := int64(1)
	for range n {
		p *= 10
	}
	return p
}

// dec returns the decimal n / 10^scale.
func dec(n int64, scale int) decimal { return decimal{unscaled: n, scale: scale} }

// String writes d in canonical form: no exponent, no '+', no leading zeros
// and no trailing fraction zeros ("-0.5", "1234.567891", "720").
func (d decimal) String() string {
	neg := d.unscaled < 0
	u := uint64(d.unscaled)
	if neg {
		u = -u
	}
	digits := strconv.FormatUint(u, 10)
	if d.scale > 0 {
		if len(digits) <= d.scale {
			digits = strings.Repeat("0", d.scale-len(digits)+1) + digits
		}
		whole, frac := digits[:len(digits)-d.scale], strings.TrimRight(digits[len(digits)-d.scale:], "0")
		digits = whole
		if frac != "" {
			digits += "." + frac
		}
	}
	if neg && u != 0 {
		return "-" + digits
	}
	return digits
}

// errDecimal reports text that is not a decimal quantity.
var errDecimal = errors.New("not a decimal quantity")

// parseDecimal reads a decimal quantity: an optional '-', digits, and an
// optional '.' followed by at most 18 digits; no '+', exponent, spaces or
// separators. The value must fit an int64 once scaled. It returns an error
// wrapping errDecimal, or money.ErrOverflow.
func parseDecimal(s string) (decimal, error) {
	t := s
	neg := strings.HasPrefix(t, "-")
	if neg {
		t = t[1:]
	}
	whole, frac, dot := strings.Cut(t, ".")
	if whole == "" || dot && frac == "" {
		return decimal{}, fmt.Errorf("%w: %q", errDecimal, s)
	}
	if len(frac) > maxScale {
		return decimal{}, fmt.Errorf("%w: %q has more than %d fraction digits", errDecimal, s, maxScale)
	}
	var u uint64
	for _, c := range whole + frac {
		if c < '0' || c > '9' {
			return decimal{}, fmt.Errorf("%w: %q", errDecimal, s)
		}
		if u > (1<<63)/10 {
			return decimal{}, fmt.Errorf("%w: %q", money.ErrOverflow, s)
		}
		u = u*10 + uint64(c-'0')
		if u > 1<<63 {
			return decimal{}, fmt.Errorf("%w: %q", money.ErrOverflow, s)
		}
	}
	switch {
	case neg:
		return decimal{unscaled: int64(-u), scale: len(frac)}, nil
	case u <= 1<<63-1:
		return decimal{unscaled: int64(u), scale: len(frac)}, nil
	}
	return decimal{}, fmt.Errorf("%w: %q", money.ErrOverflow, s)
}

// mul64 returns a × b and whether it did not overflow.
func mul64(a, b int64) (int64, bool) {
	if a == 0 || b == 0 {
		return 0, true
	}
	p := a * b
	if p/b != a || (a == -1 && b == -1<<63) || (b == -1 && a == -1<<63) {
		return 0, false
	}
	return p, true
}

// add64 returns a + b and whether it did not overflow.
func add64(a, b int64) (int64, bool) {
	s := a + b
	return s, (s > a) == (b > 0)
}

package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/neocloud/neocloud/internal/engine"
	"github.com/neocloud/neocloud/internal/money"
	"github.com/neocloud/neocloud/internal/tenant"
	"github.com/neocloud/neocloud/internal/valid"
)

// Formatting and error answers shared by the lease and tenant pages.

// utcMinute formats an instant for a table: UTC to the minute, "" for none.
func utcMinute(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02 15:04")
}

const gpuMsPerHour = int64(time.Hour / time.Millisecond)

// gpuHoursOf formats GPU-milliseconds as GPU-hours with three decimals,
// truncated (exact integer arithmetic: the figures are sums of exact
// integers and should add up as shown).
func gpuHoursOf(ms int64) string {
	neg := ms < 0
	if neg {
		ms = -ms
	}
	s := strconv.FormatInt(ms/gpuMsPerHour, 10) + "." + padMilli((ms%gpuMsPerHour)/(gpuMsPerHour/1000))
	if neg {
		s = "-" + s
	}
	return s
}

// kwhOf formats millijoules as kWh with three decimals, truncated.
func kwhOf(mj int64) string {
	const perKWh = 3_600_000_000 // mJ in a kWh
	if mj < 0 {
		return "-" + kwhOf(-mj)
	}
	return strconv.FormatInt(mj/perKWh, 10) + "." + padMilli((mj%perKWh)/(perKWh/1000))
}

func padMilli(n int64) string {
	s := strconv.FormatInt(n, 10)
	return strings.Repeat("0", 3-len(s)) + s
}

// ppmPercent formats parts per million as a percentage with four decimals.
func ppmPercent(ppm int64) string {
	return fmt.Sprintf("%d.%04d", ppm/10_000, ppm%10_000)
}

// moneyText formats money with its currency.
func moneyText(m money.Money) string {
	return withCurrency(money.Format(m.Micros), m.Currency)
}

// rateText formats a price per unit (per GPU-hour, per kWh) with
// thousands separators and every fraction digit it has (at least two): a
// rate multiplies, so its sub-cent digits are part of the terms.
func rateText(m money.Money) string {
	return withCurrency(groupThousands(money.Format(m.Micros)), m.Currency)
}

// amountText formats an amount (a monthly fee, a discount) for reading:
// rounded to cents (half-even, as invoice lines are), with thousands
// separators and its currency. exact is the amount to the micro-unit, for
// a tooltip, when that rounding dropped digits; "" otherwise.
func amountText(m money.Money) (text, exact string) {
	c := m.RoundCents()
	text = withCurrency(groupThousands(money.Format(c.Micros)), m.Currency)
	if c.Micros != m.Micros {
		exact = rateText(m)
	}
	return text, exact
}

func withCurrency(amount, currency string) string {
	if currency == "" {
		return amount
	}
	return amount + " " + currency
}

// groupThousands puts a comma between every three digits of a decimal
// amount's whole part ("-1234567.891" → "-1,234,567.891").
func groupThousands(s string) string {
	sign, digits := "", s
	if strings.HasPrefix(s, "-") {
		sign, digits = "-", s[1:]
	}
	whole, frac, dot := strings.Cut(digits, ".")
	var b strings.Builder
	b.WriteString(sign)
	for i := range len(whole) {
		if i > 0 && (len(whole)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteByte(whole[i])
	}
	if dot {
		b.WriteByte('.')
		b.WriteString(frac)
	}
	return b.String()
}

// formAnswer maps an error of a form's command to the status and message the
// page shows: bad input 422 (each issue names its field), a refusal or a
// state that does not allow the change 409, a missing permission 403, a
// missing object 404; anything else is a 500, logged, with a generic
// message.
func (s *Server) formAnswer(ctx context.Context, page string, err error) (status int, msg string) {
	var ve *valid.Error
	var ref *engine.Refusal
	switch {
	case errors.As(err, &ve):
		parts := make([]string, len(ve.Issues))
		for i, is := range ve.Issues {
			parts[i] = is.String()
		}
		return http.StatusUnprocessableEntity, "Invalid input: " + strings.Join(parts, "; ")
	case errors.As(err, &ref):
		return http.StatusConflict, "Refused: " + ref.Error()
	case errors.Is(err, engine.ErrState):
		return http.StatusConflict, err.Error()
	case errors.Is(err, tenant.ErrForbidden):
		return http.StatusForbidden, "Not allowed: " + err.Error()
	case errors.Is(err, tenant.ErrNotFound), errors.Is(err, engine.ErrNotFound):
		return http.StatusNotFound, "Not found."
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return http.StatusServiceUnavailable, "The request was cancelled or timed out; try again."
	}
	s.log.ErrorContext(ctx, "web: form", "page", page, "err", err)
	return http.StatusInternalServerError, "Internal error; see the server log."
}

// fieldIssue returns a *valid.Error with one issue.
func fieldIssue(field string, value any, rule string, args ...any) error {
	var v valid.Error
	v.Add(field, value, rule, args...)
	return v.Err()
}

package web

import (
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"time"

	"github.com/neocloud/neocloud/internal/engine"
	"github.com/neocloud/neocloud/internal/money"
	"github.com/neocloud/neocloud/internal/tenant"
	"github.com/neocloud/neocloud/internal/valid"
)

// revenueKinds are the revenue report's kinds in the order the page shows
// and stacks them; credits are negative and drawn below zero.
var revenueKinds = []string{engine.RevenueContract, engine.RevenueReservation, engine.RevenueSpot, engine.RevenueEnergy, engine.RevenueCredits}

var revenueColors = map[string]string{engine.RevenueContract: "#0072B2", engine.RevenueReservation: "#009E73",
	engine.RevenueSpot: "#E69F00", engine.RevenueEnergy: "#CC79A7", engine.RevenueCredits: "#D55E00"}

// maxRevenueMonths bounds the revenue page's window.
const maxRevenueMonths = 120

type revenueRow struct {
	Month                   string
	Kinds                   []string // billed (invoiced and draft) per revenueKinds
	Billed, Draft, Forecast string
	Total                   string
}

// usd formats micros rounded to cents (half-even) with thousands
// separators: 1,250,000,000.00.
func usd(micros int64) string {
	// Rounded to cents, Format gives exactly two fraction digits.
	return groupThousands(money.Format(money.USD(micros).RoundCents().Micros))
}

// monthStart returns the first instant of t's UTC month.
func monthStart(t time.Time) time.Time {
	t = t.UTC()
	return time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
}

// revenue shows revenue by month and kind (engine.Revenue): billed
// (finalized, paid and draft invoices, credit notes) per lease kind, and
// the forecast of contracts' scheduled charges for months not yet
// invoiced; a table and a stacked bar per month. from and to are months
// (2026-09), to included.
func (s *Server) revenue(w http.ResponseWriter, r *http.Request, p tenant.Principal, v view) {
	v.Title, v.Page = "Revenue", "revenue"
	if !s.operatorOnly(w, v, p, tenant.PermBillingRead) {
		return
	}
	cur := monthStart(s.eng.Clock().Now())
	from, to := cur.AddDate(0, -6, 0), cur.AddDate(0, 11, 0)
	var bad valid.Error
	q := r.URL.Query()
	for _, f := range []struct {
		name string
		t    *time.Time
	}{{"from", &from}, {"to", &to}} {
		x := q.Get(f.name)
		if x == "" {
			continue
		}
		t, err := time.Parse("2006-01", x)
		if err != nil {
			bad.Add(f.name, x, "must be a month, YYYY-MM (2026-09)")
			continue
		}
		*f.t = t
	}
	if bad.Len() == 0 {
		if to.Before(from) {
			bad.Add("to", to.Format("2006-01"), "must not be before from")
		} else if n := months(from, to) + 1; n > maxRevenueMonths {
			bad.Add("to", to.Format("2006-01"), fmt.Sprintf("must be at most %d months after from", maxRevenueMonths-1))
		}
	}
	data := struct {
		From, To string
		Kinds    []string
		Rows     []revenueRow
		Totals   revenueRow
		JSON     template.JS
	}{From: from.Format("2006-01"), To: to.Format("2006-01"), Kinds: revenueKinds}
	if err := bad.Err(); err != nil {
		v.Error, v.Data = err.Error(), data
		s.render(w, http.StatusBadRequest, "revenue", v)
		return
	}
	rows, err := s.eng.Revenue(r.Context(), p, from, to.AddDate(0, 1, 0))
	if err != nil {
		s.fail(w, v, err)
		return
	}
	n := months(from, to) + 1
	type monthSums struct {
		billed          map[string]*sum // by kind: invoiced and draft
		draft, forecast sum
	}
	per := make([]monthSums, n)
	for i := range per {
		per[i].billed = map[string]*sum{}
		for _, k := range revenueKinds {
			per[i].billed[k] = &sum{}
		}
	}
	for _, row := range rows {
		i := months(from, row.Month)
		if i < 0 || i >= n || per[i].billed[row.Kind] == nil {
			continue
		}
		per[i].billed[row.Kind].add(row.Invoiced, row.Draft)
		per[i].draft.add(row.Draft)
		per[i].forecast.add(row.Forecast)
	}
	chart := barChart{Unit: "USD"}
	stack := map[string]*barSeries{}
	for _, k := range revenueKinds {
		stack[k] = &barSeries{Label: k, Color: revenueColors[k]}
	}
	forecast := barSeries{Label: "forecast", Color: "#9ecae1"}
	totals := map[string]*sum{}
	for _, k := range revenueKinds {
		totals[k] = &sum{}
	}
	var billedAll, draftAll, forecastAll, grand sum
	for i, sm := range per {
		m := from.AddDate(0, i, 0)
		row := revenueRow{Month: m.Format("2006-01")}
		var billed sum
		for _, k := range revenueKinds {
			b := sm.billed[k].m
			row.Kinds = append(row.Kinds, usd(b.Micros))
			billed.add(b)
			totals[k].add(b)
			stack[k].Values = append(stack[k].Values, wholeUSD(b.Micros))
		}
		total := billed
		total.add(sm.forecast.m)
		billedAll.add(billed.m)
		draftAll.add(sm.draft.m)
		forecastAll.add(sm.forecast.m)
		grand.add(total.m)
		if err := errors.Join(billed.err, total.err, sm.draft.err, sm.forecast.err); err != nil {
			s.fail(w, v, fmt.Errorf("revenue %s: %w", row.Month, err))
			return
		}
		row.Billed, row.Draft, row.Forecast, row.Total = usd(billed.m.Micros), usd(sm.draft.m.Micros), usd(sm.forecast.m.Micros), usd(total.m.Micros)
		data.Rows = append(data.Rows, row)
		chart.T = append(chart.T, m.Unix())
		forecast.Values = append(forecast.Values, wholeUSD(sm.forecast.m.Micros))
	}
	for _, k := range revenueKinds {
		data.Totals.Kinds = append(data.Totals.Kinds, usd(totals[k].m.Micros))
		if totals[k].err != nil {
			s.fail(w, v, totals[k].err)
			return
		}
	}
	if err := errors.Join(billedAll.err, draftAll.err, forecastAll.err, grand.err); err != nil {
		s.fail(w, v, fmt.Errorf("revenue totals: %w", err))
		return
	}
	data.Totals.Billed, data.Totals.Draft, data.Totals.Forecast, data.Totals.Total = usd(billedAll.m.Micros), usd(draftAll.m.Micros), usd(forecastAll.m.Micros), usd(grand.m.Micros)
	for _, k := range revenueKinds[:len(revenueKinds)-1] { // credits go below zero
		chart.Stack = append(chart.Stack, *stack[k])
	}
	chart.Stack = append(chart.Stack, forecast)
	chart.Below = []barSeries{*stack[engine.RevenueCredits]}
	if data.JSON, err = chartJSON(chart); err != nil {
		s.fail(w, v, err)
		return
	}
	v.Data = data
	s.render(w, http.StatusOK, "revenue", v)
}

// sum adds amounts of money with checked arithmetic; the first error
// (an overflow, another currency) stays.
type sum struct {
	m   money.Money
	err error
}

func (s *sum) add(xs ...money.Money) {
	for _, x := range xs {
		if s.err != nil {
			return
		}
		if s.m.Currency == "" {
			s.m = money.USD(0)
		}
		if x.Currency == "" {
			x.Currency = s.m.Currency
		}
		s.m, s.err = s.m.Add(x)
	}
}

// months returns how many months b's month is after a's.
func months(a, b time.Time) int {
	return (b.Year()-a.Year())*12 + int(b.Month()) - int(a.Month())
}

// wholeUSD rounds micros to whole dollars for the chart (the table has
// the exact amounts).
func wholeUSD(micros int64) int64 {
	if micros < 0 {
		return -((-micros + 500_000) / 1_000_000)
	}
	return (micros + 500_000) / 1_000_000
}

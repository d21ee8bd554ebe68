package web

import (
	"errors"
	"html/template"
	"net/http"
	"strconv"

	"github.com/neocloud/neocloud/internal/demand"
	"github.com/neocloud/neocloud/internal/engine"
	"github.com/neocloud/neocloud/internal/tenant"
	"github.com/neocloud/neocloud/internal/valid"
)

// sellableMonths are the month counts the sellable page offers (any of
// 1 to engine.MaxSellableMonths is accepted).
var sellableMonths = []int{3, 6, 12, 24, 36}

type sellableRow struct {
	Month                                   string
	Healthy, Holdback, Guaranteed, Sellable int64
	SellableMW, ExceedHours, ExceedGPUHours string
}

// sellable shows, month by month, what a pool can still promise as
// guaranteed capacity under a holdback policy (neocloud sellable): a table
// and a stacked bar per month (guaranteed, holdback, sellable).
func (s *Server) sellable(w http.ResponseWriter, r *http.Request, p tenant.Principal, v view) {
	v.Title, v.Page = "Sellable", "sellable"
	if !s.operatorOnly(w, v, p, tenant.PermCapacityRead) {
		return
	}
	pools, err := s.eng.PoolRefs(r.Context(), p)
	if err != nil {
		s.fail(w, v, err)
		return
	}
	q := r.URL.Query()
	pool, known := pickPool(pools, q.Get("pool"))
	if !known {
		pool = ""
	}
	// The query's own checks, before the engine's: bad input is a 400.
	var bad valid.Error
	months, pol := 12, demand.DefaultPolicy()
	if x := q.Get("months"); x != "" {
		n, err := strconv.Atoi(x)
		if err != nil || n < 1 || n > engine.MaxSellableMonths {
			bad.Add("months", x, "must be a whole number from 1 to 36")
		} else {
			months = n
		}
	}
	if x := q.Get("quantile"); x != "" {
		f, err := strconv.ParseFloat(x, 64)
		if err != nil {
			bad.Add("quantile", x, "must be a number strictly between 0 and 1 (0.95 holds back the P95)")
		} else {
			pol.Quantile = f
		}
	}
	if x := q.Get("buffer_permille"); x != "" {
		n, err := strconv.ParseInt(x, 10, 64)
		if err != nil {
			bad.Add("buffer_permille", x, "must be a whole number from 0 to 1000")
		} else {
			pol.BufferPermille = n
		}
	}
	if bad.Len() == 0 {
		var pv *valid.Error
		if errors.As(pol.Validate(), &pv) {
			bad.Issues = append(bad.Issues, pv.Issues...)
		}
	}
	data := struct {
		Pool               string
		Sites              []site
		Months             int
		MonthChoices       []int
		Quantile, Buffer   string
		HistoryHours       int
		HistoryEnd, Notice string
		Rows               []sellableRow
		JSON               template.JS
	}{Pool: pool, Sites: bySite(pools), Months: months, MonthChoices: sellableMonths,
		Quantile: strconv.FormatFloat(pol.Quantile, 'f', -1, 64), Buffer: strconv.FormatInt(pol.BufferPermille, 10)}
	if !known {
		// A page that names the field and the pools there are, not a bare
		// 404.
		v.Error, v.Data = unknownPool(pools, q.Get("pool")), data
		s.render(w, http.StatusNotFound, "sellable", v)
		return
	}
	if err := bad.Err(); err != nil {
		v.Error, v.Data = err.Error(), data
		s.render(w, http.StatusBadRequest, "sellable", v)
		return
	}
	rep, err := s.eng.Sellable(r.Context(), p, pool, months, pol)
	if err != nil {
		// A pool without enough demand history: a state of the data, shown
		// as a notice on a page that is otherwise fine.
		if _, msg, ok := refusal(err); ok {
			data.Notice = msg
			v.Data = data
			s.render(w, http.StatusOK, "sellable", v)
			return
		}
		s.fail(w, v, err)
		return
	}
	data.HistoryHours, data.HistoryEnd = rep.HistoryHours, dateTime(rep.HistoryEnd)
	guaranteed := barSeries{Label: "guaranteed", Color: "#0072B2"}
	holdback := barSeries{Label: "holdback", Color: "#999999"}
	sell := barSeries{Label: "sellable", Color: "#009E73"}
	chart := barChart{Unit: "GPUs"}
	for _, m := range rep.Months {
		data.Rows = append(data.Rows, sellableRow{Month: m.Start.Format("2006-01"), Healthy: m.HealthyGPUs, Holdback: m.HoldbackGPUs,
			Guaranteed: m.GuaranteedGPUs, Sellable: m.SellableGPUs, SellableMW: mw2(m.SellablePower),
			ExceedHours: strconv.FormatFloat(m.ExceedHours, 'f', 1, 64), ExceedGPUHours: group(int64(m.ExceedGPUHours + 0.5))})
		chart.T = append(chart.T, m.Start.Unix())
		guaranteed.Values = append(guaranteed.Values, m.GuaranteedGPUs)
		holdback.Values = append(holdback.Values, m.HoldbackGPUs)
		sell.Values = append(sell.Values, m.SellableGPUs)
	}
	chart.Stack = []barSeries{guaranteed, holdback, sell}
	if data.JSON, err = chartJSON(chart); err != nil {
		s.fail(w, v, err)
		return
	}
	v.Data = data
	s.render(w, http.StatusOK, "sellable", v)
}

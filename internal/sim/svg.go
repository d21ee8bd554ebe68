package sim

import (
	"bytes"
	"encoding/xml"
	"math"
	"strconv"
	"time"
)

// The report's plots are hand-written SVG: a fixed canvas, a plot area,
// a legend on the right. Colours are the Okabe–Ito palette, which stays
// distinguishable under the common colour-vision deficiencies.
const (
	colBlue       = "#0072B2"
	colSky        = "#56B4E9"
	colGreen      = "#009E73"
	colOrange     = "#E69F00"
	colPurple     = "#CC79A7"
	colYellow     = "#F0E442"
	colVermillion = "#D55E00"
	colGrey       = "#DDDDDD"
	colBlack      = "#000000"
)

// Canvas and plot area, in SVG user units (pixels).
const (
	svgW, svgH             = 960, 420
	plotL, plotR           = 80, 740
	plotT, plotB           = 48, 360
	legendX                = 760
	charW                  = 6.6 // mean width of a character at font-size 11
	maxPlotPoints          = 2000
	dashed                 = "6 4"
	fontFamily             = "sans-serif"
	fontSize               = 11
	titleSize              = 14
	gridColour, axisColour = "#E5E5E5", "#333333"
)

// xy is a point in data units: x a time, y a value.
type xy struct {
	t time.Time
	v float64
}

type legendItem struct {
	name, colour string
	line         bool   // a line swatch rather than a filled box
	dash         string // stroke-dasharray of a line swatch
}

// chart writes one SVG plot with a time x axis and a linear y axis from 0.
type chart struct {
	b        bytes.Buffer
	from, to time.Time
	yMax     float64
	legend   []legendItem
}

// newChart starts a chart of title over [from, to) whose y axis reaches at
// least maxY; yUnit labels the y axis; usd formats ticks as dollars.
func newChart(title, yUnit string, from, to time.Time, maxY float64, usd bool) *chart {
	c := &chart{from: from, to: to}
	if !to.After(from) {
		c.to = from.Add(time.Hour)
	}
	step := niceStep(max(maxY, 1) / 5)
	if !usd {
		step = max(step, 1) // counts of GPUs or leases
	}
	c.yMax = math.Ceil(max(maxY, 1)/step-1e-9) * step
	b := &c.b
	b.WriteString(`<svg xmlns="http://www.w3.org/2000/svg" width="960" height="420" viewBox="0 0 960 420" font-family="` + fontFamily + `" font-size="` + strconv.Itoa(fontSize) + `">` + "\n")
	b.WriteString("<title>")
	esc(b, title)
	b.WriteString("</title>\n")
	b.WriteString(`<rect width="960" height="420" fill="#FFFFFF"/>` + "\n")
	c.text(plotL, 24, "start", titleSize, title, `font-weight="bold"`)
	c.text(plotL, 40, "start", fontSize, yUnit, `fill="#555555"`)
	// Horizontal grid and y ticks.
	for k := 0.0; k*step <= c.yMax+step*1e-9; k++ {
		v := k * step
		y := c.y(v)
		c.line(plotL, y, plotR, y, gridColour, 1, "")
		c.text(plotL-6, y+4, "end", fontSize, yLabel(v, step, c.yMax, usd), "")
	}
	// Vertical grid and x ticks: a label per tick, its context (year or
	// day) below it where it changes.
	prev := ""
	for i, tk := range timeTicks(from, c.to) {
		x := c.x(tk.at)
		c.line(x, plotT, x, plotB, gridColour, 1, "")
		c.line(x, plotB, x, plotB+5, axisColour, 1, "")
		c.text(x, plotB+18, "middle", fontSize, tk.label, "")
		if tk.context != "" && (i == 0 || tk.context != prev) {
			c.text(x, plotB+32, "middle", fontSize, tk.context, `fill="#555555"`)
		}
		prev = tk.context
	}
	b.WriteString("<g>\n") // the data
	return c
}

// x maps a time to a horizontal position, clamped to the plot area.
func (c *chart) x(t time.Time) float64 {
	f := float64(t.Sub(c.from)) / float64(c.to.Sub(c.from))
	return plotL + min(max(f, 0), 1)*(plotR-plotL)
}

// y maps a value to a vertical position, clamped to the plot area.
func (c *chart) y(v float64) float64 {
	return plotB - min(max(v/c.yMax, 0), 1)*(plotB-plotT)
}

// area fills from the x axis up to the line through pts.
func (c *chart) area(name, colour string, pts []xy) {
	c.legend = append(c.legend, legendItem{name: name, colour: colour})
	if len(pts) == 0 {
		return
	}
	b := &c.b
	b.WriteString(`<path fill="` + colour + `" d="M`)
	c.coords(pts[0].t, 0)
	for _, p := range pts {
		b.WriteString(" L")
		c.coords(p.t, p.v)
	}
	b.WriteString(" L")
	c.coords(pts[len(pts)-1].t, 0)
	b.WriteString(" Z\"/>\n")
}

// polyline draws the line through pts.
func (c *chart) polyline(name, colour, dash string, pts []xy) {
	c.legend = append(c.legend, legendItem{name: name, colour: colour, line: true, dash: dash})
	if len(pts) == 0 {
		return
	}
	b := &c.b
	b.WriteString(`<path fill="none" stroke="` + colour + `" stroke-width="1.5" stroke-linejoin="round"`)
	if dash != "" {
		b.WriteString(` stroke-dasharray="` + dash + `"`)
	}
	b.WriteString(` d="M`)
	for i, p := range pts {
		if i > 0 {
			b.WriteString(" L")
		}
		c.coords(p.t, p.v)
	}
	b.WriteString("\"/>\n")
}

// bars draws one bar per value over [from+i·width, from+(i+1)·width).
func (c *chart) bars(name, colour string, start time.Time, width time.Duration, vals []float64) {
	c.legend = append(c.legend, legendItem{name: name, colour: colour})
	b := &c.b
	b.WriteString(`<g fill="` + colour + `">` + "\n")
	for i, v := range vals {
		if v <= 0 {
			continue
		}
		t0 := start.Add(time.Duration(i) * width)
		x0, x1 := c.x(t0), c.x(t0.Add(width))
		if x1-x0 > 3 {
			x0, x1 = x0+0.5, x1-0.5 // a gap between wide bars
		}
		y := c.y(v)
		b.WriteString(`<rect x="`)
		num(b, x0)
		b.WriteString(`" y="`)
		num(b, y)
		b.WriteString(`" width="`)
		num(b, x1-x0)
		b.WriteString(`" height="`)
		num(b, plotB-y)
		b.WriteString("\"/>\n")
	}
	b.WriteString("</g>\n")
}

// bytes closes the chart: axes over the data, then the legend.
func (c *chart) bytes() []byte {
	b := &c.b
	b.WriteString("</g>\n")
	c.line(plotL, plotT, plotL, plotB, axisColour, 1, "")
	c.line(plotL, plotB, plotR, plotB, axisColour, 1, "")
	b.WriteString(`<g class="legend">` + "\n")
	for i, it := range c.legend {
		y := float64(plotT + 8 + 20*i)
		if it.line {
			c.line(legendX, y, legendX+18, y, it.colour, 2, it.dash)
		} else {
			b.WriteString(`<rect x="` + strconv.Itoa(legendX+3) + `" y="`)
			num(b, y-6)
			b.WriteString(`" width="12" height="12" fill="` + it.colour + `" stroke="#666666" stroke-width="0.5"/>` + "\n")
		}
		c.text(legendX+26, y+4, "start", fontSize, it.name, "")
	}
	b.WriteString("</g>\n</svg>\n")
	return b.Bytes()
}

func (c *chart) coords(t time.Time, v float64) {
	num(&c.b, c.x(t))
	c.b.WriteByte(',')
	num(&c.b, c.y(v))
}

func (c *chart) line(x0, y0, x1, y1 float64, colour string, width float64, dash string) {
	b := &c.b
	b.WriteString(`<line x1="`)
	num(b, x0)
	b.WriteString(`" y1="`)
	num(b, y0)
	b.WriteString(`" x2="`)
	num(b, x1)
	b.WriteString(`" y2="`)
	num(b, y1)
	b.WriteString(`" stroke="` + colour + `" stroke-width="`)
	num(b, width)
	if dash != "" {
		b.WriteString(`" stroke-dasharray="` + dash)
	}
	b.WriteString("\"/>\n")
}

func (c *chart) text(x, y float64, anchor string, size int, s, attrs string) {
	b := &c.b
	b.WriteString(`<text x="`)
	num(b, x)
	b.WriteString(`" y="`)
	num(b, y)
	b.WriteString(`" text-anchor="` + anchor + `"`)
	if size != fontSize {
		b.WriteString(` font-size="` + strconv.Itoa(size) + `"`)
	}
	if attrs != "" {
		b.WriteString(" " + attrs)
	}
	b.WriteByte('>')
	esc(b, s)
	b.WriteString("</text>\n")
}

// num writes v with one decimal: a tenth of a pixel is finer than any
// screen, and fixed precision keeps the bytes the same on every run.
func num(b *bytes.Buffer, v float64) {
	var tmp [32]byte
	b.Write(strconv.AppendFloat(tmp[:0], v, 'f', 1, 64))
}

func esc(b *bytes.Buffer, s string) {
	_ = xml.EscapeText(b, []byte(s)) // a bytes.Buffer does not fail
}

// niceStep returns the smallest 1, 2 or 5 × 10^k at or above raw.
func niceStep(raw float64) float64 {
	if !(raw > 0) || math.IsInf(raw, 0) {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= raw*(1-1e-9) {
			return m * p
		}
	}
	return 10 * p
}

// yLabel formats a tick v of an axis reaching top in steps of step: SI
// suffixes (k, M, G, T; B for billions of dollars) chosen by top, and as
// many decimals as the step needs.
func yLabel(v, step, top float64, usd bool) string {
	if v == 0 {
		if usd {
			return "$0"
		}
		return "0"
	}
	scale, suffix := 1.0, ""
	for _, s := range []struct {
		scale       float64
		count, cash string
	}{{1e12, "T", "T"}, {1e9, "G", "B"}, {1e6, "M", "M"}, {1e3, "k", "k"}} {
		if top >= s.scale {
			scale, suffix = s.scale, s.count
			if usd {
				suffix = s.cash
			}
			break
		}
	}
	dec := max(0, int(math.Ceil(-math.Log10(step/scale)-1e-9)))
	s := strconv.FormatFloat(v/scale, 'f', dec, 64) + suffix
	if usd {
		return "$" + s
	}
	return s
}

// timeTick is a tick on the time axis: its label, and context (the year,
// or the day for hourly ticks) shown below where it changes.
type timeTick struct {
	at             time.Time
	label, context string
}

// timeTicks returns ticks over [from, to] at the finest of hours, days,
// months or years whose labels do not overlap; all UTC.
func timeTicks(from, to time.Time) []timeTick {
	from, to = from.UTC(), to.UTC()
	type unit struct {
		steps          []int
		first          func(n int) time.Time
		next           func(t time.Time, n int) time.Time
		label, context string
	}
	hour := func(n int) time.Time {
		t := from.Truncate(time.Hour)
		for t.Before(from) || t.Hour()%n != 0 {
			t = t.Add(time.Hour)
		}
		return t
	}
	day := func(n int) time.Time {
		t := time.Date(from.Year(), from.Month(), from.Day(), 0, 0, 0, 0, time.UTC)
		if t.Before(from) {
			t = t.AddDate(0, 0, 1)
		}
		return t
	}
	month := func(n int) time.Time {
		t := time.Date(from.Year(), from.Month(), 1, 0, 0, 0, 0, time.UTC)
		for t.Before(from) || (int(t.Month())-1)%n != 0 {
			t = t.AddDate(0, 1, 0)
		}
		return t
	}
	year := func(n int) time.Time {
		t := time.Date(from.Year(), 1, 1, 0, 0, 0, 0, time.UTC)
		for t.Before(from) || t.Year()%n != 0 {
			t = t.AddDate(1, 0, 0)
		}
		return t
	}
	units := []unit{
		{[]int{1, 2, 3, 6, 12}, hour, func(t time.Time, n int) time.Time { return t.Add(time.Duration(n) * time.Hour) }, "15:04", "Jan 2"},
		{[]int{1, 2, 7, 14}, day, func(t time.Time, n int) time.Time { return t.AddDate(0, 0, n) }, "Jan 2", "2006"},
		{[]int{1, 2, 3, 6}, month, func(t time.Time, n int) time.Time { return t.AddDate(0, n, 0) }, "Jan", "2006"},
		{[]int{1, 2, 5, 10, 20, 50, 100}, year, func(t time.Time, n int) time.Time { return t.AddDate(n, 0, 0) }, "2006", ""},
	}
	span := float64(to.Sub(from))
	var ticks []timeTick
	for _, u := range units {
		for _, n := range u.steps {
			ticks = ticks[:0]
			widest := 0
			for t := u.first(n); !t.After(to); t = u.next(t, n) {
				tk := timeTick{at: t, label: t.Format(u.label)}
				if u.context != "" {
					tk.context = t.Format(u.context)
				}
				widest = max(widest, len(tk.label), len(tk.context))
				ticks = append(ticks, tk)
			}
			// The closest two ticks are a month of 28 days or n units apart.
			gap := float64(u.next(u.first(n), n).Sub(u.first(n)))
			if u.label == "Jan" {
				gap = float64(time.Duration(28*n) * 24 * time.Hour)
			}
			if span <= 0 || gap/span*(plotR-plotL) >= float64(widest)*charW+12 {
				return ticks
			}
		}
	}
	return ticks
}

// buckets splits n points into at most maxPlotPoints runs of equal length
// (the last may be shorter): [lo, hi) each.
func buckets(n int) [][2]int {
	k := max((n+maxPlotPoints-1)/maxPlotPoints, 1)
	out := make([][2]int, 0, (n+k-1)/k)
	for lo := 0; lo < n; lo += k {
		out = append(out, [2]int{lo, min(lo+k, n)})
	}
	return out
}

package sim

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/neocloud/neocloud/internal/money"
)

var reportFiles = []string{ReportFile, SummaryFile, CapacityPlot, RevenuePlot, ReclaimsPlot}

func readReport(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	for _, name := range reportFiles {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		out[name] = b
	}
	return out
}

// parseSVG decodes b as XML and returns the text of its elements and the
// number of vertices of its longest path.
func parseSVG(t *testing.T, name string, b []byte) (texts []string, longest int) {
	t.Helper()
	d := xml.NewDecoder(bytes.NewReader(b))
	var root string
	inText := false
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("%s: not XML: %v", name, err)
		}
		switch el := tok.(type) {
		case xml.StartElement:
			if root == "" {
				root = el.Name.Local
				if el.Name.Space != "http://www.w3.org/2000/svg" {
					t.Errorf("%s: root namespace %q", name, el.Name.Space)
				}
			}
			inText = el.Name.Local == "text"
			for _, a := range el.Attr {
				if a.Name.Local == "d" {
					longest = max(longest, strings.Count(a.Value, " L")+1)
				}
			}
		case xml.CharData:
			if inText {
				texts = append(texts, string(el))
			}
		case xml.EndElement:
			inText = false
		}
	}
	if root != "svg" {
		t.Errorf("%s: root element %q, want svg", name, root)
	}
	return texts, longest
}

func TestWriteReport(t *testing.T) {
	points := yearPoints(8760, 3)
	s, base := testSummary(t, points)
	dir := filepath.Join(t.TempDir(), "report", "nested")
	if err := WriteReport(dir, s, points, base); err != nil {
		t.Fatal(err)
	}
	files := readReport(t, dir)

	want, err := s.JSON()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(files[SummaryFile], want) {
		t.Errorf("summary.json is not Summary.JSON()")
	}

	legends := map[string][]string{
		CapacityPlot: {"internal (served)", "holdback (unused)", "contract", "reservation", "spot", "sanitizing", "idle", "healthy", "internal demand"},
		RevenuePlot:  {"contract", "reservation", "spot", "run total", "baseline total"},
		ReclaimsPlot: {"reclaims"},
	}
	for name, names := range legends {
		texts, longest := parseSVG(t, name, files[name])
		for _, n := range names {
			if !contains(texts, n) {
				t.Errorf("%s: no legend %q in %q", name, n, texts)
			}
		}
		// A year of hours is averaged down to at most 2,000 x-points
		// (plus the two edges).
		if longest > maxPlotPoints+2 {
			t.Errorf("%s: a path of %d points", name, longest)
		}
		// A year from September: monthly ticks with the year where it changes.
		for _, tick := range []string{"Sep", "Oct", "Jan", "Aug", "2026", "2027"} {
			if !contains(texts, tick) {
				t.Errorf("%s: no x tick %q", name, tick)
			}
		}
	}
	if _, longest := parseSVG(t, CapacityPlot, files[CapacityPlot]); longest < 1000 {
		t.Errorf("capacity.svg: longest path of %d points; want the year at ~1,752", longest)
	}

	md := string(files[ReportFile])
	for _, want := range []string{
		"# Simulation report", "Fleet `reference-300mw`, seed 42, 12 months: 2026-09-01T00:00:00Z to 2027-09-01T00:00:00Z (8,760 hours",
		"](capacity.svg)", "](revenue.svg)", "](reclaims.svg)",
		"| Idle GPU-hours", "| Monetized share of idle |", "## Engine", "| commands | 98,765 |",
		"| **Revenue, total (USD)** |", "## Baseline", "## Fields",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("report.md lacks %q", want)
		}
	}
	// The headline's totals are the summary's.
	if !strings.Contains(md, "| "+usd(s.Revenue.Total)+" | "+usd(s.Baseline.Revenue.Total)+" |") {
		t.Errorf("report.md lacks the revenue totals %s and %s", usd(s.Revenue.Total), usd(s.Baseline.Revenue.Total))
	}
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// TestWriteReportDeterministic writes the same report twice, from points
// built twice, and compares every byte.
func TestWriteReportDeterministic(t *testing.T) {
	var got []map[string][]byte
	for range 2 {
		points := yearPoints(24*45, 9)
		s, base := testSummary(t, points)
		dir := t.TempDir()
		if err := WriteReport(dir, s, points, base); err != nil {
			t.Fatal(err)
		}
		got = append(got, readReport(t, dir))
	}
	for _, name := range reportFiles {
		if !bytes.Equal(got[0][name], got[1][name]) {
			t.Errorf("%s differs between two identical runs", name)
		}
	}
}

func TestWriteReportShortRun(t *testing.T) {
	// Two hours, nothing leased, no revenue: the plots still parse.
	points := hourly(Point{Healthy: 8, Internal: 8, InternalMet: 8}, Point{Healthy: 8, Internal: 9, InternalMet: 8, InternalLate: 1})
	base, err := Baseline(points, []int64{0, 0}, money.USD(0))
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewSummary("tiny", 1, 0, points, base)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := WriteReport(dir, s, points, base); err != nil {
		t.Fatal(err)
	}
	files := readReport(t, dir)
	for _, name := range []string{CapacityPlot, RevenuePlot, ReclaimsPlot} {
		texts, _ := parseSVG(t, name, files[name])
		if name == CapacityPlot && !contains(texts, "00:00") {
			t.Errorf("%s: hourly ticks expected, got %q", name, texts)
		}
	}
	if strings.Contains(string(files[ReportFile]), "## Engine") {
		t.Error("report.md has an engine section without counters")
	}
}

func TestWriteReportErrors(t *testing.T) {
	points := hourly(Point{Healthy: 1})
	s := Summary{}
	for _, tt := range []struct {
		name         string
		points, base []Point
	}{
		{"no points", nil, nil},
		{"baseline length", points, nil},
		{"bad point", hourly(Point{Healthy: -1}), points},
		{"bad baseline", points, hourly(Point{Spot: -1})},
		{"currency", hourly(Point{SpotUSD: money.New(1, "EUR")}), points},
	} {
		dir := filepath.Join(t.TempDir(), "r")
		if err := WriteReport(dir, s, tt.points, tt.base); err == nil {
			t.Errorf("%s: no error", tt.name)
		}
		if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s: the report directory was created", tt.name)
		}
	}
	// A file where the directory should be.
	file := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := WriteReport(file, s, points, points); err == nil {
		t.Error("report into a file: no error")
	}
}

func TestTimeTicks(t *testing.T) {
	labels := func(from, to time.Time) (out []string) {
		for _, tk := range timeTicks(from, to) {
			out = append(out, tk.label)
		}
		return out
	}
	jan := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name     string
		from, to time.Time
		want     []string
	}{
		{"a year: months", jan, jan.AddDate(1, 0, 0), []string{"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec", "Jan"}},
		{"a day: 2 hours", jan, jan.AddDate(0, 0, 1), []string{"00:00", "02:00", "04:00", "06:00", "08:00", "10:00", "12:00", "14:00", "16:00", "18:00", "20:00", "22:00", "00:00"}},
		{"ten days: days", jan.Add(5 * time.Hour), jan.AddDate(0, 0, 10), []string{"Jan 2", "Jan 3", "Jan 4", "Jan 5", "Jan 6", "Jan 7", "Jan 8", "Jan 9", "Jan 10", "Jan 11"}},
		{"five years: every 6 months", jan, jan.AddDate(5, 0, 0), []string{"Jan", "Jul", "Jan", "Jul", "Jan", "Jul", "Jan", "Jul", "Jan", "Jul", "Jan"}},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, labels(tt.from, tt.to)); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tt.name, diff)
		}
	}
}

func TestYLabel(t *testing.T) {
	for _, tt := range []struct {
		v, step, top float64
		usd          bool
		want         string
	}{
		{0, 50_000, 250_000, false, "0"},
		{250_000, 50_000, 250_000, false, "250k"},
		{1_500_000, 500_000, 2_000_000, false, "1.5M"},
		{2_000_000, 500_000, 2_000_000, false, "2.0M"},
		{15e9, 5e9, 20e9, true, "$15B"},
		{2.5e9, 5e8, 3e9, true, "$2.5B"},
		{0, 1, 5, true, "$0"},
		{0.5, 0.5, 2, true, "$0.5"},
		{40, 10, 50, false, "40"},
	} {
		if got := yLabel(tt.v, tt.step, tt.top, tt.usd); got != tt.want {
			t.Errorf("yLabel(%v, %v, %v, %v) = %q, want %q", tt.v, tt.step, tt.top, tt.usd, got, tt.want)
		}
	}
	for raw, want := range map[float64]float64{0: 1, 0.3: 0.5, 1: 1, 1.1: 2, 3: 5, 7: 10, 46_000: 50_000, 2e9: 2e9} {
		if got := niceStep(raw); got != want {
			t.Errorf("niceStep(%v) = %v, want %v", raw, got, want)
		}
	}
}

func TestFormatting(t *testing.T) {
	for n, want := range map[int64]string{0: "0", 999: "999", 1_000: "1,000", -1_000: "-1,000", 1_234_567: "1,234,567", -12: "-12"} {
		if got := group(n); got != want {
			t.Errorf("group(%d) = %q, want %q", n, got, want)
		}
	}
	for m, want := range map[int64]string{
		1_250_000_000 * money.Micro: "1,250,000,000.00", -1: "-0.000001", 1_234_560_000: "1,234.56", 0: "0.00",
		-5_000 * money.Micro: "-5,000.00",
	} {
		if got := usd(money.USD(m)); got != want {
			t.Errorf("usd(%d) = %q, want %q", m, got, want)
		}
	}
}

func BenchmarkWriteReport(b *testing.B) {
	points := yearPoints(8760, 1)
	s, base := testSummary(b, points)
	dir := b.TempDir()
	for b.Loop() {
		if err := WriteReport(dir, s, points, base); err != nil {
			b.Fatal(err)
		}
	}
}

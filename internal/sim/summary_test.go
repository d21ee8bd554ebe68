package sim

import (
	"encoding/json"
	"errors"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"pgregory.net/rapid"

	"github.com/neocloud/neocloud/internal/money"
	"github.com/neocloud/neocloud/internal/valid"
)

// hourly returns points at t0, t0+1h, … from ps, which need not set At.
func hourly(ps ...Point) []Point {
	out := make([]Point, len(ps))
	for i, p := range ps {
		p.At = t0.Add(time.Duration(i) * time.Hour)
		out[i] = p
	}
	return out
}

// yearPoints returns n hourly points of a fleet of about 230,000 GPUs:
// diurnal internal demand, a ramping contract, reservations, spot on what
// is left, a few reclaims and failures, revenue of each kind. The same n
// and seed give the same points.
func yearPoints(n int, seed uint64) []Point {
	rng := rand.New(rand.NewPCG(seed, 1))
	out := make([]Point, n)
	for i := range out {
		at := t0.Add(time.Duration(i) * time.Hour)
		healthy := int64(230_000 - rng.IntN(800))
		internal := int64(40_000 + 15_000*math.Sin(2*math.Pi*float64(i%24)/24) + float64(rng.IntN(3_000)))
		met := internal
		if rng.IntN(50) == 0 {
			met -= int64(rng.IntN(2_000))
		}
		late := int64(0)
		if met < internal && rng.IntN(4) == 0 {
			late = (internal - met) / 2
		}
		contract := min(int64(100_000+i*10), 150_000)
		res := int64(10_000)
		spot := max(healthy-met-contract-res-int64(2_000+rng.IntN(4_000)), 0)
		reclaims := 0
		if rng.IntN(10) == 0 {
			reclaims = 1 + rng.IntN(3)
		}
		out[i] = Point{
			At: at, Healthy: healthy, Internal: internal, InternalMet: met, InternalLate: late,
			Holdback: 60_000, Contract: contract, Reservation: res, Spot: spot, Sanitizing: int64(rng.IntN(500)),
			ContractUSD:    money.USD(1_712_328_767_123), // $1.25B a month over 730 h
			ReservationUSD: money.USD(res * 2_500_000),
			SpotUSD:        money.USD(spot * 1_100_000),
			Reclaims:       reclaims, ReclaimedGPUs: int64(reclaims * 72), Failures: rng.IntN(8),
		}
	}
	return out
}

func usdRevenue(c, r, s int64) Revenue {
	return Revenue{Contract: money.USD(c), Reservation: money.USD(r), Spot: money.USD(s), Total: money.USD(c + r + s)}
}

func TestSummarize(t *testing.T) {
	tests := []struct {
		name   string
		points []Point
		want   Totals
	}{
		{
			name: "no points",
			want: Totals{Revenue: usdRevenue(0, 0, 0)},
		},
		{
			name: "all idle capacity leased",
			points: hourly(Point{Healthy: 100, Internal: 30, InternalMet: 30, Contract: 40, Reservation: 20, Spot: 10,
				ContractUSD: money.USD(5), ReservationUSD: money.USD(7), SpotUSD: money.USD(11)}),
			want: Totals{
				HealthyGPUHours: 100, InternalGPUHours: 30, InternalMetGPUHours: 30, IdleGPUHours: 70, MonetizedGPUHours: 70,
				MonetizedPct: 100, ContractGPUHours: 40, ReservationGPUHours: 20, SpotGPUHours: 10,
				PeakInternalGPUs: 30, PeakSpotGPUs: 10, MinHealthyGPUs: 100, Revenue: usdRevenue(5, 7, 11),
			},
		},
		{
			name: "leases above idle count only up to idle",
			// Healthy 100, the owner uses 50: idle 50, leases hold 70
			// (a failure left guaranteed delivery short of healthy).
			points: hourly(Point{Healthy: 100, Internal: 50, InternalMet: 50, Contract: 40, Reservation: 20, Spot: 10}),
			want: Totals{
				HealthyGPUHours: 100, InternalGPUHours: 50, InternalMetGPUHours: 50, IdleGPUHours: 50, MonetizedGPUHours: 50,
				MonetizedPct: 100, ContractGPUHours: 40, ReservationGPUHours: 20, SpotGPUHours: 10,
				PeakInternalGPUs: 50, PeakSpotGPUs: 10, MinHealthyGPUs: 100, Revenue: usdRevenue(0, 0, 0),
			},
		},
		{
			name:   "owner uses more than healthy: idle clamps at 0",
			points: hourly(Point{Healthy: 10, Internal: 20, InternalMet: 15, InternalLate: 5, Spot: 3}),
			want: Totals{
				HealthyGPUHours: 10, InternalGPUHours: 20, InternalMetGPUHours: 15, SpotGPUHours: 3,
				InternalWaitGPUHours: 5, InternalShortfallGPUHours: 5, InternalShortfallHours: 1,
				PeakInternalGPUs: 20, PeakInternalWaitGPUs: 5, PeakInternalLateGPUs: 5, PeakSpotGPUs: 3,
				MinHealthyGPUs: 10, Revenue: usdRevenue(0, 0, 0),
			},
		},
		{
			name: "three hours: waits, shortfall, reclaims, failures; 2/3 rounds to 66.67",
			points: hourly(
				// idle 1, monetized 1
				Point{Healthy: 4, Internal: 3, InternalMet: 3, Spot: 1, Reclaims: 2, ReclaimedGPUs: 16, Failures: 1, SpotUSD: money.USD(1_000_001)},
				// idle 1, monetized 1; 2 waiting, 1 of them late
				Point{Healthy: 4, Internal: 5, InternalMet: 3, InternalLate: 1, Reservation: 1, Sanitizing: 1, ReservationUSD: money.USD(3)},
				// idle 1, monetized 0; the healthy count dips
				Point{Healthy: 2, Internal: 1, InternalMet: 1, Holdback: 2, Failures: 2, ContractUSD: money.USD(1_250_000_000 * money.Micro)},
			),
			want: Totals{
				HealthyGPUHours: 10, InternalGPUHours: 9, InternalMetGPUHours: 7, IdleGPUHours: 3, MonetizedGPUHours: 2,
				MonetizedPct: 66.67, ReservationGPUHours: 1, SpotGPUHours: 1, SanitizingGPUHours: 1,
				InternalWaitGPUHours: 2, InternalShortfallGPUHours: 1, InternalShortfallHours: 1,
				Preemptions: 2, ReclaimedGPUs: 16, Failures: 3,
				PeakInternalGPUs: 5, PeakInternalWaitGPUs: 2, PeakInternalLateGPUs: 1, PeakSpotGPUs: 1, MinHealthyGPUs: 2,
				Revenue: usdRevenue(1_250_000_000*money.Micro, 3, 1_000_001),
			},
		},
		{
			name:   "1/3 rounds to 33.33",
			points: hourly(Point{Healthy: 3, Spot: 1}),
			want: Totals{HealthyGPUHours: 3, IdleGPUHours: 3, MonetizedGPUHours: 1, MonetizedPct: 33.33, SpotGPUHours: 1,
				PeakSpotGPUs: 1, MinHealthyGPUs: 3, Revenue: usdRevenue(0, 0, 0)},
		},
		{
			name:   "revenue without a currency when zero",
			points: hourly(Point{Healthy: 8, ContractUSD: money.Money{}}),
			want:   Totals{HealthyGPUHours: 8, IdleGPUHours: 8, MinHealthyGPUs: 8, Revenue: usdRevenue(0, 0, 0)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := Summarize(tt.points)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Summarize (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPct(t *testing.T) {
	for _, tt := range []struct {
		num, den int64
		want     float64
		json     string
	}{
		{0, 0, 0, "0"}, {0, 7, 0, "0"}, {7, 7, 100, "100"}, {1, 8, 12.5, "12.5"}, {1, 3, 33.33, "33.33"},
		{2, 3, 66.67, "66.67"}, {1, 20_000, 0.01, "0.01"}, {1, 20_001, 0, "0"}, {7, 100, 7, "7"},
		{math.MaxInt64 - 1, math.MaxInt64, 100, "100"}, {1, math.MaxInt64, 0, "0"},
		{123_456_789, 987_654_321, 12.5, "12.5"},
	} {
		got := pct(tt.num, tt.den)
		b, _ := json.Marshal(got)
		if got != tt.want || string(b) != tt.json {
			t.Errorf("pct(%d, %d) = %v (%s), want %v (%s)", tt.num, tt.den, got, b, tt.want, tt.json)
		}
	}
}

func TestSummarizeErrors(t *testing.T) {
	tests := []struct {
		name   string
		points []Point
		field  string // the *valid.Error field, if any
		is     error
	}{
		{"negative", hourly(Point{Healthy: -1}), "points[0].healthy", nil},
		{"met above internal", hourly(Point{}, Point{Internal: 2, InternalMet: 3}), "points[1].internal_met", nil},
		{"late above waiting", hourly(Point{Internal: 5, InternalMet: 3, InternalLate: 3}), "points[0].internal_late", nil},
		{"negative reclaims", hourly(Point{Reclaims: -1}), "points[0].reclaims", nil},
		{"not hourly", []Point{{At: t0}, {At: t0.Add(90 * time.Minute)}}, "points[1].at", nil},
		{"overflow", hourly(Point{Healthy: math.MaxInt64}, Point{Healthy: 1}), "", ErrOverflow},
		{"leases overflow", hourly(Point{Contract: math.MaxInt64, Spot: 1}), "", ErrOverflow},
		{"currency", hourly(Point{SpotUSD: money.New(1, "EUR")}), "", money.ErrCurrency},
		{"money overflow", hourly(Point{SpotUSD: money.USD(math.MaxInt64)}, Point{SpotUSD: money.USD(1)}), "", money.ErrOverflow},
		{"total overflow", hourly(Point{SpotUSD: money.USD(math.MaxInt64), ContractUSD: money.USD(1)}), "", money.ErrOverflow},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Summarize(tt.points)
			if err == nil {
				t.Fatal("Summarize: no error")
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("err = %v, want %v", err, tt.is)
			}
			if tt.field != "" {
				var ve *valid.Error
				if !errors.As(err, &ve) || ve.Issues[0].Field != tt.field {
					t.Errorf("err = %v, want a *valid.Error on %s", err, tt.field)
				}
			}
		})
	}
}

// TestSummarizeProperties checks on random valid points that monetized ≤
// idle, the shortfall ≤ the wait, and that every total is a plain sum.
func TestSummarizeProperties(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		points := rapid.Custom(genPoints).Draw(t, "points")
		got, err := Summarize(points)
		if err != nil {
			t.Fatal(err)
		}
		if got.MonetizedGPUHours > got.IdleGPUHours {
			t.Fatalf("monetized %d > idle %d", got.MonetizedGPUHours, got.IdleGPUHours)
		}
		if got.MonetizedGPUHours > got.ContractGPUHours+got.ReservationGPUHours+got.SpotGPUHours {
			t.Fatalf("monetized %d > leased", got.MonetizedGPUHours)
		}
		if got.InternalShortfallGPUHours > got.InternalWaitGPUHours {
			t.Fatalf("shortfall %d > wait %d", got.InternalShortfallGPUHours, got.InternalWaitGPUHours)
		}
		if got.InternalMetGPUHours+got.InternalWaitGPUHours != got.InternalGPUHours {
			t.Fatalf("met %d + wait %d != internal %d", got.InternalMetGPUHours, got.InternalWaitGPUHours, got.InternalGPUHours)
		}
		if got.MonetizedPct < 0 || got.MonetizedPct > 100 || (got.IdleGPUHours == 0 && got.MonetizedPct != 0) {
			t.Fatalf("monetized_pct %v", got.MonetizedPct)
		}
		if _, frac, _ := strings.Cut(strconv.FormatFloat(got.MonetizedPct, 'f', -1, 64), "."); len(frac) > 2 {
			t.Fatalf("monetized_pct %v has more than 2 decimals", got.MonetizedPct)
		}
		if r := got.Revenue; r.Total.Micros != r.Contract.Micros+r.Reservation.Micros+r.Spot.Micros {
			t.Fatalf("revenue total %v is not the sum of %+v", r.Total, r)
		}
		// The sums of a concatenation are the sums of its halves.
		if len(points) > 1 {
			k := len(points) / 2
			a, err := Summarize(points[:k])
			if err != nil {
				t.Fatal(err)
			}
			second := make([]Point, len(points)-k)
			copy(second, points[k:])
			for i := range second {
				second[i].At = t0.Add(time.Duration(i) * time.Hour)
			}
			b, err := Summarize(second)
			if err != nil {
				t.Fatal(err)
			}
			if a.IdleGPUHours+b.IdleGPUHours != got.IdleGPUHours || a.MonetizedGPUHours+b.MonetizedGPUHours != got.MonetizedGPUHours ||
				a.InternalShortfallGPUHours+b.InternalShortfallGPUHours != got.InternalShortfallGPUHours {
				t.Fatalf("halves %+v and %+v do not add up to %+v", a, b, got)
			}
		}
	})
}

// genPoints draws valid hourly points, small enough not to overflow.
func genPoints(t *rapid.T) []Point {
	n := rapid.IntRange(0, 48).Draw(t, "hours")
	g := rapid.Int64Range(0, 1_000)
	out := make([]Point, n)
	for i := range out {
		internal := g.Draw(t, "internal")
		met := rapid.Int64Range(0, internal).Draw(t, "met")
		late := rapid.Int64Range(0, internal-met).Draw(t, "late")
		out[i] = Point{
			At: t0.Add(time.Duration(i) * time.Hour), Healthy: g.Draw(t, "healthy"),
			Internal: internal, InternalMet: met, InternalLate: late, Holdback: g.Draw(t, "holdback"),
			Contract: g.Draw(t, "contract"), Reservation: g.Draw(t, "reservation"), Spot: g.Draw(t, "spot"),
			Sanitizing: g.Draw(t, "sanitizing"), Reclaims: rapid.IntRange(0, 5).Draw(t, "reclaims"),
			ContractUSD: money.USD(g.Draw(t, "contract_usd")), ReservationUSD: money.USD(g.Draw(t, "reservation_usd")),
			SpotUSD: money.USD(g.Draw(t, "spot_usd")), Failures: rapid.IntRange(0, 3).Draw(t, "failures"),
		}
	}
	return out
}

func testSummary(t testing.TB, points []Point) (Summary, []Point) {
	t.Helper()
	leased := make([]int64, len(points))
	for i := range leased {
		leased[i] = 40_000
	}
	base, err := Baseline(points, leased, money.USD(2_000_000))
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewSummary("reference-300mw", 42, 12, points, base)
	if err != nil {
		t.Fatal(err)
	}
	s.Engine = map[string]int64{"leases": 1_234, "commands": 98_765, "allocations": 4_321}
	return s, base
}

func TestSummaryJSON(t *testing.T) {
	points := hourly(
		Point{Healthy: 100, Internal: 30, InternalMet: 30, Contract: 40, Spot: 10,
			ContractUSD: money.USD(1_250_000_000 * money.Micro), SpotUSD: money.USD(1)},
		Point{Healthy: 100, Internal: 60, InternalMet: 50, InternalLate: 4, Contract: 40, Reclaims: 1, ReclaimedGPUs: 10},
	)
	s, _ := testSummary(t, points)
	got, err := s.JSON()
	if err != nil {
		t.Fatal(err)
	}
	// Keys at the top level, in struct order, totals inline.
	var keys []string
	dec := json.NewDecoder(strings.NewReader(string(got)))
	depth := 0
	for {
		tok, err := dec.Token()
		if err != nil {
			break
		}
		switch tok {
		case json.Delim('{'), json.Delim('['):
			depth++
			continue
		case json.Delim('}'), json.Delim(']'):
			depth--
			continue
		}
		if k, ok := tok.(string); ok && depth == 1 && dec.More() {
			keys = append(keys, k)
			// Skip the value.
			var v json.RawMessage
			if err := dec.Decode(&v); err != nil {
				t.Fatal(err)
			}
		}
	}
	wantKeys := []string{"fleet", "seed", "months", "start", "end", "hours",
		"healthy_gpu_hours", "internal_gpu_hours", "internal_met_gpu_hours", "idle_gpu_hours", "monetized_gpu_hours",
		"monetized_pct", "contract_gpu_hours", "reservation_gpu_hours", "spot_gpu_hours", "sanitizing_gpu_hours",
		"internal_wait_gpu_hours", "internal_shortfall_gpu_hours", "internal_shortfall_hours", "preemptions",
		"reclaimed_gpus", "failures", "peak_internal_gpus", "peak_internal_wait_gpus", "peak_internal_late_gpus",
		"peak_spot_gpus", "min_healthy_gpus", "revenue_usd", "baseline", "engine"}
	if diff := cmp.Diff(wantKeys, keys); diff != "" {
		t.Errorf("top-level keys (-want +got):\n%s", diff)
	}
	for _, want := range []string{
		`"start": "2026-09-01T00:00:00Z"`, `"end": "2026-09-01T02:00:00Z"`, `"hours": 2`,
		`"monetized_pct": 75`, // idle 70 + 50, monetized 50 + 40
		`"contract": "1250000000.00"`, `"spot": "0.000001"`, `"total": "1250000000.000001"`,
		`"reservation": "240.00"`, // baseline: 60 GPUs (healthy − contract) × $2, two hours
		"\"engine\": {\n    \"allocations\": 4321,\n    \"commands\": 98765,\n    \"leases\": 1234\n  }\n}\n",
	} {
		if !strings.Contains(string(got), want) {
			t.Errorf("JSON lacks %q:\n%s", want, got)
		}
	}
	// The same summary, its map filled in another order, in another
	// zone, gives the same bytes; and the bytes read back to it.
	s2 := s
	s2.Engine = map[string]int64{}
	for _, k := range []string{"commands", "leases", "allocations"} {
		s2.Engine[k] = s.Engine[k]
	}
	s2.Start = s.Start.In(time.FixedZone("X", 3600))
	got2, err := s2.JSON()
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(got2) {
		t.Errorf("JSON differs between equal summaries:\n%s\n%s", got, got2)
	}
	var back Summary
	if err := json.Unmarshal(got, &back); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(s, back); diff != "" {
		t.Errorf("JSON round trip (-want +got):\n%s", diff)
	}
	// No engine counters: {} rather than null.
	s.Engine = nil
	if b, _ := s.JSON(); !strings.Contains(string(b), `"engine": {}`) {
		t.Errorf("nil engine: %s", b)
	}
}

func TestNewSummaryErrors(t *testing.T) {
	p := hourly(Point{Healthy: 1})
	if _, err := NewSummary("f", 1, 1, nil, nil); err == nil {
		t.Error("no points: no error")
	}
	if _, err := NewSummary("f", 1, 1, p, nil); err == nil {
		t.Error("no baseline: no error")
	}
	if _, err := NewSummary("f", 1, 1, p, hourly(Point{Healthy: -1})); err == nil || !strings.Contains(err.Error(), "baseline") {
		t.Errorf("bad baseline: err = %v", err)
	}
}

func BenchmarkSummarize(b *testing.B) {
	points := yearPoints(8760, 1)
	for b.Loop() {
		if _, err := Summarize(points); err != nil {
			b.Fatal(err)
		}
	}
}

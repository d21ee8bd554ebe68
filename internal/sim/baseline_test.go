package sim

import (
	"errors"
	"math"
	"testing"

	"github.com/google/go-cmp/cmp"
	"pgregory.net/rapid"

	"github.com/neocloud/neocloud/internal/money"
	"github.com/neocloud/neocloud/internal/valid"
)

func TestBaseline(t *testing.T) {
	rate := money.USD(2_500_000) // $2.50 per GPU-hour
	contractUSD := money.USD(1_712_328_767_123)
	tests := []struct {
		name   string
		run    Point
		leased int64
		want   Point // At is set by the test
	}{
		{
			name:   "share fits beside the owner's demand",
			run:    Point{Healthy: 100, Internal: 30, InternalMet: 30, Contract: 40, ContractUSD: contractUSD},
			leased: 20,
			// room 60: 20 reserved, 40 left ≥ 30 internal.
			want: Point{Healthy: 100, Internal: 30, InternalMet: 30, Contract: 40, Reservation: 20,
				ContractUSD: contractUSD, ReservationUSD: money.USD(50_000_000)},
		},
		{
			name:   "share squeezes the owner: the rest waits beyond notice",
			run:    Point{Healthy: 100, Internal: 30, InternalMet: 30, Contract: 40},
			leased: 50,
			// room 60: 50 reserved, 10 left for 30 internal: 20 late.
			want: Point{Healthy: 100, Internal: 30, InternalMet: 10, InternalLate: 20, Contract: 40, Reservation: 50,
				ReservationUSD: money.USD(125_000_000)},
		},
		{
			name:   "share capped at healthy − contract",
			run:    Point{Healthy: 100, Internal: 30, InternalMet: 30, Contract: 40},
			leased: 80,
			want: Point{Healthy: 100, Internal: 30, InternalLate: 30, Contract: 40, Reservation: 60,
				ReservationUSD: money.USD(150_000_000)},
		},
		{
			name:   "failures leave less than the contract: nothing leased, nothing served",
			run:    Point{Healthy: 30, Internal: 5, InternalMet: 5, Contract: 40, Failures: 3},
			leased: 10,
			want:   Point{Healthy: 30, Internal: 5, InternalLate: 5, Contract: 40, Failures: 3, ReservationUSD: money.USD(0)},
		},
		{
			name: "the run's spot, hand-overs and reclaims do not exist; holdback and failures do",
			run: Point{Healthy: 100, Internal: 10, InternalMet: 8, InternalLate: 1, Holdback: 25, Contract: 40, Reservation: 5,
				Spot: 30, Sanitizing: 4, ReservationUSD: money.USD(9), SpotUSD: money.USD(7), Reclaims: 2, ReclaimedGPUs: 16, Failures: 1},
			leased: 0,
			want: Point{Healthy: 100, Internal: 10, InternalMet: 10, Holdback: 25, Contract: 40, Failures: 1,
				ReservationUSD: money.USD(0)},
		},
		{
			name:   "empty fleet",
			run:    Point{},
			leased: 7,
			want:   Point{ReservationUSD: money.USD(0)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := Baseline(hourly(tt.run), []int64{tt.leased}, rate)
			if err != nil {
				t.Fatal(err)
			}
			want := hourly(tt.want)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("Baseline (-want +got):\n%s", diff)
			}
		})
	}
}

func TestBaselineSeries(t *testing.T) {
	// Three hours, one share: the owner's peak in hour 1 is squeezed.
	run := hourly(
		Point{Healthy: 10, Internal: 2, InternalMet: 2, Contract: 4, Spot: 4, SpotUSD: money.USD(4)},
		Point{Healthy: 10, Internal: 5, InternalMet: 5, Contract: 4, Spot: 1, Reclaims: 1, ReclaimedGPUs: 3},
		Point{Healthy: 8, Internal: 1, InternalMet: 1, Contract: 4, Spot: 3, Failures: 1},
	)
	got, err := Baseline(run, []int64{3, 3, 3}, money.USD(1_000_000))
	if err != nil {
		t.Fatal(err)
	}
	want := hourly(
		Point{Healthy: 10, Internal: 2, InternalMet: 2, Contract: 4, Reservation: 3, ReservationUSD: money.USD(3_000_000)},
		Point{Healthy: 10, Internal: 5, InternalMet: 3, InternalLate: 2, Contract: 4, Reservation: 3, ReservationUSD: money.USD(3_000_000)},
		Point{Healthy: 8, Internal: 1, InternalMet: 1, Contract: 4, Reservation: 3, ReservationUSD: money.USD(3_000_000), Failures: 1},
	)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Baseline (-want +got):\n%s", diff)
	}
	tot, err := Summarize(got)
	if err != nil {
		t.Fatal(err)
	}
	// idle 8 + 7 + 7 = 22; monetized 7 + 7 + 7 = 21.
	if tot.IdleGPUHours != 22 || tot.MonetizedGPUHours != 21 || tot.InternalShortfallGPUHours != 2 || tot.Revenue.Total != money.USD(9_000_000) {
		t.Errorf("baseline totals = %+v", tot)
	}
}

func TestBaselineErrors(t *testing.T) {
	p := hourly(Point{Healthy: 1}, Point{Healthy: 1})
	for _, tt := range []struct {
		name   string
		points []Point
		leased []int64
		rate   money.Money
		field  string
		is     error
	}{
		{"short leased", p, []int64{1}, money.USD(1), "leased", nil},
		{"negative leased", p, []int64{1, -1}, money.USD(1), "leased[1]", nil},
		{"negative rate", p, []int64{1, 1}, money.USD(-1), "rate_per_gpu_hour", nil},
		{"not USD", p, []int64{1, 1}, money.New(1, "EUR"), "rate_per_gpu_hour", nil},
		{"bad point", hourly(Point{Internal: -1}), []int64{1}, money.USD(1), "points[0].internal", nil},
		{"overflow", hourly(Point{Healthy: math.MaxInt64}), []int64{math.MaxInt64}, money.USD(2), "", money.ErrOverflow},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Baseline(tt.points, tt.leased, tt.rate)
			if err == nil {
				t.Fatal("no error")
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
	// A zero rate of no currency is a free share, not an error.
	if _, err := Baseline(p, []int64{1, 1}, money.Money{}); err != nil {
		t.Errorf("zero rate: %v", err)
	}
}

// TestBaselineProperties checks the static partition's own invariants on
// random runs: it never holds more than healthy beside the contract,
// serves the owner only from what is left, and earns rate × reserved.
func TestBaselineProperties(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		run := rapid.Custom(genPoints).Draw(t, "points")
		leased := rapid.SliceOfN(rapid.Int64Range(0, 1_500), len(run), len(run)).Draw(t, "leased")
		rate := money.USD(rapid.Int64Range(0, 10_000_000).Draw(t, "rate"))
		got, err := Baseline(run, leased, rate)
		if err != nil {
			t.Fatal(err)
		}
		var reserved int64
		for h, q := range got {
			p := run[h]
			room := max(p.Healthy-p.Contract, 0)
			switch {
			case q.Reservation < 0 || q.Reservation > leased[h] || q.Reservation > room:
				t.Fatalf("hour %d: reservation %d, leased %d, room %d", h, q.Reservation, leased[h], room)
			case q.Reservation != leased[h] && q.Reservation != room:
				t.Fatalf("hour %d: reservation %d is neither the share %d nor the room %d", h, q.Reservation, leased[h], room)
			case q.InternalMet < 0 || q.InternalMet > q.Internal || q.InternalMet+q.Reservation > room:
				t.Fatalf("hour %d: met %d of %d beside %d reserved in %d", h, q.InternalMet, q.Internal, q.Reservation, room)
			case q.InternalMet < q.Internal && q.InternalMet+q.Reservation != room:
				t.Fatalf("hour %d: demand waits while %d GPUs are free", h, room-q.InternalMet-q.Reservation)
			case q.InternalLate != q.Internal-q.InternalMet:
				t.Fatalf("hour %d: late %d, want all unmet %d", h, q.InternalLate, q.Internal-q.InternalMet)
			case q.Spot != 0 || !q.SpotUSD.IsZero() || q.Reclaims != 0 || q.Sanitizing != 0:
				t.Fatalf("hour %d: the static partition has spot or hand-overs: %+v", h, q)
			case q.Healthy != p.Healthy || q.Internal != p.Internal || q.Contract != p.Contract || q.ContractUSD != p.ContractUSD || !q.At.Equal(p.At):
				t.Fatalf("hour %d: %+v does not keep the run's %+v", h, q, p)
			}
			reserved += q.Reservation
		}
		tot, err := Summarize(got)
		if err != nil {
			t.Fatal(err)
		}
		if want, _ := rate.Mul(reserved); tot.Revenue.Reservation.Micros != want.Micros {
			t.Fatalf("reservation revenue %v, want %v", tot.Revenue.Reservation, want)
		}
		if tot.InternalShortfallGPUHours != tot.InternalWaitGPUHours {
			t.Fatalf("shortfall %d != wait %d", tot.InternalShortfallGPUHours, tot.InternalWaitGPUHours)
		}
	})
}

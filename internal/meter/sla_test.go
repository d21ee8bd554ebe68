package meter_test

import (
	"errors"
	"math"
	"math/big"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"pgregory.net/rapid"

	"github.com/neocloud/neocloud/internal/meter"
	"github.com/neocloud/neocloud/internal/valid"
)

// slaMonth is February 2026: 28 days, 672 hours.
var slaMonth = time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)

const (
	hourMS  = int64(time.Hour / time.Millisecond)
	gpus8MS = 8 * hourMS // 8 GPUs for an hour
)

// slaHour returns slaMonth plus h hours.
func slaHour(h int) time.Time { return slaMonth.Add(time.Duration(h) * time.Hour) }

func amounts(h int, committed, held, unhealthy int64) meter.HourAmounts {
	return meter.HourAmounts{Hour: slaHour(h), Committed: committed, Held: held, Unhealthy: unhealthy}
}

func TestDeliver(t *testing.T) {
	t.Parallel()
	base := meter.SLA{LeaseID: "l1", TenantID: "t1", Month: slaMonth}
	sla := func(f func(*meter.SLA)) meter.SLA {
		s := base
		f(&s)
		return s
	}
	input := func(causes []meter.Cause, hours ...meter.HourAmounts) meter.SLAInput {
		return meter.SLAInput{LeaseID: "l1", TenantID: "t1", Month: slaMonth, Hours: hours, Causes: causes}
	}
	const (
		failN1 = "node h100-a-n0001 failed: no replacement"
		xidN2  = "XID 79 on h100-a-n0002 GPU 3"
	)
	tests := map[string]struct {
		in   meter.SLAInput
		want meter.SLA
	}{
		"nothing committed is fully available": {
			in:   input(nil),
			want: sla(func(s *meter.SLA) { s.AvailabilityPPM = 1_000_000 }),
		},
		"held but not committed": {
			in: input(nil, amounts(0, 0, gpus8MS, 0)),
			want: sla(func(s *meter.SLA) {
				s.HeldGPUms, s.AvailabilityPPM = gpus8MS, 1_000_000
			}),
		},
		"full delivery": {
			in: input(nil, amounts(0, gpus8MS, gpus8MS, 0), amounts(1, gpus8MS, gpus8MS, 0), amounts(671, gpus8MS, gpus8MS, 0)),
			want: sla(func(s *meter.SLA) {
				s.CommittedGPUms, s.HeldGPUms, s.DeliveredGPUms = 3*gpus8MS, 3*gpus8MS, 3*gpus8MS
				s.AvailabilityPPM = 1_000_000
			}),
		},
		"extra in one hour does not make up for another": {
			in: input(nil, amounts(0, gpus8MS, 2*gpus8MS, 0), amounts(1, gpus8MS, gpus8MS/2, 0)),
			want: sla(func(s *meter.SLA) {
				s.CommittedGPUms, s.HeldGPUms = 2*gpus8MS, 2*gpus8MS+gpus8MS/2
				s.DeliveredGPUms, s.ShortGPUms = gpus8MS+gpus8MS/2, gpus8MS/2
				s.AvailabilityPPM = 750_000
				s.Episodes = []meter.Episode{{From: slaHour(1), To: slaHour(2), ShortGPUms: gpus8MS / 2,
					Causes: []string{meter.CauseHeldShort}}}
			}),
		},
		"unhealthy time is short": {
			in: input(nil, amounts(5, gpus8MS, gpus8MS, hourMS)),
			want: sla(func(s *meter.SLA) {
				s.CommittedGPUms, s.HeldGPUms, s.UnhealthyGPUms = gpus8MS, gpus8MS, hourMS
				s.DeliveredGPUms, s.ShortGPUms = 7*hourMS, hourMS
				s.AvailabilityPPM = 875_000
				s.Episodes = []meter.Episode{{From: slaHour(5), To: slaHour(6), ShortGPUms: hourMS,
					Causes: []string{meter.CauseUnhealthy}}}
			}),
		},
		"unhealthy time within the surplus is not short": {
			in: input(nil, amounts(5, gpus8MS, 9*hourMS, hourMS)),
			want: sla(func(s *meter.SLA) {
				s.CommittedGPUms, s.HeldGPUms, s.UnhealthyGPUms, s.DeliveredGPUms = gpus8MS, 9*hourMS, hourMS, gpus8MS
				s.AvailabilityPPM = 1_000_000
			}),
		},
		"nothing held while unhealthy": {
			in: input(nil, amounts(0, hourMS, 0, 0), amounts(1, hourMS, hourMS, hourMS)),
			want: sla(func(s *meter.SLA) {
				s.CommittedGPUms, s.HeldGPUms, s.UnhealthyGPUms, s.ShortGPUms = 2*hourMS, hourMS, hourMS, 2*hourMS
				s.Episodes = []meter.Episode{{From: slaHour(0), To: slaHour(2), ShortGPUms: 2 * hourMS,
					Causes: []string{meter.CauseHeldShort}}}
			}),
		},
		"consecutive short hours are one episode; a gap or a good hour splits": {
			in: input(nil,
				amounts(2, 100, 90, 0), amounts(3, 100, 100, 10), // episode 1
				amounts(4, 100, 100, 0), // good
				amounts(6, 100, 0, 0),   // episode 2
				amounts(8, 100, 50, 0),  // hour 7 missing: nothing committed, episode 3
			),
			want: sla(func(s *meter.SLA) {
				s.CommittedGPUms, s.HeldGPUms, s.UnhealthyGPUms = 500, 340, 10
				s.DeliveredGPUms, s.ShortGPUms = 330, 170
				s.AvailabilityPPM = 660_000
				s.Episodes = []meter.Episode{
					{From: slaHour(2), To: slaHour(4), ShortGPUms: 20, Causes: []string{meter.CauseHeldShort}},
					{From: slaHour(6), To: slaHour(7), ShortGPUms: 100, Causes: []string{meter.CauseHeldShort}},
					{From: slaHour(8), To: slaHour(9), ShortGPUms: 50, Causes: []string{meter.CauseHeldShort}},
				}
			}),
		},
		"causes that overlap, deduplicated, by from then text": {
			in: input([]meter.Cause{
				{From: slaHour(0), To: slaHour(2), Text: "ends as the episode starts"},
				{From: slaHour(4), To: slaHour(5), Text: "starts as the episode ends"},
				{From: slaHour(3).Add(10 * time.Minute), To: slaHour(3).Add(10 * time.Minute), Text: xidN2},
				{From: slaHour(1).Add(30 * time.Minute), To: slaHour(2).Add(time.Minute), Text: failN1},
				{From: slaHour(2).Add(5 * time.Minute), To: slaHour(3), Text: failN1},
				{From: slaHour(3).Add(10 * time.Minute), To: slaHour(9), Text: "b same from"},
				{From: slaHour(3).Add(10 * time.Minute), To: slaHour(9), Text: "a same from"},
				{From: slaHour(4), To: slaHour(4), Text: "instant at the end"},
				{From: slaHour(2), To: slaHour(2), Text: "instant at the start"},
				{From: slaHour(-100), Text: "open since last month"},
				{From: slaHour(4), Text: "open since the end"},
			}, amounts(2, 10, 5, 0), amounts(3, 10, 5, 0)),
			want: sla(func(s *meter.SLA) {
				s.CommittedGPUms, s.HeldGPUms, s.DeliveredGPUms, s.ShortGPUms = 20, 10, 10, 10
				s.AvailabilityPPM = 500_000
				s.Episodes = []meter.Episode{{From: slaHour(2), To: slaHour(4), ShortGPUms: 10, Causes: []string{
					"open since last month", failN1, "instant at the start", xidN2, "a same from", "b same from"}}}
			}),
		},
		"each episode gets its own causes": {
			in: input([]meter.Cause{
				{From: slaHour(0), To: slaHour(1), Text: failN1},
				{From: slaHour(10).Add(time.Second), To: slaHour(10).Add(time.Second), Text: xidN2},
			}, amounts(0, 10, 0, 0), amounts(5, 10, 0, 0), amounts(10, 10, 10, 10)),
			want: sla(func(s *meter.SLA) {
				s.CommittedGPUms, s.HeldGPUms, s.UnhealthyGPUms, s.ShortGPUms = 30, 10, 10, 30
				s.Episodes = []meter.Episode{
					{From: slaHour(0), To: slaHour(1), ShortGPUms: 10, Causes: []string{failN1}},
					{From: slaHour(5), To: slaHour(6), ShortGPUms: 10, Causes: []string{meter.CauseHeldShort}},
					{From: slaHour(10), To: slaHour(11), ShortGPUms: 10, Causes: []string{xidN2}},
				}
			}),
		},
		"hours outside the month are ignored": {
			in: input(nil, amounts(-1, 10, 0, 0), amounts(0, 10, 10, 0), amounts(671, 10, 10, 0), amounts(672, 10, 0, 0)),
			want: sla(func(s *meter.SLA) {
				s.CommittedGPUms, s.HeldGPUms, s.DeliveredGPUms, s.AvailabilityPPM = 20, 20, 20, 1_000_000
			}),
		},
		"times in another zone are normalised to UTC": {
			in: meter.SLAInput{LeaseID: "l1", TenantID: "t1", Month: slaMonth.In(time.FixedZone("X", 3600)),
				Hours: []meter.HourAmounts{{Hour: slaHour(1).In(time.FixedZone("Y", -5*3600)), Committed: 10, Held: 5}}},
			want: sla(func(s *meter.SLA) {
				s.CommittedGPUms, s.HeldGPUms, s.DeliveredGPUms, s.ShortGPUms = 10, 5, 5, 5
				s.AvailabilityPPM = 500_000
				s.Episodes = []meter.Episode{{From: slaHour(1), To: slaHour(2), ShortGPUms: 5, Causes: []string{meter.CauseHeldShort}}}
			}),
		},
		"hours with nothing in them change nothing": {
			in: input(nil, amounts(0, 3, 3, 0), amounts(1, 0, 0, 0), amounts(2, 0, 0, 0), amounts(3, 0, 0, 0)),
			want: sla(func(s *meter.SLA) {
				s.CommittedGPUms, s.HeldGPUms, s.DeliveredGPUms, s.AvailabilityPPM = 3, 3, 3, 1_000_000
			}),
		},
		"two thirds is 666666 ppm": {
			in: input(nil, amounts(0, 3, 2, 0)),
			want: sla(func(s *meter.SLA) {
				s.CommittedGPUms, s.HeldGPUms, s.DeliveredGPUms, s.ShortGPUms, s.AvailabilityPPM = 3, 2, 2, 1, 666_666
				s.Episodes = []meter.Episode{{From: slaHour(0), To: slaHour(1), ShortGPUms: 1, Causes: []string{meter.CauseHeldShort}}}
			}),
		},
	}
	// 200k GPUs for a whole month, one GPU-ms short: Delivered × 1e6
	// overflows int64, the result must not.
	const fleet = 200_000 * hourMS
	var big []meter.HourAmounts
	for h := range 672 {
		big = append(big, amounts(h, fleet, fleet, 0))
	}
	big[100].Held--
	tests["a month of 200k GPUs, 1 GPU-ms short"] = struct {
		in   meter.SLAInput
		want meter.SLA
	}{
		in: input(nil, big...),
		want: sla(func(s *meter.SLA) {
			s.CommittedGPUms, s.HeldGPUms = 672*fleet, 672*fleet-1
			s.DeliveredGPUms, s.ShortGPUms, s.AvailabilityPPM = 672*fleet-1, 1, 999_999
			s.Episodes = []meter.Episode{{From: slaHour(100), To: slaHour(101), ShortGPUms: 1, Causes: []string{meter.CauseHeldShort}}}
		}),
	}

	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			got, err := meter.Deliver(tt.in)
			if err != nil {
				t.Fatalf("Deliver: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Deliver (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDeliverErrors(t *testing.T) {
	t.Parallel()
	ok := amounts(0, 10, 10, 0)
	tests := map[string]struct {
		in     meter.SLAInput
		fields []string
	}{
		"zero month":                  {meter.SLAInput{Hours: []meter.HourAmounts{ok}}, []string{"month"}},
		"month not on the first":      {meter.SLAInput{Month: slaMonth.AddDate(0, 0, 1)}, []string{"month"}},
		"month not at midnight":       {meter.SLAInput{Month: slaMonth.Add(time.Millisecond)}, []string{"month"}},
		"month start in another zone": {meter.SLAInput{Month: time.Date(2026, 2, 1, 0, 0, 0, 0, time.FixedZone("CET", 3600))}, []string{"month"}},
		"hour not on the hour": {meter.SLAInput{Month: slaMonth,
			Hours: []meter.HourAmounts{ok, {Hour: slaHour(3).Add(time.Second)}}}, []string{"hours[1].hour"}},
		"repeated hour": {meter.SLAInput{Month: slaMonth,
			Hours: []meter.HourAmounts{ok, amounts(1, 1, 1, 0), ok}}, []string{"hours[2].hour"}},
		"negative amounts": {meter.SLAInput{Month: slaMonth,
			Hours: []meter.HourAmounts{amounts(0, -1, -2, -3), amounts(1, 0, 0, -1)}},
			[]string{"hours[0].committed", "hours[0].held", "hours[0].unhealthy", "hours[1].unhealthy"}},
		"unhealthy beyond held": {meter.SLAInput{Month: slaMonth,
			Hours: []meter.HourAmounts{amounts(0, 10, 5, 6)}}, []string{"hours[0].unhealthy"}},
		"bad hours outside the month too": {meter.SLAInput{Month: slaMonth,
			Hours: []meter.HourAmounts{amounts(-5, -1, 0, 0)}}, []string{"hours[0].committed"}},
		"cause ends before it starts": {meter.SLAInput{Month: slaMonth,
			Causes: []meter.Cause{{From: slaHour(1), To: slaHour(1)}, {From: slaHour(2), To: slaHour(1)}}}, []string{"causes[1].to"}},
		"month total overflows": {meter.SLAInput{Month: slaMonth,
			Hours: []meter.HourAmounts{amounts(0, math.MaxInt64, 0, 0), amounts(1, 1, 0, 0)}}, []string{"hours"}},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, err := meter.Deliver(tt.in)
			var ve *valid.Error
			if !errors.As(err, &ve) {
				t.Fatalf("Deliver: error %v, want a *valid.Error", err)
			}
			var got []string
			for _, is := range ve.Issues {
				got = append(got, is.Field)
			}
			if diff := cmp.Diff(tt.fields, got); diff != "" {
				t.Errorf("fields (-want +got):\n%s\n%v", diff, err)
			}
		})
	}
}

func TestSLAAvailabilityPct(t *testing.T) {
	t.Parallel()
	for ppm, want := range map[int64]float64{0: 0, 999_950: 99.995, 1_000_000: 100} {
		if got := (meter.SLA{AvailabilityPPM: ppm}).AvailabilityPct(); got != want {
			t.Errorf("AvailabilityPct(%d ppm) = %v, want %v", ppm, got, want)
		}
	}
}

// TestDeliverProperties checks the invariants of any valid input: totals
// add up, episodes account for every short GPU-ms, availability is exact
// and bounded, and the order of the hours does not matter.
func TestDeliverProperties(t *testing.T) {
	t.Parallel()
	rapid.Check(t, func(t *rapid.T) {
		// Small amounts exercise rounding; huge ones the 128-bit product.
		limit := rapid.SampledFrom([]int64{10, 1_000_000, 1 << 52}).Draw(t, "limit")
		hour := rapid.Custom(func(t *rapid.T) meter.HourAmounts {
			held := rapid.Int64Range(0, 2*limit).Draw(t, "held")
			return meter.HourAmounts{
				Hour:      slaHour(rapid.IntRange(-3, 675).Draw(t, "hour")),
				Committed: rapid.Int64Range(0, limit).Draw(t, "committed"),
				Held:      held,
				Unhealthy: rapid.Int64Range(0, held).Draw(t, "unhealthy"),
			}
		})
		hours := rapid.SliceOfDistinct(hour, func(h meter.HourAmounts) int64 { return h.Hour.Unix() }).Draw(t, "hours")
		cause := rapid.Custom(func(t *rapid.T) meter.Cause {
			from := slaHour(0).Add(time.Duration(rapid.IntRange(-60, 680*60).Draw(t, "from_min")) * time.Minute)
			return meter.Cause{From: from, To: from.Add(time.Duration(rapid.IntRange(0, 600).Draw(t, "len_min")) * time.Minute),
				Text: rapid.SampledFrom([]string{"x", "y", "z"}).Draw(t, "text")}
		})
		in := meter.SLAInput{LeaseID: "l", TenantID: "t", Month: slaMonth, Hours: hours,
			Causes: rapid.SliceOfN(cause, 0, 5).Draw(t, "causes")}

		s, err := meter.Deliver(in)
		if err != nil {
			t.Fatalf("Deliver: %v", err)
		}
		if s.DeliveredGPUms > s.CommittedGPUms || s.DeliveredGPUms+s.ShortGPUms != s.CommittedGPUms {
			t.Fatalf("delivered %d + short %d vs committed %d", s.DeliveredGPUms, s.ShortGPUms, s.CommittedGPUms)
		}
		if s.AvailabilityPPM < 0 || s.AvailabilityPPM > 1_000_000 {
			t.Fatalf("availability %d ppm", s.AvailabilityPPM)
		}
		wantPPM := int64(1_000_000)
		if s.CommittedGPUms > 0 {
			q := new(big.Int).Mul(big.NewInt(s.DeliveredGPUms), big.NewInt(1_000_000))
			wantPPM = q.Quo(q, big.NewInt(s.CommittedGPUms)).Int64()
		}
		if s.AvailabilityPPM != wantPPM {
			t.Fatalf("availability %d ppm, math/big says %d", s.AvailabilityPPM, wantPPM)
		}
		var short int64
		for i, e := range s.Episodes {
			short += e.ShortGPUms
			if e.ShortGPUms <= 0 || !e.From.Before(e.To) || len(e.Causes) == 0 {
				t.Fatalf("episode %d: %+v", i, e)
			}
			if i > 0 && !s.Episodes[i-1].To.Before(e.From) {
				t.Fatalf("episodes %d and %d touch or overlap: %+v", i-1, i, s.Episodes)
			}
			if e.From.Before(slaMonth) || e.To.After(slaMonth.AddDate(0, 1, 0)) {
				t.Fatalf("episode %d outside the month: %+v", i, e)
			}
		}
		if short != s.ShortGPUms {
			t.Fatalf("episodes sum to %d short, total is %d", short, s.ShortGPUms)
		}

		in.Hours = rapid.Permutation(hours).Draw(t, "permuted")
		s2, err := meter.Deliver(in)
		if err != nil {
			t.Fatalf("Deliver permuted: %v", err)
		}
		if diff := cmp.Diff(s, s2); diff != "" {
			t.Fatalf("permuting hours changed the result (-first +permuted):\n%s", diff)
		}
	})
}

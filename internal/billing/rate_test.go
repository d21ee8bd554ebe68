package billing_test

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/neocloud/neocloud/internal/billing"
	"github.com/neocloud/neocloud/internal/billing/billingtest"
	"github.com/neocloud/neocloud/internal/lease"
	"github.com/neocloud/neocloud/internal/money"
	"github.com/neocloud/neocloud/internal/unit"
	"github.com/neocloud/neocloud/internal/valid"
)

// usd parses a decimal amount of dollars.
func usd(t testing.TB, s string) money.Money {
	t.Helper()
	m, err := money.Parse(s, "USD")
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func at(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t.UTC()
}

// ln builds an expected line; prices and amounts are decimal dollars.
func ln(t testing.TB, kind billing.LineKind, leaseID, desc, from, to, qty string, u billing.Unit, price string, per int64, amount string) billing.Line {
	return billing.Line{Kind: kind, LeaseID: leaseID, Description: desc, From: at(from), To: at(to),
		Quantity: qty, Unit: u, UnitPrice: usd(t, price), Per: per, Amount: usd(t, amount)}
}

func TestRateContract(t *testing.T) {
	const (
		sep1, oct1  = "2026-09-01T00:00:00Z", "2026-10-01T00:00:00Z"
		mar1, apr1  = "2027-03-01T00:00:00Z", "2027-04-01T00:00:00Z"
		monthlyFee  = "1250000000"
		discountSep = "Discount, September 2026: 50% off the month's fee"
	)
	anchor := func(edit func(l *lease.Lease, p *billing.Plan, in *billing.LeaseMonth)) billing.LeaseMonth {
		l, p := billingtest.Anchor()
		in := billing.LeaseMonth{Month: billingtest.Month(2026, time.September)}
		edit(&l, &p, &in)
		in.Lease, in.Plan = l, p
		return in
	}
	tests := []struct {
		name string
		in   billing.LeaseMonth
		want []billing.Line
	}{
		{"first month, 50% off", anchor(func(l *lease.Lease, p *billing.Plan, in *billing.LeaseMonth) {}), []billing.Line{
			ln(t, billing.LineFee, "anchor", "Monthly fee, September 2026", sep1, oct1, "1", billing.UnitMonth, monthlyFee, 1, "1250000000"),
			ln(t, billing.LineDiscount, "anchor", discountSep, sep1, oct1, "-0.5", billing.UnitMonth, monthlyFee, 1, "-625000000"),
		}},
		{"start mid-month: prorated by the hour, then 50% off", anchor(func(l *lease.Lease, p *billing.Plan, in *billing.LeaseMonth) {
			l.Start = at("2026-09-15T12:00:00Z")
			l.Schedule[0].From = l.Start
		}), []billing.Line{
			ln(t, billing.LineFee, "anchor", "Monthly fee, September 2026", "2026-09-15T12:00:00Z", oct1, "1", billing.UnitMonth, monthlyFee, 1, "1250000000"),
			// 1,250,000,000 × 348 / 720 = 604,166,666.6666…: half-even to the micro.
			ln(t, billing.LineProration, "anchor", "Proration, September 2026: held 372 of 720 hours (2026-09-15T12:00:00Z to 2026-10-01T00:00:00Z)",
				"2026-09-15T12:00:00Z", oct1, "-348", billing.UnitHour, monthlyFee, 720, "-604166666.666667"),
			// Half of the fee as invoiced, 1,250,000,000.00 − 604,166,666.67.
			ln(t, billing.LineDiscount, "anchor", discountSep, "2026-09-15T12:00:00Z", oct1, "-0.5", billing.UnitMonth, "645833333.33", 1, "-322916666.665"),
		}},
		{"last month ends mid-month", anchor(func(l *lease.Lease, p *billing.Plan, in *billing.LeaseMonth) {
			l.End = at("2029-05-20T06:00:00Z")
			in.Month = billingtest.Month(2029, time.May)
		}), []billing.Line{
			ln(t, billing.LineFee, "anchor", "Monthly fee, May 2029", "2029-05-01T00:00:00Z", "2029-05-20T06:00:00Z", "1", billing.UnitMonth, monthlyFee, 1, "1250000000"),
			// 462 of 744 hours held: 1,250,000,000 × 282 / 744 = 473,790,322.580645…
			ln(t, billing.LineProration, "anchor", "Proration, May 2029: held 462 of 744 hours (2029-05-01T00:00:00Z to 2029-05-20T06:00:00Z)",
				"2029-05-01T00:00:00Z", "2029-05-20T06:00:00Z", "-282", billing.UnitHour, monthlyFee, 744, "-473790322.580645"),
		}},
		{"99.2% availability: the 10% tier", anchor(func(l *lease.Lease, p *billing.Plan, in *billing.LeaseMonth) {
			p.SLA = billingtest.SLA()
			in.Month, in.SLAApplies, in.AvailabilityPPM = billingtest.Month(2027, time.March), true, 992_000
		}), []billing.Line{
			ln(t, billing.LineFee, "anchor", "Monthly fee, March 2027", mar1, apr1, "1", billing.UnitMonth, monthlyFee, 1, "1250000000"),
			ln(t, billing.LineSLACredit, "anchor", "SLA credit, March 2027: availability 99.2% is below 99.5%: 10% of the month's fee after discounts",
				mar1, apr1, "-0.1", billing.UnitMonth, monthlyFee, 1, "-125000000"),
		}},
		{"SLA credit on the fee after the discount", anchor(func(l *lease.Lease, p *billing.Plan, in *billing.LeaseMonth) {
			p.SLA = billingtest.SLA()
			in.SLAApplies, in.AvailabilityPPM = true, 989_999
		}), []billing.Line{
			ln(t, billing.LineFee, "anchor", "Monthly fee, September 2026", sep1, oct1, "1", billing.UnitMonth, monthlyFee, 1, "1250000000"),
			ln(t, billing.LineDiscount, "anchor", discountSep, sep1, oct1, "-0.5", billing.UnitMonth, monthlyFee, 1, "-625000000"),
			ln(t, billing.LineSLACredit, "anchor", "SLA credit, September 2026: availability 98.9999% is below 99%: 30% of the month's fee after discounts",
				sep1, oct1, "-0.3", billing.UnitMonth, "625000000", 1, "-187500000"),
		}},
		{"availability at the threshold earns nothing", anchor(func(l *lease.Lease, p *billing.Plan, in *billing.LeaseMonth) {
			p.SLA = billingtest.SLA()
			in.Month, in.SLAApplies, in.AvailabilityPPM = billingtest.Month(2027, time.March), true, 995_000
		}), []billing.Line{
			ln(t, billing.LineFee, "anchor", "Monthly fee, March 2027", mar1, apr1, "1", billing.UnitMonth, monthlyFee, 1, "1250000000"),
		}},
		{"SLA not applying earns nothing", anchor(func(l *lease.Lease, p *billing.Plan, in *billing.LeaseMonth) {
			p.SLA = billingtest.SLA()
			in.Month, in.AvailabilityPPM = billingtest.Month(2027, time.March), 500_000
		}), []billing.Line{
			ln(t, billing.LineFee, "anchor", "Monthly fee, March 2027", mar1, apr1, "1", billing.UnitMonth, monthlyFee, 1, "1250000000"),
		}},
		{"100% tier, capped at 50%", anchor(func(l *lease.Lease, p *billing.Plan, in *billing.LeaseMonth) {
			p.SLA = billingtest.SLA()
			p.SLA.CapBP = 5_000
			in.Month, in.SLAApplies, in.AvailabilityPPM = billingtest.Month(2027, time.March), true, 940_000
		}), []billing.Line{
			ln(t, billing.LineFee, "anchor", "Monthly fee, March 2027", mar1, apr1, "1", billing.UnitMonth, monthlyFee, 1, "1250000000"),
			ln(t, billing.LineSLACredit, "anchor", "SLA credit, March 2027: availability 94% is below 95%: 100% of the month's fee after discounts, capped at 50%",
				mar1, apr1, "-0.5", billing.UnitMonth, monthlyFee, 1, "-625000000"),
		}},
		{"discount as an amount larger than the prorated fee", anchor(func(l *lease.Lease, p *billing.Plan, in *billing.LeaseMonth) {
			l.Start = at("2026-09-30T00:00:00Z")
			l.Schedule[0].From = l.Start
			p.Discounts[0] = billing.Discount{Month: billingtest.Month(2026, time.September), Amount: money.USD(100_000_000 * money.Micro)}
		}), []billing.Line{
			ln(t, billing.LineFee, "anchor", "Monthly fee, September 2026", "2026-09-30T00:00:00Z", oct1, "1", billing.UnitMonth, monthlyFee, 1, "1250000000"),
			ln(t, billing.LineProration, "anchor", "Proration, September 2026: held 24 of 720 hours (2026-09-30T00:00:00Z to 2026-10-01T00:00:00Z)",
				"2026-09-30T00:00:00Z", oct1, "-696", billing.UnitHour, monthlyFee, 720, "-1208333333.333333"),
			ln(t, billing.LineDiscount, "anchor", "Discount, September 2026: 100000000.00 USD off the month's fee (limited to the fee)",
				"2026-09-30T00:00:00Z", oct1, "-1", billing.UnitMonth, "41666666.67", 1, "-41666666.67"),
		}},
		{"energy passed through at the PUE", anchor(func(l *lease.Lease, p *billing.Plan, in *billing.LeaseMonth) {
			p.Discounts = nil
			p.Energy = &billing.Energy{PUEMilli: 1_250, Tariff: money.USD(85_000)}
			in.EnergyMJ = 1_000_000_000_000 // 277.78 kWh of IT energy
		}), []billing.Line{
			ln(t, billing.LineFee, "anchor", "Monthly fee, September 2026", sep1, oct1, "1", billing.UnitMonth, monthlyFee, 1, "1250000000"),
			// 1e12 mJ × 1.25 = 347,222,222.2 mWh → 347,222,222 mWh = 347.222222 kWh.
			ln(t, billing.LineEnergy, "anchor", "Energy pass-through, September 2026: 1000000000000 mJ of IT energy × PUE 1.25 = 347.222222 kWh at 0.085 USD per kWh",
				sep1, oct1, "347.222222", billing.UnitKWh, "0.085", 1, "29.513889"),
		}},
		{"committed GPU-hours follow the ramp", anchor(func(l *lease.Lease, p *billing.Plan, in *billing.LeaseMonth) {
			p.Fee = &billing.Fee{Basis: billing.PerGPUHour, Rate: money.USD(2_100_000)}
			p.Discounts = nil
			l.Schedule = []lease.Step{{From: l.Start, GPUs: 1_000}, {From: at("2026-09-11T00:00:00Z"), GPUs: 0}, {From: at("2026-09-21T00:00:00Z"), GPUs: 2_000}}
		}), []billing.Line{
			// 1000 GPUs × 240 h + 2000 GPUs × 240 h = 720,000 GPU-hours.
			ln(t, billing.LineFee, "anchor", "Committed GPU-hours, September 2026: take-or-pay at 2.10 USD per GPU-hour",
				sep1, oct1, "720000", billing.UnitGPUHour, "2.1", 1, "1512000"),
		}},
		{"committed MW-months, prorated", anchor(func(l *lease.Lease, p *billing.Plan, in *billing.LeaseMonth) {
			p.Fee = &billing.Fee{Basis: billing.PerMWMonth, Rate: money.USD(4_000_000 * money.Micro), Power: 301_360_896 * unit.Watt}
			p.Discounts = nil
			l.Start = at("2026-09-02T00:00:00Z")
			l.Schedule[0].From = l.Start
		}), []billing.Line{
			// 301.360896 MW × 4,000,000 = 1,205,443,584.
			ln(t, billing.LineFee, "anchor", "Committed power, September 2026: 301.360896 MW at 4000000.00 USD per MW-month",
				"2026-09-02T00:00:00Z", oct1, "301.360896", billing.UnitMWMonth, "4000000", 1, "1205443584"),
			ln(t, billing.LineProration, "anchor", "Proration, September 2026: held 696 of 720 hours (2026-09-02T00:00:00Z to 2026-10-01T00:00:00Z)",
				"2026-09-02T00:00:00Z", oct1, "-24", billing.UnitHour, "1205443584", 720, "-40181452.8"),
		}},
		{"a month before the lease", anchor(func(l *lease.Lease, p *billing.Plan, in *billing.LeaseMonth) {
			in.Month = billingtest.Month(2026, time.August)
			in.EnergyMJ = 5
		}), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := billing.Rate(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Rate (-want +got):\n%s", diff)
			}
			for i, l := range got {
				if err := l.Check(); err != nil {
					t.Errorf("lines[%d].Check() = %v", i, err)
				}
			}
		})
	}
}

func TestRateReservation(t *testing.T) {
	l := billingtest.Lease("res-1", lease.Reservation, at("2026-09-28T00:00:00Z"), at("2026-10-03T00:00:00Z"), 64)
	const desc = "Reservation, 2026-09-28T00:00:00Z to 2026-10-03T00:00:00Z: 64 GPUs at 2.50 USD per GPU-hour, billed upfront"
	tests := []struct {
		name    string
		billing billing.ReservationBilling
		month   time.Time
		want    []billing.Line
	}{
		{"upfront: the whole reservation in the first month", billing.Upfront, billingtest.Month(2026, time.September), []billing.Line{
			ln(t, billing.LineFee, "res-1", desc, "2026-09-28T00:00:00Z", "2026-10-03T00:00:00Z", "7680", billing.UnitGPUHour, "2.5", 1, "19200"),
		}},
		{"upfront: nothing in the next", billing.Upfront, billingtest.Month(2026, time.October), nil},
		{"arrears: the first month's hours", billing.Arrears, billingtest.Month(2026, time.September), []billing.Line{
			ln(t, billing.LineFee, "res-1", "Reservation, September 2026: 64 GPUs at 2.50 USD per GPU-hour, in arrears",
				"2026-09-28T00:00:00Z", "2026-10-01T00:00:00Z", "4608", billing.UnitGPUHour, "2.5", 1, "11520"),
		}},
		{"arrears: the second month's", billing.Arrears, billingtest.Month(2026, time.October), []billing.Line{
			ln(t, billing.LineFee, "res-1", "Reservation, October 2026: 64 GPUs at 2.50 USD per GPU-hour, in arrears",
				"2026-10-01T00:00:00Z", "2026-10-03T00:00:00Z", "3072", billing.UnitGPUHour, "2.5", 1, "7680"),
		}},
		{"arrears: nothing after", billing.Arrears, billingtest.Month(2026, time.November), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := billing.Rate(billing.LeaseMonth{Lease: l, Plan: billingtest.ReservationPlan(2_500_000, tt.billing), Month: tt.month})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Rate (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRateSpot(t *testing.T) {
	l := billingtest.Lease("spot-1", lease.Spot, time.Time{}, time.Time{}, 8)
	piece := func(from, to string, gpus int64, price string) billing.SpotPiece {
		return billing.SpotPiece{From: at(from), To: at(to), GPUs: gpus, PricePerGPUHour: usd(t, price)}
	}
	tests := []struct {
		name   string
		pieces []billing.SpotPiece
		want   []billing.Line
	}{
		{"minute marks, split at a price change and back", []billing.SpotPiece{
			// 10:00:30 → 10:10:30 holds the marks 10:01 … 10:10: 10 minutes.
			piece("2026-09-03T10:00:30Z", "2026-09-03T10:10:30Z", 8, "2.10"),
			// 10:10:30 → 10:20:00 holds 10:11 … 10:19: 9 minutes.
			piece("2026-09-03T10:10:30Z", "2026-09-03T10:20:00Z", 8, "3.15"),
			// Back to 2.10 with 16 GPUs, 10:20 … 10:29: 10 minutes.
			piece("2026-09-03T10:20:00Z", "2026-09-03T10:30:00Z", 16, "2.10"),
		}, []billing.Line{
			// 8 × 10 + 16 × 10 = 240 GPU-minutes × 2.10 / 60 = 8.40.
			ln(t, billing.LineUsage, "spot-1", "Spot, September 2026: GPU-minutes at 2.10 USD per GPU-hour (minutes from 2026-09-03T10:01:00Z to 2026-09-03T10:30:00Z)",
				"2026-09-03T10:01:00Z", "2026-09-03T10:30:00Z", "240", billing.UnitGPUMinute, "2.10", 60, "8.4"),
			// 72 GPU-minutes × 3.15 / 60 = 3.78.
			ln(t, billing.LineUsage, "spot-1", "Spot, September 2026: GPU-minutes at 3.15 USD per GPU-hour (minutes from 2026-09-03T10:11:00Z to 2026-09-03T10:20:00Z)",
				"2026-09-03T10:11:00Z", "2026-09-03T10:20:00Z", "72", billing.UnitGPUMinute, "3.15", 60, "3.78"),
		}},
		{"clipped to the month; no minute mark, no charge", []billing.SpotPiece{
			piece("2026-09-30T23:58:00.001Z", "2026-10-01T00:05:00Z", 2, "1.000001"),
			piece("2026-09-10T00:00:00.5Z", "2026-09-10T00:00:59Z", 1000, "9"),
		}, []billing.Line{
			// Mark 23:59 only: 2 GPU-minutes × 1.000001 / 60 = 0.0333333667 → 0.033333.
			ln(t, billing.LineUsage, "spot-1", "Spot, September 2026: GPU-minutes at 1.000001 USD per GPU-hour (minutes from 2026-09-30T23:59:00Z to 2026-10-01T00:00:00Z)",
				"2026-09-30T23:59:00Z", "2026-10-01T00:00:00Z", "2", billing.UnitGPUMinute, "1.000001", 60, "0.033333"),
		}},
		{"nothing held", nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := billing.Rate(billing.LeaseMonth{Lease: l, Plan: billingtest.SpotPlan(), Month: billingtest.Month(2026, time.September), Spot: tt.pieces})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Rate (-want +got):\n%s", diff)
			}
		})
	}
}

// fields returns the fields a *valid.Error names, or nil.
func fields(err error) []string {
	var ve *valid.Error
	if !errors.As(err, &ve) {
		return nil
	}
	var out []string
	for _, is := range ve.Issues {
		out = append(out, is.Field)
	}
	return out
}

func TestRateErrors(t *testing.T) {
	spot := billingtest.Lease("spot-1", lease.Spot, time.Time{}, time.Time{}, 8)
	tests := []struct {
		name   string
		in     func() billing.LeaseMonth
		fields []string
	}{
		{"month not a month", func() billing.LeaseMonth {
			l, p := billingtest.Anchor()
			return billing.LeaseMonth{Lease: l, Plan: p, Month: at("2026-09-02T00:00:00Z")}
		}, []string{"month"}},
		{"kinds differ", func() billing.LeaseMonth {
			l, p := billingtest.Anchor()
			l.Kind = lease.Reservation
			return billing.LeaseMonth{Lease: l, Plan: p, Month: billingtest.Month(2026, time.September)}
		}, []string{"lease.kind"}},
		{"lease off the hour", func() billing.LeaseMonth {
			l, p := billingtest.Anchor()
			l.Start = l.Start.Add(time.Minute)
			return billing.LeaseMonth{Lease: l, Plan: p, Month: billingtest.Month(2026, time.September)}
		}, []string{"lease.start"}},
		{"discount outside the lease", func() billing.LeaseMonth {
			l, p := billingtest.Anchor()
			p.Discounts[1].Month = billingtest.Month(2029, time.June)
			return billing.LeaseMonth{Lease: l, Plan: p, Month: billingtest.Month(2026, time.September)}
		}, []string{"discounts[1].month"}},
		{"bad facts", func() billing.LeaseMonth {
			l, p := billingtest.Anchor()
			return billing.LeaseMonth{Lease: l, Plan: p, Month: billingtest.Month(2026, time.September),
				EnergyMJ: -1, SLAApplies: true, AvailabilityPPM: 1_000_001, Spot: []billing.SpotPiece{{}}}
		}, []string{"energy_mj", "availability_ppm", "spot", "spot[0].from", "spot[0].to", "spot[0].gpus", "spot[0].price_per_gpu_hour"}},
		{"spot piece in another currency", func() billing.LeaseMonth {
			return billing.LeaseMonth{Lease: spot, Plan: billingtest.SpotPlan(), Month: billingtest.Month(2026, time.September),
				Spot: []billing.SpotPiece{{From: at("2026-09-01T00:00:00Z"), To: at("2026-09-01T01:00:00Z"), GPUs: 1, PricePerGPUHour: money.New(1, "EUR")}}}
		}, []string{"spot[0].price_per_gpu_hour"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := billing.Rate(tt.in())
			if diff := cmp.Diff(tt.fields, fields(err)); diff != "" {
				t.Errorf("Rate() = %v; fields (-want +got):\n%s", err, diff)
			}
		})
	}
}

func TestRateOverflow(t *testing.T) {
	l, p := billingtest.Anchor()
	p.Fee = &billing.Fee{Basis: billing.PerGPUHour, Rate: money.USD(10_000_000_000 * money.Micro)}
	p.Discounts = nil
	_, err := billing.Rate(billing.LeaseMonth{Lease: l, Plan: p, Month: billingtest.Month(2027, time.January)})
	if !errors.Is(err, money.ErrOverflow) {
		t.Fatalf("Rate() = %v, want money.ErrOverflow", err)
	}
}

func TestPlanValidate(t *testing.T) {
	tests := []struct {
		name   string
		plan   func() billing.Plan
		fields []string // nil when valid
	}{
		{"anchor", func() billing.Plan { _, p := billingtest.Anchor(); return p }, nil},
		{"anchor with everything", func() billing.Plan {
			_, p := billingtest.Anchor()
			p.SLA = billingtest.SLA()
			p.SLA.CapBP = 5000
			p.Energy = &billing.Energy{PUEMilli: 1250, Tariff: money.USD(85_000)}
			p.Discounts = append(p.Discounts, billing.Discount{Month: billingtest.Month(2027, time.January), Amount: money.USD(1)})
			return p
		}, nil},
		{"reservation", func() billing.Plan { return billingtest.ReservationPlan(1, billing.Arrears) }, nil},
		{"spot", billingtest.SpotPlan, nil},
		{"unknown kind and currency", func() billing.Plan { return billing.Plan{Kind: "lease", Currency: "usd"} }, []string{"kind", "currency"}},
		{"contract without fee", func() billing.Plan { return billing.Plan{Kind: lease.Contract, Currency: "USD"} }, []string{"fee"}},
		{"spot with contract terms", func() billing.Plan {
			_, p := billingtest.Anchor()
			p.Kind = lease.Spot
			p.SLA = billingtest.SLA()
			p.Energy = &billing.Energy{PUEMilli: 1250, Tariff: money.USD(1)}
			p.Reservation = &billing.ReservationTerms{Rate: money.USD(1), Billing: billing.Upfront}
			return p
		}, []string{"fee", "discounts", "energy", "sla", "reservation"}},
		{"fee terms", func() billing.Plan {
			_, p := billingtest.Anchor()
			p.Fee = &billing.Fee{Basis: "year", Rate: money.New(5, "EUR"), Power: 5}
			return p
		}, []string{"fee.basis", "fee.rate", "fee.power_w"}},
		{"mw-month without power", func() billing.Plan {
			_, p := billingtest.Anchor()
			p.Fee = &billing.Fee{Basis: billing.PerMWMonth, Rate: money.USD(0)}
			return p
		}, []string{"fee.rate", "fee.power_w"}},
		{"discounts", func() billing.Plan {
			_, p := billingtest.Anchor()
			p.Discounts = []billing.Discount{
				{Month: at("2026-09-01T00:00:00Z"), BasisPoints: 10_001},
				{Month: at("2026-09-01T00:00:00Z"), BasisPoints: 1, Amount: money.USD(1)},
				{Month: at("2026-10-02T00:00:00Z")},
				{Month: at("2026-11-01T00:00:00Z"), Amount: money.USD(-1)},
			}
			return p
		}, []string{"discounts[0].basis_points", "discounts[1].month", "discounts[1].basis_points", "discounts[2].month", "discounts[2].basis_points", "discounts[3].amount"}},
		{"energy", func() billing.Plan {
			_, p := billingtest.Anchor()
			p.Energy = &billing.Energy{PUEMilli: 125, Tariff: money.USD(-1)}
			return p
		}, []string{"energy.pue_milli", "energy.tariff"}},
		{"sla", func() billing.Plan {
			_, p := billingtest.Anchor()
			p.SLA = &billing.SLATerms{TargetPPM: 995_000, CapBP: 10_001, Tiers: []billing.CreditTier{
				{BelowPPM: 996_000, CreditBP: 1_000},
				{BelowPPM: 990_000, CreditBP: 3_000},
				{BelowPPM: 991_000, CreditBP: 2_000},
				{BelowPPM: 900_000, CreditBP: 0},
			}}
			return p
		}, []string{"sla.tiers[0].below_ppm", "sla.tiers[2].below_ppm", "sla.tiers[2].credit_bp", "sla.tiers[3].credit_bp", "sla.cap_bp"}},
		{"sla without tiers", func() billing.Plan {
			_, p := billingtest.Anchor()
			p.SLA = &billing.SLATerms{TargetPPM: 0}
			return p
		}, []string{"sla.target_ppm", "sla.tiers"}},
		{"reservation terms", func() billing.Plan {
			p := billingtest.ReservationPlan(0, "monthly")
			return p
		}, []string{"reservation.rate", "reservation.billing"}},
		{"reservation without terms", func() billing.Plan { return billing.Plan{Kind: lease.Reservation, Currency: "USD"} }, []string{"reservation"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.plan().Validate()
			got := fields(err)
			if err != nil && got == nil {
				t.Fatalf("Validate() = %v, not a *valid.Error", err)
			}
			slices.Sort(got)
			want := slices.Sorted(slices.Values(tt.fields))
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("Validate() = %v; fields (-want +got):\n%s", err, diff)
			}
		})
	}
}

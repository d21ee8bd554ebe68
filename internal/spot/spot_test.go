package spot

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/neocloud/neocloud/internal/money"
	"github.com/neocloud/neocloud/internal/valid"
)

func TestValidate(t *testing.T) {
	ok := DefaultPolicy(money.USD(2_100_000))
	tests := []struct {
		name  string
		edit  func(p *Policy)
		field string // "" when valid
	}{
		{"default", func(p *Policy) {}, ""},
		{"zero base", func(p *Policy) { p.Base = money.USD(0) }, "base"},
		{"one point", func(p *Policy) { p.Curve = p.Curve[:1] }, "curve"},
		{"curve not from 0", func(p *Policy) { p.Curve[0].UtilizationPermille = 10 }, "curve[0].utilization_permille"},
		{"curve not to 1000", func(p *Policy) { p.Curve[4].UtilizationPermille = 990 }, "curve[4].utilization_permille"},
		{"curve unsorted", func(p *Policy) { p.Curve[2].UtilizationPermille = 400 }, "curve[2].utilization_permille"},
		{"falling price", func(p *Policy) { p.Curve[3].MultiplierPermille = 1200 }, "curve[3].multiplier_permille"},
		{"zero multiplier", func(p *Policy) { p.Curve[0].MultiplierPermille = 0 }, "curve[0].multiplier_permille"},
		{"no tiers", func(p *Policy) { p.Tiers = nil }, "tiers"},
		{"duplicate tier", func(p *Policy) { p.Tiers[1].Name = "2m" }, "tiers[1].name"},
		{"zero notice", func(p *Policy) { p.Tiers[0].Notice = 0 }, "tiers[0].notice"},
		{"tiers unsorted", func(p *Policy) { p.Tiers[2].Notice = time.Minute }, "tiers[2].notice"},
		{"discount tier", func(p *Policy) { p.Tiers[1].PremiumPermille = 900 }, "tiers[1].premium_permille"},
		{"buffer over 100%", func(p *Policy) { p.BufferPermille = 1001 }, "buffer_permille"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := DefaultPolicy(ok.Base)
			tt.edit(&p)
			err := p.Validate()
			if tt.field == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			var ve *valid.Error
			if !errors.As(err, &ve) || !slices.ContainsFunc(ve.Issues, func(i valid.Issue) bool { return i.Field == tt.field }) {
				t.Fatalf("Validate() = %v, want an issue naming %s", err, tt.field)
			}
		})
	}
}

func TestPrice(t *testing.T) {
	p := DefaultPolicy(money.USD(2_100_000)) // $2.10 per GPU-hour
	tests := []struct {
		util int64
		tier string
		want int64 // micro-USD per GPU-hour
	}{
		{0, "2m", 1_050_000},     // half the base on an empty pool
		{250, "2m", 1_575_000},   // halfway to 1.0: 750 permille
		{500, "2m", 2_100_000},   // the base
		{650, "2m", 2_625_000},   // 1250 permille
		{1000, "2m", 10_500_000}, // 5× when full
		{1200, "2m", 10_500_000}, // clamped
		{-5, "2m", 1_050_000},    // clamped
		{500, "30m", 2_415_000},  // +15%
		{500, "24h", 3_360_000},  // +60%
	}
	for _, tt := range tests {
		got, err := p.Price(tt.util, tt.tier)
		if err != nil || got != money.USD(tt.want) {
			t.Errorf("Price(%d, %s) = %v, %v; want %v", tt.util, tt.tier, got, err, money.USD(tt.want))
		}
	}
	if _, err := p.Price(500, "1h"); err == nil || !strings.Contains(err.Error(), `"1h"`) {
		t.Errorf("Price of an unknown tier: err = %v, want one naming it", err)
	}
}

// TestPriceMonotone checks that the price never falls as utilization rises
// or as notice lengthens, for any valid curve.
func TestPriceMonotone(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		n := rapid.IntRange(2, 6).Draw(t, "points")
		us := rapid.SliceOfNDistinct(rapid.Int64Range(1, 999), n-2, n-2, rapid.ID[int64]).Draw(t, "utils")
		us = append(us, 0, 1000)
		slices.Sort(us)
		ms := rapid.SliceOfN(rapid.Int64Range(1, 10_000), n, n).Draw(t, "mults")
		slices.Sort(ms)
		p := DefaultPolicy(money.USD(rapid.Int64Range(1, 100_000_000).Draw(t, "base")))
		p.Curve = nil
		for i := range us {
			p.Curve = append(p.Curve, Point{us[i], ms[i]})
		}
		if err := p.Validate(); err != nil {
			t.Fatalf("generated policy invalid: %v", err)
		}
		a := rapid.Int64Range(0, 1000).Draw(t, "a")
		b := rapid.Int64Range(a, 1000).Draw(t, "b")
		for i, tier := range p.Tiers {
			pa, _ := p.Price(a, tier.Name)
			pb, _ := p.Price(b, tier.Name)
			if pb.Micros < pa.Micros {
				t.Fatalf("tier %s: price at %d‰ = %v > price at %d‰ = %v", tier.Name, a, pa, b, pb)
			}
			if i > 0 {
				shorter, _ := p.Price(a, p.Tiers[i-1].Name)
				if pa.Micros < shorter.Micros {
					t.Fatalf("at %d‰ tier %s costs %v < tier %s %v", a, tier.Name, pa, p.Tiers[i-1].Name, shorter)
				}
			}
		}
	})
}

func TestSellable(t *testing.T) {
	p := DefaultPolicy(money.USD(1))
	for _, tt := range []struct{ healthy, guaranteed, internal, want int64 }{
		{1000, 500, 200, 280}, // buffer 20
		{1000, 990, 0, 0},
		{1001, 0, 0, 980}, // buffer rounds up: 21
		{0, 0, 0, 0},
	} {
		if got := p.Sellable(tt.healthy, tt.guaranteed, tt.internal); got != tt.want {
			t.Errorf("Sellable(%d, %d, %d) = %d, want %d", tt.healthy, tt.guaranteed, tt.internal, got, tt.want)
		}
	}
}

func TestVictimsOrder(t *testing.T) {
	t0 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	hs := []Holder{
		{LeaseID: "a", GPUs: 8, MaxPrice: money.USD(3_000_000), Start: t0},
		{LeaseID: "b", GPUs: 16, MaxPrice: money.USD(2_000_000), Start: t0},
		{LeaseID: "c", GPUs: 8, MaxPrice: money.USD(2_000_000), Start: t0.Add(time.Hour)},
		{LeaseID: "d", GPUs: 8, MaxPrice: money.USD(5_000_000), Start: t0.Add(2 * time.Hour)},
	}
	got, freed := Victims(hs, 20)
	ids := []string{}
	for _, h := range got {
		ids = append(ids, h.LeaseID)
	}
	if want := []string{"c", "b"}; !slices.Equal(ids, want) || freed != 24 {
		t.Errorf("Victims(20) = %v freeing %d, want %v freeing 24 (cheapest, then newest)", ids, freed, want)
	}
	if got, freed := Victims(hs, 100); len(got) != 4 || freed != 40 {
		t.Errorf("Victims(100) = %d holders freeing %d, want all 4 freeing 40", len(got), freed)
	}
	if got, _ := Victims(hs, 0); got != nil {
		t.Errorf("Victims(0) = %v, want none", got)
	}
}

// TestVictimsProperty checks the reclaim rule on random holders: the
// victims free enough when the holders can, none could be spared (without
// the last one too little is freed), and no holder left alone ranks before
// a victim (lower max price, or equal and newer).
func TestVictimsProperty(t *testing.T) {
	t0 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	rapid.Check(t, func(t *rapid.T) {
		n := rapid.IntRange(0, 20).Draw(t, "n")
		var hs []Holder
		var total int64
		for i := range n {
			h := Holder{LeaseID: string(rune('a' + i)), GPUs: rapid.Int64Range(1, 64).Draw(t, "gpus"),
				MaxPrice: money.USD(rapid.Int64Range(1, 5).Draw(t, "price") * 1_000_000),
				Start:    t0.Add(time.Duration(rapid.IntRange(0, 5).Draw(t, "start")) * time.Hour)}
			hs = append(hs, h)
			total += h.GPUs
		}
		need := rapid.Int64Range(0, 400).Draw(t, "need")
		vs, freed := Victims(hs, need)
		var sum int64
		for _, v := range vs {
			sum += v.GPUs
		}
		if sum != freed {
			t.Fatalf("freed = %d, victims hold %d", freed, sum)
		}
		if freed < min(need, total) {
			t.Fatalf("freed %d < min(need %d, total %d)", freed, need, total)
		}
		if len(vs) > 0 && freed-vs[len(vs)-1].GPUs >= need {
			t.Fatalf("the last victim %s was not needed: %d freed without it, %d needed", vs[len(vs)-1].LeaseID, freed-vs[len(vs)-1].GPUs, need)
		}
		for _, h := range hs {
			if slices.ContainsFunc(vs, func(v Holder) bool { return v.LeaseID == h.LeaseID }) {
				continue
			}
			for _, v := range vs {
				if h.MaxPrice.Micros < v.MaxPrice.Micros || h.MaxPrice == v.MaxPrice && h.Start.After(v.Start) {
					t.Fatalf("%s (max %v, start %v) spared while %s (max %v, start %v) reclaimed", h.LeaseID, h.MaxPrice, h.Start, v.LeaseID, v.MaxPrice, v.Start)
				}
			}
		}
	})
}

func TestOutbid(t *testing.T) {
	p := DefaultPolicy(money.USD(2_000_000))
	hs := []Holder{
		{LeaseID: "cheap", MaxPrice: money.USD(1_500_000), Tier: "2m"},
		{LeaseID: "rich", MaxPrice: money.USD(9_000_000), Tier: "2m"},
		{LeaseID: "long", MaxPrice: money.USD(2_100_000), Tier: "24h"},
		{LeaseID: "gone", MaxPrice: money.USD(9_000_000), Tier: "1w"},
	}
	var ids []string
	for _, h := range p.Outbid(hs, 500) { // 2m: $2.00, 24h: $3.20
		ids = append(ids, h.LeaseID)
	}
	if want := []string{"cheap", "long", "gone"}; !slices.Equal(ids, want) {
		t.Errorf("Outbid at 500‰ = %v, want %v", ids, want)
	}
}

// Package unit holds the quantity types Neocloud counts in: power in watts,
// energy in watt-hours and GPUs. Quantities are integers in a fixed unit so
// that sums are exact; conversions to kW and MW are for display only.
package unit

import (
	"fmt"
	"math"
	"math/big"
)

// Power is electrical power in watts.
type Power int64

// Common power units.
const (
	Watt     Power = 1
	Kilowatt Power = 1000
	Megawatt Power = 1000 * Kilowatt
)

// KW returns p in kilowatts.
func (p Power) KW() float64 { return float64(p) / float64(Kilowatt) }

// MW returns p in megawatts.
func (p Power) MW() float64 { return float64(p) / float64(Megawatt) }

// String formats p with the largest unit that keeps it readable.
func (p Power) String() string {
	switch {
	case p >= Megawatt || p <= -Megawatt:
		return fmt.Sprintf("%.3f MW", p.MW())
	case p >= Kilowatt || p <= -Kilowatt:
		return fmt.Sprintf("%.3f kW", p.KW())
	default:
		return fmt.Sprintf("%d W", int64(p))
	}
}

// PowerFromKW converts kilowatts to Power, rounding to the nearest watt.
// It returns an error when kw is not finite or does not fit.
func PowerFromKW(kw float64) (Power, error) { return fromFloat(kw, float64(Kilowatt)) }

// PowerFromMW converts megawatts to Power, rounding to the nearest watt.
// It returns an error when mw is not finite or does not fit.
func PowerFromMW(mw float64) (Power, error) { return fromFloat(mw, float64(Megawatt)) }

func fromFloat(v, scale float64) (Power, error) {
	w := math.Round(v * scale)
	if math.IsNaN(w) || math.IsInf(w, 0) || w > math.MaxInt64/2 || w < math.MinInt64/2 {
		return 0, fmt.Errorf("power %v out of range", v)
	}
	return Power(w), nil
}

// Scale returns p multiplied by num/den, rounded half away from zero to the
// watt; it is how facility power is derived from IT power and a PUE given in
// thousandths (PUE 1.2 = 1200/1000). The product is taken in big integers so
// it cannot overflow; den must not be zero.
func (p Power) Scale(num, den int64) Power {
	prod := new(big.Int).Mul(big.NewInt(int64(p)), big.NewInt(num))
	d := big.NewInt(den)
	q, m := new(big.Int).QuoRem(prod, d, new(big.Int))
	if new(big.Int).Mul(m.Abs(m), big.NewInt(2)).Cmp(d.Abs(d)) >= 0 {
		if (prod.Sign() < 0) != (den < 0) {
			q.Sub(q, big.NewInt(1))
		} else {
			q.Add(q, big.NewInt(1))
		}
	}
	return Power(q.Int64())
}

// GPUs is a count of GPUs.
type GPUs int64

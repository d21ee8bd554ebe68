package sim

import (
	"fmt"

	"github.com/neocloud/neocloud/internal/money"
	"github.com/neocloud/neocloud/internal/valid"
)

// Baseline returns points as a static partition of the fleet would have
// had them: a fixed share leased as reservations at ratePerGPUHour, never
// reclaimed, and no spot. It is what the run is compared with.
//
// For each hour h, from points[h] = p:
//   - At, Healthy, Internal, Holdback, Contract, ContractUSD and Failures
//     are p's (the anchor contract and the failures exist in both worlds);
//   - Reservation = min(leased[h], max(Healthy − Contract, 0)) and
//     ReservationUSD = Reservation × ratePerGPUHour;
//   - InternalMet = min(Internal, max(Healthy − Contract − Reservation, 0));
//   - InternalLate = Internal − InternalMet: nothing can be reclaimed, so
//     all unmet internal demand waits beyond the notice period;
//   - Spot, SpotUSD, Sanitizing, Reclaims and ReclaimedGPUs are zero (a
//     share that never changes holder is never wiped).
//
// leased must have one count per point, none negative; ratePerGPUHour
// must be USD (or zero) and not negative. Errors: a *valid.Error naming
// the bad argument or point, or money.ErrOverflow.
func Baseline(points []Point, leased []int64, ratePerGPUHour money.Money) ([]Point, error) {
	var e valid.Error
	if len(leased) != len(points) {
		e.Add("leased", fmt.Sprintf("%d hours", len(leased)), "must have one count per point (%d)", len(points))
	}
	if ratePerGPUHour.Micros < 0 {
		e.Add("rate_per_gpu_hour", ratePerGPUHour.String(), "must not be negative")
	}
	if ratePerGPUHour.Micros != 0 && ratePerGPUHour.Currency != "USD" {
		e.Add("rate_per_gpu_hour", ratePerGPUHour.String(), "must be in USD")
	}
	if err := e.Err(); err != nil {
		return nil, err
	}
	if err := checkHourly(points); err != nil {
		return nil, err
	}
	rate := money.USD(ratePerGPUHour.Micros)
	out := make([]Point, len(points))
	for h, p := range points {
		if leased[h] < 0 {
			e.Add(fmt.Sprintf("leased[%d]", h), leased[h], "must not be negative")
			return nil, e.Err()
		}
		room := max(p.Healthy-p.Contract, 0)
		res := min(leased[h], room)
		met := min(p.Internal, room-res)
		usd, err := rate.Mul(res)
		if err != nil {
			return nil, fmt.Errorf("sim: baseline: points[%d]: %w", h, err)
		}
		out[h] = Point{
			At: p.At, Healthy: p.Healthy, Internal: p.Internal,
			InternalMet: met, InternalLate: p.Internal - met,
			Holdback: p.Holdback, Contract: p.Contract, Reservation: res,
			ContractUSD: p.ContractUSD, ReservationUSD: usd,
			Failures: p.Failures,
		}
	}
	return out, nil
}

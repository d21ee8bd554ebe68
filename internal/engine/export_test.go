package engine

import (
	"context"
	"time"

	"github.com/neocloud/neocloud/internal/lease"
)

// EarliestBoth resolves r for tenantID and answers its earliest start
// (after r's own) twice: got from the engine's search, want from
// earliestRef, the search as it was before candidates were grouped, which
// probes every candidate on its own. failed is how many of want's probes
// failed.
func (e *Engine) EarliestBoth(ctx context.Context, tenantID string, r lease.Request) (got, want time.Time, failed int, err error) {
	err = e.readCap(ctx, func(c *capState) error {
		now := e.clock.Now()
		l, p, err := c.resolve(now, r)
		if err != nil {
			return err
		}
		l.TenantID = tenantID
		got = c.earliest(now, p, &l)
		want, failed = c.earliestRef(now, p, &l)
		return nil
	})
	return got, want, failed, err
}

// earliestRef is earliest with every candidate probed on its own; it also
// returns how many probes failed.
func (c *capState) earliestRef(now time.Time, p *poolCap, l *lease.Lease) (time.Time, int) {
	if !l.Kind.Guaranteed() {
		return time.Time{}, 0
	}
	length := c.ceil(l.End) - c.floor(l.Start)
	before := c.ceil(c.horizonEnd(now))
	need := int64(l.MaxGPUs())
	from := c.floor(l.Start) + 1
	segs := l.Segments()
	for tries, skips := 0, 0; tries < maxEarliestTries; {
		s, ok := p.free.EarliestFit(from, before, length, need)
		if !ok {
			return time.Time{}, tries
		}
		shift := c.timeOf(s).Sub(l.Start)
		d, ok := c.powerShift(p, l, segs, shift, before-(s+length))
		if !ok {
			return time.Time{}, tries
		}
		if d > 0 && skips < maxEarliestSkips {
			skips++
			from = s + d
			continue
		}
		if _, ref := c.fits(p, l, shift, fitProbe); ref == nil {
			return c.timeOf(s), tries
		}
		tries++
		from = s + 1
	}
	return time.Time{}, maxEarliestTries
}

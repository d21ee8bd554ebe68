package engine

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/neocloud/neocloud/internal/event"
	"github.com/neocloud/neocloud/internal/fleet"
	"github.com/neocloud/neocloud/internal/tenant"
	"github.com/neocloud/neocloud/internal/valid"
)

// TickResult says what one tick did.
type TickResult struct {
	Reclaimed  int // spot leases given a reclaim notice
	Released   int // spot leases whose release came
	Rebalanced int // rebalance events sent
	Sanitizing int // nodes that started their wipe
	Sanitized  int // nodes whose wipe ended
}

// Tick brings the capacity state to the clock's now: nodes released by
// ended allocations start their wipe, wipes that lasted the hand-over
// time end, spot leases released since are reported, and each pool's spot
// is reclaimed where the owner's use, guaranteed leases or prices need it.
// The server calls it every few seconds; the simulator every virtual step.
func (e *Engine) Tick(ctx context.Context) (TickResult, error) {
	v, err := e.SubmitTick(ctx).Wait()
	if err != nil {
		return TickResult{}, err
	}
	return v.(TickResult), nil
}

// SubmitTick is Tick without waiting; Wait answers a TickResult.
func (e *Engine) SubmitTick(ctx context.Context) Pending {
	ctx = withPrincipal(ctx, tenant.Principal{KeyID: "engine", Role: tenant.OperatorAdmin})
	return e.submit(ctx, func(c *capState, now time.Time, _ *leaseIDs) (*effect, any, error) {
		eff, err := c.tick(now)
		if err != nil {
			return nil, nil, err
		}
		res := tickResult(eff)
		if res.Reclaimed > 0 {
			eff.audit = &tenant.AuditEntry{Action: "spot.reclaim", Object: "engine/tick",
				Detail: fmt.Sprintf("reclaimed=%d released=%d rebalanced=%d", res.Reclaimed, res.Released, res.Rebalanced)}
		}
		if len(eff.events) == 0 && len(eff.more) == 0 {
			return nil, res, nil
		}
		return eff, res, nil
	})
}

func tickResult(eff *effect) TickResult {
	var r TickResult
	for _, ev := range eff.events {
		switch ev.Type {
		case event.SpotReclaim:
			r.Reclaimed++
		case event.SpotReleased:
			r.Released++
		case event.SpotRebalance:
			r.Rebalanced++
		case event.NodeSanitized:
			var d struct {
				Count int `json:"count"`
			}
			_ = json.Unmarshal(ev.Data, &d)
			r.Sanitized += d.Count
		}
	}
	r.Sanitizing = eff.wipes
	return r
}

// SetInternalUse records the owner's own use of pool now, in GPUs (what
// its jobs hold; the demand history keeps the hourly record), and reclaims
// spot for it: the victims get their notice and are released after it.
// It returns the IDs of the spot leases reclaimed. Operators only.
func (e *Engine) SetInternalUse(ctx context.Context, p tenant.Principal, pool string, gpus int64) ([]string, error) {
	pend, err := e.SubmitInternalUse(ctx, p, pool, gpus)
	if err != nil {
		return nil, err
	}
	v, err := pend.Wait()
	if err != nil {
		return nil, err
	}
	ids, _ := v.([]string)
	return ids, nil
}

// SubmitInternalUse is SetInternalUse without waiting; Wait answers the
// reclaimed lease IDs ([]string).
func (e *Engine) SubmitInternalUse(ctx context.Context, p tenant.Principal, pool string, gpus int64) (Pending, error) {
	if err := e.check(ctx, p, tenant.PermCapacityWrite, "internal.set", "pool/"+pool, ""); err != nil {
		return Pending{}, err
	}
	ctx = withPrincipal(ctx, p)
	return e.submit(ctx, func(c *capState, now time.Time, _ *leaseIDs) (*effect, any, error) {
		eff, err := c.setInternal(now, pool, gpus)
		if err != nil {
			return nil, nil, err
		}
		var ids []string
		for _, l := range eff.leases {
			ids = append(ids, l.ID)
		}
		if len(ids) > 0 {
			eff.audit = &tenant.AuditEntry{Action: "spot.reclaim", Object: "pool/" + pool,
				Detail: fmt.Sprintf("internal use %d GPUs; reclaimed %v", gpus, ids)}
		}
		if len(eff.events) == 0 && len(eff.leases) == 0 {
			return nil, ids, nil
		}
		return eff, ids, nil
	}), nil
}

// SpotMarket is a pool's spot market now. Tenants see the prices; the
// capacity figures (which reveal the owner's own use) are operators'.
type SpotMarket struct {
	PoolNow
	// Visible is false for a tenant: only Pool, At and Prices are set.
	Visible bool
}

// SpotMarkets returns the spot market of pool ("" = every pool), by pool.
func (e *Engine) SpotMarkets(ctx context.Context, p tenant.Principal, pool string) ([]SpotMarket, error) {
	if err := e.check(ctx, p, tenant.PermLeasesRead, "spot.prices", "pool/"+pool, p.TenantID); err != nil {
		return nil, err
	}
	var out []SpotMarket
	err := e.readCap(ctx, func(c *capState) error {
		if pool != "" && c.pools[pool] == nil {
			var v valid.Error
			v.Add("pool", pool, "must be a pool of the fleet (site/MODEL)")
			return v.Err()
		}
		now := e.clock.Now()
		for id, pc := range c.pools {
			if pool != "" && id != pool {
				continue
			}
			st := c.poolNow(pc, now)
			m := SpotMarket{PoolNow: st, Visible: p.Role.IsOperator()}
			if !m.Visible {
				m.PoolNow = PoolNow{Pool: st.Pool, At: st.At, Prices: st.Prices}
			}
			out = append(out, m)
		}
		return nil
	})
	slices.SortFunc(out, func(a, b SpotMarket) int { return cmp.Compare(a.Pool, b.Pool) })
	return out, err
}

// ConfirmSanitized ends node name's wipe now, as an operator or the
// node's agent confirms it: the node is available again. A node not
// sanitizing is ErrState.
func (e *Engine) ConfirmSanitized(ctx context.Context, p tenant.Principal, name string) (fleet.Node, error) {
	if err := e.check(ctx, p, tenant.PermNodesWrite, "node.sanitized", "node/"+name, ""); err != nil {
		return fleet.Node{}, err
	}
	ctx = withPrincipal(ctx, p)
	v, err := e.submit(ctx, func(c *capState, now time.Time, _ *leaseIDs) (*effect, any, error) {
		n, ok := c.byName[name]
		if !ok {
			return nil, nil, fmt.Errorf("node %s: %w", name, ErrNotFound)
		}
		if _, wiping := c.wiping[n.Ordinal]; !wiping {
			return nil, nil, fmt.Errorf("node %s is %s, not sanitizing: %w", name, n.State, ErrState)
		}
		c.sanitized(n.Ordinal, now)
		eff := &effect{audit: &tenant.AuditEntry{Action: "node.sanitized", Object: "node/" + name, Detail: "wipe confirmed"},
			events: []event.Event{sanitizedEvent(now, n.PoolID(), []string{name})}}
		out := c.byName[name]
		if out.State == fleet.Sanitizing {
			out.State = fleet.Available
		}
		return eff, out, nil
	}).Wait()
	if err != nil {
		return fleet.Node{}, err
	}
	return v.(fleet.Node), nil
}

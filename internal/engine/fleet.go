package engine

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/neocloud/neocloud/internal/fleet"
	"github.com/neocloud/neocloud/internal/tenant"
)

// ApplyResult says what a fleet apply changed (or, for a dry run, would
// change).
type ApplyResult struct {
	DryRun       bool
	Revision     int64 // 0 for a dry run
	SHA256       string
	Sites        int
	Nodes        int
	GPUs         int64
	Added        []string
	Updated      []string
	Retired      []string
	RetiredSites []string
	Unchanged    int
}

// NodesInUseError refuses an apply that would retire, or move to another
// pool, nodes that hold or will hold an allocation.
type NodesInUseError struct {
	Nodes []string // sorted
}

func (e *NodesInUseError) Error() string {
	const show = 10
	names := e.Nodes
	more := ""
	if len(names) > show {
		more = fmt.Sprintf(" and %d more", len(names)-show)
		names = names[:show]
	}
	return fmt.Sprintf("%d node(s) hold or will hold an allocation and cannot be retired or change GPU model or count: %s%s",
		len(e.Nodes), strings.Join(names, ", "), more)
}

// ApplyFleet makes the fleet in service equal to spec, in one transaction
// that records a new fleet revision (unless the file is the one in force
// and nothing changes):
// nodes in spec and not in service are added, nodes whose attributes differ
// are updated (their state is kept), and nodes and sites in service but not
// in spec are retired. It returns a *valid.Error when spec is invalid and a
// *NodesInUseError when a node to retire or re-pool holds an allocation
// ending after now; then nothing changes. With dryRun it computes the same
// answer and writes nothing.
func (e *Engine) ApplyFleet(ctx context.Context, p tenant.Principal, spec *fleet.Spec, dryRun bool) (ApplyResult, error) {
	if err := e.check(ctx, p, tenant.PermFleetWrite, "fleet.apply", "fleet", ""); err != nil {
		return ApplyResult{}, err
	}
	want, err := spec.Expand()
	if err != nil {
		return ApplyResult{}, err
	}
	canon, err := spec.CanonicalJSON()
	if err != nil {
		return ApplyResult{}, fmt.Errorf("fleet: encode: %w", err)
	}
	sum := sha256.Sum256(canon)

	// Diff inside the write transaction, under the writer lock, so that no
	// other command changes the fleet or its allocations in between.
	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.clock.Now()
	var res ApplyResult
	err = e.store.Update(ctx, func(tx Tx) error {
		sites, err := tx.Sites(ctx)
		if err != nil {
			return fmt.Errorf("load sites: %w", err)
		}
		have, err := tx.AllNodes(ctx)
		if err != nil {
			return fmt.Errorf("load nodes: %w", err)
		}
		change, repool := diffFleet(sites, have, want)
		change.At = now
		res = ApplyResult{
			DryRun: dryRun, SHA256: hex.EncodeToString(sum[:]), Sites: len(want.Sites), Nodes: len(want.Nodes),
			Added: names(change.Add), Updated: names(change.Update), Retired: change.Retire, RetiredSites: change.RetireSites,
		}
		for _, n := range want.Nodes {
			res.GPUs += int64(n.GPUs)
		}
		res.Unchanged = len(want.Nodes) - len(change.Add) - len(change.Update)
		change.Revision = FleetRevision{At: now, By: p.KeyID, SHA256: res.SHA256, Spec: canon,
			NodeCount: int64(res.Nodes), GPUCount: res.GPUs}

		held, err := tx.HeldNodes(ctx, append(append([]string(nil), change.Retire...), repool...), now)
		if err != nil {
			return fmt.Errorf("held nodes: %w", err)
		}
		if len(held) > 0 {
			return &NodesInUseError{Nodes: held}
		}
		if dryRun {
			return errDryRun
		}
		if len(change.Add)+len(change.Update)+len(change.Retire)+len(change.RetireSites) == 0 {
			// The same file again changes nothing, and records nothing.
			if rev, err := tx.LatestFleetRevision(ctx); err == nil && rev.SHA256 == res.SHA256 {
				res.Revision = rev.Seq
				return nil
			}
		}
		if err := tx.ApplyFleet(ctx, change); err != nil {
			return err
		}
		rev, err := tx.LatestFleetRevision(ctx)
		if err != nil {
			return fmt.Errorf("read revision: %w", err)
		}
		res.Revision = rev.Seq
		entry := tenant.AuditEntry{Action: "fleet.apply", Object: "fleet",
			Detail: fmt.Sprintf("revision=%d sha256=%s nodes=%d gpus=%d added=%d updated=%d retired=%d retired_sites=%d",
				rev.Seq, res.SHA256[:12], res.Nodes, res.GPUs, len(res.Added), len(res.Updated), len(res.Retired), len(res.RetiredSites))}
		e.stamp(ctx, p, &entry)
		_, err = tx.AppendAudit(ctx, entry)
		return err
	})
	if errors.Is(err, errDryRun) {
		return res, nil
	}
	if err != nil {
		return ApplyResult{}, fmt.Errorf("fleet: apply: %w", err)
	}
	if res.Revision != 0 {
		e.invalidateCapacity()
	}
	return res, nil
}

// errDryRun rolls a dry run's transaction back after its checks.
var errDryRun = errors.New("dry run")

// diffFleet compares the nodes in service with the wanted fleet. repool
// lists updated nodes whose pool or GPU count changes: like retired ones,
// they must not hold allocations.
func diffFleet(sites []fleet.Site, have []fleet.Node, want *fleet.Fleet) (FleetChange, []string) {
	c := FleetChange{Sites: want.Sites}
	wantSites := make(map[string]bool, len(want.Sites))
	for _, s := range want.Sites {
		wantSites[s.Name] = true
	}
	for _, s := range sites {
		if !wantSites[s.Name] {
			c.RetireSites = append(c.RetireSites, s.Name)
		}
	}
	current := make(map[string]*fleet.Node, len(have))
	for i := range have {
		current[have[i].Name] = &have[i]
	}
	var repool []string
	for _, n := range want.Nodes {
		old, ok := current[n.Name]
		if !ok {
			c.Add = append(c.Add, n)
			continue
		}
		delete(current, n.Name)
		if sameInventory(*old, n) {
			continue
		}
		n.State = old.State
		c.Update = append(c.Update, n)
		if old.PoolID() != n.PoolID() || old.GPUs != n.GPUs {
			repool = append(repool, n.Name)
		}
	}
	for name := range current {
		c.Retire = append(c.Retire, name)
	}
	sort.Strings(c.Retire)
	sort.Strings(c.RetireSites)
	return c, repool
}

// sameInventory reports whether two records of one node agree on everything
// a fleet file sets.
func sameInventory(a, b fleet.Node) bool {
	return a.Site == b.Site && a.Model == b.Model && a.GPUs == b.GPUs && a.ITPower == b.ITPower &&
		a.PowerDomain == b.PowerDomain && a.Position == b.Position
}

func names(nodes []fleet.Node) []string {
	out := make([]string, len(nodes))
	for i, n := range nodes {
		out[i] = n.Name
	}
	return out
}

// Sites returns the sites in service.
func (e *Engine) Sites(ctx context.Context) ([]fleet.Site, error) { return e.store.Sites(ctx) }

// Pools returns pool summaries, of one site or ("") all.
func (e *Engine) Pools(ctx context.Context, site string) ([]fleet.Pool, error) {
	return e.store.Pools(ctx, site)
}

// Nodes returns one page of nodes.
//
// A node being wiped after a hand-over shows as sanitizing: the engine
// keeps wipes in memory (they follow from the stored allocations).
func (e *Engine) Nodes(ctx context.Context, f NodeFilter) ([]fleet.Node, error) {
	if f.State == fleet.Sanitizing {
		return e.sanitizingNodes(ctx, f)
	}
	ns, err := e.store.Nodes(ctx, f)
	if err != nil || len(ns) == 0 {
		return ns, err
	}
	err = e.readCap(ctx, func(c *capState) error {
		if len(c.wiping) == 0 {
			return nil
		}
		for i := range ns {
			if _, ok := c.wiping[ns[i].Ordinal]; ok && schedulable(ns[i].State) {
				ns[i].State = fleet.Sanitizing
			}
		}
		return nil
	})
	if f.State != "" {
		ns = slices.DeleteFunc(ns, func(n fleet.Node) bool { return n.State != f.State })
	}
	return ns, err
}

// sanitizingNodes returns the nodes being wiped that f selects, by name.
func (e *Engine) sanitizingNodes(ctx context.Context, f NodeFilter) ([]fleet.Node, error) {
	var out []fleet.Node
	err := e.readCap(ctx, func(c *capState) error {
		for o := range c.wiping {
			n := c.byOrd[o]
			n.State = fleet.Sanitizing
			if (f.Site == "" || n.Site == f.Site) && (f.Pool == "" || n.PoolID() == f.Pool) && n.Name > f.After {
				out = append(out, n)
			}
		}
		return nil
	})
	slices.SortFunc(out, func(a, b fleet.Node) int { return strings.Compare(a.Name, b.Name) })
	if f.Limit > 0 && len(out) > f.Limit {
		out = out[:f.Limit]
	}
	return out, err
}

// FleetRevision returns the last applied fleet revision, or ErrNotFound.
func (e *Engine) FleetRevision(ctx context.Context) (FleetRevision, error) {
	return e.store.LatestFleetRevision(ctx)
}

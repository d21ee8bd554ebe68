package engine

import (
	"cmp"
	"context"
	"slices"
	"time"

	"github.com/neocloud/neocloud/internal/fleet"
	"github.com/neocloud/neocloud/internal/lease"
	"github.com/neocloud/neocloud/internal/meter"
	"github.com/neocloud/neocloud/internal/tenant"
	"github.com/neocloud/neocloud/internal/valid"
)

// Reads for the dashboard's lease and tenant pages: a filtered page of
// leases with a health mark per row, a lease's allocations laid out on the
// fabric, and the health findings on a lease's nodes.

// Bounds of a LeaseQuery.
const (
	// MaxLeasePage is the largest page a LeaseQuery returns.
	MaxLeasePage = 500
	// DefaultLeasePage is the page size when LeaseQuery.Limit is 0.
	DefaultLeasePage = 50
	// MaxLeaseScan bounds the leases one LeaseQuery reads from the store
	// to fill a page when kind or state (ended, cancelled) filter them: a
	// page that does not fill within it ends early with a cursor to go on.
	// Active and scheduled leases are all in memory and need no scan.
	MaxLeaseScan = 5_000
	// leaseScanBatch is how many leases one store read returns while
	// scanning.
	leaseScanBatch = 1_000
	// healthWindow is how far back the health mark looks for findings.
	healthWindow = 31 * 24 * time.Hour
	// maxHealthFindings bounds the findings one health mark reads.
	maxHealthFindings = 10_000
)

// LeaseQuery selects a page of leases: TenantID and Pool narrow the store
// read, Kind and State ("" = any; State as of now: scheduled, active,
// ended or cancelled) are matched while paging, After is the cursor (an
// ID: leases after it), Limit the page size (0: DefaultLeasePage).
type LeaseQuery struct {
	TenantID string
	Pool     string
	Kind     lease.Kind
	State    lease.State
	After    string
	Limit    int
}

// Validate checks q's kind, state and limit; the errors name the fields
// kind, state and limit.
func (q LeaseQuery) Validate() error {
	var v valid.Error
	if q.Kind != "" && !slices.Contains(lease.Kinds, q.Kind) {
		v.Add("kind", string(q.Kind), "must be one of %v", lease.Kinds)
	}
	if states := []lease.State{lease.Scheduled, lease.Active, lease.Ended, lease.Cancelled}; q.State != "" && !slices.Contains(states, q.State) {
		v.Add("state", string(q.State), "must be one of %v", states)
	}
	if q.Limit < 0 || q.Limit > MaxLeasePage {
		v.Add("limit", q.Limit, "must be between 1 and %d", MaxLeasePage)
	}
	return v.Err()
}

// LeaseRow is one lease of a LeasePage with its state now and its health
// mark.
type LeaseRow struct {
	Lease lease.Lease
	Now   lease.State
	LeaseHealth
}

// LeaseHealth marks a lease whose delivery is or was short: Shortfalls
// counts its recorded shortfalls (failed nodes without a replacement);
// Findings the health findings (within the last 31 days) on nodes it
// holds now, made since it took each node; Down the nodes it holds now
// that are out of service.
type LeaseHealth struct {
	Shortfalls int
	Findings   int
	Down       int
}

// Bad reports whether the mark shows anything.
func (h LeaseHealth) Bad() bool { return h.Shortfalls > 0 || h.Findings > 0 || h.Down > 0 }

// LeasePage is one page of a LeaseQuery.
type LeasePage struct {
	Rows []LeaseRow
	// Next is the cursor of the next page: "" when no lease after the
	// page remains. A page cut short by MaxLeaseScan has Partial set and
	// fewer rows than asked; Next then goes on from the last lease read.
	Next    string
	Partial bool
	Scanned int // leases read from the store
}

// LeasePage returns a page of the leases q selects, by ID, each with its
// health mark; a tenant sees only its own (asking for another tenant
// answers tenant.ErrNotFound). Bad input is a *valid.Error. The work is
// bounded: active and scheduled leases come from the in-memory capacity,
// others from at most MaxLeaseScan leases read from the store; then one
// read of the shortfalls and one of recent findings, whatever the page
// size.
func (e *Engine) LeasePage(ctx context.Context, p tenant.Principal, q LeaseQuery) (LeasePage, error) {
	if err := q.Validate(); err != nil {
		return LeasePage{}, err
	}
	t, err := e.scope(ctx, p, tenant.PermLeasesRead, "lease.list", q.TenantID)
	if err != nil {
		return LeasePage{}, err
	}
	q.TenantID = t
	now := e.clock.Now()
	var page LeasePage
	if q.State == lease.Active || q.State == lease.Scheduled {
		page, err = e.livePage(ctx, q, now)
	} else {
		page, err = e.storePage(ctx, q, now)
	}
	if err != nil {
		return LeasePage{}, err
	}
	if err := e.markHealth(ctx, now, page.Rows); err != nil {
		return LeasePage{}, err
	}
	return page, nil
}

// livePage answers q (state active or scheduled) from the capacity
// state's live leases: every lease that holds or will hold nodes.
func (e *Engine) livePage(ctx context.Context, q LeaseQuery, now time.Time) (LeasePage, error) {
	limit := cmp.Or(q.Limit, DefaultLeasePage)
	var page LeasePage
	err := e.readCap(ctx, func(c *capState) error {
		var match []*lease.Lease
		for _, l := range c.leases {
			page.Scanned++
			if (q.TenantID != "" && l.TenantID != q.TenantID) || (q.Pool != "" && l.Pool != q.Pool) || (q.Kind != "" && l.Kind != q.Kind) ||
				l.ID <= q.After || l.StateAt(now) != q.State {
				continue
			}
			match = append(match, l)
		}
		slices.SortFunc(match, func(a, b *lease.Lease) int { return cmp.Compare(a.ID, b.ID) })
		if len(match) > limit {
			match = match[:limit]
			page.Next = match[limit-1].ID
		}
		for _, l := range match {
			x := *l // the writer changes the state's leases: copy
			x.Schedule = slices.Clone(l.Schedule)
			page.Rows = append(page.Rows, LeaseRow{Lease: x, Now: q.State})
		}
		return nil
	})
	return page, err
}

// storePage answers q from the store, reading leases by ID after the
// cursor, at most MaxLeaseScan when kind or state filter them.
func (e *Engine) storePage(ctx context.Context, q LeaseQuery, now time.Time) (LeasePage, error) {
	limit := cmp.Or(q.Limit, DefaultLeasePage)
	var page LeasePage
	after := q.After
	filtered := q.Kind != "" || q.State != ""
	// Unfiltered, a page is one read of limit+1; filtered, reads start at
	// a few pages' worth and grow to leaseScanBatch.
	batch := limit + 1
	if filtered {
		batch = min(4*(limit+1), leaseScanBatch)
	}
scan:
	for {
		ls, err := e.store.Leases(ctx, LeaseFilter{TenantID: q.TenantID, Pool: q.Pool, After: after, Limit: batch})
		if err != nil {
			return LeasePage{}, err
		}
		for _, l := range ls {
			page.Scanned++
			after = l.ID
			st := l.StateAt(now)
			if (q.Kind != "" && l.Kind != q.Kind) || (q.State != "" && st != q.State) {
				if page.Scanned >= MaxLeaseScan {
					page.Next, page.Partial = l.ID, true
					break scan
				}
				continue
			}
			if len(page.Rows) == limit {
				page.Next = page.Rows[limit-1].Lease.ID
				break scan
			}
			page.Rows = append(page.Rows, LeaseRow{Lease: l, Now: st})
			if page.Scanned >= MaxLeaseScan {
				page.Next, page.Partial = l.ID, true
				break scan
			}
		}
		if len(ls) < batch {
			break
		}
		if filtered {
			batch = min(2*batch, leaseScanBatch)
		}
	}
	return page, nil
}

// markHealth fills the health marks of rows: one read of the shortfalls,
// one of the findings of the last healthWindow, and the nodes each live
// lease holds now from the in-memory capacity.
func (e *Engine) markHealth(ctx context.Context, now time.Time, rows []LeaseRow) error {
	if len(rows) == 0 {
		return nil
	}
	index := make(map[string]int, len(rows))
	var guaranteed []string
	for i, r := range rows {
		index[r.Lease.ID] = i
		if r.Lease.Kind.Guaranteed() {
			guaranteed = append(guaranteed, r.Lease.ID)
		}
	}
	// The page's guaranteed leases' shortfalls only, counted in SQL.
	for ids := range slices.Chunk(guaranteed, MaxLeasePage) {
		counts, err := e.store.ShortfallCounts(ctx, ids)
		if err != nil {
			return err
		}
		for id, n := range counts {
			if i, ok := index[id]; ok {
				rows[i].Shortfalls += n
			}
		}
	}
	// The nodes the page's leases hold now: ordinal → row and since when.
	type held struct {
		row   int
		since time.Time
	}
	holds := map[int64]held{}
	var names []string
	err := e.readCap(ctx, func(c *capState) error {
		for i, r := range rows {
			if r.Now != lease.Active {
				continue
			}
			for _, aid := range c.byLease[r.Lease.ID] {
				a, ok := c.allocs[aid]
				if !ok || now.Before(a.Start) || !now.Before(a.End) {
					continue
				}
				for o := a.NodeFrom; o < a.NodeTo; o++ {
					n, ok := c.byOrd[o]
					if !ok {
						continue
					}
					if !inService(n.State) {
						rows[i].Down++
					}
					if _, ok := holds[o]; !ok {
						names = append(names, n.Name)
					}
					holds[o] = held{i, a.Start}
				}
			}
		}
		return nil
	})
	if err != nil || len(holds) == 0 {
		return err
	}
	// The findings of the last healthWindow on the held nodes only, so
	// that a busy fleet's findings elsewhere neither cost the read nor
	// fill its limit.
	fs, err := e.nodeFindings(ctx, names, now.Add(-healthWindow), time.Time{}, maxHealthFindings)
	if err != nil {
		return err
	}
	return e.readCap(ctx, func(c *capState) error {
		for _, f := range fs {
			n, ok := c.byName[f.Node]
			if !ok {
				continue
			}
			if h, ok := holds[n.Ordinal]; ok && !f.At.Before(h.since) {
				rows[h.row].Findings++
			}
		}
		return nil
	})
}

// nodeFindings returns the findings on nodes in [from, to) (a zero to: no
// end), newest first, at most limit: one store read per MaxFindingNodes
// names.
func (e *Engine) nodeFindings(ctx context.Context, nodes []string, from, to time.Time, limit int) ([]meter.Finding, error) {
	var out []meter.Finding
	chunks := 0
	for names := range slices.Chunk(nodes, MaxFindingNodes) {
		fs, err := e.store.Findings(ctx, FindingFilter{Nodes: names, Since: from, Until: to, Limit: limit})
		if err != nil {
			return nil, err
		}
		out = append(out, fs...)
		chunks++
	}
	if chunks > 1 {
		slices.SortStableFunc(out, func(a, b meter.Finding) int { return b.At.Compare(a.At) })
		out = out[:min(len(out), limit)]
	}
	return out, nil
}

// LeaseFinding is a health finding on a node a lease held when it was
// made; Open when the lease still holds the node now.
type LeaseFinding struct {
	meter.Finding
	Open bool
}

// LeaseFindings returns the health findings made in [from, to) on nodes
// lease id held at the time, newest first (at most 10,000 findings of the
// whole fleet are looked at). A tenant may read its own leases' findings:
// the nodes are its own. ErrNotFound for a missing or foreign lease.
func (e *Engine) LeaseFindings(ctx context.Context, p tenant.Principal, id string, from, to time.Time) ([]LeaseFinding, error) {
	if _, err := e.leaseFor(ctx, p, tenant.PermLeasesRead, "health.lease", id); err != nil {
		return nil, err
	}
	fs, err := e.leaseFindings(ctx, id, from, to)
	if err != nil {
		return nil, err
	}
	now := e.clock.Now()
	out := make([]LeaseFinding, len(fs))
	err = e.readCap(ctx, func(c *capState) error {
		holds := map[int64]bool{}
		for _, aid := range c.byLease[id] {
			if a, ok := c.allocs[aid]; ok && !now.Before(a.Start) && now.Before(a.End) {
				for o := a.NodeFrom; o < a.NodeTo; o++ {
					holds[o] = true
				}
			}
		}
		for i, f := range fs {
			out[i] = LeaseFinding{Finding: f, Open: holds[c.byName[f.Node].Ordinal]}
		}
		return nil
	})
	return out, err
}

// Bounds of a LeaseFabric drawing.
const (
	// MaxFabricLeafs is how many leaf groups a LeaseFabric lays out node
	// by node; the rest are counted per pod (FabricPod.MoreLeafs).
	MaxFabricLeafs = 48
)

// LeaseFabric is where a lease's nodes sit in its pool's fabric at one
// instant: the pods and leaf groups it touches, each leaf group with all
// its nodes grouped by NVLink domain. For a tenant, nodes not of the lease
// carry no name, no state and no holder (nor do their NVLink domains a
// name): the tenant sees where its own nodes are, not who or what is
// beside them.
type LeaseFabric struct {
	LeaseID string
	Pool    string
	// At is the instant drawn: now when the lease holds nodes now, else
	// the start of its next allocation, else the last instant it held
	// nodes. Zero when it never held any.
	At    time.Time
	Nodes int // the lease's nodes at At
	Pods  []FabricPod
}

// FabricPod is one pod (spine group) a lease touches.
type FabricPod struct {
	Name  string
	Leafs []FabricLeaf
	// MoreLeafs counts the leaf groups beyond MaxFabricLeafs that hold
	// MoreNodes of the lease's nodes, not laid out.
	MoreLeafs, MoreNodes int
}

// FabricLeaf is one leaf group a lease touches, with every node of its
// pool under it.
type FabricLeaf struct {
	Name    string
	Mine    int // the lease's nodes in it
	Domains []FabricDomain
}

// FabricDomain is one NVLink domain (an HGX node, or a GB200 NVL72 rack).
type FabricDomain struct {
	Name  string // "" for a tenant when none of its nodes is the lease's
	Nodes []FabricNode
}

// FabricNode is one node of a leaf group. For a tenant only Mine (and, for
// its own nodes, Name and State) is set.
type FabricNode struct {
	Name  string
	Mine  bool
	State fleet.State
	// Lease and Tenant hold the node at At when another lease does
	// (operators only).
	Lease, Tenant string
}

// LeaseFabric returns lease id's nodes laid out on its pool's fabric (see
// LeaseFabric the type): ErrNotFound for a missing or foreign lease.
func (e *Engine) LeaseFabric(ctx context.Context, p tenant.Principal, id string) (LeaseFabric, error) {
	l, err := e.Lease(ctx, p, id)
	if err != nil {
		return LeaseFabric{}, err
	}
	as, err := e.store.Allocations(ctx, AllocationFilter{LeaseID: id})
	if err != nil {
		return LeaseFabric{}, err
	}
	out := LeaseFabric{LeaseID: id, Pool: l.Pool}
	if len(as) == 0 {
		return out, nil
	}
	out.At = fabricInstant(as, e.clock.Now())
	mine := map[int64]bool{}
	for _, a := range as {
		if !out.At.Before(a.Start) && out.At.Before(a.End) {
			for o := a.NodeFrom; o < a.NodeTo; o++ {
				mine[o] = true
			}
		}
	}
	operator := p.Role.IsOperator()
	type leafKey struct{ pod, leaf string }
	var (
		leafNodes = map[leafKey][]fleet.Node{}
		lo, hi    = map[leafKey]int64{}, map[leafKey]int64{}
	)
	err = e.readCap(ctx, func(c *capState) error {
		touched := map[leafKey]bool{}
		for o := range mine {
			if n, ok := c.byOrd[o]; ok {
				touched[leafKey{n.Position.Pod, n.Position.LeafGroup}] = true
			}
		}
		for _, n := range c.byOrd {
			k := leafKey{n.Position.Pod, n.Position.LeafGroup}
			if !touched[k] || n.PoolID() != l.Pool || !n.Retired.IsZero() {
				continue
			}
			leafNodes[k] = append(leafNodes[k], n)
			if v, ok := lo[k]; !ok || n.Ordinal < v {
				lo[k] = n.Ordinal
			}
			hi[k] = max(hi[k], n.Ordinal+1)
		}
		return nil
	})
	if err != nil {
		return LeaseFabric{}, err
	}
	keys := make([]leafKey, 0, len(leafNodes))
	for k := range leafNodes {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b leafKey) int { return cmp.Or(cmp.Compare(a.pod, b.pod), cmp.Compare(a.leaf, b.leaf)) })
	pods := map[string]*FabricPod{}
	var order []string
	laidOut := 0
	for _, k := range keys {
		nodes := leafNodes[k]
		slices.SortFunc(nodes, func(a, b fleet.Node) int { return cmp.Compare(a.Ordinal, b.Ordinal) })
		pod := pods[k.pod]
		if pod == nil {
			pod = &FabricPod{Name: k.pod}
			pods[k.pod] = pod
			order = append(order, k.pod)
		}
		n := 0
		for _, x := range nodes {
			if mine[x.Ordinal] {
				n++
			}
		}
		out.Nodes += n
		if laidOut == MaxFabricLeafs {
			pod.MoreLeafs++
			pod.MoreNodes += n
			continue
		}
		laidOut++
		var others map[int64]lease.Allocation
		if operator {
			// Who else holds the leaf group's nodes at At (operators only).
			oas, err := e.store.Allocations(ctx, AllocationFilter{EndAfter: out.At, NodeFrom: lo[k], NodeTo: hi[k]})
			if err != nil {
				return LeaseFabric{}, err
			}
			others = map[int64]lease.Allocation{}
			for _, a := range oas {
				if a.LeaseID == id || out.At.Before(a.Start) {
					continue
				}
				for o := max(a.NodeFrom, lo[k]); o < min(a.NodeTo, hi[k]); o++ {
					others[o] = a
				}
			}
		}
		leaf := fabricLeaf{Name: k.leaf, Mine: n}
		for _, x := range nodes {
			fn := FabricNode{Mine: mine[x.Ordinal]}
			if fn.Mine || operator {
				fn.Name, fn.State = x.Name, x.State
			}
			if a, ok := others[x.Ordinal]; ok {
				fn.Lease, fn.Tenant = a.LeaseID, a.TenantID
			}
			dom := x.Position.NVLinkDomain
			if d := len(leaf.Domains) - 1; d >= 0 && leaf.Domains[d].key == dom {
				leaf.Domains[d].Nodes = append(leaf.Domains[d].Nodes, fn)
			} else {
				leaf.Domains = append(leaf.Domains, fabricDomain{key: dom, FabricDomain: FabricDomain{Nodes: []FabricNode{fn}}})
			}
		}
		for i := range leaf.Domains {
			d := &leaf.Domains[i]
			if operator || slices.ContainsFunc(d.Nodes, func(n FabricNode) bool { return n.Mine }) {
				d.Name = d.key
			}
		}
		pod.Leafs = append(pod.Leafs, leaf.export())
	}
	for _, name := range order {
		out.Pods = append(out.Pods, *pods[name])
	}
	return out, nil
}

// fabricDomain is a FabricDomain being built, with its name kept apart
// from the name shown.
type fabricDomain struct {
	key string
	FabricDomain
}

// fabricLeaf builds a FabricLeaf.
type fabricLeaf struct {
	Name    string
	Mine    int
	Domains []fabricDomain
}

func (l fabricLeaf) export() FabricLeaf {
	out := FabricLeaf{Name: l.Name, Mine: l.Mine, Domains: make([]FabricDomain, len(l.Domains))}
	for i, d := range l.Domains {
		out.Domains[i] = d.FabricDomain
	}
	return out
}

// fabricInstant picks the instant a fabric drawing shows: now when an
// allocation holds then, else the next start, else just before the last
// end.
func fabricInstant(as []lease.Allocation, now time.Time) time.Time {
	var next, last time.Time
	for _, a := range as {
		if !now.Before(a.Start) && now.Before(a.End) {
			return now
		}
		if a.Start.After(now) && (next.IsZero() || a.Start.Before(next)) {
			next = a.Start
		}
		if a.End.After(last) {
			last = a.End
		}
	}
	if !next.IsZero() {
		return next
	}
	return last.Add(-time.Millisecond)
}

// LeasePools returns the IDs of the pools with nodes, sorted: what a
// lease may be asked in (the catalog tenants see), from the in-memory
// capacity rather than by counting nodes (Pools).
func (e *Engine) LeasePools(ctx context.Context, p tenant.Principal) ([]string, error) {
	if err := e.check(ctx, p, tenant.PermFleetRead, "pools.list", "pools", p.TenantID); err != nil {
		return nil, err
	}
	var out []string
	err := e.readCap(ctx, func(c *capState) error {
		for id, pc := range c.pools {
			if pc.nodes > 0 {
				out = append(out, id)
			}
		}
		return nil
	})
	slices.Sort(out)
	return out, err
}

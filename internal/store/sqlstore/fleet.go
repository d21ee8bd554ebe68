package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/neocloud/neocloud/internal/engine"
	"github.com/neocloud/neocloud/internal/fleet"
	"github.com/neocloud/neocloud/internal/tenant"
	"github.com/neocloud/neocloud/internal/unit"
)

// Sites returns the sites in service with their power domains in service,
// both by name.
func (r reader) Sites(ctx context.Context) ([]fleet.Site, error) {
	rows, err := r.c.query(ctx, `SELECT name, facility_w, pue_milli, tariff_micros_per_mwh, timezone
		FROM sites WHERE retired_us IS NULL ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("store: sites: %w", err)
	}
	sites := []fleet.Site{}
	index := map[string]int{}
	for rows.Next() {
		var s fleet.Site
		if err := rows.Scan(&s.Name, &s.FacilityPower, &s.PUEMilli, &s.TariffMicrosPerMWh, &s.Timezone); err != nil {
			rows.Close()
			return nil, fmt.Errorf("store: sites: %w", err)
		}
		index[s.Name] = len(sites)
		sites = append(sites, s)
	}
	if err := closeRows(rows); err != nil {
		return nil, fmt.Errorf("store: sites: %w", err)
	}

	rows, err = r.c.query(ctx, `SELECT site, name, budget_w FROM power_domains
		WHERE retired_us IS NULL ORDER BY site, name`)
	if err != nil {
		return nil, fmt.Errorf("store: sites: power domains: %w", err)
	}
	for rows.Next() {
		var site string
		var d fleet.PowerDomain
		if err := rows.Scan(&site, &d.Name, &d.Budget); err != nil {
			rows.Close()
			return nil, fmt.Errorf("store: sites: power domains: %w", err)
		}
		if i, ok := index[site]; ok {
			sites[i].PowerDomains = append(sites[i].PowerDomains, d)
		}
	}
	if err := closeRows(rows); err != nil {
		return nil, fmt.Errorf("store: sites: power domains: %w", err)
	}
	return sites, nil
}

// Pools returns per-pool counts of the nodes in service, by pool ID; site ""
// means every site. ByState holds the states that have nodes.
func (r reader) Pools(ctx context.Context, site string) ([]fleet.Pool, error) {
	q := `SELECT n.site, n.model, n.state, COUNT(*), CAST(SUM(n.gpus) AS BIGINT), CAST(SUM(n.it_w) AS BIGINT), s.pue_milli
		FROM nodes n JOIN sites s ON s.name = n.site
		WHERE n.retired_us IS NULL`
	var args []any
	if site != "" {
		q += ` AND n.site = ?`
		args = append(args, site)
	}
	q += ` GROUP BY n.site, n.model, n.state, s.pue_milli`
	rows, err := r.c.query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("store: pools: %w", err)
	}
	byID := map[string]*fleet.Pool{}
	pue := map[string]int64{}
	for rows.Next() {
		var (
			site, model string
			state       fleet.State
			nodes       int64
			gpus        unit.GPUs
			itPower     unit.Power
			pueMilli    int64
		)
		if err := rows.Scan(&site, &model, &state, &nodes, &gpus, &itPower, &pueMilli); err != nil {
			rows.Close()
			return nil, fmt.Errorf("store: pools: %w", err)
		}
		id := fleet.PoolID(site, model)
		p := byID[id]
		if p == nil {
			p = &fleet.Pool{ID: id, Site: site, Model: model, ByState: map[fleet.State]int64{}}
			byID[id] = p
			pue[id] = pueMilli
		}
		p.Nodes += nodes
		p.GPUs += gpus
		p.ITPower += itPower
		p.ByState[state] += nodes
	}
	if err := closeRows(rows); err != nil {
		return nil, fmt.Errorf("store: pools: %w", err)
	}
	pools := make([]fleet.Pool, 0, len(byID))
	for id, p := range byID {
		p.FacilityPower = p.ITPower.Scale(pue[id], 1000)
		pools = append(pools, *p)
	}
	sort.Slice(pools, func(i, j int) bool { return pools[i].ID < pools[j].ID })
	return pools, nil
}

const nodeColumns = `name, site, model, gpus, it_w, power_domain, pod, leaf_group, nvlink_domain, state, retired_us, ord`

// Nodes returns one page of nodes in service, ordered by name. A Pool
// without "/" matches nothing.
func (r reader) Nodes(ctx context.Context, f engine.NodeFilter) ([]fleet.Node, error) {
	q := `SELECT ` + nodeColumns + ` FROM nodes WHERE retired_us IS NULL`
	var args []any
	if f.Site != "" {
		q += ` AND site = ?`
		args = append(args, f.Site)
	}
	if f.Pool != "" {
		site, model, ok := strings.Cut(f.Pool, "/")
		if !ok {
			return []fleet.Node{}, nil
		}
		q += ` AND site = ? AND model = ?`
		args = append(args, site, model)
	}
	if f.State != "" {
		q += ` AND state = ?`
		args = append(args, string(f.State))
	}
	if f.After != "" {
		q += ` AND name > ?`
		args = append(args, f.After)
	}
	q += ` ORDER BY name`
	if f.Limit > 0 {
		q += ` LIMIT ?`
		args = append(args, f.Limit)
	}
	nodes, err := r.scanNodes(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("store: nodes: %w", err)
	}
	return nodes, nil
}

// AllNodes returns every node in service, ordered by name.
func (r reader) AllNodes(ctx context.Context) ([]fleet.Node, error) {
	nodes, err := r.scanNodes(ctx, `SELECT `+nodeColumns+` FROM nodes WHERE retired_us IS NULL ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("store: all nodes: %w", err)
	}
	return nodes, nil
}

func (r reader) scanNodes(ctx context.Context, q string, args ...any) ([]fleet.Node, error) {
	rows, err := r.c.query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	nodes := []fleet.Node{}
	for rows.Next() {
		var n fleet.Node
		var retired sql.NullInt64
		if err := rows.Scan(&n.Name, &n.Site, &n.Model, &n.GPUs, &n.ITPower, &n.PowerDomain,
			&n.Position.Pod, &n.Position.LeafGroup, &n.Position.NVLinkDomain, &n.State, &retired, &n.Ordinal); err != nil {
			rows.Close()
			return nil, err
		}
		n.Retired = fromNullMicros(retired)
		nodes = append(nodes, n)
	}
	if err := closeRows(rows); err != nil {
		return nil, err
	}
	return nodes, nil
}

// LatestFleetRevision returns the last applied fleet revision, or an error
// wrapping engine.ErrNotFound when none was applied.
func (r reader) LatestFleetRevision(ctx context.Context) (engine.FleetRevision, error) {
	var rev engine.FleetRevision
	var at int64
	err := r.c.queryRow(ctx, `SELECT seq, at_us, by_key, sha256, spec, node_count, gpu_count
		FROM fleet_revisions ORDER BY seq DESC LIMIT 1`).
		Scan(&rev.Seq, &at, &rev.By, &rev.SHA256, &rev.Spec, &rev.NodeCount, &rev.GPUCount)
	if errors.Is(err, sql.ErrNoRows) {
		return engine.FleetRevision{}, fmt.Errorf("store: latest fleet revision: %w", engine.ErrNotFound)
	}
	if err != nil {
		return engine.FleetRevision{}, fmt.Errorf("store: latest fleet revision: %w", err)
	}
	rev.At = fromMicros(at)
	return rev, nil
}

// ApplyFleet writes a fleet change in this order, so that every foreign key
// holds after each statement: upsert the sites of c.Sites (bringing retired
// ones back) and their power domains; insert c.Add; update c.Update; retire
// c.Retire; retire c.RetireSites with their nodes and domains; retire the
// power domains a listed site no longer has, deleting those no node refers
// to any more (a domain a retired node still names is kept, retired, for the
// foreign key); record c.Revision, whose Seq the database assigns.
//
// A node of c.Add that exists and is in service is an error wrapping
// tenant.ErrExists; a node of c.Update that is not in service is an error
// wrapping engine.ErrNotFound. A new node takes its State, "available" when
// empty, and the next ordinal (one more than the largest ever given, in
// c.Add order; Ordinal of c.Add is ignored); a retired node that comes back
// keeps its ordinal and the state it left in.
func (t *tx) ApplyFleet(ctx context.Context, c engine.FleetChange) error {
	t.runs = nil // ordinals are added, nodes retired
	steps := []struct {
		name string
		run  func(context.Context, engine.FleetChange) error
	}{
		{"upsert sites", t.upsertSites},
		{"add nodes", t.addNodes},
		{"update nodes", t.updateNodes},
		{"retire nodes", t.retireNodes},
		{"retire sites", t.retireSites},
		{"drop power domains", t.dropPowerDomains},
		{"record revision", t.recordRevision},
	}
	for _, s := range steps {
		if err := s.run(ctx, c); err != nil {
			return fmt.Errorf("store: apply fleet: %s: %w", s.name, err)
		}
	}
	return nil
}

func (t *tx) upsertSites(ctx context.Context, c engine.FleetChange) error {
	const siteCols = 5
	for batch := range slices.Chunk(c.Sites, t.c.d.batchRows(siteCols)) {
		args := make([]any, 0, len(batch)*siteCols)
		for _, s := range batch {
			args = append(args, s.Name, int64(s.FacilityPower), s.PUEMilli, s.TariffMicrosPerMWh, s.Timezone)
		}
		q := `INSERT INTO sites (name, facility_w, pue_milli, tariff_micros_per_mwh, timezone) VALUES ` +
			values(len(batch), siteCols) + `
			ON CONFLICT (name) DO UPDATE SET facility_w = excluded.facility_w, pue_milli = excluded.pue_milli,
				tariff_micros_per_mwh = excluded.tariff_micros_per_mwh, timezone = excluded.timezone, retired_us = NULL`
		if _, err := t.c.exec(ctx, q, args...); err != nil {
			return err
		}
	}
	type domain struct {
		site string
		fleet.PowerDomain
	}
	var domains []domain
	for _, s := range c.Sites {
		for _, d := range s.PowerDomains {
			domains = append(domains, domain{s.Name, d})
		}
	}
	const domainCols = 3
	for batch := range slices.Chunk(domains, t.c.d.batchRows(domainCols)) {
		args := make([]any, 0, len(batch)*domainCols)
		for _, d := range batch {
			args = append(args, d.site, d.Name, int64(d.Budget))
		}
		q := `INSERT INTO power_domains (site, name, budget_w) VALUES ` + values(len(batch), domainCols) + `
			ON CONFLICT (site, name) DO UPDATE SET budget_w = excluded.budget_w, retired_us = NULL`
		if _, err := t.c.exec(ctx, q, args...); err != nil {
			return err
		}
	}
	return nil
}

// addNodes inserts the nodes of c.Add that were never stored, giving them
// the next ordinals in c.Add order, and brings back those that were
// retired, with their ordinals and states.
func (t *tx) addNodes(ctx context.Context, c engine.FleetChange) error {
	if len(c.Add) == 0 {
		return nil
	}
	retired := map[string]bool{} // of the names of c.Add that are stored
	for batch := range slices.Chunk(c.Add, t.c.d.batchRows(1)) {
		args := make([]any, len(batch))
		for i, n := range batch {
			args[i] = n.Name
		}
		rows, err := t.c.query(ctx, `SELECT name, retired_us FROM nodes WHERE name IN (`+list(len(batch))+`)`, args...)
		if err != nil {
			return err
		}
		for rows.Next() {
			var name string
			var at sql.NullInt64
			if err := rows.Scan(&name, &at); err != nil {
				rows.Close()
				return err
			}
			retired[name] = at.Valid
		}
		if err := closeRows(rows); err != nil {
			return err
		}
	}
	var fresh, back []fleet.Node
	inService := 0
	for _, n := range c.Add {
		r, stored := retired[n.Name]
		switch {
		case !stored:
			fresh = append(fresh, n)
		case r:
			back = append(back, n)
		default:
			inService++
		}
	}
	if inService > 0 {
		return fmt.Errorf("%d of %d nodes already in service: %w", inService, len(c.Add), tenant.ErrExists)
	}
	if len(fresh) > 0 {
		var last int64
		if err := t.c.queryRow(ctx, `SELECT COALESCE(MAX(ord), 0) FROM nodes`).Scan(&last); err != nil {
			return fmt.Errorf("last ordinal: %w", err)
		}
		const cols = 11
		for batch := range slices.Chunk(fresh, t.c.d.batchRows(cols)) {
			args := make([]any, 0, len(batch)*cols)
			for _, n := range batch {
				state := n.State
				if state == "" {
					state = fleet.Available
				}
				last++
				args = append(args, n.Name, last, n.Site, n.Model, int64(n.GPUs), int64(n.ITPower), n.PowerDomain,
					n.Position.Pod, n.Position.LeafGroup, n.Position.NVLinkDomain, string(state))
			}
			q := `INSERT INTO nodes (name, ord, site, model, gpus, it_w, power_domain, pod, leaf_group, nvlink_domain, state) VALUES ` +
				values(len(batch), cols)
			if _, err := t.c.exec(ctx, q, args...); err != nil {
				return err
			}
		}
	}
	n, err := t.writeNodes(ctx, back, true)
	if err != nil {
		return err
	}
	if n != int64(len(back)) {
		return fmt.Errorf("%d of %d retired nodes not brought back: %w", int64(len(back))-n, len(back), tenant.ErrExists)
	}
	return nil
}

func (t *tx) updateNodes(ctx context.Context, c engine.FleetChange) error {
	updated, err := t.writeNodes(ctx, c.Update, false)
	if err != nil {
		return err
	}
	if updated != int64(len(c.Update)) {
		return fmt.Errorf("%d of %d nodes not in service: %w", int64(len(c.Update))-updated, len(c.Update), engine.ErrNotFound)
	}
	return nil
}

// writeNodes writes every field of nodes but the name, ordinal and state
// over the stored nodes of the same names: those in service, or, with
// bringBack, those retired, which come back in service. It returns how
// many it wrote.
func (t *tx) writeNodes(ctx context.Context, nodes []fleet.Node, bringBack bool) (int64, error) {
	const cols = 9
	set, where := ``, `nodes.retired_us IS NULL`
	if bringBack {
		set, where = `, retired_us = NULL`, `nodes.retired_us IS NOT NULL`
	}
	var written int64
	for batch := range slices.Chunk(nodes, t.c.d.batchRows(cols)) {
		// The casts give PostgreSQL the types of the VALUES columns; SQLite
		// reads them as the column affinities they name.
		const row = `(CAST(? AS TEXT), CAST(? AS TEXT), CAST(? AS TEXT), CAST(? AS BIGINT), CAST(? AS BIGINT),
			CAST(? AS TEXT), CAST(? AS TEXT), CAST(? AS TEXT), CAST(? AS TEXT))`
		args := make([]any, 0, len(batch)*cols)
		for _, n := range batch {
			args = append(args, n.Name, n.Site, n.Model, int64(n.GPUs), int64(n.ITPower), n.PowerDomain,
				n.Position.Pod, n.Position.LeafGroup, n.Position.NVLinkDomain)
		}
		q := `WITH v (name, site, model, gpus, it_w, power_domain, pod, leaf_group, nvlink_domain) AS (VALUES ` +
			strings.TrimSuffix(strings.Repeat(row+",", len(batch)), ",") + `)
			UPDATE nodes SET site = v.site, model = v.model, gpus = v.gpus, it_w = v.it_w,
				power_domain = v.power_domain, pod = v.pod, leaf_group = v.leaf_group, nvlink_domain = v.nvlink_domain` + set + `
			FROM v WHERE nodes.name = v.name AND ` + where
		n, err := t.c.execCount(ctx, q, args...)
		if err != nil {
			return written, err
		}
		written += n
	}
	return written, nil
}

func (t *tx) retireNodes(ctx context.Context, c engine.FleetChange) error {
	for batch := range slices.Chunk(c.Retire, t.c.d.batchRows(1)) {
		args := make([]any, 0, len(batch)+1)
		args = append(args, micros(c.At))
		for _, name := range batch {
			args = append(args, name)
		}
		q := `UPDATE nodes SET retired_us = ? WHERE retired_us IS NULL AND name IN (` + list(len(batch)) + `)`
		if _, err := t.c.exec(ctx, q, args...); err != nil {
			return err
		}
	}
	return nil
}

func (t *tx) retireSites(ctx context.Context, c engine.FleetChange) error {
	for batch := range slices.Chunk(c.RetireSites, t.c.d.batchRows(1)) {
		args := make([]any, 0, len(batch)+1)
		args = append(args, micros(c.At))
		for _, name := range batch {
			args = append(args, name)
		}
		in := list(len(batch))
		for _, q := range []string{
			`UPDATE nodes SET retired_us = ? WHERE retired_us IS NULL AND site IN (` + in + `)`,
			`UPDATE power_domains SET retired_us = ? WHERE retired_us IS NULL AND site IN (` + in + `)`,
			`UPDATE sites SET retired_us = ? WHERE retired_us IS NULL AND name IN (` + in + `)`,
		} {
			if _, err := t.c.exec(ctx, q, args...); err != nil {
				return err
			}
		}
	}
	return nil
}

func (t *tx) dropPowerDomains(ctx context.Context, c engine.FleetChange) error {
	for _, s := range c.Sites {
		q := `UPDATE power_domains SET retired_us = ? WHERE site = ? AND retired_us IS NULL`
		args := []any{micros(c.At), s.Name}
		if len(s.PowerDomains) > 0 {
			q += ` AND name NOT IN (` + list(len(s.PowerDomains)) + `)`
			for _, d := range s.PowerDomains {
				args = append(args, d.Name)
			}
		}
		if _, err := t.c.exec(ctx, q, args...); err != nil {
			return err
		}
	}
	_, err := t.c.exec(ctx, `DELETE FROM power_domains WHERE retired_us IS NOT NULL AND NOT EXISTS
		(SELECT 1 FROM nodes n WHERE n.site = power_domains.site AND n.power_domain = power_domains.name)`)
	return err
}

func (t *tx) recordRevision(ctx context.Context, c engine.FleetChange) error {
	r := c.Revision
	at := r.At
	if at.IsZero() {
		at = c.At
	}
	spec := r.Spec
	if spec == nil {
		spec = []byte{}
	}
	_, err := t.c.exec(ctx, `INSERT INTO fleet_revisions (at_us, by_key, sha256, spec, node_count, gpu_count)
		VALUES (?, ?, ?, ?, ?, ?)`, micros(at), r.By, r.SHA256, spec, r.NodeCount, r.GPUCount)
	return err
}

// closeRows closes rows and returns the first error of the iteration or
// the close.
func closeRows(rows *sql.Rows) error {
	return errors.Join(rows.Err(), rows.Close())
}

// setNodeStateQuery is SetNodeState's statement, prepared: failures and
// repairs come by the thousand in a simulated year.
const setNodeStateQuery = `UPDATE nodes SET state = ? WHERE name = ? AND retired_us IS NULL`

// SetNodeState sets the state of the named node in service; it returns an
// error wrapping engine.ErrNotFound when there is none.
func (t *tx) SetNodeState(ctx context.Context, name string, st fleet.State) error {
	if _, err := fleet.ParseState(string(st)); err != nil {
		return fmt.Errorf("store: set node %s state: %w", name, err)
	}
	res, err := t.c.execPrepared(ctx, setNodeStateQuery, string(st), name)
	if err != nil {
		return fmt.Errorf("store: set node %s state: %w", name, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("store: set node %s state: %w", name, err)
	} else if n == 0 {
		return fmt.Errorf("store: set node %s state: %w", name, engine.ErrNotFound)
	}
	return nil
}

package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/neocloud/neocloud/internal/engine"
	"github.com/neocloud/neocloud/internal/meter"
)

// The telemetry tables (migration 00007_meter). Samples and rollup rows
// are written with prepared multi-row statements: an ingestion
// transaction writes thousands of each.
var (
	samplesInsert = bulkInsert{table: "meter_samples",
		columns: `node, gpu, t_ms, util_pct, energy_mj, xid, power_violation_us, thermal_violation_us, remap_failure`, cols: 9}
	usageUpsert = bulkInsert{table: "usage_hours",
		columns: `hour_ms, pool, use, lease_id, tenant_id, gpu_ms, used_ms, healthy_ms, energy_mj, readings`, cols: 10}
	monthUpsert = bulkInsert{table: "usage_months",
		columns: `month_ms, pool, use, lease_id, tenant_id, gpu_ms, used_ms, healthy_ms, energy_mj, readings`, cols: 10}
	findingsInsert = bulkInsert{table: "health_findings", columns: `node, gpu, at_us, severity, rule, detail`, cols: 6}
)

// usageUpsertSuffix and monthUpsertSuffix add a row's amounts to the
// stored row of its key.
const (
	usageUpsertSuffix = ` ON CONFLICT (hour_ms, pool, use, lease_id) DO UPDATE SET
	gpu_ms = usage_hours.gpu_ms + excluded.gpu_ms, used_ms = usage_hours.used_ms + excluded.used_ms,
	healthy_ms = usage_hours.healthy_ms + excluded.healthy_ms, energy_mj = usage_hours.energy_mj + excluded.energy_mj,
	readings = usage_hours.readings + excluded.readings`
	monthUpsertSuffix = ` ON CONFLICT (month_ms, pool, use, lease_id) DO UPDATE SET
	gpu_ms = usage_months.gpu_ms + excluded.gpu_ms, used_ms = usage_months.used_ms + excluded.used_ms,
	healthy_ms = usage_months.healthy_ms + excluded.healthy_ms, energy_mj = usage_months.energy_mj + excluded.energy_mj,
	readings = usage_months.readings + excluded.readings`
)

const (
	sampleCols      = `t_ms, util_pct, energy_mj, xid, power_violation_us, thermal_violation_us, remap_failure`
	sampleLastQuery = `SELECT ` + sampleCols + ` FROM meter_samples WHERE node = ? AND gpu = ? ORDER BY t_ms DESC LIMIT 1`
	samplePrevQuery = `SELECT ` + sampleCols + ` FROM meter_samples WHERE node = ? AND gpu = ? AND t_ms < ? ORDER BY t_ms DESC LIMIT 1`
	sampleNextQuery = `SELECT ` + sampleCols + ` FROM meter_samples WHERE node = ? AND gpu = ? AND t_ms >= ? ORDER BY t_ms LIMIT 1`
	batchQuery      = `SELECT accepted, duplicates, too_late, too_early FROM meter_batches WHERE id = ?`
	batchInsert     = `INSERT INTO meter_batches (id, agent, received_us, accepted, duplicates, too_late, too_early) VALUES (?, ?, ?, ?, ?, ?, ?)`
)

// meterQueries are the statements of the meter that the write pool
// prepares.
func meterQueries(d *Dialect) []string {
	qs := []string{sampleLastQuery, samplePrevQuery, sampleNextQuery, batchQuery, batchInsert}
	for _, b := range []bulkInsert{samplesInsert, usageUpsert, monthUpsert} {
		suffix := map[string]string{"usage_hours": usageUpsertSuffix, "usage_months": monthUpsertSuffix}[b.table]
		for n := 1; n <= pow2Floor(d.batchRows(b.cols)); n *= 2 {
			qs = append(qs, plainInsert(b, n)+suffix)
		}
	}
	return qs
}

// plainInsert is b's n-row INSERT without the OR FAIL of bulkInsert: the
// meter's writes need no undo (a failure fails the whole transaction).
func plainInsert(b bulkInsert, n int) string {
	return `INSERT INTO ` + b.table + ` (` + b.columns + `) VALUES ` + values(n, b.cols)
}

// meterTx is engine.MeterTx on a transaction: points Put are buffered and
// written by Flush (or before Around reads).
type meterTx struct {
	t       *tx
	ctx     context.Context
	buf     []any // the buffered points' columns, samplesInsert.cols per point
	bufLast map[meter.GPU]meter.Point
}

// Meter returns the transaction's telemetry side, bound to ctx.
func (t *tx) Meter(ctx context.Context) engine.MeterTx {
	return &meterTx{t: t, ctx: ctx, bufLast: map[meter.GPU]meter.Point{}}
}

func scanPoint(row interface{ Scan(...any) error }) (meter.Point, error) {
	var p meter.Point
	err := row.Scan(&p.T, &p.UtilPct, &p.EnergyMJ, &p.XID, &p.PowerViolationUS, &p.ThermalViolationUS, &p.RemapFailure)
	return p, err
}

func (m *meterTx) point(query string, args ...any) (meter.Point, bool, error) {
	p, err := scanPoint(m.t.c.queryRowPrepared(m.ctx, query, args...))
	if isNoRows(err) {
		return meter.Point{}, false, nil
	}
	if err != nil {
		return meter.Point{}, false, fmt.Errorf("store: meter sample: %w", err)
	}
	return p, true, nil
}

// Last returns the GPU's latest point, buffered or stored.
func (m *meterTx) Last(g meter.GPU) (meter.Point, bool, error) {
	if p, ok := m.bufLast[g]; ok {
		return p, true, nil
	}
	return m.point(sampleLastQuery, g.Node, g.Index)
}

// Around returns the GPU's points just before and after t, and whether
// one is at t.
func (m *meterTx) Around(g meter.GPU, t int64) (prev meter.Point, okPrev bool, next meter.Point, okNext bool, at bool, err error) {
	if err = m.Flush(); err != nil {
		return
	}
	if next, okNext, err = m.point(sampleNextQuery, g.Node, g.Index, t); err != nil {
		return
	}
	if okNext && next.T == t {
		return meter.Point{}, false, meter.Point{}, false, true, nil
	}
	prev, okPrev, err = m.point(samplePrevQuery, g.Node, g.Index, t)
	return
}

// Put buffers p.
func (m *meterTx) Put(g meter.GPU, p meter.Point) error {
	m.buf = append(m.buf, g.Node, g.Index, p.T, p.UtilPct, p.EnergyMJ, p.XID, p.PowerViolationUS, p.ThermalViolationUS, p.RemapFailure)
	if last, ok := m.bufLast[g]; !ok || p.T > last.T {
		m.bufLast[g] = p
	}
	return nil
}

// Flush writes the buffered points.
func (m *meterTx) Flush() error {
	n := len(m.buf) / samplesInsert.cols
	if err := m.insert(samplesInsert, "", n, m.buf); err != nil {
		return fmt.Errorf("store: meter samples: %w", err)
	}
	m.buf = m.buf[:0]
	clear(m.bufLast)
	return nil
}

// insert writes n rows whose columns are args, in prepared chunks.
func (m *meterTx) insert(b bulkInsert, suffix string, n int, args []any) error {
	rows := make([]struct{}, n)
	for start, chunk := range pow2Chunks(rows, m.t.c.d.batchRows(b.cols)) {
		q := plainInsert(b, len(chunk)) + suffix
		if _, err := m.t.c.execPrepared(m.ctx, q, args[start*b.cols:(start+len(chunk))*b.cols]...); err != nil {
			return err
		}
	}
	return nil
}

// BatchResult returns the recorded outcome of batch id.
func (m *meterTx) BatchResult(id string) (meter.Result, bool, error) {
	var r meter.Result
	err := m.t.c.queryRowPrepared(m.ctx, batchQuery, id).Scan(&r.Accepted, &r.Duplicates, &r.TooLate, &r.TooEarly)
	if isNoRows(err) {
		return meter.Result{}, false, nil
	}
	if err != nil {
		return meter.Result{}, false, fmt.Errorf("store: meter batch %s: %w", id, err)
	}
	return r, true, nil
}

// RecordBatch remembers an applied batch.
func (m *meterTx) RecordBatch(b engine.BatchRecord) error {
	_, err := m.t.c.execPrepared(m.ctx, batchInsert, b.ID, b.Agent, micros(b.Received),
		b.Result.Accepted, b.Result.Duplicates, b.Result.TooLate, b.Result.TooEarly)
	if err != nil {
		return fmt.Errorf("store: record batch %s: %w", b.ID, err)
	}
	return nil
}

// AddUsage adds rows to the hourly rollup and to its monthly sums.
func (m *meterTx) AddUsage(rows []meter.Row) error {
	args := make([]any, 0, len(rows)*usageUpsert.cols)
	months := map[meter.UsageKey]meter.Usage{}
	for _, r := range rows {
		args = append(args, r.Hour, r.Pool, string(r.Use), r.LeaseID, r.TenantID, r.GPUms, r.UsedMs, r.HealthyMs, r.EnergyMJ, r.Readings)
		k := r.UsageKey
		k.Hour = monthStartMs(r.Hour)
		u := months[k]
		u.Add(r.Usage)
		months[k] = u
	}
	if err := m.insert(usageUpsert, usageUpsertSuffix, len(rows), args); err != nil {
		return fmt.Errorf("store: add usage: %w", err)
	}
	args = args[:0]
	for k, u := range months {
		args = append(args, k.Hour, k.Pool, string(k.Use), k.LeaseID, k.TenantID, u.GPUms, u.UsedMs, u.HealthyMs, u.EnergyMJ, u.Readings)
	}
	if err := m.insert(monthUpsert, monthUpsertSuffix, len(months), args); err != nil {
		return fmt.Errorf("store: add usage by month: %w", err)
	}
	return nil
}

// monthStartMs returns the start of the UTC month holding Unix ms t.
func monthStartMs(t int64) int64 {
	d := time.UnixMilli(t).UTC()
	return time.Date(d.Year(), d.Month(), 1, 0, 0, 0, 0, time.UTC).UnixMilli()
}

// AddFindings appends health findings.
func (m *meterTx) AddFindings(fs []meter.Finding) error {
	args := make([]any, 0, len(fs)*findingsInsert.cols)
	for _, f := range fs {
		args = append(args, f.Node, f.GPU, micros(f.At), string(f.Severity), f.Rule, f.Detail)
	}
	if err := m.insert(findingsInsert, "", len(fs), args); err != nil {
		return fmt.Errorf("store: add findings: %w", err)
	}
	return nil
}

// PruneSamples deletes, for the nodes with ordinals in [fromNode,
// toNode), the points older than cutoff that have a later point also older
// than cutoff (the latest old one per GPU stays: a late reading's
// neighbour), and the batch records older than cutoff (a replay of such a
// batch is too late anyway).
func (m *meterTx) PruneSamples(cutoff, fromNode, toNode int64) (int64, error) {
	n, err := m.t.c.execCount(m.ctx, `DELETE FROM meter_samples WHERE node >= ? AND node < ? AND t_ms < ? AND EXISTS (
		SELECT 1 FROM meter_samples s2 WHERE s2.node = meter_samples.node AND s2.gpu = meter_samples.gpu
		AND s2.t_ms > meter_samples.t_ms AND s2.t_ms < ?)`, fromNode, toNode, cutoff, cutoff)
	if err != nil {
		return 0, fmt.Errorf("store: prune samples: %w", err)
	}
	if _, err := m.t.c.exec(m.ctx, `DELETE FROM meter_batches WHERE received_us < ?`, cutoff*1000); err != nil {
		return 0, fmt.Errorf("store: prune batches: %w", err)
	}
	return n, nil
}

// UsageRows returns the rollup rows f selects, by hour, pool, use, lease.
func (r reader) UsageRows(ctx context.Context, f engine.UsageFilter) ([]meter.Row, error) {
	q := `SELECT hour_ms, pool, use, lease_id, tenant_id, gpu_ms, used_ms, healthy_ms, energy_mj, readings FROM usage_hours WHERE 1=1`
	var args []any
	if !f.From.IsZero() {
		q += ` AND hour_ms >= ?`
		args = append(args, f.From.UnixMilli())
	}
	if !f.To.IsZero() {
		q += ` AND hour_ms < ?`
		args = append(args, f.To.UnixMilli())
	}
	for _, c := range []struct{ col, v string }{{"lease_id", f.LeaseID}, {"tenant_id", f.TenantID}, {"pool", f.Pool}, {"use", string(f.Use)}} {
		if c.v != "" {
			q += ` AND ` + c.col + ` = ?`
			args = append(args, c.v)
		}
	}
	if f.Unhealthy {
		q += ` AND lease_id <> '' AND healthy_ms < gpu_ms`
	}
	q += ` ORDER BY hour_ms, pool, use, lease_id`
	rows, err := r.c.query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("store: usage: %w", err)
	}
	out := []meter.Row{}
	for rows.Next() {
		var x meter.Row
		var use string
		if err := rows.Scan(&x.Hour, &x.Pool, &use, &x.LeaseID, &x.TenantID, &x.GPUms, &x.UsedMs, &x.HealthyMs, &x.EnergyMJ, &x.Readings); err != nil {
			rows.Close()
			return nil, fmt.Errorf("store: usage: %w", err)
		}
		x.Use = meter.Use(use)
		out = append(out, x)
	}
	if err := closeRows(rows); err != nil {
		return nil, fmt.Errorf("store: usage: %w", err)
	}
	return out, nil
}

// Findings returns the health findings f selects, newest first.
func (r reader) Findings(ctx context.Context, f engine.FindingFilter) ([]meter.Finding, error) {
	q := `SELECT node, gpu, at_us, severity, rule, detail FROM health_findings WHERE at_us >= ?`
	args := []any{micros(f.Since)}
	if f.Since.IsZero() {
		args[0] = int64(-1 << 62)
	}
	if !f.Until.IsZero() {
		q += ` AND at_us < ?`
		args = append(args, micros(f.Until))
	}
	if f.Node != "" {
		q += ` AND node = ?`
		args = append(args, f.Node)
	}
	if len(f.Nodes) > engine.MaxFindingNodes {
		return nil, fmt.Errorf("store: findings: %d nodes, more than %d", len(f.Nodes), engine.MaxFindingNodes)
	}
	if len(f.Nodes) > 0 {
		q += ` AND node IN (` + list(len(f.Nodes)) + `)`
		for _, n := range f.Nodes {
			args = append(args, n)
		}
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	q += ` ORDER BY at_us DESC, seq DESC LIMIT ?`
	args = append(args, limit)
	rows, err := r.c.query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("store: findings: %w", err)
	}
	out := []meter.Finding{}
	for rows.Next() {
		var x meter.Finding
		var at int64
		var sev string
		if err := rows.Scan(&x.Node, &x.GPU, &at, &sev, &x.Rule, &x.Detail); err != nil {
			rows.Close()
			return nil, fmt.Errorf("store: findings: %w", err)
		}
		x.At, x.Severity = fromMicros(at), meter.Severity(sev)
		out = append(out, x)
	}
	if err := closeRows(rows); err != nil {
		return nil, fmt.Errorf("store: findings: %w", err)
	}
	return out, nil
}

func isNoRows(err error) bool { return errors.Is(err, sql.ErrNoRows) }

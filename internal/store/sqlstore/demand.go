package sqlstore

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/neocloud/neocloud/internal/demand"
)

// Demand returns pool's samples over [from, to), ordered by hour; a zero
// to means no end.
func (r reader) Demand(ctx context.Context, pool string, from, to time.Time) ([]demand.Sample, error) {
	end := int64(1<<63 - 1)
	if !to.IsZero() {
		end = micros(to)
	}
	rows, err := r.c.query(ctx, `SELECT hour_us, gpus FROM demand_samples WHERE pool = ? AND hour_us >= ? AND hour_us < ? ORDER BY hour_us`,
		pool, micros(from), end)
	if err != nil {
		return nil, fmt.Errorf("store: demand of %s: %w", pool, err)
	}
	out := []demand.Sample{}
	for rows.Next() {
		var h int64
		s := demand.Sample{Pool: pool}
		if err := rows.Scan(&h, &s.GPUs); err != nil {
			rows.Close()
			return nil, fmt.Errorf("store: demand of %s: %w", pool, err)
		}
		s.Hour = fromMicros(h)
		out = append(out, s)
	}
	if err := closeRows(rows); err != nil {
		return nil, fmt.Errorf("store: demand of %s: %w", pool, err)
	}
	return out, nil
}

// UpsertDemand stores samples, replacing stored ones of the same pool and
// hour, in multi-row statements.
func (t *tx) UpsertDemand(ctx context.Context, samples []demand.Sample) error {
	type key struct {
		pool string
		hour int64
	}
	seen := make(map[key]bool, len(samples))
	for i, s := range samples {
		k := key{s.Pool, micros(s.Hour)}
		if seen[k] {
			return fmt.Errorf("store: upsert demand: sample %d: %s at %s given twice", i, s.Pool, s.Hour.UTC().Format(time.RFC3339))
		}
		seen[k] = true
	}
	const cols = 3
	for batch := range slices.Chunk(samples, t.c.d.batchRows(cols)) {
		args := make([]any, 0, len(batch)*cols)
		for _, s := range batch {
			args = append(args, s.Pool, micros(s.Hour), s.GPUs)
		}
		if _, err := t.c.exec(ctx, `INSERT INTO demand_samples (pool, hour_us, gpus) VALUES `+values(len(batch), cols)+
			` ON CONFLICT (pool, hour_us) DO UPDATE SET gpus = excluded.gpus`, args...); err != nil {
			return fmt.Errorf("store: upsert demand: %w", err)
		}
	}
	return nil
}

package sqlstore

import (
	"context"
	"database/sql"
	"sync"
	"time"
)

// checkpointTimeout bounds one background checkpoint.
const checkpointTimeout = time.Minute

// checkpointer runs a dialect's Checkpoint statement in the background,
// on its own goroutine, after every so many commits (Dialect.Checkpoint).
// A checkpoint that fails is left for the next one (or for the writer's
// own): nothing depends on it but the size of the log.
type checkpointer struct {
	db    *sql.DB
	query string
	every int

	mu      sync.Mutex
	commits int // since the last checkpoint was asked for

	wake   chan struct{} // holds one request at most
	ctx    context.Context
	cancel context.CancelFunc // by stop
	wg     sync.WaitGroup
}

func startCheckpointer(db *sql.DB, query string, every int) *checkpointer {
	c := &checkpointer{db: db, query: query, every: max(every, 1), wake: make(chan struct{}, 1)}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.wg.Go(c.run)
	return c
}

// committed counts a commit and asks for a checkpoint every c.every.
func (c *checkpointer) committed() {
	if c == nil {
		return
	}
	c.mu.Lock()
	c.commits++
	due := c.commits >= c.every
	if due {
		c.commits = 0
	}
	c.mu.Unlock()
	if due {
		select {
		case c.wake <- struct{}{}:
		default: // one is asked for already
		}
	}
}

func (c *checkpointer) run() {
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-c.wake:
		}
		ctx, cancel := context.WithTimeout(c.ctx, checkpointTimeout)
		if rows, err := c.db.QueryContext(ctx, c.query); err == nil {
			for rows.Next() {
			}
			_ = closeRows(rows)
		}
		cancel()
	}
}

// stop ends the goroutine, interrupting the checkpoint in progress.
func (c *checkpointer) stop() {
	if c == nil {
		return
	}
	c.cancel()
	c.wg.Wait()
}

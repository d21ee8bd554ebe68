package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/neocloud/neocloud/internal/engine"
)

// Store is engine.Store over database/sql. Reads go through a pool of
// connections; Update runs on the write pool, which for SQLite holds one
// connection that begins its transactions IMMEDIATE. With a dialect that
// sets AllocIndex (SQLite), the Store keeps an index of the stored
// allocations, which Update validates and InsertAllocations checks
// against (allocIndex).
type Store struct {
	reader
	dialect   *Dialect
	read      *sql.DB
	write     *sql.DB
	stmts     *stmtCache    // on the write pool
	readStmts *stmtCache    // on the read pool
	index     *allocIndex   // nil unless dialect.AllocIndex
	ckpt      *checkpointer // nil unless dialect.Checkpoint

	closeOnce sync.Once
	closeErr  error
}

var (
	_ engine.Store  = (*Store)(nil)
	_ engine.Tx     = (*tx)(nil)
	_ engine.Reader = (*tx)(nil)
)

// New returns a Store that reads through read and writes through write,
// speaking d. read and write may be the same pool. The Store owns both and
// closes them in Close.
func New(d Dialect, read, write *sql.DB) *Store {
	dp := &d
	readStmts := &stmtCache{db: read, m: map[string]*sql.Stmt{}, queries: readQueries}
	s := &Store{
		reader:    reader{c: conn{q: read, d: dp, stmts: readStmts}},
		dialect:   dp,
		read:      read,
		write:     write,
		stmts:     &stmtCache{db: write, m: map[string]*sql.Stmt{}, queries: writeQueries},
		readStmts: readStmts,
	}
	if d.AllocIndex {
		s.index = &allocIndex{}
	}
	if d.Checkpoint != "" {
		s.ckpt = startCheckpointer(read, d.rebind(d.Checkpoint), d.CheckpointEvery)
	}
	return s
}

// DB returns the write pool, for maintenance and for tests that must reach
// past the contract (the conformance suite checks with it that the audit
// log refuses UPDATE and DELETE). The next Update sees what is written
// through it: the allocation index reloads.
func (s *Store) DB() *sql.DB { return s.write }

// Close closes both pools; later calls return the first call's result.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.ckpt.stop()
		errs := []error{s.stmts.close(), s.readStmts.close()}
		if err := s.write.Close(); err != nil {
			errs = append(errs, fmt.Errorf("store: close write pool: %w", err))
		}
		if s.read != s.write {
			if err := s.read.Close(); err != nil {
				errs = append(errs, fmt.Errorf("store: close read pool: %w", err))
			}
		}
		s.closeErr = errors.Join(errs...)
	})
	return s.closeErr
}

// Update runs fn in one read-write transaction and commits when fn returns
// nil. When fn returns an error, Update rolls back and returns that error
// as is; when fn panics, Update rolls back and panics again. The Tx given to
// fn also implements engine.Reader, reading the transaction's own writes;
// it must not be used after fn returns. When a write of fn failed half-way
// and could not be undone (see insertAll), Update rolls back and returns
// that error even if fn returns nil.
//
// With PostgreSQL, a write refused by a constraint that its method does not
// check first or insert under a savepoint aborts the transaction: fn must
// then return the error. (Writers take the dialect's writer lock, so the
// pre-checks see every committed write.)
func (s *Store) Update(ctx context.Context, fn func(engine.Tx) error) (err error) {
	s.stmts.prepare(ctx, s.dialect)
	c, err := s.write.Conn(ctx)
	if err != nil {
		return fmt.Errorf("store: begin: %w", err)
	}
	defer c.Close()
	var driverConn any
	if s.index != nil {
		if err := c.Raw(func(dc any) error { driverConn = dc; return nil }); err != nil {
			return fmt.Errorf("store: begin: %w", err)
		}
	}
	sqlTx, err := c.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: begin: %w", err)
	}
	outcome := txRolledBack
	var ix *allocIndex
	defer func() {
		if outcome == txRolledBack {
			if rbErr := sqlTx.Rollback(); rbErr != nil && !errors.Is(rbErr, sql.ErrTxDone) && err != nil {
				err = errors.Join(err, fmt.Errorf("store: rollback: %w", rbErr))
			}
		}
		if ix != nil {
			ix.endTx(ctx, c, outcome)
			ix.mu.Unlock()
		}
	}()
	if s.dialect.WriterLock != "" {
		if _, err := sqlTx.ExecContext(ctx, s.dialect.WriterLock); err != nil {
			return fmt.Errorf("store: writer lock: %w", err)
		}
	}
	if s.index != nil {
		s.index.mu.Lock()
		ix = s.index
		if err := ix.beginTx(ctx, sqlTx, driverConn); err != nil {
			return fmt.Errorf("store: begin: allocation index: %w", err)
		}
	}
	t := &tx{reader: reader{c: conn{q: sqlTx, d: s.dialect, tx: sqlTx, stmts: s.stmts}}, ix: ix}
	if err := fn(t); err != nil {
		return err
	}
	if t.broken != nil {
		return fmt.Errorf("store: %w", t.broken)
	}
	if err := sqlTx.Commit(); err != nil {
		outcome = txUnknown
		return fmt.Errorf("store: commit: %w", err)
	}
	outcome = txCommitted
	s.ckpt.committed()
	return nil
}

// tx is engine.Tx bound to one *sql.Tx, with the store's allocation
// index when the dialect keeps one.
type tx struct {
	reader
	ix *allocIndex
	// broken, when set, says why the transaction must not commit (a
	// write failed half-way and could not be undone).
	broken error
	// runs is what checkRunsInService read of nodes; nil until it needs
	// it, and after ApplyFleet.
	runs *ordinals
	// expired says that RememberResponses deleted the records created
	// before expiredUS.
	expired   bool
	expiredUS int64
	// args is insertAll's argument slice, kept for the transaction's
	// next statement: a group commit of admissions makes a dozen, of
	// thousands of values each.
	args []any
}

// queryer is what *sql.DB and *sql.Tx share.
type queryer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// conn runs ?-placeholder queries on a pool or a transaction, rebound for
// the dialect. stmts, when set, holds prepared statements of the pool (in
// a transaction: of the write pool, bound to tx).
type conn struct {
	q     queryer
	d     *Dialect
	tx    *sql.Tx
	stmts *stmtCache
}

// prepared returns query's prepared statement, bound to c's transaction
// if any, or nil when query was not prepared (see stmtCache).
func (c conn) prepared(ctx context.Context, query string) *sql.Stmt {
	if c.stmts == nil {
		return nil
	}
	if c.tx == nil {
		c.stmts.prepare(ctx, c.d) // a pool prepares on first use
	}
	st := c.stmts.get(c.d.rebind(query))
	if st == nil || c.tx == nil {
		return st
	}
	return c.tx.StmtContext(ctx, st)
}

// execPrepared is exec through the prepared statement of query, if any.
func (c conn) execPrepared(ctx context.Context, query string, args ...any) (sql.Result, error) {
	st := c.prepared(ctx, query)
	if st == nil {
		return c.exec(ctx, query, args...)
	}
	res, err := st.ExecContext(ctx, args...)
	return res, c.d.classify(err)
}

// queryRowPrepared is queryRow through the prepared statement of query, if
// any.
func (c conn) queryRowPrepared(ctx context.Context, query string, args ...any) *sql.Row {
	st := c.prepared(ctx, query)
	if st == nil {
		return c.queryRow(ctx, query, args...)
	}
	return st.QueryRowContext(ctx, args...)
}

// stmtCache holds statements prepared on a pool, by query text. On the
// write pool: the batch statements of InsertAllocations, InsertLeases and
// AppendAudits, which come in a few fixed shapes (batchQueries), and those
// of RememberResponses; on the read pool, the idempotency lookup each
// mutating request makes. modernc's SQLite parses every statement it runs
// otherwise, and parsing a statement of hundreds of rows costs about as
// much as running it. The write pool's are prepared before the first write
// transaction begins, because preparing on the pool inside one would wait
// for SQLite's only write connection, which the transaction holds; a
// transaction binds them to its connection with Tx.StmtContext.
type stmtCache struct {
	db      *sql.DB
	queries func(d *Dialect) []string
	once    sync.Once
	m       map[string]*sql.Stmt // read-only once prepared
}

// writeQueries are the statements the write pool prepares.
func writeQueries(d *Dialect) []string {
	qs := append(batchQueries(d), idempotencyQueries(d)...)
	qs = append(qs, eventQueries(d)...)
	qs = append(qs, meterQueries(d)...)
	qs = append(qs, setNodeStateQuery, leaseStartQuery, updateLeaseQuery)
	if d.UndoByRowid {
		qs = append(qs, leasesInsert.lastRowidQuery(), allocationsInsert.lastRowidQuery())
	}
	return qs
}

// readQueries are the statements the read pool prepares.
func readQueries(*Dialect) []string { return []string{idempotentQuery} }

// prepare prepares the queries of d, once; a query that fails to prepare
// is left out and runs unprepared.
func (c *stmtCache) prepare(ctx context.Context, d *Dialect) {
	c.once.Do(func() {
		ctx := context.WithoutCancel(ctx) // a caller's deadline must not leave them out for good
		for _, q := range c.queries(d) {
			q = d.rebind(q)
			if st, err := c.db.PrepareContext(ctx, q); err == nil {
				c.m[q] = st
			}
		}
	})
}

// get returns the prepared statement of query, or nil.
func (c *stmtCache) get(query string) *sql.Stmt { return c.m[query] }

func (c *stmtCache) close() error {
	var errs []error
	for _, st := range c.m {
		if err := st.Close(); err != nil {
			errs = append(errs, fmt.Errorf("store: close statement: %w", err))
		}
	}
	return errors.Join(errs...)
}

func (c conn) exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	res, err := c.q.ExecContext(ctx, c.d.rebind(query), args...)
	return res, c.d.classify(err)
}

func (c conn) query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	rows, err := c.q.QueryContext(ctx, c.d.rebind(query), args...)
	return rows, c.d.classify(err)
}

func (c conn) queryRow(ctx context.Context, query string, args ...any) *sql.Row {
	return c.q.QueryRowContext(ctx, c.d.rebind(query), args...)
}

// execCount runs query and returns how many rows it changed.
func (c conn) execCount(ctx context.Context, query string, args ...any) (int64, error) {
	res, err := c.exec(ctx, query, args...)
	if err != nil {
		return 0, err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("rows affected: %w", err)
	}
	return n, nil
}

// reader implements engine.Reader over a pool or a transaction.
type reader struct {
	c conn
}

// micros returns t as unix microseconds.
func micros(t time.Time) int64 { return t.UnixMicro() }

// nullMicros returns t as unix microseconds, or nil (NULL) for the zero time.
func nullMicros(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixMicro()
}

// fromMicros returns the UTC instant us microseconds after the epoch.
func fromMicros(us int64) time.Time { return time.UnixMicro(us).UTC() }

// fromNullMicros returns the instant of us, or the zero time for NULL.
func fromNullMicros(us sql.NullInt64) time.Time {
	if !us.Valid {
		return time.Time{}
	}
	return fromMicros(us.Int64)
}

// nullString returns s, or nil (NULL) for "".
func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

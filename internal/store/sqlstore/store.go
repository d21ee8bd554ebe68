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
// connection that begins its transactions IMMEDIATE.
type Store struct {
	reader
	dialect *Dialect
	read    *sql.DB
	write   *sql.DB

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
	return &Store{
		reader:  reader{c: conn{q: read, d: dp}},
		dialect: dp,
		read:    read,
		write:   write,
	}
}

// DB returns the write pool, for maintenance and for tests that must reach
// past the contract (the conformance suite checks with it that the audit
// log refuses UPDATE and DELETE).
func (s *Store) DB() *sql.DB { return s.write }

// Close closes both pools; later calls return the first call's result.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		var errs []error
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
// it must not be used after fn returns.
//
// With PostgreSQL, a write refused by a constraint while another writer
// raced this one (an exclusion or unique violation the pre-checks could not
// see) aborts the transaction: fn must then return the error.
func (s *Store) Update(ctx context.Context, fn func(engine.Tx) error) (err error) {
	sqlTx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: begin: %w", err)
	}
	committed := false
	defer func() {
		if committed {
			return
		}
		if rbErr := sqlTx.Rollback(); rbErr != nil && !errors.Is(rbErr, sql.ErrTxDone) && err != nil {
			err = errors.Join(err, fmt.Errorf("store: rollback: %w", rbErr))
		}
	}()
	if s.dialect.WriterLock != "" {
		if _, err := sqlTx.ExecContext(ctx, s.dialect.WriterLock); err != nil {
			return fmt.Errorf("store: writer lock: %w", err)
		}
	}
	if err := fn(&tx{reader: reader{c: conn{q: sqlTx, d: s.dialect}}}); err != nil {
		return err
	}
	if err := sqlTx.Commit(); err != nil {
		return fmt.Errorf("store: commit: %w", err)
	}
	committed = true
	return nil
}

// tx is engine.Tx bound to one *sql.Tx.
type tx struct {
	reader
}

// queryer is what *sql.DB and *sql.Tx share.
type queryer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// conn runs ?-placeholder queries on a pool or a transaction, rebound for
// the dialect.
type conn struct {
	q queryer
	d *Dialect
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

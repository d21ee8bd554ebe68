package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"runtime"
	"strings"

	"github.com/pressly/goose/v3"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/neocloud/neocloud/internal/store/sqlstore"
	"github.com/neocloud/neocloud/internal/tenant"
)

//go:embed migrations/*.sql
var migrations embed.FS

// pragmas run on every connection: WAL lets readers run beside the writer;
// synchronous=FULL makes a commit durable before it returns; busy_timeout
// makes a second process wait for the write lock rather than fail.
const pragmas = "_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=foreign_keys(ON)"

// writerPragmas run on the write connection: a page cache of 64 MiB (with
// the default, 2 MiB, every batch of admissions rereads pages of the
// leases and allocations indexes from the file), and a checkpoint when the
// WAL reaches 10,000 pages (40 MiB) rather than 1,000: a commit that
// crosses the mark copies the WAL into the database file first, and
// random IDs make nearly every commit rewrite the same index pages, which
// one checkpoint copies once.
const writerPragmas = "&_pragma=cache_size(-65536)&_pragma=wal_autocheckpoint(10000)"

// maxParams is SQLite's default SQLITE_MAX_VARIABLE_NUMBER.
const maxParams = 32766

// Dialect is SQLite's sqlstore.Dialect. The store checkpoints in the
// background every 100 commits (a group commit of leases writes some 20-40
// pages), so that the writer's own checkpoint at wal_autocheckpoint finds
// little left to copy.
func Dialect() sqlstore.Dialect {
	return sqlstore.Dialect{Name: "sqlite", MaxParams: maxParams, AllocIndex: true, UndoByRowid: true, Classify: classify,
		Checkpoint: "PRAGMA wal_checkpoint(PASSIVE)", CheckpointEvery: 100}
}

// Open opens (creating it when missing) the SQLite database file at path,
// applies the pending migrations and returns the store. path must name a
// file: the writer and the readers are separate connections, which an
// in-memory database would not share.
func Open(ctx context.Context, path string) (*sqlstore.Store, error) {
	return open(ctx, path, pragmas)
}

// OpenScratch is Open for a throwaway database (the simulator's): commits
// do not wait for the disk (synchronous=OFF), so a crash may lose or
// corrupt it.
func OpenScratch(ctx context.Context, path string) (*sqlstore.Store, error) {
	return open(ctx, path, strings.Replace(pragmas, "synchronous(FULL)", "synchronous(OFF)", 1))
}

func open(ctx context.Context, path, pragmas string) (*sqlstore.Store, error) {
	if path == "" || strings.ContainsAny(path, "?#") || strings.HasPrefix(path, ":memory:") || strings.HasPrefix(path, "file:") {
		return nil, fmt.Errorf("sqlite: open %q: want the path of a database file", path)
	}
	// The writer is opened and migrated first: it turns the file to WAL.
	write, err := sql.Open("sqlite", path+"?"+pragmas+writerPragmas+"&_txlock=immediate")
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	write.SetMaxOpenConns(1)
	write.SetMaxIdleConns(1)
	if err := migrate(ctx, write); err != nil {
		write.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	read, err := sql.Open("sqlite", path+"?"+pragmas+"&_pragma=query_only(1)")
	if err != nil {
		write.Close()
		return nil, fmt.Errorf("sqlite: open %s: readers: %w", path, err)
	}
	n := max(4, runtime.GOMAXPROCS(0))
	read.SetMaxOpenConns(n)
	read.SetMaxIdleConns(n)
	if err := read.PingContext(ctx); err != nil {
		write.Close()
		read.Close()
		return nil, fmt.Errorf("sqlite: open %s: readers: %w", path, err)
	}
	return sqlstore.New(Dialect(), read, write), nil
}

// migrate applies the embedded migrations that db lacks.
func migrate(ctx context.Context, db *sql.DB) error {
	fsys, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	p, err := goose.NewProvider(goose.DialectSQLite3, db, fsys, goose.WithDisableGlobalRegistry(true))
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	// p.Close would close db, which the store keeps.
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	return nil
}

// classify maps SQLite's extended result codes to store errors.
func classify(err error) error {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return nil
	}
	switch se.Code() {
	case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
		return tenant.ErrExists
	}
	return nil
}

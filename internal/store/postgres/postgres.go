package postgres

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver
	"github.com/pressly/goose/v3"

	"github.com/neocloud/neocloud/internal/engine"
	"github.com/neocloud/neocloud/internal/store/sqlstore"
	"github.com/neocloud/neocloud/internal/tenant"
)

//go:embed migrations/*.sql
var migrations embed.FS

// maxParams is the PostgreSQL wire protocol's limit of bind parameters.
const maxParams = 65535

// SQLSTATE codes the store maps.
const (
	uniqueViolation    = "23505"
	exclusionViolation = "23P01"
)

// Dialect is PostgreSQL's sqlstore.Dialect.
func Dialect() sqlstore.Dialect {
	return sqlstore.Dialect{Name: "postgres", NumberedParams: true, MaxParams: maxParams,
		Classify: classify,
		// One writer per schema across every process on the database: a
		// second server (or a tool) waits for the first's transaction
		// instead of racing it under READ COMMITTED.
		WriterLock: `SELECT pg_advisory_xact_lock(hashtext('neocloud.writer.' || current_schema()))`}
}

// Open connects to the database dsn names (a postgres:// URL or key=value
// pairs, as pgx parses them; search_path selects the schema), applies the
// pending migrations and returns the store.
func Open(ctx context.Context, dsn string) (*sqlstore.Store, error) {
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return nil, fmt.Errorf("postgres: open: %w", err)
	}
	db.SetMaxOpenConns(16)
	db.SetMaxIdleConns(8)
	db.SetConnMaxIdleTime(5 * time.Minute)
	if err := migrate(ctx, db); err != nil {
		db.Close()
		return nil, fmt.Errorf("postgres: open: %w", err)
	}
	return sqlstore.New(Dialect(), db, db), nil
}

// migrate applies the embedded migrations that db's schema lacks, holding
// an advisory lock keyed by the schema meanwhile, so that replicas (or
// tests) opening the same schema together migrate it once, and different
// schemas migrate in parallel.
func migrate(ctx context.Context, db *sql.DB) (err error) {
	conn, err := db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer conn.Close()
	const key = `hashtext('neocloud.migrate.' || current_schema())`
	if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock(`+key+`)`); err != nil {
		return fmt.Errorf("migrate: lock: %w", err)
	}
	defer func() {
		// A session lock outlives a cancelled ctx: unlock without it.
		if _, uerr := conn.ExecContext(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock(`+key+`)`); uerr != nil {
			err = errors.Join(err, fmt.Errorf("migrate: unlock: %w", uerr))
		}
	}()

	fsys, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	p, err := goose.NewProvider(goose.DialectPostgres, db, fsys, goose.WithDisableGlobalRegistry(true))
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	// p.Close would close db, which the store keeps.
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	return nil
}

// classify maps PostgreSQL's SQLSTATE codes to store errors.
func classify(err error) error {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return nil
	}
	switch pe.Code {
	case uniqueViolation:
		return tenant.ErrExists
	case exclusionViolation:
		return engine.ErrConflict
	}
	return nil
}

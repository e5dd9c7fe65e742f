package postgres

import (
	"context"
	"embed"
	"fmt"
	"slices"

	"github.com/dynaprice/dynaprice/internal/migrations"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// migrationFiles holds the schema, one file per version. A file is named
// NNNN_description.sql; once released it must never change, since a
// database records only the version it applied, not its content.
//
//go:embed migrations/*.sql
var migrationFiles embed.FS

// lockKey is the SQL for the advisory lock key named name. Advisory locks
// are database-wide, so the key includes the schema: databases shared by
// several schemas (tests) do not serialize on each other. coalesce keeps
// the key from being NULL, which would make the lock functions a no-op.
func lockKey(name string) string {
	return "hashtextextended('dynaprice/" + name + "/' || coalesce(current_schema(), ''), 0)"
}

// Migrate applies the migrations the database has not applied yet and
// returns their names. Engines starting together may all call it: the run
// holds an advisory lock, so one applies the migrations and the others then
// find nothing to do. Each migration commits in one transaction with its
// schema_migrations row, so a failure leaves the database at a version
// boundary. It refuses a database migrated by a newer build, whose schema
// this one does not know.
func (db *DB) Migrate(ctx context.Context) (applied []string, err error) {
	ms, err := migrations.Load(migrationFiles)
	if err != nil {
		return nil, fmt.Errorf("postgres: migrate: %w", err)
	}
	c, err := db.pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("postgres: migrate: %w", err)
	}
	defer c.Release()
	// A session lock, not a transaction one: it spans the transactions of
	// all the migrations.
	if _, err := c.Exec(ctx, "SELECT pg_advisory_lock("+lockKey("migrate")+")"); err != nil {
		return nil, fmt.Errorf("postgres: migrate: lock: %w", err)
	}
	defer unlockSession(ctx, c, "migrate")

	if _, err := c.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    integer     PRIMARY KEY,
		name       text        NOT NULL,
		applied_at timestamptz NOT NULL DEFAULT now()
	)`); err != nil {
		return nil, fmt.Errorf("postgres: migrate: %w", err)
	}
	rows, _ := c.Query(ctx, "SELECT version FROM schema_migrations")
	done, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		return nil, fmt.Errorf("postgres: migrate: %w", err)
	}
	if latest, known := slices.Max(append(done, 0)), ms[len(ms)-1].Version; int(latest) > known {
		return nil, fmt.Errorf("postgres: migrate: database is at schema version %d, this build knows up to %d", latest, known)
	}
	for _, m := range ms {
		if slices.Contains(done, int32(m.Version)) {
			continue
		}
		err := pgx.BeginFunc(ctx, c, func(tx pgx.Tx) error {
			// No arguments: pgx sends it as a simple query, which may hold
			// several statements.
			if _, err := tx.Exec(ctx, m.SQL); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", m.Version, m.Name)
			return err
		})
		if err != nil {
			return applied, fmt.Errorf("postgres: migrate: %s: %w", m.Name, err)
		}
		applied = append(applied, m.Name)
		db.log.Info("postgres: applied migration", "version", m.Version, "name", m.Name)
	}
	return applied, nil
}

// unlockSession releases the session advisory lock name held on c. If that
// fails, c is closed instead, which releases the lock too, rather than
// going back to the pool still holding it.
func unlockSession(ctx context.Context, c *pgxpool.Conn, name string) {
	fctx, cancel := finishCtx(ctx)
	defer cancel()
	if _, err := c.Exec(fctx, "SELECT pg_advisory_unlock("+lockKey(name)+")"); err != nil {
		c.Conn().Close(fctx) //nolint:errcheck // the pool discards it either way
	}
}

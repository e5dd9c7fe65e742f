package postgres

import (
	"cmp"
	"context"
	"embed"
	"fmt"
	"io/fs"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// migrationFiles holds the schema, one file per version. A file is named
// NNNN_description.sql; once released it must never change, since a
// database records only the version it applied, not its content.
//
//go:embed migrations/*.sql
var migrationFiles embed.FS

// migration is one schema version.
type migration struct {
	version int
	name    string
	sql     string
}

// loadMigrations returns the migrations in fsys in version order.
func loadMigrations(fsys fs.FS) ([]migration, error) {
	names, err := fs.Glob(fsys, "migrations/*.sql")
	if err != nil {
		return nil, err
	}
	var ms []migration
	for _, name := range names {
		base := strings.TrimSuffix(strings.TrimPrefix(name, "migrations/"), ".sql")
		num, _, _ := strings.Cut(base, "_")
		v, err := strconv.Atoi(num)
		if err != nil || v <= 0 {
			return nil, fmt.Errorf("migration %s: name must start with a positive version number", name)
		}
		b, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, err
		}
		ms = append(ms, migration{version: v, name: base, sql: string(b)})
	}
	if len(ms) == 0 {
		return nil, fmt.Errorf("no migrations")
	}
	slices.SortFunc(ms, func(a, b migration) int { return cmp.Compare(a.version, b.version) })
	for i := 1; i < len(ms); i++ {
		if ms[i].version == ms[i-1].version {
			return nil, fmt.Errorf("migrations %s and %s have the same version", ms[i-1].name, ms[i].name)
		}
	}
	return ms, nil
}

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
	ms, err := loadMigrations(migrationFiles)
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
	if latest, known := slices.Max(append(done, 0)), ms[len(ms)-1].version; int(latest) > known {
		return nil, fmt.Errorf("postgres: migrate: database is at schema version %d, this build knows up to %d", latest, known)
	}
	for _, m := range ms {
		if slices.Contains(done, int32(m.version)) {
			continue
		}
		err := pgx.BeginFunc(ctx, c, func(tx pgx.Tx) error {
			// No arguments: pgx sends it as a simple query, which may hold
			// several statements.
			if _, err := tx.Exec(ctx, m.sql); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", m.version, m.name)
			return err
		})
		if err != nil {
			return applied, fmt.Errorf("postgres: migrate: %s: %w", m.name, err)
		}
		applied = append(applied, m.name)
		db.log.Info("postgres: applied migration", "version", m.version, "name", m.name)
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

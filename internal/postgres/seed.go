package postgres

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/dynaprice/dynaprice/internal/catalog"
	"github.com/dynaprice/dynaprice/internal/pricing"
	"github.com/dynaprice/dynaprice/internal/retry"
	"github.com/jackc/pgx/v5"
)

// SeedCatalog writes ps, in order, as the catalog, and the setting
// default_strategy when defaultStrategy is not empty, but only if the
// catalog is empty; seeded reports whether it was. Engines starting
// together may all call it: the check and the inserts run in one
// transaction under an advisory lock, so exactly one of them seeds. ps is
// taken as valid (see catalog.Parse).
//
// Products a running engine commits meanwhile do not take that lock; a
// product both write keeps the engine's version.
func (db *DB) SeedCatalog(ctx context.Context, ps []pricing.Product, defaultStrategy string) (seeded bool, err error) {
	if len(ps) == 0 {
		return false, nil
	}
	err = pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock("+lockKey("seed")+")"); err != nil {
			return fmt.Errorf("lock: %w", err)
		}
		// Read after the lock, in a statement of its own: under read
		// committed it sees what a seeder that held the lock committed.
		var exists bool
		if err := tx.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM products)").Scan(&exists); err != nil {
			return err
		}
		if exists {
			return nil
		}
		var c productCols
		for i := range ps {
			c.add(&ps[i])
		}
		if _, err := tx.Exec(ctx, insertProducts+" ON CONFLICT (id) DO NOTHING", c.args()...); err != nil {
			return fmt.Errorf("products: %w", err)
		}
		if defaultStrategy != "" {
			if _, err := tx.Exec(ctx, `INSERT INTO settings (key, value) VALUES ('default_strategy', $1)
				ON CONFLICT (key) DO UPDATE SET value = excluded.value`, defaultStrategy); err != nil {
				return fmt.Errorf("settings: %w", err)
			}
		}
		seeded = true
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("postgres: seed catalog: %w", err)
	}
	return seeded, nil
}

// MigrateAndSeed applies migrations (waiting while the database is down)
// and gives an empty catalog the file's products, or the demo's.
func (db *DB) MigrateAndSeed(ctx context.Context, f *catalog.File, log *slog.Logger) (seeded bool, err error) {
	applied, err := retry.Value(ctx, retry.Default, db.Migrate, func(err error, wait time.Duration) {
		log.Warn("cannot apply PostgreSQL migrations yet; retrying", "err", err, "in", wait)
	})
	if err != nil {
		return false, err
	}
	for _, m := range applied {
		log.Info("migration applied", "migration", m)
	}
	src := f
	if src == nil {
		d := catalog.Demo()
		src = &d
	}
	seeded, err = db.SeedCatalog(ctx, src.Products, src.DefaultStrategy)
	if err != nil {
		return false, err
	}
	if seeded {
		log.Info("empty catalog seeded", "products", len(src.Products), "from_file", f != nil)
	}
	return seeded, nil
}

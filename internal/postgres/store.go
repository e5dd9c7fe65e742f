// Package postgres is the PostgreSQL implementation of the engine's storage
// port (engine.Store), for scale-out mode: several engine processes share
// one database, each owning some partitions of the input stream. A
// partition is a slot here; a Store works for one slot.
//
// The catalog and settings are shared by all slots. Product states belong
// to whichever slot owns the product; remembered event ids and the input
// position (Batch.Cursor) are kept per slot.
//
// Exactly once across processes rests on the checkpoints table: every
// Commit increments its slot's generation in the same transaction as the
// state, history and cursor, on the condition that the generation is still
// the one the Store loaded. A process that has lost the slot to another
// without noticing (paused by a long GC, cut off by a network partition)
// finds the generation moved: its commit is rolled back and fails with
// ErrFenced, so it can never overwrite the new owner's state or cursor.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/dynaprice/dynaprice/internal/engine"
	"github.com/dynaprice/dynaprice/internal/retry"
)

var _ engine.Store = (*Store)(nil)

// ErrFenced is the error (wrapped) of a Commit or PruneSeen refused because
// another Store committed for the same slot since this one loaded: the slot
// has a new owner, or this Store's previous commit succeeded without it
// hearing so. Nothing of the refused call is written; the Store must Load
// again before committing. It is engine.ErrFenced itself, so that the
// engine's Kafka engine recognises it.
var ErrFenced = engine.ErrFenced

const (
	// defaultMaxConns suits one engine: Commit and Load use one connection
	// at a time, the rest serve History and the other reads.
	defaultMaxConns = 8
	// defaultConnectTimeout bounds a connection attempt when the URL sets
	// no connect_timeout, so that an unreachable server fails Open with an
	// error instead of hanging on a context without a deadline.
	defaultConnectTimeout = 10 * time.Second
	// finishTimeout bounds the statements that end a transaction (COMMIT,
	// ROLLBACK, unlocking), which run even when the caller's context is
	// done; see Store.commit.
	finishTimeout = 10 * time.Second
)

// Config configures Open.
type Config struct {
	// URL is the connection string (postgres://user:pass@host:port/db?...),
	// as in DATABASE_URL. Parameters pgx does not know are sent to the
	// server as run-time settings.
	URL string
	// Schema, when set, is the only entry of every connection's
	// search_path and is created if missing, so all tables live in it.
	// Deployments normally leave it empty; tests give each store its own.
	Schema string
	// MaxConns bounds the connection pool; 0 means 8.
	MaxConns int32
	// Logger receives migration messages; nil discards them.
	Logger *slog.Logger
}

// DB is a connection pool to the database. It migrates and seeds the
// schema, serves the reads the HTTP API makes, and hands out a Store per
// slot. Its methods are safe for concurrent use.
type DB struct {
	pool *pgxpool.Pool
	log  *slog.Logger
	// retaining is set while this process runs the history retention
	// (PruneHistory); warned remembers what it warned about once.
	retaining atomic.Bool
	warnMu    sync.Mutex
	warned    map[string]bool
}

// Open connects to cfg.URL and checks that the server answers. It does not
// migrate: call Migrate.
func Open(ctx context.Context, cfg Config) (*DB, error) {
	if strings.TrimSpace(cfg.URL) == "" {
		return nil, errors.New("postgres: open: URL is required")
	}
	// Longer names would be truncated by the server, and two different
	// schemas could silently become one.
	if len(cfg.Schema) > 63 || strings.ContainsRune(cfg.Schema, 0) {
		return nil, fmt.Errorf("postgres: open: schema %q: want at most 63 bytes and no NUL", cfg.Schema)
	}
	if cfg.MaxConns < 0 {
		return nil, fmt.Errorf("postgres: open: MaxConns %d is negative", cfg.MaxConns)
	}
	pc, err := pgxpool.ParseConfig(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("postgres: open: %w", err)
	}
	pc.MaxConns = defaultMaxConns
	if cfg.MaxConns > 0 {
		pc.MaxConns = cfg.MaxConns
	}
	if pc.ConnConfig.ConnectTimeout == 0 {
		pc.ConnConfig.ConnectTimeout = defaultConnectTimeout
	}
	params := pc.ConnConfig.RuntimeParams
	// A commit must be durable when it returns, whatever the server's
	// default: the cursor in it tells the stream where to resume, and
	// updates published from it may already be seen. A URL may still ask
	// for more (remote_apply) or, knowingly, less.
	if _, ok := params["synchronous_commit"]; !ok {
		params["synchronous_commit"] = "on"
	}
	if cfg.Schema != "" {
		params["search_path"] = pgx.Identifier{cfg.Schema}.Sanitize()
	}
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("postgres: open: %w", err)
	}
	db := &DB{pool: pool, log: cfg.Logger}
	if db.log == nil {
		db.log = slog.New(slog.DiscardHandler)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		var pe *pgconn.PgError
		if errors.As(err, &pe) && permanentOpenError[pe.Code] != "" {
			// The server answered: waiting will not make the database
			// appear or the password right.
			return nil, retry.Permanent(fmt.Errorf("postgres: open: database %q on %s:%d: %s (%s): %w",
				pc.ConnConfig.Database, pc.ConnConfig.Host, pc.ConnConfig.Port, permanentOpenError[pe.Code], pe.Code, err))
		}
		return nil, fmt.Errorf("postgres: open: database %q on %s:%d is unreachable: %w",
			pc.ConnConfig.Database, pc.ConnConfig.Host, pc.ConnConfig.Port, err)
	}
	if cfg.Schema != "" {
		if err := db.createSchema(ctx, cfg.Schema); err != nil {
			pool.Close()
			return nil, fmt.Errorf("postgres: open: %w", err)
		}
	}
	return db, nil
}

// permanentOpenError names the SQLSTATEs with which a reachable server
// refuses a connection for good, until someone changes the configuration.
var permanentOpenError = map[string]string{
	"3D000": "the database does not exist (create it, or fix DATABASE_URL)",
	"28P01": "the password was refused",
	"28000": "the server refuses this user or connection (pg_hba.conf)",
	"42501": "the user may not connect",
}

// createSchema creates schema unless it exists. Two processes starting at
// once may both find it missing; the loser's duplicate error is success.
func (db *DB) createSchema(ctx context.Context, schema string) error {
	_, err := db.pool.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+pgx.Identifier{schema}.Sanitize())
	var pe *pgconn.PgError
	if errors.As(err, &pe) && (pe.Code == "42P06" || pe.Code == "23505") { // duplicate_schema, unique_violation
		return nil
	}
	if err != nil {
		return fmt.Errorf("create schema %q: %w", schema, err)
	}
	return nil
}

// Close closes every connection. Stores from db must not be used after.
func (db *DB) Close() { db.pool.Close() }

// Ping checks that the database answers.
func (db *DB) Ping(ctx context.Context) error {
	if err := db.pool.Ping(ctx); err != nil {
		return fmt.Errorf("postgres: ping: %w", unreachable(err))
	}
	return nil
}

// Store returns the store for slot, seeing the products owns reports true
// for (all of them when owns is nil). Store does no I/O; the slot's
// checkpoint row is created by Load.
func (db *DB) Store(slot int, owns func(productID string) bool) *Store {
	return &Store{db: db, slot: slot, owns: owns}
}

// Store is the engine.Store of one slot. Its methods are safe for
// concurrent use; Load, Commit and PruneSeen are serialized.
type Store struct {
	db   *DB
	slot int
	owns func(string) bool

	// mu serializes Load, Commit and PruneSeen, and guards gen.
	mu sync.Mutex
	// gen is the slot's generation as of this Store's last Load or Commit,
	// the one its next Commit expects; known is false until then.
	gen   int64
	known bool
}

// Slot returns the slot s works for.
func (s *Store) Slot() int { return s.slot }

// Close does nothing: the DB owns the connections.
func (s *Store) Close() error { return nil }

// History returns productID's price changes; see DB.History.
func (s *Store) History(ctx context.Context, productID string, limit int) ([]engine.HistoryRow, error) {
	return s.db.History(ctx, productID, limit)
}

// HistoryPage returns productID's changes and hourly summaries; see
// DB.HistoryPage.
func (s *Store) HistoryPage(ctx context.Context, productID string, limit, hourly int) (engine.HistoryPage, error) {
	return s.db.HistoryPage(ctx, productID, limit, hourly)
}

// OverrideAudit returns productID's overrides; see DB.OverrideAudit.
func (s *Store) OverrideAudit(ctx context.Context, productID string, limit int) ([]engine.OverrideRecord, error) {
	return s.db.OverrideAudit(ctx, productID, limit)
}

// finishCtx returns a context for the statements that end a transaction:
// free of ctx's cancellation, so that they run and their outcome is known,
// but bounded.
func finishCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), finishTimeout)
}

// rollback ends tx unless it was committed. A connection broken by a
// cancelled context fails the ROLLBACK; the pool then discards it and the
// server rolls back when it sees the session end.
func rollback(ctx context.Context, tx pgx.Tx) {
	fctx, cancel := finishCtx(ctx)
	defer cancel()
	tx.Rollback(fctx) //nolint:errcheck // ErrTxClosed after Commit; otherwise secondary to the cause
}

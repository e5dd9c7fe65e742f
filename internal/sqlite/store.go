// Package sqlite is the embedded implementation of the engine's storage port
// (engine.Store): one SQLite file, written through modernc.org/sqlite, a
// cgo-free build of SQLite, so that `dynaprice serve` stays a single static
// binary.
//
// The store holds two database/sql pools on the same file. Writes (Commit,
// PruneSeen, migrations) go through a pool of exactly one connection, which
// is SQLite's reality anyway (one writer at a time) and lets the hot insert
// statements be prepared once and reused by every commit. Reads (Load,
// History, OverrideAudit) go through a separate pool of query-only
// connections; in WAL mode they read the last committed snapshot without
// waiting for, or delaying, a commit in progress.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"

	"github.com/dynaprice/dynaprice/internal/engine"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

var _ engine.Store = (*Store)(nil)

// busyTimeoutMS bounds how long a connection waits for a lock held by
// another connection (a reader finishing a checkpoint, another process
// opening the file) before failing with SQLITE_BUSY.
const busyTimeoutMS = 10000

// tuning holds the knobs BenchmarkCommit was used to choose; see
// defaultTuning for the values and why.
type tuning struct {
	// pageSize applies only when the file is created.
	pageSize int
	// writeCacheKiB is the writer's page cache, readCacheKiB each reader's.
	writeCacheKiB, readCacheKiB int
	// walAutocheckpoint is the WAL size, in pages, past which a commit also
	// copies the log back into the database file.
	walAutocheckpoint int
	// journalSizeLimit truncates the WAL file after a checkpoint resets it.
	journalSizeLimit int
	// Rows per multi-row INSERT; powers of two.
	historyRows, seenRows, stateRows int
}

func defaultTuning() tuning {
	return tuning{
		pageSize:          4096,
		writeCacheKiB:     64 << 10,
		readCacheKiB:      16 << 10,
		walAutocheckpoint: 1000,
		journalSizeLimit:  64 << 20,
		historyRows:       256,
		seenRows:          256,
		stateRows:         32,
	}
}

// Store is the SQLite implementation of engine.Store. Its methods are safe
// for concurrent use; writes are serialized.
type Store struct {
	cfg  Config
	tun  tuning
	path string // absolute
	log  *slog.Logger

	w *sql.DB // exactly one connection: all writes
	r *sql.DB // query-only connections: Load, History, OverrideAudit

	// wmu serializes the writers of w and guards ws. The engine already
	// calls Commit from one goroutine; the mutex keeps a second caller
	// (PruneSeen from a timer, say) from interleaving statements.
	wmu sync.Mutex
	ws  *writeStmts

	closeOnce sync.Once
	closeErr  error
}

// Open opens, creating if missing, the database at cfg.Path, migrates it to
// the current schema and prepares the statements Commit uses.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	return open(ctx, cfg, defaultTuning())
}

func open(ctx context.Context, cfg Config, tun tuning) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	syncLevel, _ := cfg.synchronous()
	path, err := filepath.Abs(cfg.Path)
	if err != nil {
		return nil, fmt.Errorf("sqlite: open: %w", err)
	}
	if dir := filepath.Dir(path); dir != "" {
		if fi, err := os.Stat(dir); err != nil {
			return nil, fmt.Errorf("sqlite: open: %w", err)
		} else if !fi.IsDir() {
			return nil, fmt.Errorf("sqlite: open: %s is not a directory", dir)
		}
	}
	s := &Store{cfg: cfg, tun: tun, path: path, log: cfg.logger()}

	// The writer. _txlock=immediate makes BEGIN take the write lock at once,
	// so a transaction can never fail half-way with SQLITE_BUSY when it
	// first writes. page_size is a _pragma so that it runs before the
	// shorthand _journal_mode: a new file is created with it, and it is a
	// no-op on an existing one.
	s.w, err = sql.Open("sqlite", dsn(path, url.Values{
		"_pragma": {
			"busy_timeout(" + strconv.Itoa(busyTimeoutMS) + ")",
			"page_size(" + strconv.Itoa(tun.pageSize) + ")",
			"cache_size(-" + strconv.Itoa(tun.writeCacheKiB) + ")",
			"temp_store(memory)",
			"wal_autocheckpoint(" + strconv.Itoa(tun.walAutocheckpoint) + ")",
			"journal_size_limit(" + strconv.Itoa(tun.journalSizeLimit) + ")",
		},
		"_foreign_keys": {"1"},
		"_journal_mode": {"WAL"},
		"_synchronous":  {syncLevel},
		"_txlock":       {"immediate"},
	}))
	if err != nil {
		return nil, fmt.Errorf("sqlite: open: %w", err)
	}
	s.w.SetMaxOpenConns(1)
	s.w.SetMaxIdleConns(1)
	s.w.SetConnMaxLifetime(0)
	s.w.SetConnMaxIdleTime(0)

	if err := s.initWriter(ctx); err != nil {
		s.w.Close()
		return nil, err
	}

	// The readers, opened after the writer has created the file and put it
	// in WAL mode. query_only turns an accidental write through this pool
	// into an error instead of a second writer contending for the lock.
	s.r, err = sql.Open("sqlite", dsn(path, url.Values{
		"_pragma": {
			"busy_timeout(" + strconv.Itoa(busyTimeoutMS) + ")",
			"cache_size(-" + strconv.Itoa(tun.readCacheKiB) + ")",
			"temp_store(memory)",
		},
		"_foreign_keys": {"1"},
		"_query_only":   {"1"},
	}))
	if err != nil {
		s.closeWriter()
		return nil, fmt.Errorf("sqlite: open: %w", err)
	}
	// Each connection has its own page cache and libc state; bound the pool
	// so that a burst of API reads cannot open connections without limit.
	n := max(4, runtime.GOMAXPROCS(0))
	s.r.SetMaxOpenConns(n)
	s.r.SetMaxIdleConns(n)
	if err := s.r.PingContext(ctx); err != nil {
		s.r.Close()
		s.closeWriter()
		return nil, fmt.Errorf("sqlite: open: readers: %w", err)
	}
	s.log.Debug("sqlite: opened", "path", path, "synchronous", syncLevel)
	return s, nil
}

// initWriter checks the writer's connection, migrates the schema and
// prepares the write statements.
func (s *Store) initWriter(ctx context.Context) error {
	var mode string
	if err := s.w.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		return fmt.Errorf("sqlite: open: %w", err)
	}
	if mode != "wal" {
		// WAL is what lets readers run during a commit; without it the
		// HTTP API would stall behind every batch.
		return fmt.Errorf("sqlite: open: journal_mode is %q, not wal (is the file on a network file system?)", mode)
	}
	if err := migrate(ctx, s.w, s.log); err != nil {
		return err
	}
	ws, err := prepareWriteStmts(ctx, s.w, s.tun)
	if err != nil {
		return fmt.Errorf("sqlite: open: %w", err)
	}
	s.ws = ws
	return nil
}

// dsn builds a "file:" URI for path, so that a '?' or '#' in the path is
// escaped instead of being taken for the start of the parameters.
func dsn(path string, params url.Values) string {
	u := url.URL{Path: filepath.ToSlash(path)}
	return "file:" + u.EscapedPath() + "?" + params.Encode()
}

// Path returns the absolute path of the database file.
func (s *Store) Path() string { return s.path }

// Close closes both pools. The last connection to close checkpoints the
// WAL into the database file. Close is idempotent; it must not be called
// while a Commit is running.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		var errs []error
		if s.r != nil {
			errs = append(errs, s.r.Close())
		}
		errs = append(errs, s.closeWriter())
		if err := errors.Join(errs...); err != nil {
			s.closeErr = fmt.Errorf("sqlite: close: %w", err)
		}
	})
	return s.closeErr
}

// closeWriter releases the prepared statements and closes the writer.
func (s *Store) closeWriter() error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	var errs []error
	if s.ws != nil {
		errs = append(errs, s.ws.close())
		s.ws = nil
	}
	errs = append(errs, s.w.Close())
	return errors.Join(errs...)
}

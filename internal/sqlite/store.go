// Package sqlite is the embedded implementation of the engine's storage port
// (engine.Store): one SQLite file, written through modernc.org/sqlite, a
// cgo-free build of SQLite, so that `dynaprice serve` stays a single static
// binary.
//
// The store opens the file three times:
//
//   - the writer, a pool of exactly one connection that the Store holds for
//     its whole life. SQLite allows one writer at a time anyway; holding the
//     connection lets Commit's statements be prepared once and reused.
//   - the readers, a bounded pool of query-only connections for Load,
//     History and OverrideAudit. In WAL mode they read the last committed
//     snapshot without waiting for, or delaying, a commit in progress.
//   - the checkpointer, one connection a background goroutine uses to copy
//     the write-ahead log back into the database file while the writer
//     goes on committing (see checkpoint.go).
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
	"sync/atomic"
	"time"

	"github.com/dynaprice/dynaprice/internal/engine"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

var _ engine.Store = (*Store)(nil)

// busyTimeoutMS bounds how long a connection waits for a lock held by
// another connection (another process opening the file, a checkpoint
// finishing) before failing with SQLITE_BUSY.
const busyTimeoutMS = 10000

// tuning holds the knobs chosen by measuring BenchmarkCommit; see
// defaultTuning for the values and the reasons. Tests and benchmarks open
// stores with other values through open.
type tuning struct {
	pageSize                    int
	writeCacheKiB, readCacheKiB int
	walAutocheckpoint           int
	journalSizeLimit            int
	checkpointEvery             time.Duration
	historyRows, seenRows       int
	stateRows                   int
	retainRows                  int
}

func defaultTuning() tuning {
	return tuning{
		// Applies only when the file is created. Larger pages mean fewer
		// b-tree splits and fewer write system calls for the same log. The
		// hot tables are written at a few points each (the right edge of
		// seen_hashes, and since 0006 of price_history and state_log), so larger
		// pages do not multiply the bytes a commit writes. Measured, 16 KiB
		// pages beat 4 KiB and 64 KiB ones by 5-10% in BenchmarkCommit, and
		// 4 KiB ones by a quarter with batches spread over 10,000 products.
		pageSize: 16384,
		// The writer's cache holds the pages the inserts keep coming back
		// to. 32 and 64 MiB measured 5-15% slower than 8-16 MiB for
		// BenchmarkCommit's batches (they only add page allocations while
		// they fill), though 64 MiB was faster for batches spread over
		// 10,000 products, whose history lands on many more pages.
		writeCacheKiB: 16 << 10,
		readCacheKiB:  8 << 10,
		// The writer itself checkpoints once the log is this many pages
		// (32 MiB) long; see checkpointer for why it still does.
		walAutocheckpoint: 2048,
		// Truncate the log file after a reset, so that a burst does not
		// leave a huge file behind.
		journalSizeLimit: 32 << 20,
		// The background checkpointer runs at most this often: each run
		// ends with a sync of the database file.
		checkpointEvery: 50 * time.Millisecond,
		// Rows per multi-row INSERT (powers of two). 512 measured no
		// faster than 256.
		historyRows: 256,
		seenRows:    256,
		stateRows:   256,
		// Rows of price_history one step of the history retention rolls
		// up and deletes, in one transaction that a commit may wait for.
		// At worst (every change a summary of its own) a step costs about
		// 11 µs a row plus a transaction's sync: 256 rows measured 4 ms a
		// step (p50; 512: 6 ms, 2,048: 23 ms), and commits beside a
		// roll-up of a large backlog a p99 of 10 ms (512: 16 ms) for
		// 16,000 changes rolled up a second (512: 24,000).
		retainRows: 256,
	}
}

// Store is the SQLite implementation of engine.Store. Its methods are safe
// for concurrent use; writes are serialized.
type Store struct {
	cfg  Config
	tun  tuning
	path string // absolute
	log  *slog.Logger

	w    *sql.DB // the writer pool: one connection, held as wc
	r    *sql.DB // query-only connections
	ckpt *checkpointer

	// wmu serializes the users of wc and guards ws. The engine calls Commit
	// from one goroutine; the mutex keeps another caller (PruneSeen from a
	// timer, say) from interleaving statements with it.
	wmu sync.Mutex
	wc  *sql.Conn
	ws  *writeStmts
	// logs indexes the appended tables (log.go).
	logs logState
	// fromSnapshot says whether the last Load read the snapshot of a clean
	// shutdown (snapshot.go) rather than the tables.
	fromSnapshot bool
	// tagged says that SaveSnapshot tagged a snapshot that the next
	// Commit must untag.
	tagged bool
	// rollGen counts the history retention's steps that changed the
	// summaries, twice each: it is odd while one commits (HistoryPage).
	rollGen atomic.Uint64
	// retainMu lets one PruneHistory run at a time.
	retainMu sync.Mutex

	closeOnce sync.Once
	closeErr  error
}

// Open opens, creating if missing, the database at cfg.Path, migrates it to
// the current schema and prepares the statements Commit uses.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	return open(ctx, cfg, defaultTuning())
}

func open(ctx context.Context, cfg Config, tun tuning) (_ *Store, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	syncLevel, _ := cfg.synchronous()
	path, err := filepath.Abs(cfg.Path)
	if err != nil {
		return nil, fmt.Errorf("sqlite: open: %w", err)
	}
	if fi, err := os.Stat(filepath.Dir(path)); err != nil {
		return nil, fmt.Errorf("sqlite: open: %w", err)
	} else if !fi.IsDir() {
		return nil, fmt.Errorf("sqlite: open: %s is not a directory", filepath.Dir(path))
	}
	s := &Store{cfg: cfg, tun: tun, path: path, log: cfg.logger()}
	defer func() {
		if err != nil {
			s.closeAll() //nolint:errcheck // reporting the cause instead
		}
	}()

	// The writer. _txlock=immediate makes BEGIN take the write lock at once,
	// so a transaction never fails half-way with SQLITE_BUSY. page_size is a
	// _pragma so that it runs before the shorthand _journal_mode: a new file
	// is created with it, and it is a no-op on an existing one.
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
	var mode string
	if err := s.w.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		return nil, fmt.Errorf("sqlite: open: %w", err)
	}
	if mode != "wal" {
		// WAL is what lets readers run during a commit; without it the
		// HTTP API would stall behind every batch.
		return nil, fmt.Errorf("sqlite: open: journal_mode is %q, not wal", mode)
	}
	if err := migrate(ctx, s.w, s.log); err != nil {
		return nil, err
	}
	if s.wc, err = s.w.Conn(ctx); err != nil {
		return nil, fmt.Errorf("sqlite: open: %w", err)
	}
	// Prepare now, so that a statement the schema does not support fails
	// Open rather than the first Commit.
	if err := s.withWriter(ctx, func(writeConn, *writeStmts) error { return nil }); err != nil {
		return nil, fmt.Errorf("sqlite: open: %w", err)
	}

	// The readers. query_only turns an accidental write through this pool
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
		return nil, fmt.Errorf("sqlite: open: %w", err)
	}
	// Each connection has its own page cache and libc state; bound the pool
	// so that a burst of API reads cannot open connections without limit.
	n := max(4, runtime.GOMAXPROCS(0))
	s.r.SetMaxOpenConns(n)
	s.r.SetMaxIdleConns(n)
	if err := s.r.PingContext(ctx); err != nil {
		return nil, fmt.Errorf("sqlite: open: readers: %w", err)
	}

	if s.ckpt, err = startCheckpointer(ctx, dsn(path, url.Values{
		"_pragma":      {"busy_timeout(" + strconv.Itoa(busyTimeoutMS) + ")"},
		"_synchronous": {syncLevel},
	}), tun.checkpointEvery, s.log); err != nil {
		return nil, fmt.Errorf("sqlite: open: checkpointer: %w", err)
	}
	s.log.Debug("sqlite: opened", "path", path, "synchronous", syncLevel)
	return s, nil
}

// dsn builds a "file:" URI for path, so that a '?' or '#' in the path is
// escaped instead of being taken for the start of the parameters.
func dsn(path string, params url.Values) string {
	u := url.URL{Path: filepath.ToSlash(path)}
	return "file:" + u.EscapedPath() + "?" + params.Encode()
}

// Path returns the absolute path of the database file.
func (s *Store) Path() string { return s.path }

// Close stops the checkpointer and closes every connection; the last one
// to close checkpoints the whole log into the database file. Close is
// idempotent. It waits for a Commit in progress to finish.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		if err := s.closeAll(); err != nil {
			s.closeErr = fmt.Errorf("sqlite: close: %w", err)
		}
	})
	return s.closeErr
}

func (s *Store) closeAll() error {
	var errs []error
	if s.ckpt != nil {
		errs = append(errs, s.ckpt.close())
	}
	if s.r != nil {
		errs = append(errs, s.r.Close())
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.wc != nil {
		if s.ws != nil {
			// Statements belong to the connection: finalize them on it.
			errs = append(errs, s.wc.Raw(func(any) error { return s.ws.close() }))
			s.ws = nil
		}
		errs = append(errs, s.wc.Close())
		s.wc = nil
	}
	if s.w != nil {
		errs = append(errs, s.w.Close())
	}
	return errors.Join(errs...)
}

package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dynaprice/dynaprice/internal/engine"
	"github.com/dynaprice/dynaprice/internal/engine/storetest"
	"github.com/dynaprice/dynaprice/internal/ingest"
	"github.com/dynaprice/dynaprice/internal/migrations"
	"github.com/dynaprice/dynaprice/internal/poll"
	"github.com/dynaprice/dynaprice/internal/pricing"
)

func TestStore(t *testing.T) {
	for _, sync := range []string{"full", "normal"} {
		t.Run(sync, func(t *testing.T) {
			dir := t.TempDir()
			storetest.Run(t, func(t *testing.T, name string) storetest.Store {
				s, err := Open(context.Background(), Config{Path: filepath.Join(dir, name+".db"), Synchronous: sync})
				if err != nil {
					t.Fatal(err)
				}
				return s
			})
		})
	}
}

// openTest opens a store at path and closes it when the test ends.
func openTest(t *testing.T, path string) *Store {
	t.Helper()
	s, err := Open(context.Background(), Config{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	})
	return s
}

func TestOpenCreatesFile(t *testing.T) {
	// A path with characters that mean something in a URI.
	dir := filepath.Join(t.TempDir(), "a dir?x=1#frag%20")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "new.db")
	s := openTest(t, path)
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("database file not created: %v", err)
	}
	if s.Path() != path {
		t.Errorf("Path() = %q, want %q", s.Path(), path)
	}
	ctx := context.Background()
	var mode string
	var pageSize, fk int
	if err := s.r.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		t.Fatal(err)
	}
	if err := s.r.QueryRowContext(ctx, "PRAGMA page_size").Scan(&pageSize); err != nil {
		t.Fatal(err)
	}
	if err := s.r.QueryRowContext(ctx, "PRAGMA foreign_keys").Scan(&fk); err != nil {
		t.Fatal(err)
	}
	if mode != "wal" || pageSize != defaultTuning().pageSize || fk != 1 {
		t.Errorf("journal_mode=%s page_size=%d foreign_keys=%d, want wal %d 1", mode, pageSize, fk, defaultTuning().pageSize)
	}
	// Nothing else was created next to the file but SQLite's own.
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), "new.db") {
			t.Errorf("unexpected file %q next to the database", e.Name())
		}
	}
}

func TestOpenErrors(t *testing.T) {
	ctx := context.Background()
	if _, err := Open(ctx, Config{Path: filepath.Join(t.TempDir(), "missing", "x.db")}); err == nil {
		t.Error("Open in a missing directory succeeded")
	}
	notDB := filepath.Join(t.TempDir(), "garbage.db")
	if err := os.WriteFile(notDB, []byte(strings.Repeat("this is not a database ", 100)), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(ctx, Config{Path: notDB}); err == nil {
		t.Error("Open of a file that is not a database succeeded")
	}
}

func TestSynchronous(t *testing.T) {
	for _, c := range []struct {
		cfg  string
		want int
	}{{"", 2}, {"full", 2}, {"FULL", 2}, {"normal", 1}} {
		s, err := Open(context.Background(), Config{Path: filepath.Join(t.TempDir(), "s.db"), Synchronous: c.cfg})
		if err != nil {
			t.Fatal(err)
		}
		var got int
		s.wmu.Lock()
		err = s.wc.QueryRowContext(context.Background(), "PRAGMA synchronous").Scan(&got)
		s.wmu.Unlock()
		if err != nil {
			t.Fatal(err)
		}
		if got != c.want {
			t.Errorf("Synchronous %q: PRAGMA synchronous = %d, want %d", c.cfg, got, c.want)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	for _, c := range []struct {
		cfg Config
		ok  bool
	}{
		{Config{Path: "x.db"}, true},
		{Config{Path: "/var/lib/dynaprice/x.db", Synchronous: "normal"}, true},
		{Config{Path: "x.db", Synchronous: "Full"}, true},
		{Config{}, false},
		{Config{Path: "  "}, false},
		{Config{Path: " x.db"}, false},
		{Config{Path: ":memory:"}, false},
		{Config{Path: "file:x.db?mode=ro"}, false},
		{Config{Path: "x\x00.db"}, false},
		{Config{Path: "x.db", Synchronous: "off"}, false},
		{Config{Path: "x.db", Synchronous: "extra"}, false},
	} {
		err := c.cfg.Validate()
		if (err == nil) != c.ok {
			t.Errorf("%+v.Validate() = %v, want ok=%v", c.cfg, err, c.ok)
		}
		if !c.ok {
			if s, err := Open(context.Background(), c.cfg); err == nil {
				s.Close()
				t.Errorf("Open(%+v) succeeded, want the validation error", c.cfg)
			}
		}
	}
}

func TestMigrationsIdempotent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.db")
	ms, err := migrations.Load(migrationFiles)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i := range 3 {
		s, err := Open(ctx, Config{Path: path})
		if err != nil {
			t.Fatalf("open %d: %v", i, err)
		}
		if i == 0 {
			if err := s.Commit(ctx, &engine.Batch{Products: []pricing.Product{{ID: "p", BasePrice: 1}}}); err != nil {
				t.Fatal(err)
			}
		}
		var n, latest int
		if err := s.r.QueryRowContext(ctx, "SELECT count(*), max(version) FROM schema_migrations").Scan(&n, &latest); err != nil {
			t.Fatal(err)
		}
		if n != len(ms) || latest != ms[len(ms)-1].Version {
			t.Errorf("open %d: %d migrations recorded up to version %d, want %d up to %d", i, n, latest, len(ms), ms[len(ms)-1].Version)
		}
		snap, err := s.Load(ctx)
		if err != nil || len(snap.Products) != 1 {
			t.Errorf("open %d: Load = %d products, %v; want the one committed", i, len(snap.Products), err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}

	// A database migrated by a newer build is refused, not half-understood.
	s := openTest(t, path)
	s.wmu.Lock()
	_, err = s.wc.ExecContext(ctx, "INSERT INTO schema_migrations (version, name, applied_at) VALUES (9999, 'future', 0)")
	s.wmu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(ctx, Config{Path: path}); err == nil || !strings.Contains(err.Error(), "9999") {
		t.Errorf("Open of a newer schema: %v, want an error naming version 9999", err)
	}
}

func TestLoadMigrationsRejectsBadNames(t *testing.T) {
	ms, err := migrations.Load(migrationFiles)
	if err != nil || len(ms) == 0 || ms[0].Version != 1 {
		t.Fatalf("embedded migrations: %v, %+v", err, ms)
	}
	for i := 1; i < len(ms); i++ {
		if ms[i].Version <= ms[i-1].Version {
			t.Errorf("migrations out of order: %s after %s", ms[i].Name, ms[i-1].Name)
		}
	}
}

func TestReadersCannotWrite(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "r.db"))
	if _, err := s.r.ExecContext(context.Background(), "INSERT INTO settings (key, value) VALUES ('k', 'v')"); err == nil {
		t.Error("a write through the reader pool succeeded")
	}
}

// TestQueryPlans guards the indexes the hot reads depend on: none of them
// may sort or scan a whole table.
func TestQueryPlans(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "p.db"))
	for _, q := range []string{
		historyQuery,
		hourlyQuery,
		`SELECT override_price FROM overrides WHERE product_id = 'a' ORDER BY created_at DESC, id DESC LIMIT 10`,
		`SELECT seen_at, hash FROM seen_hashes ORDER BY seen_at, hash`,
		`SELECT seen_at, event_id FROM seen_events ORDER BY seen_at, event_id`,
	} {
		var args []any
		if q == historyQuery || q == hourlyQuery {
			args = []any{1, 10, "a"}
		}
		rows, err := s.r.QueryContext(context.Background(), "EXPLAIN QUERY PLAN "+q, args...)
		if err != nil {
			t.Fatal(err)
		}
		var plan []string
		for rows.Next() {
			var id, parent, notused int
			var detail string
			if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, detail)
		}
		rows.Close()
		p := strings.Join(plan, "; ")
		if strings.Contains(p, "TEMP B-TREE") || (strings.Contains(q, "WHERE") && !strings.Contains(p, "USING")) {
			t.Errorf("plan for %s:\n%s", q, p)
		}
	}
}

func TestClosed(t *testing.T) {
	s, err := Open(context.Background(), Config{Path: filepath.Join(t.TempDir(), "c.db")})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	err = s.Commit(context.Background(), &engine.Batch{Settings: map[string]string{"k": "v"}})
	if err == nil {
		t.Error("Commit after Close succeeded")
	}
	if err := s.PruneSeen(context.Background(), 0, 1); err == nil {
		t.Error("PruneSeen after Close succeeded")
	}
	if _, err := s.History(context.Background(), "a", 1); err == nil {
		t.Error("History after Close succeeded")
	}
}

// TestSeenDuplicatesAcrossBatches checks that an id stored twice, which the
// schema allows (see the seen_hashes migration), is loaded with both times,
// oldest first (the engine keeps the first), and that pruning by age
// removes the older copy only.
func TestSeenDuplicatesAcrossBatches(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "d.db"))
	ctx := context.Background()
	x, y, z := engine.EventHash("x"), engine.EventHash("y"), engine.EventHash("z")
	for _, b := range []*engine.Batch{
		{Seen: []engine.SeenID{{Hash: x, At: 10}, {Hash: y, At: 11}}},
		{Seen: []engine.SeenID{{Hash: x, At: 20}, {Hash: z, At: 21}}},
	} {
		if err := s.Commit(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	snap, err := s.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []engine.SeenID{{Hash: x, At: 10}, {Hash: y, At: 11}, {Hash: x, At: 20}, {Hash: z, At: 21}}
	if !slices.Equal(snap.Seen, want) {
		t.Fatalf("Seen = %+v, want %+v", snap.Seen, want)
	}
	if err := s.PruneSeen(ctx, 15, 100); err != nil {
		t.Fatal(err)
	}
	if snap, err = s.Load(ctx); err != nil {
		t.Fatal(err)
	}
	if want = want[2:]; !slices.Equal(snap.Seen, want) {
		t.Errorf("Seen after pruning = %+v, want %+v", snap.Seen, want)
	}
}

// commitMany commits n batches of rows history rows and rows event ids.
func commitMany(t *testing.T, s *Store, n, rows int) {
	t.Helper()
	for i := range n {
		b := &engine.Batch{}
		for j := range rows {
			at := int64(i*rows + j)
			b.History = append(b.History, engine.HistoryRow{ProductID: "a", At: at, Version: uint64(at + 1)})
			b.Seen = append(b.Seen, engine.SeenID{Hash: engine.EventHash(fmt.Sprintf("event-%012d", at)), At: at})
		}
		if err := s.Commit(context.Background(), b); err != nil {
			t.Fatal(err)
		}
	}
}

// TestBackgroundCheckpoint checks that the checkpointer copies the log into
// the database file without any help from the writer.
func TestBackgroundCheckpoint(t *testing.T) {
	path := filepath.Join(t.TempDir(), "b.db")
	tun := defaultTuning()
	tun.walAutocheckpoint = 0 // the writer never checkpoints
	s, err := open(context.Background(), Config{Path: path}, tun)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	commitMany(t, s, 20, 1500)
	// About 2.5 MB went into the log; until a checkpoint copies it, the
	// database file holds only the empty schema.
	poll.Until(t, 10*time.Second, "a checkpoint into the database file", func() error {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		return poll.Check(fi.Size() > 1<<20, "database file is still %d bytes", fi.Size())
	})
}

// TestWALBounded checks that the log does not grow without bound while
// commits run back to back.
func TestWALBounded(t *testing.T) {
	path := filepath.Join(t.TempDir(), "w.db")
	tun := defaultTuning()
	tun.walAutocheckpoint = 64
	s, err := open(context.Background(), Config{Path: path}, tun)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	commitMany(t, s, 40, 1500)
	fi, err := os.Stat(path + "-wal")
	if err != nil {
		t.Fatal(err)
	}
	// 40 commits of ~130 KB each; without checkpoints the log would hold
	// all of them.
	if limit := int64(3 << 20); fi.Size() > limit {
		t.Errorf("WAL is %d bytes after 40 commits, want at most %d", fi.Size(), limit)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path + "-wal"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("WAL still there after Close: %v", err)
	}
}

// TestCommitCancelledWithManyStates cancels commits whose states are
// encoded on another goroutine (see encodeStates) at random moments: each
// must be all or nothing, and, under the race detector, must not touch the
// batch after Commit returns.
func TestCommitCancelledWithManyStates(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "m.db"))
	ctx := context.Background()
	const products = 2 * parallelStates
	b := &engine.Batch{}
	for i := range products {
		b.Products = append(b.Products, pricing.Product{ID: fmt.Sprintf("p%04d", i), BasePrice: 1})
	}
	if err := s.Commit(ctx, b); err != nil {
		t.Fatal(err)
	}
	committed := 0
	for round := range 12 {
		b.Reset()
		for i := range products {
			st := pricing.State{Price: float64(round), Version: uint64(round + 1)}
			b.States = append(b.States, engine.ProductState{ID: fmt.Sprintf("p%04d", i), State: st})
		}
		for i := range 3000 {
			at := int64(round*3000 + i)
			b.History = append(b.History, engine.HistoryRow{ProductID: "p0000", At: at, Version: uint64(at + 1)})
			b.Seen = append(b.Seen, engine.SeenID{Hash: engine.EventHash(fmt.Sprintf("r%02d-%05d", round, i)), At: at})
		}
		cctx, cancel := context.WithCancel(ctx)
		go func() {
			// Cancels at a moment that moves through the commit's phases
			// from round to round: any outcome is right if all or nothing.
			time.Sleep(time.Duration(round*round*round) * time.Millisecond / 4)
			cancel()
		}()
		err := s.Commit(cctx, b)
		cancel()
		// Reuse the batch at once, as the engine does.
		b.Reset()
		snap, lerr := s.Load(ctx)
		if lerr != nil {
			t.Fatal(lerr)
		}
		if err == nil {
			committed++
		}
		if len(snap.Seen) != committed*3000 {
			t.Fatalf("round %d (err %v): %d seen ids after %d good commits", round, err, len(snap.Seen), committed)
		}
		want := 0.0
		if committed > 0 {
			want = -1 // some earlier round
		}
		if err == nil {
			want = float64(round)
		}
		for id, st := range snap.StateMap() {
			if want >= 0 && st.Price != want {
				t.Fatalf("round %d (err %v): state of %s has price %v, want %v", round, err, id, st.Price, want)
			}
		}
	}
	t.Logf("%d of 12 commits went through", committed)
}

// TestUpgradeKeepsLegacySeenIDs: a database written before migration 0004
// remembers event ids as strings in seen_events. After the upgrade they
// are loaded (hashed) with the new hashes, oldest first, so that a retry
// of an event acknowledged before the upgrade is still a duplicate; and
// they are pruned by age.
func TestUpgradeKeepsLegacySeenIDs(t *testing.T) {
	path := filepath.Join(t.TempDir(), "u.db")
	ctx := context.Background()
	// The database as the previous release left it: migrated up to 0003,
	// remembering three ids as strings.
	old, err := Open(ctx, Config{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}
	raw, err := sql.Open("sqlite", dsn(path, nil))
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		"DROP TABLE seen_hashes",
		"DELETE FROM schema_migrations WHERE version = 4",
		"INSERT INTO seen_events (seen_at, event_id) VALUES (100, 'order-1'), (200, 'order-2'), (300, 'order-3')",
	} {
		if _, err := raw.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	if err := raw.Close(); err != nil {
		t.Fatal(err)
	}

	s := openTest(t, path) // migrates
	if err := s.Commit(ctx, &engine.Batch{Seen: []engine.SeenID{{Hash: engine.EventHash("new-1"), At: 250}}}); err != nil {
		t.Fatal(err)
	}
	snap, err := s.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	h := engine.EventHash
	want := []engine.SeenID{{Hash: h("order-1"), At: 100}, {Hash: h("order-2"), At: 200}, {Hash: h("new-1"), At: 250}, {Hash: h("order-3"), At: 300}}
	if !slices.Equal(snap.Seen, want) {
		t.Fatalf("Seen after the upgrade = %+v, want %+v", snap.Seen, want)
	}

	// The engine resumed from it drops a retry of an id acknowledged
	// before the upgrade, and applies a new one.
	cfg := engine.DefaultConfig()
	m := engine.NewMachine(cfg)
	snap.Products = []pricing.Product{{ID: "PA", BasePrice: 299}}
	if _, err := m.Load(snap, 400); err != nil {
		t.Fatal(err)
	}
	var res engine.SubmitResult
	m.ApplyEvents([]ingest.Event{
		{Type: pricing.Purchase, ProductID: "PA", Quantity: 1, EventID: "order-2"},
		{Type: pricing.Purchase, ProductID: "PA", Quantity: 1, EventID: "order-4"},
	}, 400, &res)
	if res.Accepted != 2 || res.Duplicates != 1 {
		t.Errorf("a retry of order-2 and a new order-4 after the upgrade: %+v, want 2 accepted, 1 duplicate", res)
	}

	// Pruning: the strings by age; the hashes by age and count.
	if err := s.PruneSeen(ctx, 250, 1); err != nil {
		t.Fatal(err)
	}
	if snap, err = s.Load(ctx); err != nil {
		t.Fatal(err)
	}
	if want := want[2:]; !slices.Equal(snap.Seen, want) {
		t.Errorf("Seen after pruning = %+v, want %+v", snap.Seen, want)
	}
}

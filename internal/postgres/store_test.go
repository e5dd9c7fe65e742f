package postgres

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dynaprice/dynaprice/internal/engine"
	"github.com/dynaprice/dynaprice/internal/engine/storetest"
	"github.com/dynaprice/dynaprice/internal/ingest"
	"github.com/dynaprice/dynaprice/internal/migrations"
	"github.com/dynaprice/dynaprice/internal/pricing"
	"github.com/dynaprice/dynaprice/internal/retry"
	"github.com/jackc/pgx/v5"
)

// testURL returns the test server's address, or skips the test. CI sets it
// and counts skips as failures.
func testURL(t testing.TB) string {
	t.Helper()
	u := os.Getenv("DYNAPRICE_TEST_POSTGRES")
	if u == "" {
		t.Skip("DYNAPRICE_TEST_POSTGRES not set")
	}
	return u
}

// schemaName turns prefix+name into a schema name: lower case, [a-z0-9_],
// and short enough that the server does not truncate two names into one.
func schemaName(prefix, name string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(prefix + name) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	s := b.String()
	if len(s) > 63 {
		sum := sha256.Sum256([]byte(s))
		s = s[:50] + "_" + hex.EncodeToString(sum[:6])
	}
	return s
}

// dropSchema removes schema and everything in it.
func dropSchema(t testing.TB, schema string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := pgx.Connect(ctx, testURL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	// Its compatibility views (migration 0005) live in a schema of their own.
	for _, s := range []string{schema, schema + "_original"} {
		if _, err := c.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{s}.Sanitize()+" CASCADE"); err != nil {
			t.Fatal(err)
		}
	}
}

// openDB opens schema, migrated, and closes it when the test ends.
func openDB(t testing.TB, schema string) *DB {
	t.Helper()
	ctx := context.Background()
	db, err := Open(ctx, Config{URL: testURL(t), Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	if _, err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	return db
}

// freshDB opens an empty schema of the test's own.
func freshDB(t testing.TB) *DB {
	t.Helper()
	schema := schemaName("pgtest_", t.Name())
	dropSchema(t, schema)
	return openDB(t, schema)
}

// suiteStore is a Store that owns its DB, as the conformance suite wants.
type suiteStore struct {
	*Store
}

func (s suiteStore) Close() error {
	s.db.Close()
	return nil
}

func TestStore(t *testing.T) {
	url := testURL(t)
	// Each schema is dropped the first time this run opens it, so that a
	// re-run starts clean while reopening within the run sees the data.
	var mu sync.Mutex
	opened := map[string]bool{}
	storetest.Run(t, func(t *testing.T, name string) storetest.Store {
		schema := schemaName("storetest_", name)
		mu.Lock()
		first := !opened[schema]
		opened[schema] = true
		mu.Unlock()
		if first {
			dropSchema(t, schema)
		}
		ctx := context.Background()
		db, err := Open(ctx, Config{URL: url, Schema: schema})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.Migrate(ctx); err != nil {
			db.Close()
			t.Fatal(err)
		}
		return suiteStore{db.Store(0, nil)}
	})
}

// product returns a product with every field set, so that the reads the
// conformance suite does not cover (Products, Product) and SeedCatalog are
// checked for every column too.
func product(id string) pricing.Product {
	return pricing.Product{ID: id, Name: "Product " + id, BasePrice: 10, Strategy: "decay", UnitCost: 4.5,
		Guardrails: pricing.Guardrails{Floor: 5, Ceiling: 20, MaxChangePct: 10, Rounding: ".99", MinMarginPct: 12.5},
		Inventory: &pricing.InventoryPlan{PeriodStart: time.Date(2025, 6, 1, 0, 0, 0, 1, time.UTC),
			PeriodEnd: time.Date(2025, 7, 1, 0, 0, 0, 999_999_999, time.UTC), TargetSellThrough: 0.9},
		Competition: &pricing.CompetitorRule{Mode: "match"}}
}

func mustLoad(t *testing.T, s *Store) engine.Snapshot {
	t.Helper()
	snap, err := s.Load(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return snap
}

func mustCommit(t *testing.T, s *Store, b *engine.Batch) {
	t.Helper()
	if err := s.Commit(context.Background(), b); err != nil {
		t.Fatal(err)
	}
}

func ids(ps []pricing.Product) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.ID)
	}
	return out
}

// TestFence checks that of two Stores that loaded the same slot, only the
// first to commit may, and that the other's refused commit leaves nothing.
func TestFence(t *testing.T) {
	db := freshDB(t)
	ctx := context.Background()
	mustCommit(t, db.Store(0, nil), &engine.Batch{Products: []pricing.Product{product("a")}})

	a, b := db.Store(3, nil), db.Store(3, nil)
	mustLoad(t, a)
	mustLoad(t, b)
	mustCommit(t, a, &engine.Batch{Cursor: "a1", History: []engine.HistoryRow{{ProductID: "a", Price: 1, At: 1, Version: 1}}})

	zombie := &engine.Batch{
		Products:  []pricing.Product{product("z")},
		States:    []engine.ProductState{{ID: "a", State: pricing.State{Price: 99, Version: 99}}},
		History:   []engine.HistoryRow{{ProductID: "a", Price: 2, At: 2, Version: 2}},
		Seen:      []engine.SeenID{{Hash: engine.EventHash("zombie-event"), At: 2}},
		Overrides: []engine.OverrideChange{{Set: &engine.OverrideRecord{ProductID: "a", Price: 3, CreatedAt: 2}}},
		Settings:  map[string]string{"zombie": "yes"},
		Cursor:    "b1",
	}
	err := b.Commit(ctx, zombie)
	if !errors.Is(err, ErrFenced) || !errors.Is(err, engine.ErrFenced) {
		t.Fatalf("zombie Commit = %v, want ErrFenced", err)
	}
	// A commit without a cursor is fenced too, and so is pruning.
	if err := b.Commit(ctx, &engine.Batch{Seen: []engine.SeenID{{Hash: engine.EventHash("x"), At: 3}}}); !errors.Is(err, ErrFenced) {
		t.Fatalf("zombie Commit without cursor = %v, want ErrFenced", err)
	}
	if err := b.PruneSeen(ctx, 100, 0); !errors.Is(err, ErrFenced) {
		t.Fatalf("zombie PruneSeen = %v, want ErrFenced", err)
	}

	snap := mustLoad(t, db.Store(3, nil))
	if snap.Cursor != "a1" || len(snap.Seen) != 0 || snap.Settings["zombie"] != "" || snap.NumStated() != 0 {
		t.Errorf("after the zombie's commit: cursor %q, seen %v, settings %v, states %v; want a1 and nothing else",
			snap.Cursor, snap.Seen, snap.Settings, snap.States)
	}
	if got := ids(snap.Products); !slices.Equal(got, []string{"a"}) {
		t.Errorf("products %v, want [a]", got)
	}
	if h, _ := db.History(ctx, "a", 10); len(h) != 1 || h[0].Version != 1 {
		t.Errorf("history %+v, want only a's version 1", h)
	}
	if o, _ := db.OverrideAudit(ctx, "a", 10); len(o) != 0 {
		t.Errorf("overrides %+v, want none", o)
	}

	// After a fresh Load the old zombie may commit: it owns the slot again.
	if snap := mustLoad(t, b); snap.Cursor != "a1" {
		t.Errorf("Load cursor %q, want a1", snap.Cursor)
	}
	mustCommit(t, b, zombie)
	if snap := mustLoad(t, db.Store(3, nil)); snap.Cursor != "b1" || len(snap.Seen) != 1 {
		t.Errorf("after the reloaded commit: cursor %q, seen %v; want b1 and one id", snap.Cursor, snap.Seen)
	}
	// And now a, which has not reloaded, is the one fenced.
	if err := a.Commit(ctx, &engine.Batch{Cursor: "a2"}); !errors.Is(err, ErrFenced) {
		t.Fatalf("Commit of the old owner = %v, want ErrFenced", err)
	}
}

// TestFenceConcurrent has two Stores of one slot commit at once, many
// times over: each round exactly one of them gets through.
func TestFenceConcurrent(t *testing.T) {
	db := freshDB(t)
	ctx := context.Background()
	for round := range 20 {
		stores := []*Store{db.Store(1, nil), db.Store(1, nil)}
		for _, s := range stores {
			mustLoad(t, s)
		}
		errs := make([]error, len(stores))
		var wg sync.WaitGroup
		for i, s := range stores {
			wg.Go(func() {
				b := &engine.Batch{Cursor: fmt.Sprintf("r%d-s%d", round, i)}
				for j := range 500 {
					b.Seen = append(b.Seen, engine.SeenID{Hash: engine.EventHash(fmt.Sprintf("r%d-s%d-%d", round, i, j)), At: int64(round)})
				}
				errs[i] = s.Commit(ctx, b)
			})
		}
		wg.Wait()
		ok := 0
		for _, err := range errs {
			if err == nil {
				ok++
			} else if !errors.Is(err, ErrFenced) {
				t.Fatalf("round %d: %v", round, err)
			}
		}
		if ok != 1 {
			t.Fatalf("round %d: %d commits succeeded, want 1 (%v)", round, ok, errs)
		}
	}
	if n := len(mustLoad(t, db.Store(1, nil)).Seen); n != 20*500 {
		t.Errorf("%d seen ids, want %d", n, 20*500)
	}
}

// TestSlots checks that a slot's Store sees only its own products, seen ids
// and cursor, and all of the catalog-wide settings.
func TestSlots(t *testing.T) {
	db := freshDB(t)
	ctx := context.Background()
	even := func(id string) bool { return (id[len(id)-1]-'0')%2 == 0 }
	owns := []func(string) bool{even, func(id string) bool { return !even(id) }}
	var all []pricing.Product
	for i := range 6 {
		all = append(all, product(fmt.Sprintf("p%d", i)))
	}
	seeded, err := db.SeedCatalog(ctx, all, "seed")
	if err != nil || !seeded {
		t.Fatalf("SeedCatalog = %v, %v", seeded, err)
	}
	for slot := range 2 {
		s := db.Store(slot, owns[slot])
		mustLoad(t, s)
		b := &engine.Batch{Cursor: fmt.Sprintf("cursor-%d", slot), Settings: map[string]string{fmt.Sprintf("k%d", slot): "v"}}
		for _, p := range all {
			if owns[slot](p.ID) {
				b.States = append(b.States, engine.ProductState{ID: p.ID, State: pricing.State{Price: 11, Version: uint64(slot + 1)}})
			}
		}
		for j := range 3 {
			b.Seen = append(b.Seen, engine.SeenID{Hash: engine.EventHash(fmt.Sprintf("s%d-e%d", slot, j)), At: int64(j)})
		}
		mustCommit(t, s, b)
	}
	for slot := range 2 {
		s := db.Store(slot, owns[slot])
		snap := mustLoad(t, s)
		var want []string
		for _, p := range all {
			if owns[slot](p.ID) {
				want = append(want, p.ID)
			}
		}
		if got := ids(snap.Products); !slices.Equal(got, want) {
			t.Errorf("slot %d: products %v, want %v", slot, got, want)
		}
		if snap.NumStated() != len(want) {
			t.Errorf("slot %d: %d states, want %d", slot, snap.NumStated(), len(want))
		}
		for id, st := range snap.StateMap() {
			if !owns[slot](id) || st.Version != uint64(slot+1) {
				t.Errorf("slot %d: state of %s = %+v", slot, id, st)
			}
		}
		if snap.Cursor != fmt.Sprintf("cursor-%d", slot) {
			t.Errorf("slot %d: cursor %q", slot, snap.Cursor)
		}
		if len(snap.Seen) != 3 || snap.Seen[0].Hash != engine.EventHash(fmt.Sprintf("s%d-e0", slot)) {
			t.Errorf("slot %d: seen %v", slot, snap.Seen)
		}
		if len(snap.Settings) != 3 || snap.Settings["default_strategy"] != "seed" {
			t.Errorf("slot %d: settings %v, want default_strategy, k0 and k1", slot, snap.Settings)
		}
		// Pruning one slot leaves the other's ids alone.
		if slot == 0 {
			if err := s.PruneSeen(ctx, 100, 0); err != nil {
				t.Fatal(err)
			}
			if n := len(mustLoad(t, db.Store(1, nil)).Seen); n != 3 {
				t.Errorf("after pruning slot 0, slot 1 has %d seen ids, want 3", n)
			}
		}
	}
	// A slot never written has an empty cursor.
	if c := mustLoad(t, db.Store(7, nil)).Cursor; c != "" {
		t.Errorf("cursor of a new slot = %q", c)
	}
}

func TestMigrate(t *testing.T) {
	schema := schemaName("pgtest_", t.Name())
	dropSchema(t, schema)
	ctx := context.Background()
	db, err := Open(ctx, Config{URL: testURL(t), Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ms, err := migrations.Load(migrationFiles)
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, m := range ms {
		want = append(want, m.Name)
	}
	applied, err := db.Migrate(ctx)
	if err != nil || !slices.Equal(applied, want) {
		t.Fatalf("first Migrate = %v, %v; want %v", applied, err, want)
	}
	applied, err = db.Migrate(ctx)
	if err != nil || len(applied) != 0 {
		t.Fatalf("second Migrate = %v, %v; want nothing", applied, err)
	}
	// A database from a newer build is refused.
	if _, err := db.pool.Exec(ctx, "INSERT INTO schema_migrations (version, name) VALUES (9999, '9999_future')"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Migrate(ctx); err == nil || !strings.Contains(err.Error(), "9999") {
		t.Fatalf("Migrate of a newer database = %v, want an error naming its version", err)
	}
}

func TestMigrateConcurrent(t *testing.T) {
	schema := schemaName("pgtest_", t.Name())
	dropSchema(t, schema)
	ctx := context.Background()
	const n = 4
	results := make([][]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			// Separate pools, as separate engine processes would have.
			db, err := Open(ctx, Config{URL: testURL(t), Schema: schema})
			if err != nil {
				errs[i] = err
				return
			}
			defer db.Close()
			results[i], errs[i] = db.Migrate(ctx)
		})
	}
	wg.Wait()
	total := 0
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("Migrate %d: %v", i, errs[i])
		}
		total += len(results[i])
	}
	ms, _ := migrations.Load(migrationFiles)
	if total != len(ms) {
		t.Errorf("migrations applied %d times in all (%v), want %d", total, results, len(ms))
	}
	// The schema works.
	db := openDB(t, schema)
	mustCommit(t, db.Store(0, nil), &engine.Batch{Products: []pricing.Product{product("a")}})
}

func TestSeedCatalog(t *testing.T) {
	db := freshDB(t)
	ctx := context.Background()
	ps := []pricing.Product{product("z"), product("a"), {ID: "m", BasePrice: 1}}
	// Concurrent seeders: exactly one seeds.
	var wg sync.WaitGroup
	var mu sync.Mutex
	seeded := 0
	for range 4 {
		wg.Go(func() {
			ok, err := db.SeedCatalog(ctx, ps, "decay")
			if err != nil {
				t.Error(err)
			}
			if ok {
				mu.Lock()
				seeded++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if seeded != 1 {
		t.Fatalf("%d seeders seeded, want 1", seeded)
	}
	got, err := db.Products(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, ps) {
		t.Errorf("Products = %+v, want %+v", got, ps)
	}
	settings, err := db.Settings(ctx)
	if err != nil || len(settings) != 1 || settings["default_strategy"] != "decay" {
		t.Errorf("Settings = %v, %v; want default_strategy decay", settings, err)
	}
	// A catalog that is not empty is left alone.
	if ok, err := db.SeedCatalog(ctx, []pricing.Product{product("new")}, "other"); ok || err != nil {
		t.Errorf("second SeedCatalog = %v, %v; want false, nil", ok, err)
	}
	if got, _ := db.Products(ctx); len(got) != 3 {
		t.Errorf("%d products after the second seed, want 3", len(got))
	}
	if s, _ := db.Settings(ctx); s["default_strategy"] != "decay" {
		t.Errorf("default_strategy %q after the second seed, want decay", s["default_strategy"])
	}
	// Without a default strategy, no setting is written.
	db2 := freshDBNamed(t, "noseed")
	if ok, err := db2.SeedCatalog(ctx, ps, ""); !ok || err != nil {
		t.Fatalf("SeedCatalog = %v, %v", ok, err)
	}
	if s, _ := db2.Settings(ctx); len(s) != 0 {
		t.Errorf("settings %v, want none", s)
	}
}

func freshDBNamed(t *testing.T, suffix string) *DB {
	t.Helper()
	schema := schemaName("pgtest_", t.Name()+"_"+suffix)
	dropSchema(t, schema)
	return openDB(t, schema)
}

func TestProductRead(t *testing.T) {
	db := freshDB(t)
	ctx := context.Background()
	st := pricing.State{Price: 12.34, Source: pricing.SourceOverride, Version: 1<<63 + 5, ChangedAt: 1_750_000_000_123_456_789,
		Demand: pricing.Demand{Total: 1e-7, Decayed: 0.1 + 0.2}}
	mustCommit(t, db.Store(0, nil), &engine.Batch{
		// a twice: the last wins; c has no plans (a NULL plans column).
		Products: []pricing.Product{product("a"), product("b"), product("a"), {ID: "c", BasePrice: 1}},
		States:   []engine.ProductState{{ID: "a", State: pricing.State{Price: 1}}, {ID: "a", State: st}},
	})
	p, got, ok, err := db.Product(ctx, "a")
	if err != nil || !ok || !reflect.DeepEqual(p, product("a")) || got != st {
		t.Errorf("Product(a) = %+v, %+v, %v, %v; want %+v, %+v", p, got, ok, err, product("a"), st)
	}
	p, got, ok, err = db.Product(ctx, "b")
	if err != nil || !ok || !reflect.DeepEqual(p, product("b")) || got != (pricing.State{}) {
		t.Errorf("Product(b) = %+v, %+v, %v, %v; want it with a zero state", p, got, ok, err)
	}
	p, _, ok, err = db.Product(ctx, "c")
	if err != nil || !ok || !reflect.DeepEqual(p, pricing.Product{ID: "c", BasePrice: 1}) {
		t.Errorf("Product(c) = %+v, %v, %v; want it without plans", p, ok, err)
	}
	if _, _, ok, err := db.Product(ctx, "nope"); ok || err != nil {
		t.Errorf("Product(nope) = %v, %v; want not found", ok, err)
	}
	if ps, err := db.Products(ctx); err != nil || !slices.Equal(ids(ps), []string{"a", "b", "c"}) {
		t.Errorf("Products = %v, %v; want [a b c]", ids(ps), err)
	}
}

func TestOpenErrors(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := Open(ctx, Config{}); err == nil {
		t.Error("Open without a URL succeeded")
	}
	if _, err := Open(ctx, Config{URL: "postgres://%zz"}); err == nil {
		t.Error("Open of a malformed URL succeeded")
	}
	// Port 1 on the loopback interface refuses connections at once.
	_, err := Open(ctx, Config{URL: "postgres://nobody:secret@127.0.0.1:1/db?sslmode=disable"})
	if err == nil || !strings.Contains(err.Error(), "unreachable") {
		t.Errorf("Open of an unreachable server = %v, want an error saying so", err)
	} else if strings.Contains(err.Error(), "secret") {
		t.Errorf("error %q shows the password", err)
	}
	if _, err := Open(ctx, Config{URL: "postgres://x@127.0.0.1/db", Schema: strings.Repeat("s", 64)}); err == nil {
		t.Error("Open with a 64-byte schema name succeeded")
	}
	// The test server, when there is one, answers Ping; a database it does
	// not have is a permanent error, which retrying cannot fix.
	if u := os.Getenv("DYNAPRICE_TEST_POSTGRES"); u != "" {
		pu, err := url.Parse(u)
		if err != nil {
			t.Fatal(err)
		}
		pu.Path = "/dynaprice_no_such_database"
		_, err = Open(ctx, Config{URL: pu.String()})
		if !retry.IsPermanent(err) || !strings.Contains(err.Error(), "does not exist") {
			t.Errorf("Open of a missing database = %v, want a permanent error saying it does not exist", err)
		}
		db, err := Open(ctx, Config{URL: u})
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if err := db.Ping(ctx); err != nil {
			t.Error(err)
		}
	}
}

func TestStatesReadsEveryProduct(t *testing.T) {
	db := freshDB(t)
	ctx := context.Background()
	st := db.Store(0, nil)
	if _, err := st.Load(ctx); err != nil {
		t.Fatal(err)
	}
	b := &engine.Batch{Products: []pricing.Product{{ID: "a", BasePrice: 1}, {ID: "b", BasePrice: 2}, {ID: "c", BasePrice: 3}},
		States: []engine.ProductState{{ID: "a", State: pricing.State{Price: 1.5, Version: 3}}, {ID: "b", State: pricing.State{Price: 2.5, DynDemand: 4, Version: 7}}}}
	if err := st.Commit(ctx, b); err != nil {
		t.Fatal(err)
	}
	got, err := db.States(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got["a"].Version != 3 || got["b"].DynDemand != 4 || got["b"].Price != 2.5 {
		t.Errorf("States = %+v, want a and b (c has no state yet)", got)
	}
}

// TestUpgradeKeepsLegacySeenIDs: a database written before migration 0003
// remembers event ids as strings in seen_events. After the upgrade a slot
// loads them (hashed) with its new hashes, oldest first, so that a retry
// of an event acknowledged before the upgrade is still a duplicate; so
// are strings an engine of the previous release writes during a rolling
// upgrade. They are pruned by age, slot by slot.
func TestUpgradeKeepsLegacySeenIDs(t *testing.T) {
	db := freshDB(t)
	ctx := context.Background()
	// The database as the previous release left it: migrated up to 0002,
	// remembering ids as strings, in slots 2 and 5.
	for _, q := range []string{
		"DROP TABLE seen_hashes",
		"DELETE FROM schema_migrations WHERE version = 3",
		`INSERT INTO seen_events (slot, seen_at, event_id) VALUES
			(2, 100, 'order-1'), (2, 200, 'order-2'), (2, 300, 'order-3'), (5, 150, 'other-slot')`,
	} {
		if _, err := db.pool.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	if applied, err := db.Migrate(ctx); err != nil || !slices.Equal(applied, []string{"0003_seen_hashes"}) {
		t.Fatalf("Migrate = %v, %v; want 0003_seen_hashes", applied, err)
	}
	s := db.Store(2, nil)
	mustLoad(t, s)
	mustCommit(t, s, &engine.Batch{Seen: []engine.SeenID{{Hash: engine.EventHash("new-1"), At: 250}}})
	// An engine of the previous release, still running, writes a string.
	if _, err := db.pool.Exec(ctx, "INSERT INTO seen_events (slot, seen_at, event_id) VALUES (2, 260, 'rolling-1')"); err != nil {
		t.Fatal(err)
	}
	h := engine.EventHash
	want := []engine.SeenID{{Hash: h("order-1"), At: 100}, {Hash: h("order-2"), At: 200},
		{Hash: h("new-1"), At: 250}, {Hash: h("rolling-1"), At: 260}, {Hash: h("order-3"), At: 300}}
	snap := mustLoad(t, s)
	if !slices.Equal(snap.Seen, want) {
		t.Fatalf("Seen after the upgrade = %+v, want %+v", snap.Seen, want)
	}

	// The engine resumed from it drops a retry of an id acknowledged
	// before the upgrade, and applies a new one.
	m := engine.NewMachine(engine.DefaultConfig())
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

	// Pruning: the strings by age; the hashes by age and count; the
	// other slot's strings untouched.
	if err := s.PruneSeen(ctx, 255, 1); err != nil {
		t.Fatal(err)
	}
	if got, want := mustLoad(t, s).Seen, []engine.SeenID{want[3], want[4]}; !slices.Equal(got, want) {
		t.Errorf("Seen after pruning = %+v, want %+v", got, want)
	}
	if got := mustLoad(t, db.Store(5, nil)).Seen; !slices.Equal(got, []engine.SeenID{{Hash: h("other-slot"), At: 150}}) {
		t.Errorf("slot 5 after pruning slot 2: %+v", got)
	}
}

// TestOriginalViews: the original's SQL runs against the compatibility
// views (migration 0005): its tables' names and columns, times as UTC
// timestamps, only open overrides, and writes refused with a reason.
func TestOriginalViews(t *testing.T) {
	db := freshDB(t)
	ctx := context.Background()
	at := time.Date(2026, 3, 17, 2, 5, 41, 734_120_583, time.UTC).UnixNano()
	mustCommit(t, db.Store(0, nil), &engine.Batch{
		Products: []pricing.Product{product("PA"), product("PB")},
		History: []engine.HistoryRow{
			{ProductID: "PA", Price: 299, Source: pricing.SourceBase, At: at - 1e9, Version: 1},
			{ProductID: "PA", Price: 314, Demand: 9, Source: pricing.SourceDynamic, At: at, Version: 2},
			{ProductID: "PB", Price: 349, Source: pricing.SourceBase, At: at - 2e9, Version: 1},
		},
		Overrides: []engine.OverrideChange{
			{Set: &engine.OverrideRecord{ProductID: "PB", Price: 300, Reason: "old", By: "ops", CreatedAt: at - 5e9}},
			{End: &engine.OverrideEnd{ProductID: "PB", At: at - 4e9, By: "ops", Reason: "removed"}},
			{Set: &engine.OverrideRecord{ProductID: "PA", Price: 149.99, Reason: "campaign override", By: "ops", CreatedAt: at}},
		},
	})
	conn, err := db.pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	schema := schemaName("pgtest_", t.Name())
	compat := pgx.Identifier{schema + "_original"}.Sanitize()
	if _, err := conn.Exec(ctx, "SET search_path TO "+compat+", "+pgx.Identifier{schema}.Sanitize()); err != nil {
		t.Fatal(err)
	}
	// SETUP.md's query, with the columns of the original's table.
	rows, _ := conn.Query(ctx, "SELECT * FROM price_history ORDER BY event_time DESC")
	got, err := pgx.CollectRows(rows, pgx.RowToMap)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[0]["product_id"] != "PA" || got[0]["price"] != 314.0 || got[0]["price_source"] != "dynamic" ||
		got[2]["product_id"] != "PB" || got[2]["id"] != int64(1) || got[0]["id"] != int64(3) {
		t.Fatalf("price_history = %v", got)
	}
	if ts, ok := got[0]["event_time"].(time.Time); !ok || !ts.Equal(time.Unix(0, at).UTC().Round(time.Microsecond)) {
		t.Fatalf("event_time = %v (%T), want %v", got[0]["event_time"], got[0]["event_time"], time.Unix(0, at).UTC())
	}
	var id, reason string
	var price float64
	var set time.Time
	if err := conn.QueryRow(ctx, "SELECT product_id, override_price, reason, set_time FROM price_overrides").Scan(&id, &price, &reason, &set); err != nil ||
		id != "PA" || price != 149.99 || reason != "campaign override" || !set.Equal(time.Unix(0, at).UTC().Round(time.Microsecond)) {
		t.Fatalf("price_overrides = %q %v %q %v, %v; want only PA's open override", id, price, reason, set, err)
	}
	_, err = conn.Exec(ctx, "INSERT INTO price_overrides (product_id, override_price, reason) VALUES ('PB', 1, 'x')")
	if err == nil || !strings.Contains(err.Error(), "read-only view") || !strings.Contains(err.Error(), "POST /override") {
		t.Fatalf("insert into price_overrides: %v", err)
	}
	if _, err := conn.Exec(ctx, "DELETE FROM price_history"); err == nil {
		t.Fatal("delete from the price_history view was accepted")
	}
}

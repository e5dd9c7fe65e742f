package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/dynaprice/dynaprice/internal/engine"
	"github.com/dynaprice/dynaprice/internal/migrations"
	"github.com/dynaprice/dynaprice/internal/pricing"
)

// TestUpgradeTo0006: a database written before migration 0006 (history
// clustered by product, states as JSON in product_state) opens with every
// state and every product's history intact, and goes on from there.
func TestUpgradeTo0006(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "old.db")
	db, err := sql.Open("sqlite", dsn(path, nil))
	if err != nil {
		t.Fatal(err)
	}
	ms, err := migrations.Load(migrationFiles)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, `CREATE TABLE schema_migrations (version INTEGER NOT NULL PRIMARY KEY,
		name TEXT NOT NULL, applied_at INTEGER NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		if m.Version < 6 {
			if err := applyMigration(ctx, db, m); err != nil {
				t.Fatal(err)
			}
		}
	}
	exec := func(q string, args ...any) {
		t.Helper()
		if _, err := db.ExecContext(ctx, q, args...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	states := map[string]pricing.State{}
	for i, id := range []string{"b", "a", "c"} {
		exec("INSERT INTO products (id, base_price, created_at, updated_at) VALUES (?, 10, 1, 1)", id)
		if id == "c" {
			continue // a product never priced: no state, no history
		}
		st := pricing.State{Price: 10 + float64(i), Source: pricing.SourceDynamic, Version: 3, ChangedAt: 300,
			Learn: &pricing.Learning{Arm: i, Views: []float64{1, 2}, Buys: []float64{0, 1}, Rand: 1 << 63}}
		st.Low.Set(20_000, 9.5)
		j, err := json.Marshal(&st)
		if err != nil {
			t.Fatal(err)
		}
		exec("INSERT INTO product_state (product_id, price, demand, source, version, changed_at, state) VALUES (?, ?, 0, 'dynamic', 3, 300, ?)",
			id, st.Price, string(j))
		states[id] = st
	}
	// a's changes interleave with b's in time; two of a's share a time.
	type row struct {
		id string
		at int64
		v  uint64
	}
	for _, r := range []row{{"a", 100, 1}, {"b", 150, 1}, {"a", 200, 2}, {"a", 200, 3}, {"b", 250, 2}, {"b", 300, 3}, {"d", 50, 1}} {
		exec("INSERT INTO price_history (product_id, event_time, version, price, demand, source) VALUES (?, ?, ?, ?, 1, 'dynamic')",
			r.id, r.at, int64(r.v), float64(r.v))
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	s := openTest(t, path)
	check := func(when string, s *Store, wantHist map[string][]uint64) {
		t.Helper()
		snap, err := s.Load(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(snap.StateMap(), states) {
			t.Errorf("%s: states\n got %+v\nwant %+v", when, snap.StateMap(), states)
		}
		for id, want := range wantHist {
			h, err := s.History(ctx, id, 100)
			if err != nil {
				t.Fatal(err)
			}
			var got []uint64
			for _, r := range h {
				got = append(got, r.Version)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("%s: History(%s) versions %v, want %v", when, id, got, want)
			}
		}
	}
	hist := map[string][]uint64{"a": {3, 2, 1}, "b": {3, 2, 1}, "c": nil, "d": {1}}
	check("after the upgrade", s, hist)

	// It goes on: new rows chain onto the migrated ones, new states
	// (binary) replace the JSON ones.
	st := states["a"]
	st.Version, st.Price = 4, 42
	states["a"] = st
	if err := s.Commit(ctx, &engine.Batch{
		States: []engine.ProductState{{ID: "a", State: st}},
		History: []engine.HistoryRow{{ProductID: "a", At: 400, Version: 4, Price: 42, Source: pricing.SourceDynamic},
			{ProductID: "d", At: 410, Version: 2, Price: 1, Source: pricing.SourceDynamic}},
	}); err != nil {
		t.Fatal(err)
	}
	hist["a"], hist["d"] = []uint64{4, 3, 2, 1}, []uint64{2, 1}
	check("after a commit", s, hist)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	check("after reopening", openTest(t, path), hist)
}

// TestStateLogStaysSmall: commits that keep touching the same products
// append to state_log, and the cleaner keeps it at about twice the
// products, with every product's newest state and history intact.
func TestStateLogStaysSmall(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "log.db")
	s := openTest(t, path)
	const products, perCommit, commits = 3000, 700, 60
	latest := map[string]pricing.State{}
	versions := map[string]uint64{}
	for c := range commits {
		b := &engine.Batch{}
		if c == 0 {
			for k := range products {
				b.Products = append(b.Products, pricing.Product{ID: fmt.Sprintf("p%05d", k), BasePrice: 1})
			}
		}
		for k := range perCommit {
			id := fmt.Sprintf("p%05d", (c*perCommit+k)%products)
			versions[id]++
			st := pricing.State{Price: float64(versions[id]), Version: versions[id], ChangedAt: int64(c)}
			b.States = append(b.States, engine.ProductState{ID: id, State: st})
			b.History = append(b.History, engine.HistoryRow{ProductID: id, At: int64(c), Version: versions[id], Price: st.Price})
			latest[id] = st
		}
		engine.SortHistory(b.History)
		if err := s.Commit(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	var rows int
	if err := s.r.QueryRowContext(ctx, "SELECT count(*) FROM state_log").Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if limit := 2*products + cleanMin + 2*perCommit; rows > limit {
		t.Errorf("state_log has %d rows for %d products after %d commits, want at most %d", rows, products, commits, limit)
	}
	t.Logf("state_log: %d rows for %d products, %d states committed", rows, products, perCommit*commits)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openTest(t, path)
	snap, err := s.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(snap.StateMap(), latest) {
		t.Errorf("Load after cleaning: %d states, want %d (or different values)", snap.NumStated(), len(latest))
	}
	for _, id := range []string{"p00000", "p01234", "p02999"} {
		h, err := s.History(ctx, id, 1000)
		if err != nil {
			t.Fatal(err)
		}
		if uint64(len(h)) != versions[id] || h[0].Version != versions[id] || h[len(h)-1].Version != 1 {
			t.Errorf("History(%s): %d rows from version %d, want %d rows from %d down to 1", id, len(h), h[0].Version, versions[id], versions[id])
		}
	}
}

// TestWrongHintsCostOnlyTheLookup: the engine's hints (the product's
// place in its catalog) let a commit find a product's positions without
// the map of ids, but a hint is checked, never trusted: rows whose hints
// name other products, or no product at all, land on their own products'
// chains.
func TestWrongHintsCostOnlyTheLookup(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "hints.db")
	s := openTest(t, path)
	ids := []string{"a", "b", "c"}
	b := &engine.Batch{}
	for k, id := range ids {
		b.Products = append(b.Products, pricing.Product{ID: id, BasePrice: 1})
		b.States = append(b.States, engine.ProductState{ID: id, Hint: int32(k), State: pricing.State{Price: 1, Version: 1}})
		b.History = append(b.History, engine.HistoryRow{ProductID: id, Hint: int32(k), Price: 1, At: 1, Version: 1})
	}
	if err := s.Commit(ctx, b); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Load(ctx); err != nil { // slots in catalog order: a 0, b 1, c 2
		t.Fatal(err)
	}
	// Version 2 with every hint wrong: a names b's place, b c's, c one past
	// the end; then version 3 with a hint of -1, one far out of range and
	// c naming a's place.
	for _, step := range []struct {
		v    uint64
		hint func(k int) int32
	}{{2, func(k int) int32 { return int32(k + 1) }}, {3, func(k int) int32 { return []int32{-1, 1 << 30, 0}[k] }}} {
		b := &engine.Batch{}
		for k, id := range ids {
			st := pricing.State{Price: float64(step.v) + float64(k)/10, Version: step.v}
			b.States = append(b.States, engine.ProductState{ID: id, Hint: step.hint(k), State: st})
			b.History = append(b.History, engine.HistoryRow{ProductID: id, Hint: step.hint(k), Price: st.Price, At: int64(step.v), Version: step.v})
		}
		if err := s.Commit(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	check := func(when string, s *Store) {
		t.Helper()
		for k, id := range ids {
			h, err := s.History(ctx, id, 10)
			if err != nil {
				t.Fatal(err)
			}
			if len(h) != 3 || h[0].Version != 3 || h[1].Version != 2 || h[2].Version != 1 || h[0].Price != 3+float64(k)/10 {
				t.Errorf("%s: history of %s %+v, want its versions 3, 2, 1", when, id, h)
			}
		}
		snap, err := s.Load(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for k, id := range ids {
			if st, ok := snap.StateMap()[id]; !ok || st.Version != 3 || st.Price != 3+float64(k)/10 {
				t.Errorf("%s: state of %s %+v, want its version 3", when, id, st)
			}
		}
	}
	check("at once", s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	check("after reopening", openTest(t, path))
}

package sqlite

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/dynaprice/dynaprice/internal/engine"
	"github.com/dynaprice/dynaprice/internal/pricing"
)

// snapshotStore opens a store with a catalog whose products use every
// field the catalog stores, states (one product without), history (one
// product with history but no state), settings and a cursor; it returns
// the store and what Load reads from its tables.
func snapshotStore(t *testing.T, path string) (*Store, engine.Snapshot) {
	t.Helper()
	ctx := context.Background()
	s := openTest(t, path)
	products := []pricing.Product{
		{ID: "PB", Name: "Bee «ü»", BasePrice: 349.99, Strategy: "decay", UnitCost: 100,
			Guardrails: pricing.Guardrails{Floor: 200, Ceiling: 500, MaxChangePct: 5, Rounding: ".99", MinMarginPct: 10},
			Limits:     pricing.Limits{MaxQuantity: 7, MaxMovePct: 30, MoveWindow: pricing.Duration(3e9)},
			Inventory: &pricing.InventoryPlan{PeriodStart: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC),
				PeriodEnd: time.Date(2026, 12, 8, 0, 0, 0, 0, time.UTC), Repeat: true, TargetSellThrough: 0.8}},
		{ID: "PA", BasePrice: 299},
		{ID: "PC", BasePrice: 5, Competition: &pricing.CompetitorRule{Mode: "match"}},
	}
	st := func(v uint64, price float64) pricing.State {
		s := pricing.State{Price: price, Source: pricing.SourceDynamic, Version: v, ChangedAt: 1_800_000_000e9,
			Demand: pricing.Demand{Total: 9, Decayed: 3.5, At: 1_800_000_000e9}, Lowest30: price - 1,
			Override: pricing.Override{Active: true, Price: price, Reason: "r", By: "ops", Since: 5}}
		s.Low.Set(20_000, price-1)
		return s
	}
	b := &engine.Batch{
		Products: products,
		States:   []engine.ProductState{{ID: "PB", State: st(3, 350)}, {ID: "PA", State: st(2, 314)}},
		History: []engine.HistoryRow{
			{ProductID: "PA", Price: 314, Demand: 9, Source: pricing.SourceDynamic, At: 10, Version: 2},
			{ProductID: "PB", Price: 350, Demand: 1, Source: pricing.SourceDynamic, At: 11, Version: 3},
			{ProductID: "PD", Price: 1, Demand: 1, Source: pricing.SourceDynamic, At: 12, Version: 1},
		},
		Settings: map[string]string{"default_strategy": "seed"},
		Cursor:   "c1",
	}
	if err := s.Commit(ctx, b); err != nil {
		t.Fatal(err)
	}
	want, err := s.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if s.fromSnapshot {
		t.Fatal("a store never snapshotted loaded from a snapshot")
	}
	return s, want
}

// save snapshots what want holds, as the engine does at a clean stop.
func save(t *testing.T, s *Store, want engine.Snapshot) {
	t.Helper()
	states := want.StateMap()
	err := s.SaveSnapshot(context.Background(), want.Products, func(i int) *pricing.State {
		if st, ok := states[want.Products[i].ID]; ok {
			return &st
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func sameLoad(t *testing.T, when string, s *Store, want engine.Snapshot, fromSnapshot bool) {
	t.Helper()
	ctx := context.Background()
	got, err := s.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if s.fromSnapshot != fromSnapshot {
		t.Errorf("%s: loaded from the snapshot: %v, want %v", when, s.fromSnapshot, fromSnapshot)
	}
	if !reflect.DeepEqual(got.Products, want.Products) {
		t.Errorf("%s: products\n got %+v\nwant %+v", when, got.Products, want.Products)
	}
	if !reflect.DeepEqual(got.StateMap(), want.StateMap()) {
		t.Errorf("%s: states\n got %+v\nwant %+v", when, got.StateMap(), want.StateMap())
	}
	if !reflect.DeepEqual(got.Settings, want.Settings) || got.Cursor != want.Cursor {
		t.Errorf("%s: settings %v cursor %q, want %v %q", when, got.Settings, got.Cursor, want.Settings, want.Cursor)
	}
	// The logs' positions came back too: history reads from them, and a
	// commit chains onto them.
	for _, id := range []string{"PA", "PB", "PD"} {
		h, err := s.History(ctx, id, 10)
		if err != nil || len(h) != 1 {
			t.Errorf("%s: History(%s) = %+v, %v; want its one row", when, id, h, err)
		}
	}
}

// TestSnapshotStartsLikeTheTables: after a clean stop, a store loads the
// snapshot and gets what its tables hold; the snapshot serves that one
// start only, and the file is gone after it.
func TestSnapshotStartsLikeTheTables(t *testing.T) {
	path := filepath.Join(t.TempDir(), "d.db")
	s, want := snapshotStore(t, path)
	save(t, s, want)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openTest(t, path)
	sameLoad(t, "from the snapshot", s, want, true)
	if _, err := os.Stat(snapshotPath(path)); !os.IsNotExist(err) {
		t.Errorf("the snapshot file is still there after it was used (%v)", err)
	}
	// A commit chains onto the positions the snapshot restored.
	ctx := context.Background()
	if err := s.Commit(ctx, &engine.Batch{History: []engine.HistoryRow{
		{ProductID: "PA", Price: 315, Demand: 10, Source: pricing.SourceDynamic, At: 20, Version: 3}}}); err != nil {
		t.Fatal(err)
	}
	if h, err := s.History(ctx, "PA", 10); err != nil || len(h) != 2 || h[1].Version != 2 {
		t.Errorf("History(PA) after a commit = %+v, %v; want versions 3 then 2", h, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openTest(t, path)
	if _, err := s.Load(ctx); err != nil {
		t.Fatal(err)
	}
	if s.fromSnapshot {
		t.Error("a second start used the snapshot again")
	}
}

// TestSnapshotNotUsedAfterACommit: a commit after SaveSnapshot (then a
// crash: no clean stop to write another) leaves the store loading its
// tables, with the commit in.
func TestSnapshotNotUsedAfterACommit(t *testing.T) {
	path := filepath.Join(t.TempDir(), "d.db")
	s, want := snapshotStore(t, path)
	save(t, s, want)
	ctx := context.Background()
	st := want.StateMap()["PA"]
	st.Version, st.Price = 9, 400
	if err := s.Commit(ctx, &engine.Batch{States: []engine.ProductState{{ID: "PA", State: st}}}); err != nil {
		t.Fatal(err)
	}
	for k, p := range want.Products {
		if p.ID == "PA" {
			want.States[k] = st
		}
	}
	s2 := openTest(t, path) // the first is not closed: as after kill -9
	sameLoad(t, "after a commit", s2, want, false)
}

// TestSnapshotCorruptIsIgnored: a snapshot file that was torn or changed
// is ignored (the tables are read), whatever byte is wrong.
func TestSnapshotCorruptIsIgnored(t *testing.T) {
	path := filepath.Join(t.TempDir(), "d.db")
	s, want := snapshotStore(t, path)
	for _, damage := range []struct {
		name string
		f    func([]byte) []byte
	}{
		{"a byte flipped", func(b []byte) []byte { b[len(b)/2] ^= 0x40; return b }},
		{"torn", func(b []byte) []byte { return b[:len(b)-7] }},
		{"missing", nil},
	} {
		save(t, s, want)
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if damage.f == nil {
			if err := os.Remove(snapshotPath(path)); err != nil {
				t.Fatal(err)
			}
		} else {
			b, err := os.ReadFile(snapshotPath(path))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(snapshotPath(path), damage.f(b), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		s = openTest(t, path)
		sameLoad(t, damage.name, s, want, false)
	}
}

// TestSnapshotOfManyProducts: states are decoded in blocks by several
// workers; a catalog of a few blocks, with products that have no state
// among them, comes back whole and in place.
func TestSnapshotOfManyProducts(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "d.db")
	s := openTest(t, path)
	const n = 2*stateBlock + 123
	products := make([]pricing.Product, n)
	states := make([]pricing.State, n)
	for i := range products {
		products[i] = pricing.Product{ID: fmt.Sprintf("P%06d", i), BasePrice: 10}
		states[i] = pricing.State{Price: float64(i%1000) + 1, Version: uint64(i) + 1, Source: pricing.SourceDynamic}
		states[i].Low.Set(20_000, float64(i%1000)+0.5)
	}
	if err := s.Commit(ctx, &engine.Batch{Products: products}); err != nil {
		t.Fatal(err)
	}
	stateless := func(i int) bool { return i%7 == 3 }
	err := s.SaveSnapshot(ctx, products, func(i int) *pricing.State {
		if stateless(i) {
			return nil
		}
		return &states[i]
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openTest(t, path)
	snap, err := s.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !s.fromSnapshot || len(snap.Products) != n || len(snap.States) != n {
		t.Fatalf("from the snapshot %v: %d products, %d states; want %d", s.fromSnapshot, len(snap.Products), len(snap.States), n)
	}
	for i := range products {
		if snap.Products[i].ID != products[i].ID || snap.Stated[i] == stateless(i) {
			t.Fatalf("product %d: %s stated %v", i, snap.Products[i].ID, snap.Stated[i])
		}
		if !stateless(i) && !reflect.DeepEqual(snap.States[i], states[i]) {
			t.Fatalf("state %d: %+v, want %+v", i, snap.States[i], states[i])
		}
	}
}

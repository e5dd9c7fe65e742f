// Package storetest is the conformance suite for implementations of the
// engine's storage port (engine.Store) plus the read methods the HTTP API
// uses. Every implementation runs the same suite from its own tests:
//
//	func TestStore(t *testing.T) {
//		dir := t.TempDir()
//		storetest.Run(t, func(t *testing.T, name string) storetest.Store {
//			s, err := sqlite.Open(context.Background(), sqlite.Config{Path: filepath.Join(dir, name+".db")})
//			if err != nil {
//				t.Fatal(err)
//			}
//			return s
//		})
//	}
//
// The suite asserts what the engine relies on: exact round trips across a
// close and reopen, atomic commits (also when the context ends part-way),
// the override audit trail, the remembered event ids and their pruning,
// price experiments and their arms' totals (experiments.go),
// reads that keep working while commits run, the history retention
// (retention.go) and the analytics rows and their retention (analytics.go).
package storetest

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dynaprice/dynaprice/internal/engine"
	"github.com/dynaprice/dynaprice/internal/pricing"
)

// Store is what the suite exercises.
type Store interface {
	engine.Store
	// History returns a product's price changes, newest first (by time,
	// then by version), at most limit of them.
	History(ctx context.Context, id string, limit int) ([]engine.HistoryRow, error)
	// OverrideAudit returns a product's overrides, newest first, at most
	// limit of them.
	OverrideAudit(ctx context.Context, id string, limit int) ([]engine.OverrideRecord, error)
	// HistoryPage returns a product's newest changes (at most limit) and
	// the hourly summaries of the changes the history retention rolled up
	// (at most hourly; < 0: as many as limit leaves), newest first, from
	// one snapshot.
	HistoryPage(ctx context.Context, id string, limit, hourly int) (engine.HistoryPage, error)
	// AnalyticsTotals sums the analytics rows (engine.AnalyticsReader).
	engine.AnalyticsReader
}

// Opener opens the store called name; opening the same name again after
// Close sees the same data; different names are independent. Names are
// short and made of [a-z0-9_-]. The suite closes every store it opens,
// and fails the test if Close fails.
type Opener func(t *testing.T, name string) Store

// Run runs the suite, each part as a subtest.
func Run(t *testing.T, open Opener) {
	s := &suite{open: open}
	for _, c := range []struct {
		name string
		f    func(*testing.T)
	}{
		{"EmptyLoad", s.emptyLoad},
		{"EmptyBatch", s.emptyBatch},
		{"RoundTrip", s.roundTrip},
		{"ProductUpdate", s.productUpdate},
		{"StateUpdate", s.stateUpdate},
		{"History", s.history},
		{"Overrides", s.overrides},
		{"OverridesInOneBatch", s.overridesInOneBatch},
		{"Seen", s.seen},
		{"Cursor", s.cursor},
		{"PruneSeen", s.pruneSeen},
		{"CancelledContext", s.cancelledContext},
		{"CancelDuringCommit", s.cancelDuringCommit},
		{"FailedCommitLeavesNothing", s.failedCommit},
		{"LargeBatch", s.largeBatch},
		{"ConcurrentReads", s.concurrentReads},
		{"IndependentNames", s.independentNames},
		{"Experiments", s.experiments},
		{"Retention", s.retention},
		{"RetentionWithoutSummaries", s.retentionWithoutSummaries},
		{"RetentionOfEveryRow", s.retentionOfEveryRow},
		{"RetentionDuringReads", s.retentionDuringReads},
		{"Analytics", s.analyticsRows},
		{"AnalyticsRetention", s.analyticsRetention},
	} {
		t.Run(c.name, c.f)
	}
}

type suite struct {
	open Opener
}

// base is an arbitrary instant (unix ns) the fixtures are built around.
const base = int64(1_750_000_000_123_456_789)

// openStore opens name and closes it when the test ends, unless the test
// closed it first through the returned close function.
func (s *suite) openStore(t *testing.T, name string) (Store, func()) {
	t.Helper()
	st := s.open(t, name)
	if st == nil {
		t.Fatalf("Opener returned nil for %q", name)
	}
	var once sync.Once
	closeFn := func() {
		t.Helper()
		once.Do(func() {
			if err := st.Close(); err != nil {
				t.Errorf("Close(%q): %v", name, err)
			}
		})
	}
	t.Cleanup(closeFn)
	return st, closeFn
}

// storeName turns the running subtest's name into a store name.
func storeName(t *testing.T, suffix string) string {
	n := strings.ToLower(t.Name())
	if i := strings.LastIndexByte(n, '/'); i >= 0 {
		n = n[i+1:]
	}
	var b strings.Builder
	for _, r := range n {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '-', r == '_':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	if suffix != "" {
		b.WriteString("_" + suffix)
	}
	return b.String()
}

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func commit(t *testing.T, st Store, b *engine.Batch) {
	t.Helper()
	if err := st.Commit(ctxFor(t), b); err != nil {
		t.Fatalf("Commit: %v", err)
	}
}

func load(t *testing.T, st Store) engine.Snapshot {
	t.Helper()
	snap, err := st.Load(ctxFor(t))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if n := len(snap.States); n != len(snap.Stated) || (n != 0 && n != len(snap.Products)) {
		t.Fatalf("Load: %d products with %d states and %d flags (want all as many, or no states)",
			len(snap.Products), n, len(snap.Stated))
	}
	return snap
}

func history(t *testing.T, st Store, id string, limit int) []engine.HistoryRow {
	t.Helper()
	h, err := st.History(ctxFor(t), id, limit)
	if err != nil {
		t.Fatalf("History(%q, %d): %v", id, limit, err)
	}
	return h
}

func audit(t *testing.T, st Store, id string, limit int) []engine.OverrideRecord {
	t.Helper()
	a, err := st.OverrideAudit(ctxFor(t), id, limit)
	if err != nil {
		t.Fatalf("OverrideAudit(%q, %d): %v", id, limit, err)
	}
	return a
}

// equal fails the test unless got and want are deeply equal. Nil and empty
// slices and maps count as equal: the port does not distinguish them.
func equal[T any](t *testing.T, what string, got, want T) {
	t.Helper()
	if !reflect.DeepEqual(normalize(got), normalize(want)) {
		t.Errorf("%s:\n got: %+v\nwant: %+v", what, got, want)
	}
}

func normalize(v any) any {
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Slice, reflect.Map:
		if rv.Len() == 0 {
			return nil
		}
	}
	return v
}

// product returns a catalog entry with every field set. The plan's times
// have nanoseconds and a zone other than UTC, which a store that keeps
// them as timestamps with less precision, or as UTC, would not return
// exactly; compare products with productsEqual, which ignores only the
// zone (an instant's zone changes no price).
func product(id string) pricing.Product {
	cest := time.FixedZone("CEST", 2*60*60)
	return pricing.Product{
		ID: id, Name: "Product " + id + " – «ünïcode» \"quoted\"", BasePrice: 19.99, Strategy: "decay",
		UnitCost: 7.123456789,
		Guardrails: pricing.Guardrails{Floor: 9.5, Ceiling: 49.75, MaxChangePct: 12.5, Rounding: ".99",
			MinMarginPct: 0.1 + 0.2},
		Limits: pricing.Limits{MaxQuantity: 250, MaxMovePct: 33.5, MoveWindow: pricing.Duration(17*time.Minute + 250*time.Millisecond)},
		Inventory: &pricing.InventoryPlan{
			PeriodStart:       time.Date(2025, 6, 15, 8, 30, 0, 123_456_789, cest),
			PeriodEnd:         time.Date(2025, 7, 15, 8, 30, 0, 987_654_321, cest),
			Repeat:            true,
			TargetSellThrough: 0.85,
		},
		Competition: &pricing.CompetitorRule{Mode: "beat", Pct: 2.5, Amount: 0.01},
	}
}

// productsEqual fails the test unless got and want hold the same products
// in the same order, field by field and plan by plan, with plan times
// compared as instants.
// A difference is shown as JSON, which shows the plans rather than the
// pointers to them.
func productsEqual(t *testing.T, what string, got, want []pricing.Product) {
	t.Helper()
	g, w := utcPlans(got), utcPlans(want)
	if !reflect.DeepEqual(normalize(g), normalize(w)) {
		gj, _ := json.Marshal(g)
		wj, _ := json.Marshal(w)
		t.Errorf("%s:\n got: %s\nwant: %s", what, gj, wj)
	}
}

// utcPlans returns ps with copies of their plans whose times are in UTC.
func utcPlans(ps []pricing.Product) []pricing.Product {
	out := slices.Clone(ps)
	for i := range out {
		if inv := out[i].Inventory; inv != nil {
			c := *inv
			c.PeriodStart, c.PeriodEnd = c.PeriodStart.UTC(), c.PeriodEnd.UTC()
			out[i].Inventory = &c
		}
	}
	return out
}

// state returns a pricing state with every field set, varied by n.
func state(n int) pricing.State {
	f := float64(n)
	st := pricing.State{
		Demand:    pricing.Demand{Total: 1234.5 + f, Decayed: 0.1 + 0.2 + f, At: base + int64(n)},
		Price:     21.99 + f,
		Source:    pricing.SourceDynamic,
		Version:   uint64(1<<40 + n),
		ChangedAt: base + 1000 + int64(n),
		DynDemand: 3.0000000000000004 + f,
		Trace: pricing.Trace{Raw: 22.123456789, Limited: 22.1, Bounded: 22.05, Final: 21.99,
			Reference: 20.5 + f, Applied: pricing.GuardMaxChange | pricing.GuardRounding},
		Override: pricing.Override{Active: n%2 == 0, Price: 15.5, Reason: "clearance, \"final\"", By: "alice",
			Since: base - 5000, Expires: base + 86_400_000_000_000},
		Lowest30: 1e-7 + f,
		// A learning strategy's state, with a random-generator word above
		// 2^63 that must not pass through a float.
		Learn: &pricing.Learning{Arm: n % 3, Views: []float64{12, 0.1 + 0.2, f}, Buys: []float64{3, 0, 1e-9 * f},
			Redraw: n%2 == 1, Rand: 0xfedcba9876543210 + uint64(n)},
		Market: &pricing.Signals{Stock: 41.5 + f, StockKnown: true, Period: base - 86_400_000_000_000 + int64(n),
			Opening: 120 + f, Views: 0.1 + 0.2 + f, Quotes: []pricing.Quote{
				{Competitor: "rival – «ü»", Price: 18.49 + f, At: base - 3_600_000_000_123},
				{Competitor: "other", Price: 1e-3, At: base + int64(n)},
			}},
		Brake: pricing.Brake{Anchor: 19.99 + f, Since: base - 7_000_000_000_001, Held: base - 123 + int64(n), Wanted: 0.1 + 0.2 + f},
	}
	for i := range pricing.LowestWindowDays + 1 {
		st.Low.Set(int32(20_000+i+n), 10+float64(i)/3+f)
	}
	return st
}

func (s *suite) emptyLoad(t *testing.T) {
	st, _ := s.openStore(t, storeName(t, ""))
	snap := load(t, st)
	if len(snap.Products) != 0 || snap.NumStated() != 0 || len(snap.Seen) != 0 || len(snap.Settings) != 0 {
		t.Errorf("Load of a new store = %+v, want it empty", snap)
	}
	if h := history(t, st, "nope", 10); len(h) != 0 {
		t.Errorf("History of an unknown product = %+v, want none", h)
	}
	if a := audit(t, st, "nope", 10); len(a) != 0 {
		t.Errorf("OverrideAudit of an unknown product = %+v, want none", a)
	}
}

func (s *suite) emptyBatch(t *testing.T) {
	st, _ := s.openStore(t, storeName(t, ""))
	commit(t, st, &engine.Batch{})
	if snap := load(t, st); len(snap.Products) != 0 || len(snap.Seen) != 0 {
		t.Errorf("Load after an empty commit = %+v, want it empty", snap)
	}
}

func (s *suite) roundTrip(t *testing.T) {
	name := storeName(t, "")
	st, closeStore := s.openStore(t, name)
	products := []pricing.Product{
		product("sku-1"),
		product("sku-2"),
		{ID: "bare", BasePrice: 0.01}, // every optional field zero
	}
	states := map[string]pricing.State{"sku-1": state(1), "sku-2": state(2), "bare": {}}
	settings := map[string]string{"default_strategy": "decay", "empty": "", "unicode": "ü – ✓"}
	b := &engine.Batch{Products: products, Settings: settings}
	for _, p := range products {
		b.States = append(b.States, engine.ProductState{ID: p.ID, State: states[p.ID]})
	}
	commit(t, st, b)
	check := func(when string) {
		t.Helper()
		snap := load(t, st)
		got := slices.Clone(snap.Products)
		slices.SortFunc(got, func(a, b pricing.Product) int { return strings.Compare(a.ID, b.ID) })
		want := slices.Clone(products)
		slices.SortFunc(want, func(a, b pricing.Product) int { return strings.Compare(a.ID, b.ID) })
		productsEqual(t, when+": products", got, want)
		if snap.NumStated() != len(states) {
			t.Errorf("%s: %d states, want %d", when, snap.NumStated(), len(states))
		}
		byID := snap.StateMap()
		for id, want := range states {
			got, ok := byID[id]
			if !ok {
				t.Errorf("%s: no state for %q", when, id)
				continue
			}
			equal(t, when+": state of "+id, got, want)
		}
		equal(t, when+": settings", snap.Settings, settings)
	}
	check("before reopen")
	closeStore()
	st, _ = s.openStore(t, name)
	check("after reopen")
}

// cursor checks that the input position commits with the batch, survives a
// reopen, is left alone by batches without one, and rolls back with a
// failed commit.
func (s *suite) cursor(t *testing.T) {
	name := storeName(t, "")
	st, closeStore := s.openStore(t, name)
	if c := load(t, st).Cursor; c != "" {
		t.Fatalf("Cursor of a new store = %q, want empty", c)
	}
	commit(t, st, &engine.Batch{Cursor: `{"p":3,"o":41}`})
	commit(t, st, &engine.Batch{Products: []pricing.Product{product("sku-1")}})
	equal(t, "cursor after a batch without one", load(t, st).Cursor, `{"p":3,"o":41}`)
	commit(t, st, &engine.Batch{Cursor: `{"p":3,"o":42}`, States: []engine.ProductState{{ID: "sku-1", State: state(1)}},
		Products: []pricing.Product{product("sku-1")}})
	closeStore()
	st, _ = s.openStore(t, name)
	equal(t, "cursor after reopen", load(t, st).Cursor, `{"p":3,"o":42}`)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := st.Commit(ctx, &engine.Batch{Cursor: "lost"}); err == nil {
		t.Fatal("Commit with a cancelled context succeeded")
	}
	equal(t, "cursor after a failed commit", load(t, st).Cursor, `{"p":3,"o":42}`)
}

// productUpdate checks that an update replaces every field: one that is
// cleared (sku-1 loses its cost, margin and both plans) is gone, and one
// that is set appears (sku-3 gains a competitor rule and only that).
func (s *suite) productUpdate(t *testing.T) {
	name := storeName(t, "")
	st, closeStore := s.openStore(t, name)
	p := product("sku-1")
	q := pricing.Product{ID: "sku-3", BasePrice: 3}
	commit(t, st, &engine.Batch{Products: []pricing.Product{p, product("sku-2"), q}})
	p.Name, p.BasePrice, p.Strategy, p.Guardrails = "", 5.25, "", pricing.Guardrails{Rounding: "whole"}
	p.UnitCost, p.Inventory, p.Competition = 0, nil, nil
	q.Competition = &pricing.CompetitorRule{Mode: "above", Amount: 1.5}
	commit(t, st, &engine.Batch{Products: []pricing.Product{p, q}, Settings: map[string]string{"k": "v2"}})
	commit(t, st, &engine.Batch{Settings: map[string]string{"k": "v3", "other": "x"}})
	closeStore()
	st, _ = s.openStore(t, name)
	snap := load(t, st)
	got := slices.Clone(snap.Products)
	slices.SortFunc(got, func(a, b pricing.Product) int { return strings.Compare(a.ID, b.ID) })
	productsEqual(t, "products after update", got, []pricing.Product{p, product("sku-2"), q})
	equal(t, "settings after update", snap.Settings, map[string]string{"k": "v3", "other": "x"})
}

func (s *suite) stateUpdate(t *testing.T) {
	name := storeName(t, "")
	st, closeStore := s.openStore(t, name)
	commit(t, st, &engine.Batch{
		Products: []pricing.Product{product("a"), product("b")},
		States:   []engine.ProductState{{ID: "a", State: state(1)}, {ID: "b", State: state(2)}},
	})
	commit(t, st, &engine.Batch{States: []engine.ProductState{{ID: "a", State: state(3)}}})
	closeStore()
	st, _ = s.openStore(t, name)
	equal(t, "states after update", load(t, st).StateMap(), map[string]pricing.State{"a": state(3), "b": state(2)})
}

func (s *suite) history(t *testing.T) {
	name := storeName(t, "")
	st, closeStore := s.openStore(t, name)
	commit(t, st, &engine.Batch{Products: []pricing.Product{product("a"), product("b")}})
	row := func(id string, at int64, v uint64, src pricing.Source) engine.HistoryRow {
		return engine.HistoryRow{ProductID: id, Price: 10 + float64(v)/100, Demand: float64(v) * 1.5, Source: src, At: at, Version: v}
	}
	// Two commits; "a" has two changes in the same nanosecond, which the
	// version orders. The rows are not in key order (engine.SortHistory):
	// that order only spares a store work, and any order must be stored.
	commit(t, st, &engine.Batch{History: []engine.HistoryRow{
		row("a", base+10, 1, pricing.SourceBase),
		row("b", base+15, 1, pricing.SourceDynamic),
		row("a", base+20, 2, pricing.SourceDynamic),
		row("a", base+20, 3, pricing.SourceOverride),
	}})
	commit(t, st, &engine.Batch{History: []engine.HistoryRow{
		row("a", base+30, 4, pricing.SourceDynamic),
		row("b", base+31, 2, pricing.SourceOverride),
	}})
	wantA := []engine.HistoryRow{
		row("a", base+30, 4, pricing.SourceDynamic),
		row("a", base+20, 3, pricing.SourceOverride),
		row("a", base+20, 2, pricing.SourceDynamic),
		row("a", base+10, 1, pricing.SourceBase),
	}
	wantB := []engine.HistoryRow{
		row("b", base+31, 2, pricing.SourceOverride),
		row("b", base+15, 1, pricing.SourceDynamic),
	}
	check := func(when string) {
		t.Helper()
		equal(t, when+": History(a, 100)", history(t, st, "a", 100), wantA)
		equal(t, when+": History(a, 4)", history(t, st, "a", 4), wantA)
		equal(t, when+": History(a, 3)", history(t, st, "a", 3), wantA[:3])
		equal(t, when+": History(a, 1)", history(t, st, "a", 1), wantA[:1])
		equal(t, when+": History(b, 10)", history(t, st, "b", 10), wantB)
		equal(t, when+": History(c, 10)", history(t, st, "c", 10), nil)
	}
	check("before reopen")
	closeStore()
	st, _ = s.openStore(t, name)
	check("after reopen")
}

func (s *suite) overrides(t *testing.T) {
	name := storeName(t, "")
	st, closeStore := s.openStore(t, name)
	commit(t, st, &engine.Batch{Products: []pricing.Product{product("a"), product("b")}})

	first := engine.OverrideRecord{ProductID: "a", Price: 12.5, Reason: "launch", By: "alice", CreatedAt: base + 100}
	commit(t, st, &engine.Batch{Overrides: sets(first)})
	equal(t, "audit after the first set", audit(t, st, "a", 10), []engine.OverrideRecord{first})

	second := engine.OverrideRecord{ProductID: "a", Price: 11, Reason: "price match, \"competitor\"", By: "bob",
		CreatedAt: base + 200, ExpiresAt: base + 10_000}
	other := engine.OverrideRecord{ProductID: "b", Price: 99.99, Reason: "other product", By: "carol", CreatedAt: base + 150}
	commit(t, st, &engine.Batch{Overrides: sets(second, other)})
	replaced := first
	replaced.EndedAt, replaced.EndedBy, replaced.EndReason = second.CreatedAt, second.By, "replaced"
	equal(t, "audit after the second set", audit(t, st, "a", 10), []engine.OverrideRecord{second, replaced})

	commit(t, st, &engine.Batch{Overrides: []engine.OverrideChange{end("a", base+300, "dave", "removed")}})
	removed := second
	removed.EndedAt, removed.EndedBy, removed.EndReason = base+300, "dave", "removed"
	want := []engine.OverrideRecord{removed, replaced}
	equal(t, "audit after the removal", audit(t, st, "a", 10), want)
	equal(t, "audit limited to 1", audit(t, st, "a", 1), want[:1])
	equal(t, "audit of the other product", audit(t, st, "b", 10), []engine.OverrideRecord{other})

	// Ending a product that has no open override changes nothing.
	commit(t, st, &engine.Batch{Overrides: []engine.OverrideChange{end("a", base+400, "system", "expired")}})
	closeStore()
	st, _ = s.openStore(t, name)
	equal(t, "audit after reopen", audit(t, st, "a", 10), want)
	equal(t, "audit of the other product after reopen", audit(t, st, "b", 10), []engine.OverrideRecord{other})
}

// overridesInOneBatch checks that the override changes of one batch apply
// in the batch's order, also when they share a timestamp (a stream-fed
// engine applies every record of a poll at the same instant), so the
// audit trail and the open override are the ones the engine ended with.
func (s *suite) overridesInOneBatch(t *testing.T) {
	name := storeName(t, "")
	st, closeStore := s.openStore(t, name)
	commit(t, st, &engine.Batch{Products: []pricing.Product{product("a"), product("b"), product("c")}})

	// a: set, removed, set again, all at one instant: the first ends
	// "removed", the second stays open.
	a1 := engine.OverrideRecord{ProductID: "a", Price: 5, Reason: "first", By: "alice", CreatedAt: base}
	a2 := engine.OverrideRecord{ProductID: "a", Price: 6, Reason: "second", By: "bob", CreatedAt: base}
	// b: an open override expires, then a new one is set, at one instant:
	// the new one stays open.
	oldB := engine.OverrideRecord{ProductID: "b", Price: 6, Reason: "old", By: "alice", CreatedAt: base - 10}
	// c: set, then removed later in the batch: nothing stays open.
	c1 := engine.OverrideRecord{ProductID: "c", Price: 7, Reason: "brief", By: "alice", CreatedAt: base + 10}
	commit(t, st, &engine.Batch{Overrides: sets(oldB)})
	newB := engine.OverrideRecord{ProductID: "b", Price: 7, Reason: "new", By: "bob", CreatedAt: base + 30}
	commit(t, st, &engine.Batch{Overrides: []engine.OverrideChange{
		set(a1),
		set(c1),
		end("a", base, "carol", "removed"),
		end("b", base+30, "system", "expired"),
		set(a2),
		set(newB),
		end("c", base+20, "carol", "removed"),
	}})
	removedA := a1
	removedA.EndedAt, removedA.EndedBy, removedA.EndReason = base, "carol", "removed"
	expiredB := oldB
	expiredB.EndedAt, expiredB.EndedBy, expiredB.EndReason = base+30, "system", "expired"
	removedC := c1
	removedC.EndedAt, removedC.EndedBy, removedC.EndReason = base+20, "carol", "removed"
	check := func(when string) {
		t.Helper()
		equal(t, when+": audit of a", audit(t, st, "a", 10), []engine.OverrideRecord{a2, removedA})
		equal(t, when+": audit of b", audit(t, st, "b", 10), []engine.OverrideRecord{newB, expiredB})
		equal(t, when+": audit of c", audit(t, st, "c", 10), []engine.OverrideRecord{removedC})
	}
	check("before reopen")
	closeStore()
	st, _ = s.openStore(t, name)
	check("after reopen")
}

// set returns the override change that starts o.
func set(o engine.OverrideRecord) engine.OverrideChange { return engine.OverrideChange{Set: &o} }

// sets returns the changes that start rs, in order.
func sets(rs ...engine.OverrideRecord) []engine.OverrideChange {
	out := make([]engine.OverrideChange, len(rs))
	for i := range rs {
		out[i] = set(rs[i])
	}
	return out
}

// end returns the override change that ends id's open override.
func end(id string, at int64, by, reason string) engine.OverrideChange {
	return engine.OverrideChange{End: &engine.OverrideEnd{ProductID: id, At: at, By: by, Reason: reason}}
}

// seen checks that the remembered ids round-trip exactly, oldest first,
// with every bit of their hashes: the top bit too, which a store whose
// integers are signed must keep by storing the same bits. Repeats of an
// id (at different times) are all returned: the engine keeps the earliest.
func (s *suite) seen(t *testing.T) {
	name := storeName(t, "")
	st, closeStore := s.openStore(t, name)
	h := engine.EventHash
	first := []engine.SeenID{
		{Hash: h("e-3"), At: base + 1},
		{Hash: h("e-1"), At: base + 2},
		{Hash: h("e-2"), At: base + 2},
		{Hash: 1<<63 | 5, At: base + 2},
		{Hash: math.MaxUint64, At: base + 3},
		{Hash: 0, At: base + 3},
		{Hash: 1<<63 - 1, At: base + 3},
		{Hash: h("e-1"), At: base + 4}, // repeated within the batch
	}
	second := []engine.SeenID{
		{Hash: h("e-2"), At: base + 10}, // repeated from an earlier batch
		{Hash: h("e-4"), At: base + 11},
		{Hash: h("550e8400-e29b-41d4-a716-446655440000"), At: base + 12},
	}
	commit(t, st, &engine.Batch{Seen: first})
	commit(t, st, &engine.Batch{Seen: second})
	want := append(slices.Clone(first), second...)
	byTimeAndHash := func(x, y engine.SeenID) int {
		return cmp.Or(cmp.Compare(x.At, y.At), cmp.Compare(x.Hash, y.Hash))
	}
	slices.SortFunc(want, byTimeAndHash)
	check := func(when string) {
		t.Helper()
		got := load(t, st).Seen
		if !slices.IsSortedFunc(got, func(x, y engine.SeenID) int { return cmp.Compare(x.At, y.At) }) {
			t.Errorf("%s: seen not oldest first: %+v", when, got)
		}
		// Ids seen in the same nanosecond may come in any order.
		slices.SortFunc(got, byTimeAndHash)
		equal(t, when+": seen", got, want)
	}
	check("before reopen")
	closeStore()
	st, _ = s.openStore(t, name)
	check("after reopen")
}

// seenHash is a hash for the i-th id of a fixture: many of them have the
// top bit set, so pruning is checked across the sign of a store's integers.
func seenHash(tag string, i int) uint64 { return engine.EventHash(fmt.Sprintf("%s-%06d", tag, i)) }

func (s *suite) pruneSeen(t *testing.T) {
	name := storeName(t, "")
	st, closeStore := s.openStore(t, name)
	var all []engine.SeenID
	for i := range 10 {
		all = append(all, engine.SeenID{Hash: seenHash("id", i), At: base + int64(i)})
	}
	commit(t, st, &engine.Batch{Seen: all})
	ctx := ctxFor(t)

	// By age: everything seen before base+4 goes; base+4 itself stays.
	if err := st.PruneSeen(ctx, base+4, 100); err != nil {
		t.Fatalf("PruneSeen by age: %v", err)
	}
	equal(t, "seen after pruning by age", load(t, st).Seen, all[4:])

	// By count: only the newest 3 stay.
	if err := st.PruneSeen(ctx, base, 3); err != nil {
		t.Fatalf("PruneSeen by count: %v", err)
	}
	equal(t, "seen after pruning by count", load(t, st).Seen, all[7:])

	// Both at once, where age is the stricter limit.
	if err := st.PruneSeen(ctx, base+9, 3); err != nil {
		t.Fatalf("PruneSeen by age and count: %v", err)
	}
	equal(t, "seen after pruning by both", load(t, st).Seen, all[9:])

	// Pruning more than there is, and pruning an empty set, are fine.
	if err := st.PruneSeen(ctx, base+100_000, 1); err != nil {
		t.Fatalf("PruneSeen of everything: %v", err)
	}
	if err := st.PruneSeen(ctx, base+100_000, 1); err != nil {
		t.Fatalf("PruneSeen of nothing: %v", err)
	}
	closeStore()
	st, _ = s.openStore(t, name)
	equal(t, "seen after pruning and reopen", load(t, st).Seen, nil)
}

// bigBatch returns a batch touching every part of the schema, with n
// history rows and n seen ids, for products a and b.
func bigBatch(n int, tag string) *engine.Batch {
	b := &engine.Batch{
		Products: []pricing.Product{product("a"), product("b")},
		States:   []engine.ProductState{{ID: "a", State: state(n)}},
		Overrides: []engine.OverrideChange{
			end("b", base, "x", "removed"),
			set(engine.OverrideRecord{ProductID: "a", Price: 3, Reason: tag, By: "x", CreatedAt: base + int64(n)}),
		},
		Settings: map[string]string{"tag": tag},
	}
	for i := range n {
		b.History = append(b.History, engine.HistoryRow{ProductID: "a", Price: float64(i), Demand: 1,
			Source: pricing.SourceDynamic, At: base + int64(i), Version: uint64(i + 1)})
		b.Seen = append(b.Seen, engine.SeenID{Hash: seenHash(tag, i), At: base + int64(i)})
	}
	return b
}

func (s *suite) cancelledContext(t *testing.T) {
	name := storeName(t, "")
	st, closeStore := s.openStore(t, name)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := st.Commit(ctx, bigBatch(100, "cancelled")); err == nil {
		t.Fatal("Commit with a cancelled context succeeded")
	}
	expired, cancel2 := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel2()
	if err := st.Commit(expired, bigBatch(100, "expired")); err == nil {
		t.Fatal("Commit with an expired context succeeded")
	}
	assertEmpty(t, st, "after cancelled commits")
	closeStore()
	st, _ = s.openStore(t, name)
	assertEmpty(t, st, "after cancelled commits and reopen")
	// The store still works.
	commit(t, st, bigBatch(10, "ok"))
	if got := len(history(t, st, "a", 100)); got != 10 {
		t.Errorf("History after a good commit has %d rows, want 10", got)
	}
}

// assertEmpty fails unless st holds nothing at all.
func assertEmpty(t *testing.T, st Store, when string) {
	t.Helper()
	snap := load(t, st)
	if len(snap.Products) != 0 || snap.NumStated() != 0 || len(snap.Seen) != 0 || len(snap.Settings) != 0 {
		t.Errorf("%s: Load = %d products, %d states, %d seen, %d settings; want nothing",
			when, len(snap.Products), snap.NumStated(), len(snap.Seen), len(snap.Settings))
	}
	for _, id := range []string{"a", "b"} {
		if h := history(t, st, id, 10); len(h) != 0 {
			t.Errorf("%s: History(%s) = %d rows, want none", when, id, len(h))
		}
		if a := audit(t, st, id, 10); len(a) != 0 {
			t.Errorf("%s: OverrideAudit(%s) = %d rows, want none", when, id, len(a))
		}
	}
}

// cancelAfter is a context that is cancelled once it has been consulted
// (Done or Err) n times, so that a Commit is cancelled somewhere in the
// middle, wherever the implementation happens to look.
type cancelAfter struct {
	context.Context
	mu     sync.Mutex
	n      int
	done   chan struct{}
	closed bool
}

func newCancelAfter(n int) *cancelAfter {
	return &cancelAfter{Context: context.Background(), n: n, done: make(chan struct{})}
}

// consult counts one look at the context and reports whether it is done.
func (c *cancelAfter) consult() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n--; c.n < 0 && !c.closed {
		close(c.done)
		c.closed = true
	}
	return c.closed
}

func (c *cancelAfter) Done() <-chan struct{} {
	c.consult()
	return c.done
}

func (c *cancelAfter) Err() error {
	if c.consult() {
		return context.Canceled
	}
	return nil
}

// cancelDuringCommit cancels commits at many points and checks that each
// is all or nothing.
func (s *suite) cancelDuringCommit(t *testing.T) {
	st, _ := s.openStore(t, storeName(t, ""))
	const n = 5000
	committed := 0
	failed := 0
	for k := 0; k < 200; k += 7 {
		tag := fmt.Sprintf("k%03d", k)
		b := bigBatch(n, tag)
		// Distinct history keys per attempt.
		for i := range b.History {
			b.History[i].At += int64(k) * 1_000_000
		}
		err := st.Commit(newCancelAfter(k), b)
		snap := load(t, st)
		ofTag := make(map[uint64]bool, n)
		for _, id := range b.Seen {
			ofTag[id.Hash] = true
		}
		seenTag := 0
		for _, id := range snap.Seen {
			if ofTag[id.Hash] {
				seenTag++
			}
		}
		if err != nil {
			failed++
			if seenTag != 0 || snap.Settings["tag"] == tag {
				t.Fatalf("Commit cancelled after %d checks failed (%v) but left %d seen ids, settings %v",
					k, err, seenTag, snap.Settings)
			}
		} else {
			committed++
			if seenTag != n || snap.Settings["tag"] != tag {
				t.Fatalf("Commit cancelled after %d checks succeeded but left %d of %d seen ids, settings %v",
					k, seenTag, n, snap.Settings)
			}
		}
		if h := len(history(t, st, "a", 1_000_000)); h != committed*n {
			t.Fatalf("after %d good commits History has %d rows, want %d", committed, h, committed*n)
		}
	}
	t.Logf("%d commits cancelled, %d committed", failed, committed)
	if failed == 0 {
		t.Errorf("no commit failed although each context was cancelled; was ctx ever consulted?")
	}
}

// failedCommit checks that a commit the store rejects part-way (an
// override for a product that does not exist, written after the history
// rows) leaves nothing behind. A store that accepts such an override is
// not wrong, and the test then only checks that the batch is whole.
func (s *suite) failedCommit(t *testing.T) {
	st, _ := s.openStore(t, storeName(t, ""))
	b := bigBatch(1000, "bad")
	b.Products = b.Products[:1] // "b" is not in the catalog
	b.Overrides = append(b.Overrides[1:], set(engine.OverrideRecord{ProductID: "b", Price: 1, CreatedAt: base + 5}))
	if err := st.Commit(ctxFor(t), b); err != nil {
		assertEmpty(t, st, "after a failed commit")
		return
	}
	if got := len(history(t, st, "a", 5000)); got != 1000 {
		t.Errorf("History has %d rows after the commit, want 1000", got)
	}
}

func (s *suite) largeBatch(t *testing.T) {
	name := storeName(t, "")
	st, closeStore := s.openStore(t, name)
	const n = 20_000
	b := bigBatch(n, "big")
	// Many products with a state each, as when a batch's events are spread
	// over a large catalog.
	states := map[string]pricing.State{"a": b.States[0].State}
	for i := range 1000 {
		id := fmt.Sprintf("many-%04d", i)
		b.Products = append(b.Products, product(id))
		b.States = append(b.States, engine.ProductState{ID: id, State: state(i)})
		states[id] = state(i)
	}
	commit(t, st, b)
	check := func(when string) {
		t.Helper()
		snap := load(t, st)
		if len(snap.Products) != len(b.Products) {
			t.Errorf("%s: %d products, want %d", when, len(snap.Products), len(b.Products))
		}
		equal(t, when+": states", snap.StateMap(), states)
		h := history(t, st, "a", n+100)
		if len(h) != n {
			t.Fatalf("%s: History has %d rows, want %d", when, len(h), n)
		}
		for i, r := range h {
			want := b.History[n-1-i]
			if r != want {
				t.Fatalf("%s: History[%d] = %+v, want %+v", when, i, r, want)
			}
		}
		equal(t, when+": seen", snap.Seen, b.Seen)
	}
	check("before reopen")
	closeStore()
	st, _ = s.openStore(t, name)
	check("after reopen")
}

func (s *suite) concurrentReads(t *testing.T) {
	st, _ := s.openStore(t, storeName(t, ""))
	commit(t, st, &engine.Batch{Products: []pricing.Product{product("a")}})
	ctx, cancel := context.WithCancel(ctxFor(t))
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for r := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			last := 0
			for reads := 0; ctx.Err() == nil; reads++ {
				var err error
				if r%2 == 0 {
					var h []engine.HistoryRow
					h, err = st.History(ctx, "a", 50)
					if err == nil {
						if !slices.IsSortedFunc(h, func(x, y engine.HistoryRow) int { return cmp.Compare(y.At, x.At) }) {
							err = fmt.Errorf("history not newest first: %+v", h)
						} else if len(h) < last {
							err = fmt.Errorf("history shrank from %d to %d rows", last, len(h))
						}
						last = len(h)
					}
				} else {
					_, err = st.OverrideAudit(ctx, "a", 50)
				}
				if err != nil && ctx.Err() == nil {
					errs <- err
					return
				}
			}
		}()
	}
	const commits, rows = 12, 1000
	for i := range commits {
		b := &engine.Batch{
			Overrides: sets(engine.OverrideRecord{ProductID: "a", Price: 2, By: "x", CreatedAt: base + int64(i)*1_000_000}),
		}
		for j := range rows {
			at := base + int64(i)*1_000_000 + int64(j)
			b.History = append(b.History, engine.HistoryRow{ProductID: "a", Price: 1, At: at, Version: uint64(i*rows + j + 1)})
			b.Seen = append(b.Seen, engine.SeenID{Hash: seenHash(fmt.Sprint("c", i), j), At: at})
		}
		commit(t, st, b)
	}
	cancel()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("concurrent read: %v", err)
	}
	if got := len(history(t, st, "a", 100_000)); got != commits*rows {
		t.Errorf("History has %d rows, want %d", got, commits*rows)
	}
}

func (s *suite) independentNames(t *testing.T) {
	a, _ := s.openStore(t, storeName(t, "a"))
	b, _ := s.openStore(t, storeName(t, "b"))
	commit(t, a, bigBatch(10, "a"))
	assertEmpty(t, b, "the other store")
	if got := len(load(t, a).Seen); got != 10 {
		t.Errorf("store a has %d seen ids, want 10", got)
	}
}

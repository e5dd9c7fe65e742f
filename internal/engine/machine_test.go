package engine_test

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dynaprice/dynaprice/internal/engine"
	"github.com/dynaprice/dynaprice/internal/ingest"
	"github.com/dynaprice/dynaprice/internal/pricing"
)

// TestAutoCreate: with AutoCreate an event for an unknown product creates
// it from the price the shopper saw; without a price, or from a market
// signal (a competitor's price is not a list price), it does not; without
// AutoCreate nothing is created.
func TestAutoCreate(t *testing.T) {
	now := int64(1_800_000_000e9)
	for _, auto := range []bool{false, true} {
		cfg := engine.DefaultConfig()
		cfg.AutoCreate = auto
		m := engine.NewMachine(cfg)
		if _, err := m.Load(engine.Snapshot{}, now); err != nil {
			t.Fatal(err)
		}
		var res engine.SubmitResult
		m.ApplyEvents([]ingest.Event{
			{Type: pricing.CompetitorPrice, ProductID: "NEW", Price: 50, Competitor: "B", Quantity: 1},
			{Type: pricing.Stock, ProductID: "NEW", Quantity: 5},
			{Type: pricing.View, ProductID: "NOPRICE", Quantity: 1},
			{Type: pricing.View, ProductID: "NEW", Price: 19.999, Quantity: 1},
		}, now, &res)
		wantAccepted := 0
		if auto {
			wantAccepted = 1
		}
		if res.Accepted != wantAccepted || len(res.Rejects) != 4-wantAccepted {
			t.Fatalf("auto=%v: accepted %d, rejects %+v", auto, res.Accepted, res.Rejects)
		}
		for _, r := range res.Rejects[:2] {
			if r.Error != `unknown product_id "NEW" (not in the catalog)` {
				t.Errorf("auto=%v: signal for an unknown product: %q", auto, r.Error)
			}
		}
		if m.Has("NOPRICE") || m.Has("NEW") != auto {
			t.Fatalf("auto=%v: NOPRICE %v, NEW %v", auto, m.Has("NOPRICE"), m.Has("NEW"))
		}
		if auto {
			if e, _ := m.Explain("NEW"); e.BasePrice != 20 {
				t.Errorf("created with base %v, want 20 (the shown price, in cents)", e.BasePrice)
			}
			if b, _ := m.Seal(); len(b.Products) != 1 || b.Products[0].ID != "NEW" {
				t.Errorf("batch products %+v, want the created one", b.Products)
			}
		}
	}
}

// TestBatchKeepsOverrideOrder: a batch lists override changes in the order
// the machine applied them, also at one instant (a stream-fed engine
// applies every record of a poll at the same now), expiries included.
func TestBatchKeepsOverrideOrder(t *testing.T) {
	now := int64(1_800_000_000e9)
	m := engine.NewMachine(engine.DefaultConfig())
	if _, err := m.Load(engine.Snapshot{Products: []pricing.Product{{ID: "A", BasePrice: 10}, {ID: "B", BasePrice: 10}}}, now); err != nil {
		t.Fatal(err)
	}
	m.Begin()
	for _, step := range []func() error{
		func() error { return m.SetOverride(engine.OverrideInput{ProductID: "A", Price: 5, By: "alice"}, now) },
		func() error { return m.ClearOverride(engine.OverrideInput{ProductID: "A", By: "bob"}, now) },
		func() error {
			return m.SetOverride(engine.OverrideInput{ProductID: "B", Price: 7, By: "carol", ExpiresAt: time.Unix(0, now+1)}, now)
		},
		func() error { return m.SetOverride(engine.OverrideInput{ProductID: "A", Price: 6, By: "dave"}, now) },
		func() error { m.Tick(now + 1); return nil }, // B expires
	} {
		if err := step(); err != nil {
			t.Fatal(err)
		}
	}
	b, _ := m.Seal()
	var got []string
	for _, c := range b.Overrides {
		switch {
		case c.Set != nil && c.End == nil:
			got = append(got, fmt.Sprintf("set %s %v by %s at %d", c.Set.ProductID, c.Set.Price, c.Set.By, c.Set.CreatedAt-now))
		case c.End != nil && c.Set == nil:
			got = append(got, fmt.Sprintf("end %s %s by %s at %d", c.End.ProductID, c.End.Reason, c.End.By, c.End.At-now))
		default:
			t.Fatalf("change %+v: want exactly one of Set and End", c)
		}
	}
	want := []string{
		"set A 5 by alice at 0",
		"end A removed by bob at 0",
		"set B 7 by carol at 0",
		"set A 6 by dave at 0",
		"end B expired by system at 1",
	}
	if !slices.Equal(got, want) {
		t.Errorf("batch overrides:\n got %q\nwant %q", got, want)
	}
	m.Begin()
	if b, _ := m.Seal(); len(b.Overrides) != 0 {
		t.Errorf("after Begin the batch still has %d override changes", len(b.Overrides))
	}
}

// TestSealSortsHistory: the sealed batch's history is in key order
// (product, time, version) whatever order the changes were applied in.
func TestSealSortsHistory(t *testing.T) {
	now := int64(1_800_000_000e9)
	m := engine.NewMachine(engine.DefaultConfig())
	ps := []pricing.Product{{ID: "C", BasePrice: 10}, {ID: "A", BasePrice: 10}, {ID: "B", BasePrice: 10}}
	if _, err := m.Load(engine.Snapshot{Products: ps}, now); err != nil {
		t.Fatal(err)
	}
	m.Begin()
	var res engine.SubmitResult
	for k := range 3 {
		at := now + int64(k)
		for _, id := range []string{"C", "B", "A", "C"} {
			if err := m.SetOverride(engine.OverrideInput{ProductID: id, Price: float64(10 + k)}, at); err != nil {
				t.Fatal(err)
			}
			m.ApplyEvents([]ingest.Event{{Type: pricing.Purchase, ProductID: id, Quantity: 1}}, at, &res)
			if err := m.ClearOverride(engine.OverrideInput{ProductID: id}, at); err != nil {
				t.Fatal(err)
			}
		}
	}
	b, _ := m.Seal()
	if len(b.History) < 12 {
		t.Fatalf("%d history rows, want at least 12", len(b.History))
	}
	if !slices.IsSortedFunc(b.History, func(x, y engine.HistoryRow) int {
		return cmp.Or(strings.Compare(x.ProductID, y.ProductID), cmp.Compare(x.At, y.At), cmp.Compare(x.Version, y.Version))
	}) {
		t.Errorf("history not in key order: %+v", b.History)
	}
	// A second round reuses the scratch space: rows are neither lost nor
	// repeated, nor left over from the first round.
	m.Begin()
	m.ApplyEvents([]ingest.Event{{Type: pricing.View, ProductID: "B", Quantity: 1}, {Type: pricing.View, ProductID: "A", Quantity: 1},
		{Type: pricing.View, ProductID: "B", Quantity: 1}}, now+10, &res)
	b, _ = m.Seal()
	var got []string
	for _, h := range b.History {
		got = append(got, h.ProductID)
	}
	if strings.Join(got, ",") != "A,B,B" || b.History[1].Version >= b.History[2].Version {
		t.Errorf("second round's history %+v, want A, then B's two rows in version order", b.History)
	}
}

// TestSealSortsHistoryWithoutRanks: history is in key order also when the
// touched products are sorted by their ids rather than by ranks: a large
// catalog of which a round touches little, and products created during
// the round.
func TestSealSortsHistoryWithoutRanks(t *testing.T) {
	now := int64(1_800_000_000e9)
	cfg := engine.DefaultConfig()
	cfg.AutoCreate = true
	m := engine.NewMachine(cfg)
	var ps []pricing.Product
	for i := range 100 {
		ps = append(ps, pricing.Product{ID: fmt.Sprintf("P%03d", 99-i), BasePrice: 10})
	}
	if _, err := m.Load(engine.Snapshot{Products: ps}, now); err != nil {
		t.Fatal(err)
	}
	// The first round records the first prices of the products loaded
	// without a state: seal it, so the rounds below hold only their own.
	m.Begin()
	if b, _ := m.Seal(); len(b.History) != 100 || !slices.IsSortedFunc(b.History, func(x, y engine.HistoryRow) int { return strings.Compare(x.ProductID, y.ProductID) }) {
		t.Fatalf("first prices: %d rows, want 100 in id order", len(b.History))
	}
	keyOrder := func(x, y engine.HistoryRow) int {
		return cmp.Or(strings.Compare(x.ProductID, y.ProductID), cmp.Compare(x.At, y.At), cmp.Compare(x.Version, y.Version))
	}
	for round, ids := range [][]string{{"P050", "P007", "P050"}, {"ZNEW", "P001", "ANEW", "P001"}} {
		m.Begin()
		var res engine.SubmitResult
		for _, id := range ids {
			m.ApplyEvents([]ingest.Event{{Type: pricing.Purchase, ProductID: id, Quantity: 1, Price: 10}}, now, &res)
		}
		b, _ := m.Seal()
		if len(b.History) != len(ids) || !slices.IsSortedFunc(b.History, keyOrder) {
			t.Errorf("round %d: history %+v, want %d rows in key order", round, b.History, len(ids))
		}
	}
}

// TestIngestCannotMovePricesWithoutBound is the attack: one request
// of 1,000 purchases × quantity 10,000 took a price from 269 to 35,624.
// The quantity cap refuses each such event with a reason (its id is not
// remembered, so a corrected retry counts), and the price-velocity breaker
// holds the price when events within the cap still push it too far, until
// an operator releases it.
func TestIngestCannotMovePricesWithoutBound(t *testing.T) {
	now := int64(1_800_000_000e9)
	cfg := engine.DefaultConfig()
	cfg.Pricing.Limits = pricing.Limits{MaxQuantity: 100, MaxMovePct: 50, MoveWindow: pricing.Duration(15 * time.Minute)}
	m := engine.NewMachine(cfg)
	if _, err := m.Load(engine.Snapshot{Products: []pricing.Product{{ID: "PA", BasePrice: 269}}}, now); err != nil {
		t.Fatal(err)
	}
	flood := func(qty int32, idPrefix string) engine.SubmitResult {
		evs := make([]ingest.Event, 1000)
		for i := range evs {
			evs[i] = ingest.Event{Type: pricing.Purchase, ProductID: "PA", Quantity: qty, EventID: fmt.Sprintf("%s-%d", idPrefix, i)}
		}
		var res engine.SubmitResult
		m.ApplyEvents(evs, now+1, &res)
		return res
	}
	res := flood(10_000, "e")
	if res.Accepted != 0 || len(res.Rejects) != 1000 ||
		res.Rejects[0].Error != `quantity 10000 is above product "PA"'s max_quantity 100` {
		t.Fatalf("quantity 10,000: accepted %d, %d rejects, first %+v", res.Accepted, len(res.Rejects), res.Rejects[0])
	}
	if p := m.PriceAt(0); p != 269 {
		t.Fatalf("rejected events moved the price to %v", p)
	}
	// The same ids with a quantity within the cap: not duplicates.
	res = flood(100, "e")
	if res.Accepted != 1000 || res.Duplicates != 0 || len(res.Rejects) != 0 {
		t.Fatalf("quantity 100: %+v", res)
	}
	// The first purchase (demand 500) moves it 41.6%, within the 50%; the
	// second would move it 58.8%, and trips the breaker.
	want, held := pricing.RoundCents(269+5*math.Sqrt(1000*100*5)), pricing.RoundCents(269+5*math.Sqrt(500))
	if p := m.PriceAt(0); p != held || p > 269*1.5 {
		t.Fatalf("price %v, want held at %v (the strategy wants %v)", p, held, want)
	}
	if n, ids := m.Tripped(); n != 1 || !slices.Equal(ids, []string{"PA"}) {
		t.Fatalf("Tripped = %d %v", n, ids)
	}
	e, _ := m.Explain("PA")
	if e.Breaker == nil || e.Breaker.Wanted != want || e.Price != held || e.Breaker.Anchor != 269 {
		t.Fatalf("explanation: price %v breaker %+v", e.Price, e.Breaker)
	}
	m.Tick(now + 2)
	if m.Held() != 1 {
		t.Fatalf("Held = %d after a tick, want 1", m.Held())
	}
	if err := m.Release("PA", now+3); err != nil {
		t.Fatal(err)
	}
	if p := m.PriceAt(0); p != want {
		t.Fatalf("released price %v, want %v", p, want)
	}
	if err := m.Release("PA", now+4); err == nil || !strings.Contains(err.Error(), "not held") {
		t.Fatalf("second release: %v", err)
	}
	if err := m.Release("ZZ", now+4); err == nil || !strings.Contains(err.Error(), "unknown product_id") {
		t.Fatalf("release of an unknown product: %v", err)
	}
	// The release is committed with the product's state.
	b, prices := m.Seal()
	if len(b.States) != 1 || b.States[0].State.Brake.Held != 0 || len(prices) != 1 || prices[0].Price != want {
		t.Fatalf("sealed %+v, published %+v", b.States, prices)
	}
}

// TestNewDefaultStrategyCommitsEveryRepricedState: a new default strategy
// changes the state of every product that follows it (the strategy's
// trace and demand figure), also where the published price stays the same
// (here held by a ceiling); all of them are in the batch, so the state a
// restart loads is the state in memory.
func TestNewDefaultStrategyCommitsEveryRepricedState(t *testing.T) {
	now := int64(1_800_000_000e9)
	m := engine.NewMachine(engine.DefaultConfig())
	snap := engine.Snapshot{Products: []pricing.Product{{ID: "PA", BasePrice: 100, Guardrails: pricing.Guardrails{Ceiling: 100}}},
		Settings: map[string]string{"default_strategy": "seed"}}
	if _, err := m.Load(snap, now); err != nil {
		t.Fatal(err)
	}
	m.Begin()
	var res engine.SubmitResult
	m.ApplyEvents([]ingest.Event{{Type: pricing.Cart, ProductID: "PA", Quantity: 1}}, now, &res)
	m.Seal()
	m.Begin()
	if err := m.Import(nil, "decay", now+int64(6*time.Hour)); err != nil {
		t.Fatal(err)
	}
	b, changes := m.Seal()
	info := m.Products()[0]
	if info.Price != 100 || info.Demand == 3 {
		t.Fatalf("PA at %v with demand figure %v: want the ceiling's 100 and a decayed demand", info.Price, info.Demand)
	}
	if len(b.States) != 1 || b.States[0].State.DynDemand != info.Demand || len(b.History) != 0 {
		t.Fatalf("batch states %+v, history %d rows: want PA's new state (demand figure %v) and no history", b.States, len(b.History), info.Demand)
	}
	if len(changes) != 1 || changes[0].PriceChanged {
		t.Fatalf("changes %+v: want PA's, its price unchanged", changes)
	}
}

// TestRetryAfterJunkFlood is the attack of issue 11: a client floods the
// engine with 1.1M junk event ids within seconds, then a retry of an event
// acknowledged before the flood arrives, well within the dedup window.
// With the default cap, far above the flood, the retry is a duplicate and
// nothing was evicted. With the old cap of 1M the flood pushed the
// acknowledged id out and its retry counted twice, which the second case
// keeps as a check that this test can see the failure.
func TestRetryAfterJunkFlood(t *testing.T) {
	const junk = 1_100_000
	for _, tc := range []struct {
		max       int
		duplicate bool
	}{
		{engine.DefaultDedupMax, true},
		{1_000_000, false},
	} {
		cfg := engine.DefaultConfig()
		cfg.DedupMax = tc.max
		m := engine.NewMachine(cfg)
		now := int64(1_800_000_000e9)
		if _, err := m.Load(engine.Snapshot{Products: []pricing.Product{{ID: "PA", BasePrice: 299}}}, now); err != nil {
			t.Fatal(err)
		}
		order := ingest.Event{Type: pricing.Purchase, ProductID: "PA", Quantity: 1, EventID: "order-1001-PA"}
		var res engine.SubmitResult
		m.ApplyEvents([]ingest.Event{order}, now, &res)
		if res.Accepted != 1 || res.Duplicates != 0 {
			t.Fatalf("max %d: the order: %+v", tc.max, res)
		}
		// 4 s of junk, in rounds of 10,000 as the engine commits them.
		round := make([]ingest.Event, 10_000)
		for i := 0; i < junk; i += len(round) {
			m.Begin()
			for k := range round {
				round[k] = ingest.Event{Type: pricing.View, ProductID: "PA", Quantity: 1,
					EventID: "junk-" + strconv.Itoa(i+k)}
			}
			m.ApplyEvents(round, now+int64(i)*4e9/junk, &engine.SubmitResult{})
		}
		m.Begin()
		res = engine.SubmitResult{}
		m.ApplyEvents([]ingest.Event{order}, now+5e9, &res)
		if got := res.Duplicates == 1; got != tc.duplicate {
			t.Errorf("max %d: the retry after the flood: %+v; duplicate %v, want %v", tc.max, res, got, tc.duplicate)
		}
		evicted := m.EvictedInWindow()
		if (evicted == 0) != tc.duplicate {
			t.Errorf("max %d: %d ids evicted within the window", tc.max, evicted)
		}
	}
}

// TestFirstPriceOfASeededCatalogIsHistory: products loaded without a state
// (a catalog seeded straight into the database) get their first price
// recorded in the next round, before what the round itself changes, as a
// product created through the engine does; once only.
func TestFirstPriceOfASeededCatalogIsHistory(t *testing.T) {
	now := int64(1_800_000_000e9)
	m := engine.NewMachine(engine.DefaultConfig())
	snap := engine.Snapshot{
		Products: []pricing.Product{{ID: "PB", BasePrice: 349}, {ID: "PA", BasePrice: 299}},
		States:   []pricing.State{{Price: 350, Source: pricing.SourceDynamic, Version: 7, ChangedAt: now - 1}, {}},
		Stated:   []bool{true, false},
	}
	if _, err := m.Load(snap, now); err != nil {
		t.Fatal(err)
	}
	m.Begin()
	var res engine.SubmitResult
	m.ApplyEvents([]ingest.Event{{Type: pricing.Purchase, ProductID: "PA", Quantity: 1}}, now+1, &res)
	b, changes := m.Seal()
	if len(b.History) != 2 || b.History[0].ProductID != "PA" || b.History[0].Price != 299 || b.History[0].Source != pricing.SourceBase ||
		b.History[0].Version != 1 || b.History[1].Version != 2 || b.History[1].Price != pricing.RoundCents(299+5*math.Sqrt(5)) {
		t.Fatalf("history %+v: want PA's base row, then its purchase", b.History)
	}
	if len(b.States) != 1 || b.States[0].ID != "PA" || len(changes) != 1 {
		t.Fatalf("states %+v, changes %+v: want PA's only (PB has a state)", b.States, changes)
	}
	// A product untouched by the round is recorded too, and not announced.
	m2 := engine.NewMachine(engine.DefaultConfig())
	if _, err := m2.Load(snap, now); err != nil {
		t.Fatal(err)
	}
	m2.Begin()
	b, changes = m2.Seal()
	if len(b.History) != 1 || b.History[0].ProductID != "PA" || len(b.States) != 1 || len(changes) != 1 || changes[0].PriceChanged {
		t.Fatalf("history %+v, states %d, changes %+v", b.History, len(b.States), changes)
	}
	m2.Begin()
	if b, _ := m2.Seal(); len(b.History) != 0 || len(b.States) != 0 {
		t.Fatalf("recorded twice: %+v", b.History)
	}
}

// TestBaseFromEvents is the original's pricing, the compatibility mode:
// every event's price is its product's base price (price = event price +
// sqrt(demand) × 5), unknown products are created from it, and each base
// change is a catalog write committed with the batch.
func TestBaseFromEvents(t *testing.T) {
	now := int64(1_800_000_000e9)
	cfg := engine.DefaultConfig()
	cfg.BaseFromEvents = true
	m := engine.NewMachine(cfg)
	if _, err := m.Load(engine.Snapshot{Products: []pricing.Product{{ID: "PA", BasePrice: 299}}}, now); err != nil {
		t.Fatal(err)
	}
	m.Begin()
	m.Seal()
	m.Begin()
	var res engine.SubmitResult
	m.ApplyEvents([]ingest.Event{
		{Type: pricing.View, ProductID: "PA", Price: 299, Quantity: 1},   // demand 1: 304
		{Type: pricing.Cart, ProductID: "PA", Price: 279.5, Quantity: 1}, // demand 4: 279.50 + 10
		{Type: pricing.View, ProductID: "PX", Price: 10, Quantity: 1},    // created: 10 + 5
		{Type: pricing.View, ProductID: "PA", Quantity: 1},               // no price: the base stays
	}, now+1, &res)
	if res.Accepted != 4 || len(res.Rejects) != 0 {
		t.Fatalf("result %+v", res)
	}
	if p := m.PriceAt(0); p != pricing.RoundCents(279.5+5*math.Sqrt(5)) {
		t.Fatalf("PA = %v, want the last event's 279.50 + sqrt(5) × 5", p)
	}
	e, _ := m.Explain("PX")
	if e.BasePrice != 10 || e.Price != 15 {
		t.Fatalf("PX = %+v", e)
	}
	b, _ := m.Seal()
	var bases []string
	for _, p := range b.Products {
		bases = append(bases, fmt.Sprintf("%s=%v", p.ID, p.BasePrice))
	}
	if !slices.Equal(bases, []string{"PA=279.5", "PX=10"}) {
		t.Fatalf("catalog writes %v, want PA's new base and PX", bases)
	}
	if len(b.History) != 4 {
		t.Fatalf("%d history rows, want one per event (each moved its product's price)", len(b.History))
	}
}

// TestBuffersShrink: one large batch (an import, a burst over a large
// catalog) must not leave the machine's reused batch at its size for the
// life of the process; batches of a steady size keep their buffers.
func TestBuffersShrink(t *testing.T) {
	now := int64(1_800_000_000e9)
	m := engine.NewMachine(engine.DefaultConfig())
	if _, err := m.Load(engine.Snapshot{}, now); err != nil {
		t.Fatal(err)
	}
	const big = 200_000
	products := make([]pricing.Product, big)
	for i := range products {
		products[i] = pricing.Product{ID: fmt.Sprintf("P%06d", i), BasePrice: 10}
	}
	m.Begin()
	if err := m.Import(products, "", now); err != nil {
		t.Fatal(err)
	}
	b, _ := m.Seal()
	if len(b.States) != big || len(b.History) != big {
		t.Fatalf("import batch: %d states, %d history rows, want %d", len(b.States), len(b.History), big)
	}
	small := func() *engine.Batch {
		m.Begin()
		var res engine.SubmitResult
		evs := make([]ingest.Event, 100)
		for k := range evs {
			evs[k] = ingest.Event{Type: pricing.View, ProductID: products[k*7].ID, Quantity: 1}
		}
		m.ApplyEvents(evs, now, &res)
		b, _ := m.Seal()
		return b
	}
	// The peak decays by a 32nd a round: some 45 small rounds after the
	// large one, its buffers are dropped.
	for range 60 {
		b = small()
	}
	if len(b.History) != 100 || len(b.States) != 100 {
		t.Fatalf("small batch: %d rows, %d states", len(b.History), len(b.States))
	}
	if c := max(cap(b.History), cap(b.States), cap(b.Products)); c > engine.TrimKeep {
		t.Errorf("after a batch of %d products the next small batches keep a capacity of %d (history %d, states %d)",
			big, c, cap(b.History), cap(b.States))
	}
	// Batches above TrimKeep keep their buffer, also when their size
	// varies (group commits under load: a full round, then a small one):
	// no allocation per batch.
	var p engine.Peak
	s := make([]int, 3*engine.TrimKeep)
	for k := range 200 {
		s = engine.Trim(s, &p)
		if cap(s) != 3*engine.TrimKeep {
			t.Fatalf("round %d: a buffer filled to its capacity every other round was dropped", k)
		}
		if k%2 == 0 {
			s = s[:cap(s)]
		} else {
			s = s[:engine.TrimKeep/2]
		}
	}
	for range 50 {
		s = engine.Trim(s[:0], &p)
	}
	if cap(s) != 0 {
		t.Errorf("a buffer unused for 50 rounds kept its capacity of %d", 3*engine.TrimKeep)
	}
}

// TestAlignPutsStatesInCatalogOrder: a store that reads states by id puts
// them where Snapshot.States wants them; a state of a product outside the
// catalog is dropped, and a product's first state counts.
func TestAlignPutsStatesInCatalogOrder(t *testing.T) {
	snap := engine.Snapshot{Products: []pricing.Product{{ID: "PA"}, {ID: "PB"}, {ID: "PC"}}}
	snap.Align([]engine.ProductState{
		{ID: "PC", State: pricing.State{Version: 3}}, {ID: "PZ", State: pricing.State{Version: 9}},
		{ID: "PA", State: pricing.State{Version: 1}}, {ID: "PA", State: pricing.State{Version: 2}},
	}, nil)
	if len(snap.States) != 3 || !snap.Stated[0] || snap.Stated[1] || !snap.Stated[2] ||
		snap.States[0].Version != 1 || snap.States[2].Version != 3 || snap.NumStated() != 2 {
		t.Errorf("aligned %+v %v", snap.States, snap.Stated)
	}
	snap.Align(nil, nil)
	if snap.States != nil || snap.Stated != nil || snap.NumStated() != 0 {
		t.Errorf("no states: %+v %v", snap.States, snap.Stated)
	}
}

package pricing

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"
)

// seedPrice is the seed formula for a base of 100.
func seedPrice(demand float64) float64 { return RoundCents(100 + 5*math.Sqrt(demand)) }

func breakerBook(t *testing.T, l Limits) *Book {
	t.Helper()
	cfg := DefaultConfig()
	return newBook(t, cfg, Product{ID: "PA", BasePrice: 100, Limits: l})
}

func TestBreakerHoldsAFastMoveUntilTheWindowPasses(t *testing.T) {
	b := breakerBook(t, Limits{MaxMovePct: 50, MoveWindow: Duration(10 * time.Minute)})
	s := b.State(0)
	at := func(d time.Duration) int64 { return t0 + int64(d) }

	b.Apply(0, Purchase, 10, at(time.Minute)) // demand 50
	b.Apply(0, Purchase, 10, at(2*time.Minute))
	if want := seedPrice(100); s.Price != want || b.Held(0) {
		t.Fatalf("a move of exactly 50%%: price %v held %v, want %v published", s.Price, b.Held(0), want)
	}
	v := s.Version
	if changed := b.Apply(0, Purchase, 10, at(3*time.Minute)); changed { // 161.24: more than 50% above 100
		t.Fatalf("a move past 50%% was published: %v", s.Price)
	}
	if s.Price != 150 || s.Version != v || !b.Held(0) || s.Source != SourceDynamic {
		t.Fatalf("tripped: price %v version %d (was %d) held %v source %v, want 150 held", s.Price, s.Version, v, b.Held(0), s.Source)
	}
	if n, ids := b.Tripped(); n != 1 || len(ids) != 1 || ids[0] != 0 {
		t.Fatalf("Tripped = %d %v, want 1 [0]", n, ids)
	}
	e := b.Explain(0)
	if e.Breaker == nil || e.Breaker.Wanted != seedPrice(150) || e.Breaker.Anchor != 100 || e.Price != 150 ||
		e.DynamicPrice != seedPrice(150) || !e.Breaker.ReleaseAt.Equal(time.Unix(0, at(10*time.Minute)).UTC()) ||
		!strings.Contains(e.Breaker.Detail, "50%") {
		t.Fatalf("explanation = %+v (breaker %+v)", e, e.Breaker)
	}
	// Held: more demand moves the wanted price, not the published one,
	// and does not trip it again.
	b.Apply(0, Purchase, 10, at(4*time.Minute)) // demand 200
	if s.Price != 150 || s.Brake.Wanted != seedPrice(200) {
		t.Fatalf("still held: price %v wanted %v", s.Price, s.Brake.Wanted)
	}
	if n, _ := b.Tripped(); n != 0 {
		t.Fatalf("a held product tripped again: %d", n)
	}
	if changed, _ := b.Tick(0, at(9*time.Minute)); changed || !b.Held(0) {
		t.Fatalf("released before the window (opened when the product was) passed")
	}
	// The window passes: a new one starts from the held 150, and 170.71
	// is within 50% of it.
	if changed, _ := b.Tick(0, at(10*time.Minute)); !changed || b.Held(0) || s.Price != seedPrice(200) {
		t.Fatalf("after the window: changed %v held %v price %v, want %v", changed, b.Held(0), s.Price, seedPrice(200))
	}
	if s.Brake.Anchor != 150 || s.Brake.Since != at(10*time.Minute) {
		t.Fatalf("new window = %+v, want anchored at 150 from minute 10", s.Brake)
	}
	if b.Explain(0).Breaker != nil {
		t.Fatal("a released price is still explained as held")
	}
}

func TestBreakerTripsAgainWhenThePriceIsStillTooFar(t *testing.T) {
	b := breakerBook(t, Limits{MaxMovePct: 10, MoveWindow: Duration(time.Minute)})
	s := b.State(0)
	b.Apply(0, Purchase, 100, t0+1) // demand 500: 211.80, far above 110
	if s.Price != 100 || !b.Held(0) {
		t.Fatalf("price %v held %v, want 100 held", s.Price, b.Held(0))
	}
	b.Tripped()
	b.Tick(0, t0+int64(2*time.Minute))
	if s.Price != 100 || !b.Held(0) || s.Brake.Since != t0+int64(2*time.Minute) {
		t.Fatalf("after the window: price %v held %v brake %+v, want held again in a new window", s.Price, b.Held(0), s.Brake)
	}
	if n, _ := b.Tripped(); n != 1 {
		t.Fatalf("trips in the new window = %d, want 1", n)
	}
}

func TestBreakerMeasuresFallsAsRises(t *testing.T) {
	for _, c := range []struct {
		p    float64
		want bool
	}{{200, false}, {200.01, true}, {50, false}, {49.99, true}, {100, false}} {
		if got := tooFar(c.p, 100, 100); got != c.want {
			t.Errorf("tooFar(%v, 100, 100%%) = %v, want %v", c.p, got, c.want)
		}
	}
	// A competitor quote can pull a competitor-strategy price down: the
	// breaker holds that too.
	cfg := DefaultConfig()
	b := newBook(t, cfg, Product{ID: "PC", BasePrice: 100, Strategy: "competitor",
		Competition: &CompetitorRule{Mode: "match"}, Limits: Limits{MaxMovePct: 20, MoveWindow: Duration(time.Hour)}})
	b.SetCompetitorPrice(0, "rival", 90, t0+1)
	if p := b.State(0).Price; p != 90 {
		t.Fatalf("a 10%% fall = %v, want 90 published", p)
	}
	b.SetCompetitorPrice(0, "rival", 0.5, t0+2)
	if p := b.State(0).Price; p != 90 || !b.Held(0) {
		t.Fatalf("a quote of 0.50 moved the price to %v (held %v)", p, b.Held(0))
	}
}

func TestOperatorsAreNeverHeld(t *testing.T) {
	b := breakerBook(t, Limits{MaxMovePct: 10, MoveWindow: Duration(time.Hour)})
	s := b.State(0)
	b.Apply(0, Purchase, 100, t0+1)
	if !b.Held(0) {
		t.Fatal("not held")
	}
	// Release: the strategy's price is published, and the window starts
	// again from it.
	if held, changed := b.Release(0, t0+2); !held || !changed || s.Price != seedPrice(500) || b.Held(0) {
		t.Fatalf("release: held %v changed %v price %v", held, changed, s.Price)
	}
	if held, _ := b.Release(0, t0+3); held {
		t.Fatal("a second release found the product held")
	}
	if s.Brake.Anchor != seedPrice(500) {
		t.Fatalf("anchor after release = %v, want %v", s.Brake.Anchor, seedPrice(500))
	}
	// An override far from the price is published, and so is the dynamic
	// price it gives way to.
	if _, err := b.SetOverride(0, Override{Price: 1000, By: "ops"}, t0+4); err != nil || s.Price != 1000 {
		t.Fatalf("override: %v, price %v", err, s.Price)
	}
	if had, changed := b.ClearOverride(0, t0+5); !had || !changed || s.Price != seedPrice(500) || b.Held(0) {
		t.Fatalf("override cleared: price %v held %v, want %v", s.Price, b.Held(0), seedPrice(500))
	}
	// A catalog change (a new base price) is published too.
	if _, changed, err := b.Upsert(Product{ID: "PA", BasePrice: 300, Limits: Limits{MaxMovePct: 10, MoveWindow: Duration(time.Hour)}}, t0+6); err != nil || !changed || b.Held(0) {
		t.Fatalf("catalog change: %v changed %v held %v price %v", err, changed, b.Held(0), s.Price)
	}
}

func TestLimitsCatalogDefaultsAndValidation(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Limits = Limits{MaxQuantity: 7, MaxMovePct: 10, MoveWindow: Duration(time.Hour)}
	b := newBook(t, cfg, Product{ID: "A", BasePrice: 100}, Product{ID: "B", BasePrice: 100, Limits: Limits{MaxQuantity: 500, MaxMovePct: 1e6}})
	if b.MaxQuantity(0) != 7 || b.MaxQuantity(1) != 500 {
		t.Fatalf("max quantity = %d, %d, want the catalog's 7 and the product's 500", b.MaxQuantity(0), b.MaxQuantity(1))
	}
	b.Apply(0, Purchase, 7, t0+1) // 100 + 5*sqrt(35) = 129.58: held by the catalog's 10%
	b.Apply(1, Purchase, 7, t0+1) // the product's own limit is far away
	if !b.Held(0) || b.Held(1) || b.State(1).Price != seedPrice(35) {
		t.Fatalf("held: %v %v; B's price %v", b.Held(0), b.Held(1), b.State(1).Price)
	}
	if DefaultConfig().Limits.MaxQuantity != 100 || DefaultConfig().Limits.MaxMovePct != 0 {
		t.Fatalf("built-in defaults = %+v, want a cap of 100 and no breaker", DefaultConfig().Limits)
	}
	for _, l := range []Limits{{MaxQuantity: -1}, {MaxQuantity: 10_001}, {MaxMovePct: -1}, {MoveWindow: -1},
		{MoveWindow: Duration(31 * 24 * time.Hour)}} {
		if err := (Product{ID: "X", BasePrice: 1, Limits: l}).Validate(); err == nil {
			t.Errorf("limits %+v accepted", l)
		}
	}
	var p Product
	if err := json.Unmarshal([]byte(`{"product_id":"X","base_price":1,"max_quantity":5,"max_move_pct":25,"move_window":"90m"}`), &p); err != nil ||
		p.Limits != (Limits{MaxQuantity: 5, MaxMovePct: 25, MoveWindow: Duration(90 * time.Minute)}) {
		t.Fatalf("decoded %+v, %v", p.Limits, err)
	}
	if out, _ := json.Marshal(p); !strings.Contains(string(out), `"move_window":"1h30m0s"`) {
		t.Fatalf("encoded %s", out)
	}
	if err := json.Unmarshal([]byte(`{"product_id":"X","base_price":1,"move_window":900}`), &p); err == nil {
		t.Fatal("a window in bare nanoseconds was accepted")
	}
}

func TestHeldStateSurvivesARestart(t *testing.T) {
	l := Limits{MaxMovePct: 10, MoveWindow: Duration(time.Hour)}
	b := breakerBook(t, l)
	b.Apply(0, Purchase, 100, t0+1)
	j, err := json.Marshal(b.State(0))
	if err != nil {
		t.Fatal(err)
	}
	var st State
	if err := json.Unmarshal(j, &st); err != nil {
		t.Fatal(err)
	}
	b2 := breakerBook(t, l)
	b2.Restore(0, st)
	b2.Apply(0, View, 1, t0+2)
	if !b2.Held(0) || b2.State(0).Price != 100 {
		t.Fatalf("after a restart: held %v price %v", b2.Held(0), b2.State(0).Price)
	}
	// A state written before the breaker existed has no window: the next
	// price starts one.
	var old State
	if err := json.Unmarshal([]byte(`{"price":100,"version":3}`), &old); err != nil || old.Brake != (Brake{}) {
		t.Fatalf("old state: %+v %v", old.Brake, err)
	}
	if strings.Contains(string(mustJSON(t, State{})), "brake") {
		t.Fatal("a state without a window writes a brake")
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

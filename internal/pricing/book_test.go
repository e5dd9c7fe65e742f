package pricing

import (
	"fmt"
	"math"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC).UnixNano()

func newBook(t *testing.T, cfg Config, ps ...Product) *Book {
	t.Helper()
	b, err := NewBook(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range ps {
		if _, _, err := b.Upsert(p, t0); err != nil {
			t.Fatal(err)
		}
	}
	return b
}

func TestSeedFormulaMatchesOriginal(t *testing.T) {
	// The original: price = base + sqrt(demand) * 5, weights view 1, cart 3, purchase 5.
	b := newBook(t, DefaultConfig(), Product{ID: "PA", BasePrice: 299})
	s := b.State(0)
	if s.Price != 299 || s.Source != SourceBase {
		t.Fatalf("initial = %v %v, want 299 base", s.Price, s.Source)
	}
	b.Apply(0, View, 1, t0)     // 1
	b.Apply(0, Cart, 1, t0)     // 4
	b.Apply(0, Purchase, 1, t0) // 9
	if s.Price != 314.00 || s.DynDemand != 9 || s.Source != SourceDynamic {
		t.Fatalf("PA with demand 9 = %v (demand %v, %v), want 314.00 dynamic", s.Price, s.DynDemand, s.Source)
	}
	if s.Version != 4 {
		t.Fatalf("version = %d, want 4 (initial + 3 changes)", s.Version)
	}
	// demand 12 on a 149.99 base: 149.99 + sqrt(12)*5 = 167.31
	b2 := newBook(t, DefaultConfig(), Product{ID: "PX", BasePrice: 149.99})
	for i := 0; i < 4; i++ {
		b2.Apply(0, Cart, 1, t0)
	}
	if got := b2.State(0).Price; got != 167.31 {
		t.Fatalf("149.99 with demand 12 = %v, want 167.31", got)
	}
	// Quantity multiplies the weight.
	b3 := newBook(t, DefaultConfig(), Product{ID: "PB", BasePrice: 349})
	b3.Apply(0, Purchase, 5, t0) // 25
	if got := b3.State(0).Price; got != 374 {
		t.Fatalf("349 with demand 25 = %v, want 374", got)
	}
}

func TestDecayHalvesDemandPerHalfLife(t *testing.T) {
	cfg := DefaultConfig()
	cfg.DefaultStrategy = "decay"
	cfg.HalfLife = time.Minute
	b := newBook(t, cfg, Product{ID: "PA", BasePrice: 100})
	for i := 0; i < 16; i++ {
		b.Apply(0, View, 1, t0)
	}
	s := b.State(0)
	if s.Price != 120 { // 100 + sqrt(16)*5
		t.Fatalf("price = %v, want 120", s.Price)
	}
	// Two half-lives later demand is 4: price 110, falling without new events.
	if changed, _ := b.Tick(0, t0+int64(2*time.Minute)); !changed {
		t.Fatal("tick after two half-lives did not change the price")
	}
	if s.Price != 110 || math.Abs(s.DynDemand-4) > 1e-9 {
		t.Fatalf("after 2 half-lives: price %v demand %v, want 110 and 4", s.Price, s.DynDemand)
	}
	// A new event decays the old demand first: 4 + 5 = 9 -> 115.
	b.Apply(0, Purchase, 1, t0+int64(2*time.Minute))
	if s.Price != 115 {
		t.Fatalf("price = %v, want 115", s.Price)
	}
	// Total demand is still cumulative.
	if s.Demand.Total != 21 {
		t.Fatalf("total = %v, want 21", s.Demand.Total)
	}
}

func TestGuardrails(t *testing.T) {
	cases := []struct {
		name    string
		g       Guardrails
		base    float64
		demand  int // views
		want    float64
		applied Guard
	}{
		{"none", Guardrails{}, 100, 9, 115, 0},
		{"ceiling", Guardrails{Ceiling: 110}, 100, 9, 110, GuardCeiling},
		{"floor above base", Guardrails{Floor: 120}, 100, 9, 120, GuardFloor},
		{"max change 10% of 100", Guardrails{MaxChangePct: 10}, 100, 100, 110, GuardMaxChange},
		{"ending .99 nearest", Guardrails{Rounding: ".99"}, 100, 9, 114.99, GuardRounding},
		{"ending .99 within ceiling", Guardrails{Rounding: "0.99", Ceiling: 114.5}, 100, 9, 113.99, GuardCeiling | GuardRounding},
		{"whole", Guardrails{Rounding: "whole"}, 100, 2, 107, GuardRounding}, // 107.07 -> 107
		{"cents", Guardrails{}, 100, 2, 107.07, GuardRounding},               // 107.0710678
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := newBook(t, DefaultConfig(), Product{ID: "P", BasePrice: c.base, Guardrails: c.g})
			b.Apply(0, View, int32(c.demand), t0)
			s := b.State(0)
			if s.Price != c.want {
				t.Fatalf("price = %v, want %v (trace %+v)", s.Price, c.want, s.Trace)
			}
			if s.Trace.Applied != c.applied {
				t.Fatalf("applied = %b, want %b", s.Trace.Applied, c.applied)
			}
			e := b.Explain(0)
			if len(e.Guardrails) != popcount(c.applied) {
				t.Fatalf("explanation lists %d guardrails, want %d: %+v", len(e.Guardrails), popcount(c.applied), e.Guardrails)
			}
		})
	}
}

func popcount(g Guard) int {
	n := 0
	for ; g != 0; g &= g - 1 {
		n++
	}
	return n
}

func TestMaxChangeStepsFromPreviousPrice(t *testing.T) {
	b := newBook(t, DefaultConfig(), Product{ID: "P", BasePrice: 100, Guardrails: Guardrails{MaxChangePct: 10}})
	b.Apply(0, View, 400, t0) // raw 200, limited to 110
	b.Apply(0, View, 0, t0)   // raw 200, limited to 121
	if got := b.State(0).Price; got != 121 {
		t.Fatalf("second step = %v, want 121", got)
	}
}

func TestOverrideBeatsEverythingAndExpires(t *testing.T) {
	b := newBook(t, DefaultConfig(), Product{ID: "PA", BasePrice: 299, Guardrails: Guardrails{Ceiling: 300}})
	b.Apply(0, View, 9, t0)
	s := b.State(0)
	if s.Price != 300 {
		t.Fatalf("price = %v, want ceiling 300", s.Price)
	}
	exp := t0 + int64(time.Hour)
	if changed, err := b.SetOverride(0, Override{Price: 999.999, Reason: "launch", By: "ops", Since: t0, Expires: exp}, t0); err != nil || !changed {
		t.Fatalf("SetOverride = %v, %v", changed, err)
	}
	if s.Price != 1000 || s.Source != SourceOverride {
		t.Fatalf("override price = %v %v, want 1000 override (beats ceiling, cents)", s.Price, s.Source)
	}
	// Events still move demand under an override; the price stays.
	b.Apply(0, View, 7, t0) // demand 16 -> dynamic 319, ceiling 300
	if s.Price != 1000 || s.Demand.Total != 16 {
		t.Fatalf("under override: %v demand %v", s.Price, s.Demand.Total)
	}
	if e := b.Explain(0); e.Override == nil || e.Override.Reason != "launch" || e.DynamicPrice != 300 {
		t.Fatalf("explanation = %+v", e)
	}
	if changed, _ := b.Tick(0, exp-1); changed {
		t.Fatal("override expired early")
	}
	if changed, _ := b.Tick(0, exp); !changed || s.Price != 300 || s.Source != SourceDynamic {
		t.Fatalf("after expiry: %v %v", s.Price, s.Source)
	}
	if _, err := b.SetOverride(0, Override{Price: math.NaN()}, t0); err == nil {
		t.Fatal("NaN override accepted")
	}
	if _, err := b.SetOverride(0, Override{Price: -1}, t0); err == nil {
		t.Fatal("negative override accepted")
	}
	b.SetOverride(0, Override{Price: 10}, exp)
	had, changed := b.ClearOverride(0, exp)
	if !had || !changed || s.Price != 300 {
		t.Fatalf("clear = %v %v price %v", had, changed, s.Price)
	}
	if had, _ := b.ClearOverride(0, exp); had {
		t.Fatal("cleared twice")
	}
}

func TestLowest30Days(t *testing.T) {
	cfg := DefaultConfig()
	cfg.DefaultStrategy = "decay"
	cfg.HalfLife = 24 * time.Hour
	b := newBook(t, cfg, Product{ID: "P", BasePrice: 100})
	s := b.State(0)
	day := int64(24 * time.Hour)
	b.Apply(0, View, 100, t0) // 150
	if s.Lowest30 != 100 {
		t.Fatalf("lowest = %v, want 100 (the base price was charged today)", s.Lowest30)
	}
	// 10 days later the decayed price is ~100.05; the lowest of the window is 100 still.
	b.Tick(0, t0+10*day)
	if s.Lowest30 != 100 {
		t.Fatalf("lowest after 10d = %v, want 100", s.Lowest30)
	}
	// Push it up and keep it up: after 31 days the 100 drops out of the window.
	b.Apply(0, View, 10000, t0+10*day) // ~600
	at := t0 + 10*day
	high := s.Price
	for d := int64(1); d <= 31; d++ {
		b.Tick(0, at+d*day)
	}
	if s.Lowest30 >= high || s.Lowest30 <= 100 {
		t.Fatalf("lowest after 41d = %v; want between 100 and %v (decayed prices of the window)", s.Lowest30, high)
	}
	if s.Lowest30 != s.Price && s.Lowest30 > s.Price {
		t.Fatalf("lowest %v above current %v", s.Lowest30, s.Price)
	}
}

func TestLowestCountsPriceInEffectAtWindowStart(t *testing.T) {
	b := newBook(t, DefaultConfig(), Product{ID: "P", BasePrice: 100})
	s := b.State(0)
	day := int64(24 * time.Hour)
	b.SetOverride(0, Override{Price: 50}, t0) // 50 from day 0
	b.ClearOverride(0, t0+40*day)             // back to 100 on day 40
	if s.Lowest30 != 50 || s.Price != 100 {
		t.Fatalf("lowest = %v price %v, want 50 (charged until today)", s.Lowest30, s.Price)
	}
	b.Tick(0, t0+69*day)
	if s.Lowest30 != 50 {
		t.Fatalf("day 69: lowest = %v, want 50", s.Lowest30)
	}
	b.Tick(0, t0+70*day)
	if s.Lowest30 != 100 {
		t.Fatalf("day 70: lowest = %v, want 100", s.Lowest30)
	}
}

func TestRoundingParse(t *testing.T) {
	for _, ok := range []string{"", "cents", "whole", ".99", "0.95", "0.5"} {
		if _, err := ParseRounding(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"1.99", "-0.1", "x", "0.999", "99"} {
		if _, err := ParseRounding(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestProductValidate(t *testing.T) {
	bad := []Product{
		{ID: "", BasePrice: 1}, {ID: "a b", BasePrice: 1}, {ID: "P", BasePrice: 0},
		{ID: "P", BasePrice: math.Inf(1)}, {ID: "P", BasePrice: 1, Guardrails: Guardrails{Floor: 5, Ceiling: 4}},
		{ID: "P", BasePrice: 1, Guardrails: Guardrails{MaxChangePct: -1}},
		// A ceiling below a cent made every price 0 once rounded.
		{ID: "P", BasePrice: 1, Guardrails: Guardrails{Ceiling: 0.005}}, {ID: "P", BasePrice: 1, Guardrails: Guardrails{Ceiling: math.SmallestNonzeroFloat64}},
		{ID: "P", BasePrice: 1, Guardrails: Guardrails{Floor: 0.001}},
	}
	for _, p := range bad {
		if p.Validate() == nil {
			t.Errorf("%+v accepted", p)
		}
	}
	for _, g := range []Guardrails{{Ceiling: 0.01}, {Floor: 0.01, Ceiling: 0.01}} {
		if err := (Product{ID: "P", BasePrice: 1, Guardrails: g}).Validate(); err != nil {
			t.Errorf("%+v: %v", g, err)
		}
	}
	b := newBook(t, DefaultConfig())
	if _, _, err := b.Upsert(Product{ID: "P", BasePrice: 1, Strategy: "nope"}, t0); err == nil {
		t.Error("unknown strategy accepted")
	}
}

// TestWholeRoundingBelowAOneUnitCeiling: whole-unit rounding under a
// ceiling below one unit rounds to cents instead of to 0.
func TestWholeRoundingBelowAOneUnitCeiling(t *testing.T) {
	b := newBook(t, DefaultConfig(), Product{ID: "P", BasePrice: 0.5, Guardrails: Guardrails{Ceiling: 0.5, Rounding: "whole"}})
	b.Apply(0, Cart, 1, t0)
	if p := b.State(0).Price; p != 0.5 {
		t.Fatalf("price %v, want the ceiling 0.5 rounded to cents, not a whole 0", p)
	}
}

func TestValidID(t *testing.T) {
	long := make([]byte, 65)
	for i := range long {
		long[i] = 'a'
	}
	for id, want := range map[string]bool{"PA": true, "a-b_C9": true, "": false, "a/b": false, "é": false,
		string(long[:64]): true, string(long): false} {
		if ValidID(id) != want {
			t.Errorf("ValidID(%q) = %v", id, !want)
		}
	}
}

func BenchmarkApply(b *testing.B) {
	for _, strat := range []string{"seed", "decay"} {
		b.Run(strat, func(b *testing.B) {
			cfg := DefaultConfig()
			cfg.DefaultStrategy = strat
			bk, _ := NewBook(cfg)
			for i := 0; i < 1000; i++ {
				bk.Upsert(Product{ID: "P" + ftoa(float64(i)), BasePrice: 100 + float64(i), Guardrails: Guardrails{Ceiling: 10000, MaxChangePct: 50}}, t0)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				bk.Apply(i%1000, EventType(1+i%3), 1, t0+int64(i))
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

func TestCheckOverride(t *testing.T) {
	const now = int64(1_800_000_000e9)
	for _, c := range []struct {
		price   float64
		reason  string
		expires int64
		want    string // "" = accepted
	}{
		{price: 12.5},
		{price: 0.005, reason: strings.Repeat("r", MaxOverrideReason), expires: now + 1},
		{price: MaxPrice},
		{price: 0, want: "override_price must be a finite number > 0 and at most 1000000000"},
		{price: -1, want: "override_price must be a finite number > 0 and at most 1000000000"},
		{price: math.NaN(), want: "override_price must be a finite number > 0 and at most 1000000000"},
		{price: math.Inf(1), want: "override_price must be a finite number > 0 and at most 1000000000"},
		{price: 0.004, want: "override_price must be at least 0.01 once rounded to cents; 0.004 rounds to 0"},
		{price: 1e300, want: "override_price must be a finite number > 0 and at most 1000000000"},
		{price: 1e307, want: "override_price must be a finite number > 0 and at most 1000000000"},
		{price: 1, reason: strings.Repeat("r", MaxOverrideReason+1), want: "reason is longer than 500 bytes"},
		{price: 1, expires: now, want: "expires_at must be in the future"},
		{price: 1, expires: now - 1, want: "expires_at must be in the future"},
		{price: 1, expires: now + int64(MaxOverrideTTL)},
		{price: 1, expires: now + int64(MaxOverrideTTL) + 1, want: "expires_at must be at most ten years ahead"},
	} {
		err := CheckOverride(c.price, c.reason, c.expires, now)
		if got := fmt.Sprint(err); (c.want == "" && err != nil) || (c.want != "" && got != c.want) {
			t.Errorf("CheckOverride(%v, %d-byte reason, expires %d) = %v, want %q", c.price, len(c.reason), c.expires, err, c.want)
		}
	}
}

// TestLoadTakesStatesAsTheyAre: Load keeps the states it is given as its
// own table (no copy), restores them as Restore does, prices the products
// without one as Upsert prices a new product, and refuses a catalog that
// lists a product twice or states that do not line up with it.
func TestLoadTakesStatesAsTheyAre(t *testing.T) {
	products := []Product{{ID: "PA", BasePrice: 299}, {ID: "PB", BasePrice: 349, Strategy: "thompson"}, {ID: "PC", BasePrice: 10}}
	states := make([]State, 3)
	states[0] = State{Price: 320, Source: SourceDynamic, Version: 7, Demand: Demand{Total: 17}}
	states[1] = State{Price: 340, Source: SourceDynamic, Version: 3}
	b, err := NewBook(DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	unstated, err := b.Load(products, states, []bool{true, true, false}, t0)
	if err != nil {
		t.Fatal(err)
	}
	if len(unstated) != 1 || unstated[0] != 2 {
		t.Errorf("unstated %v, want [2]", unstated)
	}
	if b.State(0) != &states[0] {
		t.Error("the states were copied, not taken")
	}
	if s := b.State(0); s.Price != 320 || s.Version != 7 || s.Demand.Total != 17 {
		t.Errorf("PA's state %+v, want the one given", s)
	}
	if s := b.State(1); s.Learn == nil || s.Price != 340 {
		t.Errorf("PB (thompson) restored without learning state, or changed: %+v", s)
	}
	if i, ok := b.Index("PC"); !ok || i != 2 {
		t.Errorf("PC at %d, %v", i, ok)
	}
	want := newBook(t, DefaultConfig(), Product{ID: "PC", BasePrice: 10})
	if got := *b.State(2); got.Price != want.State(0).Price || got.Version != want.State(0).Version || got.Source != want.State(0).Source {
		t.Errorf("PC priced %+v, want as Upsert prices it: %+v", got, *want.State(0))
	}
	if _, err := b.Load(products[:1], nil, nil, t0); err == nil {
		t.Error("Load into a book with products: no error")
	}
	for name, c := range map[string]struct {
		products []Product
		states   []State
		stated   []bool
	}{
		"listed twice":  {[]Product{{ID: "PA", BasePrice: 1}, {ID: "PA", BasePrice: 2}}, nil, nil},
		"short states":  {products, make([]State, 2), make([]bool, 2)},
		"flags ≠ state": {products, make([]State, 3), make([]bool, 2)},
		"invalid":       {[]Product{{ID: "PA", BasePrice: -1}}, nil, nil},
	} {
		b, _ := NewBook(DefaultConfig())
		if _, err := b.Load(c.products, c.states, c.stated, t0); err == nil {
			t.Errorf("%s: no error", name)
		} else if b.Len() != 0 {
			t.Errorf("%s: a failed Load left %d products", name, b.Len())
		}
	}
	empty, _ := NewBook(DefaultConfig())
	if u, err := empty.Load(products, nil, nil, t0); err != nil || len(u) != 3 || empty.State(1).Price == 0 {
		t.Errorf("Load without states: %v, unstated %v, PB at %v", err, u, empty.State(1).Price)
	}
}

// TestGuardrailsShared: products with the same guardrails share one parsed
// copy, a product's own guardrails are its own, and an update that changes
// them does not change the others'.
func TestGuardrailsShared(t *testing.T) {
	b := newBook(t, DefaultConfig(), Product{ID: "PA", BasePrice: 10}, Product{ID: "PB", BasePrice: 20},
		Product{ID: "PC", BasePrice: 30, Guardrails: Guardrails{Floor: 25}})
	if b.guards[0] != b.guards[1] || b.guards[2] == b.guards[0] {
		t.Fatalf("PA and PB do not share, or PC (floor 25) shares: %p %p %p", b.guards[0], b.guards[1], b.guards[2])
	}
	if _, _, err := b.Upsert(Product{ID: "PB", BasePrice: 20, Guardrails: Guardrails{Ceiling: 21}}, t0); err != nil {
		t.Fatal(err)
	}
	if b.guards[1].ceiling != 21 || b.guards[0].ceiling != 0 {
		t.Errorf("PB's ceiling %v, PA's %v: want 21 and none", b.guards[1].ceiling, b.guards[0].ceiling)
	}
	// Past maxShared distinct ones, each product gets its own copy.
	many, _ := NewBook(DefaultConfig())
	for i := range maxShared + 10 {
		if _, _, err := many.Upsert(Product{ID: fmt.Sprintf("P%d", i), BasePrice: 100, Guardrails: Guardrails{Floor: 1 + float64(i)/100}}, t0); err != nil {
			t.Fatal(err)
		}
	}
	if len(many.shared) != maxShared {
		t.Errorf("%d guardrails shared, want at most %d", len(many.shared), maxShared)
	}
	if g := many.guards[maxShared+5]; g.floor != 1+float64(maxShared+5)/100 {
		t.Errorf("an unshared product's floor %v", g.floor)
	}
}

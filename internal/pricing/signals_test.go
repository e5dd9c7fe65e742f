package pricing

import (
	"encoding/json"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"
)

var (
	hour  = int64(time.Hour)
	start = time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
	s0    = start.UnixNano()
)

func TestMarginFloorFromUnitCost(t *testing.T) {
	cfg := DefaultConfig()
	cfg.DefaultStrategy = "competitor"
	b := newBook(t, cfg, Product{ID: "P", BasePrice: 100, UnitCost: 90, Guardrails: Guardrails{MinMarginPct: 20},
		Competition: &CompetitorRule{Mode: "match"}})
	b.SetCompetitorPrice(0, "B", 80, s0)
	s := b.State(0)
	if s.Price != 108 || s.Trace.Applied != GuardMargin {
		t.Fatalf("price %v applied %b, want 108 by the margin floor (cost 90 + 20%%)", s.Price, s.Trace.Applied)
	}
	e := b.Explain(0)
	if len(e.Guardrails) != 1 || e.Guardrails[0].Guardrail != "margin_floor" || e.Guardrails[0].Before != 80 || e.Guardrails[0].After != 108 {
		t.Fatalf("explanation %+v", e.Guardrails)
	}
	// Cost alone: never below cost.
	b2 := newBook(t, cfg, Product{ID: "P", BasePrice: 100, UnitCost: 85.004, Competition: &CompetitorRule{Mode: "match"},
		Guardrails: Guardrails{Rounding: "whole"}})
	b2.SetCompetitorPrice(0, "B", 80, s0)
	if got := b2.State(0).Price; got != 86 { // rounding stays above the margin floor
		t.Fatalf("price %v, want 86 (cost 85.004 rounded up to a whole unit)", got)
	}
	if err := (Product{ID: "P", BasePrice: 100, UnitCost: 90, Guardrails: Guardrails{MinMarginPct: 20, Ceiling: 100}}).Validate(); err == nil ||
		!strings.Contains(err.Error(), "above the ceiling") {
		t.Fatalf("margin floor above the ceiling: %v", err)
	}
	if err := (Product{ID: "P", BasePrice: 100, UnitCost: -1}).Validate(); err == nil {
		t.Fatal("negative unit cost accepted")
	}
}

func TestCompetitorModes(t *testing.T) {
	cfg := DefaultConfig()
	cfg.DefaultStrategy = "competitor"
	for _, c := range []struct {
		rule CompetitorRule
		want float64
	}{
		{CompetitorRule{Mode: "match"}, 90},
		{CompetitorRule{Mode: "beat"}, 89.99},
		{CompetitorRule{Mode: "beat", Pct: 5}, 85.5},
		{CompetitorRule{Mode: "beat", Amount: 2}, 88},
		{CompetitorRule{Mode: "above", Pct: 10, Amount: 1}, 100},
	} {
		rule := c.rule
		b := newBook(t, cfg, Product{ID: "P", BasePrice: 120, Competition: &rule})
		if b.State(0).Price != 120 || b.State(0).Source != SourceBase {
			t.Fatalf("%+v: before any quote: %v %v, want the base price", rule, b.State(0).Price, b.State(0).Source)
		}
		b.SetCompetitorPrice(0, "dear", 130, s0)
		b.SetCompetitorPrice(0, "cheap", 90, s0+1)
		if got := b.State(0).Price; got != c.want || b.State(0).Source != SourceDynamic {
			t.Errorf("%+v against 90 and 130: %v %v, want %v dynamic", rule, got, b.State(0).Source, c.want)
		}
	}
}

// TestCompetitorRuleKeepsPricesFinite: the largest amount and percentage
// a rule takes, against the largest competitor price, still give a finite
// price; a larger amount is refused (it made every price the rule set
// infinite once rounded to cents).
func TestCompetitorRuleKeepsPricesFinite(t *testing.T) {
	cfg := DefaultConfig()
	cfg.DefaultStrategy = "competitor"
	rule := CompetitorRule{Mode: "above", Pct: 99.99, Amount: MaxPrice}
	b := newBook(t, cfg, Product{ID: "P", BasePrice: 120, Competition: &rule})
	b.SetCompetitorPrice(0, "A", MaxPrice, s0)
	if p := b.State(0).Price; math.IsInf(p, 0) || math.IsNaN(p) || p < MaxPrice {
		t.Fatalf("price %v above the largest competitor price by the largest amount, want a finite one", p)
	}
	for _, amount := range []float64{MaxPrice + 1, 1e307, math.Inf(1), math.NaN(), -1} {
		p := Product{ID: "P", BasePrice: 120, Competition: &CompetitorRule{Mode: "above", Amount: amount}}
		if err := p.Validate(); err == nil || !strings.Contains(err.Error(), "amount") {
			t.Errorf("amount %v: %v, want it refused", amount, err)
		}
	}
}

func TestCompetitorQuotesAgeAndBound(t *testing.T) {
	cfg := DefaultConfig()
	cfg.DefaultStrategy = "competitor"
	b := newBook(t, cfg, Product{ID: "P", BasePrice: 120, Competition: &CompetitorRule{Mode: "match"}})
	b.SetCompetitorPrice(0, "A", 100, s0)
	b.SetCompetitorPrice(0, "B", 110, s0+10*hour)
	b.SetCompetitorPrice(0, "A", 95, s0-hour) // older than A's known quote: ignored
	if got := b.State(0).Price; got != 100 {
		t.Fatalf("price %v, want 100 (A's newest quote)", got)
	}
	// 72 h after A's quote only B's is fresh.
	if changed, _ := b.Tick(0, s0+73*hour); !changed || b.State(0).Price != 110 {
		t.Fatalf("after A's quote went stale: %v", b.State(0).Price)
	}
	e := b.Explain(0)
	if e.Market == nil || e.Market.Reference == nil || e.Market.Reference.Competitor != "B" || len(e.Market.Competitors) != 2 {
		t.Fatalf("explanation market %+v", e.Market)
	}
	// All stale: the base price.
	b.Tick(0, s0+83*hour)
	if got := b.State(0).Price; got != 120 {
		t.Fatalf("all quotes stale: %v, want the base 120", got)
	}
	// The memory is bounded: the stalest quote makes room.
	for k := range MaxQuotes + 4 {
		b.SetCompetitorPrice(0, string(rune('a'+k)), 50+float64(k), s0+100*hour+int64(k))
	}
	q := b.State(0).Market.Quotes
	if len(q) != MaxQuotes {
		t.Fatalf("%d quotes kept, want %d", len(q), MaxQuotes)
	}
	for _, x := range q {
		if x.Competitor == "a" || x.Competitor == "A" {
			t.Fatalf("stalest quote %q kept", x.Competitor)
		}
	}
}

func inventoryBook(t *testing.T, strategy string, plan InventoryPlan) *Book {
	t.Helper()
	cfg := DefaultConfig()
	cfg.DefaultStrategy = strategy
	return newBook(t, cfg, Product{ID: "P", BasePrice: 100, Inventory: &plan})
}

func TestStockFollowsEventsAndPeriods(t *testing.T) {
	b := inventoryBook(t, "inventory", InventoryPlan{PeriodStart: start, PeriodEnd: start.Add(48 * time.Hour), Repeat: true})
	b.SetStock(0, 20, s0)
	b.Apply(0, View, 1, s0+hour)
	b.Apply(0, Purchase, 3, s0+hour)
	m := b.State(0).Market
	if m.Stock != 17 || m.Opening != 20 || m.Views != 1 {
		t.Fatalf("after 3 sold: %+v", m)
	}
	b.SetStock(0, 22, s0+2*hour) // restock of 5
	if m.Stock != 22 || m.Opening != 25 {
		t.Fatalf("after restock: %+v", m)
	}
	b.SetStock(0, 21, s0+3*hour) // shrinkage: not a restock
	if m.Opening != 25 {
		t.Fatalf("after a lower count: %+v", m)
	}
	for range 30 {
		b.Apply(0, Purchase, 1, s0+4*hour)
	}
	if m.Stock != 0 {
		t.Fatalf("stock went to %v, want 0 (never negative)", m.Stock)
	}
	// The next period opens with what is on hand.
	b.SetStock(0, 10, s0+50*hour)
	if m.Period != s0+48*hour || m.Opening != 10 || m.Views != 1 || m.Since != s0 {
		t.Fatalf("second period: %+v", m)
	}
	// The state round-trips through JSON (it is what the stores keep).
	var back State
	raw, _ := json.Marshal(b.State(0).Copy())
	if err := json.Unmarshal(raw, &back); err != nil || !reflect.DeepEqual(back.Market, m) {
		t.Fatalf("round trip %+v, %v", back.Market, err)
	}
}

func TestInventoryStrategySteersToPlan(t *testing.T) {
	plan := InventoryPlan{PeriodStart: start, PeriodEnd: start.Add(48 * time.Hour)}
	for _, c := range []struct {
		name string
		sold float64 // by half time, of 20
		want float64
	}{
		{"on plan", 10, 100},
		{"ahead: 15 sold, 5 left vs 10 on plan", 15, 200},
		{"behind: 2 sold, 18 left vs 10 on plan", 2, 55.56},
		{"sold out", 20, 300},
	} {
		b := inventoryBook(t, "inventory", plan)
		if b.State(0).Price != 100 {
			t.Fatalf("no stock known: %v, want base", b.State(0).Price)
		}
		b.SetStock(0, 20, s0)
		if c.sold > 0 {
			b.Apply(0, Purchase, int32(c.sold), s0+24*hour)
		}
		if got := b.State(0).Price; got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
	// Stock first known half way through the period: the plan runs from
	// then, so 20 on hand is on plan, not behind it.
	repeating := plan
	repeating.Repeat = true
	late := inventoryBook(t, "inventory", repeating)
	late.SetStock(0, 20, s0+24*hour)
	if got := late.State(0).Price; got != 100 {
		t.Fatalf("stock known at half time: %v, want the base price (on plan)", got)
	}
	late.Apply(0, Purchase, 10, s0+36*hour) // 10 left at 3/4 of the period, 10 on plan
	if got := late.State(0).Price; got != 100 {
		t.Fatalf("on plan at 36 h: %v, want 100", got)
	}
	// The next period is planned over its whole length again.
	late.SetStock(0, 20, s0+48*hour+12*hour)
	if got := late.State(0).Price; got != 75 { // 20 to sell vs 15 on plan: behind, ×3/4
		t.Fatalf("a quarter into the next period with 20 on hand: %v, want 75", got)
	}
	// A target sell-through below 1 keeps a share back: 20 opening, keep
	// 10, half time, 15 on hand: 5 to sell vs 5 on plan.
	plan.TargetSellThrough = 0.5
	b := inventoryBook(t, "inventory", plan)
	b.SetStock(0, 20, s0)
	b.Apply(0, Purchase, 5, s0+24*hour)
	if got := b.State(0).Price; got != 100 {
		t.Fatalf("target 0.5 on plan: %v, want 100", got)
	}
	e := b.Explain(0)
	if e.Market == nil || e.Market.Selling == nil || e.Market.Selling.Keep != 10 || e.Market.Selling.ToSell != 5 || e.Market.Selling.Multiplier != 1 {
		t.Fatalf("explanation %+v", e.Market)
	}
	// After a period without Repeat the plan no longer applies.
	b.Tick(0, s0+49*hour)
	if got := b.State(0).Price; got != 100 {
		t.Fatalf("after the period: %v, want the base price", got)
	}
	if err := (&InventoryPlan{PeriodStart: start, PeriodEnd: start}).validate(); err == nil {
		t.Fatal("empty period accepted")
	}
	if err := (&InventoryPlan{PeriodStart: start, PeriodEnd: start.Add(time.Hour), TargetSellThrough: 1.5}).validate(); err == nil {
		t.Fatal("target above 1 accepted")
	}
}

func TestThompsonRationsScarceStock(t *testing.T) {
	th := Thompson{Ladder: []float64{1, 2, 3}}
	l := &Learning{Rand: 7}
	wide := &learnRules{lo: 0.5, hi: 3}
	theta := []float64{0.5, 0.3, 0.1} // revenue per view 0.5, 0.6, 0.3
	prod := &Product{BasePrice: 1}
	in := func(toSell, views float64) Input {
		return Input{Product: prod, Now: s0 + 10*hour, Selling: Selling{Active: true, Start: s0, End: s0 + 20*hour,
			Stock: toSell, Opening: 100, Views: views, ViewRate: views / float64(10*hour)}}
	}
	if got := th.decide(theta, l, wide, Input{Product: prod}); got != 1 {
		t.Fatalf("no plan: rung %d, want 1 (best revenue per view)", got)
	}
	// 100 views in 10 h, 10 h left: 100 views to come.
	if got := th.decide(theta, l, wide, in(40, 100)); got != 1 {
		t.Fatalf("ample stock (0.4 a view allowed): rung %d, want 1", got)
	}
	if got := th.decide(theta, l, wide, in(40, 10)); got != 1 {
		t.Fatalf("too few views to plan on: rung %d, want 1", got)
	}
	// 0.2 a view allowed: the best mix is rungs 1 and 2 half each.
	n := map[int]int{}
	for range 10000 {
		n[th.decide(theta, l, wide, in(20, 100))]++
	}
	if n[0] != 0 || math.Abs(float64(n[1])/10000-0.5) > 0.03 || math.Abs(float64(n[2])/10000-0.5) > 0.03 {
		t.Fatalf("mix %v, want rungs 1 and 2 half each", n)
	}
	// Less than any rung sells: the dearest.
	if got := th.decide(theta, l, wide, in(5, 100)); got != 2 {
		t.Fatalf("0.05 a view: rung %d, want 2", got)
	}
	if got := th.decide(theta, l, wide, in(0, 100)); got != 2 {
		t.Fatalf("nothing to sell: rung %d, want 2", got)
	}
	// With a band to 2 × base the dearest rung is never chosen: sold out
	// or rationing, the top of the band is as high as it goes.
	band := &learnRules{lo: 1, hi: 2}
	for _, c := range []Input{in(0, 100), in(5, 100), in(20, 100)} {
		for range 100 {
			if got := th.decide(theta, l, band, c); got == 2 {
				t.Fatalf("to sell %v: rung 2, outside the band", c.Selling.Stock)
			}
		}
	}
	// The margin objective: a unit cost of 0.9 makes rung 0 earn 0.05 a
	// view, rung 1 0.33 and rung 2 0.21; with a cost of 1.7, rung 2 (0.13)
	// beats rung 1 (0.09).
	margin := &learnRules{lo: 0.5, hi: 3, margin: true}
	if got := th.decide(theta, l, margin, Input{Product: &Product{BasePrice: 1, UnitCost: 1.7}}); got != 2 {
		t.Fatalf("margin objective at cost 1.7: rung %d, want 2", got)
	}
	if got := th.decide(theta, l, wide, Input{Product: &Product{BasePrice: 1, UnitCost: 1.7}}); got != 1 {
		t.Fatalf("revenue objective at cost 1.7: rung %d, want 1 (cost ignored)", got)
	}
}

func TestSignalsNeedNoStrategy(t *testing.T) {
	// Stock and competitor prices are kept for every product, whatever
	// its strategy, and add no demand.
	b := newBook(t, DefaultConfig(), Product{ID: "P", BasePrice: 100})
	b.SetStock(0, 5, s0)
	b.SetCompetitorPrice(0, "B", 90, s0)
	s := b.State(0)
	if s.Demand.Total != 0 || s.Price != 100 || s.Market.Stock != 5 || len(s.Market.Quotes) != 1 {
		t.Fatalf("state %+v market %+v", s, s.Market)
	}
	if DefaultWeights().of(Stock) != 0 || DefaultWeights().of(CompetitorPrice) != 0 {
		t.Fatal("signals weigh as demand")
	}
}

// TestNewStrategiesHonourGuardrails: the guardrails bound what inventory
// and competitor ask for, in their order, and explain it.
func TestNewStrategiesHonourGuardrails(t *testing.T) {
	plan := InventoryPlan{PeriodStart: start, PeriodEnd: start.Add(48 * time.Hour)}
	cfg := DefaultConfig()
	cfg.DefaultStrategy = "inventory"
	// Sold out at half time: the strategy asks 3 × 100; the ceiling of 180
	// and the ending .99 make it 179.99.
	b := newBook(t, cfg, Product{ID: "P", BasePrice: 100, Inventory: &plan, Guardrails: Guardrails{Ceiling: 180, Rounding: ".99"}})
	b.SetStock(0, 20, s0)
	b.Apply(0, Purchase, 20, s0+24*hour)
	if s := b.State(0); s.Price != 179.99 || s.Trace.Applied != GuardCeiling|GuardRounding {
		t.Fatalf("price %v applied %b, want 179.99 by ceiling and rounding", s.Price, s.Trace.Applied)
	}
	// Far behind plan: the strategy asks 50; max change 10% steps down
	// from 100 one update at a time, and the floor stops it at 85.
	b = newBook(t, cfg, Product{ID: "P", BasePrice: 100, Inventory: &plan, Guardrails: Guardrails{MaxChangePct: 10, Floor: 85}})
	b.SetStock(0, 20, s0)
	want := []float64{90, 85, 85}
	for k, w := range want {
		b.Tick(0, s0+int64(40+k)*hour)
		if got := b.State(0).Price; got != w {
			t.Fatalf("update %d: %v, want %v", k, got, w)
		}
	}
	cfg.DefaultStrategy = "competitor"
	b = newBook(t, cfg, Product{ID: "P", BasePrice: 100, Competition: &CompetitorRule{Mode: "above", Pct: 50}, Guardrails: Guardrails{Ceiling: 120}})
	b.SetCompetitorPrice(0, "B", 100, s0)
	if s := b.State(0); s.Price != 120 || s.Trace.Applied != GuardCeiling {
		t.Fatalf("150 asked, ceiling 120: %v %b", s.Price, s.Trace.Applied)
	}
}

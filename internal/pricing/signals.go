package pricing

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"
)

// Signals are the market signals the engine knows of for a product, besides
// demand (not to be confused with the simulated market, sim/simmarket):
// stock on hand (from stock events, less purchases since) and competitors'
// prices (from competitor_price events). It is part of the State, so it is
// committed and restored with demand. A product that never got a signal
// has none (State.Market is nil).
type Signals struct {
	// Stock is the units on hand, when StockKnown.
	Stock      float64 `json:"stock"`
	StockKnown bool    `json:"stock_known,omitempty"`
	// Period is the start (unix ns) of the selling period that Opening
	// belongs to.
	Period int64 `json:"period,omitempty"`
	// Opening is the stock the period started with plus its restocks.
	Opening float64 `json:"opening,omitempty"`
	// Opened is when the plan for the period began: its start, or when
	// the stock first became known if that was later (a product added
	// half way through a period is planned over what is left of it).
	Opened int64 `json:"opened,omitempty"`
	// Views counts the product's views since Since, when its stock first
	// became known: the traffic the stock is planned against.
	Views float64 `json:"views,omitempty"`
	Since int64   `json:"since,omitempty"`
	// Quotes are the latest price of each competitor, at most MaxQuotes.
	Quotes []Quote `json:"quotes,omitempty"`
}

// Quote is one competitor's price.
type Quote struct {
	Competitor string  `json:"competitor"`
	Price      float64 `json:"price"`
	At         int64   `json:"at"` // unix ns
}

// MaxQuotes bounds the competitors remembered per product; a new one
// replaces the stalest.
const MaxQuotes = 16

func (m *Signals) clone() *Signals {
	if m == nil {
		return nil
	}
	c := *m
	c.Quotes = append([]Quote(nil), m.Quotes...)
	return &c
}

// quote records a competitor's price.
func (m *Signals) quote(name string, price float64, at int64) {
	oldest := -1
	for k := range m.Quotes {
		q := &m.Quotes[k]
		if q.Competitor == name {
			if at >= q.At {
				q.Price, q.At = price, at
			}
			return
		}
		if oldest < 0 || q.At < m.Quotes[oldest].At {
			oldest = k
		}
	}
	if len(m.Quotes) < MaxQuotes {
		m.Quotes = append(m.Quotes, Quote{Competitor: name, Price: price, At: at})
		return
	}
	if at > m.Quotes[oldest].At {
		m.Quotes[oldest] = Quote{Competitor: name, Price: price, At: at}
	}
}

// reference is the lowest competitor price no older than maxAge.
func (m *Signals) reference(now int64, maxAge time.Duration) (Quote, bool) {
	if m == nil {
		return Quote{}, false
	}
	best, ok := Quote{}, false
	for _, q := range m.Quotes {
		if maxAge > 0 && now-q.At > int64(maxAge) {
			continue
		}
		if !ok || q.Price < best.Price {
			best, ok = q, true
		}
	}
	return best, ok
}

// InventoryPlan is a product's selling plan: sell TargetSellThrough of the
// stock a period opens with (plus restocks during it) by the period's end.
type InventoryPlan struct {
	PeriodStart time.Time `json:"period_start"`
	PeriodEnd   time.Time `json:"period_end"`
	// Repeat makes periods of the same length follow one another (a
	// replenishment cycle, a season).
	Repeat bool `json:"repeat,omitempty"`
	// TargetSellThrough is the share of the period's stock to sell, in
	// (0, 1]; 0 means 1 (sell out, just in time).
	TargetSellThrough float64 `json:"target_sell_through,omitempty"`
}

func (p *InventoryPlan) validate() error {
	if p == nil {
		return nil
	}
	if p.PeriodStart.IsZero() || p.PeriodEnd.IsZero() {
		return errors.New("period_start and period_end are required")
	}
	if !p.PeriodEnd.After(p.PeriodStart) {
		return errors.New("period_end must be after period_start")
	}
	if t := p.TargetSellThrough; t < 0 || t > 1 || math.IsNaN(t) {
		return errors.New("target_sell_through must be in (0, 1]")
	}
	return nil
}

// period returns the period containing now, [start, end).
func (p *InventoryPlan) period(now int64) (start, end int64, ok bool) {
	start, end = p.PeriodStart.UnixNano(), p.PeriodEnd.UnixNano()
	if now < start {
		return 0, 0, false
	}
	if now >= end {
		if !p.Repeat {
			return 0, 0, false
		}
		l := end - start
		k := (now - start) / l
		start += k * l
		end = start + l
	}
	return start, end, true
}

func (p *InventoryPlan) target() float64 {
	if p.TargetSellThrough == 0 {
		return 1
	}
	return p.TargetSellThrough
}

// Selling is where a product stands in its selling period, worked out by
// the Book for the strategies that steer by stock.
type Selling struct {
	// Active is set when the product has a plan, the time is inside a
	// period and the stock is known.
	Active     bool
	Start, End int64 // the period, unix ns
	// From is when the plan for the period began (Start, or later when the
	// stock first became known during the period).
	From    int64
	Stock   float64
	Opening float64
	// Keep is what the plan means to have left at End.
	Keep float64
	// ViewRate is the product's views per nanosecond since its stock is
	// known (0 before there are any).
	ViewRate float64
	// Views is how many views that rate rests on.
	Views float64
}

// Remaining is the share of the plan's time still to run, in [0, 1].
func (s Selling) Remaining(now int64) float64 {
	if !s.Active || s.End <= s.From {
		return 0
	}
	return math.Min(1, math.Max(0, float64(s.End-now)/float64(s.End-s.From)))
}

// ToSell is how many units the plan still means to sell.
func (s Selling) ToSell() float64 { return s.Stock - s.Keep }

// OnPlan is how many units would still be left to sell now if sales went
// evenly over the plan's time.
func (s Selling) OnPlan(now int64) float64 { return (s.Opening - s.Keep) * s.Remaining(now) }

// selling describes where product i stands in the selling period that
// contains now. A period the state has not rolled into yet opens with the
// stock on hand.
func (b *Book) selling(i int, now int64) Selling {
	p, m := b.products[i].Inventory, b.states[i].Market
	if p == nil || m == nil || !m.StockKnown {
		return Selling{}
	}
	start, end, ok := p.period(now)
	if !ok {
		return Selling{}
	}
	opening, from := m.Opening, max(m.Opened, start)
	if m.Period != start {
		opening, from = m.Stock, start
	}
	var rate float64
	if now > m.Since {
		rate = m.Views / float64(now-m.Since)
	}
	return Selling{Active: true, Start: start, End: end, From: from, Stock: m.Stock, Opening: opening,
		Keep: opening * (1 - p.target()), ViewRate: rate, Views: m.Views}
}

// roll moves product i's market state into the selling period that
// contains now, before an event changes it.
func (b *Book) roll(i int, now int64) {
	m := b.states[i].Market
	if s := b.selling(i, now); s.Active && m.Period != s.Start {
		m.Period, m.Opening, m.Opened = s.Start, s.Opening, s.From
	}
}

func (b *Book) market(i int) *Signals {
	s := &b.states[i]
	if s.Market == nil {
		s.Market = &Signals{}
	}
	return s.Market
}

// SetStock records that product i has level units on hand at now, and
// reprices it. A level above the known one is a restock: it adds to what
// the current selling period has to sell. It reports whether the
// published price changed.
func (b *Book) SetStock(i int, level float64, now int64) bool {
	m := b.market(i)
	if !m.StockKnown {
		m.Stock, m.StockKnown, m.Since = level, true, now
		b.roll(i, now)
		m.Opening, m.Opened = level, now
	} else {
		b.roll(i, now)
		if level > m.Stock {
			m.Opening += level - m.Stock
		}
		m.Stock = level
	}
	return b.reprice(i, now)
}

// SetCompetitorPrice records a competitor's price for product i at now,
// and reprices it. It reports whether the published price changed.
func (b *Book) SetCompetitorPrice(i int, competitor string, price float64, now int64) bool {
	b.market(i).quote(competitor, price, now)
	return b.reprice(i, now)
}

// Inventory is scarcity pricing: it steers the price so that the stock
// sells down along the product's plan (InventoryPlan), evenly over the
// selling period to the target sell-through. Ahead of plan (selling too
// fast, stock would run out early) the price rises; behind plan it falls:
// the multiplier of the base price is (to sell / on plan)^-Sensitivity,
// bounded to [MinMult, MaxMult]. It needs no demand model: the stock's
// own path is the feedback. Without a plan or a known stock it prices at
// the base price.
type Inventory struct {
	Sensitivity      float64
	MinMult, MaxMult float64
}

// DefaultInventory reacts in proportion (a stock twice as far from plan
// moves the price twice as much) between half and three times the base.
func DefaultInventory() Inventory { return Inventory{Sensitivity: 1, MinMult: 0.5, MaxMult: 3} }

// Name implements Strategy.
func (Inventory) Name() string { return "inventory" }

// Price implements Strategy.
func (v Inventory) Price(in Input) (float64, float64) {
	return in.Product.BasePrice * v.Multiplier(in.Selling, in.Now), in.State.Demand.Total
}

// Multiplier is the factor applied to the base price (1 when no plan
// applies).
func (v Inventory) Multiplier(s Selling, now int64) float64 {
	if !s.Active {
		return 1
	}
	toSell, plan := s.ToSell(), s.OnPlan(now)
	switch {
	case toSell <= 0: // target reached: what is left is rationed
		return v.MaxMult
	case plan <= 0: // period over and stock left: sell it
		return v.MinMult
	}
	return math.Min(v.MaxMult, math.Max(v.MinMult, math.Pow(toSell/plan, -v.Sensitivity)))
}

// CompetitorRule positions a product against the lowest fresh competitor
// price: "match" it, "beat" it (by Pct percent and/or Amount, a cent when
// neither is set) or stay "above" it (by Pct and/or Amount). Floors,
// ceilings and the margin floor then bound the band, as repricers do.
type CompetitorRule struct {
	Mode   string  `json:"mode"`
	Pct    float64 `json:"pct,omitempty"`
	Amount float64 `json:"amount,omitempty"`
}

func (r *CompetitorRule) validate() error {
	if r == nil {
		return nil
	}
	switch r.Mode {
	case "match", "beat", "above":
	default:
		return fmt.Errorf("mode %q: want match, beat or above", r.Mode)
	}
	if r.Pct < 0 || r.Pct >= 100 || math.IsNaN(r.Pct) {
		return errors.New("pct must be in [0, 100)")
	}
	// An amount is a price: a larger one (any finite one was taken) made
	// every price the rule sets, once rounded to cents, infinite, so every
	// competitor price for the product could never be stored.
	if r.Amount < 0 || math.IsNaN(r.Amount) || r.Amount > MaxPrice {
		return fmt.Errorf("amount must be a finite number >= 0 and at most %s", ftoa(MaxPrice))
	}
	return nil
}

// position is the price the rule sets against a competitor price ref.
func (r *CompetitorRule) position(ref float64) float64 {
	switch r.Mode {
	case "beat":
		if r.Pct == 0 && r.Amount == 0 {
			return ref - 0.01
		}
		return ref*(1-r.Pct/100) - r.Amount
	case "above":
		return ref*(1+r.Pct/100) + r.Amount
	}
	return ref
}

// Competitor prices against competitors' prices (CompetitorRule), using
// the lowest price quoted no longer than MaxAge ago; with no rule or no
// fresh quote it prices at the base price.
type Competitor struct{ MaxAge time.Duration }

// DefaultCompetitor trusts a quote for three days.
func DefaultCompetitor() Competitor { return Competitor{MaxAge: 72 * time.Hour} }

// Name implements Strategy.
func (Competitor) Name() string { return "competitor" }

// Price implements Strategy.
func (c Competitor) Price(in Input) (float64, float64) {
	base, d := in.Product.BasePrice, in.State.Demand.Total
	r := in.Product.Competition
	if r == nil {
		return base, d
	}
	q, ok := in.State.Market.reference(in.Now, c.MaxAge)
	if !ok {
		return base, d
	}
	return math.Max(0.01, r.position(q.Price)), d
}

// plans is how stores keep a product's strategy plans: one JSON column.
type plans struct {
	Inventory   *InventoryPlan  `json:"inventory,omitempty"`
	Competition *CompetitorRule `json:"competitor,omitempty"`
	Learning    *LearnPolicy    `json:"learning,omitempty"`
}

// PlansJSON encodes the product's strategy plans (Inventory, Competition
// and the Learning policy) for a store that keeps them in one column; ""
// when it has none.
func (p Product) PlansJSON() string {
	if p.Inventory == nil && p.Competition == nil && p.Learning == nil {
		return ""
	}
	b, _ := json.Marshal(plans{p.Inventory, p.Competition, p.Learning}) // cannot fail: plain fields
	return string(b)
}

// SetPlansJSON is the inverse of PlansJSON.
func (p *Product) SetPlansJSON(s string) error {
	p.Inventory, p.Competition, p.Learning = nil, nil, nil
	if s == "" {
		return nil
	}
	var v plans
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		return fmt.Errorf("product %s: plans: %w", p.ID, err)
	}
	p.Inventory, p.Competition, p.Learning = v.Inventory, v.Competition, v.Learning
	return nil
}

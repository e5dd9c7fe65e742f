package simmarket

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/dynaprice/dynaprice/internal/pricing"
)

// CompetitorSpec is the optional "competitors" block of a scenario: rival
// sellers of every product whose prices shoppers compare with the shop's.
//
// Each product has Count competitors. Competitor j of product i asks on
// average the product's list price times a ratio drawn from PriceRatio;
// every RequoteEvery (from the start) it sets a new price, that mean times
// exp(Volatility × z) with z standard normal, rounded to the cent. The
// draws are hashed from the scenario seed, the product, the competitor and
// the period index, so any period's price can be looked up in O(1)
// without storing a history, and the competitors do not depend on prices,
// arrivals or the strategy being run.
//
// A shopper of the product at price p, when the lowest competitor price at
// that moment is c, buys with probability
//
//	min(1, curve.Buy(p) × shock × 2/(1 + (p/c)^Influence))
//
// The factor is 1 at parity, tends to 2 when the shop is much cheaper and
// to 0 when it is much dearer; Influence is how sharply shoppers react
// (0: they ignore competitors). It models the share of shoppers who would
// have bought here but buy from the cheaper rival instead, and those who
// come because the rival is dearer.
//
// Rule is how the simulator tells the engine to position every product
// against the lowest fresh competitor price (pricing.CompetitorRule: mode
// match, beat or above, pct, amount); only the competitor strategy reads
// it. Without a rule that strategy keeps the list price.
type CompetitorSpec struct {
	Count        int                     `json:"count"`       // competitors per product, 1 to pricing.MaxQuotes
	PriceRatio   Range                   `json:"price_ratio"` // competitor's mean price / list price, in (0, 100]
	RequoteEvery Duration                `json:"requote_every"`
	Volatility   float64                 `json:"volatility"` // sd of the log price around the mean, in [0, 5]
	Influence    float64                 `json:"influence"`  // exponent of the price ratio, in [0, 100]
	Rule         *pricing.CompetitorRule `json:"rule,omitempty"`
}

func (c *CompetitorSpec) validate() error {
	switch {
	case c.Count < 1 || c.Count > pricing.MaxQuotes:
		// The engine remembers MaxQuotes competitors per product; more
		// would silently be forgotten.
		return fmt.Errorf("count: %d must be in [1, %d]", c.Count, pricing.MaxQuotes)
	case c.RequoteEvery.Duration <= 0:
		return fmt.Errorf("requote_every: %v must be positive", c.RequoteEvery)
	case !(c.Volatility >= 0 && c.Volatility <= 5):
		return fmt.Errorf("volatility: %v must be in [0, 5]", c.Volatility)
	case !(c.Influence >= 0 && c.Influence <= 100):
		return fmt.Errorf("influence: %v must be in [0, 100]", c.Influence)
	}
	if err := c.PriceRatio.check("price_ratio", 1e-9, 100); err != nil {
		return err
	}
	if c.Rule != nil {
		// The engine's own check, so the two cannot disagree.
		p := pricing.Product{ID: "x", BasePrice: 1, Competition: c.Rule}
		if err := p.Validate(); err != nil {
			return errors.New("rule: " + strings.TrimPrefix(err.Error(), "competitor: "))
		}
	}
	return nil
}

// Competitors is a built competitors block: every product's competitors'
// mean prices, and their price in any requote period on demand. The
// per-product cache of the current lowest price is the only mutable part;
// it is a pure function of the product and period, so it needs no Reset,
// but like Stock it makes a Market one per concurrent run.
type Competitors struct {
	start     time.Time
	every     time.Duration
	count     int
	vol       float64
	influence float64
	seed      uint64
	mean      []float64 // product*count + competitor
	names     []string
	rule      *pricing.CompetitorRule // the scenario's; Rule hands out copies

	period []int64   // period of lowest, per product (-1: none yet)
	lowest []float64 // lowest competitor price in that period
}

// Hash salts, so the ratio and the requote draws are unrelated streams.
const (
	saltRatio   = 0x6a09e667f3bcc908
	saltRequote = 0xbb67ae8584caa73b
)

func newCompetitors(sc *Scenario, ps []Product) *Competitors {
	spec := sc.Competitors
	c := &Competitors{start: sc.Start, every: spec.RequoteEvery.Duration, count: spec.Count, vol: spec.Volatility,
		influence: spec.Influence, seed: sc.Seed, mean: make([]float64, len(ps)*spec.Count),
		names: make([]string, spec.Count), rule: spec.Rule, period: make([]int64, len(ps)), lowest: make([]float64, len(ps))}
	for j := range c.names {
		c.names[j] = fmt.Sprintf("competitor-%d", j+1)
	}
	for i, p := range ps {
		for j := range spec.Count {
			u, _ := uniforms(hash4(c.seed^saltRatio, uint64(i), uint64(j), 0))
			c.mean[i*c.count+j] = p.BasePrice * (spec.PriceRatio[0] + (spec.PriceRatio[1]-spec.PriceRatio[0])*u)
		}
		c.period[i] = -1
	}
	return c
}

// Count is the number of competitors per product.
func (c *Competitors) Count() int { return c.count }

// Name is competitor j's name, as sent in competitor_price events.
func (c *Competitors) Name(j int) string { return c.names[j] }

// Rule is the positioning rule the scenario gives every product (nil: none).
// The caller gets its own copy.
func (c *Competitors) Rule() *pricing.CompetitorRule {
	if c.rule == nil {
		return nil
	}
	r := *c.rule
	return &r
}

// Period is the index of the requote period containing at (0 from the
// start).
func (c *Competitors) Period(at time.Time) int64 { return int64(at.Sub(c.start) / c.every) }

// Price is competitor j's price for product i in requote period k: the
// mean times exp(volatility × z), z standard normal hashed from the seed,
// i, j and k; rounded to the cent (what a shop would quote and what the
// engine is told) and at least a cent.
func (c *Competitors) Price(i, j int, k int64) float64 {
	u1, u2 := uniforms(hash4(c.seed^saltRequote, uint64(i), uint64(j), uint64(k)))
	z := math.Sqrt(-2*math.Log(u1)) * math.Cos(2*math.Pi*u2) // Box-Muller
	return math.Max(0.01, pricing.RoundCents(c.mean[i*c.count+j]*math.Exp(c.vol*z)))
}

// Lowest is the lowest competitor price for product i in period k.
func (c *Competitors) Lowest(i int, k int64) float64 {
	low := math.Inf(1)
	for j := range c.count {
		low = math.Min(low, c.Price(i, j, k))
	}
	return low
}

// lowestAt is Lowest at time at, cached per product: shoppers come in time
// order, so the competitors are worked out once per product and period.
func (c *Competitors) lowestAt(i int, at time.Time) float64 {
	if k := c.Period(at); k != c.period[i] {
		c.period[i], c.lowest[i] = k, c.Lowest(i, k)
	}
	return c.lowest[i]
}

// Factor is how a competitor price lowest changes the purchase
// probability at price: 2/(1 + (price/lowest)^influence).
func (c *Competitors) Factor(price, lowest float64) float64 {
	return 2 / (1 + math.Pow(price/lowest, c.influence))
}

// hash4 mixes a seed and three indices (SplitMix64's finaliser after each),
// a counter-based generator: any draw is computed directly from its key.
func hash4(seed, a, b, k uint64) uint64 {
	return mix64(mix64(mix64(mix64(seed)^a)^b) ^ k)
}

func mix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// uniforms turns a hash into two uniforms in (0, 1), never 0 so a
// logarithm of either is finite.
func uniforms(h uint64) (float64, float64) {
	const scale = 1.0 / (1 << 53)
	return (float64(h>>11) + 0.5) * scale, (float64(mix64(h)>>11) + 0.5) * scale
}

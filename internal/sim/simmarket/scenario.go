package simmarket

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"reflect"
	"strings"
	"time"

	"github.com/dynaprice/dynaprice/internal/pricing"
)

// Duration is a time.Duration written in JSON as a Go duration string
// ("90m", "168h"), which is what people can read in a scenario file.
type Duration struct{ time.Duration }

// UnmarshalJSON implements json.Unmarshaler. A bad value is reported as a
// *json.UnmarshalTypeError so the decoder adds the field path to it.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return &json.UnmarshalTypeError{Value: string(b), Type: reflect.TypeFor[Duration]()}
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return &json.UnmarshalTypeError{Value: fmt.Sprintf("duration %q", s), Type: reflect.TypeFor[Duration]()}
	}
	d.Duration = v
	return nil
}

// MarshalJSON implements json.Marshaler.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.Duration.String()) }

// Range is an inclusive [lo, hi] interval, written as a two-element array.
type Range [2]float64

func (r Range) draw(rng *rand.Rand) float64 { return r[0] + (r[1]-r[0])*rng.Float64() }

func (r Range) check(name string, lo, hi float64) error {
	if !(r[0] <= r[1]) || !(r[0] >= lo) || !(r[1] <= hi) {
		return fmt.Errorf("%s: range [%v, %v] must be ordered and within [%v, %v]", name, r[0], r[1], lo, hi)
	}
	return nil
}

// Scenario is a complete market description, usually loaded from JSON.
type Scenario struct {
	Name        string    `json:"name"`
	Description string    `json:"description"`
	Seed        uint64    `json:"seed"`
	Start       time.Time `json:"start"`
	Horizon     Duration  `json:"horizon"`
	Arrivals    Arrivals  `json:"arrivals"`
	Products    Products  `json:"products"`
	Funnel      Funnel    `json:"funnel"`
	// Competitors, when set, gives every product rival sellers whose
	// prices shoppers compare with the shop's (see CompetitorSpec).
	// Without it the shop is alone in its market.
	Competitors *CompetitorSpec `json:"competitors,omitempty"`
	// WTPDrift, when not 0, moves every shopper's willingness to pay by
	// this fraction a day, compounded and stepping at every whole hour
	// from the start: at hour h a shopper buys with the probability the
	// curve gives at price / (1+WTPDrift)^(h/24), so the prices shoppers
	// accept drift up (or down) over the horizon and a price that was
	// right at the start is not right at the end. Hourly steps keep
	// demand constant within an hour, as the arrival rate is, so the
	// simulator's bound can take it exactly.
	WTPDrift float64 `json:"wtp_drift_per_day,omitempty"`
}

// Products is either an explicit List or a Generate recipe, not both.
type Products struct {
	List     []ProductSpec `json:"list,omitempty"`
	Generate *Generate     `json:"generate,omitempty"`
}

// ProductSpec is one explicitly listed product.
type ProductSpec struct {
	ID        string    `json:"id"`
	BasePrice float64   `json:"base_price"` // the catalog price the engine starts from
	Cost      float64   `json:"cost"`
	Weight    float64   `json:"weight,omitempty"` // popularity; 0 means 1
	Curve     CurveSpec `json:"curve"`
	Stock     StockSpec `json:"stock"`
}

// CurveSpec names a demand family and its parameters; only the family's
// own parameters may be set.
type CurveSpec struct {
	Family string  `json:"family"` // "logit", "linear", "const_elasticity" or "ladder"
	A      float64 `json:"a,omitempty"`
	B      float64 `json:"b,omitempty"`
	P0     float64 `json:"p0,omitempty"`
	Slope  float64 `json:"slope,omitempty"`
	K      float64 `json:"k,omitempty"`
	Eps    float64 `json:"eps,omitempty"`
	// Prices and Buys are the ladder's (see Ladder).
	Prices []float64 `json:"prices,omitempty"`
	Buys   []float64 `json:"buys,omitempty"`
}

// Generate makes Count products. Rather than raw family parameters, each
// product draws a base price, the purchase probability at that price and
// the price elasticity |dlnP/dlnp| there; the family's parameters are then
// solved from those three numbers (see CurveAt). This keeps one recipe
// meaningful across families: "price-sensitive" is simply a high
// elasticity range. Popularity is Zipf(ZipfS) by product index.
type Generate struct {
	Count      int       `json:"count"`
	IDPrefix   string    `json:"id_prefix,omitempty"` // default "P"
	Family     string    `json:"family"`
	BasePrice  Range     `json:"base_price"`
	BaseBuy    Range     `json:"base_buy"`   // purchase probability at base price, in (0,1)
	Elasticity Range     `json:"elasticity"` // > 0; > 1 for const_elasticity
	CostRatio  Range     `json:"cost_ratio"` // cost / base price, in [0,1)
	ZipfS      float64   `json:"zipf_s"`
	Stock      StockSpec `json:"stock"`
}

// ParseScenario decodes and validates a scenario. Decoding is strict:
// unknown fields and trailing data are errors, so a typo cannot silently
// fall back to a default.
func ParseScenario(data []byte) (*Scenario, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var sc Scenario
	if err := dec.Decode(&sc); err != nil {
		return nil, fmt.Errorf("scenario: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("scenario: trailing data after the JSON object")
	}
	if err := sc.Validate(); err != nil {
		return nil, fmt.Errorf("scenario %q: %w", sc.Name, err)
	}
	return &sc, nil
}

// LoadScenario reads and parses a scenario file.
func LoadScenario(path string) (*Scenario, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load scenario: %w", err)
	}
	sc, err := ParseScenario(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return sc, nil
}

func finite(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }

// Validate checks every field; errors name the offending field by its JSON
// path.
func (sc *Scenario) Validate() error {
	switch {
	case strings.TrimSpace(sc.Name) == "":
		return errors.New("name: required")
	case sc.Start.IsZero():
		return errors.New("start: required (RFC 3339 time)")
	case sc.Horizon.Duration <= 0:
		return errors.New("horizon: must be positive")
	case !(sc.Arrivals.RatePerHour > 0) || !finite(sc.Arrivals.RatePerHour):
		return fmt.Errorf("arrivals.rate_per_hour: %v must be positive", sc.Arrivals.RatePerHour)
	case !(sc.Funnel.CartShare >= 0 && sc.Funnel.CartShare <= 1):
		return fmt.Errorf("funnel.cart_share: %v must be in [0,1]", sc.Funnel.CartShare)
	}
	if !(sc.WTPDrift >= -0.5 && sc.WTPDrift <= 1) {
		return fmt.Errorf("wtp_drift_per_day: %v must be in [-0.5, 1]", sc.WTPDrift)
	}
	var tmp [24]float64
	if err := normalise(tmp[:], sc.Arrivals.Hourly, "arrivals.hourly"); err != nil {
		return err
	}
	if err := normalise(tmp[:7], sc.Arrivals.Daily, "arrivals.daily"); err != nil {
		return err
	}
	n, err := sc.Products.validate()
	if err != nil {
		return fmt.Errorf("products.%w", err)
	}
	for i, sh := range sc.Arrivals.Shocks {
		if err := sh.validate(n); err != nil {
			return fmt.Errorf("arrivals.shocks[%d].%w", i, err)
		}
	}
	if sc.Competitors != nil {
		if err := sc.Competitors.validate(); err != nil {
			return fmt.Errorf("competitors.%w", err)
		}
	}
	return nil
}

func (p *Products) validate() (int, error) {
	switch {
	case len(p.List) > 0 && p.Generate != nil:
		return 0, errors.New("list/generate: set one, not both")
	case len(p.List) > 0:
		seen := make(map[string]bool, len(p.List))
		for i, ps := range p.List {
			if err := ps.validate(); err != nil {
				return 0, fmt.Errorf("list[%d].%w", i, err)
			}
			if seen[ps.ID] {
				return 0, fmt.Errorf("list[%d].id: duplicate %q", i, ps.ID)
			}
			seen[ps.ID] = true
		}
		return len(p.List), nil
	case p.Generate != nil:
		if err := p.Generate.validate(); err != nil {
			return 0, fmt.Errorf("generate.%w", err)
		}
		return p.Generate.Count, nil
	}
	return 0, errors.New("list/generate: one is required")
}

func (ps ProductSpec) validate() error {
	switch {
	case ps.ID == "":
		return errors.New("id: required")
	case !(ps.BasePrice > 0) || !finite(ps.BasePrice):
		return fmt.Errorf("base_price: %v must be positive", ps.BasePrice)
	case !(ps.Cost >= 0) || !finite(ps.Cost):
		return fmt.Errorf("cost: %v must be non-negative", ps.Cost)
	case !(ps.Weight >= 0) || !finite(ps.Weight):
		return fmt.Errorf("weight: %v must be non-negative", ps.Weight)
	}
	if _, err := ps.Curve.Build(); err != nil {
		return fmt.Errorf("curve.%w", err)
	}
	if err := ps.Stock.validate(); err != nil {
		return fmt.Errorf("stock: %w", err)
	}
	return nil
}

// Build returns the curve the spec describes.
func (c CurveSpec) Build() (Curve, error) {
	pos := func(name string, v float64) error {
		if !(v > 0) || !finite(v) {
			return fmt.Errorf("%s: %v must be positive", name, v)
		}
		return nil
	}
	only := func(ok ...float64) error {
		set := 0
		for _, v := range []float64{c.A, c.B, c.P0, c.Slope, c.K, c.Eps} {
			if v != 0 {
				set++
			}
		}
		for _, v := range ok {
			if v != 0 {
				set--
			}
		}
		if set != 0 || (c.Family != "ladder" && (c.Prices != nil || c.Buys != nil)) {
			return fmt.Errorf("family: %q takes only its own parameters", c.Family)
		}
		return nil
	}
	switch c.Family {
	case "logit":
		if err := errors.Join(pos("b", c.B), only(c.A, c.B)); err != nil {
			return nil, err
		}
		if !finite(c.A) {
			return nil, fmt.Errorf("a: %v must be finite", c.A)
		}
		return Logit{A: c.A, B: c.B}, nil
	case "linear":
		if err := errors.Join(pos("p0", c.P0), pos("slope", c.Slope), only(c.P0, c.Slope)); err != nil {
			return nil, err
		}
		return Linear{P0: c.P0, Slope: c.Slope}, nil
	case "const_elasticity":
		if err := errors.Join(pos("k", c.K), pos("eps", c.Eps), only(c.K, c.Eps)); err != nil {
			return nil, err
		}
		if c.Eps <= 1 {
			return nil, fmt.Errorf("eps: %v must exceed 1 for a finite optimal price", c.Eps)
		}
		return ConstElasticity{K: c.K, Eps: c.Eps}, nil
	case "ladder":
		if err := errors.Join(only(), c.ladder()); err != nil {
			return nil, err
		}
		return Ladder{Prices: c.Prices, Buys: c.Buys}, nil
	}
	return nil, fmt.Errorf("family: unknown %q (want logit, linear, const_elasticity or ladder)", c.Family)
}

// ladder checks a ladder's prices and purchase probabilities.
func (c CurveSpec) ladder() error {
	if len(c.Prices) == 0 || len(c.Prices) != len(c.Buys) {
		return fmt.Errorf("prices/buys: want as many of each, at least one (got %d and %d)", len(c.Prices), len(c.Buys))
	}
	for k, p := range c.Prices {
		if !(p > 0) || !finite(p) || (k > 0 && !(p > c.Prices[k-1])) {
			return fmt.Errorf("prices[%d]: %v must be positive and above the one before", k, p)
		}
		if b := c.Buys[k]; !(b >= 0 && b <= 1) || (k > 0 && b > c.Buys[k-1]) {
			return fmt.Errorf("buys[%d]: %v must be in [0,1] and not above the one before", k, b)
		}
	}
	return nil
}

func (g *Generate) validate() error {
	if g.Count <= 0 {
		return fmt.Errorf("count: %d must be positive", g.Count)
	}
	if _, err := CurveAt(g.Family, 1, 0.5, 2); err != nil {
		return fmt.Errorf("family: %w", err)
	}
	minEl := 0.0
	if g.Family == "const_elasticity" {
		minEl = 1 + 1e-9
	}
	if !(g.ZipfS >= 0) || !finite(g.ZipfS) {
		return fmt.Errorf("zipf_s: %v must be non-negative", g.ZipfS)
	}
	if err := errors.Join(
		g.BasePrice.check("base_price", 1e-9, math.MaxFloat64),
		g.BaseBuy.check("base_buy", 1e-9, 1-1e-9),
		g.Elasticity.check("elasticity", minEl+1e-9, 1e6),
		g.CostRatio.check("cost_ratio", 0, 1-1e-9),
	); err != nil {
		return err
	}
	if err := g.Stock.validate(); err != nil {
		return fmt.Errorf("stock: %w", err)
	}
	return nil
}

// CurveAt returns the family's curve passing through purchase probability
// q at base price p with elasticity e = -dlnP/dlnp there:
//
//	const_elasticity: Eps = e, K = q*p^e
//	linear:           Slope = e*q/p, P0 = q*(1+e)
//	logit:            B = e/(p*(1-q)), A = logit(q) + B*p
func CurveAt(family string, p, q, e float64) (Curve, error) {
	switch family {
	case "const_elasticity":
		return ConstElasticity{K: q * math.Pow(p, e), Eps: e}, nil
	case "linear":
		return Linear{P0: q * (1 + e), Slope: e * q / p}, nil
	case "logit":
		b := e / (p * (1 - q))
		return Logit{A: math.Log(q/(1-q)) + b*p, B: b}, nil
	}
	return nil, fmt.Errorf("unknown family %q (want logit, linear or const_elasticity)", family)
}

// Product is a built product: what the simulator shows the engine (ID,
// BasePrice), what it scores with (Cost) and what it hides (Curve).
type Product struct {
	ID        string
	BasePrice float64
	Cost      float64
	Weight    float64
	Curve     Curve
	Stock     StockSpec
}

// BuildProducts builds the scenario's product list. Generated products come
// from their own random stream (derived from the seed) so that changing
// the arrival settings never changes the products and vice versa.
func (sc *Scenario) BuildProducts() ([]Product, error) {
	if len(sc.Products.List) > 0 {
		out := make([]Product, len(sc.Products.List))
		for i, ps := range sc.Products.List {
			c, err := ps.Curve.Build()
			if err != nil {
				return nil, fmt.Errorf("products.list[%d].curve.%w", i, err)
			}
			out[i] = Product{ID: ps.ID, BasePrice: ps.BasePrice, Cost: ps.Cost, Weight: orOne(ps.Weight), Curve: c, Stock: ps.Stock}
		}
		return out, nil
	}
	g := sc.Products.Generate
	if g == nil {
		return nil, errors.New("products: none")
	}
	rng := rand.New(rand.NewPCG(sc.Seed, sc.Seed^0x5851f42d4c957f2d))
	prefix := g.IDPrefix
	if prefix == "" {
		prefix = "P"
	}
	w := ZipfWeights(g.Count, g.ZipfS)
	out := make([]Product, g.Count)
	for i := range out {
		p, q, e, cr := g.BasePrice.draw(rng), g.BaseBuy.draw(rng), g.Elasticity.draw(rng), g.CostRatio.draw(rng)
		c, err := CurveAt(g.Family, p, q, e)
		if err != nil {
			return nil, fmt.Errorf("products.generate.family: %w", err)
		}
		p = math.Round(p*100) / 100
		out[i] = Product{ID: fmt.Sprintf("%s%d", prefix, i), BasePrice: p, Cost: math.Round(cr*p*100) / 100,
			Weight: w[i], Curve: c, Stock: g.Stock}
	}
	return out, nil
}

// Market is a built scenario: products, inventory, funnel and
// competitors. Curves and products are immutable; Stock is mutable (and
// Competitors caches), so use one Market per concurrent run, or Reset
// between sequential runs.
type Market struct {
	Scenario *Scenario
	Products []Product
	Funnel   Funnel
	Stock    *Stock
	// Competitors is nil when the scenario has none.
	Competitors *Competitors
}

// New builds a market from a validated scenario.
func New(sc *Scenario) (*Market, error) {
	if err := sc.Validate(); err != nil {
		return nil, fmt.Errorf("market: %w", err)
	}
	ps, err := sc.BuildProducts()
	if err != nil {
		return nil, fmt.Errorf("market: %w", err)
	}
	specs := make([]StockSpec, len(ps))
	for i := range ps {
		specs[i] = ps[i].Stock
	}
	st, err := NewStock(sc.Start, specs)
	if err != nil {
		return nil, fmt.Errorf("market: %w", err)
	}
	m := &Market{Scenario: sc, Products: ps, Funnel: sc.Funnel, Stock: st}
	if sc.Competitors != nil {
		m.Competitors = newCompetitors(sc, ps)
	}
	return m, nil
}

// Stream returns a fresh shopper stream for the scenario. Every call
// yields the identical sequence, which is how strategies are compared.
func (m *Market) Stream() (*Stream, error) {
	w := make([]float64, len(m.Products))
	for i := range m.Products {
		w[i] = m.Products[i].Weight
	}
	return NewStream(StreamConfig{Seed: m.Scenario.Seed, Start: m.Scenario.Start, Horizon: m.Scenario.Horizon.Duration,
		Arrivals: m.Scenario.Arrivals, Weights: w})
}

// Reset restores inventory for another run.
func (m *Market) Reset() { m.Stock.Reset() }

// Demand is what a product's purchase probability depends on at a
// moment besides the price: shoppers and the simulator's bound (see
// Outlook) read it through BuyAt, so the two cannot disagree.
type Demand struct {
	// Mult is the product of the active demand shocks' multipliers (1:
	// none).
	Mult float64
	// WTP is the willingness-to-pay factor of the drift (1: none).
	WTP float64
	// Lowest is the lowest competitor price (0 without competitors).
	Lowest float64
}

// BuyAt is product i's purchase probability at price under demand d: the
// curve at price/d.WTP, times d.Mult and, with competitors, times how the
// price compares with d.Lowest (Competitors.Factor), capped at 1.
func (m *Market) BuyAt(i int, d Demand, price float64) float64 {
	b := d.Mult * m.Products[i].Curve.Buy(price/d.WTP)
	if c := m.Competitors; c != nil {
		b *= c.Factor(price, d.Lowest)
	}
	return math.Min(1, b)
}

// Buy is the shopper's purchase probability at price: BuyAt with the
// shopper's shock multiplier, the drift at the shopper's time and the
// lowest competitor price then.
func (m *Market) Buy(s *Shopper, price float64) float64 {
	d := Demand{Mult: s.Demand, WTP: m.WTP(s.At.Sub(m.Scenario.Start))}
	if c := m.Competitors; c != nil {
		d.Lowest = c.lowestAt(s.Product, s.At)
	}
	return m.BuyAt(s.Product, d, price)
}

// WTP is the willingness-to-pay factor at offset d from the start:
// (1+WTPDrift)^(h/24) with h the whole hours since the start, exactly 1
// without drift.
func (m *Market) WTP(d time.Duration) float64 {
	if m.Scenario.WTPDrift == 0 {
		return 1
	}
	return math.Pow(1+m.Scenario.WTPDrift, float64(d/time.Hour)/24)
}

// Outcome is what happened to one shopper.
type Outcome struct {
	Stage    pricing.EventType // deepest event to emit: View, Cart or Purchase
	StockOut bool              // would have bought, but there was no stock (Stage is Cart)
}

// Visit runs one shopper through the funnel at the shown price and, on a
// purchase, takes a unit of stock. A purchase that finds no stock ends as
// a cart with StockOut set, and is counted by Stock.
func (m *Market) Visit(s *Shopper, price float64) Outcome {
	st := m.Funnel.Decide(m.Buy(s, price), s)
	if st == pricing.Purchase && !m.Stock.Take(s.Product, s.At) {
		return Outcome{Stage: pricing.Cart, StockOut: true}
	}
	return Outcome{Stage: st}
}

// Package sim runs pricing strategies against a simulated market: the real
// engine code (engine.Machine: strategies, guardrails, overrides) prices
// every product while shoppers from simmarket arrive, see the current
// price, and view, add to cart or buy. Every strategy faces the same
// shoppers (same arrivals, same random draws), so differences in revenue
// come from the prices, not from luck.
//
// Besides the strategies asked for, every run includes "oracle": each
// product at the best fixed price knowing its true demand curve, its
// traffic, its competitors' prices and its stock (the revenue-maximising
// price, raised to the price that just sells the stock when stock is
// short), the clairvoyant benchmark the others are measured against.
//
// With competitors in the scenario, the simulator reports their prices to
// the engine as competitor_price events and gives every product the
// scenario's positioning rule, so the competitor strategy can be judged.
//
// WriteReport and WriteCharts write a run's results as `dynaprice simulate`
// shows them: a text table, JSON, CSV and SVG charts.
package sim

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/dynaprice/dynaprice/internal/engine"
	"github.com/dynaprice/dynaprice/internal/ingest"
	"github.com/dynaprice/dynaprice/internal/pricing"
	"github.com/dynaprice/dynaprice/internal/sim/simmarket"
)

// Oracle is the name of the clairvoyant fixed-price benchmark.
const Oracle = "oracle"

// Static is the list-price strategy: the catalog's base price, unchanged.
const Static = "static"

// Config configures a run.
type Config struct {
	Scenario *simmarket.Scenario
	// Strategies to compare, by name: static, seed, decay, inventory,
	// thompson, competitor (and any in Pricing.Strategies). The oracle is
	// always added.
	Strategies []string
	// Pricing configures the engine (weights, half-life, strategies).
	Pricing pricing.Config
	// MarginFloor, when true, floors every price at the product's unit
	// cost (a guardrail any shop would set).
	MarginFloor bool
	// Progress, when set, receives a progress line about every second.
	Progress io.Writer
}

// Result is one strategy's outcome.
type Result struct {
	Strategy  string  `json:"strategy"`
	Revenue   float64 `json:"revenue"`
	Margin    float64 `json:"margin"`
	Units     int64   `json:"units"`
	StockOuts int64   `json:"stock_outs"`
	// OfOptimum is revenue as a percentage of the oracle's.
	OfOptimum float64 `json:"revenue_pct_of_optimum"`
	// PriceChanges counts published price changes; Volatility is their
	// mean absolute size in percent.
	PriceChanges int64   `json:"price_changes"`
	Volatility   float64 `json:"volatility_pct"`
	Shoppers     int64   `json:"shoppers"`
	Elapsed      time.Duration
	// Series samples the run at regular steps of simulated time, for
	// charts.
	Series []Sample `json:"series"`
}

// Sample is the state of a run at one moment of simulated time.
type Sample struct {
	// Hours since the scenario's start.
	Hours float64 `json:"hours"`
	// Revenue so far.
	Revenue float64 `json:"revenue"`
	// Price of the most popular product (the scenario's first).
	Price float64 `json:"price"`
}

// samples is how many samples a run keeps.
const samples = 200

// staticStrategy prices at the base price.
type staticStrategy struct{}

func (staticStrategy) Name() string { return Static }
func (staticStrategy) Price(in pricing.Input) (float64, float64) {
	return in.Product.BasePrice, in.State.Demand.Total
}

// Run simulates every strategy in turn on the same shoppers and returns
// their results, the oracle last.
func Run(ctx context.Context, cfg Config) ([]Result, error) {
	if cfg.Scenario == nil {
		return nil, errors.New("sim: no scenario")
	}
	names := append(append([]string(nil), cfg.Strategies...), Oracle)
	pc := cfg.Pricing
	if pc.Weights == (pricing.Weights{}) {
		pc = pricing.DefaultConfig()
	}
	strategies := map[string]pricing.Strategy{
		"seed": pricing.Seed{K: 5}, "decay": pricing.Decay{K: 5, HalfLife: pc.HalfLife}, Static: staticStrategy{},
		"thompson": pricing.DefaultThompson(), "inventory": pricing.DefaultInventory(),
		"competitor": pricing.DefaultCompetitor(),
	}
	for n, s := range pc.Strategies {
		strategies[n] = s
	}
	pc.Strategies = strategies
	// Check every name before the first run: a typo in the last one must
	// not cost the time of the others.
	for _, name := range cfg.Strategies {
		if _, ok := strategies[name]; !ok {
			known := slices.Sorted(maps.Keys(strategies))
			return nil, fmt.Errorf("sim: unknown strategy %q (known: %s)", name, strings.Join(known, ", "))
		}
	}
	var out []Result
	for _, name := range names {
		r, err := runOne(ctx, cfg, pc, name)
		if err != nil {
			return out, err
		}
		out = append(out, r)
	}
	best := out[len(out)-1].Revenue
	for i := range out {
		if best > 0 {
			out[i].OfOptimum = 100 * out[i].Revenue / best
		}
	}
	return out, nil
}

func runOne(ctx context.Context, cfg Config, pc pricing.Config, name string) (Result, error) {
	start := time.Now()
	m, err := simmarket.New(cfg.Scenario)
	if err != nil {
		return Result{}, err
	}
	strategy := name
	if name == Oracle {
		strategy = Static
	}
	if _, ok := pc.Strategies[strategy]; !ok {
		return Result{}, fmt.Errorf("sim: unknown strategy %q", name)
	}
	pc.DefaultStrategy = strategy
	ecfg := engine.DefaultConfig()
	ecfg.Pricing = pc
	mach := engine.NewMachine(ecfg)
	products := make([]pricing.Product, len(m.Products))
	var views []float64
	var periods [][]periodViews
	if name == Oracle {
		if views, periods, err = countViews(m); err != nil {
			return Result{}, err
		}
	}
	comp := m.Competitors
	for i, p := range m.Products {
		pp := pricing.Product{ID: p.ID, BasePrice: p.BasePrice}
		if name == Oracle {
			// The revenue-maximising fixed price (the figure reported is
			// revenue), searched well around the list price and, like
			// every strategy's, not below cost with the margin floor.
			lo := p.BasePrice / 10
			if cfg.MarginFloor {
				lo = math.Max(lo, p.Cost)
			}
			hi := math.Max(lo, p.BasePrice*10)
			var best float64
			var demand func(float64) float64 // expected units at a price
			if comp == nil {
				best = simmarket.OptimalPrice(p.Curve, 0, lo, hi)
				demand = func(q float64) float64 { return views[i] * p.Curve.Buy(q) }
			} else {
				demand = competingDemand(p.Curve, comp, periods[i])
				best = maxRevenue(demand, lo, hi)
			}
			// With limited stock, no fixed price below the one that just
			// sells the stock to the shoppers who come earns more.
			if c := capacity(p.Stock, cfg.Scenario.Horizon.Duration); demand(best) > c {
				best = math.Max(best, sellOutPrice(demand, c, lo, hi))
			}
			pp.BasePrice = pricing.RoundCents(best)
		}
		if cfg.MarginFloor && p.Cost > 0 {
			pp.UnitCost = p.Cost
		}
		pp.Inventory = plan(cfg.Scenario, p.Stock)
		if comp != nil {
			pp.Competition = comp.Rule()
		}
		products[i] = pp
	}
	now := cfg.Scenario.Start.UnixNano()
	if _, err := mach.Load(engine.Snapshot{Products: products}, now); err != nil {
		return Result{}, fmt.Errorf("sim: %s: %w", name, err)
	}
	stream, err := m.Stream()
	if err != nil {
		return Result{}, err
	}
	r := Result{Strategy: name}
	var sh simmarket.Shopper
	// known is the stock level the engine was last told of, less the
	// purchases it has seen since (-1: not told yet). The shop reports its
	// stock when it changes other than by a sale: at the start and on
	// every restock.
	known := untold(len(products))
	// quoted is the requote period whose competitor prices the engine was
	// last told of, per product (-1: none yet). Like a shop's price
	// monitor, the simulator reports the competitors' new prices when they
	// change, lazily at the product's first shopper after a requote, to
	// every strategy alike.
	var quoted []int64
	quotes := 0 // competitor quotes per product and requote
	if comp != nil {
		quoted, quotes = untold(len(products)), comp.Count()
	}
	// evs is the events of one shopper (up to three), of a stock report
	// or of a product's quotes.
	evs := make([]ingest.Event, 0, max(4, quotes))
	var res engine.SubmitResult
	var volSum float64
	lastProgress := time.Now()
	startAt, step := cfg.Scenario.Start, cfg.Scenario.Horizon.Duration/samples
	nextSample := startAt
	sample := func(at time.Time) {
		r.Series = append(r.Series, Sample{Hours: at.Sub(startAt).Hours(), Revenue: pricing.RoundCents(r.Revenue), Price: mach.PriceAt(0)})
	}
	for stream.Next(&sh) {
		for step > 0 && !sh.At.Before(nextSample) {
			sample(nextSample)
			nextSample = nextSample.Add(step)
		}
		r.Shoppers++
		if r.Shoppers%65536 == 0 {
			if err := ctx.Err(); err != nil {
				return r, err
			}
			// Drop the batch the machine collects for a store; nothing
			// is persisted in a simulation.
			mach.Seal()
			mach.Begin()
			if cfg.Progress != nil && time.Since(lastProgress) >= time.Second {
				lastProgress = time.Now()
				fmt.Fprintf(cfg.Progress, "  %-8s %s  %d shoppers\n", name, sh.At.Format(time.DateTime), r.Shoppers)
			}
		}
		i := sh.Product
		t := sh.At.UnixNano()
		id := products[i].ID
		// A stock report or competitor quotes reprice the product with
		// its strategy before the shopper sees it (inventory reprices on
		// a restock, decay on the time passed, competitor on the
		// quotes): such a change counts like one a shopper causes.
		before := mach.PriceAt(i)
		if !m.Products[i].Stock.Unlimited {
			// Compare the true level, so a level above ingest.MaxStock
			// is sent once, not at every shopper; only the quantity
			// sent is clipped.
			if level := m.Stock.Level(i, sh.At); level != known[i] {
				known[i] = level
				evs = append(evs[:0], ingest.Event{Type: pricing.Stock, ProductID: id, Timestamp: t, Quantity: int32(min(level, ingest.MaxStock))})
				mach.ApplyEvents(evs, t, &res)
			}
		}
		if comp != nil {
			if k := comp.Period(sh.At); k != quoted[i] {
				quoted[i] = k
				evs = evs[:0]
				for j := range comp.Count() {
					evs = append(evs, ingest.Event{Type: pricing.CompetitorPrice, ProductID: id, Timestamp: t,
						Price: comp.Price(i, j, k), Competitor: comp.Name(j), Quantity: 1})
				}
				mach.ApplyEvents(evs, t, &res)
			}
		}
		price := mach.PriceAt(i)
		if price != before {
			r.PriceChanges++
			volSum += math.Abs(price-before) / before
		}
		out := m.Visit(&sh, price)
		if out.StockOut {
			r.StockOuts++
		}
		// Events say which price the shopper saw, as a shop's do.
		evs = append(evs[:0], ingest.Event{Type: pricing.View, ProductID: id, Timestamp: t, Price: price, Quantity: 1})
		if out.Stage >= pricing.Cart {
			evs = append(evs, ingest.Event{Type: pricing.Cart, ProductID: id, Timestamp: t, Price: price, Quantity: 1})
		}
		if out.Stage == pricing.Purchase {
			evs = append(evs, ingest.Event{Type: pricing.Purchase, ProductID: id, Timestamp: t, Price: price, Quantity: 1})
			r.Units++
			known[i]--
			r.Revenue += price
			r.Margin += price - m.Products[i].Cost
		}
		mach.ApplyEvents(evs, t, &res)
		if np := mach.PriceAt(i); np != price {
			r.PriceChanges++
			volSum += math.Abs(np-price) / price
		}
	}
	sample(startAt.Add(cfg.Scenario.Horizon.Duration))
	if r.PriceChanges > 0 {
		r.Volatility = 100 * volSum / float64(r.PriceChanges)
	}
	r.Revenue, r.Margin = pricing.RoundCents(r.Revenue), pricing.RoundCents(r.Margin)
	r.Elapsed = time.Since(start)
	return r, nil
}

// untold is n values of -1: not told yet.
func untold(n int) []int64 {
	s := make([]int64, n)
	for i := range s {
		s[i] = -1
	}
	return s
}

// plan is the selling plan a shop with this stock policy would give the
// engine: sell what is on hand by the next restock (or by the end of the
// horizon), period after period. Unlimited stock has no plan.
func plan(sc *simmarket.Scenario, st simmarket.StockSpec) *pricing.InventoryPlan {
	if st.Unlimited {
		return nil
	}
	period := sc.Horizon.Duration
	if st.RestockEvery.Duration > 0 {
		period = st.RestockEvery.Duration
	}
	return &pricing.InventoryPlan{PeriodStart: sc.Start, PeriodEnd: sc.Start.Add(period), Repeat: true}
}

// periodViews is a product's views in one requote period, with the
// lowest competitor price the viewers compared against.
type periodViews struct {
	views, lowest float64
	period        int64
}

// countViews counts the shoppers each product gets over the horizon: the
// clairvoyant knows the traffic as well as the curves. With competitors it
// also counts them per requote period (periods without views are left
// out, so the lists hold at most one entry per shopper however short the
// periods).
func countViews(m *simmarket.Market) ([]float64, [][]periodViews, error) {
	st, err := m.Stream()
	if err != nil {
		return nil, nil, err
	}
	views := make([]float64, len(m.Products))
	var periods [][]periodViews
	comp := m.Competitors
	if comp != nil {
		periods = make([][]periodViews, len(m.Products))
	}
	var sh simmarket.Shopper
	for st.Next(&sh) {
		views[sh.Product]++
		if comp == nil {
			continue
		}
		// The stream is in time order, so a product's periods come in
		// order too.
		ps := periods[sh.Product]
		if k := comp.Period(sh.At); len(ps) == 0 || ps[len(ps)-1].period != k {
			ps = append(ps, periodViews{period: k, lowest: comp.Lowest(sh.Product, k)})
		}
		ps[len(ps)-1].views++
		periods[sh.Product] = ps
	}
	return views, periods, nil
}

// competingDemand is a product's expected units over the horizon at a
// fixed price when shoppers compare it with the competitors: the sum over
// requote periods of views × min(1, Buy(p) × Factor(p, lowest)), as
// simmarket.Market.Buy has it (without demand shocks, as the closed-form
// oracle has it). It falls with the price, as sellOutPrice needs.
func competingDemand(cv simmarket.Curve, comp *simmarket.Competitors, ps []periodViews) func(float64) float64 {
	return func(p float64) float64 {
		b, d := cv.Buy(p), 0.0
		for _, pv := range ps {
			d += pv.views * math.Min(1, b*comp.Factor(p, pv.lowest))
		}
		return d
	}
}

// maxRevenue maximises p × demand(p) on [lo, hi] numerically, for the
// oracle with competitors, whose revenue has no closed form and, being a
// sum over periods of capped terms, kinks where a period's cap starts to
// bind and may have several local maxima: simmarket.GridMax on a log-spaced
// grid of 1024 cells (prices are compared in ratios, and the range spans
// a factor of 100), refined to 1e-10.
func maxRevenue(demand func(float64) float64, lo, hi float64) float64 {
	if !(hi > lo) {
		return lo
	}
	const grid = 1024
	ratio := math.Pow(hi/lo, 1.0/grid)
	at := func(k int) float64 {
		if k >= grid {
			return hi
		}
		return lo * math.Pow(ratio, float64(k))
	}
	return simmarket.GridMax(func(p float64) float64 { return p * demand(p) }, at, grid, 1e-10)
}

// capacity is how many units a product can sell over the horizon.
func capacity(s simmarket.StockSpec, horizon time.Duration) float64 {
	if s.Unlimited {
		return math.Inf(1)
	}
	c := float64(s.Initial)
	if s.RestockEvery.Duration > 0 {
		n := float64(horizon / s.RestockEvery.Duration)
		c += n * float64(max(s.RestockTo, s.RestockBy))
	}
	return c
}

// sellOutPrice is the price at which the shoppers buy c units, demand(p)
// being the units they buy at p, found by bisection (demand falls with
// price).
func sellOutPrice(demand func(float64) float64, c, lo, hi float64) float64 {
	if demand(hi) >= c {
		return hi
	}
	for range 100 {
		mid := (lo + hi) / 2
		if demand(mid) > c {
			lo = mid
		} else {
			hi = mid
		}
	}
	return hi
}

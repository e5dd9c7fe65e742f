// Package sim runs pricing strategies against a simulated market: the real
// engine code (engine.Machine: strategies, guardrails, overrides) prices
// every product while shoppers from simmarket arrive, see the current
// price, and view, add to cart or buy. Every strategy faces the same
// shoppers (same arrivals, same random draws), so differences in revenue
// come from the prices, not from luck.
//
// Every run is measured against two clairvoyant benchmarks worked out from
// the market's true expected demand (bound.go): "best-fixed", each
// product at the one price that earns most over the horizon knowing its
// demand and stock, run like a strategy; and the dynamic bound, what a
// clairvoyant free to set any price at any moment could expect at most
// (a fluid relaxation: an upper bound on every strategy's expected
// revenue, not a policy). Each result is reported as a percentage of both.
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

// BestFixed is the name of the clairvoyant fixed-price benchmark.
const BestFixed = "best-fixed"

// Static is the list-price strategy: the catalog's base price, unchanged.
const Static = "static"

// Config configures a run.
type Config struct {
	Scenario *simmarket.Scenario
	// Strategies to compare, by name: static, seed, decay, inventory,
	// thompson, competitor (and any in Pricing.Strategies). BestFixed is
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
	// OfBound is revenue as a percentage of the dynamic bound, OfFixed
	// of the best fixed price's revenue in the same run.
	OfBound float64 `json:"revenue_pct_of_bound"`
	OfFixed float64 `json:"revenue_pct_of_best_fixed"`
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

// Run simulates every strategy in turn on the same shoppers and reports
// their results, the best fixed price last, with the dynamic bound.
func Run(ctx context.Context, cfg Config) (Report, error) {
	if cfg.Scenario == nil {
		return Report{}, errors.New("sim: no scenario")
	}
	rep := Report{Scenario: cfg.Scenario.Name, Seed: cfg.Scenario.Seed}
	names := append(append([]string(nil), cfg.Strategies...), BestFixed)
	pc := withStrategies(cfg.Pricing)
	// Check every name before the first run: a typo in the last one must
	// not cost the time of the others.
	for _, name := range cfg.Strategies {
		if err := knownStrategy(pc, name); err != nil {
			return rep, err
		}
	}
	m, err := simmarket.New(cfg.Scenario)
	if err != nil {
		return rep, err
	}
	bench, err := benchmark(m, cfg.MarginFloor)
	if err != nil {
		return rep, err
	}
	rep.Bound = pricing.RoundCents(bench.bound)
	for _, name := range names {
		r, err := runOne(ctx, cfg, pc, name, bench.prices)
		if err != nil {
			return rep, err
		}
		rep.Results = append(rep.Results, r)
	}
	fixed := rep.Results[len(rep.Results)-1].Revenue
	for i := range rep.Results {
		if bench.bound > 0 {
			rep.Results[i].OfBound = 100 * rep.Results[i].Revenue / bench.bound
		}
		if fixed > 0 {
			rep.Results[i].OfFixed = 100 * rep.Results[i].Revenue / fixed
		}
	}
	return rep, nil
}

// withStrategies is pc (the default configuration if unset) with every
// strategy the simulator knows, the built-ins and pc's own.
func withStrategies(pc pricing.Config) pricing.Config {
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
	return pc
}

// knownStrategy says whether pc knows the strategy called name, listing
// the ones it knows if not.
func knownStrategy(pc pricing.Config, name string) error {
	if _, ok := pc.Strategies[name]; !ok {
		known := slices.Sorted(maps.Keys(pc.Strategies))
		return fmt.Errorf("sim: unknown strategy %q (known: %s)", name, strings.Join(known, ", "))
	}
	return nil
}

// runOne runs one strategy; fixed is the best fixed prices, for BestFixed.
func runOne(ctx context.Context, cfg Config, pc pricing.Config, name string, fixed []float64) (Result, error) {
	start := time.Now()
	m, err := simmarket.New(cfg.Scenario)
	if err != nil {
		return Result{}, err
	}
	strategy := name
	if name == BestFixed {
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
	comp := m.Competitors
	for i, p := range m.Products {
		pp := pricing.Product{ID: p.ID, BasePrice: p.BasePrice}
		if name == BestFixed {
			pp.BasePrice = pricing.RoundCents(fixed[i])
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

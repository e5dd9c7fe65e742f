package sim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"text/tabwriter"

	"github.com/dynaprice/dynaprice/internal/engine"
	"github.com/dynaprice/dynaprice/internal/experiment"
	"github.com/dynaprice/dynaprice/internal/ingest"
	"github.com/dynaprice/dynaprice/internal/pricing"
	"github.com/dynaprice/dynaprice/internal/sim/simmarket"
)

// DefaultLook is how many counted visitors pass between two looks at an
// experiment's readout when ExperimentConfig.Look is 0.
const DefaultLook = 500

// ExperimentConfig configures a simulated experiment.
type ExperimentConfig struct {
	// Config gives the scenario, pricing and margin floor; its
	// Strategies are not used (the arms say how to price).
	Config
	// Experiment is the experiment to run. Empty Products means every
	// product of the scenario; Start 0 means the scenario's start.
	Experiment experiment.Definition
	// Look is how many visitors in the experiment pass between two
	// looks at the readout (0: DefaultLook). The test is sequentially
	// valid, so looking often costs nothing in false winners.
	Look int
}

// ArmTruth is what an arm could expect to earn per visitor, given the
// prices its visitors were shown: the market's true purchase probability
// summed over the visitors, not the purchases drawn from it. It is what
// the readout estimates, known here because the market is simulated.
type ArmTruth struct {
	Name              string  `json:"name"`
	Conversion        float64 `json:"conversion"`
	RevenuePerVisitor float64 `json:"revenue_per_visitor"`
	ProfitPerVisitor  float64 `json:"profit_per_visitor"`
	// Lift is the arm's metric over the baseline's, less 1.
	Lift float64 `json:"lift"`
}

// Decision is the first look at which the readout named a winner.
type Decision struct {
	Winner   string  `json:"winner"`
	Visitors int64   `json:"visitors"`
	Hours    float64 `json:"hours"`
}

// ExperimentReport is a simulated experiment's outcome.
type ExperimentReport struct {
	Scenario   string                `json:"scenario"`
	Seed       uint64                `json:"seed"`
	Experiment experiment.Definition `json:"experiment"`
	// Readout is the readout at the end of the horizon, looked at
	// every Look visitors along the way.
	Readout experiment.Readout `json:"readout"`
	// Decided is the first look that named a winner, where an operator
	// watching the readout would have stopped; nil if none did.
	Decided *Decision `json:"decided,omitempty"`
	// Truth is each arm's expected figures; TrueWinner the arm with the
	// best expected metric, empty when every arm expects the same.
	Truth      []ArmTruth `json:"truth"`
	TrueWinner string     `json:"true_winner"`
	Looks      int        `json:"looks"`
	Shoppers   int64      `json:"shoppers"`
}

// RunExperiment runs an experiment on the scenario's shoppers: each arm
// prices with its own engine.Machine (the list price, a fixed price or its
// strategy, learning only from its own visitors), every shopper gets an id
// of its own (each arrival is a new shopper) and is assigned an arm by the
// experiment's hash, sees that arm's price and sends that arm its events.
// Stock and competitor prices are the market's and are told to every arm.
// Products outside the experiment are priced by the baseline and not
// counted.
func RunExperiment(ctx context.Context, cfg ExperimentConfig) (ExperimentReport, error) {
	sc := cfg.Scenario
	if sc == nil {
		return ExperimentReport{}, errors.New("sim: no scenario")
	}
	pc := withStrategies(cfg.Pricing)
	m, err := simmarket.New(sc)
	if err != nil {
		return ExperimentReport{}, err
	}
	d := cfg.Experiment
	if d.ID == "" {
		d.ID = "sim"
	}
	if len(d.Products) == 0 {
		for _, p := range m.Products {
			d.Products = append(d.Products, p.ID)
		}
	}
	if d.Start == 0 {
		d.Start = sc.Start.UnixNano()
	}
	d.Normalize()
	limits := experiment.DefaultLimits()
	limits.MaxProducts = max(limits.MaxProducts, len(m.Products))
	if err := d.Validate(limits, func(p float64) error { return pricing.CheckPrice("price", p) }, func(s string) bool { return knownStrategy(pc, s) == nil }); err != nil {
		return ExperimentReport{}, fmt.Errorf("sim: %w", err)
	}
	look := int64(cfg.Look)
	if look <= 0 {
		look = DefaultLook
	}
	in := make([]bool, len(m.Products))
	index := make(map[string]int, len(m.Products))
	for i, p := range m.Products {
		index[p.ID] = i
	}
	for _, id := range d.Products {
		i, ok := index[id]
		if !ok {
			return ExperimentReport{}, fmt.Errorf("sim: %w: product %q is not in the scenario", experiment.ErrInvalid, id)
		}
		in[i] = true
	}
	now := sc.Start.UnixNano()
	machines := make([]*engine.Machine, len(d.Arms))
	// known is, per arm, the stock level that arm's engine was last told
	// of less the purchases it has seen since (see runOne).
	known := make([][]int64, len(d.Arms))
	for a, arm := range d.Arms {
		apc := pc
		apc.DefaultStrategy = Static
		switch arm.Kind {
		case experiment.Strategy:
			apc.DefaultStrategy = arm.Strategy
		case experiment.Live:
			// The engine's own price: the run's default strategy, as a
			// product that names none is priced in serve.
			apc.DefaultStrategy = pc.DefaultStrategy
		}
		ecfg := engine.DefaultConfig()
		ecfg.Pricing = apc
		machines[a] = engine.NewMachine(ecfg)
		products := make([]pricing.Product, len(m.Products))
		for i, p := range m.Products {
			pp := pricing.Product{ID: p.ID, BasePrice: p.BasePrice}
			if arm.Kind == experiment.Fixed && in[i] {
				pp.BasePrice = arm.Price
			}
			if cfg.MarginFloor && p.Cost > 0 && (arm.Kind == experiment.Strategy || arm.Kind == experiment.Live) {
				// The floor is a guardrail on what a strategy
				// chooses; a fixed or list price is the operator's.
				pp.UnitCost = p.Cost
			}
			pp.Inventory = plan(sc, p.Stock)
			if m.Competitors != nil {
				pp.Competition = m.Competitors.Rule()
			}
			products[i] = pp
		}
		if _, err := machines[a].Load(engine.Snapshot{Products: products}, now); err != nil {
			return ExperimentReport{}, fmt.Errorf("sim: arm %s: %w", arm.Name, err)
		}
		known[a] = untold(len(products))
	}
	stream, err := m.Stream()
	if err != nil {
		return ExperimentReport{}, err
	}
	asg := experiment.NewAssigner(&d)
	rep := ExperimentReport{Scenario: sc.Name, Seed: sc.Seed, Experiment: d}
	accs := make([]experiment.Accumulator, len(d.Arms))
	truth := make([]experiment.Accumulator, len(d.Arms)) // expected sums; Views counts visitors
	var expBuy = make([]float64, len(d.Arms))
	var prev *experiment.Readout
	var counted int64
	comp := m.Competitors
	var quoted []int64
	if comp != nil {
		quoted = untold(len(m.Products))
	}
	evs := make([]ingest.Event, 0, 4)
	var res engine.SubmitResult
	var sh simmarket.Shopper
	var idBuf []byte
	for stream.Next(&sh) {
		rep.Shoppers++
		if rep.Shoppers%65536 == 0 {
			if err := ctx.Err(); err != nil {
				return rep, err
			}
			for _, mach := range machines {
				mach.Seal()
				mach.Begin()
			}
		}
		i := sh.Product
		t := sh.At.UnixNano()
		id := m.Products[i].ID
		if !m.Products[i].Stock.Unlimited {
			level := m.Stock.Level(i, sh.At)
			for a, mach := range machines {
				if level != known[a][i] {
					known[a][i] = level
					evs = append(evs[:0], ingest.Event{Type: pricing.Stock, ProductID: id, Timestamp: t, Quantity: int32(min(level, ingest.MaxStock))})
					mach.ApplyEvents(evs, t, &res)
				}
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
				for _, mach := range machines {
					mach.ApplyEvents(evs, t, &res)
				}
			}
		}
		arm, count := 0, false
		if in[i] && d.Running(t) {
			idBuf = strconv.AppendInt(append(idBuf[:0], 'S'), rep.Shoppers, 10)
			arm, count = asg.Arm(string(idBuf), id), true
		}
		mach := machines[arm]
		price := mach.PriceAt(i)
		cost := m.Products[i].Cost
		if count {
			b := m.Buy(&sh, price)
			accs[arm].View()
			truth[arm].Views++
			expBuy[arm] += b
			truth[arm].Revenue += b * price
			truth[arm].Profit += b * (price - cost)
		}
		out := m.Visit(&sh, price)
		evs = append(evs[:0], ingest.Event{Type: pricing.View, ProductID: id, Timestamp: t, Price: price, Quantity: 1})
		if out.Stage >= pricing.Cart {
			evs = append(evs, ingest.Event{Type: pricing.Cart, ProductID: id, Timestamp: t, Price: price, Quantity: 1})
		}
		if out.Stage == pricing.Purchase {
			evs = append(evs, ingest.Event{Type: pricing.Purchase, ProductID: id, Timestamp: t, Price: price, Quantity: 1})
			known[arm][i]--
			if count {
				accs[arm].Purchase(price, 1, cost)
			}
		}
		mach.ApplyEvents(evs, t, &res)
		if count {
			counted++
			if counted%look == 0 {
				r := experiment.Read(&d, accs, prev)
				rep.Looks++
				prev = &r
				if r.Winner != "" && rep.Decided == nil {
					rep.Decided = &Decision{Winner: r.Winner, Visitors: counted, Hours: sh.At.Sub(sc.Start).Hours()}
				}
			}
		}
	}
	rep.Readout = experiment.Read(&d, accs, prev)
	rep.Looks++
	if rep.Decided == nil && rep.Readout.Winner != "" {
		rep.Decided = &Decision{Winner: rep.Readout.Winner, Visitors: counted, Hours: sc.Horizon.Hours()}
	}
	rep.Truth, rep.TrueWinner = truths(&d, truth, expBuy)
	return rep, nil
}

// truths turns the expected sums into per-visitor figures and names the
// arm with the best expected metric.
func truths(d *experiment.Definition, sums []experiment.Accumulator, buys []float64) ([]ArmTruth, string) {
	out := make([]ArmTruth, len(sums))
	metric := func(t ArmTruth) float64 {
		switch d.Metric {
		case experiment.Conversion:
			return t.Conversion
		case experiment.Profit:
			return t.ProfitPerVisitor
		}
		return t.RevenuePerVisitor
	}
	best := 0
	for a, s := range sums {
		t := ArmTruth{Name: d.Arms[a].Name}
		if n := float64(s.Views); n > 0 {
			t.Conversion, t.RevenuePerVisitor, t.ProfitPerVisitor = buys[a]/n, s.Revenue/n, s.Profit/n
		}
		out[a] = t
		if metric(t) > metric(out[best]) {
			best = a
		}
	}
	for a := range out {
		if b := metric(out[0]); b != 0 {
			out[a].Lift = metric(out[a])/b - 1
		}
	}
	if out[best].Lift < 1e-9 && best != 0 || best == 0 && alike(out, metric) {
		return out, "" // no arm is better than the others
	}
	return out, d.Arms[best].Name
}

// alike reports whether every arm expects the baseline's metric (to a
// relative 1e-9): an A/A experiment, with no true winner.
func alike(ts []ArmTruth, metric func(ArmTruth) float64) bool {
	for _, t := range ts[1:] {
		if math.Abs(metric(t)-metric(ts[0])) > 1e-9*math.Abs(metric(ts[0])) {
			return false
		}
	}
	return true
}

// WriteExperiment writes rep as a table (Table) or as JSON (JSON).
func WriteExperiment(w io.Writer, f Format, rep ExperimentReport) error {
	if f == JSON {
		b, err := json.MarshalIndent(rep, "", "  ")
		if err != nil {
			return err
		}
		_, err = w.Write(append(b, '\n'))
		return err
	}
	r := rep.Readout
	fmt.Fprintf(w, "experiment %q on %q (seed %d): split by %s, metric %s per visitor, alpha %g (each comparison at %.4g), %d looks\n\n",
		rep.Experiment.ID, rep.Scenario, rep.Seed, rep.Experiment.Split, r.Metric, r.Alpha, r.Level, rep.Looks)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "arm\tvisitors\tpurchases\tconversion\trevenue/visitor\tinterval\tprofit/visitor\tlift vs baseline\tinterval\tp-value\ttrue lift\t")
	for a, ar := range r.Arms {
		lift, iv := "-", "-"
		if ar.Lift != nil {
			lift = fmt.Sprintf("%+.2f%%", 100*ar.Lift.Estimate)
			iv = fmt.Sprintf("[%s, %s]", pct(ar.Lift.Low), pct(ar.Lift.High))
		}
		tl := "-"
		if a > 0 && a < len(rep.Truth) {
			tl = fmt.Sprintf("%+.2f%%", 100*rep.Truth[a].Lift)
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%.4f\t%.4f\t[%s, %s]\t%.4f\t%s\t%s\t%.4f\t%s\t\n", ar.Name, ar.Views, ar.Purchases,
			ar.Conversion.Estimate, ar.RevenuePerVisitor.Estimate, num(ar.RevenuePerVisitor.Low), num(ar.RevenuePerVisitor.High),
			ar.ProfitPerVisitor.Estimate, lift, iv, ar.PValue, tl)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	if d := rep.Decided; d != nil {
		fmt.Fprintf(w, "winner: %s, declared after %d visitors (%.1f hours)", d.Winner, d.Visitors, d.Hours)
	} else {
		fmt.Fprint(w, "no winner: the test did not decide")
	}
	tw2 := rep.TrueWinner
	if tw2 == "" {
		tw2 = "none (the arms are alike)"
	}
	_, err := fmt.Fprintf(w, "; true winner: %s (intervals are always valid: safe to read at any look)\n", tw2)
	return err
}

// num formats an interval end; an unbounded one (too little data) as ∞.
func num(x float64) string {
	if x > 1e300 || x < -1e300 {
		return "∞"
	}
	return strconv.FormatFloat(x, 'f', 4, 64)
}

func pct(x float64) string {
	if x > 1e300 || x < -1e300 {
		return "∞"
	}
	return fmt.Sprintf("%+.2f%%", 100*x)
}

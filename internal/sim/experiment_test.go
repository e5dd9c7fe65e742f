package sim

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"strings"
	"testing"

	"github.com/dynaprice/dynaprice/internal/experiment"
	"github.com/dynaprice/dynaprice/internal/pricing"
	"github.com/dynaprice/dynaprice/internal/sim/simmarket"
)

// abMarket is a small market for experiments: one product at list price
// 10 that 30% of its visitors buy, 3,000 shoppers an hour for a day.
const abMarket = `{
  "name": "ab", "seed": 1, "start": "2026-03-02T00:00:00Z", "horizon": "24h",
  "arrivals": {"rate_per_hour": 3000},
  "products": {"generate": {"count": 1, "family": "logit", "base_price": [10, 10], "base_buy": [0.3, 0.3],
    "elasticity": [0.5, 0.5], "cost_ratio": [0.4, 0.4], "zipf_s": 1, "stock": {"unlimited": true}}},
  "funnel": {"cart_share": 0.5}
}`

func abScenario(t *testing.T, seed uint64) *simmarket.Scenario {
	t.Helper()
	sc, err := simmarket.ParseScenario([]byte(abMarket))
	if err != nil {
		t.Fatal(err)
	}
	sc.Seed = seed
	return sc
}

// liftPrice is the price at which the product earns lift more per visitor
// than at its list price, found by bisection above the list price (the
// demand is inelastic there: revenue rises with the price).
func liftPrice(t *testing.T, lift float64) float64 {
	t.Helper()
	m, err := simmarket.New(abScenario(t, 1))
	if err != nil {
		t.Fatal(err)
	}
	c := m.Products[0].Curve
	rev := func(p float64) float64 { return p * c.Buy(p) }
	target := (1 + lift) * rev(10)
	lo, hi := 10.0, 10.0
	for rev(hi) < target {
		if hi *= 1.1; hi > 1000 {
			t.Fatalf("no price earns %v more", lift)
		}
	}
	for range 60 {
		mid := (lo + hi) / 2
		if rev(mid) < target {
			lo = mid
		} else {
			hi = mid
		}
	}
	return pricing.RoundCents(hi)
}

func abExperiment(price float64) experiment.Definition {
	return experiment.Definition{Split: experiment.ByShopper,
		Arms: []experiment.Arm{{Name: "list", Kind: experiment.Control}, {Name: "test", Kind: experiment.Fixed, Price: price}}}
}

// TestExperimentFindsTheTrueWinner runs experiments through the simulator
// (every arm priced by the engine, shoppers assigned by hash): over 40
// seeds, an A/A experiment (the list price against itself) names a winner
// in at most the nominal 5% plus sampling error, and an arm whose true
// revenue per visitor is 5% higher is named the winner in at least 80% of
// seeds within a day of 3,000 shoppers an hour (about 36,000 per arm; the
// pure core's tests give about 94% at 40,000), the baseline never.
func TestExperimentFindsTheTrueWinner(t *testing.T) {
	const seeds = 40
	up := liftPrice(t, 0.05)
	aa, found := 0, 0
	for s := range uint64(seeds) {
		rep, err := RunExperiment(context.Background(), ExperimentConfig{Config: Config{Scenario: abScenario(t, 100+s)}, Experiment: abExperiment(10)})
		if err != nil {
			t.Fatal(err)
		}
		if rep.Decided != nil {
			aa++
		}
		if math.Abs(rep.Truth[1].Lift) > 1e-9 || rep.TrueWinner != "" {
			t.Fatalf("A/A true lift %v, true winner %q", rep.Truth[1].Lift, rep.TrueWinner)
		}
		rep, err = RunExperiment(context.Background(), ExperimentConfig{Config: Config{Scenario: abScenario(t, 200+s)}, Experiment: abExperiment(up)})
		if err != nil {
			t.Fatal(err)
		}
		// The price is rounded to cents, so the lift is 5% to within
		// a little.
		if l := rep.Truth[1].Lift; math.Abs(l-0.05) > 0.001 || rep.TrueWinner != "test" {
			t.Fatalf("true lift %v, true winner %s", l, rep.TrueWinner)
		}
		switch {
		case rep.Decided == nil:
		case rep.Decided.Winner == "test":
			found++
		default:
			t.Errorf("seed %d: the baseline was named the winner of a 5%% lift", 200+s)
		}
	}
	t.Logf("A/A: a winner in %d of %d seeds; 5%% lift found in %d of %d", aa, seeds, found, seeds)
	// 5% of 40 plus three standard errors: 2 + 4.1.
	if aa > 6 {
		t.Errorf("A/A named a winner in %d of %d seeds", aa, seeds)
	}
	if found < seeds*8/10 {
		t.Errorf("5%% lift found in %d of %d seeds, want at least 80%%", found, seeds)
	}
}

// TestExperimentReport checks what `dynaprice simulate --experiment`
// prints, that the JSON decodes, and that a bad experiment is refused.
func TestExperimentReport(t *testing.T) {
	rep, err := RunExperiment(context.Background(), ExperimentConfig{Config: Config{Scenario: abScenario(t, 1)}, Experiment: abExperiment(liftPrice(t, 0.1)), Look: 1000})
	if err != nil {
		t.Fatal(err)
	}
	var tab, js bytes.Buffer
	if err := WriteExperiment(&tab, Table, rep); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"list", "test", "winner: test", "true winner: test", "p-value"} {
		if !strings.Contains(tab.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, tab.String())
		}
	}
	if err := WriteExperiment(&js, JSON, rep); err != nil {
		t.Fatal(err)
	}
	var back ExperimentReport
	if err := json.Unmarshal(js.Bytes(), &back); err != nil || back.Decided == nil || back.Readout.Arms[1].Views != rep.Readout.Arms[1].Views {
		t.Errorf("JSON %v: %s", err, js.String())
	}
	if rep.Shoppers != rep.Readout.Arms[0].Views+rep.Readout.Arms[1].Views {
		t.Errorf("%d shoppers, %d counted", rep.Shoppers, rep.Readout.Arms[0].Views+rep.Readout.Arms[1].Views)
	}
	bad := abExperiment(10)
	bad.Arms[1].Kind = experiment.Strategy
	bad.Arms[1].Price, bad.Arms[1].Strategy = 0, "nonesuch"
	if _, err := RunExperiment(context.Background(), ExperimentConfig{Config: Config{Scenario: abScenario(t, 1)}, Experiment: bad}); err == nil || !strings.Contains(err.Error(), "nonesuch") {
		t.Errorf("unknown strategy: %v", err)
	}
}

// TestExperimentStrategyArms runs the kinds of arm serve does not:
// a strategy arm learning from its own shoppers only, and a live arm (the
// run's default strategy), split by product too. Each arm's shoppers see
// its own prices: the list-price arm's never move, the strategy's do.
func TestExperimentStrategyArms(t *testing.T) {
	sc := load(t, "steady")
	sc.Horizon.Duration = sc.Horizon.Duration / 7 // a day
	for _, split := range []experiment.Split{experiment.ByShopper, experiment.ByProduct} {
		d := experiment.Definition{Split: split, Metric: experiment.Profit, Arms: []experiment.Arm{
			{Name: "list", Kind: experiment.Control},
			{Name: "thompson", Kind: experiment.Strategy, Strategy: "thompson"},
			{Name: "engine", Kind: experiment.Live}}}
		rep, err := RunExperiment(context.Background(), ExperimentConfig{Config: Config{Scenario: sc, MarginFloor: true}, Experiment: d})
		if err != nil {
			t.Fatal(err)
		}
		var views int64
		for a, ar := range rep.Readout.Arms {
			views += ar.Views
			if ar.Views < rep.Shoppers/5 || ar.Purchases == 0 {
				t.Errorf("%s: arm %s: %d views, %d purchases of %d shoppers", split, ar.Name, ar.Views, ar.Purchases, rep.Shoppers)
			}
			if rep.Truth[a].RevenuePerVisitor <= 0 {
				t.Errorf("%s: arm %s: truth %+v", split, ar.Name, rep.Truth[a])
			}
		}
		if views != rep.Shoppers {
			t.Errorf("%s: %d views counted of %d shoppers", split, views, rep.Shoppers)
		}
		// The list price is the same for every visitor of a product, so its
		// revenue per purchase is the product's list price on average; the
		// strategy's prices differ from it.
		list, th := rep.Readout.Arms[0], rep.Readout.Arms[1]
		if list.Revenue/float64(list.Purchases) == th.Revenue/float64(th.Purchases) {
			t.Errorf("%s: the strategy arm earned exactly the list arm's revenue per purchase", split)
		}
	}
}

package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/dynaprice/dynaprice/internal/pricing"
	"github.com/dynaprice/dynaprice/internal/sim"
	"github.com/dynaprice/dynaprice/internal/sim/simmarket"
)

// runSimulate is `dynaprice simulate`.
func runSimulate(ctx context.Context, args []string, getenv Env, stdout, stderr io.Writer) error {
	var strategies, jsonOut, csvOut, svgDir, weights string
	var halfLife time.Duration
	var noFloor bool
	fs := flag.NewFlagSet("dynaprice simulate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&strategies, "strategies", "static,seed,decay,inventory,thompson", "strategies to compare, comma separated (the clairvoyant oracle is always added)")
	fs.StringVar(&jsonOut, "json", "", "also write the results as JSON to this file")
	fs.StringVar(&csvOut, "csv", "", "also write the results as CSV to this file")
	fs.StringVar(&svgDir, "svg", "", "also draw charts into this directory: revenue.svg, regret.svg, price.svg")
	fs.StringVar(&weights, "weights", "view=1,cart=3,purchase=5", "demand weight per event type")
	fs.DurationVar(&halfLife, "half-life", time.Hour, "half-life of demand for the decay strategy")
	fs.BoolVar(&noFloor, "no-margin-floor", false, "let prices fall below unit cost")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage: dynaprice simulate [flags] SCENARIO.json

Runs pricing strategies against a simulated market, far faster than real
time and deterministic for the scenario's seed: shoppers arrive (Poisson,
with daily and weekly seasonality and demand shocks), see the price the real
engine code sets, and view, add to cart or buy according to each product's
hidden demand curve; stock runs out and is restocked. Every strategy faces
the same shoppers. Reports revenue, units, margin, revenue as a percentage
of the clairvoyant optimum (the best fixed price per product knowing its
true curve: "oracle"), price changes and their mean size, and stock-outs.
Scenarios ship in scenarios/.

Flags:
`)
		fs.PrintDefaults()
	}
	files, err := parseArgs(fs, args, stderr)
	if err != nil {
		return err
	}
	if len(files) != 1 {
		fmt.Fprintf(stderr, "dynaprice simulate: give one scenario file (got %d: %q)\nRun \"dynaprice simulate --help\" to see the flags.\n", len(files), files)
		return errUsage
	}
	sc, err := simmarket.LoadScenario(files[0])
	if err != nil {
		return err
	}
	pc, err := pricing.ConfigFrom(weights, halfLife)
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "simulating %q: %s\n", sc.Name, sc.Description)
	rs, err := sim.Run(ctx, sim.Config{Scenario: sc, Strategies: splitList(strategies), Pricing: pc,
		MarginFloor: !noFloor, Progress: stderr})
	if err != nil {
		return err
	}
	rep := sim.Report{Scenario: sc.Name, Seed: sc.Seed, Results: rs}
	if err := sim.WriteReport(stdout, sim.Table, rep); err != nil {
		return err
	}
	for _, out := range []struct {
		path   string
		format sim.Format
	}{{jsonOut, sim.JSON}, {csvOut, sim.CSV}} {
		if out.path == "" {
			continue
		}
		if err := sim.WriteReportFile(out.path, out.format, rep); err != nil {
			return err
		}
	}
	if svgDir != "" {
		if err := sim.WriteCharts(svgDir, rep); err != nil {
			return err
		}
		fmt.Fprintf(stderr, "charts written to %s\n", svgDir)
	}
	return nil
}

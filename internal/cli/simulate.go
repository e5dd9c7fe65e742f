package cli

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/dynaprice/dynaprice/internal/sim"
	"github.com/dynaprice/dynaprice/internal/sim/plot"
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
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return err
		}
		return errUsage
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(stderr, "dynaprice simulate: give one scenario file")
		return errUsage
	}
	sc, err := simmarket.LoadScenario(fs.Arg(0))
	if err != nil {
		return err
	}
	pc, err := pricingConfig(weights, halfLife)
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "simulating %q: %s\n", sc.Name, sc.Description)
	rs, err := sim.Run(ctx, sim.Config{Scenario: sc, Strategies: splitList(strategies), Pricing: pc,
		MarginFloor: !noFloor, Progress: stderr})
	if err != nil {
		return err
	}
	writeResults(stdout, rs)
	if jsonOut != "" {
		b, err := json.MarshalIndent(map[string]any{"scenario": sc.Name, "seed": sc.Seed, "results": rs}, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(jsonOut, append(b, '\n'), 0o644); err != nil {
			return err
		}
	}
	if csvOut != "" {
		if err := writeCSV(csvOut, rs); err != nil {
			return err
		}
	}
	if svgDir != "" {
		if err := writeCharts(svgDir, sc.Name, rs); err != nil {
			return err
		}
		fmt.Fprintf(stderr, "charts written to %s\n", svgDir)
	}
	return nil
}

// writeCharts draws cumulative revenue, regret against the oracle and the
// most popular product's price over simulated time, one line per strategy.
func writeCharts(dir, scenario string, rs []sim.Result) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	oracle := rs[len(rs)-1]
	line := func(r sim.Result, y func(k int, s sim.Sample) float64) plot.Series {
		ps := plot.Series{Name: r.Strategy}
		for k, smp := range r.Series {
			ps.X = append(ps.X, smp.Hours)
			ps.Y = append(ps.Y, y(k, smp))
		}
		return ps
	}
	charts := map[string]plot.Chart{
		"revenue.svg": {Title: "Cumulative revenue — " + scenario, YLabel: "revenue"},
		"regret.svg":  {Title: "Regret: revenue behind the clairvoyant fixed prices — " + scenario, YLabel: "revenue lost"},
		"price.svg":   {Title: "Price of the most popular product — " + scenario, YLabel: "price"},
	}
	for _, r := range rs {
		for name, c := range charts {
			c.XLabel = "hours of simulated time"
			switch name {
			case "revenue.svg":
				c.Series = append(c.Series, line(r, func(_ int, s sim.Sample) float64 { return s.Revenue }))
			case "regret.svg":
				if r.Strategy == sim.Oracle {
					continue
				}
				c.Series = append(c.Series, line(r, func(k int, s sim.Sample) float64 {
					if k < len(oracle.Series) {
						return oracle.Series[k].Revenue - s.Revenue
					}
					return math.NaN()
				}))
			case "price.svg":
				c.Series = append(c.Series, line(r, func(_ int, s sim.Sample) float64 { return s.Price }))
			}
			charts[name] = c
		}
	}
	for name, c := range charts {
		f, err := os.Create(filepath.Join(dir, name))
		if err != nil {
			return err
		}
		if err := c.WriteSVG(f); err != nil {
			f.Close()
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
	}
	return nil
}

func writeResults(w io.Writer, rs []sim.Result) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "strategy\trevenue\t% of optimum\tunits\tmargin\tprice changes\tmean change\tstock-outs\ttime\t")
	for _, r := range rs {
		fmt.Fprintf(tw, "%s\t%.2f\t%.1f%%\t%d\t%.2f\t%d\t%.2f%%\t%d\t%v\t\n", r.Strategy, r.Revenue, r.OfOptimum, r.Units,
			r.Margin, r.PriceChanges, r.Volatility, r.StockOuts, r.Elapsed.Round(time.Millisecond))
	}
	tw.Flush()
}

func writeCSV(path string, rs []sim.Result) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := csv.NewWriter(f)
	_ = w.Write([]string{"strategy", "revenue", "revenue_pct_of_optimum", "units", "margin", "price_changes", "volatility_pct", "stock_outs", "shoppers"})
	for _, r := range rs {
		_ = w.Write([]string{r.Strategy, ff(r.Revenue), ff(r.OfOptimum), strconv.FormatInt(r.Units, 10), ff(r.Margin),
			strconv.FormatInt(r.PriceChanges, 10), ff(r.Volatility), strconv.FormatInt(r.StockOuts, 10), strconv.FormatInt(r.Shoppers, 10)})
	}
	w.Flush()
	if err := w.Error(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func ff(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

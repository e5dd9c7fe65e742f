package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/dynaprice/dynaprice/internal/experiment"
	"github.com/dynaprice/dynaprice/internal/pricing"
	"github.com/dynaprice/dynaprice/internal/sim"
	"github.com/dynaprice/dynaprice/internal/sim/simmarket"
)

// runSimulate is `dynaprice simulate`.
func runSimulate(ctx context.Context, args []string, getenv Env, stdout, stderr io.Writer) error {
	var strategies, jsonOut, csvOut, svgDir, weights, expFile string
	var look int
	var halfLife time.Duration
	var noFloor bool
	var seed uint64
	var seeds int
	fs := flag.NewFlagSet("dynaprice simulate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&strategies, "strategies", "static,seed,decay,inventory,thompson", "strategies to compare, comma separated (best-fixed, the clairvoyant fixed price, is always added)")
	fs.Uint64Var(&seed, "seed", 0, "first seed to run (default: the scenario's own, which its shipped settings were tuned on)")
	fs.IntVar(&seeds, "seeds", 1, "run this many seeds, from --seed on, and report each figure's mean and spread over them")
	fs.StringVar(&jsonOut, "json", "", "also write the results as JSON to this file (with --seeds, the summary and every seed's results)")
	fs.StringVar(&csvOut, "csv", "", "also write the results as CSV to this file (with --seeds, one row per strategy with mean, sd, min and max)")
	fs.StringVar(&svgDir, "svg", "", "also draw charts into this directory: revenue.svg, regret.svg, price.svg (with --seeds, of the first seed)")
	fs.StringVar(&weights, "weights", "view=1,cart=3,purchase=5", "demand weight per event type")
	fs.DurationVar(&halfLife, "half-life", time.Hour, "half-life of demand for the decay strategy")
	fs.BoolVar(&noFloor, "no-margin-floor", false, "let prices fall below unit cost")
	fs.StringVar(&expFile, "experiment", "", "run this price experiment (JSON: arms, split, metric, alpha; docs/EXPERIMENTS.md) instead of comparing --strategies, and print its readout")
	fs.IntVar(&look, "look", sim.DefaultLook, "with --experiment, look at the readout every this many visitors in the experiment")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage: dynaprice simulate [flags] SCENARIO.json

Runs pricing strategies against a simulated market, far faster than real
time and deterministic for the scenario's seed: shoppers arrive (Poisson,
with daily and weekly seasonality and demand shocks), see the price the real
engine code sets, and view, add to cart or buy according to each product's
hidden demand curve; stock runs out and is restocked. Every strategy faces
the same shoppers. Reports revenue, units, margin, price changes and their
mean size, stock-outs, and revenue as a percentage of two clairvoyant
benchmarks worked out from the true demand: the best fixed price per
product ("best-fixed", run like a strategy) and the dynamic bound, the
most any pricing could expect to earn with any price at any time (an upper
bound, not a strategy; docs/SIMULATE.md says how it is computed).
With --seeds N it runs N seeds and reports each figure's mean and spread.
Scenarios ship in scenarios/.

With --experiment FILE it runs a price experiment instead: shoppers are
split between the experiment's arms (the list price, fixed prices or
strategies), and it prints the readout (per-arm conversion, revenue and
profit per visitor with always-valid intervals, and a sequential test
against the first arm), when the test first named a winner, and the true
winner known from the simulated demand. With --seeds N it reports how
often the test named a winner, and the true one. Examples ship in
scenarios/experiments/.

Flags:
`)
		fs.PrintDefaults()
	}
	files, err := parseArgs(fs, args, stderr)
	if err != nil {
		return err
	}
	if seeds < 1 {
		fmt.Fprintf(stderr, "dynaprice simulate: --seeds %d: want 1 or more\nRun \"dynaprice simulate --help\" to see the flags.\n", seeds)
		return errUsage
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
	if isSet(fs, "seed") {
		sc.Seed = seed
	}
	fmt.Fprintf(stderr, "simulating %q: %s\n", sc.Name, sc.Description)
	cfg := sim.Config{Scenario: sc, Strategies: splitList(strategies), Pricing: pc, MarginFloor: !noFloor, Progress: stderr}
	if expFile != "" {
		if look < 1 {
			fmt.Fprintf(stderr, "dynaprice simulate: --look %d: want 1 or more\nRun \"dynaprice simulate --help\" to see the flags.\n", look)
			return errUsage
		}
		d, err := loadExperiment(expFile)
		if err != nil {
			return err
		}
		return simulateExperiment(ctx, sim.ExperimentConfig{Config: cfg, Experiment: d, Look: look}, seeds, jsonOut, stdout)
	}
	if seeds == 1 {
		rep, err := sim.Run(ctx, cfg)
		if err != nil {
			return err
		}
		return writeSimulation(stdout, stderr, rep, jsonOut, csvOut, svgDir,
			func(path string, f sim.Format) error { return sim.WriteReportFile(path, f, rep) },
			func(w io.Writer) error { return sim.WriteReport(w, sim.Table, rep) })
	}
	list := make([]uint64, seeds)
	for k := range list {
		list[k] = sc.Seed + uint64(k)
	}
	sum, err := sim.RunSeeds(ctx, cfg, list)
	if err != nil {
		return err
	}
	// The charts are of the first seed, run again for its series (the
	// summary drops them).
	var first sim.Report
	if svgDir != "" {
		if first, err = sim.Run(ctx, cfg); err != nil {
			return err
		}
	}
	return writeSimulation(stdout, stderr, first, jsonOut, csvOut, svgDir,
		func(path string, f sim.Format) error { return sim.WriteSummaryFile(path, f, sum) },
		func(w io.Writer) error { return sim.WriteSummary(w, sim.Table, sum) })
}

// writeSimulation prints the table and writes the files asked for: JSON
// and CSV by writeFile, charts of rep.
func writeSimulation(stdout, stderr io.Writer, rep sim.Report, jsonOut, csvOut, svgDir string,
	writeFile func(string, sim.Format) error, table func(io.Writer) error) error {
	if err := table(stdout); err != nil {
		return err
	}
	for _, out := range []struct {
		path   string
		format sim.Format
	}{{jsonOut, sim.JSON}, {csvOut, sim.CSV}} {
		if out.path == "" {
			continue
		}
		if err := writeFile(out.path, out.format); err != nil {
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

// isSet reports whether the flag called name was given (as opposed to
// left at its default).
func isSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// loadExperiment reads an experiment definition, refusing unknown fields
// (a misspelt "wieght" must not silently mean an even split).
func loadExperiment(path string) (experiment.Definition, error) {
	var d experiment.Definition
	b, err := os.ReadFile(path)
	if err != nil {
		return d, err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&d); err != nil {
		return d, fmt.Errorf("%s: %w", path, err)
	}
	return d, nil
}

// simulateExperiment runs cfg's experiment on seeds seeds from the
// scenario's and prints each readout (one) or a line per seed and the
// rates (several); jsonOut, if set, gets every report.
func simulateExperiment(ctx context.Context, cfg sim.ExperimentConfig, seeds int, jsonOut string, stdout io.Writer) error {
	sc := *cfg.Scenario
	var reps []sim.ExperimentReport
	named, right := 0, 0
	for k := range seeds {
		s := sc
		s.Seed = sc.Seed + uint64(k)
		c := cfg
		c.Scenario = &s
		rep, err := sim.RunExperiment(ctx, c)
		if err != nil {
			return err
		}
		reps = append(reps, rep)
		if seeds == 1 {
			if err := sim.WriteExperiment(stdout, sim.Table, rep); err != nil {
				return err
			}
			continue
		}
		verdict := "no winner"
		if d := rep.Decided; d != nil {
			named++
			if d.Winner == rep.TrueWinner {
				right++
			}
			verdict = fmt.Sprintf("winner %s after %d visitors", d.Winner, d.Visitors)
		}
		truth := rep.TrueWinner
		if truth == "" {
			truth = "none"
		}
		fmt.Fprintf(stdout, "seed %d: %s (true winner %s, true lift of the last arm %+.2f%%)\n", s.Seed, verdict, truth, 100*rep.Truth[len(rep.Truth)-1].Lift)
	}
	if seeds > 1 {
		fmt.Fprintf(stdout, "\na winner was named in %d of %d seeds (%.1f%%), the true winner in %d (%.1f%%); nominal false-winner rate %g\n",
			named, seeds, 100*float64(named)/float64(seeds), right, 100*float64(right)/float64(seeds), reps[0].Readout.Alpha)
	}
	if jsonOut == "" {
		return nil
	}
	var out any = reps
	if seeds == 1 {
		out = reps[0]
	}
	b, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(jsonOut, append(b, '\n'), 0o644)
}

package sim

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"text/tabwriter"
)

// One seed is one draw of the market: its products (for generated
// catalogs), shoppers and competitors' prices. A figure from one seed can
// be luck, so figures worth quoting are the mean and spread over several,
// and seeds other than the ones anything was tuned on.

// Summary is one scenario run over several seeds: per strategy, the mean
// and spread of its figures, and every seed's report.
type Summary struct {
	Scenario   string          `json:"scenario"`
	Seeds      []uint64        `json:"seeds"`
	Bound      Stat            `json:"dynamic_bound"`
	Strategies []StrategyStats `json:"strategies"`
	// Runs are the seeds' reports, without their series.
	Runs []Report `json:"runs"`
}

// StrategyStats is one strategy's figures over the seeds.
type StrategyStats struct {
	Strategy  string `json:"strategy"`
	Revenue   Stat   `json:"revenue"`
	OfBound   Stat   `json:"revenue_pct_of_bound"`
	OfFixed   Stat   `json:"revenue_pct_of_best_fixed"`
	StockOuts Stat   `json:"stock_outs"`
}

// Stat is the mean, sample standard deviation (0 for one value), least and
// greatest of some values.
type Stat struct {
	Mean float64 `json:"mean"`
	SD   float64 `json:"sd"`
	Min  float64 `json:"min"`
	Max  float64 `json:"max"`
}

func stat(vs []float64) Stat {
	if len(vs) == 0 {
		return Stat{}
	}
	s := Stat{Min: math.Inf(1), Max: math.Inf(-1)}
	for _, v := range vs {
		s.Mean += v / float64(len(vs))
		s.Min, s.Max = math.Min(s.Min, v), math.Max(s.Max, v)
	}
	if len(vs) > 1 {
		var ss float64
		for _, v := range vs {
			ss += (v - s.Mean) * (v - s.Mean)
		}
		s.SD = math.Sqrt(ss / float64(len(vs)-1))
	}
	return s
}

// RunSeeds runs cfg's scenario once per seed (a copy of it with that
// seed; cfg.Scenario is not changed) and sums the runs up. With
// cfg.Progress set it says which seed is running.
func RunSeeds(ctx context.Context, cfg Config, seeds []uint64) (Summary, error) {
	if cfg.Scenario == nil {
		return Summary{}, errors.New("sim: no scenario")
	}
	if len(seeds) == 0 {
		return Summary{}, errors.New("sim: no seeds")
	}
	sum := Summary{Scenario: cfg.Scenario.Name, Seeds: seeds}
	for k, seed := range seeds {
		if cfg.Progress != nil {
			fmt.Fprintf(cfg.Progress, "seed %d (%d of %d)\n", seed, k+1, len(seeds))
		}
		sc := *cfg.Scenario
		sc.Seed = seed
		c := cfg
		c.Scenario = &sc
		rep, err := Run(ctx, c)
		if err != nil {
			return sum, err
		}
		for i := range rep.Results {
			rep.Results[i].Series = nil
		}
		sum.Runs = append(sum.Runs, rep)
	}
	sum.summarise()
	return sum, nil
}

// summarise works out the statistics from the runs, which must have the
// same strategies in the same order.
func (s *Summary) summarise() {
	var bounds []float64
	for _, r := range s.Runs {
		bounds = append(bounds, r.Bound)
	}
	s.Bound = stat(bounds)
	s.Strategies = nil
	for i, r := range s.Runs[0].Results {
		var rev, ofB, ofF, outs []float64
		for _, run := range s.Runs {
			x := run.Results[i]
			rev, ofB, ofF = append(rev, x.Revenue), append(ofB, x.OfBound), append(ofF, x.OfFixed)
			outs = append(outs, float64(x.StockOuts))
		}
		s.Strategies = append(s.Strategies, StrategyStats{Strategy: r.Strategy, Revenue: stat(rev),
			OfBound: stat(ofB), OfFixed: stat(ofF), StockOuts: stat(outs)})
	}
}

// WriteSummary writes s to w in format f: the table gives each figure's
// mean, then its standard deviation or its range over the seeds; JSON is
// the whole summary; CSV is one row per strategy with every statistic.
func WriteSummary(w io.Writer, f Format, s Summary) error {
	switch f {
	case Table:
		return writeSummaryTable(w, s)
	case JSON:
		b, err := json.MarshalIndent(s, "", "  ")
		if err != nil {
			return err
		}
		_, err = w.Write(append(b, '\n'))
		return err
	case CSV:
		return writeSummaryCSV(w, s)
	}
	return fmt.Errorf("sim: unknown report format %q", f)
}

// WriteSummaryFile writes s in format f to the file at path, replacing it.
func WriteSummaryFile(path string, f Format, s Summary) error {
	var b bytes.Buffer
	if err := WriteSummary(&b, f, s); err != nil {
		return err
	}
	return os.WriteFile(path, b.Bytes(), 0o644)
}

func writeSummaryTable(w io.Writer, s Summary) error {
	fmt.Fprintf(w, "%s over %d seeds (%s): mean, ± standard deviation, [min–max]\n", s.Scenario, len(s.Seeds), seedList(s.Seeds))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "strategy\trevenue\t% of bound\t\t% of best fixed\t\tstock-outs\t")
	for _, st := range s.Strategies {
		fmt.Fprintf(tw, "%s\t%.0f ± %.0f\t%.1f%%\t[%.1f–%.1f]\t%.1f%%\t[%.1f–%.1f]\t%.0f\t\n", st.Strategy, st.Revenue.Mean, st.Revenue.SD,
			st.OfBound.Mean, st.OfBound.Min, st.OfBound.Max, st.OfFixed.Mean, st.OfFixed.Min, st.OfFixed.Max, st.StockOuts.Mean)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "dynamic bound (100%% of bound) %.0f ± %.0f: %s\n", s.Bound.Mean, s.Bound.SD, boundNote)
	return err
}

// seedList writes seeds as a list, consecutive runs as ranges: 101–105.
func seedList(seeds []uint64) string {
	var b bytes.Buffer
	for i := 0; i < len(seeds); {
		j := i
		for j+1 < len(seeds) && seeds[j+1] == seeds[j]+1 {
			j++
		}
		if b.Len() > 0 {
			b.WriteString(", ")
		}
		b.WriteString(strconv.FormatUint(seeds[i], 10))
		if j > i {
			b.WriteString("–" + strconv.FormatUint(seeds[j], 10))
		}
		i = j + 1
	}
	return b.String()
}

func writeSummaryCSV(w io.Writer, s Summary) error {
	cw := csv.NewWriter(w)
	head := []string{"strategy"}
	for _, f := range []string{"revenue", "revenue_pct_of_bound", "revenue_pct_of_best_fixed", "stock_outs"} {
		head = append(head, f+"_mean", f+"_sd", f+"_min", f+"_max")
	}
	_ = cw.Write(head)
	row := func(name string, stats ...Stat) {
		rec := []string{name}
		for _, st := range stats {
			rec = append(rec, ff(st.Mean), ff(st.SD), ff(st.Min), ff(st.Max))
		}
		_ = cw.Write(rec)
	}
	for _, st := range s.Strategies {
		row(st.Strategy, st.Revenue, st.OfBound, st.OfFixed, st.StockOuts)
	}
	b := s.Bound
	_ = cw.Write([]string{"dynamic-bound", ff(b.Mean), ff(b.SD), ff(b.Min), ff(b.Max), "100", "0", "100", "100"})
	cw.Flush()
	return cw.Error()
}

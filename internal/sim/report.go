package sim

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/dynaprice/dynaprice/internal/sim/plot"
)

// Report is what a run has to say: the scenario it ran, every strategy's
// result, the best fixed price last, and the dynamic bound (as Run
// returns them).
type Report struct {
	// Fields in this order so the JSON reads results, bound, scenario,
	// seed.
	Results []Result `json:"results"`
	// Bound is the dynamic bound: the most any strategy can expect to
	// earn (see bound.go).
	Bound    float64 `json:"dynamic_bound"`
	Scenario string  `json:"scenario"`
	Seed     uint64  `json:"seed"`
}

// Format is a way of writing a Report.
type Format string

const (
	// Table is the aligned text table `dynaprice simulate` prints.
	Table Format = "table"
	// JSON is the whole report, series included, indented.
	JSON Format = "json"
	// CSV is one row per strategy, without the series.
	CSV Format = "csv"
)

// WriteReport writes rep to w in format f.
func WriteReport(w io.Writer, f Format, rep Report) error {
	switch f {
	case Table:
		return writeTable(w, rep)
	case JSON:
		b, err := json.MarshalIndent(rep, "", "  ")
		if err != nil {
			return err
		}
		_, err = w.Write(append(b, '\n'))
		return err
	case CSV:
		return writeCSV(w, rep.Results)
	}
	return fmt.Errorf("sim: unknown report format %q", f)
}

// WriteReportFile writes rep in format f to the file at path, replacing it.
// Nothing is written if the report cannot be formatted.
func WriteReportFile(path string, f Format, rep Report) error {
	var b bytes.Buffer
	if err := WriteReport(&b, f, rep); err != nil {
		return err
	}
	return os.WriteFile(path, b.Bytes(), 0o644)
}

func writeTable(w io.Writer, rep Report) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "strategy\trevenue\t% of bound\t% of best fixed\tunits\tmargin\tprice changes\tmean change\tstock-outs\ttime\t")
	for _, r := range rep.Results {
		fmt.Fprintf(tw, "%s\t%.2f\t%.1f%%\t%.1f%%\t%d\t%.2f\t%d\t%.2f%%\t%d\t%v\t\n", r.Strategy, r.Revenue, r.OfBound, r.OfFixed, r.Units,
			r.Margin, r.PriceChanges, r.Volatility, r.StockOuts, r.Elapsed.Round(time.Millisecond))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "dynamic bound (100%% of bound) %.2f: %s\n", rep.Bound, boundNote)
	return err
}

// boundNote says what the dynamic bound is, under the tables.
const boundNote = "the most any pricing could expect to earn here, with any price at any time knowing the true demand and stock (a fluid relaxation); not a strategy"

func writeCSV(w io.Writer, rs []Result) error {
	cw := csv.NewWriter(w)
	_ = cw.Write([]string{"strategy", "revenue", "revenue_pct_of_bound", "revenue_pct_of_best_fixed", "units", "margin", "price_changes", "volatility_pct", "stock_outs", "shoppers"})
	for _, r := range rs {
		_ = cw.Write([]string{r.Strategy, ff(r.Revenue), ff(r.OfBound), ff(r.OfFixed), strconv.FormatInt(r.Units, 10), ff(r.Margin),
			strconv.FormatInt(r.PriceChanges, 10), ff(r.Volatility), strconv.FormatInt(r.StockOuts, 10), strconv.FormatInt(r.Shoppers, 10)})
	}
	cw.Flush()
	return cw.Error()
}

func ff(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

// WriteCharts draws three SVG charts into dir (created if missing), one
// line per strategy over simulated time: revenue.svg (cumulative revenue),
// regret.svg (revenue behind the best fixed price) and price.svg (the
// most popular product's price). rep.Results must end with the best
// fixed price.
func WriteCharts(dir string, rep Report) error {
	if len(rep.Results) == 0 {
		return errors.New("sim: no results to chart")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for name, c := range charts(rep) {
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

// charts builds WriteCharts' charts, by file name.
func charts(rep Report) map[string]plot.Chart {
	rs, scenario := rep.Results, rep.Scenario
	fixed := rs[len(rs)-1]
	line := func(r Result, y func(k int, s Sample) float64) plot.Series {
		ps := plot.Series{Name: r.Strategy}
		for k, smp := range r.Series {
			ps.X = append(ps.X, smp.Hours)
			ps.Y = append(ps.Y, y(k, smp))
		}
		return ps
	}
	charts := map[string]plot.Chart{
		"revenue.svg": {Title: "Cumulative revenue — " + scenario, YLabel: "revenue"},
		"regret.svg":  {Title: "Regret: revenue behind the best fixed prices — " + scenario, YLabel: "revenue lost"},
		"price.svg":   {Title: "Price of the most popular product — " + scenario, YLabel: "price"},
	}
	for _, r := range rs {
		for name, c := range charts {
			c.XLabel = "hours of simulated time"
			switch name {
			case "revenue.svg":
				c.Series = append(c.Series, line(r, func(_ int, s Sample) float64 { return s.Revenue }))
			case "regret.svg":
				if r.Strategy == BestFixed {
					continue
				}
				c.Series = append(c.Series, line(r, func(k int, s Sample) float64 {
					if k < len(fixed.Series) {
						return fixed.Series[k].Revenue - s.Revenue
					}
					return math.NaN()
				}))
			case "price.svg":
				c.Series = append(c.Series, line(r, func(_ int, s Sample) float64 { return s.Price }))
			}
			charts[name] = c
		}
	}
	return charts
}

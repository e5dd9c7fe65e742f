package sim

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// report is a hand-made two-strategy report: static and the best fixed
// price.
func report() Report {
	return Report{Scenario: "steady", Seed: 7, Bound: 1250, Results: []Result{
		{Strategy: Static, Revenue: 800.5, Margin: 300.25, Units: 40, OfBound: 64.04, OfFixed: 80.05, Shoppers: 1000, Elapsed: 1234567 * time.Microsecond,
			Series: []Sample{{Hours: 0, Revenue: 0, Price: 20}, {Hours: 1, Revenue: 400, Price: 20}, {Hours: 2, Revenue: 800.5, Price: 20}}},
		{Strategy: BestFixed, Revenue: 1000, Margin: 350, Units: 45, OfBound: 80, OfFixed: 100, PriceChanges: 3, Volatility: 2.5, StockOuts: 1, Shoppers: 1000,
			Series: []Sample{{Hours: 0, Revenue: 0, Price: 22}, {Hours: 1, Revenue: 500, Price: 22}}},
	}}
}

func TestTable(t *testing.T) {
	var b bytes.Buffer
	if err := WriteReport(&b, Table, report()); err != nil {
		t.Fatal(err)
	}
	want := "" +
		"    strategy  revenue  % of bound  % of best fixed  units  margin  price changes  mean change  stock-outs    time\n" +
		"      static   800.50       64.0%            80.0%     40  300.25              0        0.00%           0  1.235s\n" +
		"  best-fixed  1000.00       80.0%           100.0%     45  350.00              3        2.50%           1      0s\n" +
		"dynamic bound (100% of bound) 1250.00: " + boundNote + "\n"
	if b.String() != want {
		t.Errorf("table:\n%s\nwant:\n%s", b.String(), want)
	}
}

func TestJSON(t *testing.T) {
	var b bytes.Buffer
	if err := WriteReport(&b, JSON, report()); err != nil {
		t.Fatal(err)
	}
	s := b.String()
	if !strings.HasPrefix(s, "{\n  \"results\": [\n") || !strings.HasSuffix(s, "  \"dynamic_bound\": 1250,\n  \"scenario\": \"steady\",\n  \"seed\": 7\n}\n") {
		t.Errorf("JSON not indented results, bound, scenario, seed:\n%s", s)
	}
	var back Report
	if err := json.Unmarshal(b.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if back.Scenario != "steady" || back.Seed != 7 || back.Bound != 1250 || len(back.Results) != 2 || back.Results[0].Elapsed != 1234567*time.Microsecond ||
		len(back.Results[0].Series) != 3 || back.Results[1].StockOuts != 1 {
		t.Errorf("round trip: %+v", back)
	}
}

func TestCSV(t *testing.T) {
	path := filepath.Join(t.TempDir(), "r.csv")
	if err := WriteReportFile(path, CSV, report()); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	want := [][]string{
		{"strategy", "revenue", "revenue_pct_of_bound", "revenue_pct_of_best_fixed", "units", "margin", "price_changes", "volatility_pct", "stock_outs", "shoppers"},
		{"static", "800.5", "64.04", "80.05", "40", "300.25", "0", "0", "0", "1000"},
		{"best-fixed", "1000", "80", "100", "45", "350", "3", "2.5", "1", "1000"},
	}
	if len(rows) != len(want) {
		t.Fatalf("%d rows, want %d: %v", len(rows), len(want), rows)
	}
	for i := range want {
		if strings.Join(rows[i], ",") != strings.Join(want[i], ",") {
			t.Errorf("row %d: %v, want %v", i, rows[i], want[i])
		}
	}
}

func TestUnknownFormat(t *testing.T) {
	path := filepath.Join(t.TempDir(), "r.xml")
	if err := WriteReportFile(path, "xml", report()); err == nil {
		t.Fatal("xml accepted")
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("file written for an unknown format: %v", err)
	}
}

func TestCharts(t *testing.T) {
	cs := charts(report())
	if len(cs) != 3 {
		t.Fatalf("%d charts", len(cs))
	}
	for name, n := range map[string]int{"revenue.svg": 2, "regret.svg": 1, "price.svg": 2} {
		if got := len(cs[name].Series); got != n {
			t.Errorf("%s: %d series, want %d", name, got, n)
		}
	}
	// Regret is the best fixed price's revenue minus the strategy's,
	// undefined where the best fixed price has no sample.
	reg := cs["regret.svg"].Series[0]
	if reg.Name != Static || len(reg.Y) != 3 || reg.Y[0] != 0 || reg.Y[1] != 100 || !math.IsNaN(reg.Y[2]) {
		t.Errorf("regret %+v", reg)
	}
	if p := cs["price.svg"].Series[1]; p.Name != BestFixed || p.Y[0] != 22 || p.X[1] != 1 {
		t.Errorf("best-fixed's price %+v", p)
	}

	dir := filepath.Join(t.TempDir(), "charts")
	if err := WriteCharts(dir, report()); err != nil {
		t.Fatal(err)
	}
	for name := range cs {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil || !strings.HasPrefix(string(b), "<svg") || !strings.Contains(string(b), "steady") {
			t.Errorf("%s: %v %.200s", name, err, b)
		}
	}
}

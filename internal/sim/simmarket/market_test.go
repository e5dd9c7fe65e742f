package simmarket

import (
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dynaprice/dynaprice/internal/pricing"
)

var t0 = time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC) // a Monday

func profit(c Curve, cost, p float64) float64 { return (p - cost) * c.Buy(p) }

func bruteForce(c Curve, cost, lo, hi float64) float64 {
	best, bv := lo, math.Inf(-1)
	const n = 200000
	for i := 0; i <= n; i++ {
		p := lo + (hi-lo)*float64(i)/n
		if v := profit(c, cost, p); v > bv {
			best, bv = p, v
		}
	}
	return best
}

func TestOptimaAgree(t *testing.T) {
	curves := []ClosedForm{
		Logit{A: 2, B: 0.1}, Logit{A: -1, B: 0.05}, Logit{A: 8, B: 0.3}, Logit{A: 40, B: 1},
		Linear{P0: 0.8, Slope: 0.01}, Linear{P0: 1.5, Slope: 0.02}, Linear{P0: 0.3, Slope: 0.001},
		ConstElasticity{K: 50, Eps: 2}, ConstElasticity{K: 3, Eps: 1.5}, ConstElasticity{K: 1e4, Eps: 4},
	}
	for _, c := range curves {
		for _, cost := range []float64{0, 5, 20} {
			lo, hi := 0.01, 400.0
			closed := math.Min(hi, math.Max(lo, c.Optimum(cost)))
			num := OptimalPrice(c, cost, lo, hi)
			brute := bruteForce(c, cost, lo, hi)
			best := profit(c, cost, closed)
			// Compare by profit (the flat top makes prices less precise).
			// The numeric optimum must match the closed form; the fine grid
			// must never beat it and must come close (it is off by at most
			// one grid step, which matters at kinks).
			tol := 1e-9 * math.Max(1, math.Abs(best))
			if v := profit(c, cost, num); math.Abs(v-best) > 1e-7*math.Max(1, math.Abs(best)) {
				t.Errorf("%#v cost %v: numeric price %v profit %v, closed form %v profit %v", c, cost, num, v, closed, best)
			}
			if v := profit(c, cost, brute); v > best+tol || v < best-1e-3*math.Max(1, math.Abs(best)) {
				t.Errorf("%#v cost %v: brute price %v profit %v, closed form %v profit %v", c, cost, brute, v, closed, best)
			}
			if best > 1e-9 && math.Abs(num-closed) > 1e-3*math.Max(1, closed) {
				t.Errorf("%#v cost %v: numeric %v vs closed %v", c, cost, num, closed)
			}
		}
	}
}

func TestLogitFirstOrderCondition(t *testing.T) {
	for _, l := range []Logit{{A: 2, B: 0.1}, {A: 800, B: 2}, {A: -30, B: 0.5}} {
		p := l.Optimum(3)
		// B(p-c) = 1 + exp(A-Bp)
		lhs, rhs := l.B*(p-3), 1+math.Exp(l.A-l.B*p)
		if math.Abs(lhs-rhs) > 1e-9*rhs {
			t.Errorf("%+v: FOC %v != %v at p=%v", l, lhs, rhs, p)
		}
	}
}

func TestOptimalPriceMultimodal(t *testing.T) {
	// A mixture with two local optima; the grid must find the global one.
	c := mix{Logit{A: 6, B: 0.5}, Logit{A: 30, B: 0.3}}
	num := OptimalPrice(c, 0, 0.01, 200)
	brute := bruteForce(c, 0, 0.01, 200)
	if math.Abs(profit(c, 0, num)-profit(c, 0, brute)) > 1e-6 {
		t.Fatalf("numeric %v (profit %v) vs brute %v (profit %v)", num, profit(c, 0, num), brute, profit(c, 0, brute))
	}
}

type mix [2]Curve

func (m mix) Buy(p float64) float64 { return 0.5*m[0].Buy(p) + 0.5*m[1].Buy(p) }

func TestCurvesBoundedMonotone(t *testing.T) {
	curves := []Curve{Logit{A: 3, B: 0.2}, Linear{P0: 1.4, Slope: 0.03}, ConstElasticity{K: 40, Eps: 2.5},
		Scaled{Curve: Logit{A: 1, B: 0.1}, Mult: 3}}
	for _, c := range curves {
		prev := math.Inf(1)
		for p := 0.0; p <= 500; p += 0.25 {
			b := c.Buy(p)
			if b < 0 || b > 1 || math.IsNaN(b) {
				t.Fatalf("%#v: Buy(%v) = %v", c, p, b)
			}
			if b > prev {
				t.Fatalf("%#v: increases at %v", c, p)
			}
			prev = b
		}
	}
}

func TestCurveAt(t *testing.T) {
	for _, fam := range []string{"logit", "linear", "const_elasticity"} {
		c, err := CurveAt(fam, 50, 0.2, 2)
		if err != nil {
			t.Fatal(err)
		}
		if got := c.Buy(50); math.Abs(got-0.2) > 1e-12 {
			t.Errorf("%s: Buy(base) = %v", fam, got)
		}
		h := 1e-5
		el := -(math.Log(c.Buy(50*(1+h))) - math.Log(c.Buy(50*(1-h)))) / (2 * h)
		if math.Abs(el-2) > 1e-4 {
			t.Errorf("%s: elasticity %v", fam, el)
		}
	}
}

func TestFunnelRateAndCoupling(t *testing.T) {
	f := Funnel{CartShare: 0.4}
	rng := rand.New(rand.NewPCG(42, 43))
	const n = 200000
	prices := []float64{5, 10, 20, 40}
	c := Logit{A: 1, B: 0.1}
	buys, carts := make([]int, len(prices)), make([]int, len(prices))
	for range n {
		s := Shopper{U1: rng.Float64(), U2: rng.Float64(), Demand: 1}
		prevBought := true
		for i, p := range prices {
			st := f.Decide(c.Buy(p), &s)
			if st >= pricing.Cart {
				carts[i]++
			}
			if st == pricing.Purchase {
				buys[i]++
				if !prevBought {
					t.Fatalf("shopper buys at %v but not at a lower price", p)
				}
			}
			prevBought = st == pricing.Purchase
		}
	}
	for i, p := range prices {
		b := c.Buy(p)
		for name, got := range map[string]struct {
			k    int
			want float64
		}{
			"purchase": {buys[i], b}, "cart": {carts[i], math.Pow(b, 0.4)},
		} {
			sd := math.Sqrt(got.want * (1 - got.want) / n)
			if r := float64(got.k) / n; math.Abs(r-got.want) > 5*sd {
				t.Errorf("price %v: %s rate %v, want %v ± %v", p, name, r, got.want, 5*sd)
			}
		}
	}
}

func TestAlias(t *testing.T) {
	w := []float64{5, 0, 1, 3, 0.5, 10}
	a, err := NewAlias(w)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	const n = 500000
	counts := make([]int, len(w))
	for range n {
		counts[a.Draw(rng)]++
	}
	sum := 19.5
	for i := range w {
		p := w[i] / sum
		sd := math.Sqrt(p * (1 - p) / n)
		if r := float64(counts[i]) / n; math.Abs(r-p) > 5*sd+1e-12 {
			t.Errorf("outcome %d: freq %v want %v", i, r, p)
		}
	}
	if _, err := NewAlias([]float64{0, 0}); err == nil {
		t.Error("zero weights accepted")
	}
	if _, err := NewAlias([]float64{1, -1}); err == nil {
		t.Error("negative weight accepted")
	}
}

func collect(t *testing.T, cfg StreamConfig) []Shopper {
	t.Helper()
	s, err := NewStream(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var out []Shopper
	var sh Shopper
	for s.Next(&sh) {
		out = append(out, sh)
	}
	return out
}

func TestStreamDeterminism(t *testing.T) {
	cfg := StreamConfig{Seed: 9, Start: t0, Horizon: 48 * time.Hour, Arrivals: Arrivals{RatePerHour: 100},
		Weights: ZipfWeights(50, 1)}
	a, b := collect(t, cfg), collect(t, cfg)
	if len(a) != len(b) {
		t.Fatalf("lengths %d vs %d", len(a), len(b))
	}
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("shopper %d differs: %+v vs %+v", i, a[i], b[i])
		}
	}
	cfg.Seed = 10
	c := collect(t, cfg)
	if len(c) == len(a) && c[0] == a[0] {
		t.Fatal("different seed gave the same stream")
	}
	for i := 1; i < len(a); i++ {
		if a[i].At.Before(a[i-1].At) {
			t.Fatalf("out of order at %d", i)
		}
		if !a[i].At.Before(t0.Add(48 * time.Hour)) {
			t.Fatalf("beyond horizon at %d", i)
		}
	}
}

func TestStreamMeanSeasonalityShocks(t *testing.T) {
	hourly := make([]float64, 24)
	for h := range hourly {
		hourly[h] = 1 + float64(h%6) // distinct levels
	}
	arr := Arrivals{RatePerHour: 200, Hourly: hourly, Daily: []float64{2, 1, 1, 1, 1, 1, 2},
		Shocks: []Shock{{Start: Duration{30*time.Hour + 30*time.Minute}, Duration: Duration{5 * time.Hour}, RateMult: 4}}}
	cfg := StreamConfig{Seed: 5, Start: t0, Horizon: 7 * 24 * time.Hour, Arrivals: arr, Weights: []float64{1}}
	s, _ := NewStream(cfg)
	// Expected count: integral of the rate, by the minute.
	want := 0.0
	for m := time.Duration(0); m < cfg.Horizon; m += time.Minute {
		want += s.Rate(m) / 60
	}
	const runs = 20
	var total float64
	byHour := make([]float64, 24)
	inShock, shockWant := 0.0, 0.0
	for r := range runs {
		cfg.Seed = uint64(100 + r)
		for _, sh := range collect(t, cfg) {
			total++
			byHour[sh.At.Hour()]++
			if d := sh.At.Sub(t0); d >= 30*time.Hour+30*time.Minute && d < 35*time.Hour+30*time.Minute {
				inShock++
			}
		}
	}
	for m := 30*time.Hour + 30*time.Minute; m < 35*time.Hour+30*time.Minute; m += time.Minute {
		shockWant += s.Rate(m) / 60 * runs
	}
	mean := total / runs
	if sd := math.Sqrt(want / runs); math.Abs(mean-want) > 5*sd {
		t.Errorf("mean count %v, want %v ± %v", mean, want, 5*sd)
	}
	if sd := math.Sqrt(shockWant); math.Abs(inShock-shockWant) > 5*sd {
		t.Errorf("shock window count %v, want %v ± %v", inShock, shockWant, 5*sd)
	}
	// Shock raises the rate: compare with the same window without it.
	if r0, r1 := s.Rate(29*time.Hour), s.Rate(31*time.Hour); r1 < 3.9*r0*(1+float64(7%6))/(1+float64(5%6)) {
		t.Errorf("rate in shock %v vs before %v", r1, r0)
	}
	// Hourly profile: counts by hour (excluding the shock hours) should be
	// proportional to the hourly factors.
	for h := range 24 {
		if h >= 6 && h <= 11 {
			continue // shock hours 06:30-11:30 on day 2 distort these
		}
		var w float64
		for d := range 7 {
			for m := 0; m < 60; m++ {
				w += s.Rate(time.Duration(d)*24*time.Hour+time.Duration(h)*time.Hour+time.Duration(m)*time.Minute) / 60 * runs
			}
		}
		if sd := math.Sqrt(w); math.Abs(byHour[h]-w) > 5*sd {
			t.Errorf("hour %d: %v shoppers, want %v ± %v", h, byHour[h], w, 5*sd)
		}
	}
}

func TestStreamNonWholeHourZone(t *testing.T) {
	// India is UTC+5:30: local hours start at :30 UTC; the profile must
	// follow local hours, so with all traffic in local hour 10 every
	// arrival is at 10:xx local time.
	loc := time.FixedZone("IST", 5*3600+1800)
	hourly := make([]float64, 24)
	hourly[10] = 1
	cfg := StreamConfig{Seed: 1, Start: time.Date(2026, 3, 2, 0, 0, 0, 0, loc), Horizon: 72 * time.Hour,
		Arrivals: Arrivals{RatePerHour: 100, Hourly: hourly}, Weights: []float64{1}}
	got := collect(t, cfg)
	if len(got) < 3*24*100*0.8 {
		t.Fatalf("only %d arrivals", len(got))
	}
	for _, sh := range got {
		if h := sh.At.In(loc).Hour(); h != 10 {
			t.Fatalf("arrival at local hour %d", h)
		}
	}
}

func TestStreamDemandShock(t *testing.T) {
	cfg := StreamConfig{Seed: 3, Start: t0, Horizon: 10 * time.Hour, Arrivals: Arrivals{RatePerHour: 1000,
		Shocks: []Shock{{Start: Duration{2 * time.Hour}, Duration: Duration{time.Hour}, DemandMult: 2, Products: []int{1}}}},
		Weights: []float64{1, 1}}
	for _, sh := range collect(t, cfg) {
		in := sh.At.Sub(t0) >= 2*time.Hour && sh.At.Sub(t0) < 3*time.Hour && sh.Product == 1
		if want := map[bool]float64{true: 2, false: 1}[in]; sh.Demand != want {
			t.Fatalf("%+v: demand %v want %v", sh, sh.Demand, want)
		}
	}
}

func TestStock(t *testing.T) {
	st, err := NewStock(t0, []StockSpec{
		{Initial: 2, RestockEvery: Duration{24 * time.Hour}, RestockTo: 3},
		{Initial: 1, RestockEvery: Duration{12 * time.Hour}, RestockBy: 2},
		{Unlimited: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	at := func(h float64) time.Time { return t0.Add(time.Duration(h * float64(time.Hour))) }
	take := func(i int, h float64, want bool) {
		t.Helper()
		if got := st.Take(i, at(h)); got != want {
			t.Fatalf("Take(%d, %vh) = %v want %v", i, h, got, want)
		}
	}
	take(0, 1, true)
	take(0, 2, true)
	take(0, 3, false)
	take(0, 23.99, false)
	take(0, 24, true) // restocked to 3
	if l := st.Level(0, at(25)); l != 2 {
		t.Fatalf("level %d", l)
	}
	if l := st.Level(0, at(72)); l != 3 { // top-up, not accumulation
		t.Fatalf("level after idle days %d", l)
	}
	take(1, 0, true)
	take(1, 11, false)
	if l := st.Level(1, at(36)); l != 6 { // restocks at 12h, 24h, 36h add 2 each
		t.Fatalf("level %d", l)
	}
	for range 1000 {
		take(2, 5, true)
	}
	if st.StockOuts(0) != 2 || st.StockOuts(1) != 1 || st.TotalStockOuts() != 3 || st.Sold(2) != 1000 {
		t.Fatalf("outs %d %d total %d sold %d", st.StockOuts(0), st.StockOuts(1), st.TotalStockOuts(), st.Sold(2))
	}
	st.Reset()
	if st.TotalStockOuts() != 0 || st.Level(0, t0) != 2 {
		t.Fatal("reset")
	}
	if _, err := NewStock(t0, []StockSpec{{Initial: 1, RestockTo: 5}}); err == nil {
		t.Fatal("restock_to without interval accepted")
	}
}

func TestShippedScenarios(t *testing.T) {
	files, _ := filepath.Glob("../../../scenarios/*.json")
	if len(files) < 7 {
		t.Fatalf("found %d scenarios", len(files))
	}
	for _, f := range files {
		sc, err := LoadScenario(f)
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		if sc.Description == "" {
			t.Errorf("%s: no description", f)
		}
		m, err := New(sc)
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		for i, p := range m.Products {
			if b := p.Curve.Buy(p.BasePrice); !(b > 0 && b < 1) || p.Cost >= p.BasePrice {
				t.Errorf("%s product %d: buy %v cost %v price %v", f, i, b, p.Cost, p.BasePrice)
				break
			}
		}
		if _, err := m.Stream(); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
}

func TestScenarioErrors(t *testing.T) {
	good, err := os.ReadFile("../../../scenarios/demand-shock.json")
	if err != nil {
		t.Fatal(err)
	}
	list := `{"name":"x","start":"2026-03-02T00:00:00Z","horizon":"1h","arrivals":{"rate_per_hour":1},
	  "products":{"list":[{"id":"a","base_price":10,"cost":1,"curve":{"family":"logit","a":1,"b":0.1},"stock":{"unlimited":true}}]},
	  "funnel":{"cart_share":0.5}}`
	if _, err := ParseScenario([]byte(list)); err != nil {
		t.Fatalf("list scenario: %v", err)
	}
	cases := []struct{ edit, want string }{
		{strings.Replace(string(good), `"seed"`, `"sede"`, 1), `unknown field "sede"`},
		{strings.Replace(string(good), `"cart_share": 0.5`, `"cart_share": 1.5`, 1), "funnel.cart_share"},
		{strings.Replace(string(good), `"horizon": "168h"`, `"horizon": "a week"`, 1), "horizon"},
		{strings.Replace(string(good), `"rate_per_hour": 600`, `"rate_per_hour": "600"`, 1), "rate_per_hour"},
		{strings.Replace(string(good), `"rate_per_hour": 600`, `"rate_per_hour": 0`, 1), "arrivals.rate_per_hour"},
		{strings.Replace(string(good), `"duration": "6h"`, `"duration": "-6h"`, 1), "arrivals.shocks[0].duration"},
		{strings.Replace(string(good), `8, 9]`, `8, 900]`, 1), "arrivals.shocks[1].products[9]"},
		{strings.Replace(string(good), `"family": "logit"`, `"family": "probit"`, 1), "products.generate.family"},
		{strings.Replace(string(good), `"count": 100`, `"count": 0`, 1), "products.generate.count"},
		{strings.Replace(string(good), `"base_buy": [0.05, 0.3]`, `"base_buy": [0.3, 0.05]`, 1), "base_buy"},
		{strings.Replace(string(good), `"restock_to": 500`, `"restock_by": 5, "restock_to": 500`, 1), "products.generate.stock"},
		{strings.Replace(string(good), `"hourly": [0.2,`, `"hourly": [`, 1), "arrivals.hourly"},
		{string(good) + "{}", "trailing"},
		{strings.Replace(list, `"b":0.1`, `"b":0.1,"eps":2`, 1), "products.list[0].curve.family"},
		{strings.Replace(list, `"b":0.1`, `"b":-0.1`, 1), "products.list[0].curve.b"},
		{strings.Replace(list, `"family":"logit","a":1,"b":0.1`, `"family":"const_elasticity","k":1,"eps":0.8`, 1), "curve.eps"},
	}
	for _, c := range cases {
		_, err := ParseScenario([]byte(c.edit))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("want error containing %q, got %v", c.want, err)
		}
	}
}

func TestMarketVisit(t *testing.T) {
	sc, err := LoadScenario("../../../scenarios/scarce-inventory.json")
	if err != nil {
		t.Fatal(err)
	}
	m, err := New(sc)
	if err != nil {
		t.Fatal(err)
	}
	run := func(mult float64) (rev float64, outs int64) {
		m.Reset()
		s, err := m.Stream()
		if err != nil {
			t.Fatal(err)
		}
		var sh Shopper
		for s.Next(&sh) {
			p := m.Products[sh.Product].BasePrice * mult
			o := m.Visit(&sh, p)
			if o.Stage == pricing.Purchase {
				rev += p
			}
		}
		return rev, m.Stock.TotalStockOuts()
	}
	_, outsLow := run(0.5)
	_, outsHigh := run(2)
	if !(outsLow > outsHigh) || outsLow == 0 {
		t.Fatalf("stock-outs at low price %d, high price %d", outsLow, outsHigh)
	}
	r1, o1 := run(1)
	r2, o2 := run(1)
	if r1 != r2 || o1 != o2 {
		t.Fatal("replay not deterministic")
	}
}

func BenchmarkShoppers(b *testing.B) {
	sc, err := LoadScenario("../../../scenarios/large.json")
	if err != nil {
		b.Fatal(err)
	}
	m, err := New(sc)
	if err != nil {
		b.Fatal(err)
	}
	s, _ := m.Stream()
	var sh Shopper
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if !s.Next(&sh) {
			b.StopTimer()
			m.Reset()
			s, _ = m.Stream()
			b.StartTimer()
			s.Next(&sh)
		}
		m.Visit(&sh, m.Products[sh.Product].BasePrice)
	}
}

package sim

import (
	"context"
	"math"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dynaprice/dynaprice/internal/sim/simmarket"
)

// models builds the benchmarks' model of every product of sc.
func models(t *testing.T, sc *simmarket.Scenario, marginFloor bool) []*model {
	t.Helper()
	m, err := simmarket.New(sc)
	if err != nil {
		t.Fatal(err)
	}
	o, err := m.Outlook()
	if err != nil {
		t.Fatal(err)
	}
	var cells []simmarket.Cell
	mds := make([]*model, len(m.Products))
	for i := range mds {
		mds[i], cells = newModel(o, m, i, marginFloor, cells)
	}
	return mds
}

// TestRestocksBeforeTheHorizonOnly: steady's top product starts with 500
// and is restocked to 500 at 24 h, 48 h, ..., 144 h: six restocks in the
// week, not seven (the one at 168 h would come when the week is over).
// At a price at which every day's demand exceeds the stock, the best
// fixed price's fluid model sells exactly 3,500 units, as the market's
// own stock does to a buyer a minute. An hour more of horizon brings the
// seventh restock, which serves that hour only.
func TestRestocksBeforeTheHorizonOnly(t *testing.T) {
	const p = 0.5 // nearly every shopper buys
	sold := func(md *model, horizon time.Duration) (fluid, market float64) {
		st, err := simmarket.NewStock(md.m.Scenario.Start, []simmarket.StockSpec{md.pr.Stock})
		if err != nil {
			t.Fatal(err)
		}
		for d := time.Duration(0); d < horizon; d += time.Minute {
			if st.Take(0, md.m.Scenario.Start.Add(d)) {
				market++
			}
		}
		return md.fixedRevenue(p) / p, market
	}
	sc := load(t, "steady")
	md := models(t, sc, true)[0]
	if fluid, market := sold(md, 168*time.Hour); len(md.periods) != 7 || math.Abs(fluid-3500) > 1e-9 || market != 3500 {
		t.Errorf("a week: %d periods, the fluid model sells %v units, the market %v; want 7, 3500, 3500", len(md.periods), fluid, market)
	}
	sc.Horizon.Duration = 169 * time.Hour
	md = models(t, sc, true)[0]
	var last float64 // demand in the last hour
	for _, dv := range md.periods[len(md.periods)-1] {
		last += dv.views * md.m.BuyAt(0, dv.d, p)
	}
	if fluid, market := sold(md, 169*time.Hour); len(md.periods) != 8 || math.Abs(fluid-(3500+last)) > 1e-9 || market != 3560 || !(last > 50 && last < 500) {
		t.Errorf("a week and an hour: %d periods, the fluid model sells %v units (%v in the last hour), the market %v; want 8, 3500 + that, 3560",
			len(md.periods), fluid, last, market)
	}
}

// TestBoundIsBestFixedWhenStationaryAndUnlimited: with no stock limit and
// demand that never changes, no price path beats the revenue-maximising
// price held throughout, so the bound and the best fixed price's fluid
// revenue agree, and both agree with a brute-force search of p × views ×
// Buy(p) (an even grid, then a finer one around its best point). One case
// per curve family.
func TestBoundIsBestFixedWhenStationaryAndUnlimited(t *testing.T) {
	for _, name := range []string{"steady", "price-sensitive", "price-insensitive"} {
		sc := load(t, name)
		sc.Arrivals.Hourly = nil
		sc.Products.Generate.Count = 10
		sc.Products.Generate.Stock = simmarket.StockSpec{Unlimited: true}
		for i, md := range models(t, sc, true) {
			_, fixed := md.bestFixed()
			bound := md.bound()
			var views float64
			for _, ps := range md.periods {
				for _, dv := range ps {
					views += dv.views
				}
			}
			rev := func(p float64) float64 { return p * views * md.pr.Curve.Buy(p) }
			lo, hi := md.pr.Cost, 10*md.pr.BasePrice
			const n = 20000
			best := lo
			for k := 0; k <= n; k++ {
				if p := lo + (hi-lo)*float64(k)/n; rev(p) > rev(best) {
					best = p
				}
			}
			step := (hi - lo) / n
			brute := rev(best)
			for k := -n; k <= n; k++ {
				if p := best + step*float64(k)/n; p >= lo {
					brute = math.Max(brute, rev(p))
				}
			}
			if math.Abs(bound-fixed) > 1e-9*bound || bound < brute*(1-1e-9) || bound > brute*(1+1e-6) {
				t.Errorf("%s product %d: bound %v, best fixed %v, brute force %v", name, i, bound, fixed, brute)
			}
		}
	}
}

// TestLadderBoundIsTheLP checks the bound against the textbook linear
// program. The ladder sells with probability q = 0.8, 0.5, 0.3, 0.15 at
// p = 60, 80, 100, 120: revenue per shopper p·q = 48, 40, 30, 18. With
// stock for a fraction c of the N shoppers, the best policy spends a
// share x_k of the time at price k (Σ x_k ≤ 1, the rest at a price nobody
// pays) to maximise Σ x_k p_k q_k subject to Σ x_k q_k ≤ c. The points
// (q, p·q) = (0, 0), (0.15, 18), (0.3, 30), (0.5, 40), (0.8, 48) are all on
// their upper concave hull (slopes 120, 80, 50, 26.7 fall), so the optimum
// mixes the two neighbours whose q straddle c, per shopper:
//
//	c = 0.10: 2/3 of the time at 120, 1/3 unsold: 12
//	c = 0.25: 2/3 at 100, 1/3 at 120: 2/3 × 30 + 1/3 × 18 = 26
//	c = 0.40: 1/2 at 80, 1/2 at 100: 20 + 15 = 35
//	c = 0.90: the stock does not bind; all the time at 60: 48
//
// The shipped scenario is c = 0.25 with N = 10,080: 262,080.
func TestLadderBoundIsTheLP(t *testing.T) {
	const n = 60 * 168
	for c, perShopper := range map[float64]float64{0.10: 12, 0.25: 26, 0.40: 35, 0.90: 48} {
		sc := load(t, "textbook-ladder")
		sc.Products.List[0].Stock.Initial = int64(math.Round(c * n))
		got := models(t, sc, true)[0].bound()
		if want := perShopper * n; math.Abs(got-want) > 1e-6*want {
			t.Errorf("stock for %v of the shoppers: bound %v, LP %v", c, got, want)
		}
	}
}

// TestCarriedStockIsPooled checks the multipliers where restocks add to
// what is left (restock_by), so that stock carries forward: the bound
// must be the least of the dual values over every falling triple of
// multipliers (any falling triple gives an upper bound), which a grid
// search finds no lower. Demand doubles on the third day, so the best
// plan carries stock into it and one multiplier spans several days.
func TestCarriedStockIsPooled(t *testing.T) {
	sc, err := simmarket.ParseScenario([]byte(`{"name":"carry","seed":1,"start":"2026-03-02T00:00:00Z","horizon":"72h",
	  "arrivals":{"rate_per_hour":20,"shocks":[{"start":"48h","duration":"24h","demand_mult":2}]},
	  "products":{"list":[{"id":"a","base_price":20,"cost":2,"curve":{"family":"logit","a":1,"b":0.1},
	    "stock":{"initial":60,"restock_every":"24h","restock_by":30}}]},
	  "funnel":{"cart_share":0.5}}`))
	if err != nil {
		t.Fatal(err)
	}
	md := models(t, sc, true)[0]
	bound := md.bound()
	added := []float64{60, 30, 30}
	dual := func(ls [3]float64) float64 {
		var v float64
		for j, l := range ls {
			pv, _ := md.period(j, l)
			v += pv + l*added[j]
		}
		return v
	}
	least := math.Inf(1)
	const n, top = 60, 60.0
	for a := 0; a <= n; a++ {
		for b := 0; b <= a; b++ {
			for c := 0; c <= b; c++ {
				least = math.Min(least, dual([3]float64{top * float64(a) / n, top * float64(b) / n, top * float64(c) / n}))
			}
		}
	}
	if _, fixed := md.bestFixed(); bound > least*(1+1e-9) || bound < fixed {
		t.Errorf("bound %v, least dual on a grid %v, best fixed price %v", bound, least, fixed)
	}
}

// shrink makes a scenario small enough for a test, about the given number
// of expected shoppers: a generated catalog of several products keeps
// each product's traffic and stock and has fewer products (and fewer
// shoppers); a single product or a list keeps its horizon and has fewer
// shoppers and proportionally less stock.
func shrink(sc *simmarket.Scenario, shoppers float64) {
	f := sc.Arrivals.RatePerHour * sc.Horizon.Hours() / shoppers
	if f <= 1 {
		return
	}
	if g := sc.Products.Generate; g != nil && g.Count > 1 {
		n := max(1, int(float64(g.Count)/f))
		sc.Arrivals.RatePerHour *= float64(n) / float64(g.Count)
		g.Count = n
		for k := range sc.Arrivals.Shocks {
			var ps []int
			for _, p := range sc.Arrivals.Shocks[k].Products {
				if p < n {
					ps = append(ps, p)
				}
			}
			if len(sc.Arrivals.Shocks[k].Products) > 0 && len(ps) == 0 {
				ps = []int{0}
			}
			sc.Arrivals.Shocks[k].Products = ps
		}
		return
	}
	sc.Arrivals.RatePerHour /= f
	scale := func(s *simmarket.StockSpec) {
		for _, v := range []*int64{&s.Initial, &s.RestockTo, &s.RestockBy} {
			if *v > 0 {
				*v = max(1, int64(math.Round(float64(*v)/f)))
			}
		}
	}
	if g := sc.Products.Generate; g != nil {
		scale(&g.Stock)
	}
	for k := range sc.Products.List {
		scale(&sc.Products.List[k].Stock)
	}
}

// every strategy the simulator knows.
var everyStrategy = []string{"static", "seed", "decay", "inventory", "thompson", "competitor"}

// TestBoundAboveEveryStrategy runs every strategy on every shipped
// scenario (shrunk) over five seeds. The bound is on expected revenue,
// so no strategy's mean may exceed it by more than noise (three standard
// errors over the seeds, and at least half a percent): a strategy above
// it would mean the bound is wrong. The best fixed price's fluid revenue,
// a feasible fluid plan, must be within the bound exactly, with no noise.
func TestBoundAboveEveryStrategy(t *testing.T) {
	files, err := filepath.Glob("../../scenarios/*.json")
	if err != nil || len(files) < 12 {
		t.Fatalf("%d scenarios: %v", len(files), err)
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".json")
		sc := load(t, name)
		shrink(sc, 3000)
		sum, err := RunSeeds(context.Background(), Config{Scenario: sc, Strategies: everyStrategy, MarginFloor: true}, []uint64{201, 202, 203, 204, 205})
		if err != nil {
			t.Fatal(err)
		}
		for _, st := range sum.Strategies {
			se := st.OfBound.SD / math.Sqrt(float64(len(sum.Seeds)))
			if st.OfBound.Mean > 100+math.Max(0.5, 3*se) {
				t.Errorf("%s: %s earned %.2f%% (sd %.2f) of the bound", name, st.Strategy, st.OfBound.Mean, st.OfBound.SD)
			}
		}
		for _, seed := range sum.Seeds {
			s := *sc
			s.Seed = seed
			m, err := simmarket.New(&s)
			if err != nil {
				t.Fatal(err)
			}
			b, err := benchmark(m, true)
			if err != nil {
				t.Fatal(err)
			}
			if !(b.fixed <= b.bound*(1+1e-9)) || !(b.bound > 0) {
				t.Errorf("%s seed %d: best fixed price's fluid revenue %v above the bound %v", name, seed, b.fixed, b.bound)
			}
		}
	}
}

// TestDriftIsNotAbove100: where willingness to pay drifts up, a price
// path that follows it earns more than any fixed price, so the bound
// (which sees the drift) is well above the best fixed price's fluid
// revenue, and no strategy reaches it.
func TestDriftIsNotAbove100(t *testing.T) {
	sc := load(t, "drifting-demand")
	shrink(sc, 4000)
	sum, err := RunSeeds(context.Background(), Config{Scenario: sc, Strategies: []string{"static", "inventory", "thompson"}, MarginFloor: true},
		[]uint64{201, 202, 203})
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range sum.Strategies {
		if st.OfBound.Max >= 100 {
			t.Errorf("%s earned up to %.1f%% of the bound", st.Strategy, st.OfBound.Max)
		}
	}
	m, err := simmarket.New(sc)
	if err != nil {
		t.Fatal(err)
	}
	b, err := benchmark(m, true)
	if err != nil {
		t.Fatal(err)
	}
	if b.bound < 1.03*b.fixed {
		t.Errorf("bound %v, best fixed price %v: the drift is worth less than 3%%", b.bound, b.fixed)
	}
}

// TestRespondWithCompetitors checks the numeric best response against
// brute force where there is no closed form: shoppers comparing with a
// competitor (whose factor kinks the probability where it reaches 1),
// at several values of a unit of stock.
func TestRespondWithCompetitors(t *testing.T) {
	sc := load(t, "competitive")
	sc.Products.Generate.Count = 3
	sc.Competitors.Influence = 6
	for _, md := range models(t, sc, true) {
		for _, dv := range md.periods[0] {
			for _, lambda := range []float64{0, md.pr.BasePrice / 2, 2 * md.pr.BasePrice} {
				f := func(p float64) float64 { return (p - lambda) * md.m.BuyAt(md.i, dv.d, p) }
				p, b := md.respond(dv.d, lambda)
				got := (p - lambda) * b
				brute := 0.0
				lo, hi := md.lo, 10*md.pr.BasePrice
				const n = 200000
				for k := 0; k <= n; k++ {
					brute = math.Max(brute, f(lo+(hi-lo)*float64(k)/n))
				}
				if got < brute*(1-1e-6) || got > brute*(1+1e-3)+1e-9 || p < md.lo {
					t.Errorf("product %d, λ %v: best response %v earns %v a shopper, brute force %v", md.i, lambda, p, got, brute)
				}
			}
		}
	}
}

package simmarket

import (
	"math"
	"strings"
	"testing"
	"time"
)

// competitive is a small list scenario with competitors, for tests.
const competitive = `{"name":"c","seed":7,"start":"2026-03-02T00:00:00Z","horizon":"48h","arrivals":{"rate_per_hour":100},
  "products":{"list":[
    {"id":"a","base_price":10,"cost":1,"curve":{"family":"logit","a":1,"b":0.1},"stock":{"unlimited":true}},
    {"id":"b","base_price":50,"cost":5,"curve":{"family":"linear","p0":1,"slope":0.01},"stock":{"unlimited":true}}]},
  "funnel":{"cart_share":0.5},
  "competitors":{"count":3,"price_ratio":[0.8,1.2],"requote_every":"6h","volatility":0.2,"influence":3,"rule":{"mode":"beat","pct":2}}}`

func competitiveMarket(t *testing.T, edit func(string) string) *Market {
	t.Helper()
	src := competitive
	if edit != nil {
		src = edit(src)
	}
	sc, err := ParseScenario([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	m, err := New(sc)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestCompetitorPrices: mean prices within the ratio range of the list
// price, requotes log-normal around them with the given volatility,
// rounded to the cent, the same for the same seed and period whatever was
// asked before, different for another seed; Lowest is the minimum.
func TestCompetitorPrices(t *testing.T) {
	m := competitiveMarket(t, nil)
	c := m.Competitors
	if c == nil || c.Count() != 3 || c.Name(0) != "competitor-1" || c.every != 6*time.Hour {
		t.Fatalf("competitors %+v", c)
	}
	if r := c.Rule(); r == nil || r.Mode != "beat" || r.Pct != 2 {
		t.Fatalf("rule %+v", r)
	}
	if c.Period(t0.Add(6*time.Hour-1)) != 0 || c.Period(t0.Add(6*time.Hour)) != 1 {
		t.Error("periods do not start every 6 h from the start")
	}
	for i, p := range m.Products {
		for j := range c.Count() {
			if r := c.mean[i*c.count+j] / p.BasePrice; r < 0.8 || r > 1.2 {
				t.Errorf("product %d competitor %d: mean ratio %v outside [0.8, 1.2]", i, j, r)
			}
			const n = 20000
			var sum, sq float64
			for k := range int64(n) {
				q := c.Price(i, j, k)
				if q != math.Round(q*100)/100 || q < 0.01 {
					t.Fatalf("price %v not in cents", q)
				}
				l := math.Log(q / c.mean[i*c.count+j])
				sum, sq = sum+l, sq+l*l
			}
			mean := sum / n
			sd := math.Sqrt(sq/n - mean*mean)
			// Rounding to the cent adds at most 0.0005/10 to a log price.
			if math.Abs(mean) > 5*0.2/math.Sqrt(n)+1e-3 || math.Abs(sd-0.2) > 0.01 {
				t.Errorf("product %d competitor %d: log price mean %v sd %v, want 0 and 0.2", i, j, mean, sd)
			}
		}
	}
	again := competitiveMarket(t, nil).Competitors
	other := competitiveMarket(t, func(s string) string { return strings.Replace(s, `"seed":7`, `"seed":8`, 1) }).Competitors
	same, differ := true, false
	for _, k := range []int64{40, 3, 0, 1e6} {
		for i := range 2 {
			for j := range 3 {
				same = same && c.Price(i, j, k) == again.Price(i, j, k)
				differ = differ || c.Price(i, j, k) != other.Price(i, j, k)
			}
		}
	}
	if !same || !differ {
		t.Errorf("same seed same prices %v, other seed other prices %v", same, differ)
	}
	// Product a in period 11: the competitors ask 11.40, 8.59 and 9.74,
	// the cheapest in the middle.
	if p := [3]float64{c.Price(0, 0, 11), c.Price(0, 1, 11), c.Price(0, 2, 11)}; p != [3]float64{11.40, 8.59, 9.74} || c.Lowest(0, 11) != 8.59 {
		t.Errorf("period 11: prices %v, lowest %v; want 11.40, 8.59, 9.74 and 8.59", p, c.Lowest(0, 11))
	}
}

// TestCompetitorFactor: shoppers buy as the curve says at parity, up to
// twice as often when the shop is much cheaper, hardly at all when it is
// much dearer, and ignore competitors with influence 0.
func TestCompetitorFactor(t *testing.T) {
	c := competitiveMarket(t, nil).Competitors
	for _, tc := range []struct{ p, want, tol float64 }{{10, 1, 1e-15}, {0.01, 2, 1e-8}, {1000, 0, 1e-5}, {5, 2 / 1.125, 1e-12}} {
		if got := c.Factor(tc.p, 10); math.Abs(got-tc.want) > tc.tol {
			t.Errorf("Factor(%v, 10) = %v, want %v", tc.p, got, tc.want)
		}
	}
	for p := 1.0; p < 30; p++ {
		if c.Factor(p+1, 10) >= c.Factor(p, 10) {
			t.Fatalf("factor does not fall with the price at %v", p)
		}
	}
	if f := competitiveMarket(t, func(s string) string { return strings.Replace(s, `"influence":3`, `"influence":0`, 1) }).Competitors.Factor(3, 10); f != 1 {
		t.Errorf("influence 0: factor %v, want 1", f)
	}
}

// TestCompetitiveBuy: a shopper's purchase probability is the curve's
// times the factor against the lowest competitor price of the moment,
// capped at 1; without competitors it is the curve's alone.
func TestCompetitiveBuy(t *testing.T) {
	m := competitiveMarket(t, nil)
	c := m.Competitors
	for _, h := range []time.Duration{0, time.Hour, 7 * time.Hour, 47 * time.Hour} {
		for i, p := range m.Products {
			for _, price := range []float64{0.5 * p.BasePrice, p.BasePrice, 1.5 * p.BasePrice} {
				s := Shopper{At: t0.Add(h), Product: i, Demand: 1.5}
				low := c.Lowest(i, c.Period(s.At))
				want := math.Min(1, 1.5*p.Curve.Buy(price)*c.Factor(price, low))
				if got := m.Buy(&s, price); got != want {
					t.Errorf("%v product %d at %v: buy %v, want %v", h, i, price, got, want)
				}
			}
		}
	}
	plain := competitiveMarket(t, func(s string) string {
		before, _, _ := strings.Cut(s, ",\n  \"competitors\"")
		return before + "}"
	})
	s := Shopper{At: t0, Product: 0, Demand: 1}
	if plain.Competitors != nil || plain.Buy(&s, 12) != plain.Products[0].Curve.Buy(12) {
		t.Error("without competitors the curve alone should decide")
	}
}

// TestCompetitiveVisitAllocates nothing: competitors cost O(count) per
// product and requote period, and nothing per shopper.
func TestCompetitiveVisitAllocates(t *testing.T) {
	m := competitiveMarket(t, nil)
	s, err := m.Stream()
	if err != nil {
		t.Fatal(err)
	}
	var sh Shopper
	allocs := testing.AllocsPerRun(1000, func() {
		if s.Next(&sh) {
			m.Visit(&sh, m.Products[sh.Product].BasePrice)
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations per shopper", allocs)
	}
}

func TestCompetitorErrors(t *testing.T) {
	cases := []struct{ old, new, want string }{
		{`"count":3`, `"count":0`, "competitors.count"},
		{`"count":3`, `"count":17`, "competitors.count"},
		{`"requote_every":"6h"`, `"requote_every":"0s"`, "competitors.requote_every"},
		{`,"requote_every":"6h"`, ``, "competitors.requote_every"},
		{`"requote_every":"6h"`, `"requote_every":"often"`, "competitors.requote_every"},
		{`"volatility":0.2`, `"volatility":-0.1`, "competitors.volatility"},
		{`"influence":3`, `"influence":-1`, "competitors.influence"},
		{`"price_ratio":[0.8,1.2]`, `"price_ratio":[1.2,0.8]`, "competitors.price_ratio"},
		{`"price_ratio":[0.8,1.2]`, `"price_ratio":[0,1.2]`, "competitors.price_ratio"},
		{`"influence":3`, `"influense":3`, `unknown field "influense"`},
		{`"mode":"beat"`, `"mode":"undercut"`, `competitors.rule: mode "undercut"`},
		{`"pct":2`, `"pct":100`, "competitors.rule: pct"},
		{`"pct":2`, `"percent":2`, `unknown field "percent"`},
	}
	for _, c := range cases {
		src := strings.Replace(competitive, c.old, c.new, 1)
		if src == competitive {
			t.Fatalf("edit %q not applied", c.old)
		}
		_, err := ParseScenario([]byte(src))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: want error containing %q, got %v", c.new, c.want, err)
		}
	}
	if _, err := ParseScenario([]byte(strings.Replace(competitive, `,"rule":{"mode":"beat","pct":2}`, ``, 1))); err != nil {
		t.Errorf("the rule is optional: %v", err)
	}
}

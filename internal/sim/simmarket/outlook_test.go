package simmarket

import (
	"math"
	"testing"
	"time"
)

// everything is a small market with all that moves demand: an hourly
// profile, a rate shock, a demand shock on two products, competitors
// requoting every 5 h, a drifting willingness to pay and restocks every
// 10 h (none of which divide each other).
const everything = `{"name":"everything","seed":11,"start":"2026-03-02T00:30:00+05:30","horizon":"48h",
  "arrivals":{"rate_per_hour":200,"hourly":[1,1,1,1,1,1,2,2,2,2,3,3,3,3,2,2,2,2,1,1,1,1,1,1],
    "shocks":[{"start":"7h30m","duration":"3h","rate_mult":2},{"start":"20h","duration":"10h","demand_mult":1.5,"products":[0,3]}]},
  "products":{"generate":{"count":10,"family":"logit","base_price":[10,50],"base_buy":[0.1,0.3],"elasticity":[1.5,3],
    "cost_ratio":[0.2,0.5],"zipf_s":1,"stock":{"initial":30,"restock_every":"10h","restock_to":30}}},
  "funnel":{"cart_share":0.5},
  "competitors":{"count":2,"price_ratio":[0.8,1.2],"requote_every":"5h","volatility":0.1,"influence":2},
  "wtp_drift_per_day":0.1}`

// TestOutlookIsTheShoppersDemand: the outlook the simulator's benchmarks
// are built on is the market the shoppers meet. Every shopper's purchase
// probability is BuyAt with the demand of the cell they arrive in; no
// cell straddles a restock; the expected views add up to the integral of
// the arrival rate, and the shoppers who come to that within noise.
func TestOutlookIsTheShoppersDemand(t *testing.T) {
	sc, err := ParseScenario([]byte(everything))
	if err != nil {
		t.Fatal(err)
	}
	m, err := New(sc)
	if err != nil {
		t.Fatal(err)
	}
	o, err := m.Outlook()
	if err != nil {
		t.Fatal(err)
	}
	cells := make([][]Cell, len(m.Products))
	var views float64
	for i := range m.Products {
		cells[i] = o.Product(i, nil)
		for k, c := range cells[i] {
			views += c.Views
			end := sc.Horizon.Duration
			if k+1 < len(cells[i]) {
				end = cells[i][k+1].Start
			}
			if c.Period != int(c.Start/(10*time.Hour)) || c.Period != int((end-1)/(10*time.Hour)) {
				t.Fatalf("product %d cell %+v to %v straddles a restock", i, c, end)
			}
		}
	}
	st, err := m.Stream()
	if err != nil {
		t.Fatal(err)
	}
	var integral float64
	for d := time.Duration(0); d < sc.Horizon.Duration; d += time.Minute {
		integral += st.Rate(d) / 60
	}
	if math.Abs(views-integral) > 1e-6*integral {
		t.Errorf("expected views %v, integral of the rate %v", views, integral)
	}
	var sh Shopper
	n, shocked := 0, 0
	for st.Next(&sh) {
		n++
		cs, at := cells[sh.Product], sh.At.Sub(sc.Start)
		k := len(cs) - 1
		for cs[k].Start > at {
			k--
		}
		if cs[k].Demand.Mult != 1 {
			shocked++
		}
		for _, p := range []float64{5, m.Products[sh.Product].BasePrice, 80} {
			if got, want := m.Buy(&sh, p), m.BuyAt(sh.Product, cs[k].Demand, p); got != want {
				t.Fatalf("shopper %+v at %v buys with %v, the outlook's cell %+v says %v", sh, p, got, cs[k], want)
			}
		}
	}
	if math.Abs(float64(n)-views) > 4*math.Sqrt(views) || shocked == 0 {
		t.Errorf("%d shoppers (%d in a demand shock), %v expected", n, shocked, views)
	}
}

func TestLadder(t *testing.T) {
	l := Ladder{Prices: []float64{60, 80, 100, 120}, Buys: []float64{0.8, 0.5, 0.3, 0.15}}
	for p, want := range map[float64]float64{1: 0.8, 60: 0.8, 60.01: 0.5, 80: 0.5, 99.9: 0.3, 100: 0.3, 120: 0.15, 120.01: 0, 1e9: 0} {
		if got := l.Buy(p); got != want {
			t.Errorf("Buy(%v) = %v, want %v", p, got, want)
		}
	}
	spec := CurveSpec{Family: "ladder", Prices: l.Prices, Buys: l.Buys}
	if c, err := spec.Build(); err != nil || c.Buy(70) != 0.5 {
		t.Fatalf("build: %v %v", c, err)
	}
	for _, bad := range []CurveSpec{
		{Family: "ladder"},
		{Family: "ladder", Prices: []float64{1, 2}, Buys: []float64{0.5}},
		{Family: "ladder", Prices: []float64{2, 1}, Buys: []float64{0.5, 0.4}},
		{Family: "ladder", Prices: []float64{1, 2}, Buys: []float64{0.4, 0.5}},
		{Family: "ladder", Prices: []float64{1}, Buys: []float64{1.5}},
		{Family: "ladder", Prices: []float64{1}, Buys: []float64{0.5}, K: 1},
		{Family: "logit", A: 1, B: 1, Prices: []float64{1}},
	} {
		if _, err := bad.Build(); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}

// TestDrift: the willingness to pay steps at whole hours from the start,
// compounding the daily rate, and a shopper's purchase probability is the
// curve's at the price divided by it.
func TestDrift(t *testing.T) {
	sc, err := ParseScenario([]byte(everything))
	if err != nil {
		t.Fatal(err)
	}
	m, err := New(sc)
	if err != nil {
		t.Fatal(err)
	}
	for d, want := range map[time.Duration]float64{0: 1, 59 * time.Minute: 1, time.Hour: math.Pow(1.1, 1.0/24), 36*time.Hour + 5*time.Minute: math.Pow(1.1, 1.5)} {
		if got := m.WTP(d); math.Abs(got-want) > 1e-12 {
			t.Errorf("WTP(%v) = %v, want %v", d, got, want)
		}
	}
	sc.WTPDrift = 0
	if m.WTP(40*time.Hour) != 1 {
		t.Error("drift without a rate")
	}
	sc.WTPDrift = 2
	if err := sc.Validate(); err == nil {
		t.Error("a drift of 200% a day accepted")
	}
}

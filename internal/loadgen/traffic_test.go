package loadgen

import (
	"context"
	"errors"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/dynaprice/dynaprice/internal/ingest"
	"github.com/dynaprice/dynaprice/internal/pricing"
)

func TestNextIsReproducibleAndSkewed(t *testing.T) {
	ps := []pricing.Product{{ID: "PA", BasePrice: 1}, {ID: "PB", BasePrice: 2}, {ID: "PC", BasePrice: 3}}
	mk := func() *Traffic {
		g, err := NewTraffic(TrafficConfig{Rate: 10, Products: ps, ViewShare: 0.8, CartShare: 0.15,
			Rand: rand.New(rand.NewPCG(1, 2)), Now: func() time.Time { return time.Unix(1, 0) }})
		if err != nil {
			t.Fatal(err)
		}
		return g
	}
	a, b := mk().Next(nil, 3000), mk().Next(nil, 3000)
	counts := map[string]int{}
	types := map[pricing.EventType]int{}
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("event %d differs: %+v vs %+v", i, a[i], b[i])
		}
		counts[a[i].ProductID]++
		types[a[i].Type]++
	}
	if !(counts["PA"] > counts["PB"] && counts["PB"] > counts["PC"]) {
		t.Fatalf("popularity not skewed: %v", counts)
	}
	if v := float64(types[pricing.View]) / 3000; v < 0.75 || v > 0.85 {
		t.Fatalf("view share %v, want ~0.8", v)
	}
	if _, err := NewTraffic(TrafficConfig{Rate: 0, Products: ps}); err == nil {
		t.Fatal("rate 0 accepted")
	}
}

func TestDemo(t *testing.T) {
	ps := []pricing.Product{{ID: "PA", BasePrice: 1}, {ID: "PB", BasePrice: 2}}
	cfg := DemoConfig{Rate: 50, Products: ps, Rand: rand.New(rand.NewPCG(1, 2)), Now: time.Now}

	// It submits batches until ctx ends, then returns nil.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	got := 0
	cfg.Submit = func(_ context.Context, evs []ingest.Event) error {
		for _, ev := range evs {
			if ev.ProductID != "PA" && ev.ProductID != "PB" {
				t.Errorf("event for %q", ev.ProductID)
			}
		}
		if got += len(evs); got >= 10 {
			cancel()
		}
		return nil
	}
	if err := Demo(ctx, cfg); err != nil || got < 10 {
		t.Fatalf("Demo: %v after %d events", err, got)
	}

	// A failed submission stops it.
	boom := errors.New("boom")
	cfg.Submit = func(context.Context, []ingest.Event) error { return boom }
	if err := Demo(context.Background(), cfg); !errors.Is(err, boom) {
		t.Fatalf("Demo with a failing Submit: %v", err)
	}

	cfg.Rate = 0
	if err := Demo(context.Background(), cfg); err == nil {
		t.Fatal("rate 0 accepted")
	}
	cfg.Rate, cfg.Submit = 50, nil
	if err := Demo(context.Background(), cfg); err == nil {
		t.Fatal("no Submit accepted")
	}
}

// TestShoppersReactToPriceAndInterestMoves: events carry the price shown;
// at twice the list price an elasticity of 2 leaves a quarter of the
// carts and purchases; with Rotate the most popular product changes every
// turn.
func TestShoppersReactToPriceAndInterestMoves(t *testing.T) {
	ps := []pricing.Product{{ID: "PA", BasePrice: 10}, {ID: "PB", BasePrice: 20}, {ID: "PC", BasePrice: 30}}
	now := time.Unix(1_800_000_000, 0)
	mk := func(shown float64, elasticity float64, rotate time.Duration) *Traffic {
		g, err := NewTraffic(TrafficConfig{Rate: 10, Products: ps, ViewShare: 0.5, CartShare: 0.25,
			Rand: rand.New(rand.NewPCG(3, 4)), Now: func() time.Time { return now }, Elasticity: elasticity, Rotate: rotate,
			Shown: func(id string) (float64, bool) {
				for _, p := range ps {
					if p.ID == id {
						return shown * p.BasePrice, true
					}
				}
				return 0, false
			}})
		if err != nil {
			t.Fatal(err)
		}
		return g
	}
	buys := func(evs []ingest.Event) float64 {
		n := 0
		for _, e := range evs {
			if e.Type != pricing.View {
				n++
			}
		}
		return float64(n) / float64(len(evs))
	}
	at1 := mk(1, 2, 0).Next(nil, 20000)
	at2 := mk(2, 2, 0).Next(nil, 20000)
	if b1, b2 := buys(at1), buys(at2); b1 < 0.47 || b1 > 0.53 || b2 < 0.10 || b2 > 0.15 {
		t.Errorf("carts and purchases: %.3f at list price (want ~0.5), %.3f at twice it (want ~0.125)", b1, b2)
	}
	if e := at2[0]; e.Price != 2*map[string]float64{"PA": 10, "PB": 20, "PC": 30}[e.ProductID] {
		t.Errorf("event carries price %v, want the shown one: %+v", e.Price, e)
	}
	if b := buys(mk(2, 0, 0).Next(nil, 20000)); b < 0.47 {
		t.Errorf("without elasticity the price changed the mix: %.3f", b)
	}
	g := mk(1, 0, time.Minute)
	top := func() string {
		counts := map[string]int{}
		for _, e := range g.Next(nil, 3000) {
			counts[e.ProductID]++
		}
		best := ""
		for id, n := range counts {
			if best == "" || n > counts[best] {
				best = id
			}
		}
		return best
	}
	if got := top(); got != "PA" {
		t.Errorf("before a turn the most popular is %s, want PA", got)
	}
	now = now.Add(time.Minute)
	if got := top(); got != "PB" {
		t.Errorf("after one turn the most popular is %s, want PB", got)
	}
	now = now.Add(2 * time.Minute)
	if got := top(); got != "PA" {
		t.Errorf("after three turns the most popular is %s, want PA again", got)
	}
}

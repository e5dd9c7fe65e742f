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

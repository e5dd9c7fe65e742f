package loadgen

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"

	"github.com/dynaprice/dynaprice/internal/ingest"
	"github.com/dynaprice/dynaprice/internal/pricing"
)

// TrafficConfig configures a Traffic.
type TrafficConfig struct {
	// Rate is events per second.
	Rate float64
	// Products to generate events for; popularity falls off with position
	// (a Zipf-like skew, as real catalogs have).
	Products []pricing.Product
	// Mix is the share of views and carts; the rest are purchases.
	ViewShare, CartShare float64
	// Rand and Now make runs reproducible.
	Rand *rand.Rand
	Now  func() time.Time
}

// Validate reports configuration errors.
func (c TrafficConfig) Validate() error {
	switch {
	case !(c.Rate > 0):
		return errors.New("traffic: rate must be > 0")
	case len(c.Products) == 0:
		return errors.New("traffic: no products")
	case c.ViewShare < 0 || c.CartShare < 0 || c.ViewShare+c.CartShare > 1:
		return errors.New("traffic: shares must be >= 0 and sum to at most 1")
	case c.Rand == nil || c.Now == nil:
		return errors.New("traffic: Rand and Now are required")
	}
	return nil
}

// Traffic makes synthetic shopper events in the original system's format.
// It is not safe for concurrent use (it draws from its Rand).
type Traffic struct {
	cfg TrafficConfig
	cum []float64 // cumulative popularity
}

// NewTraffic returns a Traffic.
func NewTraffic(cfg TrafficConfig) (*Traffic, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	g := &Traffic{cfg: cfg}
	total := 0.0
	for i := range cfg.Products {
		total += 1 / float64(i+1)
		g.cum = append(g.cum, total)
	}
	for i := range g.cum {
		g.cum[i] /= total
	}
	return g, nil
}

// Next appends n events to dst.
func (g *Traffic) Next(dst []ingest.Event, n int) []ingest.Event {
	now := g.cfg.Now().UnixNano()
	r := g.cfg.Rand
	for k := 0; k < n; k++ {
		u := r.Float64()
		i := 0
		for i < len(g.cum)-1 && g.cum[i] < u {
			i++
		}
		t := pricing.Purchase
		switch v := r.Float64(); {
		case v < g.cfg.ViewShare:
			t = pricing.View
		case v < g.cfg.ViewShare+g.cfg.CartShare:
			t = pricing.Cart
		}
		p := g.cfg.Products[i]
		dst = append(dst, ingest.Event{Type: t, ProductID: p.ID, Timestamp: now, Price: p.BasePrice, Quantity: 1})
	}
	return dst
}

// Run sends events at the configured rate to sink until ctx ends, in
// batches every 100 ms (or per event when the rate is low).
func (g *Traffic) Run(ctx context.Context, sink func(context.Context, []ingest.Event) error) error {
	interval := 100 * time.Millisecond
	if per := time.Duration(float64(time.Second) / g.cfg.Rate); per > interval {
		interval = per
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	owed := 0.0
	var buf []ingest.Event
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		owed += g.cfg.Rate * interval.Seconds()
		n := int(owed)
		owed -= float64(n)
		if n == 0 {
			continue
		}
		buf = g.Next(buf[:0], n)
		if err := sink(ctx, buf); err != nil && ctx.Err() == nil {
			return err
		}
	}
}

// The event mix of the demo and of `dynaprice loadgen`: mostly views, some
// carts, few purchases, as in a real shop.
const (
	viewShare = 0.80
	cartShare = 0.15
)

// DemoConfig configures Demo.
type DemoConfig struct {
	// Rate is events per second.
	Rate float64
	// Products to shop for, the most popular first.
	Products []pricing.Product
	// Submit receives every batch of events; an error stops Demo unless
	// ctx has ended.
	Submit func(context.Context, []ingest.Event) error
	// Rand and Now make runs reproducible.
	Rand *rand.Rand
	Now  func() time.Time
}

// Demo is the traffic of `dynaprice serve --demo`: it sends events in the
// demo mix (80% views, 15% carts, 5% purchases, popular products first)
// at cfg.Rate to cfg.Submit until ctx ends, and then returns nil.
func Demo(ctx context.Context, cfg DemoConfig) error {
	if cfg.Submit == nil {
		return errors.New("traffic: no Submit")
	}
	g, err := NewTraffic(TrafficConfig{Rate: cfg.Rate, Products: cfg.Products, ViewShare: viewShare, CartShare: cartShare,
		Rand: cfg.Rand, Now: cfg.Now})
	if err != nil {
		return err
	}
	return g.Run(ctx, cfg.Submit)
}

// Package traffic generates synthetic shopper events in the original
// system's format: the built-in demo of `dynaprice serve --demo`, and the
// source of load tests.
package traffic

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"

	"github.com/dynaprice/dynaprice/internal/ingest"
	"github.com/dynaprice/dynaprice/internal/pricing"
)

// Config configures a Generator.
type Config struct {
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
func (c Config) Validate() error {
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

// Generator makes events.
type Generator struct {
	cfg Config
	cum []float64 // cumulative popularity
}

// New returns a generator.
func New(cfg Config) (*Generator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	g := &Generator{cfg: cfg}
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
func (g *Generator) Next(dst []ingest.Event, n int) []ingest.Event {
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
func (g *Generator) Run(ctx context.Context, sink func(context.Context, []ingest.Event) error) error {
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

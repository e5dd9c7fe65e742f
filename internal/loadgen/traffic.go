package loadgen

import (
	"context"
	"errors"
	"math"
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
	// Shown, when set, gives the price a shopper sees for a product (its
	// current price), which events then carry; else they carry the list
	// price. Shoppers who see a price above the list price buy less
	// often (Elasticity) and those below it more.
	Shown func(id string) (float64, bool)
	// Elasticity is how strongly a cart or purchase depends on the price
	// shown against the list price: it happens with probability
	// (list / shown)^Elasticity (at most 1; else the shopper only views).
	// 0: price does not matter.
	Elasticity float64
	// Rotate, when > 0, moves every product one place up the popularity
	// ranking each Rotate (the most popular becomes the least), so that
	// interest in each product rises and falls.
	Rotate time.Duration
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
	case c.Elasticity < 0 || c.Rotate < 0:
		return errors.New("traffic: elasticity and rotation must be >= 0")
	}
	return nil
}

// Traffic makes synthetic shopper events in the original system's format.
// It is not safe for concurrent use (it draws from its Rand).
type Traffic struct {
	cfg   TrafficConfig
	cum   []float64 // cumulative popularity
	start int64     // when Rotate's turns are counted from
}

// NewTraffic returns a Traffic.
func NewTraffic(cfg TrafficConfig) (*Traffic, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	g := &Traffic{cfg: cfg, start: cfg.Now().UnixNano()}
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
		if n := len(g.cfg.Products); g.cfg.Rotate > 0 {
			i = (i + int((now-g.start)/int64(g.cfg.Rotate))) % n
		}
		p := g.cfg.Products[i]
		price := p.BasePrice
		if g.cfg.Shown != nil {
			if shown, ok := g.cfg.Shown(p.ID); ok && shown > 0 {
				price = shown
			}
		}
		if t != pricing.View && g.cfg.Elasticity > 0 && price > 0 &&
			r.Float64() >= math.Pow(p.BasePrice/price, g.cfg.Elasticity) {
			t = pricing.View // the price put the shopper off
		}
		dst = append(dst, ingest.Event{Type: t, ProductID: p.ID, Timestamp: now, Price: price, Quantity: 1})
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
	// Shown is the price a shopper sees (TrafficConfig.Shown); nil: the
	// list price.
	Shown func(id string) (float64, bool)
}

// The demo's shoppers: they buy less the further a price is above the
// list price (and more below it), and interest moves from product to
// product every DemoRotate, so that prices fall as well as rise.
const (
	DemoElasticity = 2
	DemoRotate     = 3 * time.Minute
)

// Demo is the traffic of `dynaprice serve --demo`: it sends events in the
// demo mix (80% views, 15% carts, 5% purchases, popular products first,
// fewer carts and purchases at prices above the list price: DemoElasticity;
// the ranking turning every DemoRotate) at cfg.Rate to cfg.Submit until
// ctx ends, and then returns nil. Events carry the price shown (cfg.Shown).
func Demo(ctx context.Context, cfg DemoConfig) error {
	if cfg.Submit == nil {
		return errors.New("traffic: no Submit")
	}
	g, err := NewTraffic(TrafficConfig{Rate: cfg.Rate, Products: cfg.Products, ViewShare: viewShare, CartShare: cartShare,
		Rand: cfg.Rand, Now: cfg.Now, Shown: cfg.Shown, Elasticity: DemoElasticity, Rotate: DemoRotate})
	if err != nil {
		return err
	}
	return g.Run(ctx, cfg.Submit)
}

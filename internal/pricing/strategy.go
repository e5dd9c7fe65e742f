package pricing

import (
	"math"
	"time"
)

// EventType is a kind of shopper interaction.
type EventType uint8

// Event types, as named on the wire by the original system.
const (
	View EventType = iota + 1
	Cart
	Purchase
)

// ParseEventType maps the wire name ("view", "cart", "purchase").
func ParseEventType(s string) (EventType, bool) {
	switch s {
	case "view":
		return View, true
	case "cart":
		return Cart, true
	case "purchase":
		return Purchase, true
	}
	return 0, false
}

func (t EventType) String() string {
	switch t {
	case View:
		return "view"
	case Cart:
		return "cart"
	case Purchase:
		return "purchase"
	}
	return "unknown"
}

// Weights are the demand each event type adds (per unit of quantity).
type Weights struct {
	View     float64 `json:"view"`
	Cart     float64 `json:"cart"`
	Purchase float64 `json:"purchase"`
}

// DefaultWeights are the original system's: view 1, cart 3, purchase 5.
func DefaultWeights() Weights { return Weights{View: 1, Cart: 3, Purchase: 5} }

func (w Weights) of(t EventType) float64 {
	switch t {
	case View:
		return w.View
	case Cart:
		return w.Cart
	case Purchase:
		return w.Purchase
	}
	return 0
}

// Demand is a product's demand state. Both figures are always maintained so
// that a product can switch strategy without losing its history.
type Demand struct {
	// Total is the cumulative weighted demand (the original's "demand").
	Total float64 `json:"total"`
	// Decayed is the exponentially decayed demand as of At.
	Decayed float64 `json:"decayed"`
	// At is when Decayed was last brought up to date, in unix nanoseconds.
	At int64 `json:"at"`
}

// decayFactor returns the factor by which demand shrinks over elapsed ns.
func decayFactor(elapsed int64, halfLife time.Duration) float64 {
	if elapsed <= 0 || halfLife <= 0 {
		return 1
	}
	return math.Exp2(-float64(elapsed) / float64(halfLife))
}

// Strategy turns a base price and demand into an unguarded price.
//
// Implementations must be pure and cheap (they run once per event) and safe
// for concurrent use. The demand they return is the figure they priced on,
// which is what the API reports as the product's demand.
type Strategy interface {
	Name() string
	Price(base float64, d Demand, now int64) (price, demand float64)
}

// Seed is the original system's formula: base + sqrt(cumulative demand) * K.
type Seed struct{ K float64 }

// Name implements Strategy.
func (Seed) Name() string { return "seed" }

// Price implements Strategy.
func (s Seed) Price(base float64, d Demand, _ int64) (float64, float64) {
	return base + math.Sqrt(d.Total)*s.K, d.Total
}

// Decay is Seed's shape on exponentially decayed demand, so a product's
// price falls back towards its base when interest cools.
type Decay struct {
	K        float64
	HalfLife time.Duration
}

// Name implements Strategy.
func (Decay) Name() string { return "decay" }

// Price implements Strategy.
func (s Decay) Price(base float64, d Demand, now int64) (float64, float64) {
	dem := d.Decayed * decayFactor(now-d.At, s.HalfLife)
	return base + math.Sqrt(dem)*s.K, dem
}

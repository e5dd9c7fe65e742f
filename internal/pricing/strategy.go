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

// Market signals: events that carry no demand but tell the engine about
// the product's market. Stock reports the units on hand (its quantity is
// the level, not a change); CompetitorPrice reports what a competitor asks
// (its price field).
const (
	Stock EventType = iota + 4
	CompetitorPrice
)

// ParseEventType maps the wire name ("view", "cart", "purchase", "stock",
// "competitor_price").
func ParseEventType(s string) (EventType, bool) {
	switch s {
	case "view":
		return View, true
	case "cart":
		return Cart, true
	case "purchase":
		return Purchase, true
	case "stock":
		return Stock, true
	case "competitor_price":
		return CompetitorPrice, true
	}
	return 0, false
}

// Signal reports whether t is a market signal rather than shopper demand.
func (t EventType) Signal() bool { return t == Stock || t == CompetitorPrice }

func (t EventType) String() string {
	switch t {
	case View:
		return "view"
	case Cart:
		return "cart"
	case Purchase:
		return "purchase"
	case Stock:
		return "stock"
	case CompetitorPrice:
		return "competitor_price"
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

// Strategy turns a product's state into an unguarded price.
//
// Implementations must be cheap (they run once per event), free of I/O,
// deterministic and safe for concurrent use on different products. The
// demand they return is the figure they priced on, which is what the API
// reports as the product's demand. Only a Learner may change the state it
// is given, and only its Learning.
type Strategy interface {
	Name() string
	Price(in Input) (price, demand float64)
}

// Input is what a strategy prices from. It is passed by value and points
// into the Book, so building it costs nothing.
type Input struct {
	Product *Product
	State   *State
	// Now is the time of pricing, unix ns.
	Now int64
	// Selling is where the product stands in its selling period (only
	// Active when the product has an inventory plan and a known stock).
	Selling Selling
	// learn is the product's effective learning policy (nil outside a
	// Book: the defaults).
	learn *learnRules
}

// Seed is the original system's formula: base + sqrt(cumulative demand) * K.
type Seed struct{ K float64 }

// Name implements Strategy.
func (Seed) Name() string { return "seed" }

// Price implements Strategy.
func (s Seed) Price(in Input) (float64, float64) {
	d := in.State.Demand.Total
	return in.Product.BasePrice + math.Sqrt(d)*s.K, d
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
func (s Decay) Price(in Input) (float64, float64) {
	d := in.State.Demand
	dem := d.Decayed * decayFactor(in.Now-d.At, s.HalfLife)
	return in.Product.BasePrice + math.Sqrt(dem)*s.K, dem
}

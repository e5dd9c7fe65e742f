package simmarket

import (
	"math"

	"github.com/dynaprice/dynaprice/internal/pricing"
)

// Funnel splits a purchase probability into the view -> cart and
// cart -> purchase steps the engine observes as separate events.
//
// With b = Buy(p), P(cart) = b^CartShare and P(purchase|cart) =
// b^(1-CartShare), so P(purchase) = b exactly and the curve stays the single
// source of truth. CartShare = 0 puts all the price sensitivity in the
// checkout step (everyone carts), 1 puts it all in the cart step (everyone
// who carts buys); 0.5 splits it evenly.
type Funnel struct {
	CartShare float64 `json:"cart_share"`
}

// Decide returns the deepest funnel stage the shopper reaches when shown a
// product whose purchase probability at the shown price is buy: View (the
// shopper only looked), Cart or Purchase. The engine should be sent a view
// always, a cart for Cart and Purchase, and a purchase for Purchase.
//
// The decision uses the shopper's pre-drawn uniforms U1 and U2 (common
// random numbers) rather than fresh draws. Because the thresholds are
// monotone in buy, a shopper who buys at some price also buys at any price
// with a higher buy probability, so two strategies replayed against the same
// stream differ only where their prices differ: comparisons are fair and the
// variance of the revenue difference is far smaller than with independent
// draws.
func (f Funnel) Decide(buy float64, s *Shopper) pricing.EventType {
	if buy <= 0 {
		return pricing.View
	}
	if s.U1 >= math.Pow(buy, f.CartShare) {
		return pricing.View
	}
	if s.U2 >= math.Pow(buy, 1-f.CartShare) {
		return pricing.Cart
	}
	return pricing.Purchase
}

package pricing

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Limits bound what shoppers' events can do to a product's price. A
// guardrail (Guardrails) bounds what a strategy may answer; a limit bounds
// how hard the stream may push: an ingest key is all it takes to send
// events, and a shop's own tracking can go wrong (a purchase sent with
// quantity 10,000, a scraper quoting a competitor at a million).
//
// Zero values mean "the catalog default" (Config.Limits), so that a product
// needs to say nothing to be protected by the shop-wide setting.
type Limits struct {
	// MaxQuantity is the largest quantity one view, cart or purchase may
	// carry; an event above it is rejected with a reason (a 400 entry in
	// serve, a dead letter in scale-out), never clamped, so the shop sees
	// it and nothing is silently changed.
	MaxQuantity int32 `json:"max_quantity,omitempty"`
	// MaxMovePct and MoveWindow are the price-velocity circuit breaker: a
	// dynamic price that would move more than MaxMovePct percent away from
	// the price at the start of the window (up, or down by the same
	// factor: +100% and -50% are one limit) is not published. The product
	// is held at its last price until an operator releases it or the
	// window passes; then the window starts again from the held price, so
	// a price that is still too far trips it again. 0 turns it off.
	MaxMovePct float64  `json:"max_move_pct,omitempty"`
	MoveWindow Duration `json:"move_window,omitempty"`
}

// Bounds of the limits' values.
const (
	// MaxQuantityLimit is the largest max_quantity (the decoder's own
	// bound on any quantity).
	MaxQuantityLimit = 10_000
	// MaxMoveWindow is the longest move window.
	MaxMoveWindow = 30 * 24 * time.Hour
	// DefaultMaxQuantity is the built-in catalog default: no shopper's
	// view, cart or purchase counts more than a hundred units.
	DefaultMaxQuantity = 100
	// DefaultMoveWindow is the window a breaker uses when it is turned on
	// without one.
	DefaultMoveWindow = 15 * time.Minute
)

// DefaultLimits are the built-in catalog defaults: a quantity cap, and no
// breaker, since the original's formula (which dynaprice keeps as the seed
// strategy) prices demand without bound and a breaker on by default would
// hold prices its users expect to move. docs/DEPLOY.md recommends turning
// it on.
func DefaultLimits() Limits {
	return Limits{MaxQuantity: DefaultMaxQuantity, MoveWindow: Duration(DefaultMoveWindow)}
}

// validate checks the values a product or the catalog gives.
func (l Limits) validate() error {
	if l.MaxQuantity < 0 || l.MaxQuantity > MaxQuantityLimit {
		return fmt.Errorf("max_quantity must be between 0 (the catalog default) and %d", MaxQuantityLimit)
	}
	if !(l.MaxMovePct >= 0) || l.MaxMovePct > 1e6 {
		return errors.New("max_move_pct must be a number between 0 (the catalog default) and 1000000")
	}
	if l.MoveWindow < 0 || time.Duration(l.MoveWindow) > MaxMoveWindow {
		return fmt.Errorf("move_window must be between 0 (the catalog default) and %s", MaxMoveWindow)
	}
	return nil
}

// Or returns l with each zero value taken from def.
func (l Limits) Or(def Limits) Limits {
	if l.MaxQuantity == 0 {
		l.MaxQuantity = def.MaxQuantity
	}
	if l.MaxMovePct == 0 {
		l.MaxMovePct = def.MaxMovePct
	}
	if l.MoveWindow == 0 {
		l.MoveWindow = def.MoveWindow
	}
	return l
}

// Duration is a time.Duration written in JSON as Go writes durations
// ("15m", "1h30m"), which people can read, rather than as nanoseconds.
type Duration time.Duration

// MarshalJSON writes d as a string such as "15m0s".
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

// UnmarshalJSON reads a duration string ("15m").
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return errors.New(`a duration must be a string such as "15m" or "1h"`)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("duration %q: want a string such as \"15m\" or \"1h\"", s)
	}
	*d = Duration(v)
	return nil
}

// Brake is what the price-velocity breaker remembers of a product. The
// zero value means "no window yet": the next dynamic price starts one.
type Brake struct {
	// Anchor is the price moves are measured from: the published price
	// when the window started, at Since (unix ns).
	Anchor float64 `json:"anchor"`
	Since  int64   `json:"since"`
	// Held is when the breaker tripped (unix ns; 0: not held), and Wanted
	// the latest dynamic price it kept from being published.
	Held   int64   `json:"held,omitempty"`
	Wanted float64 `json:"wanted,omitempty"`
}

// brake runs the breaker of product i on the dynamic price cand (source
// src) at now and returns what to publish. It is called only while no
// override is active: an operator's price is never held.
func (b *Book) brake(i int, cand float64, src Source, now int64) (float64, Source) {
	s, g := &b.states[i], b.guards[i]
	br := &s.Brake
	if br.Since == 0 || s.Version == 0 {
		// A new window after an operator's change (or the first price):
		// what the operator's action led to is the anchor.
		*br = Brake{Anchor: cand, Since: now}
		return cand, src
	}
	if now-br.Since >= g.window {
		// The window passed: a new one starts from what shoppers see now,
		// and a held product is released (a price still too far trips it
		// again below).
		*br = Brake{Anchor: s.Price, Since: now}
	}
	if br.Held == 0 && !tooFar(cand, br.Anchor, g.movePct) {
		return cand, src
	}
	if br.Held == 0 {
		br.Held = now
		b.trips++
		if len(b.tripped) < maxTripped {
			b.tripped = append(b.tripped, i)
		}
	}
	br.Wanted = cand
	return s.Price, s.Source
}

// tooFar reports whether p is more than pct percent away from anchor: above
// anchor*(1+pct/100) or below anchor/(1+pct/100), so that a rise and the
// fall that undoes it are the same move.
func tooFar(p, anchor, pct float64) bool {
	f := 1 + pct/100
	return p > anchor*f+1e-9 || p < anchor/f-1e-9
}

// Release lets product i's held price go: the breaker starts a new window
// from the price the strategy wants now, which is published. It reports
// whether the product was held and whether its published price changed.
func (b *Book) Release(i int, now int64) (held, changed bool) {
	s := &b.states[i]
	if s.Brake.Held == 0 {
		return false, false
	}
	s.Brake = Brake{}
	return true, b.reprice(i, now)
}

// Held reports whether product i's price is held by the breaker.
func (b *Book) Held(i int) bool { return b.states[i].Brake.Held != 0 }

// maxTripped bounds the products Tripped names: a flood that trips many
// breakers at once is counted in full, but named only in part.
const maxTripped = 100

// Tripped returns how many breakers tripped since the last call and the
// first of those products (at most 100), and forgets them. The slice is
// valid until the Book next changes.
func (b *Book) Tripped() (n int, some []int) {
	n, some = b.trips, b.tripped
	b.trips, b.tripped = 0, b.tripped[:0]
	return n, some
}

// MaxQuantity is the largest quantity one of product i's views, carts or
// purchases may carry.
func (b *Book) MaxQuantity(i int) int32 { return b.guards[i].maxQty }

// breakerOn reports whether a product's effective limits turn the breaker on.
func (l Limits) breakerOn() bool {
	return l.MaxMovePct > 0 && l.MoveWindow > 0 // false for NaN too
}

package pricing

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// LearnPolicy bounds what a learning strategy (thompson) may do to a
// product's price. A learner experiments on real shoppers, so what it may
// try is the merchant's call, not the algorithm's: the policy keeps every
// experiment within prices the merchant would charge anyway, forgets what
// no longer describes the market, and stops experimenting when the
// purchase signal it learns from stops.
//
// Zero values mean "the catalog default" (Config.Learning, then
// DefaultLearnPolicy), as for Limits, so a product needs to say nothing to
// be priced safely.
type LearnPolicy struct {
	// BandLow and BandHigh are the price band, as multiples of the base
	// (list) price: learning never shows a price outside
	// [BandLow × base, BandHigh × base]. Rungs of the strategy's ladder
	// outside the band are never chosen.
	BandLow  float64 `json:"band_low,omitempty"`
	BandHigh float64 `json:"band_high,omitempty"`
	// HalfLife is how fast what was learned is forgotten, in event time:
	// a view or purchase counts half as much HalfLife after it happened,
	// so the learner follows a market that moves.
	HalfLife Duration `json:"half_life,omitempty"`
	// MaxChangesPerHour caps how often learning moves the price: at least
	// an hour / MaxChangesPerHour of event time passes between two moves,
	// and the current price is kept in between.
	MaxChangesPerHour int `json:"max_changes_per_hour,omitempty"`
	// Objective is what the learner maximises per view: "revenue" (price ×
	// purchase probability) or "margin" ((price − unit_cost) × purchase
	// probability; revenue for a product without unit_cost).
	Objective string `json:"objective,omitempty"`
}

// Defaults of the learning policy.
const (
	// DefaultBandLow and DefaultBandHigh: 20% below to 30% above the list
	// price, what a merchant would accept without being asked. 20% off is
	// the depth of an ordinary promotion, which merchants run anyway;
	// deeper gives away margin nobody agreed to (and can sell below cost
	// where no unit_cost is set). Up to 30% above list is what an item in
	// demand or a peak season bears; a price at twice the list price,
	// which the unbounded ladder showed to 3–9% of shoppers, reads as an
	// error or as gouging, and shoppers who meet it do not come back.
	DefaultBandLow  = 0.8
	DefaultBandHigh = 1.3
	// DefaultLearnHalfLife is a week: a weekly cycle (weekend against
	// weekday shoppers) is averaged over, while a market that has moved
	// for a fortnight outweighs what came before by three to one.
	DefaultLearnHalfLife = 7 * 24 * time.Hour
	// DefaultMaxChangesPerHour is 4: a price stays at least 15 minutes,
	// long enough for a shopper to browse, compare and come back to the
	// same price, and few enough changes for a merchant to audit.
	DefaultMaxChangesPerHour = 4
	// ObjectiveRevenue and ObjectiveMargin are the objectives.
	ObjectiveRevenue = "revenue"
	ObjectiveMargin  = "margin"
)

// Bounds of the policy's values.
const (
	// MaxBandHigh is the widest band upwards: ten times the list price.
	MaxBandHigh = 10.0
	// MinLearnHalfLife and MaxLearnHalfLife bound the half-life: a minute
	// would forget every purchase before the next, a year is "never".
	MinLearnHalfLife = time.Minute
	MaxLearnHalfLife = 365 * 24 * time.Hour
	// MaxChangesPerHourLimit is once a second.
	MaxChangesPerHourLimit = 3600
)

// DefaultLearnPolicy is the built-in catalog default: the band 0.8–1.3 ×
// list, a half-life of a week, at most 4 price changes an hour, revenue.
func DefaultLearnPolicy() LearnPolicy {
	return LearnPolicy{BandLow: DefaultBandLow, BandHigh: DefaultBandHigh, HalfLife: Duration(DefaultLearnHalfLife),
		MaxChangesPerHour: DefaultMaxChangesPerHour, Objective: ObjectiveRevenue}
}

// Validate checks the values a product or the catalog gives (0 or "":
// the default).
func (p *LearnPolicy) Validate() error {
	if p == nil {
		return nil
	}
	if !(p.BandLow >= 0 && p.BandLow <= 1) {
		return errors.New("band_low must be a multiple of the base price between 0 (the default) and 1")
	}
	if !(p.BandHigh == 0 || p.BandHigh >= 1 && p.BandHigh <= MaxBandHigh) {
		return fmt.Errorf("band_high must be 0 (the default) or a multiple of the base price between 1 and %v", MaxBandHigh)
	}
	if h := time.Duration(p.HalfLife); h != 0 && (h < MinLearnHalfLife || h > MaxLearnHalfLife) {
		return fmt.Errorf("half_life must be 0 (the default) or between %s and %s", MinLearnHalfLife, MaxLearnHalfLife)
	}
	if p.MaxChangesPerHour < 0 || p.MaxChangesPerHour > MaxChangesPerHourLimit {
		return fmt.Errorf("max_changes_per_hour must be between 0 (the default) and %d", MaxChangesPerHourLimit)
	}
	switch p.Objective {
	case "", ObjectiveRevenue, ObjectiveMargin:
	default:
		return fmt.Errorf("objective %q: want %q or %q", p.Objective, ObjectiveRevenue, ObjectiveMargin)
	}
	return nil
}

// Or returns p with each zero value taken from def (a nil p is all zero).
func (p *LearnPolicy) Or(def LearnPolicy) LearnPolicy {
	var l LearnPolicy
	if p != nil {
		l = *p
	}
	if l.BandLow == 0 {
		l.BandLow = def.BandLow
	}
	if l.BandHigh == 0 {
		l.BandHigh = def.BandHigh
	}
	if l.HalfLife == 0 {
		l.HalfLife = def.HalfLife
	}
	if l.MaxChangesPerHour == 0 {
		l.MaxChangesPerHour = def.MaxChangesPerHour
	}
	if l.Objective == "" {
		l.Objective = def.Objective
	}
	return l
}

// learnRules are a product's effective learning policy, parsed for the
// hot path.
type learnRules struct {
	// lo and hi are the band as multiples of the base price.
	lo, hi float64
	// halfLife and gap (the least time between two moves) in ns.
	halfLife, gap int64
	margin        bool
}

// parseLearnRules resolves a product's policy against the catalog's
// defaults def and the built-in ones.
func parseLearnRules(p *LearnPolicy, def LearnPolicy) learnRules {
	l := p.Or(def.Or(DefaultLearnPolicy()))
	return learnRules{lo: l.BandLow, hi: l.BandHigh, halfLife: int64(l.HalfLife),
		gap: int64(time.Hour) / int64(l.MaxChangesPerHour), margin: l.Objective == ObjectiveMargin}
}

// inBand reports whether the multiple m of the base price is in the band
// (with a rounding margin, so a rung written as 1.3 is in a band to 1.3).
func (r *learnRules) inBand(m float64) bool { return m >= r.lo-1e-9 && m <= r.hi+1e-9 }

// clamp bounds the multiple m to the band.
func (r *learnRules) clamp(m float64) float64 { return math.Min(r.hi, math.Max(r.lo, m)) }

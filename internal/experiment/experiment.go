// Package experiment is the pure core of price experiments: what an
// experiment is (products, arms, how traffic is split, when it runs), which
// arm a shopper or product is assigned to, what each arm has earned, and
// the readout that says whether an arm beats the control.
//
// It does no I/O and keeps no clock or randomness of its own: times are
// unix nanoseconds given by the caller, assignment is a hash of the
// experiment's salt and an id, and accumulators are plain sums that add up
// (so a store can persist deltas exactly once with the events that fed
// them). The same code runs in `serve` and in the simulator.
//
// The readout's test is a mixture sequential probability ratio test
// (mSPRT, Johari, Koomen, Pekelis and Walsh, "Always Valid Inference:
// Continuous Monitoring of A/B Tests", Operations Research 2022), so an
// operator may look at the readout as often as they like: the chance that
// any look ever declares a difference between two arms that are the same
// stays at most Alpha (see stats.go).
package experiment

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"unicode/utf8"
)

// Split says what is assigned to an arm.
type Split string

const (
	// ByShopper assigns each shopper (the events' user_id) to an arm,
	// the same arm for every product of the experiment and for the
	// whole experiment: a shopper never sees two prices for one product.
	ByShopper Split = "shopper"
	// ByProduct assigns each product to an arm: every shopper sees the
	// product at its arm's price. It needs no shopper id but many
	// products, and compares different products, so its readout is only
	// as fair as the products are alike.
	ByProduct Split = "product"
)

// ArmKind says how an arm prices.
type ArmKind string

const (
	// Control prices at the catalog's list price (the product's base
	// price), unchanged: the baseline other arms are compared with.
	Control ArmKind = "control"
	// Fixed prices at the arm's Price.
	Fixed ArmKind = "fixed"
	// Live prices at the engine's own price for the product: its
	// strategy, learning from all of the product's traffic. Against a
	// Control arm it is a holdout test of dynamic pricing itself.
	Live ArmKind = "live"
	// Strategy prices with the named pricing strategy, learning from
	// its own arm's traffic only.
	Strategy ArmKind = "strategy"
)

// Metric is what the sequential test compares between arms.
type Metric string

const (
	// Revenue is revenue per visitor (per view): the default, since a
	// price that converts more but earns less is not a winner.
	Revenue Metric = "revenue"
	// Profit is profit per visitor: revenue less unit cost times units.
	Profit Metric = "profit"
	// Conversion is purchases per visitor.
	Conversion Metric = "conversion"
)

// Arm is one way of pricing the experiment's products.
type Arm struct {
	Name string  `json:"name"`
	Kind ArmKind `json:"kind"`
	// Price is a Fixed arm's price (and nothing else's).
	Price float64 `json:"price,omitempty"`
	// Strategy is a Strategy arm's strategy name (and nothing else's).
	Strategy string `json:"strategy,omitempty"`
	// Weight is the arm's share of traffic relative to the other arms'
	// (0 means 1: an even split).
	Weight float64 `json:"weight,omitempty"`
}

// Definition is an experiment as an operator creates it.
type Definition struct {
	ID       string   `json:"id"`
	Name     string   `json:"name,omitempty"`
	Products []string `json:"products"`
	// Arms; the first is the baseline every other arm is compared with
	// (usually a Control arm, but any arm may be the baseline).
	Arms  []Arm `json:"arms"`
	Split Split `json:"split"`
	// Salt is hashed with each shopper or product id to assign arms.
	// Two experiments with different salts assign independently; the
	// same salt gives the same assignment (empty: the ID).
	Salt string `json:"salt,omitempty"`
	// Start and End bound when the experiment runs, in unix
	// nanoseconds; End 0 runs until stopped.
	Start int64 `json:"start"`
	End   int64 `json:"end,omitempty"`
	// Metric is what the test compares (empty: Revenue).
	Metric Metric `json:"metric,omitempty"`
	// Alpha is the nominal level: the largest chance, over the whole
	// experiment however often it is looked at, of declaring a winner
	// when no arm differs from the baseline (0: 0.05).
	Alpha float64 `json:"alpha,omitempty"`
}

// Limits bounds what a client may create. Every field must be positive.
type Limits struct {
	MaxArms     int
	MaxProducts int
	// MaxActive bounds the experiments not yet ended (running or
	// scheduled); MaxKept the experiments kept at all, ended ones
	// included (the oldest ended are not deleted for it: creating one
	// more is refused).
	MaxActive int
	MaxKept   int
	// MaxIDLen bounds ids, names, salts and strategy names, in bytes.
	MaxIDLen int
}

// DefaultLimits are generous for real experiments and small enough that
// one experiment costs the engine little.
func DefaultLimits() Limits {
	return Limits{MaxArms: 8, MaxProducts: 1000, MaxActive: 50, MaxKept: 1000, MaxIDLen: 128}
}

// Defaults for the zero values of a Definition.
const (
	DefaultAlpha  = 0.05
	DefaultMetric = Revenue
)

// ErrInvalid wraps every validation error, so callers map it to one
// status (400) without parsing messages.
var ErrInvalid = errors.New("invalid experiment")

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// Normalize fills the defaults of zero fields: Salt (the ID), Metric,
// Alpha and arm weights. It is idempotent.
func (d *Definition) Normalize() {
	if d.Salt == "" {
		d.Salt = d.ID
	}
	if d.Metric == "" {
		d.Metric = DefaultMetric
	}
	if d.Alpha == 0 {
		d.Alpha = DefaultAlpha
	}
	for i := range d.Arms {
		if d.Arms[i].Weight == 0 {
			d.Arms[i].Weight = 1
		}
	}
}

// Validate checks a normalized definition against the limits. checkPrice
// checks a fixed arm's price (the engine's pricing.CheckPrice) and
// knownStrategy a strategy name; either may be nil to skip the check.
// Whether the products exist and whether they are in another running
// experiment is the caller's to check: it knows the catalog.
func (d *Definition) Validate(l Limits, checkPrice func(float64) error, knownStrategy func(string) bool) error {
	if err := checkID("id", d.ID, l); err != nil {
		return err
	}
	if len(d.Name) > l.MaxIDLen || !utf8.ValidString(d.Name) {
		return invalid("name: at most %d bytes of UTF-8", l.MaxIDLen)
	}
	if len(d.Salt) > l.MaxIDLen || !utf8.ValidString(d.Salt) {
		return invalid("salt: at most %d bytes of UTF-8", l.MaxIDLen)
	}
	switch d.Split {
	case ByShopper, ByProduct:
	default:
		return invalid("split %q: want %q or %q", d.Split, ByShopper, ByProduct)
	}
	switch d.Metric {
	case Revenue, Profit, Conversion:
	default:
		return invalid("metric %q: want %q, %q or %q", d.Metric, Revenue, Profit, Conversion)
	}
	if !(d.Alpha > 0 && d.Alpha <= 0.2) {
		return invalid("alpha %v: want more than 0 and at most 0.2", d.Alpha)
	}
	if d.Start <= 0 {
		return invalid("start: want a time (unix nanoseconds)")
	}
	if d.End != 0 && d.End <= d.Start {
		return invalid("end must be after start")
	}
	if len(d.Products) == 0 || len(d.Products) > l.MaxProducts {
		return invalid("products: want 1 to %d, got %d", l.MaxProducts, len(d.Products))
	}
	seen := make(map[string]bool, len(d.Products))
	for _, p := range d.Products {
		if err := checkID("product", p, l); err != nil {
			return err
		}
		if seen[p] {
			return invalid("product %q listed twice", p)
		}
		seen[p] = true
	}
	if len(d.Arms) < 2 || len(d.Arms) > l.MaxArms {
		return invalid("arms: want 2 to %d, got %d", l.MaxArms, len(d.Arms))
	}
	if d.Split == ByProduct && len(d.Products) < len(d.Arms) {
		return invalid("split by product needs at least one product per arm (%d products, %d arms)", len(d.Products), len(d.Arms))
	}
	names := make(map[string]bool, len(d.Arms))
	for i, a := range d.Arms {
		if err := checkID(fmt.Sprintf("arms[%d].name", i), a.Name, l); err != nil {
			return err
		}
		if names[a.Name] {
			return invalid("arm name %q used twice", a.Name)
		}
		names[a.Name] = true
		if !(a.Weight > 0 && a.Weight <= 1000) {
			return invalid("arm %q: weight %v: want more than 0 and at most 1000", a.Name, a.Weight)
		}
		switch a.Kind {
		case Control, Live:
			if a.Price != 0 || a.Strategy != "" {
				return invalid("arm %q: a %s arm takes no price or strategy", a.Name, a.Kind)
			}
		case Fixed:
			if a.Strategy != "" {
				return invalid("arm %q: a fixed arm takes no strategy", a.Name)
			}
			if checkPrice != nil {
				if err := checkPrice(a.Price); err != nil {
					return invalid("arm %q: price: %v", a.Name, err)
				}
			} else if !(a.Price > 0) || math.IsInf(a.Price, 0) {
				return invalid("arm %q: price %v: want a positive price", a.Name, a.Price)
			}
		case Strategy:
			if a.Price != 0 {
				return invalid("arm %q: a strategy arm takes no price", a.Name)
			}
			if a.Strategy == "" || len(a.Strategy) > l.MaxIDLen {
				return invalid("arm %q: strategy: want a strategy name", a.Name)
			}
			if knownStrategy != nil && !knownStrategy(a.Strategy) {
				return invalid("arm %q: unknown strategy %q", a.Name, a.Strategy)
			}
		default:
			return invalid("arm %q: kind %q: want %q, %q, %q or %q", a.Name, a.Kind, Control, Fixed, Live, Strategy)
		}
	}
	return nil
}

// checkID checks an id: 1 to MaxIDLen bytes of printable UTF-8.
func checkID(what, s string, l Limits) error {
	if s == "" || len(s) > l.MaxIDLen || !utf8.ValidString(s) || strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return invalid("%s %q: want 1 to %d bytes of printable UTF-8", what, s, l.MaxIDLen)
	}
	return nil
}

// Running reports whether the experiment runs at now (unix ns): started
// and not ended. A stopped experiment's End is when it was stopped.
func (d *Definition) Running(now int64) bool {
	return now >= d.Start && (d.End == 0 || now < d.End)
}

// Overlaps reports whether two experiments share a product and a moment:
// a product may be in one running experiment at a time, or a shopper could
// be assigned two prices for it.
func Overlaps(a, b *Definition) bool {
	if a.End != 0 && a.End <= b.Start || b.End != 0 && b.End <= a.Start {
		return false
	}
	in := make(map[string]bool, len(a.Products))
	for _, p := range a.Products {
		in[p] = true
	}
	for _, p := range b.Products {
		if in[p] {
			return true
		}
	}
	return false
}

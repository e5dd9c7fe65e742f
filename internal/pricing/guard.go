package pricing

import "math"

// Guard flags record which guardrails changed a price.
type Guard uint8

// Guardrails, in the order they apply.
const (
	GuardMaxChange Guard = 1 << iota
	GuardFloor
	GuardCeiling
	GuardRounding
	GuardMargin
)

// Trace records each stage of a dynamic price so it can explain itself
// later without the hot path building strings.
type Trace struct {
	Raw       float64 `json:"raw"`       // strategy output
	Limited   float64 `json:"limited"`   // after max change
	Bounded   float64 `json:"bounded"`   // after floor/ceiling
	Final     float64 `json:"final"`     // after rounding
	Reference float64 `json:"reference"` // previous dynamic price max change was measured from
	Applied   Guard   `json:"applied"`   // guardrails that changed the price
}

// guardrails are a product's parsed Guardrails.
type guardrails struct {
	floor, ceiling, maxChange float64
	// margin is the margin floor (unit cost plus the minimum margin).
	margin float64
	round  Rounding
	// The effective limits (the product's, else the catalog's): the
	// quantity cap, and the breaker's move (percent; 0: off) and window.
	maxQty  int32
	movePct float64
	window  int64
	// learn is the effective learning policy (the product's, else the
	// catalog's, else the built-in one).
	learn learnRules
}

// parseGuardrails parses p's guardrails, and its limits and learning
// policy with the catalog's defaults in cfg.
func parseGuardrails(p Product, cfg *Config) guardrails {
	g := p.Guardrails
	r, err := ParseRounding(g.Rounding)
	if err != nil {
		r = Rounding{Step: 0.01}
	}
	gr := guardrails{floor: g.Floor, ceiling: g.Ceiling, maxChange: g.MaxChangePct, margin: p.MarginFloor(), round: r}
	l := p.Limits.Or(cfg.Limits)
	gr.maxQty = l.MaxQuantity
	if l.breakerOn() {
		gr.movePct, gr.window = l.MaxMovePct, int64(l.MoveWindow)
	}
	gr.learn = parseLearnRules(p.Learning, cfg.Learning)
	return gr
}

// apply runs the guardrails, in order: maximum change (relative to ref, the
// previous dynamic price), then floor, margin floor and ceiling (hard
// limits that beat the change limit), then rounding (which stays inside
// them). Validation keeps the margin floor below the ceiling.
func (g *guardrails) apply(raw, ref float64) Trace {
	t := Trace{Raw: raw, Reference: ref}
	p := raw
	if g.maxChange > 0 && ref > 0 {
		lo, hi := ref*(1-g.maxChange/100), ref*(1+g.maxChange/100)
		if p < lo {
			p = lo
		} else if p > hi {
			p = hi
		}
		if p != raw {
			t.Applied |= GuardMaxChange
		}
	}
	t.Limited = p
	if g.floor > 0 && p < g.floor {
		p, t.Applied = g.floor, t.Applied|GuardFloor
	}
	if g.margin > 0 && p < g.margin {
		p, t.Applied = g.margin, t.Applied|GuardMargin
	}
	if g.ceiling > 0 && p > g.ceiling {
		p, t.Applied = g.ceiling, t.Applied|GuardCeiling
	}
	t.Bounded = p
	t.Final = g.round.apply(p, math.Max(g.floor, g.margin), g.ceiling)
	if math.Abs(t.Final-p) > 1e-9 {
		t.Applied |= GuardRounding
	}
	return t
}

// apply rounds p, keeping the result within [floor, ceiling] where those
// are set (0 = unset) and an in-range ending exists.
func (r Rounding) apply(p, floor, ceiling float64) float64 {
	if !r.HasEnding {
		step := r.Step
		if step <= 0 {
			step = 0.01
		}
		v := math.Round(p/step) * step
		if floor > 0 && v < floor {
			v = math.Ceil(floor/step-1e-9) * step
		}
		if ceiling > 0 && v > ceiling {
			v = math.Floor(ceiling/step+1e-9) * step
		}
		if v < 0.01 && step > 0.01 {
			// No whole step fits below the ceiling: round to cents.
			return Rounding{Step: 0.01}.apply(p, floor, ceiling)
		}
		return RoundCents(v)
	}
	// Candidates k+e and k+1+e around p; take the nearest (ties go up).
	lower := math.Floor(p-r.Ending) + r.Ending
	upper := lower + 1
	v := upper
	if p-lower < upper-p {
		v = lower
	}
	if floor > 0 && v < floor-1e-9 {
		v++
	}
	if ceiling > 0 && v > ceiling+1e-9 {
		v--
	}
	if (floor > 0 && v < floor-1e-9) || v <= 0 {
		// No ending fits between floor and ceiling: fall back to cents.
		return Rounding{Step: 0.01}.apply(p, floor, ceiling)
	}
	return RoundCents(v)
}

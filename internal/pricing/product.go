package pricing

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// MaxIDLen is the longest accepted product id.
const MaxIDLen = 64

// ValidID reports whether id matches [A-Za-z0-9_-]{1,64}.
func ValidID(id string) bool {
	if len(id) == 0 || len(id) > MaxIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

// Product is one catalog entry: its base price and how it is priced.
//
// The base price comes only from the catalog, never from events: an event's
// price is what one client claims it saw, and letting it move the base would
// let any ingest client (or a stale cache in a shop) reprice a product.
type Product struct {
	ID        string  `json:"product_id"`
	Name      string  `json:"name,omitempty"`
	BasePrice float64 `json:"base_price"`
	// Strategy names the pricing strategy; empty means the catalog default.
	Strategy string `json:"strategy,omitempty"`
	// UnitCost is what one unit costs the shop; with it, no price goes
	// below cost plus MinMarginPct (the margin floor guardrail).
	UnitCost float64 `json:"unit_cost,omitempty"`
	Guardrails
	Limits
	// Inventory is the product's selling plan, for the inventory strategy
	// and the inventory-aware thompson.
	Inventory *InventoryPlan `json:"inventory,omitempty"`
	// Competition is how the competitor strategy positions the product
	// against competitors' prices.
	Competition *CompetitorRule `json:"competitor,omitempty"`
	// Learning bounds what a learning strategy (thompson) may do to the
	// product's price; nil, or a zero field, takes the catalog default.
	Learning *LearnPolicy `json:"learning,omitempty"`
}

// Guardrails bound what a strategy may do to a product's price. Zero values
// mean "no limit".
type Guardrails struct {
	Floor   float64 `json:"floor,omitempty"`
	Ceiling float64 `json:"ceiling,omitempty"`
	// MaxChangePct limits one update's move, in percent of the previous
	// dynamic price.
	MaxChangePct float64 `json:"max_change_pct,omitempty"`
	// Rounding is "cents" (the default), "whole", or a price ending such as
	// ".99" or "0.95".
	Rounding string `json:"rounding,omitempty"`
	// MinMarginPct is the least margin over UnitCost, in percent of the
	// cost; it applies only when UnitCost is set (then 0 means "never
	// below cost").
	MinMarginPct float64 `json:"min_margin_pct,omitempty"`
}

// MarginFloor is the lowest price the margin floor allows (0: none).
func (p Product) MarginFloor() float64 {
	if p.UnitCost <= 0 {
		return 0
	}
	return p.UnitCost * (1 + p.MinMarginPct/100)
}

// MaxPrice is the largest price dynaprice takes anywhere (a base price, an
// override, a guardrail, a unit cost, the price a shopper saw, a
// competitor's): a billion in the catalog's currency. Bounding every price
// that enters keeps every price it computes finite, so no input can make a
// state that cannot be stored.
const MaxPrice = 1e9

// CheckPrice checks a price that enters dynaprice: finite, at least one
// cent once rounded to cents, and at most MaxPrice. name is the field's
// name in the error.
func CheckPrice(name string, v float64) error {
	if !positive(v) || v > MaxPrice {
		return fmt.Errorf("%s must be a finite number > 0 and at most %s", name, ftoa(MaxPrice))
	}
	if r := RoundCents(v); r < 0.01 {
		return fmt.Errorf("%s must be at least 0.01 once rounded to cents; %v rounds to %v", name, v, r)
	}
	return nil
}

// Validate checks a product on its own (strategy names are checked by the
// Book, which knows them).
func (p Product) Validate() error {
	if !ValidID(p.ID) {
		return fmt.Errorf("product_id %q must match [A-Za-z0-9_-]{1,64}", p.ID)
	}
	if err := CheckPrice("base_price", p.BasePrice); err != nil {
		return err
	}
	g := p.Guardrails
	for _, f := range []struct {
		name string
		v    float64
	}{{"floor", g.Floor}, {"ceiling", g.Ceiling}, {"max_change_pct", g.MaxChangePct},
		{"unit_cost", p.UnitCost}, {"min_margin_pct", g.MinMarginPct}} {
		if f.v < 0 || math.IsNaN(f.v) || f.v > MaxPrice {
			return fmt.Errorf("%s must be a finite number >= 0 and at most %s", f.name, ftoa(MaxPrice))
		}
	}
	// A floor or a ceiling is a price, when set: a ceiling below a cent
	// made every price of the product 0 once rounded.
	for _, f := range []struct {
		name string
		v    float64
	}{{"floor", g.Floor}, {"ceiling", g.Ceiling}} {
		if f.v > 0 && f.v < 0.01 {
			return fmt.Errorf("%s must be 0 (none) or at least 0.01", f.name)
		}
	}
	if g.Floor > 0 && g.Ceiling > 0 && g.Floor > g.Ceiling {
		return errors.New("floor must not exceed ceiling")
	}
	if mf := p.MarginFloor(); mf > 0 && g.Ceiling > 0 && mf > g.Ceiling {
		return fmt.Errorf("unit_cost with min_margin_pct allows no price below %s, above the ceiling %s", ftoa(RoundCents(mf)), ftoa(g.Ceiling))
	}
	if _, err := ParseRounding(g.Rounding); err != nil {
		return err
	}
	if err := p.Limits.validate(); err != nil {
		return err
	}
	if err := p.Inventory.validate(); err != nil {
		return fmt.Errorf("inventory: %w", err)
	}
	if err := p.Competition.validate(); err != nil {
		return fmt.Errorf("competitor: %w", err)
	}
	if err := p.Learning.Validate(); err != nil {
		return fmt.Errorf("learning: %w", err)
	}
	return nil
}

func positive(v float64) bool { return v > 0 && !math.IsInf(v, 0) && !math.IsNaN(v) }

// Rounding is a parsed rounding rule.
type Rounding struct {
	// Step is the rounding unit for plain rounding (0.01 or 1).
	Step float64
	// Ending, when HasEnding, is the fractional part every price ends in.
	Ending    float64
	HasEnding bool
}

// ParseRounding parses the Guardrails.Rounding syntax.
func ParseRounding(s string) (Rounding, error) {
	switch strings.TrimSpace(s) {
	case "", "cents":
		return Rounding{Step: 0.01}, nil
	case "whole":
		return Rounding{Step: 1}, nil
	}
	t := strings.TrimSpace(s)
	if strings.HasPrefix(t, ".") {
		t = "0" + t
	}
	v, err := strconv.ParseFloat(t, 64)
	if err != nil || v < 0 || v >= 1 || !strings.HasPrefix(t, "0.") || len(t) > 4 {
		return Rounding{}, fmt.Errorf("rounding %q: want \"cents\", \"whole\" or an ending such as \".99\"", s)
	}
	return Rounding{Step: 0.01, Ending: RoundCents(v), HasEnding: true}, nil
}

// Round rounds v to decimals places. It is the one rounding rule of
// dynaprice: prices are kept and shown in cents (RoundCents), demand is
// shown with four decimals.
func Round(v float64, decimals int) float64 {
	p := math.Pow10(decimals)
	return math.Round(v*p) / p
}

// RoundCents rounds a price to cents: Round(v, 2), spelled out because it
// runs for every priced event and a constant factor keeps it inlined.
func RoundCents(v float64) float64 { return math.Round(v*100) / 100 }

// DemandDecimals is how many decimals of demand are published.
const DemandDecimals = 4

func ftoa(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

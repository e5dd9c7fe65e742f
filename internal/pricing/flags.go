package pricing

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ParseWeights parses demand weights written as view=N,cart=N,purchase=N,
// as the --weights flag takes them.
func ParseWeights(s string) (Weights, error) {
	w := Weights{}
	seen := map[string]bool{}
	for _, f := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(f), "=")
		x, err := strconv.ParseFloat(v, 64)
		if !ok || err != nil || x < 0 {
			return w, fmt.Errorf("--weights %q: want view=N,cart=N,purchase=N with N >= 0", s)
		}
		switch k {
		case "view":
			w.View = x
		case "cart":
			w.Cart = x
		case "purchase":
			w.Purchase = x
		default:
			return w, fmt.Errorf("--weights: unknown event type %q", k)
		}
		seen[k] = true
	}
	if len(seen) != 3 {
		return w, fmt.Errorf("--weights %q: give all of view, cart and purchase", s)
	}
	return w, nil
}

// ConfigFrom returns the default configuration with the demand weights
// (ParseWeights) and half-life that the command line gives.
func ConfigFrom(weights string, halfLife time.Duration) (Config, error) {
	pc := DefaultConfig()
	w, err := ParseWeights(weights)
	if err != nil {
		return pc, err
	}
	pc.Weights, pc.HalfLife = w, halfLife
	return pc, pc.Validate()
}

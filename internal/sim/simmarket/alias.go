package simmarket

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
)

// Alias is Walker/Vose's alias table: after O(n) setup it draws an index
// with probability proportional to its weight in O(1) from one uniform,
// which is what keeps product choice cheap with 10,000+ products.
type Alias struct {
	prob  []float64
	alias []int32
}

// NewAlias builds a table for non-negative weights with a positive sum.
func NewAlias(weights []float64) (*Alias, error) {
	n := len(weights)
	if n == 0 {
		return nil, errors.New("alias: no weights")
	}
	sum := 0.0
	for i, w := range weights {
		if !(w >= 0) || math.IsInf(w, 0) {
			return nil, fmt.Errorf("alias: weight %d is %v", i, w)
		}
		sum += w
	}
	if !(sum > 0) {
		return nil, errors.New("alias: weights sum to zero")
	}
	a := &Alias{prob: make([]float64, n), alias: make([]int32, n)}
	scaled := make([]float64, n)
	small, large := make([]int32, 0, n), make([]int32, 0, n)
	for i, w := range weights {
		scaled[i] = w * float64(n) / sum
		if scaled[i] < 1 {
			small = append(small, int32(i))
		} else {
			large = append(large, int32(i))
		}
	}
	for len(small) > 0 && len(large) > 0 {
		s, l := small[len(small)-1], large[len(large)-1]
		small = small[:len(small)-1]
		a.prob[s], a.alias[s] = scaled[s], l
		scaled[l] -= 1 - scaled[s]
		if scaled[l] < 1 {
			large = large[:len(large)-1]
			small = append(small, l)
		}
	}
	// Leftovers are 1 up to rounding error.
	for _, i := range large {
		a.prob[i], a.alias[i] = 1, i
	}
	for _, i := range small {
		a.prob[i], a.alias[i] = 1, i
	}
	return a, nil
}

// Len is the number of outcomes.
func (a *Alias) Len() int { return len(a.prob) }

// Draw returns an index with probability proportional to its weight.
func (a *Alias) Draw(r *rand.Rand) int {
	u := r.Float64() * float64(len(a.prob))
	i := int(u)
	if i >= len(a.prob) { // guard against rounding at the top end
		i = len(a.prob) - 1
	}
	if u-float64(i) < a.prob[i] {
		return i
	}
	return int(a.alias[i])
}

// ZipfWeights returns n popularity weights k^(-s) for ranks k = 1..n, so
// product 0 is the most popular; s = 0 is uniform, s ~ 1 is typical retail.
func ZipfWeights(n int, s float64) []float64 {
	w := make([]float64, n)
	for k := range w {
		w[k] = math.Pow(float64(k+1), -s)
	}
	return w
}

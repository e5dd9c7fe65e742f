package simmarket

import (
	"fmt"
	"math"
	"time"
)

// StockSpec is one product's inventory policy. Restocks happen at
// start + k*RestockEvery (k >= 1) and either top the level up to RestockTo
// or add RestockBy; at most one of the two may be set.
type StockSpec struct {
	Unlimited    bool     `json:"unlimited,omitempty"`
	Initial      int64    `json:"initial,omitempty"`
	RestockEvery Duration `json:"restock_every,omitempty"`
	RestockTo    int64    `json:"restock_to,omitempty"`
	RestockBy    int64    `json:"restock_by,omitempty"`
}

func (s StockSpec) validate() error {
	switch {
	case s.Unlimited && (s.Initial != 0 || s.RestockEvery.Duration != 0 || s.RestockTo != 0 || s.RestockBy != 0):
		return fmt.Errorf("unlimited stock takes no other fields")
	case s.Initial < 0:
		return fmt.Errorf("initial %d is negative", s.Initial)
	case s.RestockEvery.Duration < 0:
		return fmt.Errorf("restock_every %v is negative", s.RestockEvery)
	case s.RestockTo < 0 || s.RestockBy < 0:
		return fmt.Errorf("restock_to/restock_by must be non-negative")
	case s.RestockTo > 0 && s.RestockBy > 0:
		return fmt.Errorf("set restock_to or restock_by, not both")
	case s.RestockEvery.Duration > 0 && s.RestockTo == 0 && s.RestockBy == 0:
		return fmt.Errorf("restock_every needs restock_to or restock_by")
	case s.RestockEvery.Duration == 0 && (s.RestockTo > 0 || s.RestockBy > 0):
		return fmt.Errorf("restock_to/restock_by need restock_every")
	}
	return nil
}

// Stock tracks inventory per product. Restocks are applied lazily when a
// product is touched, so the cost is O(1) per purchase however many
// products and restock periods there are. Calls must come in
// non-decreasing time order per product (as a Stream produces them).
type Stock struct {
	start time.Time
	specs []StockSpec
	level []int64
	epoch []int64 // restocks applied so far
	sold  []int64
	outs  []int64
}

// NewStock returns inventory at its initial levels.
func NewStock(start time.Time, specs []StockSpec) (*Stock, error) {
	for i, sp := range specs {
		if err := sp.validate(); err != nil {
			return nil, fmt.Errorf("stock of product %d: %w", i, err)
		}
	}
	n := len(specs)
	s := &Stock{start: start, specs: specs, level: make([]int64, n), epoch: make([]int64, n),
		sold: make([]int64, n), outs: make([]int64, n)}
	s.Reset()
	return s, nil
}

// Reset restores initial levels and clears counters, for replaying the
// same market with another strategy.
func (s *Stock) Reset() {
	for i, sp := range s.specs {
		s.level[i], s.epoch[i], s.sold[i], s.outs[i] = sp.Initial, 0, 0, 0
	}
}

func (s *Stock) restock(i int, at time.Time) {
	sp := &s.specs[i]
	if sp.RestockEvery.Duration <= 0 {
		return
	}
	k := int64(at.Sub(s.start) / sp.RestockEvery.Duration)
	if k <= s.epoch[i] {
		return
	}
	if sp.RestockTo > 0 {
		s.level[i] = max(s.level[i], sp.RestockTo)
	} else {
		s.level[i] += sp.RestockBy * (k - s.epoch[i])
	}
	s.epoch[i] = k
}

// Level is the units on hand at time at (math.MaxInt64 when unlimited).
func (s *Stock) Level(i int, at time.Time) int64 {
	if s.specs[i].Unlimited {
		return math.MaxInt64
	}
	s.restock(i, at)
	return s.level[i]
}

// Take serves one unit of product i at time at if there is one. Otherwise
// it records a stock-out: a shopper who would have bought but found none.
func (s *Stock) Take(i int, at time.Time) bool {
	if s.specs[i].Unlimited {
		s.sold[i]++
		return true
	}
	s.restock(i, at)
	if s.level[i] <= 0 {
		s.outs[i]++
		return false
	}
	s.level[i]--
	s.sold[i]++
	return true
}

// Sold is the units of product i sold so far.
func (s *Stock) Sold(i int) int64 { return s.sold[i] }

// StockOuts is the number of lost sales of product i so far.
func (s *Stock) StockOuts(i int) int64 { return s.outs[i] }

// TotalStockOuts is the number of lost sales over all products.
func (s *Stock) TotalStockOuts() int64 {
	var t int64
	for _, o := range s.outs {
		t += o
	}
	return t
}

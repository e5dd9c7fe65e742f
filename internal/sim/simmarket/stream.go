package simmarket

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"time"
)

// Shopper is one arrival: when, which product they look at, and the
// pre-drawn uniforms the funnel uses (see Funnel.Decide for why they are
// drawn up front). Demand is the product of the demand multipliers of the
// shocks active for this product at this time (1 outside shocks).
type Shopper struct {
	At      time.Time
	Product int
	U1, U2  float64
	Demand  float64
}

// Shock is a window of simulated time in which the arrival rate and/or the
// demand for some products is multiplied: a promotion, a competitor's
// outage, a news event. Zero multipliers mean 1 (no change).
type Shock struct {
	Name       string   `json:"name,omitempty"`
	Start      Duration `json:"start"`    // offset from the scenario start
	Duration   Duration `json:"duration"` // length of the window
	RateMult   float64  `json:"rate_mult,omitempty"`
	DemandMult float64  `json:"demand_mult,omitempty"`
	Products   []int    `json:"products,omitempty"` // demand shock targets; empty = all
}

// Arrivals describes the non-homogeneous Poisson process of shoppers.
// The rate at time t is RatePerHour * Hourly[hour(t)] * Daily[weekday(t)] *
// (RateMult of every active shock), with hour and weekday read in the
// location of the start time. Profiles are rescaled to mean 1 so that
// RatePerHour stays the average rate over whole days and weeks; empty
// profiles mean flat.
type Arrivals struct {
	RatePerHour float64   `json:"rate_per_hour"`
	Hourly      []float64 `json:"hourly,omitempty"` // 24 factors, midnight first
	Daily       []float64 `json:"daily,omitempty"`  // 7 factors, Sunday first (time.Weekday)
	Shocks      []Shock   `json:"shocks,omitempty"`
}

// StreamConfig is everything a Stream needs.
type StreamConfig struct {
	Seed     uint64
	Start    time.Time
	Horizon  time.Duration
	Arrivals Arrivals
	Weights  []float64 // product popularity, one per product
}

type shock struct {
	start, end int64 // ns offsets
	rate       float64
	demand     float64
	mask       []bool // nil = all products
}

// Stream yields shoppers in time order. It is exact for the piecewise
// constant rate (constant within each local clock hour and between shock
// edges): inside a segment gaps are exponential at the segment's rate, and
// a gap that overshoots the segment end is discarded and redrawn from the
// boundary at the next rate, which memorylessness makes exact. That costs
// O(1) per shopper plus O(1) per segment, with no thinning waste.
//
// The stream depends only on the configuration and seed, never on prices
// or stock, so every strategy replayed from the same seed meets the same
// shoppers in the same order.
type Stream struct {
	rng     *rand.Rand
	alias   *Alias
	start   time.Time
	horizon int64 // ns
	base    float64
	hourly  [24]float64
	daily   [7]float64
	shocks  []shock
	active  []int // shocks active in the current segment with demand != 1

	segStart, segEnd int64   // ns offsets of the current segment
	rate             float64 // shoppers per second in the segment
	off              float64 // seconds since start of the last arrival
	begun            bool
}

// NewStream validates the configuration and returns a stream positioned
// at the start.
func NewStream(cfg StreamConfig) (*Stream, error) {
	if cfg.Horizon <= 0 {
		return nil, errors.New("stream: horizon must be positive")
	}
	a := cfg.Arrivals
	if !(a.RatePerHour >= 0) || math.IsInf(a.RatePerHour, 0) {
		return nil, fmt.Errorf("stream: rate_per_hour %v", a.RatePerHour)
	}
	alias, err := NewAlias(cfg.Weights)
	if err != nil {
		return nil, fmt.Errorf("stream: popularity: %w", err)
	}
	s := &Stream{
		rng:     rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15)),
		alias:   alias,
		start:   cfg.Start,
		horizon: int64(cfg.Horizon),
		base:    a.RatePerHour / 3600,
	}
	if err := normalise(s.hourly[:], a.Hourly, "hourly"); err != nil {
		return nil, fmt.Errorf("stream: %w", err)
	}
	if err := normalise(s.daily[:], a.Daily, "daily"); err != nil {
		return nil, fmt.Errorf("stream: %w", err)
	}
	n := len(cfg.Weights)
	for i, sh := range a.Shocks {
		if err := sh.validate(n); err != nil {
			return nil, fmt.Errorf("stream: shocks[%d]: %w", i, err)
		}
		in := shock{start: int64(sh.Start.Duration), end: int64(sh.Start.Duration + sh.Duration.Duration),
			rate: orOne(sh.RateMult), demand: orOne(sh.DemandMult)}
		if len(sh.Products) > 0 {
			in.mask = make([]bool, n)
			for _, p := range sh.Products {
				in.mask[p] = true
			}
		}
		s.shocks = append(s.shocks, in)
	}
	s.active = make([]int, 0, len(s.shocks))
	return s, nil
}

func orOne(x float64) float64 {
	if x == 0 {
		return 1
	}
	return x
}

func (sh Shock) validate(products int) error {
	switch {
	case sh.Start.Duration < 0:
		return fmt.Errorf("start %v is negative", sh.Start)
	case sh.Duration.Duration <= 0:
		return fmt.Errorf("duration %v must be positive", sh.Duration)
	case !(sh.RateMult >= 0) || math.IsInf(sh.RateMult, 0):
		return fmt.Errorf("rate_mult %v must be non-negative", sh.RateMult)
	case !(sh.DemandMult >= 0) || math.IsInf(sh.DemandMult, 0):
		return fmt.Errorf("demand_mult %v must be non-negative", sh.DemandMult)
	}
	for j, p := range sh.Products {
		if p < 0 || p >= products {
			return fmt.Errorf("products[%d]: %d out of range [0,%d)", j, p, products)
		}
	}
	return nil
}

// normalise copies a profile into dst rescaled to mean 1 (flat if empty).
func normalise(dst, src []float64, name string) error {
	if len(src) == 0 {
		for i := range dst {
			dst[i] = 1
		}
		return nil
	}
	if len(src) != len(dst) {
		return fmt.Errorf("%s: want %d factors, got %d", name, len(dst), len(src))
	}
	sum := 0.0
	for i, f := range src {
		if !(f >= 0) || math.IsInf(f, 0) {
			return fmt.Errorf("%s[%d]: factor %v must be non-negative", name, i, f)
		}
		sum += f
	}
	if !(sum > 0) {
		return fmt.Errorf("%s: factors sum to zero", name)
	}
	for i, f := range src {
		dst[i] = f * float64(len(dst)) / sum
	}
	return nil
}

// Rate returns the arrival rate in shoppers per hour at offset d from the
// start (the integrand whose integral is the expected number of shoppers).
func (s *Stream) Rate(d time.Duration) float64 {
	t := s.start.Add(d)
	r := s.base * 3600 * s.hourly[t.Hour()] * s.daily[t.Weekday()]
	for _, sh := range s.shocks {
		if int64(d) >= sh.start && int64(d) < sh.end {
			r *= sh.rate
		}
	}
	return r
}

// Demand is the demand multiplier of the shocks active at offset d from
// the start for product i (1 outside shocks): what Next gives a shopper of
// the product then.
func (s *Stream) Demand(i int, d time.Duration) float64 {
	m := 1.0
	for _, sh := range s.shocks {
		if int64(d) >= sh.start && int64(d) < sh.end {
			m *= sh.demandOf(i)
		}
	}
	return m
}

// demandOf is the shock's demand multiplier for product i.
func (sh *shock) demandOf(i int) float64 {
	if sh.mask == nil || sh.mask[i] {
		return sh.demand
	}
	return 1
}

// enter sets up the segment starting at offset ns.
func (s *Stream) enter(ns int64) {
	s.segStart = ns
	t := s.start.Add(time.Duration(ns))
	intoHour := int64(t.Minute())*int64(time.Minute) + int64(t.Second())*int64(time.Second) + int64(t.Nanosecond())
	end := min(ns+int64(time.Hour)-intoHour, s.horizon)
	rate := s.base * s.hourly[t.Hour()] * s.daily[t.Weekday()]
	s.active = s.active[:0]
	for k, sh := range s.shocks {
		if ns < sh.start {
			end = min(end, sh.start)
			continue
		}
		if ns < sh.end {
			end = min(end, sh.end)
			rate *= sh.rate
			if sh.demand != 1 {
				s.active = append(s.active, k)
			}
		}
	}
	s.segEnd, s.rate = end, rate
	s.off = float64(ns) / 1e9
}

// Next fills sh with the next shopper and reports whether there was one
// before the horizon. It does not allocate.
func (s *Stream) Next(sh *Shopper) bool {
	if !s.begun {
		s.begun = true
		s.enter(0)
	}
	for {
		if s.rate > 0 {
			t := s.off + s.rng.ExpFloat64()/s.rate
			if t*1e9 < float64(s.segEnd) {
				s.off = t
				break
			}
		}
		if s.segEnd >= s.horizon {
			s.segStart = s.horizon
			s.rate = 0
			return false
		}
		s.enter(s.segEnd)
	}
	ns := max(int64(s.off*1e9), s.segStart)
	p := s.alias.Draw(s.rng)
	d := 1.0
	for _, k := range s.active {
		d *= s.shocks[k].demandOf(p)
	}
	*sh = Shopper{At: s.start.Add(time.Duration(ns)), Product: p, U1: s.rng.Float64(), U2: s.rng.Float64(), Demand: d}
	return true
}

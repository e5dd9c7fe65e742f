package pricing

import (
	"encoding/json"
	"fmt"
	"math"
)

const (
	dayNS = int64(86400e9)
	// LowestWindowDays is the look-back of the lowest-price rule (the EU's
	// price indication directive asks for the lowest price of the 30 days
	// before a reduction).
	LowestWindowDays = 30
	lowestSlots      = LowestWindowDays + 1
)

// Lowest tracks the lowest price a product had in the last 30 days, in
// whole UTC days, with a fixed ring of daily minima: constant memory, no
// allocation.
//
// Slot d mod 31 holds day d's lowest price for the 31 days up to Last, the
// newest day observed; 0 marks a day without one. Only Last is stored, not
// each slot's day: moving Last forward clears the slots of the days it
// passes, so a slot never holds a day older than the ring. A slot holds
// the price in cents, in five bytes (up to 2^40 cents, above MaxPrice):
// published prices are whole cents (every path rounds them), and 31
// float64s would make the ring 256 bytes instead of 160, a fifth of a
// state; at a million products, 96 MB, copied on every commit too.
type Lowest struct {
	Last int32
	min  [lowestSlots * centBytes]byte
}

// centBytes is the size of a slot of Lowest.
const centBytes = 5

// at returns slot k's price (0: none).
func (l *Lowest) at(k int) float64 {
	b := l.min[k*centBytes : k*centBytes+centBytes]
	c := uint64(b[0]) | uint64(b[1])<<8 | uint64(b[2])<<16 | uint64(b[3])<<24 | uint64(b[4])<<32
	return float64(c) / 100
}

// put sets slot k's price, to the nearest cent (a price too large for the
// slot, which validation never lets through, is kept as the largest).
func (l *Lowest) put(k int, v float64) {
	c := uint64(0)
	if v > 0 {
		c = uint64(min(math.Round(v*100), 1<<40-1))
	}
	b := l.min[k*centBytes : k*centBytes+centBytes]
	b[0], b[1], b[2], b[3], b[4] = byte(c), byte(c>>8), byte(c>>16), byte(c>>24), byte(c>>32)
}

func dayOf(ns int64) int32 { return int32(ns / dayNS) }

func slotOf(d int32) int { return int(((d % lowestSlots) + lowestSlots) % lowestSlots) }

// day returns the day slot k holds (or would hold) given Last.
func (l *Lowest) day(k int) int32 {
	return l.Last - int32(((slotOf(l.Last)-k)%lowestSlots+lowestSlots)%lowestSlots)
}

// advance moves Last forward to d, clearing the slots of the days passed.
func (l *Lowest) advance(d int32) {
	if d <= l.Last {
		return
	}
	if int64(d)-int64(l.Last) >= lowestSlots {
		clear(l.min[:])
	} else {
		for x := l.Last + 1; x <= d; x++ {
			l.put(slotOf(x), 0)
		}
	}
	l.Last = d
}

// Set records min as day d's lowest price (if d is within the ring after
// moving it to d): for a state read from its stored form.
func (l *Lowest) Set(d int32, min float64) {
	l.advance(d)
	if d > l.Last-lowestSlots {
		l.put(slotOf(d), min)
	}
}

// Days calls f with each day that holds a price, and that price.
func (l *Lowest) Days(f func(day int32, min float64)) {
	for k := range lowestSlots {
		if m := l.at(k); m != 0 {
			f(l.day(k), m)
		}
	}
}

// observe records that the price moved from prev to price at now. The price
// in effect when a day's first change happened (prev) also counts for that
// day, because it was charged earlier that day.
func (l *Lowest) observe(prev, price float64, now int64) {
	d := dayOf(now)
	l.advance(d)
	if d <= l.Last-lowestSlots {
		return // older than the ring (the clock went back a month)
	}
	i := slotOf(d)
	m := l.at(i)
	if m == 0 {
		m = prev
		if prev <= 0 {
			m = price
		}
	}
	l.put(i, math.Min(m, price))
}

// lowest returns the lowest price in effect at any time during the last
// 30 days up to now, given the current price.
func (l *Lowest) lowest(current float64, now int64) float64 {
	d := dayOf(now)
	m := current
	for k := range lowestSlots {
		if v := l.at(k); v > 0 {
			if day := l.day(k); day > d-LowestWindowDays && day <= d {
				m = math.Min(m, v)
			}
		}
	}
	return m
}

// lowestJSON is Lowest's JSON form, a day and a price per slot, as it was
// stored before only Last was kept (PostgreSQL keeps states as JSON).
type lowestJSON struct {
	Day [lowestSlots]int32   `json:"day"`
	Min [lowestSlots]float64 `json:"min"`
}

// MarshalJSON writes the day-per-slot form.
func (l Lowest) MarshalJSON() ([]byte, error) {
	var j lowestJSON
	for k := range lowestSlots {
		if m := l.at(k); m != 0 {
			j.Day[k], j.Min[k] = l.day(k), m
		}
	}
	return json.Marshal(j)
}

// UnmarshalJSON reads the day-per-slot form, keeping the days of the 31
// up to the newest.
func (l *Lowest) UnmarshalJSON(b []byte) error {
	var j lowestJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return fmt.Errorf("lowest prices: %w", err)
	}
	*l = Lowest{}
	l.fill(func(f func(int32, float64)) {
		for k := range j.Min {
			if j.Min[k] != 0 {
				f(j.Day[k], j.Min[k])
			}
		}
	})
	return nil
}

// fill sets the days that each calls back with, moving Last to the
// newest first so that the order does not matter.
func (l *Lowest) fill(each func(func(int32, float64))) {
	first := true
	each(func(d int32, _ float64) {
		if first || d > l.Last {
			l.Last, first = d, false
		}
	})
	each(l.Set)
}

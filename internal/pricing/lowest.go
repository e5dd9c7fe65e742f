package pricing

import "math"

const (
	dayNS = int64(86400e9)
	// LowestWindowDays is the look-back of the lowest-price rule (the EU's
	// price indication directive asks for the lowest price of the 30 days
	// before a reduction).
	LowestWindowDays = 30
)

// Lowest tracks the lowest price a product had in the last 30 days, in
// whole UTC days, with a fixed ring of daily minima: constant memory, no
// allocation.
type Lowest struct {
	Day [LowestWindowDays + 1]int32   `json:"day"`
	Min [LowestWindowDays + 1]float64 `json:"min"`
}

func dayOf(ns int64) int32 { return int32(ns / dayNS) }

// observe records that the price moved from prev to price at now. The price
// in effect when a day's first change happened (prev) also counts for that
// day, because it was charged earlier that day.
func (l *Lowest) observe(prev, price float64, now int64) {
	d := dayOf(now)
	i := int(d) % len(l.Day)
	if l.Day[i] != d || l.Min[i] == 0 {
		l.Day[i], l.Min[i] = d, prev
		if prev <= 0 {
			l.Min[i] = price
		}
	}
	if price < l.Min[i] {
		l.Min[i] = price
	}
}

// lowest returns the lowest price in effect at any time during the last
// 30 days up to now, given the current price.
func (l *Lowest) lowest(current float64, now int64) float64 {
	d := dayOf(now)
	m := current
	for i := range l.Day {
		if l.Min[i] > 0 && l.Day[i] > d-LowestWindowDays && l.Day[i] <= d {
			m = math.Min(m, l.Min[i])
		}
	}
	return m
}

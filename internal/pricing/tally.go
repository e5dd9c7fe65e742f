package pricing

// Tally counts one product's shoppers and sales in one UTC hour of the
// engine's clock: what revenue analytics are made of.
//
// It lives in the product's State, so it is committed with the state the
// event changed anyway, at no extra row and no extra round trip (at a
// million products a commit already writes each touched product's state;
// a row per event for analytics would double what an event costs on
// disk). When the hour is over, the engine takes the tally out of the
// state (Book.RollTally) and writes it as one row in the same commit as
// the state it reset, so every event is counted exactly once.
type Tally struct {
	// Hour is the start of the hour counted, unix ns (a multiple of
	// HourNS); 0 while nothing is counted.
	Hour int64 `json:"hour"`
	// Views, Carts and Purchases count the events; Units the purchased
	// quantity.
	Views     int64 `json:"views"`
	Carts     int64 `json:"carts"`
	Purchases int64 `json:"purchases"`
	Units     int64 `json:"units"`
	// Revenue sums quantity × the price charged: the price the purchase
	// event says the shopper was shown, else the product's price when the
	// event arrived. Cost sums quantity × the product's unit cost (0 when
	// it has none), List quantity × its list (base) price, so that the
	// average price paid can be set against the list price.
	Revenue float64 `json:"revenue"`
	Cost    float64 `json:"cost"`
	List    float64 `json:"list"`
}

// HourNS is an hour in nanoseconds, the span of a Tally.
const HourNS = int64(3600e9)

// HourOf returns the start of the UTC hour holding t (unix ns).
func HourOf(t int64) int64 {
	h := t - t%HourNS
	if t < 0 && h != t {
		h -= HourNS
	}
	return h
}

// Empty reports whether t counts nothing.
func (t *Tally) Empty() bool { return t.Hour == 0 }

// Add adds u's counts to t (whatever their hours): for summing tallies
// into a report.
func (t *Tally) Add(u *Tally) {
	t.Views += u.Views
	t.Carts += u.Carts
	t.Purchases += u.Purchases
	t.Units += u.Units
	t.Revenue += u.Revenue
	t.Cost += u.Cost
	t.List += u.List
}

// count adds one shopper event of qty units at now to product i's tally.
// price is what the shopper was charged (a purchase's revenue). The tally
// of an hour that is over and was not rolled (a caller that does not roll,
// such as the simulator) goes on counting: nothing is dropped.
func (b *Book) count(i int, t EventType, qty int32, price float64, now int64) {
	s, p := &b.states[i], &b.products[i]
	tl := &s.Tally
	if tl.Hour == 0 {
		tl.Hour = HourOf(now)
	}
	switch t {
	case View:
		tl.Views++
	case Cart:
		tl.Carts++
	case Purchase:
		q := float64(qty)
		tl.Purchases++
		tl.Units += int64(qty)
		tl.Revenue += q * price
		tl.Cost += q * p.UnitCost
		tl.List += q * p.BasePrice
	}
}

// RollTally takes product i's tally out of its state when its hour is over
// at now: it returns the tally and true, and the product starts counting
// afresh at its next event. A tally of the current hour stays.
func (b *Book) RollTally(i int, now int64) (Tally, bool) {
	s := &b.states[i]
	if s.Tally.Hour == 0 || s.Tally.Hour >= HourOf(now) {
		return Tally{}, false
	}
	t := s.Tally
	s.Tally = Tally{}
	return t, true
}

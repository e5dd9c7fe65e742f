package engine

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/dynaprice/dynaprice/internal/pricing"
)

// AnalyticsRow is one product's shoppers and sales in one UTC hour of the
// engine's clock (pricing.Tally), written once the hour is over.
type AnalyticsRow struct {
	ProductID string
	// Hint is where the product is in the engine's catalog, as
	// ProductState.Hint.
	Hint int32
	// Strategy is the name of the strategy that priced the product.
	Strategy string
	// Arm is the price experiment's arm the product was in; "" outside an
	// experiment (experiments do not set it yet: the column is there so
	// that rows need no migration when they do).
	Arm string
	pricing.Tally
}

// Analytics groupings (AnalyticsQuery.By).
const (
	ByProduct  = "product"
	ByStrategy = "strategy"
	ByArm      = "arm"
	ByHour     = "hour"
	ByDay      = "day"
)

// DayNS is a day in nanoseconds, the span of a ByDay group (UTC days).
const DayNS = 24 * pricing.HourNS

// AnalyticsQuery asks for analytics totals over whole UTC hours.
type AnalyticsQuery struct {
	// From and To bound the hours counted, From <= hour < To (unix ns,
	// whole hours).
	From, To int64
	// By groups the totals: ByProduct, ByStrategy, ByArm, ByHour or ByDay.
	By string
	// ProductID and Strategy, when not empty, count only that product or
	// strategy.
	ProductID, Strategy string
	// Max is the most groups a store returns (the ones with the most
	// revenue, then by key); 0 means no limit.
	Max int
}

// Validate reports a query no store should run.
func (q AnalyticsQuery) Validate() error {
	switch q.By {
	case ByProduct, ByStrategy, ByArm, ByHour, ByDay:
	default:
		return fmt.Errorf("by must be one of product, strategy, arm, hour or day, got %q", q.By)
	}
	if q.From%pricing.HourNS != 0 || q.To%pricing.HourNS != 0 || q.From >= q.To {
		return errors.New("from and to must be whole hours, from before to")
	}
	return nil
}

// AnalyticsTotal is the sum of the analytics rows of one group.
type AnalyticsTotal struct {
	// Key is the group: the product id, strategy name or arm, or for
	// ByHour and ByDay the group's start (unix ns) in decimal.
	Key string
	// Start is the group's start for ByHour and ByDay (unix ns), else 0.
	Start int64
	pricing.Tally
}

// AnalyticsReader is a store that keeps analytics rows and sums them.
type AnalyticsReader interface {
	// AnalyticsTotals sums the stored rows of q's hours, by q.By, at most
	// q.Max groups (the most revenue first); more reports whether there
	// were more groups than that.
	AnalyticsTotals(ctx context.Context, q AnalyticsQuery) (totals []AnalyticsTotal, more bool, err error)
}

// GroupKey returns the group a row of product id, strategy, arm and hour
// falls in under by, and the group's start for ByHour and ByDay.
func GroupKey(by, id, strategy, arm string, hour int64) (string, int64) {
	switch by {
	case ByProduct:
		return id, 0
	case ByStrategy:
		return strategy, 0
	case ByArm:
		return arm, 0
	case ByDay:
		hour -= ((hour % DayNS) + DayNS) % DayNS
	}
	return fmt.Sprint(hour), hour
}

// SortTotals puts totals in the order of AnalyticsTotals answers: time
// order for ByHour and ByDay, else the most revenue first, then by key.
func SortTotals(by string, ts []AnalyticsTotal) {
	slices.SortFunc(ts, func(x, y AnalyticsTotal) int {
		if by == ByHour || by == ByDay {
			return cmp.Compare(x.Start, y.Start)
		}
		return cmp.Or(cmp.Compare(y.Revenue, x.Revenue), strings.Compare(x.Key, y.Key))
	})
}

// OpenTally is a product's tally of an hour not written as a row yet.
type OpenTally struct {
	ProductID, Strategy string
	pricing.Tally
}

// OpenTallies returns the tallies the products hold now (of product id
// only, when id is not empty), after rolling those whose hour is over
// (they are in the batch). Only products with a tally are listed.
func (m *Machine) OpenTallies(id string) []OpenTally {
	var out []OpenTally
	cur := pricing.HourOf(m.clock)
	add := func(i int) {
		if t := m.book.State(i).Tally; t.Hour != 0 && t.Hour < cur {
			m.keep(i) // only what rolls: a copy of every state would cost the catalog
			m.roll(i)
		}
		if t := m.book.State(i).Tally; !t.Empty() {
			out = append(out, OpenTally{ProductID: m.book.Product(i).ID, Strategy: m.book.StrategyName(i), Tally: t})
		}
	}
	if id != "" {
		if i, ok := m.book.Index(id); ok {
			add(i)
		}
		return out
	}
	for i := range m.book.Len() {
		if !m.book.State(i).Tally.Empty() {
			add(i)
		}
	}
	return out
}

// OpenTallies returns every product's tally of an hour not yet written as
// an analytics row (of product id only, when id is not empty), as of now:
// tallies whose hour is over are committed as rows first, so that a
// store read after this call and this list never count an hour twice
// (see Analytics).
func (e *Writer) OpenTallies(ctx context.Context, id string) ([]OpenTally, int64, error) {
	r := &request{kind: reqTallies, override: OverrideInput{ProductID: id}}
	err := e.submit(ctx, r)
	return r.tallies, r.at, err
}

// Analyst answers analytics queries from the rows a store keeps and the
// tallies of the hours not over yet, which are in the engine's memory:
// without those, nothing would show until an hour after the first sale.
type Analyst struct {
	Store AnalyticsReader
	// Open returns the open tallies as of a moment, committing those
	// whose hour is over first (Writer.OpenTallies).
	// Open may be nil where the engine's memory is out of reach (an API
	// replica): then only the hours before the current one are counted.
	Open func(ctx context.Context, id string) ([]OpenTally, int64, error)
	// Now is the clock used when Open is nil.
	Now func() time.Time
}

// Analytics sums the rows of q's hours and the open tallies that fall in
// them, grouped by q.By: at most limit groups (0: all), the most revenue
// first (ByHour, ByDay: in time order); more reports that groups were
// left out. The store is asked for q.Max groups (0: all), so with more
// groups than that in the range, a group just below the store's cut whose
// open hour would lift it is missed.
//
// The open tallies are read first, through the writer, which commits the
// ones whose hour is over as rows in that round; so every hour before the
// current one is in the store when it is read, and the store is asked
// only for hours before the current one (an hour ending between the two
// reads is counted once, from memory, as of the first).
func (a Analyst) Analytics(ctx context.Context, q AnalyticsQuery, limit int) ([]AnalyticsTotal, bool, error) {
	if err := q.Validate(); err != nil {
		return nil, false, &Error{Kind: KindInvalid, Msg: err.Error()}
	}
	var open []OpenTally
	var now int64
	if a.Open != nil {
		var err error
		if open, now, err = a.Open(ctx, q.ProductID); err != nil {
			return nil, false, err
		}
	} else {
		now = a.Now().UnixNano()
	}
	cur := pricing.HourOf(now)
	groups := map[string]int{}
	var out []AnalyticsTotal
	add := func(key string, start int64, t *pricing.Tally) {
		k, ok := groups[key]
		if !ok {
			k = len(out)
			groups[key] = k
			out = append(out, AnalyticsTotal{Key: key, Start: start})
		}
		out[k].Add(t)
	}
	more := false
	if sq := q; q.From < cur {
		sq.To = min(q.To, cur)
		stored, m, err := a.Store.AnalyticsTotals(ctx, sq)
		if err != nil {
			return nil, false, err
		}
		more = m
		for i := range stored {
			add(stored[i].Key, stored[i].Start, &stored[i].Tally)
		}
	}
	for i := range open {
		o := &open[i]
		if o.Hour < q.From || o.Hour >= q.To || (q.Strategy != "" && o.Strategy != q.Strategy) {
			continue
		}
		key, start := GroupKey(q.By, o.ProductID, o.Strategy, "", o.Hour)
		add(key, start, &o.Tally)
	}
	SortTotals(q.By, out)
	if limit > 0 && len(out) > limit {
		out, more = out[:limit], true
	}
	return out, more, nil
}

// Hours returns the whole UTC hours [from, to) that cover the instants
// from and to: for callers that take times from people.
func Hours(from, to time.Time) (int64, int64) {
	f := pricing.HourOf(from.UnixNano())
	t := pricing.HourOf(to.UnixNano())
	if t < to.UnixNano() {
		t += pricing.HourNS
	}
	return f, t
}

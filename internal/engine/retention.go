package engine

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/dynaprice/dynaprice/internal/pricing"
)

// HistoryRetention is how long the stores keep price history, and in what
// detail: every change for Raw, then one summary per product and hour
// (open, high, low, close and the number of changes: HourlyRow) until the
// hour is Hourly old. Both are counted back from now; the cut-offs are
// whole UTC hours (Cutoffs), so a change is kept one by one for at least
// Raw and at most an hour longer (PostgreSQL: a day longer, the span of a
// partition). Without retention history grows by ~61 bytes a change
// forever.
//
// Nothing the engine computes reads history: the 30-day lowest price is
// kept in each product's state (pricing.Lowest). What needs the changes
// one by one is an audit of that figure (the EU price-indication rule asks
// for the lowest price of the 30 days before a reduction), hence the floor
// on Raw: MinHistoryRaw. Past Raw, an hour's low and the previous hour's
// close (the price in effect when the hour began) still give the lowest
// price over any span of whole hours. The override audit trail is not
// history and is never pruned.
type HistoryRetention struct {
	// Raw is how long every change is kept one by one; 0 keeps them
	// forever (and makes no summaries). Otherwise at least MinHistoryRaw.
	Raw time.Duration
	// Hourly is how old an hourly summary may get before it is deleted; 0
	// keeps them forever. Otherwise at least Raw; equal to Raw means no
	// summaries at all: changes older than Raw are deleted.
	Hourly time.Duration
}

// The defaults of HistoryRetention (the flags of serve and engine).
const (
	DefaultHistoryRaw    = 30 * 24 * time.Hour
	DefaultHistoryHourly = 400 * 24 * time.Hour
	// MinHistoryRaw is the shortest Raw: the window of the 30-day lowest
	// price, so that every change that may have set the figure a shopper
	// sees now is there to check it against.
	MinHistoryRaw = pricing.LowestWindowDays * 24 * time.Hour
)

// DefaultHistoryRetention returns every change for 30 days, then hourly
// summaries up to 400 days (a year and a month, for year-on-year
// comparisons).
func DefaultHistoryRetention() HistoryRetention {
	return HistoryRetention{Raw: DefaultHistoryRaw, Hourly: DefaultHistoryHourly}
}

// Validate reports a policy that would lose what the audit of the 30-day
// lowest price needs, or that makes no sense.
func (r HistoryRetention) Validate() error {
	switch {
	case r.Raw < 0 || r.Hourly < 0:
		return errors.New("engine: history retention must not be negative (0 keeps history forever)")
	case r.Raw == 0 && r.Hourly != 0:
		return errors.New("engine: hourly history retention needs a raw retention: with raw 0 every change is kept forever")
	case r.Raw != 0 && r.Raw < MinHistoryRaw:
		return fmt.Errorf("engine: raw history retention %s is shorter than %s, the window of the 30-day lowest price, whose audit needs every change in it",
			days(r.Raw), days(MinHistoryRaw))
	case r.Hourly != 0 && r.Hourly < r.Raw:
		return fmt.Errorf("engine: hourly history retention %s is shorter than the raw one %s", days(r.Hourly), days(r.Raw))
	}
	return nil
}

// days writes d in days when it is whole days, as retentions are given.
func days(d time.Duration) string {
	if d%(24*time.Hour) == 0 {
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	}
	return d.String()
}

// Enabled reports whether anything is ever deleted.
func (r HistoryRetention) Enabled() bool { return r.Raw > 0 }

// Summaries reports whether changes older than Raw are rolled into hourly
// summaries (rather than deleted).
func (r HistoryRetention) Summaries() bool { return r.Raw > 0 && (r.Hourly == 0 || r.Hourly > r.Raw) }

// HourNS is an hour in nanoseconds, the span of an HourlyRow.
const HourNS = int64(time.Hour)

// HourOf returns the start of the UTC hour holding t (unix ns).
func HourOf(t int64) int64 {
	h := t - t%HourNS
	if t < 0 && h != t {
		h -= HourNS
	}
	return h
}

// Cutoffs returns, as of now (unix ns), the time before which changes are
// no longer kept one by one (raw) and the hour before which summaries are
// deleted (hourly), both whole UTC hours; 0 when nothing is cut. A store
// keeps raw changes at or after raw, and summaries of the hours at or
// after hourly.
func (r HistoryRetention) Cutoffs(now int64) (raw, hourly int64) {
	if r.Raw > 0 {
		raw = HourOf(now - int64(r.Raw))
	}
	if r.Raw > 0 && r.Hourly > 0 {
		hourly = HourOf(now - int64(r.Hourly))
	}
	return raw, hourly
}

// HourlyRow summarises one product's price changes in one UTC hour, once
// they are older than HistoryRetention.Raw and no longer kept one by one.
// The price in effect when the hour began is the close of the product's
// previous summary (or change).
type HourlyRow struct {
	ProductID string
	// Hour is the start of the hour, unix ns (a multiple of HourNS).
	Hour int64
	// Open is the first change's price, Close the last one's; High and Low
	// the highest and lowest price the changes set.
	Open, High, Low, Close float64
	// Changes is how many changes the hour had.
	Changes int64
	// The last change's time, version, source and demand: the close's.
	CloseAt int64
	Version uint64
	Source  pricing.Source
	Demand  float64
}

// add folds change h, which comes after every change already in s, into s.
func (s *HourlyRow) add(h *HistoryRow) {
	if s.Changes == 0 {
		s.ProductID, s.Hour, s.Open, s.High, s.Low = h.ProductID, HourOf(h.At), h.Price, h.Price, h.Price
	}
	s.High, s.Low = max(s.High, h.Price), min(s.Low, h.Price)
	s.Close, s.CloseAt, s.Version, s.Source, s.Demand = h.Price, h.At, h.Version, h.Source, h.Demand
	s.Changes++
}

// Summarize returns the hourly summaries of rows, which hold each
// product's changes in its chain's order (time, then version; the rows of
// different products may interleave), sorted by product id, then hour.
func Summarize(rows []HistoryRow) []HourlyRow {
	type key struct {
		id   string
		hour int64
	}
	at := make(map[key]int, len(rows)/4+1)
	var out []HourlyRow
	for i := range rows {
		h := &rows[i]
		k := key{h.ProductID, HourOf(h.At)}
		j, ok := at[k]
		if !ok {
			j = len(out)
			at[k] = j
			out = append(out, HourlyRow{})
		}
		out[j].add(h)
	}
	sortHourly(out)
	return out
}

func sortHourly(rows []HourlyRow) {
	slices.SortFunc(rows, func(x, y HourlyRow) int {
		return cmp.Or(strings.Compare(x.ProductID, y.ProductID), cmp.Compare(x.Hour, y.Hour))
	})
}

// HistoryPage is what GET /history answers from: the newest changes kept
// one by one and, older than all of them, hourly summaries of the changes
// no longer kept one by one, both newest first, read from one snapshot so
// that no change is in both.
type HistoryPage struct {
	Changes []HistoryRow
	Hourly  []HourlyRow
}

// HistoryPruned counts what one Store.PruneHistory did.
type HistoryPruned struct {
	// Rolled is the changes deleted (rolled into summaries, unless the
	// policy keeps none); Summaries the hourly summaries written or
	// updated; Expired the summaries deleted for being older than Hourly.
	Rolled, Summaries, Expired int64
	// Analytics is the analytics rows deleted: they are kept as long as
	// the hourly summaries (Hourly), for the same year-on-year reports.
	Analytics int64
	// Partitions created ahead and dropped (PostgreSQL).
	Created, Dropped int
}

package live

import (
	"errors"
	"math"
	"strconv"
	"strings"

	"github.com/dynaprice/dynaprice/internal/pricing"
)

// SortKey is what a listing is ordered by (GET /prices?sort=).
type SortKey uint8

// The orders of a listing. ByCatalog is the listing's own order, whose
// cursor is a product id the listing holds; the others order by a value the
// listing shows, then by product id, and their cursors are positions
// (sortCursor), valid whatever became of the product they name.
const (
	ByCatalog SortKey = iota
	ByID
	ByPrice
	ByDemand
	ByLowest  // lowest_30d
	ByUpdated // updated_at
	BySource  // price_source: base, dynamic, override
	numSortKeys
)

// sortNames are the names ?sort= takes, by SortKey.
var sortNames = [numSortKeys]string{"", "id", "price", "demand", "lowest", "updated", "source"}

// SortNames lists the names ParseSort accepts, ascending; "-" before one
// sorts descending.
func SortNames() []string { return append([]string(nil), sortNames[1:]...) }

// Sort is the order of a listing: by Key, then by product id (bytewise),
// ascending, or with Desc the exact reverse of that.
type Sort struct {
	Key  SortKey
	Desc bool
}

// ParseSort reads a ?sort= value: "" (catalog order), a name of SortNames,
// or one with a leading "-" (descending).
func ParseSort(s string) (Sort, error) {
	if s == "" {
		return Sort{}, nil
	}
	var o Sort
	if name, ok := strings.CutPrefix(s, "-"); ok {
		o.Desc, s = true, name
	}
	for k := ByID; k < numSortKeys; k++ {
		if sortNames[k] == s {
			o.Key = k
			return o, nil
		}
	}
	return Sort{}, errors.New("sort must be one of " + strings.Join(SortNames(), ", ") + ", each optionally preceded by - (descending)")
}

func (o Sort) String() string {
	if o.Desc {
		return "-" + sortNames[o.Key]
	}
	return sortNames[o.Key]
}

// ErrBadCursor is returned for a Page whose After is not a cursor of its
// sort: a cursor is only valid with the sort of the page that gave it.
var ErrBadCursor = errors.New("live: cursor is not one of this sort")

// sortKey is the key of p in the order by k, as an unsigned integer that
// compares like the value: the values the listing shows (prices in cents,
// demand to four decimals), so that a client sorting what it received
// agrees with the server.
func sortKey(k SortKey, p *Price) uint64 {
	switch k {
	case ByPrice:
		return floatKey(pricing.RoundCents(p.Price))
	case ByDemand:
		return floatKey(pricing.Round(p.Demand, pricing.DemandDecimals))
	case ByLowest:
		return floatKey(pricing.RoundCents(p.Lowest30))
	case ByUpdated:
		return uint64(p.At) ^ 1<<63
	case BySource:
		return uint64(p.Source) // declared in alphabetical order
	}
	return 0
}

// ParseSortKey returns the key by k of a product whose stored value for k
// (its price, demand, lowest price, time in unix ns or source, in full
// precision) is v, as a SortListing reads it from a store.
func ParseSortKey(k SortKey, v string) (uint64, error) {
	var p Price
	var err error
	switch k {
	case ByPrice:
		p.Price, err = strconv.ParseFloat(v, 64)
	case ByDemand:
		p.Demand, err = strconv.ParseFloat(v, 64)
	case ByLowest:
		p.Lowest30, err = strconv.ParseFloat(v, 64)
	case ByUpdated:
		p.At, err = strconv.ParseInt(v, 10, 64)
	case BySource:
		var ok bool
		if p.Source, ok = pricing.ParseSource(v); !ok {
			err = errors.New("unknown source " + strconv.Quote(v))
		}
	}
	if err != nil {
		return 0, err
	}
	return sortKey(k, &p), nil
}

// floatKey maps f to an integer of the same order (IEEE 754 bits, the sign
// flipped for positives and every bit for negatives).
func floatKey(f float64) uint64 {
	b := math.Float64bits(f + 0) // -0 becomes 0
	if b>>63 == 1 {
		return ^b
	}
	return b | 1<<63
}

func keyFloat(k uint64) float64 {
	if k>>63 == 1 {
		return math.Float64frombits(k &^ (1 << 63))
	}
	return math.Float64frombits(^k)
}

// A sortCursor is where a page of a sorted listing ended: the key and id of
// its last row. The next page starts at the first row after it in the
// sort's order, so a product whose key has not changed is never skipped or
// repeated, even if the product the cursor names was since deleted.
type sortCursor struct {
	key uint64
	id  string
}

// appendCursor appends the text of a cursor: the product id for ByID,
// otherwise the key as the listing shows it, a colon and the id
// ("314.5:PA"). Keys never hold a colon; ids may.
func (o Sort) appendCursor(b []byte, c sortCursor) []byte {
	switch o.Key {
	case ByID:
		return append(b, c.id...)
	case ByPrice, ByDemand, ByLowest:
		b = strconv.AppendFloat(b, keyFloat(c.key), 'f', -1, 64)
	case ByUpdated:
		b = strconv.AppendInt(b, int64(c.key^1<<63), 10)
	case BySource:
		b = append(b, pricing.Source(c.key).String()...)
	}
	return append(append(b, ':'), c.id...)
}

// parseCursor reads what appendCursor wrote.
func (o Sort) parseCursor(s string) (sortCursor, error) {
	if o.Key == ByID {
		return sortCursor{id: s}, nil
	}
	k, id, ok := strings.Cut(s, ":")
	if !ok {
		return sortCursor{}, ErrBadCursor
	}
	c := sortCursor{id: id}
	switch o.Key {
	case ByPrice, ByDemand, ByLowest:
		f, err := strconv.ParseFloat(k, 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			return sortCursor{}, ErrBadCursor
		}
		c.key = floatKey(f)
	case ByUpdated:
		n, err := strconv.ParseInt(k, 10, 64)
		if err != nil {
			return sortCursor{}, ErrBadCursor
		}
		c.key = uint64(n) ^ 1<<63
	case BySource:
		src, ok := pricing.ParseSource(k)
		if !ok {
			return sortCursor{}, ErrBadCursor
		}
		c.key = uint64(src)
	}
	return c, nil
}

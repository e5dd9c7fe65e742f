// Package live holds the in-memory live price view that `GET /price` and
// `GET /prices` read: the latest committed price of every product, kept as
// ready-to-send JSON so a read is a map lookup and a write of bytes.
//
// It is the embedded implementation of the live price view; in scale-out
// mode Redis plays this role.
package live

import (
	"math"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dynaprice/dynaprice/internal/engine"
)

// View is safe for concurrent use: one writer (the engine's publisher) and
// any number of readers, which never take a lock.
type View struct {
	mu      sync.Mutex // serialises writers
	entries atomic.Pointer[map[string]*entry]
	order   atomic.Pointer[[]*entry] // insertion order, for listings
}

type entry struct {
	json   atomic.Pointer[[]byte]
	change atomic.Pointer[engine.Change]
}

// New returns an empty view.
func New() *View {
	v := &View{}
	m := map[string]*entry{}
	v.entries.Store(&m)
	v.order.Store(&[]*entry{})
	return v
}

// Publish implements engine.Publisher. New products copy the index (rare);
// known ones swap their bytes in place. A change older (by version) than
// the one held is ignored.
func (v *View) Publish(changes []engine.Change) {
	v.mu.Lock()
	defer v.mu.Unlock()
	m := *v.entries.Load()
	var grown map[string]*entry
	var order []*entry
	for i := range changes {
		c := changes[i]
		e, ok := m[c.ProductID]
		if !ok && grown != nil {
			e, ok = grown[c.ProductID]
		}
		if !ok {
			if grown == nil {
				grown = make(map[string]*entry, len(m)+1)
				for k, x := range m {
					grown[k] = x
				}
				order = append([]*entry(nil), *v.order.Load()...)
			}
			e = &entry{}
			grown[c.ProductID] = e
			order = append(order, e)
		}
		if old := e.change.Load(); old != nil && c.Version < old.Version {
			// Only an API replica's view, fed from Redis and price-updates
			// which can overlap, ever sees an older version.
			continue
		}
		b := AppendPrice(nil, c)
		e.json.Store(&b)
		e.change.Store(&c)
	}
	if grown != nil {
		v.order.Store(&order)
		v.entries.Store(&grown)
	}
}

// Price returns the JSON of a product's current price.
func (v *View) Price(id string) ([]byte, bool) {
	e, ok := (*v.entries.Load())[id]
	if !ok {
		return nil, false
	}
	return *e.json.Load(), true
}

// AppendAll appends {"prices":[...]} with every product, in catalog order.
func (v *View) AppendAll(dst []byte) []byte {
	dst = append(dst, `{"prices":[`...)
	for i, e := range *v.order.Load() {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, *e.json.Load()...)
	}
	return append(dst, "]}"...)
}

// Snapshot returns the latest change of every product, in catalog order.
func (v *View) Snapshot() []engine.Change {
	es := *v.order.Load()
	out := make([]engine.Change, len(es))
	for i, e := range es {
		out[i] = *e.change.Load()
	}
	return out
}

// AppendPrice appends the public JSON of one product's price: the original's
// {"product_id","price","demand","price_source"} plus the 30-day lowest
// price, the version and when the price took effect.
func AppendPrice(b []byte, c engine.Change) []byte {
	b = append(b, `{"product_id":`...)
	b = strconv.AppendQuote(b, c.ProductID)
	b = append(b, `,"price":`...)
	b = AppendNumber(b, c.Price, 2)
	b = append(b, `,"demand":`...)
	b = AppendNumber(b, c.Demand, 4)
	b = append(b, `,"price_source":"`...)
	b = append(b, c.Source.String()...)
	b = append(b, `","lowest_30d":`...)
	b = AppendNumber(b, c.Lowest30, 2)
	b = append(b, `,"version":`...)
	b = strconv.AppendUint(b, c.Version, 10)
	b = append(b, `,"updated_at":"`...)
	b = time.Unix(0, c.At).UTC().AppendFormat(b, time.RFC3339Nano)
	return append(b, `"}`...)
}

// AppendNumber appends v rounded to at most decimals places, in the
// shortest form (314 rather than 314.00: JSON numbers carry no format).
func AppendNumber(b []byte, v float64, decimals int) []byte {
	p := math.Pow10(decimals)
	return strconv.AppendFloat(b, math.Round(v*p)/p, 'f', -1, 64)
}

// Round rounds v to decimals places.
func Round(v float64, decimals int) float64 {
	p := math.Pow10(decimals)
	return math.Round(v*p) / p
}

// RoundCents rounds a price to cents.
func RoundCents(v float64) float64 { return Round(v, 2) }

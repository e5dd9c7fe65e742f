// Package live is where committed prices go: the one price type (Price)
// with its REST and WebSocket encodings, the in-memory view that GET /price
// and GET /prices read (View), and the fan-out of price changes to
// WebSocket clients (Hub). In scale-out mode Redis is the shared view and
// each API replica keeps a View of its own, fed by price-updates.
package live

import (
	"context"
	"math"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/dynaprice/dynaprice/internal/pricing"
)

// View holds the latest committed price of every product, so that a read
// is a map lookup and an encoding, and announces price changes to its Hub's WebSocket clients. It is safe for
// concurrent use: one writer (the engine's publisher) and any number of
// readers, which never take a lock.
type View struct {
	hub     *Hub
	mu      sync.Mutex // serialises writers
	entries atomic.Pointer[map[string]*viewEntry]
	order   atomic.Pointer[[]*viewEntry] // insertion order, for listings
	sorted  Sorter                       // sorted listings (Page.Sort)
	// rows holds the positions of sorted pages (*[]uint32), so that
	// reading a catalog sorted, a page after another, reuses them.
	rows sync.Pool
}

// viewEntry is a product's place in the view. It keeps the price, not its
// JSON: encoding on read costs a read a microsecond, where keeping the
// bytes cost every published change an encoding and an allocation, and a
// million-product view 250 MB. The price is kept in the entry itself,
// behind a sequence lock, rather than behind a pointer swapped per change:
// no allocation per published price, and entries allocated in blocks (a
// million of them at a start) instead of two objects a product.
type viewEntry struct {
	id  string
	pos int // index in order, which only grows
	// seq is odd while the one writer changes the fields below; a reader
	// reads them between two equal even values. Every field is atomic, so
	// a reader that overlaps a write only retries.
	seq                               atomic.Uint64
	price, demand, version, at, low30 atomic.Uint64
	flags                             atomic.Uint64 // Source, and 1<<8 for PriceChanged
}

// load returns the entry's price.
func (e *viewEntry) load() Price {
	for {
		s := e.seq.Load()
		if s&1 == 0 {
			f := e.flags.Load()
			p := Price{ProductID: e.id, Price: math.Float64frombits(e.price.Load()), Source: pricing.Source(f),
				Demand: math.Float64frombits(e.demand.Load()), Version: e.version.Load(), At: int64(e.at.Load()),
				Lowest30: math.Float64frombits(e.low30.Load()), PriceChanged: f&(1<<8) != 0}
			if e.seq.Load() == s {
				return p
			}
		}
		runtime.Gosched() // the writer is between its two increments
	}
}

// store sets the entry's price; the caller is the view's one writer.
func (e *viewEntry) store(p *Price) {
	e.seq.Add(1)
	e.price.Store(math.Float64bits(p.Price))
	e.demand.Store(math.Float64bits(p.Demand))
	e.version.Store(p.Version)
	e.at.Store(uint64(p.At))
	e.low30.Store(math.Float64bits(p.Lowest30))
	f := uint64(p.Source)
	if p.PriceChanged {
		f |= 1 << 8
	}
	e.flags.Store(f)
	e.seq.Add(1)
}

// New returns an empty view and its hub, configured by cfg. Unless
// cfg.Snapshot is set, a WebSocket client that asks for a snapshot gets
// the view's.
func New(cfg HubConfig) *View {
	v := &View{}
	if cfg.Snapshot == nil {
		// The view stores a change before it publishes it, so its
		// snapshots are never behind the hub.
		cfg.Snapshot, cfg.snapshotCurrent = v, true
	}
	v.hub = NewHub(cfg)
	m := map[string]*viewEntry{}
	v.entries.Store(&m)
	v.order.Store(&[]*viewEntry{})
	return v
}

// Hub is the view's WebSocket fan-out (GET /ws/prices).
func (v *View) Hub() *Hub { return v.hub }

// Publish stores committed prices and announces the price changes among
// them to WebSocket clients. New products copy the index (rare); known ones
// swap their bytes in place. A price older (by version) than the one held
// is ignored.
func (v *View) Publish(changes []Price) {
	v.store(changes)
	v.hub.Publish(changes)
}

func (v *View) store(changes []Price) {
	v.mu.Lock()
	defer v.mu.Unlock()
	m := *v.entries.Load()
	var grown map[string]*viewEntry
	var order []*viewEntry
	var block []viewEntry // new entries, allocated together
	for i := range changes {
		c := &changes[i]
		e, ok := m[c.ProductID]
		if !ok && grown != nil {
			e, ok = grown[c.ProductID]
		}
		if !ok {
			if grown == nil {
				// Sized for every change being new, as at start-up,
				// when a million products arrive in one call: growing
				// a map by doubling rehashes it a dozen times.
				grown = make(map[string]*viewEntry, len(m)+len(changes)-i)
				for k, x := range m {
					grown[k] = x
				}
				order = append([]*viewEntry(nil), *v.order.Load()...)
			}
			if len(block) == cap(block) {
				block = make([]viewEntry, 0, len(changes)-i)
			}
			block = block[:len(block)+1]
			e = &block[len(block)-1]
			e.id, e.pos = c.ProductID, len(order)
			grown[c.ProductID] = e
			order = append(order, e)
		} else if c.Version < e.version.Load() {
			// Only an API replica's view, fed from Redis and price-updates
			// which can overlap, ever sees an older version.
			continue
		}
		e.store(c)
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
	return e.load().AppendJSON(nil), true
}

// Get returns a product's current price.
func (v *View) Get(id string) (Price, bool) {
	e, ok := (*v.entries.Load())[id]
	if !ok {
		return Price{}, false
	}
	return e.load(), true
}

// AppendAll appends {"prices":[...]} with every product, in catalog order.
func (v *View) AppendAll(dst []byte) []byte {
	b, _ := AppendAll(context.Background(), v, dst) // a View never fails
	return b
}

// AppendPage appends a page of the listing (see Pager and Page). A page in
// catalog order costs its own prices plus, with Page.Match, a scan of the
// ids after Page.After; it never copies the listing. Pages read while
// products are added see each product once: new ones are appended at the
// end. A sorted page costs the same plus a binary search, and the shared
// sorted copy of the listing (see sorter).
func (v *View) AppendPage(ctx context.Context, dst []byte, p Page) ([]byte, int, string, error) {
	order := *v.order.Load()
	if p.Sort.Key != ByCatalog {
		rp, _ := v.rows.Get().(*[]uint32)
		if rp == nil {
			rp = new([]uint32)
		}
		defer v.rows.Put(rp)
		src, rows, next, err := v.sorted.Page(ctx, viewSource(order), p, *rp)
		*rp = rows[:0]
		if err != nil {
			return dst, 0, "", err
		}
		es := src.(viewSource)
		for i, pos := range rows {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = es[pos].load().AppendJSON(dst)
		}
		return dst, len(rows), next, nil
	}
	start := 0
	if p.After != "" {
		e, ok := (*v.entries.Load())[p.After]
		if !ok || e.pos >= len(order) {
			return dst, 0, "", ErrUnknownCursor
		}
		start = e.pos + 1
	}
	n, last := 0, ""
	for _, e := range order[start:] {
		if !p.Includes(e.id) {
			continue
		}
		if n == p.Limit {
			return dst, n, last, nil // one more follows
		}
		if n > 0 {
			dst = append(dst, ',')
		}
		dst = e.load().AppendJSON(dst)
		n, last = n+1, e.id
	}
	return dst, n, "", nil
}

// SnapshotPage returns the latest change of up to limit products after
// the product after, in catalog order, and the next page's cursor (see
// Snapshotter).
func (v *View) SnapshotPage(_ context.Context, after string, limit int) ([]Price, string, error) {
	order := *v.order.Load()
	start := 0
	if after != "" {
		e, ok := (*v.entries.Load())[after]
		if !ok || e.pos >= len(order) {
			return nil, "", ErrUnknownCursor
		}
		start = e.pos + 1
	}
	page := order[start:min(start+limit, len(order))]
	out := make([]Price, len(page))
	for i, e := range page {
		out[i] = e.load()
	}
	next := ""
	if start+len(page) < len(order) {
		next = page[len(page)-1].id
	}
	return out, next, nil
}

// SnapshotOf returns the latest change of those of ids the view holds.
func (v *View) SnapshotOf(_ context.Context, ids []string) ([]Price, error) {
	out := make([]Price, 0, len(ids))
	for _, id := range ids {
		if p, ok := v.Get(id); ok {
			out = append(out, p)
		}
	}
	return out, nil
}

// Snapshot returns the latest change of every product, in catalog order.
// It copies the whole catalog: it is for tests and small views.
func (v *View) Snapshot() []Price {
	es := *v.order.Load()
	out := make([]Price, len(es))
	for i, e := range es {
		out[i] = e.load()
	}
	return out
}

// viewSource is a View's listing as a Sorter reads it: the order slice of
// one moment, whose entries never change places.
type viewSource []*viewEntry

func (s viewSource) Len() int          { return len(s) }
func (s viewSource) ID(pos int) string { return s[pos].id }

func (s viewSource) Keys(_ context.Context, k SortKey, n int, set func(int, uint64)) error {
	for i, e := range s[:n] {
		p := e.load()
		set(i, sortKey(k, &p))
	}
	return nil
}

package live

import (
	"context"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Sorted listings (GET /prices?sort=) are read from sorted copies of the
// listing's order, one per sort key, that every request shares. A copy is
// built when a page first asks for its key, and built again when a page
// finds it older than sortMinAge and than sortCostFactor times what it
// cost to build: at most once a second for small catalogs, and for large
// ones never more than 1/sortCostFactor of a core per key in use, however
// many clients page through it. The alternative, an index kept sorted as
// prices change, would cost the engine's publisher a tree update per key
// for every price it publishes, read or not.
//
// A copy holds 12 bytes per product (the key and the product's rank in id
// order), plus 8 per product for the id order that every copy uses to
// break ties. Copies not read for sortIdle are dropped when another is
// built. What a page costs beyond its prices is a binary search.
//
// So a page lists products in the order of their values when the copy was
// built, at most sortMinAge (or the cost bound) ago, and shows their
// current prices; see Page for what holds across pages.
const (
	sortMinAge     = time.Second
	sortCostFactor = 20
	sortIdle       = time.Minute
)

// SortListing is a listing that a Sorter orders, as of one moment: its
// products by position. A Sorter keeps the listing its sorted copies were
// built from, so it must not change.
type SortListing interface {
	Len() int
	ID(pos int) string
	// Keys calls set with the key by k of each product at positions below
	// n (see ParseSortKey).
	Keys(ctx context.Context, k SortKey, n int, set func(pos int, key uint64)) error
}

// idOrder is a listing's first n products in id order.
type idOrder struct {
	src   SortListing
	n     int
	byID  []uint32 // positions, in id order
	rank  []uint32 // rank[pos] is pos's index in byID
	built time.Time
	cost  time.Duration
}

// sortRow is a product in a keyOrder: its key, split so that a row takes
// 12 bytes, and its rank in the id order the keyOrder was built with.
type sortRow struct {
	hi, lo, rank uint32
}

func (r sortRow) key() uint64 { return uint64(r.hi)<<32 | uint64(r.lo) }

func cmpRow(a, b sortRow) int {
	switch {
	case a.hi != b.hi:
		return cmpU32(a.hi, b.hi)
	case a.lo != b.lo:
		return cmpU32(a.lo, b.lo)
	}
	return cmpU32(a.rank, b.rank)
}

func cmpU32(a, b uint32) int {
	if a < b {
		return -1
	}
	if a > b {
		return 1
	}
	return 0
}

// keyOrder is a listing sorted by one key, ascending.
type keyOrder struct {
	ids   *idOrder
	rows  []sortRow
	built time.Time
	cost  time.Duration
}

// Sorter keeps the sorted copies of one listing (a View's, or Redis'). Its
// zero value is ready to use; it is safe for concurrent use.
type Sorter struct {
	now func() time.Time

	idMu sync.Mutex // serialises building ids
	ids  atomic.Pointer[idOrder]
	keys [numSortKeys]sortSlot
}

type sortSlot struct {
	mu   sync.Mutex // serialises building cur
	cur  atomic.Pointer[keyOrder]
	used atomic.Int64 // unix ns of the last page read from it
}

func (s *Sorter) clock() time.Time {
	if s.now != nil {
		return s.now()
	}
	return time.Now()
}

// stale reports whether a copy built at built, costing cost, may be built
// again.
func (s *Sorter) stale(built time.Time, cost time.Duration) bool {
	return s.clock().Sub(built) >= max(sortMinAge, sortCostFactor*cost)
}

// idOrder returns the id order of src, building it if there is none, or if
// src holds more products than it and it is stale. Only the first build
// makes requests wait; later ones are made by the request that finds the
// copy stale while the others read the old one.
func (s *Sorter) idOrder(src SortListing) *idOrder {
	cur := s.ids.Load()
	if cur != nil && (cur.n == src.Len() || !s.stale(cur.built, cur.cost)) {
		return cur
	}
	if cur != nil {
		if !s.idMu.TryLock() {
			return cur
		}
	} else {
		s.idMu.Lock()
		if cur = s.ids.Load(); cur != nil {
			s.idMu.Unlock()
			return cur
		}
	}
	defer s.idMu.Unlock()
	start := s.clock()
	n := src.Len()
	type idPos struct {
		id  string
		pos uint32
	}
	tmp := make([]idPos, n)
	for i := range tmp {
		tmp[i] = idPos{src.ID(i), uint32(i)}
	}
	slices.SortFunc(tmp, func(a, b idPos) int { return strings.Compare(a.id, b.id) })
	o := &idOrder{src: src, n: n, byID: make([]uint32, n), rank: make([]uint32, n), built: start}
	for i, t := range tmp {
		o.byID[i] = t.pos
		o.rank[t.pos] = uint32(i)
	}
	o.cost = s.clock().Sub(start)
	s.ids.Store(o)
	return o
}

// keyOrder returns the listing sorted by k, building it as idOrder builds
// the id order. A failed build keeps the last copy, if there is one.
func (s *Sorter) keyOrder(ctx context.Context, k SortKey, src SortListing) (*keyOrder, error) {
	sl := &s.keys[k]
	now := s.clock()
	sl.used.Store(now.UnixNano())
	cur := sl.cur.Load()
	if cur != nil && !s.stale(cur.built, cur.cost) {
		return cur, nil
	}
	if cur != nil {
		if !sl.mu.TryLock() {
			return cur, nil
		}
	} else {
		sl.mu.Lock()
		if cur = sl.cur.Load(); cur != nil {
			sl.mu.Unlock()
			return cur, nil
		}
	}
	defer sl.mu.Unlock()
	ids := s.idOrder(src)
	rows := make([]sortRow, ids.n)
	err := ids.src.Keys(ctx, k, ids.n, func(pos int, key uint64) {
		rows[pos] = sortRow{hi: uint32(key >> 32), lo: uint32(key), rank: ids.rank[pos]}
	})
	if err != nil {
		if cur != nil {
			return cur, nil
		}
		return nil, err
	}
	slices.SortFunc(rows, cmpRow)
	o := &keyOrder{ids: ids, rows: rows, built: now, cost: s.clock().Sub(now)}
	sl.cur.Store(o)
	// Copies nobody reads go: they are catalog-sized.
	for i := range s.keys {
		if o := &s.keys[i]; o != sl && now.UnixNano()-o.used.Load() >= int64(sortIdle) {
			o.cur.Store(nil)
		}
	}
	return o, nil
}

// Page finds a page of the listing src, as of now, in order p.Sort (not
// ByCatalog): the positions in the returned listing (src, or the one the
// sorted copy was built from) of up to p.Limit products after p.After that
// pass p.Match, appended to out[:0], and the cursor of the next page (""
// at the end). A failure is src's, or ErrBadCursor.
func (s *Sorter) Page(ctx context.Context, src SortListing, p Page, out []uint32) (SortListing, []uint32, string, error) {
	var c sortCursor
	if p.After != "" {
		var err error
		if c, err = p.Sort.parseCursor(p.After); err != nil {
			return nil, nil, "", err
		}
	}
	// The rows in ascending order, as a length and an accessor, so that
	// the id order and a key order are walked alike.
	var (
		n     int
		posAt func(i int) uint32
		keyAt func(i int) uint64
		ids   *idOrder
	)
	if p.Sort.Key == ByID {
		ids = s.idOrder(src)
		n = ids.n
		posAt = func(i int) uint32 { return ids.byID[i] }
		keyAt = func(int) uint64 { return 0 }
	} else {
		o, err := s.keyOrder(ctx, p.Sort.Key, src)
		if err != nil {
			return nil, nil, "", err
		}
		ids, n = o.ids, len(o.rows)
		posAt = func(i int) uint32 { return ids.byID[o.rows[i].rank] }
		keyAt = func(i int) uint64 { return o.rows[i].key() }
	}
	// cmp compares row i with the cursor.
	cmp := func(i int) int {
		if k := keyAt(i); k != c.key {
			if k < c.key {
				return -1
			}
			return 1
		}
		return strings.Compare(ids.src.ID(int(posAt(i))), c.id)
	}
	// Walk from the first row after the cursor, in the sort's direction.
	i, step := 0, 1
	if p.Sort.Desc {
		i, step = n-1, -1
		if p.After != "" {
			i = sort.Search(n, func(i int) bool { return cmp(i) >= 0 }) - 1
		}
	} else if p.After != "" {
		i = sort.Search(n, func(i int) bool { return cmp(i) > 0 })
	}
	out = out[:0]
	last := -1
	for ; i >= 0 && i < n; i += step {
		pos := posAt(i)
		if !p.Includes(ids.src.ID(int(pos))) {
			continue
		}
		if len(out) == p.Limit {
			next := p.Sort.appendCursor(nil, sortCursor{key: keyAt(last), id: ids.src.ID(int(posAt(last)))})
			return ids.src, out, string(next), nil
		}
		out = append(out, pos)
		last = i
	}
	return ids.src, out, "", nil
}

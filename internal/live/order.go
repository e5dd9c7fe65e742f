package live

import (
	"context"
	"slices"
	"sync"
	"time"
)

// CatalogOrder puts product ids into catalog order. Redis lists products
// in the order engines first wrote them, which with several partitions is
// an interleaving of theirs; GET /prices and a WebSocket snapshot promise
// the catalog's order, which only the database knows. It is safe for
// concurrent use.
type CatalogOrder struct {
	load  func(context.Context) ([]string, error)
	every time.Duration
	now   func() time.Time

	mu     sync.Mutex
	pos    map[string]int
	loaded time.Time
}

// NewCatalogOrder returns an order read with load (the catalog's ids in
// order), at most once per every (a product unknown to the last load
// triggers the next one: the catalog grew).
func NewCatalogOrder(load func(context.Context) ([]string, error), every time.Duration) *CatalogOrder {
	return &CatalogOrder{load: load, every: every, now: time.Now}
}

// Sort sorts ids into catalog order in place. Ids the catalog did not hold
// at the last load keep their relative order, after the others. A failed
// load keeps the last order: a listing is never refused for want of it.
func (o *CatalogOrder) Sort(ctx context.Context, ids []string) {
	pos := o.positions(ctx, ids)
	slices.SortStableFunc(ids, func(a, b string) int {
		pa, oka := pos[a]
		pb, okb := pos[b]
		switch {
		case oka && okb:
			return pa - pb
		case oka:
			return -1
		case okb:
			return 1
		}
		return 0
	})
}

// positions returns the catalog positions, loading them again if one of
// ids is unknown and the last load is old enough.
func (o *CatalogOrder) positions(ctx context.Context, ids []string) map[string]int {
	o.mu.Lock()
	defer o.mu.Unlock()
	stale := o.pos == nil
	for _, id := range ids {
		if _, ok := o.pos[id]; !ok {
			stale = true
			break
		}
	}
	if !stale || o.now().Sub(o.loaded) < o.every {
		return o.pos
	}
	o.loaded = o.now()
	all, err := o.load(ctx)
	if err != nil {
		return o.pos
	}
	pos := make(map[string]int, len(all))
	for i, id := range all {
		pos[id] = i
	}
	o.pos = pos
	return pos
}

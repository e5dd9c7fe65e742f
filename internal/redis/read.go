package redis

import (
	"context"
	"fmt"
	"strconv"

	"github.com/dynaprice/dynaprice/internal/live"
	"github.com/dynaprice/dynaprice/internal/pricing"
	"github.com/redis/rueidis"
)

// Price returns the GET /price body of a product, from the client-side
// cache when possible. ok is false for an unknown product; that answer is
// cached too, and invalidated as soon as an engine writes the product.
func (c *Client) Price(ctx context.Context, id string) (body []byte, ok bool, err error) {
	s, err := c.rc.DoCache(ctx, c.jsonCmd(id), c.ttl).ToString()
	if err != nil {
		if rueidis.IsRedisNil(err) {
			return nil, false, nil
		}
		return nil, false, fmt.Errorf("redis: price %q: %w", id, err)
	}
	// Copied: the string is shared with the cache, and a caller writing to
	// the slice must not corrupt what the next reader gets.
	return []byte(s), true, nil
}

func (c *Client) jsonCmd(id string) rueidis.Cacheable {
	return c.rc.B().Hget().Key(c.k.product + id).Field("json").Cache()
}

// listing is every product id in listing order, with each id's position
// so that a page can start after any of them.
type listing struct {
	ids []string
	pos map[string]int
}

// listing returns every product id in listing order: Config.Order's, else
// the order first written. It is built once and kept while the order set
// holds as many ids: the set only ever grows (an id is added when a product
// is first written), and its cached ZCARD is invalidated by the write that
// grows it, so a listing is never older than this Client's own writes.
// Building it reads the set once; pages and snapshots share it, so a
// request never copies the set.
func (c *Client) listing(ctx context.Context) (*listing, error) {
	n, err := c.rc.DoCache(ctx, c.rc.B().Zcard().Key(c.k.order).Cache(), c.ttl).AsInt64()
	if err != nil {
		return nil, fmt.Errorf("redis: listing products: %w", err)
	}
	if l := c.list.Load(); l != nil && int64(len(l.ids)) == n {
		return l, nil
	}
	c.listMu.Lock()
	defer c.listMu.Unlock()
	if l := c.list.Load(); l != nil && int64(len(l.ids)) == n {
		return l, nil // built by another request meanwhile
	}
	ids, err := c.rc.Do(ctx, c.rc.B().Zrange().Key(c.k.order).Min("0").Max("-1").Build()).AsStrSlice()
	if err != nil {
		return nil, fmt.Errorf("redis: listing products: %w", err)
	}
	if c.order != nil {
		c.order(ctx, ids)
	}
	l := &listing{ids: ids, pos: make(map[string]int, len(ids))}
	for i, id := range ids {
		l.pos[id] = i
	}
	c.list.Store(l)
	return l, nil
}

// AppendPage appends a page of the GET /prices listing (see live.Pager), in
// listing order (see listing), or sorted (see ListingSource): without
// Config.Order, the same bytes live.View gives for the same changes. The
// page's prices come from the client-side cache; only the ones evicted
// since they were last read are fetched, in one round trip. On error dst
// is returned unchanged.
func (c *Client) AppendPage(ctx context.Context, dst []byte, p live.Page) ([]byte, int, string, error) {
	if p.Sort.Key != live.ByCatalog {
		l, err := c.listing(ctx)
		if err != nil {
			return dst, 0, "", err
		}
		src, rows, next, err := c.sorted.Page(ctx, sortListing{c, l}, p, nil)
		if err != nil {
			return dst, 0, "", err
		}
		ids := make([]string, len(rows))
		for i, pos := range rows {
			ids[i] = src.ID(int(pos))
		}
		out, n, err := c.appendPrices(ctx, dst, ids)
		if err != nil {
			return dst, 0, "", err
		}
		return out, n, next, nil
	}
	l, err := c.listing(ctx)
	if err != nil {
		return dst, 0, "", err
	}
	start := 0
	if p.After != "" {
		i, ok := l.pos[p.After]
		if !ok {
			return dst, 0, "", live.ErrUnknownCursor
		}
		start = i + 1
	}
	page := make([]string, 0, min(p.Limit, len(l.ids)-start))
	more := false
	for _, id := range l.ids[start:] {
		if !p.Includes(id) {
			continue
		}
		if len(page) == p.Limit {
			more = true
			break
		}
		page = append(page, id)
	}
	out, n, err := c.appendPrices(ctx, dst, page)
	if err != nil {
		return dst, 0, "", err
	}
	next := ""
	if more {
		next = page[len(page)-1]
	}
	return out, n, next, nil
}

// appendPrices appends the GET /price bodies of ids, comma-separated, from
// the client-side cache, skipping products removed by hand since the
// listing was built.
func (c *Client) appendPrices(ctx context.Context, dst []byte, ids []string) ([]byte, int, error) {
	if len(ids) == 0 {
		return dst, 0, nil
	}
	cmds := make([]rueidis.CacheableTTL, len(ids))
	for i, id := range ids {
		cmds[i] = rueidis.CT(c.jsonCmd(id), c.ttl)
	}
	out, n := dst, 0
	for i, r := range c.rc.DoMultiCache(ctx, cmds...) {
		s, err := r.ToString()
		if rueidis.IsRedisNil(err) {
			continue
		}
		if err != nil {
			return dst, 0, fmt.Errorf("redis: price %q: %w", ids[i], err)
		}
		if n > 0 {
			out = append(out, ',')
		}
		out = append(out, s...)
		n++
	}
	return out, n, nil
}

// sortListing is a listing as live.Sorter sorts it: each product's sort
// key is read from its hash, sortChunk products per round trip, bypassing
// the client-side cache, which would otherwise fill with a field per
// product and sort key. A million products take a thousand round trips,
// which is why the sorted copies of a large catalog are rebuilt less often
// than those of a small one (see live.Sorter).
type sortListing struct {
	c *Client
	l *listing
}

// sortChunk is how many products' keys one round trip reads.
const sortChunk = 1000

// sortFields are the hash fields of the sort keys.
var sortFields = [...]string{live.ByPrice: "price", live.ByDemand: "demand", live.ByLowest: "low30", live.ByUpdated: "at", live.BySource: "source"}

func (s sortListing) Len() int          { return len(s.l.ids) }
func (s sortListing) ID(pos int) string { return s.l.ids[pos] }

func (s sortListing) Keys(ctx context.Context, k live.SortKey, n int, set func(int, uint64)) error {
	field := sortFields[k]
	cmds := make(rueidis.Commands, 0, sortChunk)
	for start := 0; start < n; start += sortChunk {
		ids := s.l.ids[start:min(start+sortChunk, n)]
		cmds = cmds[:0]
		for _, id := range ids {
			cmds = append(cmds, s.c.rc.B().Hget().Key(s.c.k.product+id).Field(field).Build())
		}
		for i, r := range s.c.rc.DoMulti(ctx, cmds...) {
			v, err := r.ToString()
			if rueidis.IsRedisNil(err) {
				set(start+i, 0) // removed by hand: skipped when listed
				continue
			}
			if err != nil {
				return fmt.Errorf("redis: sorting products: %w", err)
			}
			key, err := live.ParseSortKey(k, v)
			if err != nil {
				return fmt.Errorf("redis: product %q: %w", ids[i], err)
			}
			set(start+i, key)
		}
	}
	return nil
}

// AppendAll appends the whole listing, {"prices":[...]} (see
// live.AppendAll).
func (c *Client) AppendAll(ctx context.Context, dst []byte) ([]byte, error) {
	return live.AppendAll(ctx, c, dst)
}

// changeFields lists the hash fields Changes reads, in the order parseChange
// expects them. An array is returned by value so that no caller can alter it.
func changeFields() [6]string {
	return [6]string{"v", "price", "demand", "source", "at", "low30"}
}

// Changes returns every product's latest state in listing order, as an
// API replica fills its own copy when it starts. Each change is rebuilt
// from the hash fields, which hold full-precision numbers. PriceChanged is
// always true: a snapshot presents every price as news to its receiver,
// and it is the one field that describes a transition rather than a state.
func (c *Client) Changes(ctx context.Context) ([]live.Price, error) {
	l, err := c.listing(ctx)
	if err != nil || len(l.ids) == 0 {
		return nil, err
	}
	return c.changesOf(ctx, l.ids)
}

// SnapshotPage returns the latest state of up to limit products after the
// product after, in listing order, and the next page's cursor: a page of a
// WebSocket snapshot (see live.Snapshotter), read like Changes.
func (c *Client) SnapshotPage(ctx context.Context, after string, limit int) ([]live.Price, string, error) {
	l, err := c.listing(ctx)
	if err != nil {
		return nil, "", err
	}
	start := 0
	if after != "" {
		i, ok := l.pos[after]
		if !ok {
			return nil, "", live.ErrUnknownCursor
		}
		start = i + 1
	}
	ids := l.ids[start:min(start+limit, len(l.ids))]
	ps, err := c.changesOf(ctx, ids)
	if err != nil {
		return nil, "", err
	}
	next := ""
	if start+len(ids) < len(l.ids) {
		next = ids[len(ids)-1]
	}
	return ps, next, nil
}

// SnapshotOf returns the latest state of those of ids that Redis holds, for
// the snapshot of a WebSocket client that chose its products.
func (c *Client) SnapshotOf(ctx context.Context, ids []string) ([]live.Price, error) {
	return c.changesOf(ctx, ids)
}

// changesOf reads the latest state of ids, through the client-side cache,
// leaving out those Redis does not hold.
func (c *Client) changesOf(ctx context.Context, ids []string) ([]live.Price, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	cmds := make([]rueidis.CacheableTTL, len(ids))
	for i, id := range ids {
		cmds[i] = rueidis.CT(c.changeCmd(id), c.ttl)
	}
	out := make([]live.Price, 0, len(ids))
	for i, r := range c.rc.DoMultiCache(ctx, cmds...) {
		vals, err := r.ToArray()
		if err != nil {
			return nil, fmt.Errorf("redis: product %q: %w", ids[i], err)
		}
		ch, ok, err := parseChange(ids[i], vals)
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, ch)
		}
	}
	return out, nil
}

// Lookup returns a product's live price, from the client-side cache when
// possible (see Price). ok is false for an unknown product.
func (c *Client) Lookup(ctx context.Context, id string) (p live.Price, ok bool, err error) {
	vals, err := c.rc.DoCache(ctx, c.changeCmd(id), c.ttl).ToArray()
	if err != nil {
		return p, false, fmt.Errorf("redis: product %q: %w", id, err)
	}
	return parseChange(id, vals)
}

// changeCmd reads a product's changeFields.
func (c *Client) changeCmd(id string) rueidis.Cacheable {
	fields := changeFields()
	return c.rc.B().Hmget().Key(c.k.product + id).Field(fields[:]...).Cache()
}

// parseChange rebuilds a change from the HMGET of changeFields. ok is false
// when the hash does not exist (every field nil).
func parseChange(id string, vals []rueidis.RedisMessage) (ch live.Price, ok bool, err error) {
	fields := changeFields()
	if len(vals) != len(fields) {
		return ch, false, fmt.Errorf("redis: product %q: %d fields, want %d", id, len(vals), len(fields))
	}
	var s [len(fields)]string
	missing := 0
	for i := range vals {
		if vals[i].IsNil() {
			missing++
			continue
		}
		if s[i], err = vals[i].ToString(); err != nil {
			return ch, false, fmt.Errorf("redis: product %q field %s: %w", id, fields[i], err)
		}
	}
	switch missing {
	case 0:
	case len(vals):
		return ch, false, nil
	default:
		return ch, false, fmt.Errorf("redis: product %q: incomplete hash", id)
	}
	ch = live.Price{ProductID: id, PriceChanged: true}
	var ok2 bool
	if ch.Source, ok2 = pricing.ParseSource(s[3]); !ok2 {
		return ch, false, fmt.Errorf("redis: product %q: unknown source %q", id, s[3])
	}
	var errs [5]error
	ch.Version, errs[0] = strconv.ParseUint(s[0], 10, 64)
	ch.Price, errs[1] = strconv.ParseFloat(s[1], 64)
	ch.Demand, errs[2] = strconv.ParseFloat(s[2], 64)
	ch.At, errs[3] = strconv.ParseInt(s[4], 10, 64)
	ch.Lowest30, errs[4] = strconv.ParseFloat(s[5], 64)
	for _, e := range errs {
		if e != nil {
			return ch, false, fmt.Errorf("redis: product %q: %w", id, e)
		}
	}
	return ch, true, nil
}

// Version returns the version stored for a product. It bypasses the
// client-side cache: callers use it to decide what still has to be written
// (e.g. an engine catching Redis up after a restart), so it must reflect
// Redis itself, not a copy that an in-flight invalidation is about to evict.
func (c *Client) Version(ctx context.Context, id string) (uint64, bool, error) {
	s, err := c.rc.Do(ctx, c.rc.B().Hget().Key(c.k.product+id).Field("v").Build()).ToString()
	if err != nil {
		if rueidis.IsRedisNil(err) {
			return 0, false, nil
		}
		return 0, false, fmt.Errorf("redis: version %q: %w", id, err)
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, false, fmt.Errorf("redis: version %q: %w", id, err)
	}
	return v, true, nil
}

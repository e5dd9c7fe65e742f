package engine

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/dynaprice/dynaprice/internal/ingest"
	"github.com/dynaprice/dynaprice/internal/live"
	"github.com/dynaprice/dynaprice/internal/pricing"
)

const (
	flagTouched = 1 << iota
	flagPriceChanged
)

// Machine is the engine's state machine without any I/O: it applies events,
// overrides, catalog changes and clock ticks to a pricing.Book and collects
// what must be committed (a Batch) and what must be published (prices).
//
// A Partition drives it, in both modes: fed by serve's Writer from API
// requests, or by the Kafka engine from a partition's records (then the
// batch is committed with the consumed offsets). Only what was committed is
// published. A Machine is not safe for concurrent use.
type Machine struct {
	cfg  Config
	book *pricing.Book
	seen *seenIDs

	// Reused per batch.
	batch   Batch
	counts  [3]int // events applied, duplicates and rejected since Begin
	dirty   []uint8
	touched []int
	changes []live.Price
	// histOf is the product of each row of batch.History; pos and hist are
	// Seal's scratch space for putting the rows in key order.
	histOf []int32
	pos    []int32
	hist   []HistoryRow
	keys   []uint64
	// peaks are the recent high-water marks of the scratch lists (Begin).
	peaks [5]Peak
	// rank is each product's position in id order, computed again after
	// the catalog grew (rankLen products are ranked).
	rank    []int32
	rankLen int
	grew    bool // the catalog grew since Begin
	// held is how many products the breaker holds; heldMark says which.
	held     int
	heldMark []bool
	// fallen is how many learning products fell back to their list price
	// for want of purchases (pricing.Book.Fallback); fallMark says which.
	fallen   int
	fallMark []bool
	// unpriced are the products loaded without a state, whose first price
	// the next round records (recordFirstPrices); unpricedAtBegin are
	// those of the round's start, for Undo.
	unpriced        []int
	unpricedAtBegin []int

	// The round's undo log (undo.go): the products it changed as they
	// were at Begin, isKept marking them; base is the catalog's size at
	// Begin. noUndo is set by a change Undo cannot take back.
	undo   []kept
	isKept []bool
	base   int
	noUndo bool

	// Timers (timers.go): a min-heap of each product's next tick, due[i]
	// the time of product i's live one (0: none). clock is the latest
	// time the machine was given.
	timers []timer
	due    []int64
	clock  int64

	// currency is the catalog's currency (ISO 4217), "" until one is set
	// (pricing.DefaultCurrency applies).
	currency string
	// exps are the price experiments (experiments.go).
	exps expTable
}

// at advances the machine's clock to now.
func (m *Machine) at(now int64) { m.clock = max(m.clock, now) }

// NewMachine returns an empty machine; Load gives it its state. cfg must
// be valid (Config.Validate).
func NewMachine(cfg Config) *Machine {
	return &Machine{cfg: cfg}
}

// Load replaces the machine's state with snap and returns every product's
// current state, to publish. Pending (unsealed) changes are discarded.
func (m *Machine) Load(snap Snapshot, now int64) ([]live.Price, error) {
	pc := m.cfg.Pricing
	if s := snap.Settings["default_strategy"]; s != "" {
		pc.DefaultStrategy = s
	}
	book, err := pricing.NewBook(pc)
	if err != nil {
		return nil, err
	}
	m.unpriced, err = book.Load(snap.Products, snap.States, snap.Stated, now)
	if err != nil {
		return nil, fmt.Errorf("stored catalog: %w", err)
	}
	m.book = book
	m.currency = snap.Settings["currency"]
	m.loadExperiments(snap.Experiments)
	m.seen = newSeenIDs(m.cfg.DedupMax, randomMultiplier())
	m.seen.window = int64(m.cfg.DedupWindow)
	m.seen.reserve(len(snap.Seen))
	for _, s := range snap.Seen {
		m.seen.add(s.Hash, s.At)
	}
	m.seen.evictedYoung = 0 // a smaller --dedup-max than before, not an attack
	n := book.Len()
	m.dirty = make([]uint8, n)
	m.touched, m.changes, m.histOf = m.touched[:0], m.changes[:0], m.histOf[:0]
	m.rankLen = 0
	m.batch.Reset()
	m.undo, m.isKept, m.base, m.noUndo = m.undo[:0], make([]bool, n), n, false
	m.clock = now
	m.due, m.heldMark, m.held = make([]int64, n), make([]bool, n), 0
	m.fallMark, m.fallen = make([]bool, n), 0
	for i := range n {
		m.due[i] = book.NextTick(i, now)
		if book.Held(i) {
			m.heldMark[i] = true
			m.held++
		}
		if book.Fallback(i) {
			m.fallMark[i] = true
			m.fallen++
		}
	}
	m.rebuildTimers()
	all := make([]live.Price, 0, book.Len())
	for i := 0; i < book.Len(); i++ {
		all = append(all, m.change(i, true))
	}
	return all, nil
}

// savedStates returns product i's state as the store holds it: nil for a
// product loaded without one whose first price is not recorded yet.
func (m *Machine) savedStates() func(i int) *pricing.State {
	var none []bool
	if len(m.unpriced) > 0 {
		none = make([]bool, m.book.Len())
		for _, i := range m.unpriced {
			none[i] = true
		}
	}
	return func(i int) *pricing.State {
		if none != nil && none[i] {
			return nil
		}
		return m.book.State(i)
	}
}

// Seal completes the batch of everything applied since the last Seal (or
// Load) and returns it with the changes to publish once it is committed.
// Both stay valid until the next call that changes the machine.
func (m *Machine) Seal() (*Batch, []live.Price) {
	b := &m.batch
	m.sortHistory()
	for _, i := range m.touched {
		b.States = append(b.States, ProductState{ID: m.book.Product(i).ID, Hint: int32(i), State: m.book.State(i).Copy()})
		m.changes = append(m.changes, m.change(i, m.dirty[i]&flagPriceChanged != 0))
		m.dirty[i] = 0
		m.track(i, 0)
	}
	m.touched = m.touched[:0]
	m.sealExperiments()
	return b, m.changes
}

// recordFirstPrices adds to the batch, once, the first price of every
// product loaded without a state: a catalog written straight to the
// database (dynaprice migrate seeds it so) was never priced by an engine.
// Its first price is a history row like any other, as when a product is
// created through the engine: the original wrote such a "base" row, and
// charts start from it. Begin calls it, so that the rows come before any
// the round adds (a product's rows are appended in version order).
func (m *Machine) recordFirstPrices() {
	for _, i := range m.unpriced {
		s := m.book.State(i)
		if m.dirty[i] == 0 {
			m.touched = append(m.touched, i)
		}
		// Touched, not flagPriceChanged: Load published the price already,
		// and a catalog of a million products must not announce them all
		// again to WebSocket clients and price-updates.
		m.dirty[i] |= flagTouched
		m.batch.History = append(m.batch.History, HistoryRow{ProductID: m.book.Product(i).ID, Hint: int32(i), Price: s.Price,
			Demand: s.DynDemand, Source: s.Source, At: s.ChangedAt, Version: s.Version})
		m.histOf = append(m.histOf, int32(i))
	}
	m.unpriced = m.unpriced[:0]
}

// sortTouched sorts the touched products by id. It compares each
// product's rank in id order (integers compare faster than strings) when
// the ranks are current, and builds them when that pays: the catalog did
// not grow in this batch, and it is at most 16 times the touched products,
// so a build costs a few rounds' sorting. Otherwise (a large catalog of
// which a round touches little, or products being created) it compares
// the ids themselves: one sort of the touched products, never of the
// catalog.
func (m *Machine) sortTouched() {
	n := m.book.Len()
	if m.rankLen != n && (m.grew || n > 16*len(m.touched)) {
		slices.SortFunc(m.touched, func(x, y int) int {
			return strings.Compare(m.book.Product(x).ID, m.book.Product(y).ID)
		})
		return
	}
	if m.rankLen != n {
		order := make([]int32, n)
		for i := range order {
			order[i] = int32(i)
		}
		slices.SortFunc(order, func(x, y int32) int {
			return strings.Compare(m.book.Product(int(x)).ID, m.book.Product(int(y)).ID)
		})
		m.rank = slices.Grow(m.rank[:0], n)[:n]
		for r, i := range order {
			m.rank[i] = int32(r)
		}
		m.rankLen = n
	}
	m.keys = m.keys[:0]
	for _, i := range m.touched {
		m.keys = append(m.keys, uint64(m.rank[i])<<32|uint64(i))
	}
	slices.Sort(m.keys)
	for k, key := range m.keys {
		m.touched[k] = int(uint32(key))
	}
}

// Begin starts a new batch, forgetting the sealed one (which was
// committed, or undone).
func (m *Machine) Begin() {
	m.counts = [3]int{}
	m.grew = false
	// The scratch space sized by the last batch shrinks with the batch
	// (Trim); the per-product tables (dirty, pos, rank) keep the
	// catalog's size.
	rows, touched := len(m.batch.History), len(m.changes)
	m.hist, m.histOf = shrink(m.hist, rows, &m.peaks[0]), shrink(m.histOf, rows, &m.peaks[1])
	m.touched, m.keys = shrink(m.touched, touched, &m.peaks[2]), shrink(m.keys, touched, &m.peaks[3])
	m.changes = shrink(m.changes, touched, &m.peaks[4])
	m.batch.Reset()
	m.forgetKept()
	m.beginExperiments()
	m.base, m.noUndo, m.seen.evicted = m.book.Len(), false, 0
	m.unpricedAtBegin = append(m.unpricedAtBegin[:0], m.unpriced...)
	if len(m.unpriced) > 0 {
		m.recordFirstPrices()
	}
}

// All returns every product's current price, as published, in catalog
// order: for a publisher that must catch up (the live view in Redis after
// an outage).
func (m *Machine) All() []live.Price {
	out := make([]live.Price, m.book.Len())
	for i := range out {
		out[i] = m.change(i, false)
	}
	return out
}

// Counts returns the events applied, the duplicates and the rejected
// events since Begin.
func (m *Machine) Counts() (applied, duplicates, rejected int) {
	return m.counts[0], m.counts[1], m.counts[2]
}

// AddDuplicates counts n inputs that were dropped as already applied
// before they reached the machine (a record forwarded again after a crash).
func (m *Machine) AddDuplicates(n int) { m.counts[1] += n }

// Explain explains a product's current price.
func (m *Machine) Explain(id string) (pricing.Explanation, error) {
	i, ok := m.book.Index(id)
	if !ok {
		return pricing.Explanation{}, errorf(KindNotFound, "unknown product_id %q", id)
	}
	return m.book.Explain(i), nil
}

// Index returns a product's position in the catalog (load order), for
// callers that address products by index on a hot path (the simulator).
func (m *Machine) Index(id string) (int, bool) { return m.book.Index(id) }

// PriceAt returns the current price of the product at index i.
func (m *Machine) PriceAt(i int) float64 { return m.book.State(i).Price }

// Has reports whether id is in the catalog.
func (m *Machine) Has(id string) bool {
	_, ok := m.book.Index(id)
	return ok
}

// EvictedInWindow returns, and resets, how many remembered event ids were
// forgotten for want of room (DedupMax) while younger than DedupWindow.
func (m *Machine) EvictedInWindow() int {
	n := m.seen.evictedYoung
	m.seen.evictedYoung = 0
	return n
}

// ForgetSeen forgets applied event ids older than cutoff (unix ns).
func (m *Machine) ForgetSeen(cutoff int64) { m.seen.expire(cutoff) }

func (m *Machine) change(i int, priceChanged bool) live.Price {
	s := m.book.State(i)
	return live.Price{
		ProductID: m.book.Product(i).ID, Price: s.Price, Source: s.Source, Demand: s.DynDemand,
		Version: s.Version, At: s.ChangedAt, Lowest30: s.Lowest30, PriceChanged: priceChanged,
	}
}

// touch records that product i changed and, if its price changed, adds the
// history row.
func (m *Machine) touch(i int, priceChanged bool) {
	if m.dirty[i] == 0 {
		m.touched = append(m.touched, i)
	}
	m.dirty[i] |= flagTouched
	if priceChanged {
		m.dirty[i] |= flagPriceChanged
		s := m.book.State(i)
		m.batch.History = append(m.batch.History, HistoryRow{
			ProductID: m.book.Product(i).ID, Hint: int32(i), Price: s.Price, Demand: s.DynDemand,
			Source: s.Source, At: s.ChangedAt, Version: s.Version,
		})
		m.histOf = append(m.histOf, int32(i))
	}
}

// roll adds product i's analytics tally to the batch as a row if its hour
// is over (pricing.Book.RollTally), before anything of a later hour is
// counted. The row names the product's strategy now, which is the one
// that priced the hour unless the catalog changed it since.
func (m *Machine) roll(i int) {
	t, ok := m.book.RollTally(i, m.clock)
	if !ok {
		return
	}
	m.batch.Analytics = append(m.batch.Analytics, AnalyticsRow{ProductID: m.book.Product(i).ID, Hint: int32(i),
		Strategy: m.book.StrategyName(i), Tally: t})
	m.touch(i, false)
}

// sortHistory puts the batch's history rows in key order (SortHistory's:
// product id, then At, then Version) and the touched products in id order.
// A product's own rows are appended in that order already (its versions
// only grow, and time with them), so it sorts the touched products, which
// are far fewer than the rows, and moves each row to its product's place:
// a counting sort, with no comparison per row and no allocation once the
// scratch space has grown.
func (m *Machine) sortHistory() {
	rows := m.batch.History
	if len(m.touched) > 1 {
		m.sortTouched()
	}
	if len(rows) < 2 {
		m.histOf = m.histOf[:0]
		return
	}
	for len(m.pos) < m.book.Len() {
		m.pos = append(m.pos, 0)
	}
	for _, i := range m.histOf {
		m.pos[i]++
	}
	next := int32(0)
	for _, i := range m.touched {
		n := m.pos[i]
		m.pos[i] = next
		next += n
	}
	m.hist = slices.Grow(m.hist[:0], len(rows))[:len(rows)]
	for k, i := range m.histOf {
		m.hist[m.pos[i]] = rows[k]
		m.pos[i]++
	}
	for _, i := range m.touched {
		m.pos[i] = 0
	}
	// Swap: the sorted rows become the batch's, the old ones the scratch.
	m.batch.History, m.hist = m.hist, rows[:0]
	m.histOf = m.histOf[:0]
}

// ApplyEvents applies events, adding to res: events naming unknown products
// are rejected (or create the product, with AutoCreate); events whose id was
// applied before are counted as accepted duplicates and not applied again.
func (m *Machine) ApplyEvents(events []ingest.Event, now int64, res *SubmitResult) {
	m.at(now)
	for k := range events {
		ev := &events[k]
		var h uint64
		if ev.EventID != "" {
			if h = EventHash(ev.EventID); m.seen.has(h) {
				res.Accepted++
				res.Duplicates++
				m.counts[1]++
				continue
			}
		}
		i, ok := m.book.Index(ev.ProductID)
		if !ok {
			var err error
			if i, err = m.autoCreate(ev, now); err != nil {
				res.Rejects = append(res.Rejects, rejectAt(k, err.Error()))
				m.counts[2]++
				continue
			}
		}
		m.keep(i)
		m.roll(i)
		switch ev.Type {
		case pricing.Stock:
			m.touch(i, m.book.SetStock(i, float64(ev.Quantity), now))
		case pricing.CompetitorPrice:
			m.touch(i, m.book.SetCompetitorPrice(i, ev.Competitor, ev.Price, now))
		default:
			qty := ev.Quantity
			if qty <= 0 {
				qty = 1
			}
			if max := m.book.MaxQuantity(i); max > 0 && qty > max {
				res.Rejects = append(res.Rejects, rejectAt(k, fmt.Sprintf(
					"quantity %d is above product %q's max_quantity %d", qty, ev.ProductID, max)))
				m.counts[2]++
				continue
			}
			if m.cfg.BaseFromEvents {
				m.baseFromEvent(i, ev.Price)
			}
			m.touch(i, m.book.ApplyAt(i, ev.Type, qty, ev.Price, ev.Timestamp, now))
			if m.exps.inExp > 0 {
				m.countExperiment(i, ev, qty, now)
			}
		}
		if ev.EventID != "" {
			m.seen.add(h, now)
			m.batch.Seen = append(m.batch.Seen, SeenID{Hash: h, At: now})
		}
		res.Accepted++
		m.counts[0]++
	}
}

// baseFromEvent makes price (the price a shopper's event carries) product
// i's base price, as the original system priced every event: its formula
// was the event's price plus sqrt(demand) × 5. The change is a catalog
// write, so it is committed with the batch; an event without a usable
// price, or with the base price already, changes nothing.
func (m *Machine) baseFromEvent(i int, price float64) {
	if pricing.CheckPrice("price", price) != nil {
		return
	}
	p := m.book.Product(i)
	if base := pricing.RoundCents(price); base != p.BasePrice {
		p.BasePrice = base
		m.book.SetBasePrice(i, base)
		m.batch.Products = append(m.batch.Products, p)
		m.catalogChanged(i)
	}
}

// autoCreate creates the unknown product an event names, from the price
// the shopper saw, when AutoCreate is on. A market signal never creates
// one: a competitor's price or a stock count is not a list price.
func (m *Machine) autoCreate(ev *ingest.Event, now int64) (int, error) {
	id, price := ev.ProductID, ev.Price
	if !(m.cfg.AutoCreate || m.cfg.BaseFromEvents) || ev.Type.Signal() {
		return 0, fmt.Errorf("unknown product_id %q (not in the catalog)", id)
	}
	if !(price > 0) || math.IsInf(price, 0) {
		return 0, fmt.Errorf("unknown product_id %q and no price to create it from", id)
	}
	p := pricing.Product{ID: id, BasePrice: pricing.RoundCents(price)}
	i, _, err := m.book.Upsert(p, now)
	if err != nil {
		return 0, err
	}
	m.growDirty()
	m.batch.Products = append(m.batch.Products, p)
	return i, nil
}

func (m *Machine) growDirty() {
	for len(m.dirty) < m.book.Len() {
		m.dirty = append(m.dirty, 0)
		m.isKept, m.due, m.heldMark = append(m.isKept, false), append(m.due, 0), append(m.heldMark, false)
		m.fallMark = append(m.fallMark, false)
		m.grew = true
	}
}

// Check checks in's values at now (unix ns) with pricing.CheckOverride,
// as Machine.SetOverride does, for callers that validate an override
// before passing it on (the HTTP API, an API replica); the error is a
// KindInvalid *Error. It does not look the product up.
func (in OverrideInput) Check(now int64) error {
	// Before converting to nanoseconds, which overflow after 2262.
	if !in.ExpiresAt.IsZero() && in.ExpiresAt.Sub(time.Unix(0, now)) > pricing.MaxOverrideTTL {
		return &Error{Kind: KindInvalid, Msg: "expires_at must be at most ten years ahead"}
	}
	if err := pricing.CheckOverride(in.Price, in.Reason, in.expires(), now); err != nil {
		return &Error{Kind: KindInvalid, Msg: err.Error()}
	}
	return nil
}

// expires returns in.ExpiresAt in unix ns, 0 for never.
func (in OverrideInput) expires() int64 {
	if in.ExpiresAt.IsZero() {
		return 0
	}
	return in.ExpiresAt.UnixNano()
}

// SetOverride sets or replaces a product's override; KindInvalid for
// values pricing.CheckOverride refuses.
func (m *Machine) SetOverride(in OverrideInput, now int64) error {
	i, ok := m.book.Index(in.ProductID)
	if !ok {
		return errorf(KindNotFound, "unknown product_id %q", in.ProductID)
	}
	m.at(now)
	m.keep(i)
	exp := in.expires()
	o := pricing.Override{Price: in.Price, Reason: in.Reason, By: in.By, Since: now, Expires: exp}
	changed, err := m.book.SetOverride(i, o, now) // checks o as Check does
	if err != nil {
		return &Error{Kind: KindInvalid, Msg: err.Error()}
	}
	m.touch(i, changed)
	m.batch.Overrides = append(m.batch.Overrides, OverrideChange{Set: &OverrideRecord{
		ProductID: in.ProductID, Price: m.book.State(i).Override.Price, Reason: in.Reason, By: in.By,
		CreatedAt: now, ExpiresAt: exp,
	}})
	return nil
}

// ClearOverride removes a product's override; KindNotFound if it has none.
func (m *Machine) ClearOverride(in OverrideInput, now int64) error {
	i, ok := m.book.Index(in.ProductID)
	if !ok {
		return errorf(KindNotFound, "unknown product_id %q", in.ProductID)
	}
	m.at(now)
	m.keep(i)
	had, changed := m.book.ClearOverride(i, now)
	if !had {
		return errorf(KindNotFound, "product %q has no override", in.ProductID)
	}
	m.touch(i, changed)
	m.batch.Overrides = append(m.batch.Overrides, OverrideChange{End: &OverrideEnd{ProductID: in.ProductID, At: now, By: in.By, Reason: "removed"}})
	return nil
}

// Release lets a price held by the price-velocity breaker go (see
// pricing.Limits): the product takes the price its strategy wants now.
// KindNotFound for an unknown product or one that is not held.
func (m *Machine) Release(id string, now int64) error {
	i, ok := m.book.Index(id)
	if !ok {
		return errorf(KindNotFound, "unknown product_id %q", id)
	}
	m.at(now)
	m.keep(i)
	held, changed := m.book.Release(i, now)
	if !held {
		return errorf(KindNotFound, "product %q is not held by the price-velocity breaker", id)
	}
	m.touch(i, changed)
	return nil
}

// Tripped returns how many price-velocity breakers tripped since the last
// call, and the ids of the first of those products (at most 100).
func (m *Machine) Tripped() (int, []string) {
	n, t := m.book.Tripped()
	if n == 0 {
		return 0, nil
	}
	ids := make([]string, len(t))
	for k, i := range t {
		ids[k] = m.book.Product(i).ID
	}
	return n, ids
}

// Held is how many products the price-velocity breaker holds.
func (m *Machine) Held() int { return m.held }

// Fallback is how many products priced by a learning strategy are at
// their list price because their purchases stopped (pricing.Book.Fallback).
func (m *Machine) Fallback() int { return m.fallen }

// Upsert adds or updates a catalog product.
func (m *Machine) Upsert(p pricing.Product, now int64) (bool, error) {
	m.at(now)
	old, existed := m.book.Index(p.ID)
	if existed {
		m.keep(old)
	}
	i, changed, err := m.book.Upsert(p, now)
	if err != nil {
		return false, &Error{Kind: KindInvalid, Msg: err.Error()}
	}
	m.growDirty()
	m.batch.Products = append(m.batch.Products, p)
	m.touch(i, changed)
	m.catalogChanged(i)
	return !existed, nil
}

// Import upserts products and, when def is not empty, sets the default
// strategy; it checks every product first, so an invalid one changes nothing.
func (m *Machine) Import(ps []pricing.Product, def string, now int64) error {
	for _, p := range ps {
		if err := m.book.CheckProduct(p); err != nil {
			return &Error{Kind: KindInvalid, Msg: fmt.Sprintf("product %q: %v", p.ID, err)}
		}
	}
	if def != "" && def != m.book.DefaultStrategy() {
		m.at(now)
		m.noUndo = true // every product following the default changes
		repriced, err := m.book.SetDefaultStrategy(def, now)
		if err != nil {
			return &Error{Kind: KindInvalid, Msg: "default_strategy: " + err.Error()}
		}
		// Every repriced state is committed, not only those whose price
		// moved: the trace and demand figure a strategy leaves are what
		// the next price starts from, after a restart too.
		for _, r := range repriced {
			m.touch(r.Index, r.PriceChanged)
		}
		m.setting("default_strategy", def)
	}
	for _, p := range ps {
		if _, err := m.Upsert(p, now); err != nil {
			return err
		}
	}
	return nil
}

// setting adds a catalog-wide setting to the batch.
func (m *Machine) setting(key, value string) {
	if m.batch.Settings == nil {
		m.batch.Settings = map[string]string{}
	}
	m.batch.Settings[key] = value
}

// SetCurrency sets the catalog's currency, an ISO 4217 code
// (pricing.CheckCurrency); KindInvalid for any other.
func (m *Machine) SetCurrency(code string) error {
	if err := pricing.CheckCurrency(code); err != nil {
		return &Error{Kind: KindInvalid, Msg: err.Error()}
	}
	if code == m.currency {
		return nil
	}
	m.noUndo = true // Undo does not keep settings: a failed round reloads
	m.currency = code
	m.setting("currency", code)
	return nil
}

// Currency is the catalog's currency code.
func (m *Machine) Currency() string {
	if m.currency == "" {
		return pricing.DefaultCurrency
	}
	return m.currency
}

// Products lists the catalog in insertion order.
func (m *Machine) Products() []ProductInfo {
	out := make([]ProductInfo, m.book.Len())
	for i := range out {
		s := m.book.State(i)
		out[i] = ProductInfo{Product: m.book.Product(i), EffectiveStrategy: m.book.StrategyName(i),
			Price: s.Price, Source: s.Source, Demand: s.DynDemand}
	}
	return out
}

// Tick re-evaluates the products whose timer is due at now (see
// timers.go): time-dependent prices, override expiries, the breaker's
// window and the 30-day lowest price.
func (m *Machine) Tick(now int64) {
	m.at(now)
	// What the round changed so far has its timers set at Seal; a tick
	// within the round must see them already.
	for _, i := range m.touched {
		m.track(i, 0)
	}
	for {
		i, ok := m.nextDue(now)
		if !ok {
			return
		}
		m.keep(i)
		m.roll(i)
		s := m.book.State(i)
		hadOverride := s.Override.Active
		priceChanged, changed := m.book.Tick(i, now)
		if hadOverride && !s.Override.Active {
			m.batch.Overrides = append(m.batch.Overrides, OverrideChange{End: &OverrideEnd{
				ProductID: m.book.Product(i).ID, At: now, By: "system", Reason: "expired"}})
		}
		if changed {
			m.touch(i, priceChanged)
		}
		m.track(i, now+1) // not again in this tick
	}
}

func rejectAt(i int, msg string) ingest.Reject { return ingest.Reject{Index: i, Error: msg} }

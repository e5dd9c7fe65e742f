package engine

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/dynaprice/dynaprice/internal/pricing"
)

// Store is where the engine keeps what must survive a restart: the catalog,
// each product's pricing state, the price history, the override audit trail
// and the event ids already applied. The embedded implementation is SQLite;
// PostgreSQL implements the same port.
//
// Commit must be atomic and durable: when it returns nil, all of the batch
// survives a crash of the process; when it returns an error, none of it is
// visible. The engine calls Load and Commit from one goroutine; readers
// (History, OverrideAudit) may run concurrently with them.
type Store interface {
	Load(ctx context.Context) (Snapshot, error)
	Commit(ctx context.Context, b *Batch) error
	// PruneSeen forgets applied event ids older than before, and beyond the
	// newest keep ids; keep <= 0 sets no count limit. Ids a store kept in
	// an older form (the id strings written before hashes) may be pruned
	// by age only.
	PruneSeen(ctx context.Context, before int64, keep int) error
	// PruneHistory keeps the price history within r as of now (unix ns,
	// the engine's clock): it rolls the changes older than r.Raw into
	// hourly summaries (HourlyRow) and deletes them, and deletes the
	// summaries older than r.Hourly (HistoryRetention.Cutoffs). It works
	// in small steps beside the commits, never holding one up for more
	// than a step, and a run cut short (ctx, an error) leaves whole steps
	// done, which the next run goes on from. A store whose history is
	// shared by several writers (PostgreSQL) lets one run at a time and
	// returns at once in the others; it also prepares, ahead of now, what
	// commits will write to (partitions), whatever r says.
	PruneHistory(ctx context.Context, now int64, r HistoryRetention) (HistoryPruned, error)
	Close() error
}

// Snapshotter is a Store that can also keep the engine's whole state in
// one piece when the engine stops cleanly, so that the next Load reads
// that instead of a row per product (see Partition.SaveSnapshot). The
// SQLite store does; a Load after any commit must not use it.
type Snapshotter interface {
	// SaveSnapshot keeps products, in catalog order, and their states
	// (state(i) is nil for a product without one) as what the next Load
	// returns, unless something is committed first.
	SaveSnapshot(ctx context.Context, products []pricing.Product, state func(i int) *pricing.State) error
}

// Snapshot is the persisted state the engine resumes from.
type Snapshot struct {
	Products []pricing.Product
	// States are the products' states in catalog order: States[k] is
	// Products[k]'s, unless Stated[k] is false (a product without a state
	// yet: a zero State). Both lists are as long as Products, or empty
	// when no product has a state. In the catalog's order rather than by
	// id, because the engine takes the list as its own table of states: a
	// store decodes a million states once, into the memory they stay in,
	// and the engine neither looks each one up by id nor copies it (at a
	// million products, half a gigabyte written twice and three seconds of
	// a start). A store that reads states by id puts them in place with
	// Align.
	States []pricing.State
	Stated []bool
	// Seen holds the remembered event ids, oldest first. An id may come
	// more than once (the stores do not enforce uniqueness, see
	// Batch.Seen); the engine keeps its earliest time.
	Seen []SeenID
	// Settings are catalog-wide values such as the default strategy.
	Settings map[string]string
	// Cursor is the input position last committed (see Batch.Cursor); ""
	// when none was ever committed.
	Cursor string
	// Experiments are the price experiments kept, oldest first, with
	// their arms' totals.
	Experiments []ExperimentState
}

// StateMap returns the states by product id.
func (s Snapshot) StateMap() map[string]pricing.State {
	m := make(map[string]pricing.State, len(s.States))
	for k, ok := range s.Stated {
		if ok {
			m[s.Products[k].ID] = s.States[k]
		}
	}
	return m
}

// NumStated is the number of products with a state.
func (s Snapshot) NumStated() int {
	n := 0
	for _, ok := range s.Stated {
		if ok {
			n++
		}
	}
	return n
}

// Align puts states, given by product id in any order (a product's first
// one counts), in the places Snapshot.States wants them, for a store
// that reads them by id. place returns a product's index in s.Products;
// nil builds that index, for a store that keeps none of its own. States
// of products not in the catalog are dropped: the engine prices only what
// it has a product for.
func (s *Snapshot) Align(states []ProductState, place func(id string) (int, bool)) {
	s.States, s.Stated = nil, nil
	if len(states) == 0 {
		return
	}
	if place == nil {
		at := make(map[string]int, len(s.Products))
		for k, p := range s.Products {
			at[p.ID] = k
		}
		place = func(id string) (int, bool) { k, ok := at[id]; return k, ok }
	}
	n := len(s.Products)
	s.States, s.Stated = make([]pricing.State, n), make([]bool, n)
	for i := range states {
		if k, ok := place(states[i].ID); ok && k < n && !s.Stated[k] {
			s.States[k], s.Stated[k] = states[i].State, true
		}
	}
}

// Batch is one group commit.
type Batch struct {
	// Products are catalog inserts or updates.
	Products []pricing.Product
	// States are the new states of every product the batch touched.
	States []ProductState
	// History holds one row per published price change, in key order:
	// by product id, then At, then Version (SortHistory), the order of the
	// stores' history index, so a store writes the rows as they come and
	// consecutive rows land on the same index page. The order is for
	// locality only: a store must accept rows in any order.
	History []HistoryRow
	// Seen are event ids applied in this batch. The engine filters repeats
	// in memory, so they are never ids it still remembers; stores need no
	// unique index on them. (An id the engine forgot for want of room, but
	// the store had not pruned yet, can be stored a second time.)
	Seen []SeenID
	// Overrides are the override changes, in the order they were applied;
	// a store applies them in this order (a set, a removal and a new set of
	// one product may share a batch, and even a timestamp).
	Overrides []OverrideChange
	// Settings to upsert.
	Settings map[string]string
	// Analytics are the hourly analytics rows of products whose hour
	// ended (pricing.Book.RollTally): each is committed with the state
	// that no longer counts it, so an event is counted exactly once. A
	// store appends them as they come.
	Analytics []AnalyticsRow
	// Experiments are price experiments created or changed (stopped,
	// promoted), each whole: a store upserts them by id.
	Experiments []ExperimentRecord
	// ArmDeltas are what the batch's events add to experiments' arms; a
	// store adds them to its totals (and keeps the smaller p-value), in
	// the same transaction as the event ids that deduplicate those
	// events, which is what makes the counts exactly once.
	ArmDeltas []ArmDelta
	// Cursor, when not empty, replaces the stored input position in the
	// same transaction. A stream-fed engine puts its consumed offsets here,
	// which is what makes its effect exactly once: state, history and the
	// position that produced them are committed together or not at all.
	// The store treats it as opaque.
	Cursor string
	// peaks are the lists' recent high-water marks, for Reset.
	peaks [6]Peak
}

// Reset empties b for reuse. It keeps each list's capacity unless that is
// far more than recent batches used (see Trim): after one large import, a
// batch must not keep a catalog-sized buffer for the life of the process.
func (b *Batch) Reset() {
	b.Products = Trim(b.Products, &b.peaks[0])
	b.States = Trim(b.States, &b.peaks[1])
	b.History = Trim(b.History, &b.peaks[2])
	b.Seen = Trim(b.Seen, &b.peaks[3])
	b.Overrides = Trim(b.Overrides, &b.peaks[4])
	b.Analytics = Trim(b.Analytics, &b.peaks[5])
	b.Settings = nil
	b.Cursor = ""
	b.Experiments = nil
	b.ArmDeltas = b.ArmDeltas[:0]
}

// TrimKeep is the capacity, in elements, that a reused buffer may always
// keep.
const TrimKeep = 16 << 10

// Peak is the most of a reused buffer that recent rounds filled: the
// high-water mark, decaying by a 32nd a round. A buffer is dropped
// (shrink) once its capacity is above TrimKeep and more than four times
// the peak, so that one grown by a large batch shrinks back some 45 rounds
// after the batches became small, while one that rounds of varying size
// keep filling (40,000 states, then 5,000, then 40,000 again, as group
// commits under load do) is reused without being grown again each time.
type Peak int

// Trim empties s, whose last use filled len(s) elements, for reuse, or
// returns nil when its capacity is far more than p's peak (see Peak), so
// that the next append allocates what the batches need. Elements are
// cleared, so that they keep nothing of the batch alive.
func Trim[T any](s []T, p *Peak) []T { return shrink(s, len(s), p) }

// shrink is Trim for a buffer whose last use filled used elements.
func shrink[T any](s []T, used int, p *Peak) []T {
	*p = Peak(max(used, int(*p)-int(*p)/32))
	if cap(s) > TrimKeep && cap(s) > 4*int(*p) {
		return nil
	}
	clear(s[:min(used, cap(s))])
	return s[:0]
}

// Empty reports whether b has nothing to write.
func (b *Batch) Empty() bool {
	return len(b.Products) == 0 && len(b.States) == 0 && len(b.History) == 0 && len(b.Seen) == 0 &&
		len(b.Overrides) == 0 && len(b.Settings) == 0 && len(b.Analytics) == 0 && b.Cursor == "" &&
		len(b.Experiments) == 0 && len(b.ArmDeltas) == 0
}

// check reports a number in the batch's history or override changes that
// no store can keep as a price (NaN, ±Inf), as ErrUnencodable: PostgreSQL
// would store an infinite price without complaint, and it would be served.
// States are checked by the stores as they encode them.
func (b *Batch) check() error {
	bad := func(v float64) bool { return math.IsNaN(v) || math.IsInf(v, 0) }
	for i := range b.History {
		if h := &b.History[i]; bad(h.Price) || bad(h.Demand) {
			return fmt.Errorf("price history of %q: %w: price %v, demand %v", h.ProductID, ErrUnencodable, h.Price, h.Demand)
		}
	}
	for i := range b.Analytics {
		if a := &b.Analytics[i]; bad(a.Revenue) || bad(a.Cost) || bad(a.List) {
			return fmt.Errorf("analytics of %q: %w: revenue %v, cost %v, list %v", a.ProductID, ErrUnencodable, a.Revenue, a.Cost, a.List)
		}
	}
	for _, c := range b.Overrides {
		if c.Set != nil && bad(c.Set.Price) {
			return fmt.Errorf("override of %q: %w: price %v", c.Set.ProductID, ErrUnencodable, c.Set.Price)
		}
	}
	return nil
}

// ProductState is one product's state to persist.
type ProductState struct {
	ID string
	// Hint is the product's position in the engine's catalog: its index
	// in Snapshot.Products as Load returned them, products created since
	// following in the order they were created. A store that keeps
	// something per product can find it at that index instead of hashing
	// the id (at a million products, a cache miss or two per row in a map
	// of a million), after checking that the product it keeps there has
	// the same id: a hint is an optimisation, never trusted, and a wrong
	// one (a row built elsewhere, a catalog put back after a failed
	// commit) only costs the lookup by id.
	Hint  int32
	State pricing.State
}

// HistoryRow is one published price change.
type HistoryRow struct {
	ProductID string
	Price     float64
	Demand    float64
	Source    pricing.Source
	// Hint is where the product is in the engine's catalog, as
	// ProductState.Hint.
	Hint int32
	// At is when the price took effect, unix nanoseconds.
	At      int64
	Version uint64
}

// SortHistory sorts rows into the order of Batch.History: by product id,
// then At, then Version.
func SortHistory(rows []HistoryRow) {
	slices.SortFunc(rows, func(x, y HistoryRow) int {
		if c := strings.Compare(x.ProductID, y.ProductID); c != 0 {
			return c
		}
		if c := cmp.Compare(x.At, y.At); c != 0 {
			return c
		}
		return cmp.Compare(x.Version, y.Version)
	})
}

// SeenID is an applied event id, by its hash (EventHash), and when it
// was applied (unix ns). Stores keep the hash, a uint64, as a signed 64-bit
// integer (the same bits) where their integers are signed.
type SeenID struct {
	Hash uint64
	At   int64
}

// MergeSeen returns the ids of a and b, each oldest first, as one list
// oldest first (a's first at equal times): for a store that reads them
// from two places, the hashes and the id strings written before hashes.
func MergeSeen(a, b []SeenID) []SeenID {
	if len(a) == 0 {
		return b
	}
	if len(b) == 0 {
		return a
	}
	out := make([]SeenID, 0, len(a)+len(b))
	for len(a) > 0 && len(b) > 0 {
		if b[0].At < a[0].At {
			out, b = append(out, b[0]), b[1:]
		} else {
			out, a = append(out, a[0]), a[1:]
		}
	}
	return append(append(out, a...), b...)
}

// OverrideRecord is one override in the audit trail.
type OverrideRecord struct {
	ProductID string  `json:"product_id"`
	Price     float64 `json:"override_price"`
	Reason    string  `json:"reason"`
	By        string  `json:"set_by"`
	CreatedAt int64   `json:"-"`
	ExpiresAt int64   `json:"-"` // 0 = never
	EndedAt   int64   `json:"-"` // 0 = still active
	EndedBy   string  `json:"ended_by,omitempty"`
	// EndReason is "removed", "expired" or "replaced".
	EndReason string `json:"end_reason,omitempty"`
}

// OverrideEnd closes a product's open override.
type OverrideEnd struct {
	ProductID string
	At        int64
	By        string
	Reason    string
}

// OverrideChange is one entry of Batch.Overrides: exactly one of Set and
// End is not nil.
type OverrideChange struct {
	// Set starts a new override; any open one for the same product is
	// closed first, at Set.CreatedAt by Set.By, with EndReason "replaced".
	Set *OverrideRecord
	// End closes the product's open override, if it has one.
	End *OverrideEnd
}

// ErrUnencodable is wrapped by a Store's Commit when something in the
// batch cannot be stored at all (a number JSON cannot carry): retrying
// cannot help, and a Partition splits the round to find the input that
// caused it (Partition.RoundOf).
var ErrUnencodable = errors.New("store: the batch holds a value that cannot be stored")

// ErrFenced is wrapped by a Store's Commit when another writer committed
// for the same data since this one's Load: in scale-out mode, another
// engine took over the partition (this one is a zombie, or its previous
// commit succeeded without it hearing so). Nothing of the batch is
// written; the caller must Load again before committing.
var ErrFenced = errors.New("store: another writer committed since Load (fenced)")

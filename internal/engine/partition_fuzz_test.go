package engine_test

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dynaprice/dynaprice/internal/engine"
	"github.com/dynaprice/dynaprice/internal/ingest"
	"github.com/dynaprice/dynaprice/internal/live"
	"github.com/dynaprice/dynaprice/internal/pricing"
	"github.com/dynaprice/dynaprice/internal/sqlite"
)

// fuzzInput reads a fuzz input as a stream of small values; past its end
// every read is zero.
type fuzzInput struct{ b []byte }

func (in *fuzzInput) done() bool { return len(in.b) == 0 }

func (in *fuzzInput) byte() byte {
	if len(in.b) == 0 {
		return 0
	}
	c := in.b[0]
	in.b = in.b[1:]
	return c
}

func (in *fuzzInput) uint64() uint64 {
	var buf [8]byte
	n := copy(buf[:], in.b)
	in.b = in.b[n:]
	return binary.LittleEndian.Uint64(buf[:])
}

// interesting are the floats a price, a percentage or an amount is most
// likely to go wrong at.
var interesting = []float64{0, 0.001, 0.004, 0.005, 0.01, 1, 99.99, 100, 250, 1e9, 1e9 + 0.01, 1e12, 1e307, math.MaxFloat64,
	-0.01, -1, math.SmallestNonzeroFloat64, math.NaN(), math.Inf(1), math.Inf(-1)}

// float returns one of the interesting floats, or any float64 at all.
func (in *fuzzInput) float() float64 {
	c := in.byte()
	if int(c) < 4*len(interesting) {
		return interesting[int(c)%len(interesting)]
	}
	return math.Float64frombits(in.uint64())
}

func (in *fuzzInput) pick(of []string) string { return of[int(in.byte())%len(of)] }

// fuzzIDs are the products an input may name: the catalog's, one created
// by the input, one longer than an id may be and one that is not an id.
var fuzzIDs = []string{"PA", "PB", "PC", "PD", "PE", "PNEW", strings.Repeat("L", pricing.MaxIDLen+1), "bad id\xff"}

var fuzzStrategies = []string{"", "seed", "decay", "competitor", "thompson", "inventory", "bogus"}

// fuzzItem is one input of a round: it applies itself to the machine.
// valid items hold only values that dynaprice's own validation lets
// through (the event decoder for events; the machine itself checks
// overrides and catalog changes): those must never be rejected as
// unstorable.
type fuzzItem struct {
	what  string
	valid bool
	apply func(m *engine.Machine, now int64)
}

// event returns an event item with any values: those the event decoder
// would refuse too, which only the partition driver stands between and
// the store.
func (in *fuzzInput) event(seq int) fuzzItem {
	types := []pricing.EventType{pricing.View, pricing.Cart, pricing.Purchase, pricing.Stock, pricing.CompetitorPrice}
	ev := ingest.Event{Type: types[int(in.byte())%len(types)], ProductID: in.pick(fuzzIDs), Price: in.float(),
		Quantity: int32(in.uint64()), Competitor: in.pick([]string{"", "X", "Y"})}
	if c := in.byte(); c%4 == 0 {
		ev.EventID = "e" + strconv.Itoa(int(c)) // a few ids, so some repeat
	} else if c%4 == 1 {
		ev.EventID = "u" + strconv.Itoa(seq)
	}
	if in.byte()%2 == 0 { // mostly sane quantities
		ev.Quantity = int32(in.byte() % 8)
	}
	return fuzzItem{what: fmt.Sprintf("event %+v", ev), valid: decodable(ev), apply: func(m *engine.Machine, now int64) {
		ev.Timestamp = now
		var res engine.SubmitResult
		m.ApplyEvents([]ingest.Event{ev}, now, &res)
	}}
}

// decodable reports whether the event decoder lets ev's values through.
func decodable(ev ingest.Event) bool {
	if ev.Price != 0 && pricing.CheckPrice("price", ev.Price) != nil {
		return false
	}
	switch ev.Type {
	case pricing.Stock:
		return ev.Quantity >= 0 && ev.Quantity <= ingest.MaxStock && ev.Competitor == ""
	case pricing.CompetitorPrice:
		return ev.Price != 0 && ev.Competitor != "" && ev.Quantity >= 0 && ev.Quantity <= ingest.MaxQuantity
	}
	return ev.Quantity >= 0 && ev.Quantity <= ingest.MaxQuantity && ev.Competitor == ""
}

// product returns a catalog change with any values; the machine checks
// them.
func (in *fuzzInput) product() pricing.Product {
	p := pricing.Product{ID: in.pick(fuzzIDs), Name: in.pick([]string{"", "n", "renamed"}), BasePrice: in.float(),
		Strategy: in.pick(fuzzStrategies)}
	if in.byte()%2 == 0 {
		p.UnitCost, p.MinMarginPct = in.float(), in.float()
	}
	if in.byte()%2 == 0 {
		p.Floor, p.Ceiling, p.MaxChangePct = in.float(), in.float(), in.float()
		p.Rounding = in.pick([]string{"", "cents", "whole", ".99", "0.95", "bogus"})
	}
	if in.byte()%2 == 0 {
		p.Competition = &pricing.CompetitorRule{Mode: in.pick([]string{"match", "beat", "above", ""}), Pct: in.float(), Amount: in.float()}
	}
	if in.byte()%2 == 0 {
		start := time.Unix(0, int64(in.uint64()>>2))
		p.Inventory = &pricing.InventoryPlan{PeriodStart: start, PeriodEnd: start.Add(time.Duration(in.uint64() >> 2)),
			Repeat: in.byte()%2 == 0, TargetSellThrough: in.float()}
	}
	return p
}

// control returns an override, its removal, a catalog change or a new
// default strategy, with any values.
func (in *fuzzInput) control() fuzzItem {
	switch in.byte() % 4 {
	case 0:
		o := engine.OverrideInput{ProductID: in.pick(fuzzIDs), Price: in.float(), Reason: in.pick([]string{"", "promo", strings.Repeat("r", 600)}),
			By: in.pick([]string{"", "ops", "\xff"})}
		if d := int64(in.uint64()); d%3 == 0 {
			o.ExpiresAt = time.Unix(0, d)
		}
		return fuzzItem{what: fmt.Sprintf("override %+v", o), valid: true, apply: func(m *engine.Machine, now int64) { _ = m.SetOverride(o, now) }}
	case 1:
		o := engine.OverrideInput{ProductID: in.pick(fuzzIDs), By: "ops"}
		return fuzzItem{what: "clear override of " + o.ProductID, valid: true, apply: func(m *engine.Machine, now int64) { _ = m.ClearOverride(o, now) }}
	case 2:
		p := in.product()
		return fuzzItem{what: fmt.Sprintf("product %+v", p), valid: true, apply: func(m *engine.Machine, now int64) { _, _ = m.Upsert(p, now) }}
	default:
		s := in.pick(fuzzStrategies)
		return fuzzItem{what: "default strategy " + s, valid: true, apply: func(m *engine.Machine, now int64) { _ = m.Import(nil, s, now) }}
	}
}

// checkingStore is the real store, checking that every batch it commits
// holds only what can be read back: encodable states, finite history.
type checkingStore struct {
	*sqlite.Store
	t *testing.T
}

func (s checkingStore) Commit(ctx context.Context, b *engine.Batch) error {
	if err := s.Store.Commit(ctx, b); err != nil {
		return err
	}
	for _, st := range b.States {
		if _, err := json.Marshal(&st.State); err != nil {
			s.t.Fatalf("committed a state that cannot be encoded: %s: %v", st.ID, err)
		}
	}
	for _, h := range b.History {
		if math.IsNaN(h.Price) || math.IsInf(h.Price, 0) || math.IsNaN(h.Demand) || math.IsInf(h.Demand, 0) {
			t := s.t
			t.Fatalf("committed history %+v", h)
		}
	}
	return nil
}

// checkingPublisher fails the test on a published price that no shopper
// may see.
type checkingPublisher struct{ t *testing.T }

func (p checkingPublisher) Publish(prices []live.Price) {
	for _, c := range prices {
		if math.IsNaN(c.Price) || math.IsInf(c.Price, 0) || pricing.RoundCents(c.Price) < 0.01 {
			p.t.Fatalf("published price %v for %s (%v)", c.Price, c.ProductID, c.Source)
		}
		if c.Source == pricing.SourceOverride && c.Price > pricing.MaxPrice {
			p.t.Fatalf("published override %v for %s, above the maximum", c.Price, c.ProductID)
		}
		if math.IsNaN(c.Demand) || math.IsInf(c.Demand, 0) {
			p.t.Fatalf("published demand %v for %s", c.Demand, c.ProductID)
		}
	}
}

// FuzzPartition turns its input into rounds of events, overrides,
// catalog changes, default strategies and clock moves, with any values
// (extreme and non-finite floats, ids too long or not ids at all, events
// the decoder would refuse), and drives them through engine.Partition's
// RoundOf over the real SQLite store. Whatever the input: no panic, every
// round is committed (the one input that cannot be stored is rejected,
// through Feed.Reject, and only if dynaprice's own validation would not
// have stopped it already), every committed state can be encoded, every
// published price is finite and at least a cent, and the prices a fresh
// partition loads from the store are the prices in memory.
func FuzzPartition(f *testing.F) {
	idx := func(v float64) byte {
		for i, x := range interesting {
			if x == v || math.IsNaN(x) && math.IsNaN(v) {
				return byte(i)
			}
		}
		panic(v)
	}
	id := func(s string) byte {
		for i, x := range fuzzIDs {
			if x == s {
				return byte(i)
			}
		}
		panic(s)
	}
	// Seeds are written in the input's language: see fuzzInput's readers.
	var zero8 = []byte{0, 0, 0, 0, 0, 0, 0, 0}
	event := func(typ byte, product string, price float64, competitor byte) []byte {
		b := append([]byte{0, typ, id(product), idx(price)}, zero8...)
		return append(b, competitor, 2, 0, 1) // no event id, quantity 1
	}
	override := func(product string, price float64) []byte {
		return append([]byte{1, 0, id(product), idx(price), 1, 1}, 1, 0, 0, 0, 0, 0, 0, 0) // no expiry
	}
	const round, day = 6, uint64(24 * time.Hour)
	tick := binary.LittleEndian.AppendUint64([]byte{5}, day)
	seed := func(parts ...[]byte) []byte {
		b := []byte{1} // no AutoCreate
		for _, p := range parts {
			b = append(b, p...)
		}
		return b
	}
	// Valid events, and a competitor's price the decoder would refuse,
	// which makes PB's price infinite: the round must reject it alone.
	f.Add(seed(event(0, "PA", 0, 0), event(1, "PB", 0, 0), event(4, "PB", 1e307, 1), event(2, "PA", 99.99, 0), []byte{round}))
	// Overrides, one of them NaN, a day passing, a NaN price on a
	// learning strategy.
	f.Add(seed(override("PA", 250), tick, override("PA", math.NaN()), event(2, "PD", math.NaN(), 0), event(0, "PC", 0, 0), []byte{round}, tick))
	// Events for ids that are not ids, or are not in the catalog.
	f.Add(seed(event(0, fuzzIDs[6], 1, 0), event(0, fuzzIDs[7], 1, 0), event(0, "PNEW", 100, 0), []byte{round}))
	f.Add(append([]byte{0}, event(0, "PNEW", 100, 0)...)) // AutoCreate
	// A product priced above competitors by the largest amount a rule
	// takes, then a competitor's price.
	f.Add(seed([]byte{1, 2, id("PA"), 0, idx(100), 3, 1, 1, 0, 2, idx(0), idx(1e307), 1}, []byte{round}, event(4, "PA", 250, 1), []byte{round}))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 4096 {
			return // long inputs only slow the fuzzer down
		}
		ctx := context.Background()
		path := filepath.Join(t.TempDir(), "db")
		st, err := sqlite.Open(ctx, sqlite.Config{Path: path, Synchronous: "normal"})
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		catalog := []pricing.Product{
			{ID: "PA", BasePrice: 100},
			{ID: "PB", BasePrice: pricing.MaxPrice, Strategy: "competitor", Competition: &pricing.CompetitorRule{Mode: "above", Pct: 99}},
			{ID: "PC", BasePrice: 0.01, Strategy: "decay", Guardrails: pricing.Guardrails{Floor: 0.01}},
			{ID: "PD", BasePrice: 50, Strategy: "thompson", UnitCost: 40},
			{ID: "PE", BasePrice: 20, Strategy: "inventory", Guardrails: pricing.Guardrails{Rounding: ".99"}},
		}
		if err := st.Commit(ctx, &engine.Batch{Products: catalog, Settings: map[string]string{"default_strategy": "seed"}}); err != nil {
			t.Fatal(err)
		}
		in := &fuzzInput{b: data}
		now := time.Date(2026, 12, 3, 0, 0, 0, 0, time.UTC).UnixNano()
		cfg := engine.DefaultConfig()
		cfg.Now = func() time.Time { return time.Unix(0, now) }
		cfg.AutoCreate = in.byte()%2 == 0
		cfg.Logger = slog.New(slog.DiscardHandler)
		cfg.Metrics = engine.NewMetrics(nil, "fuzz")
		store := checkingStore{Store: st, t: t}
		p := engine.NewPartition(cfg, store, checkingPublisher{t}, nil)
		if err := p.Load(ctx); err != nil {
			t.Fatal(err)
		}
		var items []fuzzItem
		round := 0
		run := func() {
			round++
			pos := func(i int) string { return fmt.Sprintf("%d:%d", round, i) }
			err := p.RoundOf(ctx, engine.Feed{
				N: len(items),
				Apply: func(m *engine.Machine, now int64, lo, hi int) (string, error) {
					for _, it := range items[lo:hi] {
						it.apply(m, now)
					}
					return pos(hi), nil
				},
				Done: func(int, int, error) {},
				Reject: func(i int, cause error) string {
					if items[i].valid {
						t.Fatalf("round %d: %s was rejected (%v), but validation lets it through: it can never be applied", round, items[i].what, cause)
					}
					return pos(i + 1)
				},
			})
			if err != nil {
				t.Fatalf("round %d of %d inputs not committed: %v", round, len(items), err)
			}
			if len(items) > 0 && p.Cursor() != pos(len(items)) {
				t.Fatalf("round %d: position %q after the round, want %q: not every input was consumed", round, p.Cursor(), pos(len(items)))
			}
			items = items[:0]
		}
		for seq := 0; !in.done() && round < 32; seq++ {
			switch in.byte() % 8 {
			case 0, 2, 3:
				items = append(items, in.event(seq))
			case 1, 4:
				items = append(items, in.control())
			case 5:
				// Time passes, up to about a year, or back by up to a
				// day (a clock stepped back).
				d := int64(in.uint64() % uint64(366*24*time.Hour))
				if in.byte()%8 == 0 {
					d = -d % int64(24*time.Hour)
				}
				now += d
				if err := p.Tick(ctx); err != nil {
					t.Fatalf("tick %v later not committed: %v", time.Duration(d), err)
				}
			default:
				run()
			}
		}
		run()

		// Memory never ran ahead of the store.
		again := engine.NewPartition(cfg, st, checkingPublisher{t}, nil)
		if err := again.Load(ctx); err != nil {
			t.Fatal(err)
		}
		stored := map[string]engine.ProductInfo{}
		for _, b := range again.Machine().Products() {
			stored[b.ID] = b
		}
		mem := p.Machine().Products()
		if len(mem) != len(stored) {
			t.Fatalf("%d products in memory, %d stored", len(mem), len(stored))
		}
		for _, a := range mem {
			b := stored[a.ID]
			// Not the demand figure: a tick works it out again (a decaying
			// demand) but commits it only with a price that moved.
			if a.Price != b.Price || a.Source != b.Source {
				t.Fatalf("in memory %s at %v (%v, demand %v); stored: at %v (%v, demand %v)",
					a.ID, a.Price, a.Source, a.Demand, b.Price, b.Source, b.Demand)
			}
		}
	})
}

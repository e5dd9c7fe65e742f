package sqlite

import (
	"context"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"github.com/dynaprice/dynaprice/internal/engine"
	"github.com/dynaprice/dynaprice/internal/pricing"
)

// BenchmarkCommit measures the ingest path's storage cost: each batch holds
// 10,000 price_history rows, 10,000 new (random, UUID-shaped) event ids and
// 10 product states, which is what 10,000 events spread over 10 products
// produce. rows/s counts history and seen rows; the HTTP path needs about
// 400,000 of them per second for 200,000 events/s. cpu-ms/op is the
// process's CPU time per commit, background checkpoints included, which
// stays meaningful when something else is using the machine.
//
//	go test -run '^$' -bench 'BenchmarkCommit$' -benchtime 200x ./internal/sqlite/
func BenchmarkCommit(b *testing.B) {
	for _, sync := range []string{"full", "normal"} {
		b.Run("sync="+sync, func(b *testing.B) {
			benchmarkCommit(b, benchOptions{sync: sync, tun: defaultTuning(), products: 10})
		})
	}
}

// BenchmarkCommitLarge shows how Commit scales away from BenchmarkCommit's
// case: with a million event ids already remembered (the engine's default
// dedup limit), and with the events spread over 10,000 products, so that a
// batch also carries about 6,300 states and its history rows land all over
// price_history.
func BenchmarkCommitLarge(b *testing.B) {
	b.Run("seen=1M", func(b *testing.B) {
		benchmarkCommit(b, benchOptions{sync: "full", tun: defaultTuning(), products: 10, prefill: 1_000_000})
	})
	b.Run("products=10000", func(b *testing.B) {
		benchmarkCommit(b, benchOptions{sync: "full", tun: defaultTuning(), products: 10_000})
	})
}

// benchOptions parameterize benchmarkCommit.
type benchOptions struct {
	sync string
	tun  tuning
	// products is how many products the events are spread over; each
	// batch also holds one state per product.
	products int
	// prefill is how many event ids are committed before timing starts.
	prefill int
	// path is the database file; "" for a new one in b.TempDir().
	path string
}

func benchmarkCommit(b *testing.B, o benchOptions) {
	const rows = 10_000
	if o.path == "" {
		o.path = filepath.Join(b.TempDir(), "bench.db")
	}
	ctx := context.Background()
	st, err := open(ctx, Config{Path: o.path, Synchronous: o.sync}, o.tun)
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()

	batch := &engine.Batch{}
	ids := make([]string, o.products)
	for p := range o.products {
		ids[p] = fmt.Sprintf("sku-%06d", p)
		batch.Products = append(batch.Products, pricing.Product{ID: ids[p], BasePrice: 10})
	}
	if err := st.Commit(ctx, batch); err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	var (
		now     = int64(1_750_000_000_000_000_000)
		version = make([]uint64, o.products)
		touched = make([]bool, o.products)
		id      [16]byte
		idText  [36]byte
	)
	next := func() {
		batch.Reset()
		for i := range rows {
			now += 5_000 // 200,000 events/s
			p := rng.IntN(o.products)
			version[p]++
			touched[p] = true
			batch.History = append(batch.History, engine.HistoryRow{
				ProductID: ids[p], Price: 10 + float64(rng.IntN(10_000))/100,
				Demand: float64(i), Source: pricing.SourceDynamic, At: now, Version: version[p],
			})
			for j := 0; j < 16; j += 8 {
				v := rng.Uint64()
				for k := range 8 {
					id[j+k] = byte(v >> (8 * k))
				}
			}
			hex.Encode(idText[0:8], id[0:4])
			idText[8] = '-'
			hex.Encode(idText[9:13], id[4:6])
			idText[13] = '-'
			hex.Encode(idText[14:18], id[6:8])
			idText[18] = '-'
			hex.Encode(idText[19:23], id[8:10])
			idText[23] = '-'
			hex.Encode(idText[24:36], id[10:16])
			batch.Seen = append(batch.Seen, engine.SeenID{Hash: engine.EventHash(string(idText[:])), At: now})
		}
		for p, ok := range touched {
			if !ok {
				continue
			}
			touched[p] = false
			st := pricing.State{
				Price: 12.34, Source: pricing.SourceDynamic, Version: version[p], ChangedAt: now,
				Demand:    pricing.Demand{Total: float64(version[p]), Decayed: 1.5, At: now},
				DynDemand: 1.5, Lowest30: 11.99,
				Trace: pricing.Trace{Raw: 12.3456, Limited: 12.3456, Bounded: 12.3456, Final: 12.34, Reference: 12.1},
			}
			for d := range pricing.LowestWindowDays + 1 {
				st.Low.Set(int32(20_000+d), 11.99+float64(d)/100)
			}
			batch.States = append(batch.States, engine.ProductState{ID: ids[p], State: st})
		}
		engine.SortHistory(batch.History) // as Machine.Seal hands it over
	}

	for n := 0; n < o.prefill; n += rows {
		next()
		batch.History = batch.History[:0]
		if err := st.Commit(ctx, batch); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	var cpu time.Duration
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		next()
		cpu0 := cpuTime()
		b.StartTimer()
		if err := st.Commit(ctx, batch); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		cpu += cpuTime() - cpu0
		b.StartTimer()
	}
	b.StopTimer()
	if cpu > 0 {
		b.ReportMetric(float64(cpu.Microseconds())/1000/float64(b.N), "cpu-ms/op")
	}
	b.ReportMetric(float64(2*rows*b.N)/b.Elapsed().Seconds(), "rows/s")
}

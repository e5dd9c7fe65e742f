package sqlite

import (
	"context"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/dynaprice/dynaprice/internal/engine"
	"github.com/dynaprice/dynaprice/internal/pricing"
)

// BenchmarkCommit measures the ingest path's storage cost: each batch holds
// 10,000 price_history rows, 10,000 new (random, UUID-shaped) event ids and
// 10 product states, which is what 10,000 events spread over 10 products
// produce. rows/s counts history and seen rows; the HTTP path needs about
// 400,000 of them per second for 200,000 events/s.
//
//	go test -run '^$' -bench BenchmarkCommit -benchtime 100x ./internal/sqlite/
func BenchmarkCommit(b *testing.B) {
	for _, sync := range []string{"full", "normal"} {
		b.Run("sync="+sync, func(b *testing.B) { benchmarkCommit(b, sync, defaultTuning(), 0) })
	}
}

func benchmarkCommit(b *testing.B, sync string, tun tuning, prefill int) {
	const (
		products = 10
		rows     = 10_000
	)
	ctx := context.Background()
	st, err := open(ctx, Config{Path: filepath.Join(b.TempDir(), "bench.db"), Synchronous: sync}, tun)
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()

	batch := &engine.Batch{}
	for p := range products {
		batch.Products = append(batch.Products, pricing.Product{ID: fmt.Sprintf("sku-%04d", p), BasePrice: 10})
	}
	if err := st.Commit(ctx, batch); err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	var (
		now     = int64(1_750_000_000_000_000_000)
		version [products]uint64
		id      [16]byte
		idText  [36]byte
	)
	next := func() {
		batch.Reset()
		for i := range rows {
			now += 5_000 // 200,000 events/s
			p := rng.IntN(products)
			version[p]++
			batch.History = append(batch.History, engine.HistoryRow{
				ProductID: fmt.Sprintf("sku-%04d", p), Price: 10 + float64(rng.IntN(10_000))/100,
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
			batch.Seen = append(batch.Seen, engine.SeenID{ID: string(idText[:]), At: now})
		}
		for p := range products {
			batch.States = append(batch.States, engine.ProductState{ID: fmt.Sprintf("sku-%04d", p), State: pricing.State{
				Price: 12.34, Source: pricing.SourceDynamic, Version: version[p], ChangedAt: now,
				Demand: pricing.Demand{Total: float64(version[p]), Decayed: 1.5, At: now},
			}})
		}
	}

	for n := 0; n < prefill; n += rows {
		next()
		batch.History = batch.History[:0]
		if err := st.Commit(ctx, batch); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		next()
		b.StartTimer()
		if err := st.Commit(ctx, batch); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(2*rows*b.N)/b.Elapsed().Seconds(), "rows/s")
}

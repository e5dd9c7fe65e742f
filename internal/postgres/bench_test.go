package postgres

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/dynaprice/dynaprice/internal/engine"
	"github.com/dynaprice/dynaprice/internal/pricing"
)

// BenchmarkCommitHistory commits batches as a busy stream-fed engine
// would: 10,000 history rows spread over 1,000 products, a few states and
// a cursor. It reports history rows committed per second.
func BenchmarkCommitHistory(b *testing.B) {
	const (
		rows     = 10_000
		products = 1_000
		states   = 5
	)
	db := freshDB(b)
	ctx := context.Background()
	var catalog []pricing.Product
	for i := range products {
		catalog = append(catalog, product("bench-"+strconv.Itoa(i)))
	}
	s := db.Store(0, nil)
	mustLoadB(b, s)
	if err := s.Commit(ctx, &engine.Batch{Products: catalog}); err != nil {
		b.Fatal(err)
	}
	ids := make([]string, products)
	for i := range ids {
		ids[i] = catalog[i].ID
	}
	batch := &engine.Batch{}
	// Now: the rows go to today's partition of price_history, as an
	// engine's do.
	at := time.Now().UnixNano()
	versions := make([]uint64, products)
	n := 0
	for b.Loop() {
		batch.Reset()
		for i := range rows {
			p := (n*rows + i) * 7919 % products // spread, not in product order
			at++
			versions[p]++
			batch.History = append(batch.History, engine.HistoryRow{ProductID: ids[p], Price: 10 + float64(i%100)/100,
				Demand: float64(i), Source: pricing.SourceDynamic, At: at, Version: versions[p]})
		}
		for i := range states {
			p := (n + i) % products
			batch.States = append(batch.States, engine.ProductState{ID: ids[p],
				State: pricing.State{Price: 11, Version: versions[p], ChangedAt: at}})
		}
		n++
		engine.SortHistory(batch.History) // as Machine.Seal hands it over
		batch.Cursor = fmt.Sprintf(`{"0":%d}`, n*rows)
		if err := s.Commit(ctx, batch); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n*rows)/b.Elapsed().Seconds(), "rows/s")
}

func mustLoadB(b *testing.B, s *Store) {
	b.Helper()
	if _, err := s.Load(context.Background()); err != nil {
		b.Fatal(err)
	}
}

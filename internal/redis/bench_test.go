package redis

import (
	"context"
	"fmt"
	"testing"

	"github.com/dynaprice/dynaprice/internal/live"
)

// BenchmarkWrite1000 measures an engine's commit path: one Write of 1000
// changes, every one applied (versions increase each iteration).
func BenchmarkWrite1000(b *testing.B) {
	e := newTestEnv(b)
	c := e.open()
	ids := make([]string, 1000)
	for i := range ids {
		ids[i] = fmt.Sprintf("P%04d", i)
	}
	changes := make([]live.Price, len(ids))
	ctx := context.Background()
	b.ReportAllocs()
	v := uint64(0)
	for b.Loop() {
		v++
		for i, id := range ids {
			changes[i] = change(id, v, float64(v)+0.99)
		}
		n, err := c.Write(ctx, changes)
		if err != nil {
			b.Fatal(err)
		}
		if n != len(changes) {
			b.Fatalf("applied %d", n)
		}
	}
	b.ReportMetric(float64(b.N*len(ids))/b.Elapsed().Seconds(), "changes/s")
}

// BenchmarkPriceCached measures GET /price on a replica: parallel reads of
// hot products, served from the client-side cache.
func BenchmarkPriceCached(b *testing.B) {
	e := newTestEnv(b)
	c := e.open()
	const products = 100
	var changes []live.Price
	for i := range products {
		changes = append(changes, change(fmt.Sprintf("P%03d", i), 1, 100))
	}
	if _, err := c.Write(context.Background(), changes); err != nil {
		b.Fatal(err)
	}
	ids := make([]string, products)
	for i := range ids {
		ids[i] = changes[i].ProductID
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		i := 0
		for pb.Next() {
			if _, ok, err := c.Price(ctx, ids[i%products]); err != nil || !ok {
				b.Error(ok, err)
				return
			}
			i++
		}
	})
}

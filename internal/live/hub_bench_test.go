package live

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dynaprice/dynaprice/internal/pricing"
)

// BenchmarkPublish measures what the engine pays per update for a batch of
// 1,000 updates with real clients connected over loopback and reading.
//
//   - clients=100: the cost of Publish itself. Between batches the timer
//     stops until every client has read the previous batch, so that each
//     Publish meets 100 empty queues and idle cores, as a real engine does
//     when its clients keep up. (The clients run in this process; left
//     reading, they would take the CPU from the publisher.)
//   - clients=100/saturated: Publish in a tight loop, so that the 100
//     writers and the 100 reading clients, all in this process, never catch
//     up and take most of the CPU. ns/update is then wall time per update,
//     an upper bound dominated by the writers' syscalls, and msgs/op shows
//     how many of the batch's 100,000 client messages coalescing let
//     through.
//   - clients=0: encoding and bookkeeping alone.
func BenchmarkPublish(b *testing.B) {
	b.Run("clients=100", func(b *testing.B) { benchmarkPublish(b, 100, 1000, true) })
	b.Run("clients=100/saturated", func(b *testing.B) { benchmarkPublish(b, 100, 1000, false) })
	b.Run("clients=0", func(b *testing.B) { benchmarkPublish(b, 0, 1000, false) })
}

func benchmarkPublish(b *testing.B, clients, batchSize int, drain bool) {
	e := newEnv(b, HubConfig{WriteTimeout: time.Minute})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var received atomic.Int64
	for range clients {
		c := e.dial(b, "", nil)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				if _, _, err := c.Read(ctx); err != nil {
					return
				}
				received.Add(1)
			}
		}()
	}
	b.Cleanup(func() {
		cancel()
		wg.Wait()
	})
	if n := e.hub.Clients(); n != clients {
		b.Fatalf("Clients() = %d, want %d", n, clients)
	}

	batch := make([]Price, batchSize)
	for i := range batch {
		batch[i] = Price{PriceChanged: true, ProductID: fmt.Sprintf("SKU-%05d", i), Price: 100, Source: pricing.SourceDynamic, Demand: 3.5, Lowest30: 95.5}
	}
	at := time.Now().UnixNano()
	sentBefore := e.metric(b, "dynaprice_ws_messages_sent_total")
	want := int64(0)
	b.ReportAllocs()
	b.ResetTimer()
	v := uint64(0)
	for b.Loop() {
		v++
		for i := range batch {
			batch[i].Version = v
			batch[i].Price = 100 + float64(v%100)/100
			batch[i].At = at
		}
		e.hub.Publish(batch)
		if drain {
			b.StopTimer()
			want += int64(clients * batchSize)
			// Outside the timer, and finer than poll.Until, whose
			// millisecond waits would stretch every iteration.
			for received.Load() < want {
				time.Sleep(100 * time.Microsecond)
			}
			b.StartTimer()
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*batchSize), "ns/update")
	if clients > 0 {
		sent := e.metric(b, "dynaprice_ws_messages_sent_total") - sentBefore
		b.ReportMetric(sent/float64(b.N), "msgs/op")
	}
}

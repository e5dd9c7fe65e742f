package cli

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/dynaprice/dynaprice/internal/httpapi"
)

// BenchmarkIngestHTTP measures POST /events end to end on a real server:
// decode, validate, price, group-commit durably to SQLite (synchronous=full)
// and answer 202. Each op is one batch of 5,000 events; 8 clients post
// concurrently.
func BenchmarkIngestHTTP(b *testing.B) {
	for _, withIDs := range []bool{false, true} {
		b.Run(fmt.Sprintf("event_ids=%v", withIDs), func(b *testing.B) {
			o := testOptions(b.TempDir())
			o.Sync = syncMode()
			o.DedupMax = 10_000_000
			benchLimits(&o)
			s := startServer(b, o)
			const perBatch = 5000
			var seq atomic.Int64
			body := func() []byte {
				var sb bytes.Buffer
				sb.WriteByte('[')
				for i := 0; i < perBatch; i++ {
					if i > 0 {
						sb.WriteByte(',')
					}
					id := ""
					if withIDs {
						id = fmt.Sprintf(`"event_id":"e-%d",`, seq.Add(1))
					}
					fmt.Fprintf(&sb, `{%s"event_type":"%s","product_id":"P%c","user_id":"U%d","timestamp":1773713139,"price":299}`,
						id, [...]string{"view", "cart", "purchase"}[i%3], 'A'+i%10, i)
				}
				sb.WriteByte(']')
				return sb.Bytes()
			}
			// Bodies are built before the clock starts, so the benchmark
			// measures the server, not the client's JSON formatting.
			bodies := make([][]byte, 1)
			bodies[0] = body()
			if withIDs {
				for len(bodies) < b.N {
					bodies = append(bodies, body())
				}
			}
			postAll(b, s.url, 8, b.N, func(i int) []byte { return bodies[i%len(bodies)] })
			b.ReportMetric(float64(b.N*perBatch)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// benchLimits gives o the request limits a deployment runs with, so that
// their cost is part of what an ingest benchmark measures.
func benchLimits(o *ServeOptions) {
	o.MaxBody = 16 << 20
	o.KeyRate, o.KeyBurst = httpapi.DefaultKeyRate, 2*httpapi.DefaultKeyRate
	o.AuthFailRate, o.AuthFailBurst = httpapi.DefaultAuthFailRate, 20
	o.MaxEvents = 100_000
}

// postAll posts n bodies (body(i) for i < n) to url's POST /events from
// clients goroutines, with the benchmark's timer running from the first
// request to the last answer, and fails b unless every one is accepted.
func postAll(b *testing.B, url string, clients, n int, body func(i int) []byte) {
	work := make(chan []byte)
	var wg sync.WaitGroup
	var failed atomic.Int64
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for payload := range work {
				req, _ := http.NewRequest("POST", url+"/events", bytes.NewReader(payload))
				req.Header.Set("X-API-Key", ingestKey)
				resp, err := http.DefaultClient.Do(req)
				if err != nil || resp.StatusCode != 202 {
					failed.Add(1)
				}
				if resp != nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			}
		}()
	}
	b.ResetTimer()
	for i := range n {
		work <- body(i)
	}
	close(work)
	wg.Wait()
	b.StopTimer()
	if failed.Load() > 0 {
		b.Fatalf("%d requests failed", failed.Load())
	}
}

// syncMode lets a benchmark run compare SQLite's durability levels:
// DYNAPRICE_BENCH_SYNC=normal (default full).
func syncMode() string {
	if m := os.Getenv("DYNAPRICE_BENCH_SYNC"); m != "" {
		return m
	}
	return "full"
}

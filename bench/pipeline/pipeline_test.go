package pipeline

import (
	"context"
	"testing"
	"time"

	"github.com/dynaprice/dynaprice/internal/catalog"
	"github.com/dynaprice/dynaprice/internal/ingest"
	"github.com/dynaprice/dynaprice/internal/loadgen"
	"github.com/dynaprice/dynaprice/internal/poll"
	"github.com/dynaprice/dynaprice/internal/pricing"
)

// BenchmarkEndToEnd measures sustained throughput from Kafka to committed
// and visible prices: b.N events are pre-produced into product-events
// (not timed), then the timer runs from starting the consumer until the
// last event's effect is committed in PostgreSQL, in Redis, and on
// price-updates. One op is one event; events/s is the figure to read.
//
//   - dynaprice: the real kafka.Engine, as `dynaprice engine` runs it.
//   - naive: the original system's per-event pattern (see naive). It is two
//     orders of magnitude slower, and -benchtime applies to both
//     sub-benchmarks of one run, so it processes min(b.N,
//     DYNAPRICE_BENCH_NAIVE_MAX) events (5000 by default) and reports
//     events/s and ns/op over the events it processed, not over b.N.
//
// Run it with an explicit count, e.g. -benchtime=200000x (the framework
// first calls each sub-benchmark with b.N=1, then with the count).
func BenchmarkEndToEnd(b *testing.B) {
	b.Run("dynaprice", benchDynaprice)
	b.Run("naive", benchNaive)
}

// finishTimeout bounds one timed run: generous, since a failure to finish
// is a bug to report, not a slow result.
func finishTimeout(events int) time.Duration {
	return 2*time.Minute + time.Duration(events)*time.Millisecond
}

func mustWorkload(b *testing.B, r *rig, n int) *workload {
	b.Helper()
	w, err := newWorkload(r.catalog.Products, n, 1)
	if err != nil {
		b.Fatal(err)
	}
	return w
}

func benchDynaprice(b *testing.B) {
	b.StopTimer()
	r := newRig(b, benchPartitions)
	w := mustWorkload(b, r, b.N)
	r.produce(w)
	o := r.observe()
	cpu0 := sampleCPU()

	stopProfile := profileTimed(b)
	b.StartTimer()
	start := time.Now()
	d := r.startEngine()
	var readyAt time.Duration
	elapsed := r.waitFinished(start, o, r.engineFinished(o, w.want), d.failed.ch, d.proc.Ready, &readyAt, finishTimeout(b.N))
	b.StopTimer()
	stopProfile()

	cpu1 := r.sampleEnd()
	commits, mean, _ := d.commitStats()
	var busy, overlap time.Duration
	if d.trace != nil {
		busy, overlap = d.trace.totals()
	}
	d.stop()
	// Correctness: one dynamic history row per event that changed its
	// product's rounded price (see workload), each event applied once.
	rows := r.count("price_history", "source = 'dynamic'")
	if rows != w.rows {
		b.Fatalf("price_history holds %d dynamic rows, want %d (one per price-changing event of %d)", rows, w.rows, b.N)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "events/s")
	if readyAt > 0 && elapsed > readyAt {
		b.ReportMetric(ms(readyAt), "ready-ms")
		b.ReportMetric(float64(b.N)/(elapsed-readyAt).Seconds(), "after-ready-events/s")
	}
	b.ReportMetric(float64(rows), "history-rows")
	if commits > 0 {
		b.ReportMetric(float64(commits), "commits")
		b.ReportMetric(float64(b.N)/float64(commits), "events/commit")
		b.ReportMetric(ms(mean), "ms/commit")
	}
	r.reportCPU(b, cpu0, cpu1, elapsed)
	if d.trace != nil {
		b.ReportMetric(100*busy.Seconds()/elapsed.Seconds(), "commit-busy-%")
		b.ReportMetric(100*overlap.Seconds()/elapsed.Seconds(), "commit-overlap-%")
	}
}

func benchNaive(b *testing.B) {
	b.StopTimer()
	n := min(b.N, naiveMax) // see BenchmarkEndToEnd
	r := newRig(b, benchPartitions)
	r.createNaiveTable()
	w := mustWorkload(b, r, n)
	r.produce(w)
	o := r.observe()
	cpu0 := sampleCPU()

	b.StartTimer()
	start := time.Now()
	nv := r.startNaive()
	ready := func() bool {
		select {
		case <-nv.assigned:
			return true
		default:
			return false
		}
	}
	var readyAt time.Duration
	elapsed := r.waitFinished(start, o, r.naiveFinished(o, w.want), nv.failed.ch, ready, &readyAt, finishTimeout(n)+time.Duration(n)*10*time.Millisecond)
	b.StopTimer()

	cpu1 := r.sampleEnd()
	nv.stop()
	rows := r.count(naiveTable, "")
	if rows != int64(n) {
		b.Fatalf("%s holds %d rows, want %d (one per event)", naiveTable, rows, n)
	}
	b.ReportMetric(float64(n)/elapsed.Seconds(), "events/s")
	b.ReportMetric(float64(elapsed.Nanoseconds())/float64(n), "ns/op") // per processed event, not per b.N
	b.ReportMetric(float64(n), "events")
	if readyAt > 0 && elapsed > readyAt {
		b.ReportMetric(ms(readyAt), "ready-ms")
		b.ReportMetric(float64(n)/(elapsed-readyAt).Seconds(), "after-ready-events/s")
	}
	b.ReportMetric(float64(rows), "history-rows")
	r.reportCPU(b, cpu0, cpu1, elapsed)
}

// BenchmarkLatency10k measures produce-to-price-update latency at 10,000
// events/s with the real processor: `dynaprice loadgen`'s Run (keyed
// events, demo traffic) for DYNAPRICE_BENCH_LATENCY (10s by default), each
// event matched to the first price update reflecting it through the
// dynaprice-event-time header. The measurement runs once per call
// whatever b.N is; run it with -benchtime=1x (the default 1s also runs it
// once). ns/op is suppressed: read p50-ms .. max-ms and matched/sent.
func BenchmarkLatency10k(b *testing.B) {
	r := newRig(b, benchPartitions)
	rep := r.paced(b, loadgen.Config{Brokers: r.brokers, Rate: 10_000, Duration: latencyRun, Seed: 1})
	// Correctness: every acknowledged event ends up as one history row.
	poll.Until(b, time.Minute, "one history row per acknowledged event", func() error {
		rows := r.count("price_history", "source = 'dynamic'")
		return poll.Check(rows == rep.Acked, "price_history holds %d dynamic rows, want %d", rows, rep.Acked)
	})
}

// BenchmarkLatency10kNaive offers the naive pipeline the same 10,000
// events/s for DYNAPRICE_BENCH_NAIVE_LATENCY (3s by default, capped because
// its backlog only grows) and loadgen's default 10s drain. It cannot keep
// up: matched/sent says how much of the load got a price update before
// the drain ended, processed-events/s how fast it worked through it, and
// the percentiles are over the matched events only.
func BenchmarkLatency10kNaive(b *testing.B) {
	r := newRig(b, benchPartitions)
	r.createNaiveTable()
	nv := r.startNaive()
	select {
	case <-nv.assigned:
	case err := <-nv.failed.ch:
		b.Fatal(err)
	case <-time.After(time.Minute):
		b.Fatal("the naive consumer got no partitions")
	}
	cpu0 := sampleCPU()
	t0 := time.Now()
	rep, err := loadgen.Run(context.Background(), loadgen.Config{Brokers: r.brokers, Rate: 10_000, Duration: naiveLatencyRun, Seed: 1})
	wall := time.Since(t0)
	cpu1 := r.sampleEnd()
	processed := r.count(naiveTable, "")
	nv.stop()
	if err != nil {
		b.Fatal(err)
	}
	reportLatency(b, rep)
	b.ReportMetric(float64(processed)/wall.Seconds(), "processed-events/s")
	r.reportCPU(b, cpu0, cpu1, wall)
}

// sustainedDrain is how long BenchmarkSustained waits after the last event
// for the price updates still owed (it ends early once every event is
// matched): long enough for an engine a little behind the rate to work
// through its backlog, so that matched/sent says whether it kept up at all
// and priced-events/s how fast it went.
const sustainedDrain = 30 * time.Second

// BenchmarkSustained is the paced, sustained run: the real processor,
// already running, and `dynaprice loadgen`'s Run sending keyed demo
// traffic at DYNAPRICE_BENCH_SUSTAINED_RATE events/s (100,000 by default)
// for DYNAPRICE_BENCH_SUSTAINED (60s by default), then draining for up to
// sustainedDrain. Unlike BenchmarkEndToEnd (a backlog produced before the
// engine starts), Kafka, the engine, PostgreSQL and Redis work while
// events keep arriving, as in production. It reports priced-events/s
// (matched events over the time from the first send to the last matched
// price update: the rate sustained end to end), matched/sent, and latency
// percentiles. Like BenchmarkLatency10k it runs once whatever b.N is: use
// -benchtime=1x. ns/op is suppressed.
func BenchmarkSustained(b *testing.B) {
	r := newRig(b, benchPartitions)
	rep := r.paced(b, loadgen.Config{Brokers: r.brokers, Rate: float64(sustainedRate),
		Duration: sustainedRun, Drain: sustainedDrain, Seed: 1})
	matched := 0.0
	if rep.Sent > 0 {
		matched = 100 * float64(rep.Matched) / float64(rep.Sent)
	}
	b.Logf("%d events/s for %v: %d sent (%.0f/s into Kafka), %.1f%% matched, priced %.0f events/s over %v; "+
		"latency p50 %.1f ms, p99 %.1f ms, max %.1f ms",
		sustainedRate, sustainedRun, rep.Sent, rep.SendRate, matched, rep.PricedRate, rep.PricedElapsed.Round(time.Millisecond),
		ms(rep.Latency.P50), ms(rep.Latency.P99), ms(rep.Latency.Max))
}

// paced starts one engine, waits for it to load, runs loadgen with cfg
// against it and reports latency, CPU and commits.
func (r *rig) paced(b *testing.B, cfg loadgen.Config) loadgen.Report {
	d := r.startEngine()
	r.waitLoaded(d.failed.ch)
	cpu0 := sampleCPU()
	t0 := time.Now()
	rep, err := loadgen.Run(context.Background(), cfg)
	wall := time.Since(t0)
	cpu1 := r.sampleEnd()
	commits, mean, _ := d.commitStats()
	if err != nil {
		b.Fatal(err)
	}
	reportLatency(b, rep)
	r.reportCPU(b, cpu0, cpu1, wall)
	if commits > 0 {
		b.ReportMetric(float64(commits), "commits")
		b.ReportMetric(ms(mean), "ms/commit")
	}
	return rep
}

// waitLoaded waits until the engine has loaded every partition: loading
// republishes every product, so Redis then holds a demand for each.
func (r *rig) waitLoaded(failed <-chan error) {
	r.tb.Helper()
	want := map[string]float64{}
	for _, p := range r.catalog.Products {
		want[p.ID] = 0
	}
	poll.Until(r.tb, time.Minute, "the engine to load its partitions", func() error {
		select {
		case err := <-failed:
			r.tb.Fatal(err)
		default:
		}
		ok, err := r.redisDemandsAre(context.Background(), want)
		if err != nil {
			r.tb.Fatal(err)
		}
		return poll.Check(ok, "not every product has a demand in Redis")
	})
}

func reportLatency(b *testing.B, rep loadgen.Report) {
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(ms(rep.Latency.P50), "p50-ms")
	b.ReportMetric(ms(rep.Latency.P90), "p90-ms")
	b.ReportMetric(ms(rep.Latency.P99), "p99-ms")
	b.ReportMetric(ms(rep.Latency.P999), "p999-ms")
	b.ReportMetric(ms(rep.Latency.Max), "max-ms")
	if rep.Sent > 0 {
		b.ReportMetric(float64(rep.Matched)/float64(rep.Sent), "matched/sent")
	}
	b.ReportMetric(float64(rep.Sent), "sent")
	b.ReportMetric(rep.SendRate, "sent-events/s")
	b.ReportMetric(rep.PricedRate, "priced-events/s")
}

// TestWorkload checks, without any service, that the benchmark's events
// are what the engine decodes as seed-format events, that the expected
// demand is their weighted sum, and that the expected history rows are
// what the pricing rules (cents rounding included) produce for them.
func TestWorkload(t *testing.T) {
	if w, err := newWorkload(nil, 0, 1); err == nil || w != nil {
		t.Fatal("a workload without products was accepted")
	}
	// Enough events for PA's demand to pass the point where some events
	// no longer move its rounded price.
	const n = 200_000
	products := catalog.Demo().Products
	w, err := newWorkload(products, n, 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(w.values) != n {
		t.Fatalf("%d events, want %d", len(w.values), n)
	}
	book, err := pricing.NewBook(pricing.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	index := map[string]int{}
	for _, p := range products {
		if index[p.ID], _, err = book.Upsert(p, 1); err != nil {
			t.Fatal(err)
		}
	}
	got := map[string]float64{}
	types := map[string]int{}
	var rows int64
	d := ingest.Decoder{Now: time.Now}
	var evs []ingest.Event
	var idx []int
	for i, v := range w.values {
		var rejects []ingest.Reject
		evs, idx, rejects, err = d.Decode(v, "application/json", evs[:0], idx[:0])
		if err != nil || len(rejects) > 0 || len(evs) != 1 {
			t.Fatalf("event %d %s: %v %v %d events", i, v, err, rejects, len(evs))
		}
		ev := evs[0]
		if ev.ProductID != string(w.keys[i]) {
			t.Fatalf("event %d is for %s but keyed %s", i, ev.ProductID, w.keys[i])
		}
		got[ev.ProductID] += weight(ev.Type) * float64(ev.Quantity)
		types[ev.Type.String()]++
		if book.Apply(index[ev.ProductID], ev.Type, ev.Quantity, 2) {
			rows++
		}
	}
	for id, d := range w.want {
		if got[id] != d {
			t.Errorf("%s: decoded demand %v, workload expects %v", id, got[id], d)
		}
	}
	if rows != w.rows {
		t.Errorf("the pricing rules change the price %d times, the workload expects %d history rows", rows, w.rows)
	}
	if w.rows == n {
		t.Errorf("every event changed the price: the test does not reach cents rounding")
	}
	if types["view"] < n*3/4 || types["cart"] < n/10 || types["purchase"] < n/40 {
		t.Errorf("event mix %v is not the demo's 80/15/5", types)
	}
	if len(w.want) != len(products) {
		t.Errorf("events for %d products, want all %d", len(w.want), len(products))
	}
}

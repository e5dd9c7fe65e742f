// Package pipeline benchmarks the scale-out pipeline end to end: events in
// Kafka, state, history and offsets committed in PostgreSQL, the live view
// in Redis and price updates back in Kafka. It compares dynaprice's stream
// processor (internal/kafka, wired as `dynaprice engine` wires it) with the
// naive per-event pipeline of the original system, in the same run. See
// README.md for the commands and the figures measured.
//
// Kafka is kfake, an in-process broker spoken to over TCP, so its CPU is
// part of this process; PostgreSQL and Redis are the real servers named by
// DYNAPRICE_TEST_POSTGRES and DYNAPRICE_TEST_REDIS (the benchmarks skip
// when they are unset). All of it shares the machine's cores.
package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/url"
	"os"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/rueidis"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/dynaprice/dynaprice/internal/catalog"
	"github.com/dynaprice/dynaprice/internal/ingest"
	"github.com/dynaprice/dynaprice/internal/kafka"
	"github.com/dynaprice/dynaprice/internal/live"
	"github.com/dynaprice/dynaprice/internal/loadgen"
	"github.com/dynaprice/dynaprice/internal/postgres"
	"github.com/dynaprice/dynaprice/internal/pricing"
)

// Knobs, from the environment, so that one can explore without editing:
//
//	DYNAPRICE_BENCH_PARTITIONS     partitions of the topics (default 6; see README.md)
//	DYNAPRICE_BENCH_MAX_POLL       the processor's MaxPollRecords (default kafka.DefaultMaxPollRecords, its own and the engine's)
//	DYNAPRICE_BENCH_NAIVE_MAX      events the naive end-to-end run processes at most (default 5000)
//	DYNAPRICE_BENCH_LATENCY        sending phase of BenchmarkLatency10k (default 10s)
//	DYNAPRICE_BENCH_NAIVE_LATENCY  sending phase of BenchmarkLatency10kNaive (default 3s)
//	DYNAPRICE_BENCH_SUSTAINED      sending phase of BenchmarkSustained (default 60s)
//	DYNAPRICE_BENCH_SUSTAINED_RATE events/s BenchmarkSustained sends (default 100000)
//	DYNAPRICE_BENCH_FETCH_PARTITION_BYTES, DYNAPRICE_BENCH_TRACE, DYNAPRICE_BENCH_CPUPROFILE:
//	                               experiments, see engine_test.go and profileTimed
var (
	benchPartitions   = int32(envInt("DYNAPRICE_BENCH_PARTITIONS", 6))
	benchMaxPoll      = envInt("DYNAPRICE_BENCH_MAX_POLL", kafka.DefaultMaxPollRecords)
	naiveMax          = envInt("DYNAPRICE_BENCH_NAIVE_MAX", 5000)
	latencyRun        = envDuration("DYNAPRICE_BENCH_LATENCY", 10*time.Second)
	naiveLatencyRun   = envDuration("DYNAPRICE_BENCH_NAIVE_LATENCY", 3*time.Second)
	sustainedRun      = envDuration("DYNAPRICE_BENCH_SUSTAINED", 60*time.Second)
	sustainedRate     = envInt("DYNAPRICE_BENCH_SUSTAINED_RATE", 100_000)
	benchLogLevel     = slog.LevelWarn
	rigSeq            atomic.Int32
	errPipelineExited = errors.New("pipeline stopped before finishing")
)

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

func envDuration(name string, def time.Duration) time.Duration {
	if v, err := time.ParseDuration(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

var topics = kafka.DefaultTopics()

// rig is one benchmark's services: its own kfake broker with the topics
// created, its own PostgreSQL schema (migrated, demo catalog seeded) and
// its own Redis key prefix. Everything is removed when the benchmark ends.
type rig struct {
	tb         testing.TB
	brokers    []string
	partitions int32
	pgURL      string // as given
	appURL     string // with application_name set to appName
	appName    string
	schema     string
	db         *postgres.DB
	redisAddr  string
	prefix     string
	rc         rueidis.Client // plain client for checks and the naive pipeline
	catalog    catalog.File
	base       map[string]float64
	log        *slog.Logger
}

func newRig(tb testing.TB, partitions int32) *rig {
	tb.Helper()
	pg, rd := os.Getenv("DYNAPRICE_TEST_POSTGRES"), os.Getenv("DYNAPRICE_TEST_REDIS")
	if pg == "" || rd == "" {
		tb.Skip("DYNAPRICE_TEST_POSTGRES and DYNAPRICE_TEST_REDIS not set")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	seq := rigSeq.Add(1)
	r := &rig{tb: tb, partitions: partitions, pgURL: pg, redisAddr: rd, catalog: catalog.Demo(),
		schema: fmt.Sprintf("bench_%d_%d", os.Getpid(), seq),
		prefix: fmt.Sprintf("dynaprice-bench:%d:%d:", os.Getpid(), seq),
		log:    slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: benchLogLevel})),
		base:   map[string]float64{}}
	for _, p := range r.catalog.Products {
		r.base[p.ID] = p.BasePrice
	}

	kc, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(kc.Close)
	r.brokers = kc.ListenAddrs()
	adminCl, err := kgo.NewClient(kgo.SeedBrokers(r.brokers...), kgo.MetadataMinAge(10*time.Millisecond))
	if err != nil {
		tb.Fatal(err)
	}
	n, err := kafka.EnsureTopics(ctx, kadm.NewClient(adminCl), topics, partitions, 1)
	adminCl.Close()
	if err != nil {
		tb.Fatal(err)
	}
	if n != partitions {
		tb.Fatalf("events topic has %d partitions, want %d", n, partitions)
	}

	// The pipeline's connections name themselves, so that the CPU of their
	// server processes can be told from other sessions' (see pgPIDs).
	r.appName = fmt.Sprintf("dynaprice-bench-%d-%d", os.Getpid(), seq)
	r.appURL = pg
	if u, err := url.Parse(pg); err == nil && u.Scheme != "" {
		q := u.Query()
		q.Set("application_name", r.appName)
		u.RawQuery = q.Encode()
		r.appURL = u.String()
	}

	// PostgreSQL: a schema of our own, as `dynaprice engine` would migrate
	// and seed an empty database (demo catalog, seed strategy).
	tb.Cleanup(func() { r.dropSchema() })
	r.db, err = postgres.Open(ctx, postgres.Config{URL: r.appURL, Schema: r.schema, Logger: r.log})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(r.db.Close)
	if _, err := r.db.Migrate(ctx); err != nil {
		tb.Fatal(err)
	}
	if seeded, err := r.db.SeedCatalog(ctx, r.catalog.Products, r.catalog.DefaultStrategy); err != nil || !seeded {
		tb.Fatalf("seeding the catalog: seeded %v, %v", seeded, err)
	}

	r.rc, err = rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{rd}, DisableCache: true, ForceSingleClient: true})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { r.deleteKeys(); r.rc.Close() })
	return r
}

func (r *rig) dropSchema() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := pgx.Connect(ctx, r.pgURL)
	if err != nil {
		r.tb.Error(err)
		return
	}
	defer c.Close(ctx)
	if _, err := c.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{r.schema}.Sanitize()+" CASCADE"); err != nil {
		r.tb.Error(err)
	}
}

func (r *rig) deleteKeys() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var cursor uint64
	for {
		se, err := r.rc.Do(ctx, r.rc.B().Scan().Cursor(cursor).Match(r.prefix+"*").Count(1000).Build()).AsScanEntry()
		if err != nil {
			r.tb.Errorf("cleaning up Redis: %v", err)
			return
		}
		if len(se.Elements) > 0 {
			if err := r.rc.Do(ctx, r.rc.B().Del().Key(se.Elements...).Build()).Error(); err != nil {
				r.tb.Errorf("cleaning up Redis: %v", err)
			}
		}
		if cursor = se.Cursor; cursor == 0 {
			return
		}
	}
}

// count returns the rows of table in the rig's schema matching where.
func (r *rig) count(table, where string) int64 {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := pgx.Connect(ctx, r.pgURL)
	if err != nil {
		r.tb.Fatal(err)
	}
	defer c.Close(ctx)
	var n int64
	q := "SELECT count(*) FROM " + pgx.Identifier{r.schema, table}.Sanitize()
	if where != "" {
		q += " WHERE " + where
	}
	if err := c.QueryRow(ctx, q).Scan(&n); err != nil {
		r.tb.Fatal(err)
	}
	return n
}

// weight is the demand an event adds under the default weights (what
// `dynaprice engine --weights` defaults to).
func weight(t pricing.EventType) float64 {
	w := pricing.DefaultWeights()
	switch t {
	case pricing.View:
		return w.View
	case pricing.Cart:
		return w.Cart
	case pricing.Purchase:
		return w.Purchase
	}
	return 0
}

// appendSeedEvent appends one event in the original system's format,
//
//	{"event_type":"view","product_id":"PA","user_id":"U17","timestamp":1773713139123,"price":299}
//
// as its producers (and `dynaprice loadgen`) write them: no event id, no
// quantity.
func appendSeedEvent(b []byte, ev *ingest.Event, user int, tsMillis int64) []byte {
	b = append(b, `{"event_type":"`...)
	b = append(b, ev.Type.String()...)
	b = append(b, `","product_id":"`...)
	b = append(b, ev.ProductID...)
	b = append(b, `","user_id":"U`...)
	b = strconv.AppendInt(b, int64(user), 10)
	b = append(b, `","timestamp":`...)
	b = strconv.AppendInt(b, tsMillis, 10)
	b = append(b, `,"price":`...)
	b = strconv.AppendFloat(b, ev.Price, 'f', -1, 64)
	return append(b, '}')
}

// workload is n events of the demo traffic (the mix `dynaprice loadgen`
// sends: 80% views, 15% carts, 5% purchases, product popularity falling
// off Zipf-like from PA to PJ), encoded, with the demand every product
// must end with and the history rows the engine must commit for them.
//
// Not every event yields a history row: the engine records a row per
// change of the published price, which is rounded to cents, and once a
// product's demand D is large the seed formula's step 5*(sqrt(D+w) -
// sqrt(D)) falls below half a cent (D above about 60,000 for a view), so
// some events move only demand. rows counts the events that change the
// rounded price (or the source, from base to dynamic, for a product's
// first event), computed here independently of the engine; TestWorkload
// holds it to the pricing package.
type workload struct {
	keys, values [][]byte
	want         map[string]float64
	rows         int64
}

func newWorkload(products []pricing.Product, n int, seed uint64) (*workload, error) {
	rnd := rand.New(rand.NewPCG(seed, 0x7069706531))
	gen, err := loadgen.NewTraffic(loadgen.TrafficConfig{Rate: 1, Products: products, ViewShare: 0.80, CartShare: 0.15, Rand: rnd, Now: time.Now})
	if err != nil {
		return nil, err
	}
	w := &workload{want: map[string]float64{}}
	price := map[string]float64{}
	base := map[string]float64{}
	for _, p := range products {
		base[p.ID] = p.BasePrice
	}
	var evs []ingest.Event
	var slab []byte
	for done := 0; done < n; {
		k := min(4096, n-done)
		evs = gen.Next(evs[:0], k)
		slab = make([]byte, 0, k*100)
		ms := time.Now().UnixMilli()
		for i := range evs {
			ev := &evs[i]
			off := len(slab)
			slab = appendSeedEvent(slab, ev, 1+rnd.IntN(1000), ms)
			w.values = append(w.values, slab[off:len(slab):len(slab)])
			w.keys = append(w.keys, []byte(ev.ProductID))
			old, priced := price[ev.ProductID]
			w.want[ev.ProductID] += weight(ev.Type) * float64(ev.Quantity)
			p := cents(seedPrice(base[ev.ProductID], w.want[ev.ProductID]))
			if !priced || p != old {
				w.rows++
			}
			price[ev.ProductID] = p
		}
		done += k
	}
	return w, nil
}

// cents rounds a price as the engine's default guardrail does.
func cents(p float64) float64 { return math.Round(math.Round(p/0.01)*0.01*100) / 100 }

// produce writes w's events, keyed by product id, to the events topic and
// returns once Kafka acknowledged all of them.
func (r *rig) produce(w *workload) {
	r.tb.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(r.brokers...), kgo.DefaultProduceTopic(topics.Events),
		kgo.ProducerLinger(5*time.Millisecond), kgo.MaxBufferedRecords(100_000))
	if err != nil {
		r.tb.Fatal(err)
	}
	defer cl.Close()
	ctx := context.Background()
	var failed atomic.Pointer[error]
	promise := func(_ *kgo.Record, err error) {
		if err != nil {
			failed.CompareAndSwap(nil, &err)
		}
	}
	recs := make([]kgo.Record, len(w.values))
	for i := range recs {
		recs[i] = kgo.Record{Key: w.keys[i], Value: w.values[i]}
		cl.Produce(ctx, &recs[i], promise)
	}
	if err := cl.Flush(ctx); err != nil {
		r.tb.Fatal(err)
	}
	if err := failed.Load(); err != nil {
		r.tb.Fatalf("pre-producing events: %v", *err)
	}
}

// observer follows the price-updates topic from its start and keeps the
// newest update of every product.
type observer struct {
	cl      *kgo.Client
	mu      sync.Mutex
	latest  map[string]live.Price
	updates int64
	stop    context.CancelFunc
	stopped chan struct{}
}

func (r *rig) observe() *observer {
	r.tb.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(r.brokers...), kgo.ConsumeTopics(topics.Updates),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(500*time.Millisecond))
	if err != nil {
		r.tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	o := &observer{cl: cl, latest: map[string]live.Price{}, stop: cancel, stopped: make(chan struct{})}
	go o.run(ctx)
	r.tb.Cleanup(o.close)
	return o
}

func (o *observer) close() {
	o.stop()
	<-o.stopped
	o.cl.Close()
}

func (o *observer) run(ctx context.Context) {
	defer close(o.stopped)
	for {
		fs := o.cl.PollFetches(ctx)
		if ctx.Err() != nil || fs.IsClientClosed() {
			return
		}
		o.mu.Lock()
		fs.EachRecord(func(rec *kgo.Record) {
			u, err := live.ParseMessage(rec.Value)
			if err != nil {
				return
			}
			o.updates++
			if old, ok := o.latest[u.ProductID]; !ok || u.Version >= old.Version {
				o.latest[u.ProductID] = u
			}
		})
		o.mu.Unlock()
	}
}

// newest returns the newest update seen for id.
func (o *observer) newest(id string) (live.Price, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	u, ok := o.latest[id]
	return u, ok
}

func (o *observer) count() int64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.updates
}

// redisDemandsAre reports whether product:demand:<id> holds want for every
// product, with one MGET.
func (r *rig) redisDemandsAre(ctx context.Context, want map[string]float64) (bool, error) {
	ids := make([]string, 0, len(want))
	keys := make([]string, 0, len(want))
	for id := range want {
		ids = append(ids, id)
		keys = append(keys, r.prefix+"product:demand:"+id)
	}
	vals, err := r.rc.Do(ctx, r.rc.B().Mget().Key(keys...).Build()).ToArray()
	if err != nil {
		return false, err
	}
	for i, v := range vals {
		s, err := v.ToString()
		if err != nil {
			return false, nil // nil: not written yet
		}
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || f != want[ids[i]] {
			return false, nil
		}
	}
	return true, nil
}

// engineFinished is dynaprice's completion: Redis shows the final demand
// of every product, and price-updates holds, for every product, the
// version Redis stores (the last price change; a round that only moved
// demand publishes no update, by design).
func (r *rig) engineFinished(o *observer, want map[string]float64) func(context.Context) (bool, error) {
	return func(ctx context.Context) (bool, error) {
		if ok, err := r.redisDemandsAre(ctx, want); !ok || err != nil {
			return false, err
		}
		for id := range want {
			s, err := r.rc.Do(ctx, r.rc.B().Hget().Key(r.prefix+"dynaprice:product:"+id).Field("v").Build()).ToString()
			if err != nil {
				return false, err
			}
			v, err := strconv.ParseUint(s, 10, 64)
			if err != nil {
				return false, err
			}
			if u, ok := o.newest(id); !ok || u.Version < v {
				return false, nil
			}
		}
		return true, nil
	}
}

// naiveFinished is the naive pipeline's completion: every event sends an
// update, so the newest of every product carries its final demand; and
// Redis shows it too.
func (r *rig) naiveFinished(o *observer, want map[string]float64) func(context.Context) (bool, error) {
	return func(ctx context.Context) (bool, error) {
		for id, d := range want {
			if u, ok := o.newest(id); !ok || u.Demand != d {
				return false, nil
			}
		}
		return r.redisDemandsAre(ctx, want)
	}
}

// waitFinished polls finished every 5 ms and returns how long after start
// it first held. ready is polled on the way (may be nil), and readyAt set
// to when it first held. It fails if failed delivers first.
func (r *rig) waitFinished(start time.Time, o *observer, finished func(context.Context) (bool, error), failed <-chan error,
	ready func() bool, readyAt *time.Duration, timeout time.Duration) time.Duration {
	r.tb.Helper()
	ctx := context.Background()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	deadline := time.Now().Add(timeout)
	for {
		select {
		case err := <-failed:
			r.tb.Fatalf("pipeline: %v", err)
		case <-tick.C:
		}
		if ready != nil && *readyAt == 0 && ready() {
			*readyAt = time.Since(start)
		}
		ok, err := finished(ctx)
		if err != nil {
			r.tb.Fatal(err)
		}
		if ok {
			return time.Since(start)
		}
		if time.Now().After(deadline) {
			r.tb.Fatalf("not finished after %v (%d price updates seen)", timeout, o.count())
		}
	}
}

// cpuTimes is the CPU time used so far by this process (engine, kfake and
// the benchmark's clients), by every PostgreSQL process (by pid) and by
// Redis, read from /proc. ok is false where /proc is not available.
type cpuTimes struct {
	self, redis time.Duration
	pg          map[int]time.Duration
	pids        []int // see sampleEnd
	ok          bool
}

// clockTick is USER_HZ, 100 on every Linux configuration in practice.
const clockTick = 10 * time.Millisecond

func procCPU(pid string) (comm string, cpu time.Duration, ok bool) {
	b, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return "", 0, false
	}
	s := string(b)
	open, closing := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || closing < open {
		return "", 0, false
	}
	f := strings.Fields(s[closing+1:])
	if len(f) < 13 {
		return "", 0, false
	}
	// Fields 14 and 15 of stat (utime, stime); f starts at field 3.
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return "", 0, false
	}
	return s[open+1 : closing], time.Duration(ut+st) * clockTick, true
}

func sampleCPU() cpuTimes {
	c := cpuTimes{pg: map[int]time.Duration{}}
	var ok bool
	if _, c.self, ok = procCPU("self"); !ok {
		return c
	}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return c
	}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		comm, cpu, ok := procCPU(e.Name())
		if !ok {
			continue
		}
		switch {
		case comm == "postgres" || strings.HasPrefix(comm, "postgres:"):
			c.pg[pid] = cpu
		case comm == "redis-server":
			c.redis += cpu
		}
	}
	c.ok = true
	return c
}

// pgPIDs returns the server processes that worked for this rig: the
// backends of its connections (they carry its application_name) and the
// server's background processes (WAL writer, checkpointer ...), which
// other users of the server share. Backends of other sessions on the same
// server (other tests running at the same time) are left out.
func (r *rig) pgPIDs() []int {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, r.pgURL)
	if err != nil {
		return nil
	}
	defer c.Close(ctx)
	rows, _ := c.Query(ctx, "SELECT pid FROM pg_stat_activity WHERE application_name = $1 OR backend_type <> 'client backend'", r.appName)
	pids, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		return nil
	}
	out := make([]int, len(pids))
	for i, p := range pids {
		out[i] = int(p)
	}
	return out
}

// sampleEnd is sampleCPU at the end of a measurement, which also notes
// the rig's PostgreSQL processes: call it while the pipeline's connections
// are still open.
func (r *rig) sampleEnd() cpuTimes {
	c := sampleCPU()
	c.pids = r.pgPIDs()
	return c
}

// reportCPU reports the cores each party used on average between from and
// to (from sampleEnd).
func (r *rig) reportCPU(b *testing.B, from, to cpuTimes, elapsed time.Duration) {
	if !from.ok || !to.ok || elapsed <= 0 {
		return
	}
	var pg time.Duration
	for _, pid := range to.pids {
		pg += to.pg[pid] - from.pg[pid] // a backend started since: from.pg[pid] is 0
	}
	s := elapsed.Seconds()
	b.ReportMetric((to.self-from.self).Seconds()/s, "go-cores")
	b.ReportMetric(pg.Seconds()/s, "pg-cores")
	b.ReportMetric((to.redis-from.redis).Seconds()/s, "redis-cores")
}

// profileTimed starts a CPU profile of the timed part of a run when
// DYNAPRICE_BENCH_CPUPROFILE names a file (go test's -cpuprofile also
// covers the setup, which pre-produces the events through kfake, and the
// two cannot be combined). Only runs with b.N > 1 write it, so the
// framework's first b.N=1 call does not. It returns the stop function.
func profileTimed(b *testing.B) func() {
	path := os.Getenv("DYNAPRICE_BENCH_CPUPROFILE")
	if path == "" || b.N == 1 {
		return func() {}
	}
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		b.Fatal(err)
	}
	return func() {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			b.Error(err)
		}
	}
}

// ms converts a duration to float milliseconds for ReportMetric.
func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// seedPrice is the seed strategy's price, as the naive pipeline computes it.
func seedPrice(base, demand float64) float64 { return base + math.Sqrt(demand)*5 }

// errOnce keeps the first error of a pipeline's goroutines.
type errOnce struct {
	once sync.Once
	ch   chan error
}

func newErrOnce() *errOnce { return &errOnce{ch: make(chan error, 1)} }

func (e *errOnce) set(err error) {
	e.once.Do(func() { e.ch <- err })
}

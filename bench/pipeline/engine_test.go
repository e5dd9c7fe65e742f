package pipeline

import (
	"context"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/dynaprice/dynaprice/internal/engine"
	"github.com/dynaprice/dynaprice/internal/kafka"
	"github.com/dynaprice/dynaprice/internal/pricing"
	"github.com/dynaprice/dynaprice/internal/redis"
)

// dynaprice is a running engine: the real kafka.Engine with the
// PostgreSQL store and the Redis live view, wired as `dynaprice engine`
// wires them (internal/cli/engine.go) with that command's default flags.
type dynaprice struct {
	proc   *kafka.Engine
	reg    *prometheus.Registry
	live   *redis.Client
	cancel context.CancelFunc
	done   chan error
	failed *errOnce
	trace  *commitTrace // nil unless DYNAPRICE_BENCH_TRACE is set
}

func (r *rig) startEngine() *dynaprice {
	r.tb.Helper()
	ctx := context.Background()
	// openRedis: redis.Open with the address and our key prefix.
	rc, err := redis.Open(ctx, redis.Config{Addr: r.redisAddr, Prefix: r.prefix, Logger: r.log})
	if err != nil {
		r.tb.Fatal(err)
	}
	// pricingConfig with the default --weights and --half-life, then the
	// engine config from the default --dedup-window, --dedup-max, --tick.
	pc := pricing.DefaultConfig()
	pc.Weights, pc.HalfLife = pricing.DefaultWeights(), time.Hour
	ecfg := engine.DefaultConfig()
	ecfg.Pricing, ecfg.AutoCreate = pc, false
	ecfg.DedupWindow, ecfg.DedupMax, ecfg.TickInterval = 24*time.Hour, 1_000_000, time.Second
	ecfg.Logger = r.log
	reg := prometheus.NewRegistry()
	session := 10 * time.Second // --session-timeout default
	db := r.db
	stores := func(q int32, owns func(string) bool) engine.Store { return db.Store(int(q), owns) }
	var trace *commitTrace
	if traceCommits {
		trace = &commitTrace{}
		plain := stores
		stores = func(q int32, owns func(string) bool) engine.Store {
			return tracedStore{Store: plain(q, owns), t: trace}
		}
	}
	copts := []kgo.Opt{kgo.SessionTimeout(session), kgo.HeartbeatInterval(max(session/10, 100*time.Millisecond)),
		kgo.RebalanceTimeout(max(2*session, 10*time.Second))}
	if fetchPartitionBytes > 0 {
		copts = append(copts, kgo.FetchMaxPartitionBytes(int32(fetchPartitionBytes)))
	}
	benchSigner, err := kafka.ParseSigner("bench:bench-control-key-0123456789abcdefghij")
	if err != nil {
		r.tb.Fatal(err)
	}
	proc, err := kafka.NewEngine(kafka.EngineConfig{
		Brokers: r.brokers, Topics: topics, Group: "dynaprice-engine",
		Partitions: r.partitions, Replication: 1,
		Engine: ecfg, Live: rc, Signer: benchSigner, Registerer: reg, Logger: r.log,
		Stores:         stores,
		MaxPollRecords: benchMaxPoll,
		ClientOpts:     copts,
	})
	if err != nil {
		rc.Close()
		r.tb.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	d := &dynaprice{proc: proc, reg: reg, live: rc, cancel: cancel, done: make(chan error, 1), failed: newErrOnce(), trace: trace}
	go func() {
		err := proc.Run(runCtx)
		if err == nil {
			err = errPipelineExited
		}
		if runCtx.Err() == nil {
			d.failed.set(err)
		}
		d.done <- err
	}()
	r.tb.Cleanup(d.stop)
	return d
}

// stop ends the processor (it finishes its round, publishes what it
// committed and leaves the group) and closes its Redis client. Idempotent.
func (d *dynaprice) stop() {
	if d.cancel == nil {
		return
	}
	d.cancel()
	d.cancel = nil
	select {
	case <-d.done:
	case <-time.After(30 * time.Second):
	}
	d.live.Close()
}

// commitStats returns the store commits the processor made and their mean
// duration, from its commit_seconds histogram.
func (d *dynaprice) commitStats() (commits uint64, mean time.Duration, records float64) {
	mfs, err := d.reg.Gather()
	if err != nil {
		return 0, 0, 0
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			switch mf.GetName() {
			case "dynaprice_commit_duration_seconds":
				h := m.GetHistogram()
				commits = h.GetSampleCount()
				if commits > 0 {
					mean = time.Duration(h.GetSampleSum() / float64(commits) * float64(time.Second))
				}
			case "dynaprice_stream_records_total":
				records = m.GetCounter().GetValue()
			}
		}
	}
	return commits, mean, records
}

// traceCommits (DYNAPRICE_BENCH_TRACE=1) wraps each partition's store to
// measure how much of the wall time PostgreSQL commits are in flight. Off
// by default, so that the engine is wired exactly as in production.
var traceCommits = os.Getenv("DYNAPRICE_BENCH_TRACE") != ""

// fetchPartitionBytes (DYNAPRICE_BENCH_FETCH_PARTITION_BYTES) sets the
// processor client's FetchMaxPartitionBytes (franz-go's default: 1 MiB),
// an experiment on how records of a backlog spread over poll rounds. Off
// by default: `dynaprice engine` does not set it.
var fetchPartitionBytes = envInt("DYNAPRICE_BENCH_FETCH_PARTITION_BYTES", 0)

// commitTrace accumulates the wall time during which at least one, and at
// least two, store commits are in flight.
type commitTrace struct {
	mu       sync.Mutex
	inflight int
	last     time.Time
	busy     time.Duration // >= 1 commit in flight
	overlap  time.Duration // >= 2 commits in flight
}

func (t *commitTrace) step(delta int) {
	now := time.Now()
	t.mu.Lock()
	if t.inflight >= 1 {
		t.busy += now.Sub(t.last)
	}
	if t.inflight >= 2 {
		t.overlap += now.Sub(t.last)
	}
	t.inflight += delta
	t.last = now
	t.mu.Unlock()
}

func (t *commitTrace) totals() (busy, overlap time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.busy, t.overlap
}

// tracedStore is a partition's store with its commits timed.
type tracedStore struct {
	engine.Store
	t *commitTrace
}

func (s tracedStore) Commit(ctx context.Context, b *engine.Batch) error {
	s.t.step(+1)
	defer s.t.step(-1)
	return s.Store.Commit(ctx, b)
}

package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dynaprice/dynaprice/internal/engine"
	"github.com/dynaprice/dynaprice/internal/ingest"
	"github.com/dynaprice/dynaprice/internal/live"
	"github.com/dynaprice/dynaprice/internal/retry"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// StoreOpener returns the store of one partition's products: owns tells
// which product ids belong to it.
type StoreOpener func(partition int32, owns func(productID string) bool) engine.Store

// LiveWriter keeps the live price view (Redis) up to date. Write must be
// idempotent per product version: it is retried, and replays after a
// restart write versions already written.
type LiveWriter interface {
	Write(ctx context.Context, prices []live.Price) (int, error)
}

// EngineConfig configures the Kafka engine (the `dynaprice engine` role).
type EngineConfig struct {
	Brokers []string
	Topics  Topics
	// Group is the consumer group of all engines.
	Group string
	// Partitions and Replication are used when creating missing topics.
	Partitions  int32
	Replication int16
	// Engine configures each partition: pricing, deduplication of event
	// ids, the tick and the prune interval (both checked after each poll,
	// so they run at most a poll later than they say). Its Retry is set to
	// retry.Default unless given: a partition waits for a failing store.
	Engine engine.Config
	Stores StoreOpener
	Live   LiveWriter
	// Signer verifies control records (required).
	Signer *Signer
	// MaxPollRecords bounds the records processed per round (default
	// DefaultMaxPollRecords). Larger rounds mean fewer, larger commits.
	MaxPollRecords int
	// ShutdownTimeout bounds what Run does after its context ends:
	// publishing what was committed and flushing produced records
	// (default 10s; the role passes its --shutdown-timeout).
	ShutdownTimeout time.Duration
	Registerer      prometheus.Registerer
	Logger          *slog.Logger
	// ClientOpts are appended to the franz-go options (tests shorten
	// session timeouts with them).
	ClientOpts []kgo.Opt
}

// DefaultMaxPollRecords is the records processed per round unless
// EngineConfig.MaxPollRecords says otherwise (measured in
// bench/pipeline: with 256 KiB partition fetches, rounds this large make
// the partitions' commits overlap).
const DefaultMaxPollRecords = 60000

// Engine is the `dynaprice engine` role: it consumes the events and
// repartition topics in a consumer group and runs one engine.Partition per
// partition it owns, fed by that partition's records (router), committing
// state, history and consumed offsets in one store transaction. Then a
// partition's outbox writes Redis and publishes price updates.
//
// Exactly-once effect comes from the store, not from Kafka: offsets are
// read from the store when partitions are assigned (Kafka's committed
// offsets are written too, but only for monitoring lag), and every commit
// is fenced, so a stale owner's commit fails instead of applying events
// twice.
type Engine struct {
	cfg   EngineConfig
	log   *slog.Logger
	met   *metrics
	cl    *kgo.Client
	n     int32 // partitions of the events topic
	out   *outbox
	ready atomic.Bool

	mu    sync.Mutex
	slots map[int32]*slot
}

// slot is one owned partition: its driver, its router and the position
// committed with its state.
type slot struct {
	q      int32
	failed atomic.Int32 // rounds failed in a row
	store  engine.Store
	part   *engine.Partition
	rt     *router
	cur    cursor
	out    *outbox
}

// Publish implements engine.Publisher for the slot's partition: prices go
// to the outbox with the input times of the round that changed them.
func (s *slot) Publish(prices []live.Price) {
	s.out.publish(prices, s.rt.times)
	clear(s.rt.times)
}

func offsetAt(o int64) kgo.Offset {
	if o < 0 {
		// Never committed: start at the beginning, so events produced
		// before the first engine ever ran are priced too.
		return kgo.NewOffset().AtStart()
	}
	return kgo.NewOffset().At(o).WithEpoch(-1)
}

// NewEngine checks cfg and returns an engine; Run starts it.
func NewEngine(cfg EngineConfig) (*Engine, error) {
	if len(cfg.Brokers) == 0 || cfg.Topics.Events == "" || cfg.Topics.Updates == "" || cfg.Group == "" {
		return nil, errors.New("kafka: brokers, topics and group are required")
	}
	if cfg.Stores == nil || cfg.Live == nil || cfg.Signer == nil {
		return nil, errors.New("kafka: Stores, Live and Signer are required")
	}
	if err := cfg.Engine.Validate(); err != nil {
		return nil, err
	}
	if cfg.Partitions < 1 {
		cfg.Partitions = 12
	}
	if cfg.Replication < 1 {
		cfg.Replication = 1
	}
	if cfg.MaxPollRecords < 1 {
		cfg.MaxPollRecords = DefaultMaxPollRecords
	}
	if cfg.ShutdownTimeout <= 0 {
		cfg.ShutdownTimeout = 10 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Engine.Retry == nil {
		cfg.Engine.Retry = &retry.Default
	}
	if cfg.Engine.Metrics == nil {
		cfg.Engine.Metrics = engine.NewMetrics(cfg.Registerer, "engine")
	}
	met := newMetrics(cfg.Registerer)
	// The outbox exists before Run creates the client: the client's group
	// callbacks, on its own goroutines, load partitions and publish their
	// state, and Ready may be asked from anywhere.
	return &Engine{cfg: cfg, log: cfg.Logger, met: met, slots: make(map[int32]*slot),
		out: newOutbox(cfg.Live, cfg.Topics.Updates, cfg.Logger, met)}, nil
}

// Ready reports whether the engine has joined its group and nothing is
// stalled on a failing dependency.
func (e *Engine) Ready() bool {
	if !e.ready.Load() || e.out.failing() {
		return false
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, s := range e.slots {
		if s.part.Stalled() || s.failed.Load() >= stuckAfter {
			return false
		}
	}
	return true
}

// stuckAfter is how many rounds of a partition in a row may fail (and be
// replayed) before the engine reports it stuck: not ready, and a log line
// with the partition and offset.
const stuckAfter = 3

// Ping checks that a Kafka broker answers the engine's client.
func (e *Engine) Ping(ctx context.Context) error {
	e.mu.Lock()
	cl := e.cl
	e.mu.Unlock()
	if cl == nil {
		return errors.New("kafka: not connected yet")
	}
	return cl.Ping(ctx)
}

// Run consumes until ctx ends, then finishes the round in progress,
// publishes what was committed and leaves the group, within
// EngineConfig.ShutdownTimeout.
func (e *Engine) Run(ctx context.Context) error {
	if err := e.ensureTopics(ctx); err != nil {
		return err
	}
	opts := []kgo.Opt{
		kgo.SeedBrokers(e.cfg.Brokers...),
		kgo.ConsumerGroup(e.cfg.Group),
		kgo.ConsumeTopics(e.cfg.Topics.Events, e.cfg.Topics.Repartition(), e.cfg.Topics.ControlTopic()),
		// Range assigns partition p of the co-partitioned topics to the
		// same member, so one engine owns each product.
		kgo.Balancers(kgo.RangeBalancer()),
		// Rebalances wait until a round is committed: no partition changes
		// hands with work in flight.
		kgo.BlockRebalanceOnPoll(),
		kgo.DisableAutoCommit(),
		kgo.AdjustFetchOffsetsFn(e.assign),
		kgo.OnPartitionsRevoked(e.revoke),
		kgo.OnPartitionsLost(e.revoke),
		kgo.ProducerLinger(time.Millisecond),
		kgo.FetchMaxWait(100 * time.Millisecond),
		// Small per-partition fetches make a round span every partition,
		// so their commits run in parallel instead of one after another
		// (measured: commit overlap from 3% to 55%, throughput +40%).
		kgo.FetchMaxPartitionBytes(256 << 10),
		kgo.WithLogger(slogAdapter{e.log}),
	}
	cl, err := kgo.NewClient(append(opts, e.cfg.ClientOpts...)...)
	if err != nil {
		return fmt.Errorf("kafka: %w", err)
	}
	e.mu.Lock()
	e.cl = cl
	e.mu.Unlock()
	outCtx, stopOut := context.WithCancel(context.WithoutCancel(ctx))
	outDone := make(chan struct{})
	go func() { defer close(outDone); e.out.run(outCtx, cl) }()
	defer func() {
		// Publish what was committed, then leave the group, all within
		// the shutdown deadline.
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), e.cfg.ShutdownTimeout)
		defer cancel()
		e.out.drain(dctx)
		stopOut()
		<-outDone
		_ = cl.Flush(dctx)
		cl.CloseAllowingRebalance()
	}()
	tick, pruneEvery := e.cfg.Engine.TickInterval, e.cfg.Engine.PruneEvery()
	lastTick, lastPrune := time.Now(), time.Now()
	for ctx.Err() == nil {
		pctx, cancel := context.WithTimeout(ctx, tick)
		fs := cl.PollRecords(pctx, e.cfg.MaxPollRecords)
		cancel()
		if fs.IsClientClosed() {
			return nil
		}
		fs.EachError(func(t string, part int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
				e.met.fetchErrors.Inc()
				e.log.Warn("fetch failed; retrying", "topic", t, "partition", part, "err", err)
			}
		})
		work := make(map[int32][]*kgo.Record)
		fs.EachRecord(func(r *kgo.Record) { work[r.Partition] = append(work[r.Partition], r) })
		e.forEachSlot(ctx, work, e.process)
		if len(work) > 0 {
			e.commitToKafka(ctx)
		}
		if now := time.Now(); now.Sub(lastTick) >= tick {
			lastTick = now
			prune := now.Sub(lastPrune) >= pruneEvery
			if prune {
				lastPrune = now
			}
			e.forEachSlot(ctx, nil, func(ctx context.Context, s *slot, _ []*kgo.Record) error {
				if err := s.part.Tick(ctx); err != nil {
					return err
				}
				if prune {
					s.part.Prune(ctx)
				}
				return nil
			})
		}
		if e.out.recovered.Swap(false) {
			e.forEachSlot(ctx, nil, func(_ context.Context, s *slot, _ []*kgo.Record) error {
				s.part.Republish()
				return nil
			})
		}
		cl.AllowRebalance()
	}
	return nil
}

func (e *Engine) ensureTopics(ctx context.Context) error {
	// kadm answers ListTopics from the client's metadata cache, which
	// must not hide a topic created a moment ago for the default 5s.
	opts := append([]kgo.Opt{kgo.SeedBrokers(e.cfg.Brokers...)}, e.cfg.ClientOpts...)
	cl, err := kgo.NewClient(append(opts, kgo.MetadataMinAge(10*time.Millisecond))...)
	if err != nil {
		return fmt.Errorf("kafka: %w", err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	e.n, err = retry.Value(ctx, retry.Default, func(ctx context.Context) (int32, error) {
		return EnsureTopics(ctx, adm, e.cfg.Topics, e.cfg.Partitions, e.cfg.Replication)
	}, func(err error, wait time.Duration) {
		e.log.Warn("cannot set up topics yet; retrying", "err", err, "in", wait)
	})
	if err != nil {
		return fmt.Errorf("kafka: setting up topics: %w", err)
	}
	return nil
}

// forEachSlot runs f for every owned slot (with its records, if work is
// not nil: then only slots with records) concurrently and waits. A round
// that could not be committed rewinds its partition to the position
// committed with the state it reloaded; one whose partition could not even
// reload (ctx ended) is dropped, and its next owner resumes it.
func (e *Engine) forEachSlot(ctx context.Context, work map[int32][]*kgo.Record, f func(context.Context, *slot, []*kgo.Record) error) {
	e.mu.Lock()
	var todo []*slot
	for q, s := range e.slots {
		if work == nil || len(work[q]) > 0 {
			todo = append(todo, s)
		}
	}
	e.mu.Unlock()
	var wg sync.WaitGroup
	for _, s := range todo {
		wg.Go(func() {
			err := f(ctx, s, work[s.q])
			switch {
			case err == nil || ctx.Err() != nil:
				if err == nil && s.failed.Swap(0) >= stuckAfter {
					e.log.Info("partition makes progress again", "partition", s.q)
				}
			case errors.Is(err, engine.ErrNotCommitted):
				if n := s.failed.Add(1); n == stuckAfter {
					e.log.Error("partition makes no progress: its rounds keep failing; reporting not ready",
						"partition", s.q, "offset", s.cur.Events, "err", err)
				}
				e.log.Error("partition round failed; resuming from its last commit", "partition", s.q, "err", err)
				e.rewind(s)
				// The round was undone in memory, not reloaded; what reloading
				// did besides (publishing every price again) still keeps the
				// live view whole when the failure also cost an update (Kafka
				// down: price-updates, Redis: the outbox's retries). A
				// partition's prices are far cheaper to publish than to load.
				s.part.Republish()
			default:
				e.log.Error("partition failed", "partition", s.q, "err", err)
			}
		})
	}
	wg.Wait()
}

// assign loads the state of newly assigned partitions and tells the client
// to resume each at the offsets committed with that state.
func (e *Engine) assign(ctx context.Context, offsets map[string]map[int32]kgo.Offset) (map[string]map[int32]kgo.Offset, error) {
	e.ready.Store(true)
	parts := make(map[int32]bool)
	for _, ps := range offsets {
		for q := range ps {
			parts[q] = true
		}
	}
	for q := range parts {
		e.mu.Lock()
		s := e.slots[q]
		e.mu.Unlock()
		if s == nil {
			var err error
			if s, err = e.load(ctx, q); err != nil {
				return nil, err
			}
			e.mu.Lock()
			e.slots[q] = s
			e.mu.Unlock()
		}
		if ps, ok := offsets[e.cfg.Topics.Events]; ok {
			if _, ok := ps[q]; ok {
				ps[q] = offsetAt(s.cur.Events)
			}
		}
		if ps, ok := offsets[e.cfg.Topics.Repartition()]; ok {
			if _, ok := ps[q]; ok {
				ps[q] = offsetAt(s.cur.Repartition)
			}
		}
		if ps, ok := offsets[e.cfg.Topics.ControlTopic()]; ok {
			if _, ok := ps[q]; ok {
				ps[q] = offsetAt(s.cur.Control)
			}
		}
	}
	n := e.owned()
	e.cfg.Engine.Metrics.Partitions.Set(float64(n))
	e.log.Info("partitions assigned", "partitions", len(parts), "owned", n)
	return offsets, nil
}

func (e *Engine) owned() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.slots)
}

// revoke forgets revoked partitions. Rounds are committed before a
// rebalance may proceed, so there is nothing to save.
func (e *Engine) revoke(_ context.Context, _ *kgo.Client, revoked map[string][]int32) {
	e.mu.Lock()
	for _, ps := range revoked {
		for _, q := range ps {
			if s, ok := e.slots[q]; ok {
				s.part.Close()
				_ = s.store.Close()
				delete(e.slots, q)
			}
		}
	}
	n := len(e.slots)
	e.mu.Unlock()
	e.cfg.Engine.Metrics.Partitions.Set(float64(n))
	e.log.Info("partitions revoked", "owned", n)
}

// load reads partition q's state, waiting while the store is down.
func (e *Engine) load(ctx context.Context, q int32) (*slot, error) {
	n := e.n
	owns := func(id string) bool { return PartitionOf(id, n) == q }
	s := &slot{q: q, out: e.out,
		rt: newRouter(q, n, e.cfg.Topics, e.cfg.Signer, &ingest.Decoder{Now: e.cfg.Engine.Now, MaxEvents: maxEventsPerRecord})}
	s.store = e.cfg.Stores(q, owns)
	s.part = engine.NewPartition(e.cfg.Engine, s.store, s, e.log.With("partition", q))
	if err := s.part.Load(ctx); err != nil {
		return nil, fmt.Errorf("kafka: loading partition %d: %w", q, err)
	}
	cur, err := parseCursor(s.part.Cursor())
	if err != nil {
		return nil, fmt.Errorf("kafka: partition %d: %w", q, err)
	}
	s.cur = cur
	return s, nil
}

// rewind sets s's position to the one committed with the state it
// reloaded after a failed round, and consumption to match.
func (e *Engine) rewind(s *slot) {
	cur, err := parseCursor(s.part.Cursor())
	if err != nil {
		e.log.Error("partition state has an unreadable position", "partition", s.q, "err", err)
		return
	}
	s.cur = cur
	e.cl.SetOffsets(map[string]map[int32]kgo.EpochOffset{
		e.cfg.Topics.Events:         {s.q: {Epoch: -1, Offset: max(s.cur.Events, 0)}},
		e.cfg.Topics.Repartition():  {s.q: {Epoch: -1, Offset: max(s.cur.Repartition, 0)}},
		e.cfg.Topics.ControlTopic(): {s.q: {Epoch: -1, Offset: max(s.cur.Control, 0)}},
	})
}

// process routes and commits one round of s's records. Forwards and dead
// letters must be in Kafka before the offsets that consumed their sources
// are committed. A record whose change cannot be stored is dead-lettered
// alone and the rest of the round committed (engine.Partition.RoundOf).
func (e *Engine) process(ctx context.Context, s *slot, recs []*kgo.Record) error {
	var last routed
	var dlqErr error
	err := s.part.RoundOf(ctx, engine.Feed{
		N: len(recs),
		Apply: func(m *engine.Machine, now int64, lo, hi int) (string, error) {
			cur, err := parseCursor(s.part.Cursor())
			if err != nil {
				return "", err
			}
			last = s.rt.route(m, recs[lo:hi], cur, now)
			if err := produceAndWait(ctx, e.cl, len(last.out), func(i int) *kgo.Record { return last.out[i] }); err != nil {
				return "", fmt.Errorf("producing forwards and dead letters: %w", err)
			}
			return last.next.encode(), nil
		},
		Done: func(lo, hi int, err error) {
			clear(last.out) // drop record references
			if err != nil {
				return
			}
			e.met.records.Add(float64(hi - lo))
			e.met.forwarded.Add(float64(last.forwarded))
			e.met.deadLetters.Add(float64(last.dead))
		},
		Reject: func(i int, cause error) string {
			r := recs[i]
			cur, err := parseCursor(s.part.Cursor())
			if err == nil {
				dl := deadLetter(e.cfg.Topics.DeadLetter(), r, -1, "the change cannot be stored: "+cause.Error())
				err = produceAndWait(ctx, e.cl, 1, func(int) *kgo.Record { return dl })
			}
			if err != nil {
				dlqErr = err
				return ""
			}
			e.met.records.Inc()
			e.met.deadLetters.Inc()
			return skip(cur, r, e.cfg.Topics).encode()
		},
	})
	if err == nil && dlqErr != nil {
		err = fmt.Errorf("%w: dead-lettering a record that cannot be stored: %w", engine.ErrNotCommitted, dlqErr)
	}
	if cur, perr := parseCursor(s.part.Cursor()); perr == nil {
		s.cur = cur
	}
	return err
}

// skip returns cur moved past r without applying it.
func skip(cur cursor, r *kgo.Record, topics Topics) cursor {
	next := cur.clone()
	next.past(r, topics)
	return next
}

// commitToKafka records every owned partition's committed position as the
// group's Kafka offsets too. Only lag monitoring reads them (kadm, Kafka
// tools); the engine resumes from the store.
func (e *Engine) commitToKafka(ctx context.Context) {
	offs := map[string]map[int32]kgo.EpochOffset{e.cfg.Topics.Events: {}, e.cfg.Topics.Repartition(): {}, e.cfg.Topics.ControlTopic(): {}}
	e.mu.Lock()
	for q, s := range e.slots {
		if s.cur.Events >= 0 {
			offs[e.cfg.Topics.Events][q] = kgo.EpochOffset{Epoch: -1, Offset: s.cur.Events}
		}
		if s.cur.Repartition >= 0 {
			offs[e.cfg.Topics.Repartition()][q] = kgo.EpochOffset{Epoch: -1, Offset: s.cur.Repartition}
		}
		if s.cur.Control >= 0 {
			offs[e.cfg.Topics.ControlTopic()][q] = kgo.EpochOffset{Epoch: -1, Offset: s.cur.Control}
		}
	}
	e.mu.Unlock()
	e.cl.CommitOffsets(ctx, offs, nil)
}

// slogAdapter lets franz-go log through slog.
type slogAdapter struct{ l *slog.Logger }

func (a slogAdapter) Level() kgo.LogLevel { return kgo.LogLevelWarn }

func (a slogAdapter) Log(level kgo.LogLevel, msg string, kv ...any) {
	lv := slog.LevelInfo
	switch level {
	case kgo.LogLevelError:
		lv = slog.LevelError
	case kgo.LogLevelWarn:
		lv = slog.LevelWarn
	case kgo.LogLevelDebug:
		lv = slog.LevelDebug
	}
	a.l.Log(context.Background(), lv, "kafka: "+msg, kv...)
}

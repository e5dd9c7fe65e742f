package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/dynaprice/dynaprice/internal/retry"
)

// Partition drives one partition of the catalog through the cycle every
// price goes through, in both modes: load the state from the Store, apply a
// round of input to the Machine, seal it, commit it (with the input
// position, when there is one), publish what was committed, and reload
// when a commit fails, so that memory never runs ahead of what is durable.
// Ticks (time-dependent prices, override expiry) and pruning of remembered
// event ids are rounds like any other.
//
// What feeds it differs: in serve a Writer feeds the one partition from
// the API's request queue; in scale-out the Kafka engine feeds one
// Partition per Kafka partition it owns from that partition's records.
// A Partition is used from one goroutine at a time.
type Partition struct {
	cfg     Config
	store   Store
	pub     Publisher
	met     *Metrics
	log     *slog.Logger
	m       *Machine
	cursor  string
	stalled atomic.Bool
	// failures counts the rounds failed in a row; reported is whether the
	// partition counts in the partitions_stalled gauge.
	failures atomic.Int32
	reported bool
	// evicted counts event ids evicted within their window since
	// evictLogged, when that was last logged.
	evicted     int
	evictLogged time.Time
	// held is this partition's share of Metrics.Held, fallen its share
	// of Metrics.LearningFallback.
	held   int
	fallen int
	// pruning is closed when the store prune Prune started has ended;
	// stopPrune cancels it.
	pruning   chan struct{}
	stopPrune context.CancelFunc
	// retaining and stopRetain are the same for the history retention
	// (Store.PruneHistory), which runs apart from the prune so that a long
	// first run (a backlog of history) does not hold the prune up.
	retaining  chan struct{}
	stopRetain context.CancelFunc
}

// ErrNotCommitted is wrapped by Round's error when the round could not be
// committed: nothing of it is durable, and the partition has reloaded its
// state from the store, so its input must be fed again from Cursor (a
// stream) or answered with an error (requests). Any other error from Round
// means the partition could not even reload, and must stop.
var ErrNotCommitted = errors.New("round not committed")

// NewPartition returns a partition over store that publishes to pub. cfg
// must be valid (Config.Validate); Load gives it its state.
// Its metrics are cfg.Metrics, shared by every partition of a process; log
// is its logger (nil: cfg.Logger).
func NewPartition(cfg Config, store Store, pub Publisher, log *slog.Logger) *Partition {
	if cfg.Metrics == nil {
		cfg.Metrics = NewMetrics(nil, "")
	}
	if log == nil {
		log = cfg.Logger
	}
	return &Partition{cfg: cfg, store: store, pub: pub, met: cfg.Metrics, log: log, m: NewMachine(cfg)}
}

// Machine is the partition's state machine, for reads between rounds
// (listing, explaining) from the partition's goroutine.
func (p *Partition) Machine() *Machine { return p.m }

// Cursor is the input position committed with the state ("" if none ever
// was): a stream-fed partition resumes reading there.
func (p *Partition) Cursor() string { return p.cursor }

// Stalled reports whether the partition makes no progress: a commit is
// being retried because the store fails (with Config.Retry), or its last
// StuckAfter rounds or more all failed. It may be called from any
// goroutine.
func (p *Partition) Stalled() bool { return p.stalled.Load() || p.failures.Load() >= StuckAfter }

// Failures is how many rounds in a row have failed (0 after a committed
// one). It may be called from any goroutine.
func (p *Partition) Failures() int { return int(p.failures.Load()) }

func (p *Partition) now() int64 { return p.cfg.Now().UnixNano() }

// Load (re)builds the machine from the store and publishes every price:
// after a crash between a commit and its publication, the published view
// was behind, and versions make republishing harmless when it was not.
// With Config.Retry it waits for a failing store until ctx ends.
func (p *Partition) Load(ctx context.Context) error {
	load := func(ctx context.Context) error {
		snap, err := p.store.Load(ctx)
		if err != nil {
			return fmt.Errorf("loading state: %w", err)
		}
		all, err := p.m.Load(snap, p.now())
		if err != nil {
			return retry.Permanent(err)
		}
		p.cursor = snap.Cursor
		p.pub.Publish(all)
		return nil
	}
	if p.cfg.Retry == nil {
		return load(ctx)
	}
	return retry.Do(ctx, *p.cfg.Retry, load, func(err error, wait time.Duration) {
		p.log.Warn("cannot load state; retrying", "err", err, "in", wait)
	})
}

// Round runs one round: apply feeds the machine (and may do the I/O that
// must precede the commit, such as producing forwarded records) and returns
// the input position to commit with it ("" for none); then the round is
// sealed, committed and published. If apply or the commit fails, the state
// is reloaded and the error wraps ErrNotCommitted.
func (p *Partition) Round(ctx context.Context, apply func(m *Machine, now int64) (cursor string, err error)) error {
	p.m.Begin()
	cursor, err := apply(p.m, p.now())
	if err == nil {
		b, prices := p.m.Seal()
		if cursor != "" {
			b.Cursor = cursor
		}
		if err = p.commit(ctx, b); err == nil {
			if cursor != "" {
				p.cursor = cursor
			}
			if len(prices) > 0 {
				p.pub.Publish(prices)
			}
			p.setHeld(p.m.Held())
			p.setFallback(p.m.Fallback())
			if n, ids := p.m.Tripped(); n > 0 {
				p.met.BreakerTrips.Add(float64(n))
				p.log.Warn("price-velocity breaker tripped: prices held until released (POST /release/{id}) or their window passes",
					"products", n, "ids", ids)
			}
			if n := p.m.EvictedInWindow(); n > 0 {
				p.met.DedupEvicted.Add(float64(n))
				p.evicted += n
			}
			if now := time.Now(); p.evicted > 0 && now.Sub(p.evictLogged) >= time.Minute {
				// At most once a minute: a flood of junk ids must not
				// flood the log too.
				n := p.evicted
				p.evicted, p.evictLogged = 0, now
				p.log.Warn("event ids forgotten before the dedup window ended; their retries would count twice (raise --dedup-max)",
					"evicted", n, "max", p.cfg.DedupMax, "window", p.cfg.DedupWindow)
			}
			p.succeeded()
			return nil
		}
	}
	p.failed(err)
	// Memory must not run ahead of the store: put the machine back as it
	// was before the round, from the copies it kept of what the round
	// changed, or, when it cannot (and when another writer committed:
	// the store holds what this one never had), reload the whole state.
	if errors.Is(err, ErrFenced) || !p.m.Undo() {
		p.met.Reloads.Inc()
		if lerr := p.Load(ctx); lerr != nil {
			return fmt.Errorf("reloading after a failed round (%v): %w", err, lerr)
		}
	}
	return fmt.Errorf("%w: %w", ErrNotCommitted, err)
}

// StuckAfter is how many rounds of a partition in a row may fail before
// it reports itself stalled (Stalled; /readyz 503, a log line, the
// partitions_stalled gauge): one failed commit is an incident, three in a
// row (a full disk, a store that is gone) an outage.
const StuckAfter = 3

// failed records a round that was not committed.
func (p *Partition) failed(err error) {
	if n := p.failures.Add(1); n == StuckAfter {
		p.report()
		p.log.Error("commits keep failing; reporting not ready until one succeeds", "failed_in_a_row", n, "err", err)
	}
}

// succeeded records a committed round.
func (p *Partition) succeeded() {
	if p.failures.Swap(0) >= StuckAfter {
		p.report()
		p.log.Info("commits succeed again; reporting ready")
	}
}

// report brings the partition's share of the partitions_stalled gauge up
// to date with Stalled.
func (p *Partition) report() {
	if s := p.Stalled(); s != p.reported {
		p.reported = s
		if s {
			p.met.Stalled.Inc()
		} else {
			p.met.Stalled.Dec()
		}
	}
}

// Feed is a round's input as items in order (requests, or records), which a
// Partition may apply in parts to find the one that makes the round
// impossible to commit.
type Feed struct {
	// N is the number of items.
	N int
	// Apply applies items [lo, hi) to m, as Round's apply does, and returns
	// the input position after item hi-1 ("" for none). It is called again
	// for parts of a range that could not be committed, each time on the
	// state committed before that part.
	Apply func(m *Machine, now int64, lo, hi int) (cursor string, err error)
	// Done is told, for every part, whether it was committed (err nil).
	Done func(lo, hi int, err error)
	// Reject is told that item i alone cannot be committed (cause), and
	// returns the input position after it ("" for none), which is then
	// committed without the item: the sender gets an error, or the record
	// a dead letter, and the partition moves on.
	Reject func(i int, cause error) (cursor string)
}

// RoundOf runs f's items as one round, like Round. If the store refuses the
// round as one that can never be committed (ErrUnencodable: a value that
// cannot be stored), retrying would fail forever and stop the partition,
// so it splits the round in halves, recursively, commits every part that
// can be committed, and rejects the one item that cannot: one poisoned
// request or record costs its sender an error, not everybody's prices.
func (p *Partition) RoundOf(ctx context.Context, f Feed) error {
	return p.part(ctx, f, 0, f.N)
}

func (p *Partition) part(ctx context.Context, f Feed, lo, hi int) error {
	err := p.Round(ctx, func(m *Machine, now int64) (string, error) { return f.Apply(m, now, lo, hi) })
	if !errors.Is(err, ErrUnencodable) || !errors.Is(err, ErrNotCommitted) {
		f.Done(lo, hi, err)
		return err
	}
	if hi-lo == 1 {
		p.met.Poisoned.Inc()
		p.log.Error("an input cannot be committed; rejecting it and going on without it", "err", err)
		cursor := f.Reject(lo, err)
		if cursor == "" {
			return nil
		}
		return p.Round(ctx, func(*Machine, int64) (string, error) { return cursor, nil })
	}
	mid := lo + (hi-lo)/2
	if err := p.part(ctx, f, lo, mid); err != nil {
		return err
	}
	return p.part(ctx, f, mid, hi)
}

// commit writes b, retrying while the store fails if Config.Retry says so.
// A commit that succeeded without the caller hearing so shows up as
// ErrFenced on the retry, which is not retried: the caller reloads.
func (p *Partition) commit(ctx context.Context, b *Batch) error {
	if b.Empty() {
		return nil
	}
	if err := b.check(); err != nil {
		p.met.CommitErrors.Inc()
		return fmt.Errorf("commit: %w", err)
	}
	applied, dups, rejected := p.m.Counts()
	try := func(ctx context.Context) error {
		start := time.Now()
		err := p.store.Commit(ctx, b)
		if err != nil {
			p.met.CommitErrors.Inc()
			if errors.Is(err, ErrFenced) || errors.Is(err, ErrUnencodable) {
				return retry.Permanent(err)
			}
			return err
		}
		p.met.CommitTime.Observe(time.Since(start).Seconds())
		return nil
	}
	var err error
	if p.cfg.Retry == nil {
		err = try(ctx)
	} else {
		err = retry.Do(ctx, *p.cfg.Retry, try, func(err error, wait time.Duration) {
			p.stalled.Store(true)
			p.report()
			p.log.Warn("commit failed; retrying", "err", err, "in", wait)
		})
		p.stalled.Store(false)
		p.report()
	}
	if err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	p.met.Commits.Inc()
	p.met.BatchEvents.Observe(float64(applied + dups + rejected))
	p.met.Applied.Add(float64(applied))
	p.met.Duplicates.Add(float64(dups))
	p.met.Rejected.Add(float64(rejected))
	p.met.PriceChanges.Add(float64(len(b.History)))
	return nil
}

// Republish publishes every product's committed price again, for a
// publisher that may have lost some (Redis after an outage); versions make
// it harmless where nothing was lost.
func (p *Partition) Republish() { p.pub.Publish(p.m.All()) }

// Tick re-evaluates time-dependent prices, override expiries and the
// 30-day lowest price, as a round of its own.
func (p *Partition) Tick(ctx context.Context) error {
	return p.Round(ctx, func(m *Machine, now int64) (string, error) {
		m.Tick(now)
		return "", nil
	})
}

// setHeld makes n this partition's share of Metrics.Held.
func (p *Partition) setHeld(n int) {
	p.met.Held.Add(float64(n - p.held))
	p.held = n
}

// setFallback makes n this partition's share of Metrics.LearningFallback.
func (p *Partition) setFallback(n int) {
	if n > p.fallen {
		p.log.Warn("learning products at their list price for want of purchases (dynaprice_learning_fallback_products); check the shop's purchase events",
			"products", n, "before", p.fallen)
	}
	p.met.LearningFallback.Add(float64(n - p.fallen))
	p.fallen = n
}

// Close stops a store prune (and a history retention) in progress and
// takes the partition's share out of the process's gauges, for a
// partition the process no longer owns or that stops; the store may be
// closed after it.
func (p *Partition) Close() {
	p.stopPruning()
	p.setHeld(0)
	p.met.LearningFallback.Add(float64(-p.fallen))
	p.fallen = 0
	if p.reported {
		p.reported = false
		p.met.Stalled.Dec()
	}
}

// SaveSnapshot hands the partition's state to a store that keeps it in
// one piece for a fast next start (Snapshotter); it does nothing for
// other stores, and when the last round failed, since memory then need
// not be what the store holds. Call it after the last round, at a clean
// stop.
func (p *Partition) SaveSnapshot(ctx context.Context) error {
	ss, ok := p.store.(Snapshotter)
	if !ok || p.failures.Load() > 0 || p.m.book == nil {
		return nil
	}
	return ss.SaveSnapshot(ctx, p.m.book.Products(), p.m.savedStates())
}

// Prune forgets applied event ids older than the dedup window (and beyond
// DedupMax), in memory at once and in the store in the background: the
// store deletes them in small steps (Store.PruneSeen) on a goroutine of
// its own, so the rounds that follow commit while it runs instead of
// waiting for millions of rows to go. One store prune runs at a time; a
// call while one is running only forgets in memory (the next prune takes
// the store's rows too). A failure is logged: the ids are pruned next
// time. ctx bounds the background prune too; Close stops it.
//
// Beside it, on a goroutine of its own, Prune applies the history
// retention (Config.Retention, Store.PruneHistory) as of the partition's
// clock, unless the last run is still going.
func (p *Partition) Prune(ctx context.Context) {
	now := p.now()
	cutoff := now - int64(p.cfg.DedupWindow)
	p.m.ForgetSeen(cutoff)
	background(ctx, &p.pruning, &p.stopPrune, func(ctx context.Context) {
		start := time.Now()
		if err := p.store.PruneSeen(ctx, cutoff, p.cfg.DedupMax); err != nil {
			if ctx.Err() == nil {
				p.log.Warn("pruning remembered event ids failed", "err", err)
			}
			return
		}
		p.met.PruneTime.Observe(time.Since(start).Seconds())
	})
	background(ctx, &p.retaining, &p.stopRetain, func(ctx context.Context) {
		start := time.Now()
		n, err := p.store.PruneHistory(ctx, now, p.cfg.Retention)
		p.met.HistoryRolled.Add(float64(n.Rolled))
		p.met.HistoryExpired.Add(float64(n.Expired))
		if err != nil {
			if ctx.Err() == nil {
				p.log.Warn("applying the history retention failed; it goes on from there next time", "err", err,
					"rolled", n.Rolled, "expired", n.Expired)
			}
			return
		}
		took := time.Since(start)
		p.met.HistoryPruneTime.Observe(took.Seconds())
		if n != (HistoryPruned{}) {
			// Every minute rolls up the minute that left the raw window:
			// said at debug level, unless it is news (a backlog, a
			// partition).
			level := slog.LevelDebug
			if took > 10*time.Second || n.Created+n.Dropped > 0 {
				level = slog.LevelInfo
			}
			p.log.Log(ctx, level, "history retention applied", "rolled_up", n.Rolled, "hourly_written", n.Summaries,
				"hourly_expired", n.Expired, "partitions_created", n.Created, "partitions_dropped", n.Dropped,
				"raw", p.cfg.Retention.Raw, "hourly", p.cfg.Retention.Hourly, "took", took.Round(time.Millisecond))
		}
	})
}

// background runs f on a goroutine of its own unless the one *done says
// is still running; *stop cancels it.
func background(ctx context.Context, done *chan struct{}, stop *context.CancelFunc, f func(context.Context)) {
	if *done != nil {
		select {
		case <-*done:
		default:
			return // the last one is still running
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	ch := make(chan struct{})
	*done, *stop = ch, cancel
	go func() {
		defer close(ch)
		defer cancel()
		f(ctx)
	}()
}

// stopPruning cancels a store prune and a history retention in progress
// and waits for them.
func (p *Partition) stopPruning() {
	for _, b := range []struct {
		done *chan struct{}
		stop *context.CancelFunc
	}{{&p.pruning, &p.stopPrune}, {&p.retaining, &p.stopRetain}} {
		if *b.done != nil {
			(*b.stop)()
			<-*b.done
			*b.done, *b.stop = nil, nil
		}
	}
}

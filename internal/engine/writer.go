// Package engine runs the pricing core as a service, the same way in both
// modes. A Machine applies events, overrides, catalog changes and ticks to
// a pricing.Book without any I/O; a Partition drives one Machine through
// load, apply, commit to its Store, publish and reload. In serve, the
// embedded Writer feeds the one Partition from the API's requests; in
// scale-out, the Kafka engine (internal/kafka) feeds one Partition per
// Kafka partition it owns from that partition's records.
package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dynaprice/dynaprice/internal/experiment"
	"github.com/dynaprice/dynaprice/internal/ingest"
	"github.com/dynaprice/dynaprice/internal/live"
	"github.com/dynaprice/dynaprice/internal/pricing"
	"github.com/dynaprice/dynaprice/internal/retry"
)

// Publisher receives every committed batch of prices, in commit order, from
// the engine goroutine. It must not block: the live view and the Kafka
// engine's outbox both satisfy that.
type Publisher interface {
	Publish(prices []live.Price)
}

// Config configures a Partition, and the Writer that feeds one.
type Config struct {
	Pricing pricing.Config
	// MaxBatch caps the events in one group commit of the Writer.
	MaxBatch int
	// TickInterval is how often time-dependent prices, override expiries and
	// the 30-day lowest price are re-evaluated.
	TickInterval time.Duration
	// DedupWindow and DedupMax bound how many applied event ids are
	// remembered: ids are kept for DedupWindow, but at most DedupMax
	// (1..MaxDedupIDs), a safety limit on memory rather than its size:
	// memory follows the ids the window holds, about 24 to 48 bytes each.
	DedupWindow time.Duration
	DedupMax    int
	// PruneInterval is how often ids older than DedupWindow are forgotten,
	// in memory and in the store; zero means once a minute. An id is thus
	// remembered for DedupWindow and at most PruneInterval longer. Tests
	// that move Now shorten it to see expiry without waiting.
	PruneInterval time.Duration
	// Retention bounds the price history the store keeps; the zero value
	// keeps all of it. It is applied beside each prune (every
	// PruneInterval), by Store.PruneHistory on a goroutine of its own.
	Retention HistoryRetention
	// Experiments bounds the price experiments clients may create (the
	// zero value: experiment.DefaultLimits).
	Experiments experiment.Limits
	// AutoCreate creates unknown products from an event's price instead of
	// rejecting the event.
	AutoCreate bool
	// BaseFromEvents is the original system's pricing, for a team moving
	// over: the price a view, cart or purchase carries is its product's
	// base price (so any ingest client sets base prices), and unknown
	// products are created from it. Off, only the catalog sets base prices.
	BaseFromEvents bool
	// QueueSize bounds requests waiting for the Writer; beyond it Submit
	// blocks until its context ends.
	QueueSize int
	// Retry, when set, makes a Partition wait for a failing store (loads
	// and commits are retried with this backoff) instead of failing the
	// round at once. A stream can wait; API requests (serve) cannot, so the
	// Writer leaves it nil and answers them 503.
	Retry   *retry.Backoff
	Now     func() time.Time
	Logger  *slog.Logger
	Metrics *Metrics
}

// DefaultDedupMax is the default of Config.DedupMax: at most about 290 MB
// of remembered ids (29 bytes each when full), allocated only as ids
// arrive. It covers the default 24 h window up to about 115 events/s with
// event ids (100/s: 8.6M ids in 24 h), and then the last 2.8 h at 1,000/s,
// the last 17 minutes at 10,000/s; beyond the cap the oldest ids go first,
// counted by the dedup_evicted_in_window_total metric.
const DefaultDedupMax = 10_000_000

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		Pricing: pricing.DefaultConfig(), MaxBatch: 50000, TickInterval: time.Second,
		DedupWindow: 24 * time.Hour, DedupMax: DefaultDedupMax, QueueSize: 1024, Retention: DefaultHistoryRetention(),
		Experiments: experiment.DefaultLimits(),
		Now:         time.Now, Logger: slog.Default(),
	}
}

// Validate reports configuration errors of what every partition uses;
// NewWriter checks the Writer's own settings (MaxBatch, QueueSize) too.
func (c Config) Validate() error {
	if err := c.Pricing.Validate(); err != nil {
		return err
	}
	if err := c.Retention.Validate(); err != nil {
		return err
	}
	switch {
	case c.TickInterval <= 0:
		return errors.New("engine: TickInterval must be > 0")
	case c.DedupWindow <= 0 || c.DedupMax < 1:
		return errors.New("engine: dedup window and size must be > 0")
	case c.DedupMax > MaxDedupIDs:
		return fmt.Errorf("engine: dedup size must be at most %d", MaxDedupIDs)
	case c.Now == nil || c.Logger == nil:
		return errors.New("engine: Now and Logger are required")
	}
	return nil
}

// PruneEvery is PruneInterval, or once a minute if that is zero.
func (c Config) PruneEvery() time.Duration {
	if c.PruneInterval <= 0 {
		return time.Minute
	}
	return c.PruneInterval
}

// Writer is the embedded writer of serve: it feeds the one Partition from
// the API's requests, serialised through one goroutine (Run), and answers
// each request once its round is committed. Group commit is what makes
// "202 means durable" affordable: requests that arrive while a commit is in
// flight queue up and are written together by the next round, so the cost
// of a transaction (and its fsync) is shared by thousands of events instead
// of paid by each. All methods but Run are safe for concurrent use.
type Writer struct {
	cfg  Config
	part *Partition

	reqs     chan *request
	stopped  chan struct{}
	quit     chan struct{} // closed first on stop, to release blocked senders
	quitOnce sync.Once
	mu       sync.RWMutex // guards closed against concurrent Submit/stop
	closed   bool
	ready    chan struct{}
	// currency is the committed catalog currency (noteCurrency).
	currency atomic.Pointer[string]
	// serving is what GET /price needs to price shoppers in experiments,
	// replaced by Run after each round that changed it.
	serving atomic.Pointer[Serving]
}

// NewWriter returns a writer that commits to store and publishes to pub.
func NewWriter(cfg Config, store Store, pub Publisher) (*Writer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	switch {
	case cfg.MaxBatch < 1:
		return nil, errors.New("engine: MaxBatch must be >= 1")
	case cfg.QueueSize < 1:
		return nil, errors.New("engine: QueueSize must be >= 1")
	}
	if cfg.Metrics == nil {
		cfg.Metrics = NewMetrics(nil, "")
	}
	cfg.Metrics.Partitions.Set(1)
	return &Writer{
		cfg: cfg, part: NewPartition(cfg, store, pub, cfg.Logger),
		reqs: make(chan *request, cfg.QueueSize), stopped: make(chan struct{}), ready: make(chan struct{}),
		quit: make(chan struct{}),
	}, nil
}

// Ready is closed once Run has loaded the persisted state.
func (e *Writer) Ready() <-chan struct{} { return e.ready }

// Stalled reports whether the writer's commits keep failing: its last
// StuckAfter rounds or more all failed (Partition.Stalled), so serve's
// /readyz says so until one succeeds. Safe for concurrent use.
func (e *Writer) Stalled() bool { return e.part.Stalled() }

// Run loads state, publishes it, and serves requests until ctx ends. It then
// processes every request already queued, commits, and returns: accepted
// work is never dropped on shutdown. If it stops for an error (the state
// cannot be loaded), later requests fail at once and queued ones are
// answered with ErrStopped: nobody waits for a writer that is gone.
func (e *Writer) Run(ctx context.Context) (err error) {
	defer close(e.stopped)
	defer e.part.stopPruning() // the caller closes the store once Run returns
	defer func() {
		if err != nil {
			e.refuse()
			e.failQueued()
		}
	}()
	if err := loadQuietly(ctx, e.part); err != nil {
		return fmt.Errorf("engine: %w", err)
	}
	e.noteCurrency()
	e.publishServing()
	close(e.ready)
	tick := time.NewTicker(e.cfg.TickInterval)
	defer tick.Stop()
	prune := time.NewTicker(e.cfg.PruneEvery())
	defer prune.Stop()
	var pending []*request
	for {
		select {
		case <-ctx.Done():
			e.refuse()
			pending = pending[:0]
			for r := range e.reqs {
				pending = append(pending, r)
			}
			if len(pending) > 0 {
				if err := e.process(context.WithoutCancel(ctx), pending); err != nil {
					return err
				}
			}
			// The background prunes change the store's tables and
			// positions too: stopped first, so the snapshot is the last
			// word.
			e.part.stopPruning()
			e.saveSnapshot(context.WithoutCancel(ctx))
			return nil
		case r := <-e.reqs:
			pending = append(pending[:0], r)
			n := r.size()
		more:
			for n < e.cfg.MaxBatch {
				select {
				case r := <-e.reqs:
					pending = append(pending, r)
					n += r.size()
				default:
					break more
				}
			}
			if err := e.process(ctx, pending); err != nil {
				return err
			}
			clear(pending) // drop references to answered requests
			pending = pending[:0]
		case <-tick.C:
			if err := e.process(ctx, []*request{{kind: reqTick}}); err != nil {
				return err
			}
		case <-prune.C:
			e.part.Prune(ctx)
		}
	}
}

// refuse makes later Submit calls fail fast and closes the queue.
func (e *Writer) refuse() {
	// Senders blocked on a full queue hold the read lock; release them
	// before taking the write lock.
	e.quitOnce.Do(func() { close(e.quit) })
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.closed {
		e.closed = true
		close(e.reqs)
	}
}

// failQueued answers every request still queued with ErrStopped; the
// queue must be closed (refuse).
func (e *Writer) failQueued() {
	for r := range e.reqs {
		r.err = ErrStopped
		close(r.done)
	}
}

// process runs pending requests as one round of the partition and answers
// them. If the round cannot be committed, every request of it gets an
// error (the partition has reloaded its state); an error is returned only
// when the writer cannot go on.
func (e *Writer) process(ctx context.Context, pending []*request) error {
	committed := 0
	// Shutdown must not abort a commit, nor the reload after a failed one:
	// the requests are already taken and are answered either way.
	err := e.part.RoundOf(context.WithoutCancel(ctx), Feed{
		N: len(pending),
		Apply: func(m *Machine, now int64, lo, hi int) (string, error) {
			for _, r := range pending[lo:hi] {
				r.apply(m, now)
			}
			return "", nil
		},
		Done: func(lo, hi int, err error) {
			for _, r := range pending[lo:hi] {
				if err == nil {
					r.state = committedReq
					committed++
				}
			}
		},
		Reject: func(i int, cause error) string {
			r := pending[i]
			r.state = rejectedReq
			r.err = errorf(KindInvalid, "this change cannot be stored, so it was not applied (%v)", cause)
			return ""
		},
	})
	if err != nil {
		e.cfg.Logger.Error("commit failed; answering the requests not committed with errors", "err", err,
			"requests", len(pending), "committed", committed)
	}
	// Before the answers: a client told its experiment was created gets
	// its prices from the next GET /price.
	e.publishServing()
	for _, r := range pending {
		if r.state == pendingReq {
			r.err = errorf(KindUnavailable, "could not persist the change; retry later")
		}
		if r.done != nil { // ticks have no waiter
			close(r.done)
		}
	}
	e.noteCurrency()
	if err == nil || errors.Is(err, ErrNotCommitted) {
		return nil
	}
	return err
}

// noteCurrency publishes the machine's currency to Currency's readers.
// After a failed round the machine was reloaded, so it holds the
// committed one either way.
func (e *Writer) noteCurrency() {
	c := e.part.Machine().Currency()
	if p := e.currency.Load(); p == nil || *p != c {
		e.currency.Store(&c)
	}
}

// Currency is the catalog's currency (ISO 4217) as last committed, for
// readers on any goroutine.
func (e *Writer) Currency() string {
	if p := e.currency.Load(); p != nil {
		return *p
	}
	return pricing.DefaultCurrency
}

// SetCurrency sets the catalog's currency; KindInvalid for a code that
// is not an ISO 4217 currency code.
func (e *Writer) SetCurrency(ctx context.Context, code string) error {
	return e.submit(ctx, &request{kind: reqCurrency, defStrategy: code})
}

// apply applies r to m, resetting what an earlier, uncommitted attempt of
// the same round left in it.
func (r *request) apply(m *Machine, now int64) {
	r.err = nil
	switch r.kind {
	case reqEvents:
		r.result = SubmitResult{}
		m.ApplyEvents(r.events, now, &r.result)
	case reqSetOverride:
		r.err = m.SetOverride(r.override, now)
	case reqClearOverride:
		r.err = m.ClearOverride(r.override, now)
	case reqRelease:
		r.err = m.Release(r.override.ProductID, now)
	case reqUpsert:
		r.created, r.err = m.Upsert(r.product, now)
	case reqImport:
		r.err = m.Import(r.products, r.defStrategy, now)
	case reqProducts:
		r.listed = m.Products()
	case reqCount:
		r.count = m.book.Len()
	case reqExplain:
		r.explanation, r.err = m.Explain(r.override.ProductID)
	case reqTick:
		m.Tick(now)
	case reqCurrency:
		r.err = m.SetCurrency(r.defStrategy)
	case reqTallies:
		m.at(now)
		r.tallies, r.at = m.OpenTallies(r.override.ProductID), m.clock
	case reqExperimentCreate:
		r.experiment, r.err = m.CreateExperiment(r.expIn, now)
	case reqExperimentStop:
		r.experiment, r.err = m.StopExperiment(r.expIn, now)
	case reqExperimentPromote:
		r.experiment, r.err = m.PromoteExperiment(r.expIn, now)
	case reqExperiments:
		r.experiments, r.err = m.Experiments(r.expIn.ID)
	}
}

// publishServing publishes the machine's experiments for GET /price when
// they changed. Only Run's goroutine calls it.
func (e *Writer) publishServing() {
	if s, ok := e.part.m.TakeServing(); ok {
		e.serving.Store(s)
	}
}

// Serving returns what GET /price needs to price a shopper in an
// experiment, as of the last round. Safe for concurrent use.
func (e *Writer) Serving() *Serving { return e.serving.Load() }

// CreateExperiment creates a price experiment (Machine.CreateExperiment).
func (e *Writer) CreateExperiment(ctx context.Context, in ExperimentInput) (ExperimentState, error) {
	r := &request{kind: reqExperimentCreate, expIn: in}
	err := e.submit(ctx, r)
	return r.experiment, err
}

// StopExperiment stops an experiment.
func (e *Writer) StopExperiment(ctx context.Context, in ExperimentInput) (ExperimentState, error) {
	r := &request{kind: reqExperimentStop, expIn: in}
	err := e.submit(ctx, r)
	return r.experiment, err
}

// PromoteExperiment stops an experiment and promotes an arm.
func (e *Writer) PromoteExperiment(ctx context.Context, in ExperimentInput) (ExperimentState, error) {
	r := &request{kind: reqExperimentPromote, expIn: in}
	err := e.submit(ctx, r)
	return r.experiment, err
}

// Experiments lists the experiments (id ""), or returns the one.
func (e *Writer) Experiments(ctx context.Context, id string) ([]ExperimentState, error) {
	r := &request{kind: reqExperiments, expIn: ExperimentInput{ID: id}}
	err := e.submit(ctx, r)
	return r.experiments, err
}

// submit queues r and waits for its result.
func (e *Writer) submit(ctx context.Context, r *request) error {
	r.done = make(chan struct{})
	e.mu.RLock()
	if e.closed {
		e.mu.RUnlock()
		return ErrStopped
	}
	select {
	case e.reqs <- r:
		e.mu.RUnlock()
	case <-e.quit:
		e.mu.RUnlock()
		return ErrStopped
	case <-ctx.Done():
		e.mu.RUnlock()
		return errorf(KindUnavailable, "engine queue is full: %v", ctx.Err())
	}
	// Once queued, the request is answered even if ctx ends, and even if
	// the writer stops (failQueued): wait for it so the caller never
	// reports failure for work that was done.
	<-r.done
	return r.err
}

// SubmitResult reports what became of submitted events.
type SubmitResult struct {
	Accepted   int
	Duplicates int
	// Rejects index into the submitted slice.
	Rejects []ingest.Reject
}

// Submit applies events and returns once they are durably committed. Events
// naming unknown products are rejected (or create the product, with
// AutoCreate); events whose id was applied before are acknowledged without
// being applied again.
func (e *Writer) Submit(ctx context.Context, events []ingest.Event) (SubmitResult, error) {
	if len(events) == 0 {
		return SubmitResult{}, nil
	}
	r := &request{kind: reqEvents, events: events}
	if err := e.submit(ctx, r); err != nil {
		return SubmitResult{}, err
	}
	return r.result, nil
}

// OverrideInput is an operator's override request.
type OverrideInput struct {
	ProductID string
	Price     float64
	Reason    string
	By        string
	// ExpiresAt is optional (zero: never).
	ExpiresAt time.Time
}

// SetOverride sets or replaces a product's override.
func (e *Writer) SetOverride(ctx context.Context, in OverrideInput) error {
	return e.submit(ctx, &request{kind: reqSetOverride, override: in})
}

// ClearOverride removes a product's override; KindNotFound if it has none.
func (e *Writer) ClearOverride(ctx context.Context, productID, by string) error {
	return e.submit(ctx, &request{kind: reqClearOverride, override: OverrideInput{ProductID: productID, By: by}})
}

// Release lets a price held by the price-velocity breaker go; KindNotFound
// if the product is unknown or not held. by names the operator's key
// (kept for the same signature as the scale-out Gateway's, which writes it
// into the control record).
func (e *Writer) Release(ctx context.Context, productID, by string) error {
	return e.submit(ctx, &request{kind: reqRelease, override: OverrideInput{ProductID: productID, By: by}})
}

// UpsertProduct adds or updates a catalog product.
func (e *Writer) UpsertProduct(ctx context.Context, p pricing.Product) (created bool, err error) {
	r := &request{kind: reqUpsert, product: p}
	err = e.submit(ctx, r)
	return r.created, err
}

// ImportCatalog upserts many products in one commit, and sets the default
// strategy when def is not empty.
func (e *Writer) ImportCatalog(ctx context.Context, ps []pricing.Product, def string) error {
	return e.submit(ctx, &request{kind: reqImport, products: ps, defStrategy: def})
}

// ProductInfo is a catalog entry with its effective strategy and state.
type ProductInfo struct {
	pricing.Product
	EffectiveStrategy string
	Price             float64
	Source            pricing.Source
	Demand            float64
}

// Products lists the catalog in insertion order.
func (e *Writer) Products(ctx context.Context) ([]ProductInfo, error) {
	r := &request{kind: reqProducts}
	err := e.submit(ctx, r)
	return r.listed, err
}

// NumProducts is the size of the catalog: what a caller asks that only
// wants to know whether there is one, instead of listing a million
// products (Products).
func (e *Writer) NumProducts(ctx context.Context) (int, error) {
	r := &request{kind: reqCount}
	err := e.submit(ctx, r)
	return r.count, err
}

// Explain explains a product's current price.
func (e *Writer) Explain(ctx context.Context, productID string) (pricing.Explanation, error) {
	r := &request{kind: reqExplain, override: OverrideInput{ProductID: productID}}
	err := e.submit(ctx, r)
	return r.explanation, err
}

// Wait blocks until Run has returned.
func (e *Writer) Wait() { <-e.stopped }

type reqKind uint8

const (
	reqEvents reqKind = iota
	reqSetOverride
	reqClearOverride
	reqRelease
	reqUpsert
	reqImport
	reqProducts
	reqCount
	reqExplain
	reqTick
	reqTallies
	reqCurrency
	reqExperimentCreate
	reqExperimentStop
	reqExperimentPromote
	reqExperiments
)

type request struct {
	kind        reqKind
	events      []ingest.Event
	override    OverrideInput
	product     pricing.Product
	products    []pricing.Product
	defStrategy string

	result      SubmitResult
	created     bool
	listed      []ProductInfo
	count       int
	explanation pricing.Explanation
	tallies     []OpenTally
	at          int64
	expIn       ExperimentInput
	experiment  ExperimentState
	experiments []ExperimentState
	err         error
	state       reqState
	done        chan struct{}
}

// reqState is what became of a request in its round.
type reqState uint8

const (
	pendingReq   reqState = iota
	committedReq          // its round (or the part of it holding it) was committed
	rejectedReq           // it alone could not be committed (RoundOf)
)

func (r *request) size() int {
	if r.kind == reqEvents {
		return len(r.events)
	}
	return 1
}

// loadGCPercent is the collector's target while the state loads (see
// loadQuietly).
const loadGCPercent = 400

// loadQuietly loads p's state with the garbage collector running less
// often. Loading grows the heap from nothing to the whole catalog (about
// 2 GiB at a million products): at the default GOGC=100 the collector ran
// once per doubling over an ever larger heap, a sixth of a million-product
// restart's CPU. Once loaded, the target is restored, and what the load
// left behind (the store's decoded copy of every state) is collected and
// handed back to the operating system in the background, after the writer
// is ready, so that the process does not keep the peak as its resident
// size.
func loadQuietly(ctx context.Context, p *Partition) error {
	old := debug.SetGCPercent(loadGCPercent)
	if old < 0 || old > loadGCPercent {
		debug.SetGCPercent(old) // GOGC=off or a higher one: the operator's choice
	}
	err := p.Load(ctx)
	debug.SetGCPercent(old)
	if err == nil {
		go debug.FreeOSMemory()
	}
	return err
}

// snapshotTimeout bounds the snapshot written at a clean stop: about a
// second per million products; past it the next start reads the tables.
const snapshotTimeout = time.Minute

// saveSnapshot writes the state for a fast next start (Partition.
// SaveSnapshot), after the last commit. A failure costs only that: the
// next start reads the tables, so it is logged and not returned.
func (e *Writer) saveSnapshot(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, snapshotTimeout)
	defer cancel()
	start := time.Now()
	if err := e.part.SaveSnapshot(ctx); err != nil {
		e.cfg.Logger.Warn("could not write the snapshot for a fast start; the next start reads the tables", "err", err)
		return
	}
	e.cfg.Logger.Debug("snapshot written for a fast start", "took", time.Since(start))
}

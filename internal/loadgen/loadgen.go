// Package loadgen makes synthetic shopper traffic: Traffic generates
// events in the original system's format, Demo paces them into an engine
// for `dynaprice serve --demo`, and Run is `dynaprice loadgen`.
//
// `dynaprice loadgen` is the tool for sizing a scale-out
// deployment: it sends shopper events to the events topic at a chosen rate
// and measures, for every event, how long until a price update reflecting
// it appears on the updates topic. The two figures that size a deployment
// come out of one run: the event rate it sustained and the end-to-end
// latency at that rate.
//
// # How an update is matched to its events
//
// Engines coalesce: one price update may reflect many events. Each update
// carries the header dynaprice-event-time, the Kafka record timestamp of
// the newest event of its product that it reflects. loadgen sets every
// event's record timestamp itself (the send time) and keeps each product's
// unmatched events in a FIFO; an update for product X with event time T
// matches every pending event of X stamped at or before T, and each such
// event's latency is the update's arrival time minus the event's send
// time. Updates whose version is older than one already seen for the
// product are stale re-sends and are ignored.
//
// Kafka stamps records to the millisecond, so an update that reflects an
// event also matches the events of its product sent in the same
// millisecond. With unkeyed events on a multi-partition topic an engine
// may see a product's events out of order, and an update can then match an
// event it does not reflect yet; keyed runs (the default) are exact apart
// from the millisecond.
package loadgen

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/dynaprice/dynaprice/internal/catalog"
	"github.com/dynaprice/dynaprice/internal/ingest"
	"github.com/dynaprice/dynaprice/internal/pricing"
)

// Defaults for the zero values of Config.
const (
	DefaultEventsTopic  = "product-events"
	DefaultUpdatesTopic = "price-updates"
	DefaultDrain        = 10 * time.Second
)

// headerEventTime is the price-update header that names the newest event an
// update reflects (unix ns, decimal). It is the engine's side of the
// contract, defined by the Kafka adapter; it is repeated here so that the
// load generator does not depend on the engine's packages.
const headerEventTime = "dynaprice-event-time"

// users is how many distinct user ids events carry. The engine does not
// price by user; ids only make events look like the original's.
const users = 1000

// Config configures a run.
type Config struct {
	// Brokers are the Kafka seed brokers (host:port).
	Brokers []string
	// ClientOpts are added to both Kafka clients (TLS, SASL).
	ClientOpts []kgo.Opt
	// EventsTopic receives the events; UpdatesTopic is where the engines
	// publish price updates. Empty means DefaultEventsTopic and
	// DefaultUpdatesTopic. Both must exist.
	EventsTopic, UpdatesTopic string
	// Rate is the events per second to send; 0 sends as fast as the
	// producer takes them, which finds the most the cluster accepts.
	Rate float64
	// Events stops the run after this many events, Duration after this
	// long; 0 means no limit, but at least one of them must be set so
	// that a run always ends by itself.
	Events   int
	Duration time.Duration
	// Products are the products to send events for, with popularity
	// falling off with position as in the demo traffic; nil means the demo
	// catalog. Their ids must be the engines' product ids.
	Products []pricing.Product
	// Spread has the events spread over Products by Distribution, each
	// decided by Spread from Seed and its number, rather than drawn as the
	// demo traffic is (popularity falling off with position, as Zipf,
	// but found by a scan of the products per event: too slow for a
	// large catalog). The demo draw stays the default so that runs
	// compare with earlier ones.
	Spread       bool
	Distribution Distribution
	// Unkeyed sends records without a key, as the original system's
	// producers did, to measure the engines' re-keying path; by default
	// records are keyed by product id.
	Unkeyed bool
	// Drain is how long to wait after the last event for the price
	// updates still owed; the wait ends early once every event is
	// matched. 0 means DefaultDrain; negative means no wait.
	Drain time.Duration
	// Seed seeds the event mix, so that two runs with the same seed send
	// the same events.
	Seed uint64
	// Progress, when set, gets a one-line progress display about every
	// second: rewritten in place with \r when it is a terminal, one line
	// per refresh otherwise (for logs).
	Progress io.Writer
	// Now is the clock that stamps events and update arrivals, so that
	// latencies can be measured against a test clock; nil means time.Now.
	// Pacing, Duration and Elapsed use the real clock, since a run has to
	// sleep in real time.
	Now func() time.Time
}

// withDefaults fills in defaults and checks the configuration.
func (c Config) withDefaults() (Config, error) {
	if len(c.Brokers) == 0 {
		return c, errors.New("loadgen: no brokers")
	}
	if c.EventsTopic == "" {
		c.EventsTopic = DefaultEventsTopic
	}
	if c.UpdatesTopic == "" {
		c.UpdatesTopic = DefaultUpdatesTopic
	}
	if err := checkRun(c.Rate, c.Events, c.Duration); err != nil {
		return c, err
	}
	if c.Drain == 0 {
		c.Drain = DefaultDrain
	}
	if c.Products == nil {
		c.Products = catalog.Demo().Products
	}
	if err := checkProducts(c.Products); err != nil {
		return c, err
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c, nil
}

// Report is the outcome of a run. Its JSON form (for saving runs to
// compare) gives durations in nanoseconds, as the field names say.
type Report struct {
	// Sent is the events handed to the producer, Acked those Kafka
	// acknowledged.
	Sent  int64 `json:"sent"`
	Acked int64 `json:"acked"`
	// Elapsed is the sending phase, from the first event to the last
	// acknowledgement; SendRate is Acked over it: the rate Kafka accepted
	// events, which says nothing about whether the engines kept up.
	Elapsed  time.Duration `json:"elapsed_ns"`
	SendRate float64       `json:"send_rate"`
	// PricedElapsed is from sending the first event to the arrival of the
	// last price update that matched an event; PricedRate is Matched over
	// it, the rate events were priced end to end. An engine that keeps up
	// prices at about the send rate (PricedElapsed is then the sending
	// phase plus the last event's latency); one that falls behind prices
	// at the rate it works through its backlog. Both are 0 when nothing
	// matched.
	PricedElapsed time.Duration `json:"priced_elapsed_ns"`
	PricedRate    float64       `json:"priced_rate"`
	// Matched is the events whose price update arrived, Unmatched the
	// others (still owed when the drain ended).
	Matched   int64 `json:"matched"`
	Unmatched int64 `json:"unmatched"`
	// Latency is from sending an event to the arrival of the first price
	// update that reflects it, over the matched events. Percentiles are
	// accurate to under 1% (see histogram); Max is exact.
	Latency Latencies `json:"latency_ns"`
	// Updates is the price updates received for the run's products, Stale
	// those of them ignored for having an older version than one seen
	// before.
	Updates int64 `json:"updates"`
	Stale   int64 `json:"stale"`
}

// Latencies are latency percentiles.
type Latencies struct {
	P50  time.Duration `json:"p50"`
	P90  time.Duration `json:"p90"`
	P99  time.Duration `json:"p99"`
	P999 time.Duration `json:"p999"`
	Max  time.Duration `json:"max"`
}

// Run sends events as cfg says, waits for the price updates they cause and
// reports. When the run fails or ctx ends early it returns the report of
// what happened so far along with the error.
func Run(ctx context.Context, cfg Config) (Report, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return Report{}, err
	}
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	r := &run{cfg: cfg, cancel: cancel, m: newMatcher(len(cfg.Products)), index: map[string]int{}}
	r.promise = r.onProduced
	for i, p := range cfg.Products {
		r.index[p.ID] = i
		r.keys = append(r.keys, []byte(p.ID))
	}
	if err := r.connect(runCtx); err != nil {
		return Report{}, err
	}

	r.base = cfg.Now()
	consCtx, stopCons := context.WithCancel(runCtx)
	var wg sync.WaitGroup
	wg.Go(func() { r.consume(consCtx) })
	stopProgress := func() {}
	if cfg.Progress != nil {
		stopProgress = startProgress(cfg.Progress, r.progressLine())
	}

	elapsed := r.send(runCtx)
	r.m.finishSending()
	if runCtx.Err() == nil && cfg.Drain > 0 {
		t := time.NewTimer(cfg.Drain)
		select {
		case <-r.m.done:
		case <-t.C:
		case <-runCtx.Done():
		}
		t.Stop()
	}
	stopCons()
	wg.Wait()
	r.cons.Close()
	// Closing the producer fails whatever a cancelled run left buffered,
	// so that Acked is final when it is read.
	r.prod.Close()
	stopProgress()

	rep := newReport(r.m.snapshot(), r.sent.Load(), r.acked.Load(), elapsed)
	if err := ctx.Err(); err != nil {
		return rep, fmt.Errorf("loadgen: run stopped: %w", err)
	}
	return rep, r.failure()
}

// newReport makes the report of a run from the matcher's final snapshot,
// the events sent and acknowledged, and the sending phase's length.
func newReport(s snapshot, sent, acked int64, elapsed time.Duration) Report {
	rep := Report{
		Sent: sent, Acked: acked, Elapsed: elapsed,
		Matched: s.matched, Unmatched: s.outstanding, Updates: s.updates, Stale: s.stale,
		Latency: Latencies{P50: s.p50, P90: s.p90, P99: s.p99, P999: s.p999, Max: s.max},
	}
	if elapsed > 0 {
		rep.SendRate = float64(acked) / elapsed.Seconds()
	}
	if s.priced > 0 { // 0 while nothing is matched
		rep.PricedElapsed = s.priced
		rep.PricedRate = float64(s.matched) / s.priced.Seconds()
	}
	return rep
}

// run is the state of one Run.
type run struct {
	cfg   Config
	index map[string]int // product id -> position in cfg.Products
	keys  [][]byte       // record keys, by product position
	m     *matcher
	// base is cfg.Now() at the start; event send times and update
	// arrivals are durations since it.
	base time.Time

	prod, cons *kgo.Client
	promise    func(*kgo.Record, error) // r.onProduced, bound once

	sent, acked atomic.Int64

	cancel context.CancelFunc
	errMu  sync.Mutex
	err    error
}

// fail ends the run with err, unless it has failed already.
func (r *run) fail(err error) {
	r.errMu.Lock()
	if r.err == nil {
		r.err = err
	}
	r.errMu.Unlock()
	r.cancel()
}

func (r *run) failure() error {
	r.errMu.Lock()
	defer r.errMu.Unlock()
	return r.err
}

// connect makes the producer and the updates consumer. The consumer starts
// at the updates topic's end offsets, listed before any event is sent:
// updates already in the topic belong to earlier traffic, and an update
// caused by this run cannot be missed by a consumer that only finds its
// start positions later.
func (r *run) connect(ctx context.Context) error {
	cfg := r.cfg
	prod, err := kgo.NewClient(append([]kgo.Opt{
		kgo.SeedBrokers(cfg.Brokers...),
		kgo.ClientID("dynaprice-loadgen"),
		kgo.DefaultProduceTopic(cfg.EventsTopic),
		// Idempotent (franz-go's default) with acks from all in-sync
		// replicas: the durability a real producer would ask for, so
		// the measured cost is the real one.
		kgo.RequiredAcks(kgo.AllISRAcks()),
		// A short linger lets records of a burst share a batch without
		// adding much to the latency being measured.
		kgo.ProducerLinger(5 * time.Millisecond),
		// A dead cluster fails the run instead of hanging it.
		kgo.RecordDeliveryTimeout(time.Minute),
	}, cfg.ClientOpts...)...)
	if err != nil {
		return fmt.Errorf("loadgen: producer: %w", err)
	}
	offsets, err := kadm.NewClient(prod).ListEndOffsets(ctx, cfg.UpdatesTopic, cfg.EventsTopic)
	if err == nil {
		err = offsets.Error()
	}
	if err != nil {
		prod.Close()
		return fmt.Errorf("loadgen: listing offsets of %s and %s: %w", cfg.EventsTopic, cfg.UpdatesTopic, err)
	}
	for _, t := range []string{cfg.EventsTopic, cfg.UpdatesTopic} {
		if len(offsets[t]) == 0 {
			prod.Close()
			return fmt.Errorf("loadgen: topic %s has no partitions", t)
		}
	}
	start := map[int32]kgo.Offset{}
	for p, o := range offsets[cfg.UpdatesTopic] {
		start[p] = kgo.NewOffset().At(o.Offset)
	}
	cons, err := kgo.NewClient(append([]kgo.Opt{
		kgo.SeedBrokers(cfg.Brokers...),
		kgo.ClientID("dynaprice-loadgen"),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{cfg.UpdatesTopic: start}),
		// Only if the listed offset is gone by the time of the first
		// fetch (retention), start at the end rather than replay history.
		kgo.ConsumeResetOffset(kgo.NewOffset().AtEnd()),
		// Shoppers' clients see committed updates only; so does the
		// measurement.
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
	}, cfg.ClientOpts...)...)
	if err != nil {
		prod.Close()
		return fmt.Errorf("loadgen: consumer: %w", err)
	}
	r.prod, r.cons = prod, cons
	return nil
}

// onProduced is the produce promise.
func (r *run) onProduced(_ *kgo.Record, err error) {
	if err == nil {
		r.acked.Add(1)
		return
	}
	r.fail(fmt.Errorf("loadgen: producing to %s: %w", r.cfg.EventsTopic, err))
}

// Pacing. Events go out in bursts at least minTick apart, each burst
// bringing the count up to what the schedule (event k at k/Rate after the
// start) owes by then. The schedule is absolute, so late wake-ups are
// caught up rather than accumulated as drift, and high rates cost one
// timer per tick rather than one per event.
const (
	minTick = 5 * time.Millisecond
	// maxBurst bounds a burst's allocation; a run that fell behind
	// catches up in several bursts without sleeping.
	maxBurst = 1024
	// fastBurst is the burst size when Rate is 0. Small enough that
	// events of a burst are stamped close to when the producer takes
	// them (Produce blocks once the producer's buffer is full).
	fastBurst = 256
	// eventSizeHint is a typical encoded event's size, to size a burst's
	// buffer.
	eventSizeHint = 112
)

// send runs the sending phase and returns its length: from the first event
// to the acknowledgement of the last.
func (r *run) send(ctx context.Context) time.Duration {
	cfg := r.cfg
	rnd := rand.New(rand.NewPCG(cfg.Seed, 0x6c6f616467656e)) // "loadgen"
	// The generator's Rate only paces its own Run, which is not used
	// here (its 100 ms ticks are too coarse for measuring latency); any
	// positive value is valid.
	gen, err := NewTraffic(TrafficConfig{Rate: 1, Products: cfg.Products,
		ViewShare: viewShare, CartShare: cartShare, Rand: rnd, Now: cfg.Now})
	if err != nil { // cannot happen: the products were validated
		r.fail(fmt.Errorf("loadgen: %w", err))
		return 0
	}
	b := burster{run: r, gen: gen, rnd: rnd}
	if cfg.Spread {
		if b.spread, err = NewSpread(len(cfg.Products), cfg.Distribution, cfg.Seed); err != nil {
			r.fail(err)
			return 0
		}
	}

	begin := time.Now()
	var deadline time.Time
	if cfg.Duration > 0 {
		deadline = begin.Add(cfg.Duration)
	}
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	var sent int64
	for ctx.Err() == nil {
		if cfg.Events > 0 && sent >= int64(cfg.Events) {
			break
		}
		now := time.Now()
		ended := !deadline.IsZero() && !now.Before(deadline)
		if ended && cfg.Rate == 0 {
			break
		}
		n := int64(fastBurst)
		if cfg.Rate > 0 {
			// Event k is due k/Rate after the start, so event 0 at once.
			owed := int64(cfg.Rate*now.Sub(begin).Seconds()) + 1
			if ended {
				// Exactly those due before the deadline, which the
				// last tick may not have reached; the tolerance keeps
				// float error (5000*2.5 = 12500.000000001) from
				// owing one more.
				owed = int64(math.Ceil(cfg.Rate*cfg.Duration.Seconds() - 1e-6))
				if owed <= sent {
					break
				}
			}
			n = min(owed-sent, maxBurst)
		}
		if cfg.Events > 0 {
			n = min(n, int64(cfg.Events)-sent)
		}
		if n > 0 {
			b.burst(ctx, int(n))
			sent += n
		}
		if cfg.Rate == 0 || ended {
			continue
		}
		next := begin.Add(time.Duration(float64(sent) / cfg.Rate * float64(time.Second)))
		if !next.After(time.Now()) {
			continue // behind schedule: catch up now
		}
		wake := next
		if earliest := now.Add(minTick); wake.Before(earliest) {
			wake = earliest
		}
		if !deadline.IsZero() && wake.After(deadline) {
			wake = deadline
		}
		timer.Reset(time.Until(wake))
		select {
		case <-ctx.Done():
		case <-timer.C:
		}
	}
	if err := r.prod.Flush(ctx); err != nil && ctx.Err() == nil {
		r.fail(fmt.Errorf("loadgen: flushing: %w", err))
	}
	return time.Since(begin)
}

// burster makes and sends bursts of events; its buffers are reused from
// burst to burst.
type burster struct {
	*run
	gen      *Traffic
	rnd      *rand.Rand
	spread   *Spread // nil: events come from gen
	next     uint64  // the number of the next event, for spread
	evs      []ingest.Event
	users    []int // with spread, the user of each of evs
	products []int
	pend     []pending
}

// burst sends n events. Records and their values are allocated per burst,
// in two slabs, because the producer owns them until their promise.
// Events are registered with the matcher before they are produced, so
// that no update can arrive for an event it does not know yet.
func (b *burster) burst(ctx context.Context, n int) {
	b.events(n)
	recs := make([]kgo.Record, n)
	slab := make([]byte, 0, n*eventSizeHint)
	b.products, b.pend = b.products[:0], b.pend[:0]
	for i := range b.evs {
		ev := &b.evs[i]
		p, user := b.index[ev.ProductID], 0
		if b.spread != nil {
			user = b.users[i]
		} else {
			user = 1 + b.rnd.IntN(users)
		}
		now := b.cfg.Now()
		ms := now.UnixMilli()
		off := len(slab)
		slab = appendEvent(slab, ev, user, ms)
		rec := &recs[i]
		rec.Value = slab[off:len(slab):len(slab)]
		rec.Timestamp = time.UnixMilli(ms)
		if !b.cfg.Unkeyed {
			rec.Key = b.keys[p]
		}
		b.products = append(b.products, p)
		b.pend = append(b.pend, pending{tsNanos: ms * 1e6, sent: now.Sub(b.base)})
	}
	b.m.add(b.products, b.pend)
	for i := range recs {
		b.prod.Produce(ctx, &recs[i], b.promise)
	}
	b.sent.Add(int64(n))
}

// events makes the burst's n events into b.evs (and their users into
// b.users, with spread).
func (b *burster) events(n int) {
	if b.spread == nil {
		b.evs = b.gen.Next(b.evs[:0], n)
		return
	}
	b.evs, b.users = b.evs[:0], b.users[:0]
	now := b.cfg.Now().UnixNano()
	for range n {
		ev := b.spread.Event(b.next)
		b.next++
		p := &b.cfg.Products[ev.Product]
		b.evs = append(b.evs, ingest.Event{Type: ev.Type, ProductID: p.ID, Timestamp: now, Price: p.BasePrice, Quantity: 1})
		b.users = append(b.users, ev.User)
	}
}

// updateValue is the part of a price update's value that matching reads.
type updateValue struct {
	Type      string `json:"type"`
	ProductID string `json:"product_id"`
	Version   uint64 `json:"version"`
}

// consume reads price updates until ctx ends and hands them to the
// matcher, one batch per poll: records of a poll arrived together, so they
// share an arrival time.
func (r *run) consume(ctx context.Context) {
	var batch []update
	for {
		fs := r.cons.PollFetches(ctx)
		if ctx.Err() != nil || fs.IsClientClosed() {
			return
		}
		arrival := r.cfg.Now().Sub(r.base)
		for _, fe := range fs.Errors() {
			if !errors.Is(fe.Err, context.Canceled) {
				r.fail(fmt.Errorf("loadgen: consuming %s partition %d: %w", fe.Topic, fe.Partition, fe.Err))
				return
			}
		}
		batch = batch[:0]
		fs.EachRecord(func(rec *kgo.Record) {
			if u, ok := r.parseUpdate(rec); ok {
				batch = append(batch, u)
			}
		})
		if len(batch) > 0 {
			r.m.apply(batch, arrival)
		}
	}
}

// parseUpdate reads a price update of one of the run's products. Records
// that are not (other products, other message types, malformed values)
// are skipped: the topic is shared with whatever else the engines publish.
func (r *run) parseUpdate(rec *kgo.Record) (update, bool) {
	var v updateValue
	if err := json.Unmarshal(rec.Value, &v); err != nil {
		return update{}, false
	}
	if v.Type != "" && v.Type != "price_update" {
		return update{}, false
	}
	id := v.ProductID
	if len(rec.Key) > 0 {
		id = string(rec.Key)
	}
	p, ok := r.index[id]
	if !ok {
		return update{}, false
	}
	u := update{product: p, version: v.Version, eventTime: -1}
	for _, h := range rec.Headers {
		if h.Key == headerEventTime {
			if t, err := strconv.ParseInt(string(h.Value), 10, 64); err == nil {
				u.eventTime = t
			}
		}
	}
	return u, true
}

// checkRun checks what both modes share: the rate and when the run ends.
func checkRun(rate float64, events int, duration time.Duration) error {
	switch {
	case rate < 0 || math.IsNaN(rate) || math.IsInf(rate, 0):
		return fmt.Errorf("loadgen: rate %v must be a finite number >= 0", rate)
	case events < 0 || duration < 0:
		return errors.New("loadgen: events and duration must be >= 0")
	case events == 0 && duration == 0:
		return errors.New("loadgen: set a number of events or a duration, or the run would never end")
	}
	return nil
}

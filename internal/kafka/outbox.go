package kafka

import (
	"context"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dynaprice/dynaprice/internal/live"
	"github.com/dynaprice/dynaprice/internal/retry"
	"github.com/twmb/franz-go/pkg/kgo"
)

// outbox carries committed changes to Redis and to the price-updates
// topic, after the store commit and off the processing path. The two are
// independent sinks, so Redis being down does not stop price updates (API
// replicas keep their WebSocket clients and their own copy of the prices
// current) and Kafka being slow does not hold Redis back.
//
// While a sink cannot deliver it keeps only the newest change per product,
// so memory stays bounded by the catalog and catching up costs one write
// per product. Delivery is at least once: a crash loses only what the
// restart republishes from the store anyway.
type outbox struct {
	live, updates *sink
	// recovered is set when Redis writes work again after failing: the
	// engine then republishes every partition's prices, so the live view
	// converges whatever an outage cut short.
	recovered atomic.Bool
	cl        *kgo.Client // set by run; only the sinks' goroutines use it
}

// pending is a product's newest undelivered change.
type pending struct {
	c         live.Price
	eventTime int64
}

// newOutbox returns an outbox that takes changes at once; it delivers them
// once run is given the Kafka client. The engine creates it before its
// client, whose group callbacks publish as soon as partitions load.
func newOutbox(lw LiveWriter, topic string, log *slog.Logger, met *metrics) *outbox {
	o := &outbox{}
	o.live = newSink(func(ctx context.Context, batch []pending) bool {
		return writeLive(ctx, lw, batch, &o.live.failing, &o.recovered, log, met)
	})
	o.updates = newSink(func(ctx context.Context, batch []pending) bool {
		produceUpdates(ctx, o.cl, topic, batch, log, met)
		return true
	})
	return o
}

// publish queues changes for both sinks; times holds the newest input
// record time per product (may be nil). It never blocks on I/O.
func (o *outbox) publish(cs []live.Price, times map[string]int64) {
	o.live.add(cs, times)
	o.updates.add(cs, times)
}

// failing reports whether Redis writes are failing.
func (o *outbox) failing() bool { return o.live.failing.Load() }

func (o *outbox) run(ctx context.Context, cl *kgo.Client) {
	o.cl = cl
	var wg sync.WaitGroup
	for _, s := range []*sink{o.live, o.updates} {
		wg.Add(1)
		go func() { defer wg.Done(); s.run(ctx) }()
	}
	wg.Wait()
}

// drain waits until everything queued is delivered, or ctx ends.
func (o *outbox) drain(ctx context.Context) {
	o.live.drain(ctx)
	o.updates.drain(ctx)
}

// sink coalesces changes per product and delivers them in batches from
// one goroutine.
type sink struct {
	deliver func(ctx context.Context, batch []pending) bool // false: ctx ended

	mu      sync.Mutex
	pending map[string]pending
	busy    bool // a batch is being delivered
	wake    chan struct{}
	failing atomic.Bool
}

func newSink(deliver func(context.Context, []pending) bool) *sink {
	return &sink{deliver: deliver, pending: make(map[string]pending), wake: make(chan struct{}, 1)}
}

func (s *sink) add(cs []live.Price, times map[string]int64) {
	if len(cs) == 0 {
		return
	}
	s.mu.Lock()
	for _, c := range cs {
		old, ok := s.pending[c.ProductID]
		if ok && old.c.Version > c.Version {
			continue
		}
		t := times[c.ProductID]
		if ok && old.eventTime > t {
			t = old.eventTime
		}
		// A queued price change must not be lost to a later change that
		// moved only demand: keep the flag.
		if ok && old.c.PriceChanged {
			c.PriceChanged = true
		}
		s.pending[c.ProductID] = pending{c: c, eventTime: t}
	}
	s.mu.Unlock()
	s.signal()
}

func (s *sink) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *sink) run(ctx context.Context) {
	var batch []pending
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.wake:
		}
		s.mu.Lock()
		batch = batch[:0]
		for _, p := range s.pending {
			batch = append(batch, p)
		}
		clear(s.pending)
		s.busy = len(batch) > 0
		s.mu.Unlock()
		if len(batch) == 0 {
			continue
		}
		ok := s.deliver(ctx, batch)
		if !ok {
			// ctx ended: requeue, so that nothing looks delivered.
			for _, p := range batch {
				s.add([]live.Price{p.c}, map[string]int64{p.c.ProductID: p.eventTime})
			}
		}
		s.mu.Lock()
		s.busy = false
		s.mu.Unlock()
		if !ok {
			return
		}
	}
}

func (s *sink) drain(ctx context.Context) {
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		s.mu.Lock()
		empty := len(s.pending) == 0 && !s.busy
		s.mu.Unlock()
		if empty {
			return
		}
		s.signal()
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// writeLive writes batch to Redis, retrying with backoff until it succeeds
// or ctx ends. Changes published meanwhile wait in the sink.
func writeLive(ctx context.Context, lw LiveWriter, batch []pending, failing, recovered *atomic.Bool, log *slog.Logger, met *metrics) bool {
	cs := make([]live.Price, len(batch))
	for i, p := range batch {
		cs[i] = p.c
	}
	err := retry.Do(ctx, retry.Backoff{First: 50 * time.Millisecond, Max: 5 * time.Second}, func(ctx context.Context) error {
		wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		_, err := lw.Write(wctx, cs)
		return err
	}, func(err error, _ time.Duration) {
		met.liveErrors.Inc()
		if !failing.Swap(true) {
			log.Warn("writing live prices failed; retrying", "err", err)
		}
	})
	if err != nil {
		return false // ctx ended
	}
	if failing.Swap(false) {
		log.Info("writing live prices works again; republishing every price")
		recovered.Store(true)
	}
	return true
}

// produceUpdates publishes one price-updates record per price change,
// keyed by product id; franz-go retries until Kafka takes them.
func produceUpdates(ctx context.Context, cl *kgo.Client, topic string, batch []pending, log *slog.Logger, met *metrics) {
	var buf []byte
	for _, p := range batch {
		if !p.c.PriceChanged {
			continue
		}
		start := len(buf)
		buf = p.c.AppendMessage(buf)
		r := &kgo.Record{Topic: topic, Key: []byte(p.c.ProductID), Value: buf[start:len(buf):len(buf)]}
		if p.eventTime > 0 {
			r.Headers = []kgo.RecordHeader{{Key: HeaderEventTime, Value: strconv.AppendInt(nil, p.eventTime, 10)}}
		}
		cl.Produce(ctx, r, func(_ *kgo.Record, err error) {
			if err != nil {
				met.updateErrors.Inc()
				log.Warn("publishing a price update failed", "err", err)
			} else {
				met.updates.Inc()
			}
		})
	}
}

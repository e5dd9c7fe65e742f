package kafka

import (
	"context"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dynaprice/dynaprice/internal/engine"
	"github.com/dynaprice/dynaprice/internal/fanout"
	"github.com/dynaprice/dynaprice/internal/live"
	"github.com/twmb/franz-go/pkg/kgo"
)

// outbox carries committed changes to Redis and the price-updates topic,
// after the store commit and off the processing path. While Redis or Kafka
// is down it keeps only the newest change per product, so memory stays
// bounded by the catalog and catching up costs one write per product.
// Delivery is at least once: a crash loses only what the restart
// republishes from the store anyway.
type outbox struct {
	live  LiveWriter
	cl    *kgo.Client
	topic string
	log   *slog.Logger
	met   *metrics

	mu      sync.Mutex
	pending map[string]pending
	busy    bool // a batch is being written
	idle    *sync.Cond
	wake    chan struct{}

	failing atomic.Bool
}

type pending struct {
	c         engine.Change
	eventTime int64
}

func newOutbox(lw LiveWriter, cl *kgo.Client, topic string, log *slog.Logger, met *metrics) *outbox {
	o := &outbox{live: lw, cl: cl, topic: topic, log: log, met: met,
		pending: make(map[string]pending), wake: make(chan struct{}, 1)}
	o.idle = sync.NewCond(&o.mu)
	return o
}

// publish queues changes; times holds the newest input record time per
// product (may be nil). It never blocks on I/O.
func (o *outbox) publish(cs []engine.Change, times map[string]int64) {
	if len(cs) == 0 {
		return
	}
	o.mu.Lock()
	for _, c := range cs {
		old, ok := o.pending[c.ProductID]
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
		o.pending[c.ProductID] = pending{c: c, eventTime: t}
	}
	o.mu.Unlock()
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

func (o *outbox) run(ctx context.Context) {
	var batch []pending
	var cs []engine.Change
	var buf []byte
	for {
		select {
		case <-ctx.Done():
			return
		case <-o.wake:
		}
		o.mu.Lock()
		batch = batch[:0]
		for _, p := range o.pending {
			batch = append(batch, p)
		}
		clear(o.pending)
		o.busy = len(batch) > 0
		o.mu.Unlock()
		if len(batch) == 0 {
			continue
		}
		cs = cs[:0]
		for _, p := range batch {
			cs = append(cs, p.c)
		}
		if !o.writeLive(ctx, cs) {
			// ctx ended: requeue so drain's caller sees them unsent.
			o.publish(cs, nil)
			o.done()
			return
		}
		for _, p := range batch {
			if !p.c.PriceChanged {
				continue
			}
			u := fanout.Update{ProductID: p.c.ProductID, Price: p.c.Price, Source: p.c.Source.String(),
				Demand: live.Round(p.c.Demand, 4), Version: p.c.Version, At: time.Unix(0, p.c.At), Lowest30: p.c.Lowest30}
			buf = fanout.AppendMessage(buf[:0], &u)
			r := &kgo.Record{Topic: o.topic, Key: []byte(u.ProductID), Value: append([]byte(nil), buf...)}
			if p.eventTime > 0 {
				r.Headers = []kgo.RecordHeader{{Key: HeaderEventTime, Value: strconv.AppendInt(nil, p.eventTime, 10)}}
			}
			// At least once: franz-go retries until Kafka is back.
			o.cl.Produce(ctx, r, func(_ *kgo.Record, err error) {
				if err != nil {
					o.met.updateErrors.Inc()
					o.log.Warn("publishing a price update failed", "err", err)
				} else {
					o.met.updates.Inc()
				}
			})
		}
		o.done()
	}
}

func (o *outbox) done() {
	o.mu.Lock()
	o.busy = false
	o.idle.Broadcast()
	o.mu.Unlock()
}

// writeLive writes cs to Redis, retrying with backoff until it succeeds or
// ctx ends. Changes published meanwhile wait in pending.
func (o *outbox) writeLive(ctx context.Context, cs []engine.Change) bool {
	for wait := 50 * time.Millisecond; ; wait = min(2*wait, 5*time.Second) {
		wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := o.live.Write(wctx, cs)
		cancel()
		if err == nil {
			o.failing.Store(false)
			return true
		}
		o.met.liveErrors.Inc()
		if !o.failing.Swap(true) {
			o.log.Warn("writing live prices failed; retrying", "err", err)
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(wait):
		}
	}
}

// drain waits up to timeout for everything queued to be written.
func (o *outbox) drain(timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		o.mu.Lock()
		empty := len(o.pending) == 0 && !o.busy
		o.mu.Unlock()
		if empty {
			return
		}
		select {
		case o.wake <- struct{}{}:
		default:
		}
		time.Sleep(5 * time.Millisecond)
	}
}

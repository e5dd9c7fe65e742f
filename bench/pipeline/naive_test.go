package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/dynaprice/dynaprice/internal/kafka"
	"github.com/dynaprice/dynaprice/internal/live"
	"github.com/dynaprice/dynaprice/internal/pricing"
)

// naiveTable is the naive pipeline's history table, in the rig's schema:
// a serial key and the row, as the original system's table had.
const naiveTable = "naive_price_history"

// naive is the original system's pattern, one event at a time in one
// consumer loop: decode the JSON, INCRBYFLOAT product:demand:<id> in
// Redis, compute base + sqrt(demand)*5, SET product:price:<id>, one INSERT
// into the history table in its own (autocommit) transaction, and one
// synchronous produce of the price update. Offsets are auto-committed by
// the consumer group, as the original's client did.
//
// Price updates are in the format dynaprice publishes (live.Price) with
// the Kafka offset + 1 as version (the original had none; a product's
// events are all on one partition, so it increases per product) and the
// dynaprice-event-time header, so that the same observer and loadgen can
// measure both pipelines.
type naive struct {
	r      *rig
	cl     *kgo.Client
	conn   *pgx.Conn
	cancel context.CancelFunc
	done   chan struct{}
	failed *errOnce
	// assigned is closed when the group gave the consumer its partitions.
	assigned chan struct{}
}

// naiveEvent is the original's event as its consumer decoded it.
type naiveEvent struct {
	EventType string  `json:"event_type"`
	ProductID string  `json:"product_id"`
	UserID    string  `json:"user_id"`
	Timestamp int64   `json:"timestamp"`
	Price     float64 `json:"price"`
}

// createNaiveTable creates the naive pipeline's history table (setup, not
// timed).
func (r *rig) createNaiveTable() {
	r.tb.Helper()
	ctx := context.Background()
	c, err := pgx.Connect(ctx, r.pgURL)
	if err != nil {
		r.tb.Fatal(err)
	}
	defer c.Close(ctx)
	if _, err := c.Exec(ctx, `CREATE TABLE `+pgx.Identifier{r.schema, naiveTable}.Sanitize()+` (
		id         bigserial PRIMARY KEY,
		product_id text             NOT NULL,
		price      double precision NOT NULL,
		demand     double precision NOT NULL,
		event_type text             NOT NULL,
		created_at timestamptz      NOT NULL DEFAULT now()
	)`); err != nil {
		r.tb.Fatal(err)
	}
}

// startNaive starts the naive pipeline's consumer loop.
func (r *rig) startNaive() *naive {
	r.tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	n := &naive{r: r, cancel: cancel, done: make(chan struct{}), failed: newErrOnce(), assigned: make(chan struct{})}
	var err error
	n.conn, err = pgx.Connect(ctx, r.appURL)
	if err != nil {
		r.tb.Fatal(err)
	}
	assigned := false
	n.cl, err = kgo.NewClient(kgo.SeedBrokers(r.brokers...),
		kgo.ConsumerGroup("naive"), kgo.ConsumeTopics(topics.Events),
		kgo.OnPartitionsAssigned(func(context.Context, *kgo.Client, map[string][]int32) {
			if !assigned {
				assigned = true
				close(n.assigned)
			}
		}),
		// A synchronous send per event, as the original's producer.send().get()
		// with its client's default of no linger.
		kgo.ProducerLinger(0), kgo.DefaultProduceTopic(topics.Updates))
	if err != nil {
		r.tb.Fatal(err)
	}
	go func() {
		defer close(n.done)
		if err := n.run(ctx); err != nil && ctx.Err() == nil {
			n.failed.set(err)
		}
	}()
	r.tb.Cleanup(n.stop)
	return n
}

func (n *naive) stop() {
	if n.cancel == nil {
		return
	}
	n.cancel()
	n.cancel = nil
	<-n.done
	n.cl.Close()
	n.conn.Close(context.Background())
}

func (n *naive) run(ctx context.Context) error {
	rc := n.r.rc
	insert := "INSERT INTO " + pgx.Identifier{n.r.schema, naiveTable}.Sanitize() +
		" (product_id, price, demand, event_type) VALUES ($1, $2, $3, $4)"
	demandKey, priceKey := n.r.prefix+"product:demand:", n.r.prefix+"product:price:"
	var buf []byte
	for {
		fs := n.cl.PollFetches(ctx)
		if ctx.Err() != nil || fs.IsClientClosed() {
			return nil
		}
		if errs := fs.Errors(); len(errs) > 0 {
			return fmt.Errorf("fetching %s/%d: %w", errs[0].Topic, errs[0].Partition, errs[0].Err)
		}
		for it := fs.RecordIter(); !it.Done(); {
			rec := it.Next()
			var ev naiveEvent
			if err := json.Unmarshal(rec.Value, &ev); err != nil {
				continue
			}
			t, ok := pricing.ParseEventType(ev.EventType)
			base, known := n.r.base[ev.ProductID]
			if !ok || !known {
				continue
			}
			demand, err := rc.Do(ctx, rc.B().Incrbyfloat().Key(demandKey+ev.ProductID).Increment(weight(t)).Build()).AsFloat64()
			if err != nil {
				return fmt.Errorf("INCRBYFLOAT: %w", err)
			}
			price := seedPrice(base, demand)
			if err := rc.Do(ctx, rc.B().Set().Key(priceKey+ev.ProductID).Value(strconv.FormatFloat(price, 'f', -1, 64)).Build()).Error(); err != nil {
				return fmt.Errorf("SET: %w", err)
			}
			if _, err := n.conn.Exec(ctx, insert, ev.ProductID, price, demand, ev.EventType); err != nil {
				return fmt.Errorf("INSERT: %w", err)
			}
			now := time.Now()
			u := live.Price{ProductID: ev.ProductID, Price: price, Source: pricing.SourceDynamic, Demand: demand,
				Version: uint64(rec.Offset) + 1, At: now.UnixNano(), Lowest30: price, PriceChanged: true}
			buf = u.AppendMessage(buf[:0])
			out := &kgo.Record{Key: []byte(ev.ProductID), Value: append([]byte(nil), buf...),
				Headers: []kgo.RecordHeader{{Key: kafka.HeaderEventTime, Value: strconv.AppendInt(nil, rec.Timestamp.UnixNano(), 10)}}}
			if err := n.cl.ProduceSync(ctx, out).FirstErr(); err != nil {
				return fmt.Errorf("producing the price update: %w", err)
			}
		}
	}
}

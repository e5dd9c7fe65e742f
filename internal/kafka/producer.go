package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dynaprice/dynaprice/internal/catalog"
	"github.com/dynaprice/dynaprice/internal/ingest"
	"github.com/dynaprice/dynaprice/internal/live"
	"github.com/dynaprice/dynaprice/internal/retry"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// ClientConfig configures the API replicas' Kafka clients.
type ClientConfig struct {
	Brokers []string
	Topics  Topics
	Logger  *slog.Logger
	// DeliveryTimeout bounds how long Producer waits for Kafka to take a
	// record (default 10s): a client gets 503 instead of a hanging request
	// while Kafka is down.
	DeliveryTimeout time.Duration
	// Signer signs control records; a Producer without one cannot Send.
	Signer *Signer
	// ClientOpts are appended to the franz-go options.
	ClientOpts []kgo.Opt
}

// Producer writes events and control records for API replicas. Events are
// keyed by product id, so each lands on its product's partition and needs
// no forwarding.
type Producer struct {
	cfg ClientConfig
	cl  *kgo.Client
	adm *kadm.Client
}

// partitionKey carries an explicit partition in a record's Context, for
// control records that go to every partition.
type partitionKey struct{}

// NewProducer returns a producer; it connects lazily, so an API replica
// starts (and reports not ready) while Kafka is down.
func NewProducer(cfg ClientConfig) (*Producer, error) {
	if len(cfg.Brokers) == 0 || cfg.Topics.Events == "" {
		return nil, errors.New("kafka: brokers and the events topic are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	part := kgo.BasicConsistentPartitioner(func(string) func(*kgo.Record, int) int {
		return func(r *kgo.Record, n int) int {
			if r.Context != nil {
				if p, ok := r.Context.Value(partitionKey{}).(int32); ok {
					return int(p)
				}
			}
			return int(PartitionOf(string(r.Key), int32(n)))
		}
	})
	if cfg.DeliveryTimeout <= 0 {
		cfg.DeliveryTimeout = 10 * time.Second
	}
	opts := []kgo.Opt{kgo.SeedBrokers(cfg.Brokers...), kgo.RecordPartitioner(part), kgo.RecordDeliveryTimeout(cfg.DeliveryTimeout),
		kgo.DefaultProduceTopic(cfg.Topics.Events), kgo.WithLogger(slogAdapter{cfg.Logger})}
	cl, err := kgo.NewClient(append(opts, cfg.ClientOpts...)...)
	if err != nil {
		return nil, fmt.Errorf("kafka: %w", err)
	}
	return &Producer{cfg: cfg, cl: cl, adm: kadm.NewClient(cl)}, nil
}

// Close flushes and closes the client.
func (p *Producer) Close() { p.cl.Close() }

// Ping checks that a broker answers.
func (p *Producer) Ping(ctx context.Context) error { return p.cl.Ping(ctx) }

// Events produces evs and returns once every one is acknowledged by all
// in-sync replicas: after that, they survive the loss of this process.
func (p *Producer) Events(ctx context.Context, evs []ingest.Event) error {
	if len(evs) == 0 {
		return nil
	}
	var buf []byte
	ends := make([]int, len(evs))
	for i := range evs {
		buf = ingest.AppendJSON(buf, &evs[i])
		ends[i] = len(buf)
	}
	recs := make([]kgo.Record, len(evs))
	start := 0
	for i := range evs {
		recs[i] = kgo.Record{Key: []byte(evs[i].ProductID), Value: buf[start:ends[i]:ends[i]]}
		start = ends[i]
	}
	return p.produce(ctx, recs)
}

func (p *Producer) produce(ctx context.Context, recs []kgo.Record) error {
	if err := produceAndWait(ctx, p.cl, len(recs), func(i int) *kgo.Record { return &recs[i] }); err != nil {
		return fmt.Errorf("kafka: producing: %w", err)
	}
	return nil
}

// produceAndWait produces n records, rec(i) for each, and waits until all
// are acknowledged; it returns the first failure. Producing them together
// lets franz-go batch them, which a ProduceSync per record would not.
func produceAndWait(ctx context.Context, cl *kgo.Client, n int, rec func(i int) *kgo.Record) error {
	if n == 0 {
		return nil
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	wg.Add(n)
	for i := 0; i < n; i++ {
		cl.Produce(ctx, rec(i), func(_ *kgo.Record, err error) {
			if err != nil {
				mu.Lock()
				if first == nil {
					first = err
				}
				mu.Unlock()
			}
			wg.Done()
		})
	}
	wg.Wait()
	return first
}

// Send produces a control record (see its encoders in control.go) and
// returns once Kafka has it: keyed by its product, or on every partition of
// the events topic when r.AllPartitions.
func (p *Producer) Send(ctx context.Context, r ControlRecord) error {
	if p.cfg.Signer == nil {
		return errors.New("kafka: no control key to sign control records with")
	}
	topic := p.cfg.Topics.ControlTopic()
	if !r.AllPartitions {
		return p.produce(ctx, []kgo.Record{r.record(topic, p.cfg.Signer)})
	}
	td, err := p.adm.ListTopics(ctx, topic)
	if err != nil {
		return fmt.Errorf("kafka: %w", err)
	}
	d, ok := td[topic]
	if !ok || d.Err != nil || len(d.Partitions) == 0 {
		return fmt.Errorf("kafka: topic %s not found", topic)
	}
	recs := make([]kgo.Record, len(d.Partitions))
	for i := range recs {
		recs[i] = r.record(topic, p.cfg.Signer)
		recs[i].Context = context.WithValue(ctx, partitionKey{}, int32(i))
	}
	return p.produce(ctx, recs)
}

// SendCatalog sends a catalog file's products to the engines as control
// records, so each engine applies them in order with events (a direct
// database write would bypass engines that already hold the products).
func (p *Producer) SendCatalog(ctx context.Context, f *catalog.File) error {
	if f.DefaultStrategy != "" {
		if err := p.Send(ctx, DefaultStrategyRecord(f.DefaultStrategy)); err != nil {
			return err
		}
	}
	for _, prod := range f.Products {
		r, err := ProductRecord(prod)
		if err != nil {
			return err
		}
		if err := p.Send(ctx, r); err != nil {
			return err
		}
	}
	return nil
}

// Follow consumes the price-updates topic from its end, as every API
// replica does on its own (no consumer group: each needs every update),
// and passes each polled batch to fn, in order, without updates older than
// one already passed for the same product. It finds the end offsets first
// (waiting for the engines to create the topic), sets following once it
// consumes from them, and returns when ctx ends.
func Follow(ctx context.Context, cfg ClientConfig, fn func([]live.Price), following *atomic.Bool) error {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	start, err := endOffsets(ctx, cfg)
	if err != nil {
		return err
	}
	opts := []kgo.Opt{kgo.SeedBrokers(cfg.Brokers...), kgo.ConsumePartitions(start),
		kgo.WithLogger(slogAdapter{cfg.Logger}), kgo.FetchMaxWait(100 * time.Millisecond)}
	cl, err := kgo.NewClient(append(opts, cfg.ClientOpts...)...)
	if err != nil {
		return fmt.Errorf("kafka: %w", err)
	}
	defer cl.Close()
	if following != nil {
		following.Store(true)
		defer following.Store(false)
	}
	versions := make(map[string]uint64)
	var us []live.Price
	for {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil || fs.IsClientClosed() {
			return nil
		}
		fs.EachError(func(t string, p int32, err error) {
			cfg.Logger.Warn("following price updates: fetch failed; retrying", "topic", t, "partition", p, "err", err)
		})
		us = us[:0]
		fs.EachRecord(func(r *kgo.Record) {
			u, err := live.ParseMessage(r.Value)
			if err != nil {
				cfg.Logger.Warn("skipping a malformed price update", "offset", r.Offset, "partition", r.Partition, "err", err)
				return
			}
			if u.Version != 0 {
				if v, ok := versions[u.ProductID]; ok && u.Version <= v {
					return
				}
				versions[u.ProductID] = u.Version
			}
			us = append(us, u)
		})
		if len(us) > 0 {
			fn(us)
		}
	}
}

// endOffsets returns the current end of every partition of the updates
// topic, retrying until the topic exists.
func endOffsets(ctx context.Context, cfg ClientConfig) (map[string]map[int32]kgo.Offset, error) {
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(cfg.Brokers...), kgo.MetadataMinAge(10 * time.Millisecond)}, cfg.ClientOpts...)...)
	if err != nil {
		return nil, fmt.Errorf("kafka: %w", err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	out, err := retry.Value(ctx, retry.Default, func(ctx context.Context) (map[string]map[int32]kgo.Offset, error) {
		ends, err := adm.ListEndOffsets(ctx, cfg.Topics.Updates)
		if err == nil {
			err = ends.Error()
		}
		if err != nil {
			return nil, err
		}
		if len(ends[cfg.Topics.Updates]) == 0 {
			return nil, fmt.Errorf("topic %s does not exist yet", cfg.Topics.Updates)
		}
		out := map[string]map[int32]kgo.Offset{cfg.Topics.Updates: {}}
		ends.Each(func(o kadm.ListedOffset) {
			out[o.Topic][o.Partition] = kgo.NewOffset().At(o.Offset)
		})
		return out, nil
	}, func(err error, wait time.Duration) {
		cfg.Logger.Warn("cannot follow price updates yet; retrying", "err", err, "in", wait)
	})
	if err != nil {
		return nil, nil // ctx ended
	}
	return out, nil
}

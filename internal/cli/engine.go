package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/dynaprice/dynaprice/internal/catalog"
	"github.com/dynaprice/dynaprice/internal/engine"
	"github.com/dynaprice/dynaprice/internal/health"
	"github.com/dynaprice/dynaprice/internal/httpapi"
	"github.com/dynaprice/dynaprice/internal/kafka"
	"github.com/dynaprice/dynaprice/internal/pricing"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/twmb/franz-go/pkg/kgo"
)

// EngineOptions are the settings of `dynaprice engine`.
type EngineOptions struct {
	ClusterOptions
	PricingOptions
	DedupOptions
	HistoryOptions
	Group           string
	MetricsAddr     string
	CatalogFile     string
	NoMigrate       bool
	TickInterval    time.Duration
	SessionTimeout  time.Duration
	MaxPollRecords  int
	ShutdownTimeout time.Duration
}

func parseEngine(args []string, getenv Env, stderr io.Writer) (EngineOptions, error) {
	var o EngineOptions
	fs := flag.NewFlagSet("dynaprice engine", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addClusterFlags(fs, &o.ClusterOptions, getenv, true, true, true)
	fs.StringVar(&o.Group, "group", "dynaprice-engine", "Kafka consumer group shared by all engines")
	fs.StringVar(&o.MetricsAddr, "metrics-addr", ":9090", "address serving /metrics, /healthz and /readyz")
	fs.StringVar(&o.CatalogFile, "catalog", "", "catalog JSON file: seeds an empty database, or is sent to the engines as product updates")
	fs.BoolVar(&o.NoMigrate, "no-migrate", false, "do not apply database migrations at start (run \"dynaprice migrate\" instead)")
	o.PricingOptions.register(fs, getenv, "create unknown products from an event's price instead of dead-lettering the event")
	o.DedupOptions.register(fs, " per partition")
	o.HistoryOptions.register(fs, getenv)
	fs.DurationVar(&o.TickInterval, "tick", time.Second, "how often time-dependent prices and override expiries are re-evaluated")
	fs.IntVar(&o.MaxPollRecords, "max-poll-records", kafka.DefaultMaxPollRecords, "most records processed per round (larger: fewer, bigger commits)")
	fs.DurationVar(&o.SessionTimeout, "session-timeout", 10*time.Second, "how long Kafka waits for a silent engine before giving its partitions to others")
	addShutdownFlags(fs, &o.ShutdownTimeout, nil, "the round in progress and its commit, publishing what was committed, leaving the consumer group, HTTP and closing the connections to Redis and PostgreSQL")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage: dynaprice engine [flags]

Runs a pricing engine of a scale-out deployment. Engines share the work in
one Kafka consumer group: each owns some partitions of the events topic and
the prices of the products keyed to them. Per partition, the new state, its
price history and the consumed offsets are committed in one PostgreSQL
transaction (exactly-once effect); then Redis is updated and price updates
are published. Records without a key (the original's producers) are re-keyed
through the <events-topic>-repartition topic; records that cannot be applied
go to <events-topic>-dlq with the reason in a header.

--metrics-addr is served at once: /healthz answers 200, and /readyz 503
until the dependencies answer and the engine owns its partitions. On
SIGTERM or SIGINT, /readyz answers 503, and the engine finishes its round,
publishes what it committed and leaves the group within --shutdown-timeout
(there is no --drain: no load balancer sends an engine requests).

Environment: KAFKA_BROKERS, PRODUCT_EVENTS_TOPIC, PRICE_UPDATES_TOPIC,
REDIS_ADDR, DATABASE_URL, DYNAPRICE_PARTITIONS, DYNAPRICE_HISTORY_RAW,
DYNAPRICE_HISTORY_HOURLY, DYNAPRICE_LOG_LEVEL, DYNAPRICE_LOG_FORMAT. A flag
beats its environment variable. Give every engine the same history
retention: whichever engine runs it applies its own.

Flags:
`)
		fs.PrintDefaults()
	}
	return o, parseFlags(fs, args, stderr)
}

func runEngine(ctx context.Context, args []string, getenv Env, stdout, stderr io.Writer) error {
	o, err := parseEngine(args, getenv, stderr)
	if err != nil {
		return err
	}
	log, err := newLogger(stderr, o.LogLevel, o.LogFormat)
	if err != nil {
		return err
	}
	return Engine(ctx, o, log, stdout)
}

// Engine runs the engine role until ctx ends, then shuts down within
// o.ShutdownTimeout of ctx's end: /readyz answers 503 at once, the round in
// progress is committed, what was committed is published, the engine
// leaves its consumer group, and HTTP and the connections are closed.
//
// /metrics, /healthz and /readyz are served before the engine connects to
// anything, so probes see a live process that is not ready yet.
func Engine(ctx context.Context, o EngineOptions, log *slog.Logger, stdout io.Writer) error {
	return runRole(ctx, log, &engineRole{o: o, log: log, stdout: stdout})
}

// engineRole is `dynaprice engine`: the Kafka engine with its metrics and
// health endpoints.
type engineRole struct {
	o      EngineOptions
	log    *slog.Logger
	stdout io.Writer

	web       *listener
	conns     []func() // closes what was opened, last first
	eng       *kafka.Engine
	stopWatch context.CancelFunc
	stopEng   context.CancelFunc
	done      chan error
	ready     health.Readiness
	stopped   bool // the engine's Run returned

	// Set by Check for Open.
	pc        pricing.Config
	retention engine.HistoryRetention
	cat       *catalog.File
	signer    *kafka.Signer
}

// Check validates the options and reads the catalog file.
func (r *engineRole) Check() (err error) {
	if r.pc, err = r.o.PricingOptions.config(); err != nil {
		return err
	}
	if r.retention, err = r.o.HistoryOptions.retention(); err != nil {
		return err
	}
	if err := checkShutdown(r.o.ShutdownTimeout, 0); err != nil {
		return err
	}
	if r.cat, err = catalog.ReadFile(r.o.CatalogFile); err != nil {
		return err
	}
	r.signer, err = r.o.signer()
	return err
}

// Open serves /metrics, /healthz and /readyz at once, then connects
// (waiting for the dependencies), migrates, and starts the engine.
func (r *engineRole) Open(ctx context.Context) (err error) {
	o, log, pc, cat := r.o, r.log, r.pc, r.cat
	reg := newRegistry()
	var engSet atomic.Bool
	r.ready.Require(func() bool { return engSet.Load() && r.eng.Ready() })
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	// The same answers as the API's /healthz and /readyz.
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { httpapi.WriteHealth(w) })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) { httpapi.WriteReadiness(w, r.ready.Why()) })
	if r.web, err = listen(o.MetricsAddr, nil, 100, log); err != nil {
		return err
	}
	r.web.Open(mux)
	fmt.Fprintf(r.stdout, "dynaprice %s engine: metrics and health on http://%s\n", Version, displayAddr(r.web.Addr()))

	db, err := o.openDB(ctx, log)
	if err != nil {
		return err
	}
	r.conns = append(r.conns, db.Close)
	seeded := false
	if !o.NoMigrate {
		if seeded, err = db.MigrateAndSeed(ctx, cat, log); err != nil {
			return err
		}
	}
	// The history partitions of the coming days, before the first commit
	// (the partitions' own prune does it too, a minute later). Not fatal:
	// rows without a partition go to the DEFAULT one.
	if _, err := db.PruneHistory(ctx, time.Now().UnixNano(), engine.HistoryRetention{}); err != nil {
		log.Warn("cannot create the history partitions ahead; the engines' next prune tries again", "err", err)
	}
	rc, err := openRedis(ctx, o.RedisAddr, o.RedisPrefix, nil, log)
	if err != nil {
		return err
	}
	r.conns = append(r.conns, rc.Close)
	if cat != nil && !seeded {
		if err := sendCatalog(ctx, o.ClusterOptions, r.signer, cat, log); err != nil {
			return err
		}
	}

	security, err := o.Kafka.Opts()
	if err != nil {
		return err
	}
	ecfg := engine.DefaultConfig()
	ecfg.Pricing, ecfg.AutoCreate, ecfg.BaseFromEvents = pc, o.AutoCreate, o.BaseFromEvents
	ecfg.DedupWindow, ecfg.DedupMax, ecfg.TickInterval = o.DedupWindow, o.DedupMax, o.TickInterval
	ecfg.Retention = r.retention
	ecfg.Logger = log
	r.eng, err = kafka.NewEngine(kafka.EngineConfig{
		Brokers: o.brokers(), Topics: o.topics(), Group: o.Group,
		Partitions: int32(o.Partitions), Replication: int16(o.Replication),
		Engine: ecfg, Live: rc, Signer: r.signer, Registerer: reg, Logger: log, MaxPollRecords: o.MaxPollRecords,
		ShutdownTimeout: o.ShutdownTimeout,
		Stores:          func(q int32, owns func(string) bool) engine.Store { return db.Store(int(q), owns) },
		ClientOpts: append(security, kgo.SessionTimeout(o.SessionTimeout), kgo.HeartbeatInterval(max(o.SessionTimeout/10, 100*time.Millisecond)),
			kgo.RebalanceTimeout(max(2*o.SessionTimeout, 10*time.Second))),
	})
	if err != nil {
		return err
	}
	engSet.Store(true)
	var watchCtx, runCtx context.Context
	watchCtx, r.stopWatch = context.WithCancel(ctx)
	r.ready.Watch(watchCtx, log, health.Checks{"postgres": db.Ping, "redis": rc.Ping, "kafka": r.eng.Ping})
	runCtx, r.stopEng = context.WithCancel(context.WithoutCancel(ctx))
	r.done = make(chan error, 1)
	go func() { r.done <- r.eng.Run(runCtx) }()
	return nil
}

// Run waits for ctx to end, or for the engine or the HTTP server to stop.
func (r *engineRole) Run(ctx context.Context) error {
	select {
	case <-ctx.Done():
		return nil
	case err := <-r.done:
		r.stopped = true
		if err != nil {
			r.log.Error("engine stopped", "err", err)
		}
		return err
	case err := <-r.web.Err():
		r.log.Error("http server stopped", "err", err)
		return err
	}
}

// Close shuts down within the shutdown deadline: /readyz answers 503 at
// once, the round in progress is committed, what was committed is
// published, the engine leaves its consumer group, and HTTP and the
// connections are closed.
func (r *engineRole) Close() error {
	if r.stopWatch != nil {
		r.stopWatch()
	}
	if r.done == nil { // Open did not start the engine
		if r.web != nil {
			r.web.Close()
		}
		closeAll(r.conns)
		return nil
	}
	sd := beginShutdown(context.Background(), r.o.ShutdownTimeout, r.log)
	defer sd.end()
	r.ready.Stop()
	r.log.Info("shutting down: finishing the round in progress, publishing what was committed, leaving the consumer group")
	r.stopEng()
	var err error
	if !r.stopped {
		r.stopped = sd.waitErr(r.done, &err, "the engine had not stopped; the next owner of its partitions resumes from their last commit")
	}
	sd.closeHTTP(r.web)
	// Closing the database under a running engine would wait for its
	// connections; then the process exit closes them.
	cs := r.conns
	r.conns = nil
	if r.stopped {
		sd.run("the connections to Redis and PostgreSQL did not all close in time", func() { closeAll(cs) })
	} else {
		r.log.Warn("leaving the connections for the process exit to close, because the engine is still running")
	}
	return err
}

// sendCatalog sends a catalog file's products to the engines.
func sendCatalog(ctx context.Context, o ClusterOptions, signer *kafka.Signer, f *catalog.File, log *slog.Logger) error {
	kc, err := o.kafkaClient(log, signer)
	if err != nil {
		return err
	}
	pr, err := kafka.NewProducer(kc)
	if err != nil {
		return err
	}
	defer pr.Close()
	if err := pr.SendCatalog(ctx, f); err != nil {
		return err
	}
	log.Info("catalog sent to the engines", "products", len(f.Products))
	return nil
}

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
	"github.com/dynaprice/dynaprice/internal/httperror"
	"github.com/dynaprice/dynaprice/internal/kafka"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/twmb/franz-go/pkg/kgo"
)

// EngineOptions are the settings of `dynaprice engine`.
type EngineOptions struct {
	ClusterOptions
	Group           string
	MetricsAddr     string
	CatalogFile     string
	NoMigrate       bool
	AutoCreate      bool
	HalfLife        time.Duration
	Weights         string
	DedupWindow     time.Duration
	DedupMax        int
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
	fs.BoolVar(&o.NoMigrate, "no-migrate", false, "do not apply database migrations at start (run `dynaprice migrate` instead)")
	fs.BoolVar(&o.AutoCreate, "auto-create", false, "create unknown products from an event's price instead of dead-lettering the event")
	fs.DurationVar(&o.HalfLife, "half-life", time.Hour, "half-life of demand for the decay strategy")
	fs.StringVar(&o.Weights, "weights", "view=1,cart=3,purchase=5", "demand weight per event type")
	fs.DurationVar(&o.DedupWindow, "dedup-window", 24*time.Hour, "how long event ids are remembered for deduplication")
	fs.IntVar(&o.DedupMax, "dedup-max", 1_000_000, "most event ids remembered per partition")
	fs.DurationVar(&o.TickInterval, "tick", time.Second, "how often time-dependent prices and override expiries are re-evaluated")
	fs.IntVar(&o.MaxPollRecords, "max-poll-records", 60000, "most records processed per round (larger: fewer, bigger commits)")
	fs.DurationVar(&o.SessionTimeout, "session-timeout", 10*time.Second, "how long Kafka waits for a silent engine before giving its partitions to others")
	fs.DurationVar(&o.ShutdownTimeout, "shutdown-timeout", 20*time.Second, "time allowed for a graceful shutdown")
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

Environment: KAFKA_BROKERS, PRODUCT_EVENTS_TOPIC, PRICE_UPDATES_TOPIC,
REDIS_ADDR, DATABASE_URL, DYNAPRICE_PARTITIONS, DYNAPRICE_LOG_LEVEL,
DYNAPRICE_LOG_FORMAT. A flag beats its environment variable.

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

// Engine runs the engine role until ctx ends.
func Engine(ctx context.Context, o EngineOptions, log *slog.Logger, stdout io.Writer) error {
	pc, err := pricingConfig(o.Weights, o.HalfLife)
	if err != nil {
		return err
	}
	cat, err := readCatalog(o.CatalogFile)
	if err != nil {
		return err
	}
	reg := newRegistry()
	// Ready: every dependency answers and the processor owns its
	// partitions with nothing stalled.
	var depsOK atomic.Bool
	var proc *kafka.Processor
	var procSet atomic.Bool
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	// The same answers as the API's /healthz and /readyz.
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"ok"}` + "\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !depsOK.Load() || !procSet.Load() || !proc.Ready() {
			httperror.Write(w, http.StatusServiceUnavailable, "not ready")
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"ready"}` + "\n"))
	})
	srv, ln, srvErr, err := serveHTTP(o.MetricsAddr, mux, log)
	if err != nil {
		return err
	}
	defer srv.Close()
	fmt.Fprintf(stdout, "dynaprice %s engine: metrics and health on http://%s\n", Version, displayAddr(ln.Addr()))

	db, err := openDB(ctx, o.DatabaseURL, log)
	if err != nil {
		return err
	}
	defer db.Close()
	seeded := false
	if !o.NoMigrate {
		if seeded, err = migrateAndSeed(ctx, db, cat, log); err != nil {
			return err
		}
	}
	rc, err := openRedis(ctx, o.RedisAddr, log)
	if err != nil {
		return err
	}
	defer rc.Close()
	if cat != nil && !seeded {
		if err := sendCatalog(ctx, o.ClusterOptions, cat, log); err != nil {
			return err
		}
	}

	ecfg := engine.DefaultConfig()
	ecfg.Pricing, ecfg.AutoCreate = pc, o.AutoCreate
	ecfg.DedupWindow, ecfg.DedupMax, ecfg.TickInterval = o.DedupWindow, o.DedupMax, o.TickInterval
	ecfg.Logger = log
	proc, err = kafka.NewProcessor(kafka.ProcessorConfig{
		Brokers: o.brokers(), Topics: o.topics(), Group: o.Group,
		Partitions: int32(o.Partitions), Replication: int16(o.Replication),
		Engine: ecfg, Live: rc, Registerer: reg, Logger: log, MaxPollRecords: o.MaxPollRecords,
		Stores: func(q int32, owns func(string) bool) engine.Store { return db.Store(int(q), owns) },
		ClientOpts: []kgo.Opt{kgo.SessionTimeout(o.SessionTimeout), kgo.HeartbeatInterval(max(o.SessionTimeout/10, 100*time.Millisecond)),
			kgo.RebalanceTimeout(max(2*o.SessionTimeout, 10*time.Second))},
	})
	if err != nil {
		return err
	}
	procSet.Store(true)
	checkCtx, stopCheck := context.WithCancel(ctx)
	defer stopCheck()
	go watchReady(checkCtx, &depsOK, log, map[string]func(context.Context) error{
		"postgres": db.Ping, "redis": rc.Ping, "kafka": proc.Ping,
	})
	runCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	defer stop()
	done := make(chan error, 1)
	go func() { done <- proc.Run(runCtx) }()
	var runErr error
	select {
	case <-ctx.Done():
		log.Info("shutting down: finishing the round in progress")
	case runErr = <-done:
		if runErr != nil {
			return runErr
		}
		return nil
	case err := <-srvErr:
		runErr = err
	}
	stop()
	select {
	case err := <-done:
		if runErr == nil {
			runErr = err
		}
	case <-time.After(o.ShutdownTimeout):
		log.Error("engine did not stop in time; uncommitted work will be replayed by the next owner")
	}
	log.Info("stopped")
	return runErr
}

// sendCatalog sends a catalog file's products to the engines as control
// records, so each engine applies them in order with events (a direct
// database write would bypass engines that already hold the products).
func sendCatalog(ctx context.Context, o ClusterOptions, f *catalog.File, log *slog.Logger) error {
	pr, err := kafka.NewProducer(kafka.ClientConfig{Brokers: o.brokers(), Topics: o.topics(), Logger: log})
	if err != nil {
		return err
	}
	defer pr.Close()
	if f.DefaultStrategy != "" {
		if err := pr.Broadcast(ctx, kafka.ControlDefaultStrategy, kafka.DefaultStrategyMsg{DefaultStrategy: f.DefaultStrategy}); err != nil {
			return err
		}
	}
	for _, p := range f.Products {
		if err := pr.Control(ctx, kafka.ControlProduct, p.ID, p); err != nil {
			return err
		}
	}
	log.Info("catalog sent to the engines", "products", len(f.Products))
	return nil
}

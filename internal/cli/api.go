package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/dynaprice/dynaprice/internal/dashboard"
	"github.com/dynaprice/dynaprice/internal/engine"
	"github.com/dynaprice/dynaprice/internal/fanout"
	"github.com/dynaprice/dynaprice/internal/httpapi"
	"github.com/dynaprice/dynaprice/internal/ingest"
	"github.com/dynaprice/dynaprice/internal/kafka"
	"github.com/dynaprice/dynaprice/internal/live"
	"github.com/dynaprice/dynaprice/internal/pricing"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// APIOptions are the settings of `dynaprice api`.
type APIOptions struct {
	ClusterOptions
	Addr            string
	AdminKey        string
	APIKeys         string
	KeyHeader       string
	WSOrigins       string
	MaxBody         int64
	AutoCreate      bool
	HalfLife        time.Duration
	Weights         string
	ShutdownTimeout time.Duration
	Drain           time.Duration
}

func parseAPI(args []string, getenv Env, stderr io.Writer) (APIOptions, error) {
	var o APIOptions
	fs := flag.NewFlagSet("dynaprice api", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addClusterFlags(fs, &o.ClusterOptions, getenv, true, true, true)
	addr := ":8080"
	if p := getenv("API_PORT"); p != "" {
		addr = ":" + p
	}
	fs.StringVar(&o.Addr, "addr", addr, "listen address HOST:PORT (env API_PORT sets the port)")
	fs.StringVar(&o.APIKeys, "api-keys", getenv("DYNAPRICE_API_KEYS"), "extra API keys as name:role:secret[,...]; roles viewer, operator, ingest, admin (env DYNAPRICE_API_KEYS)")
	fs.StringVar(&o.KeyHeader, "key-header", envOr(getenv, "API_KEY_HEADER", "X-API-Key"), "header carrying the API key (env API_KEY_HEADER)")
	fs.StringVar(&o.WSOrigins, "ws-origins", getenv("DYNAPRICE_WS_ORIGINS"), "extra allowed WebSocket origin host patterns, comma separated (env DYNAPRICE_WS_ORIGINS)")
	fs.Int64Var(&o.MaxBody, "max-body", 16<<20, "largest POST /events body in bytes")
	fs.BoolVar(&o.AutoCreate, "auto-create", false, "accept events for unknown products (the engines must run with --auto-create too)")
	fs.DurationVar(&o.HalfLife, "half-life", time.Hour, "half-life of demand for the decay strategy (as the engines', for explanations)")
	fs.StringVar(&o.Weights, "weights", "view=1,cart=3,purchase=5", "demand weight per event type (as the engines')")
	addShutdownFlags(fs, &o.ShutdownTimeout, &o.Drain, "drain, HTTP and WebSockets, following price-updates and closing the connections to Kafka, Redis and PostgreSQL")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage: dynaprice api [flags]

Runs a stateless API replica of a scale-out deployment: the same REST API,
WebSocket and dashboard as serve. Prices are read from Redis (with
client-side caching), history and the catalog from PostgreSQL; events,
overrides and catalog changes are written to Kafka for the engines. Each
replica follows the price-updates topic on its own and fans it out to its
WebSocket clients. Run as many as you need behind a load balancer.

It listens at once: until PostgreSQL, Redis and Kafka answer, /healthz
answers 200 and everything else 503. On SIGTERM or SIGINT, /readyz answers
503 for --drain while requests are still served; then the listener closes,
requests in flight finish and WebSockets close, all within
--shutdown-timeout.

Environment: API_PORT, ADMIN_API_KEY (required unless DYNAPRICE_API_KEYS
names an admin key), API_KEY_HEADER, DYNAPRICE_API_KEYS,
DYNAPRICE_WS_ORIGINS, KAFKA_BROKERS, PRODUCT_EVENTS_TOPIC,
PRICE_UPDATES_TOPIC, REDIS_ADDR, DATABASE_URL. A flag beats its environment
variable.

Flags:
`)
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args, stderr); err != nil {
		return o, err
	}
	o.AdminKey = getenv("ADMIN_API_KEY")
	return o, nil
}

func runAPI(ctx context.Context, args []string, getenv Env, stdout, stderr io.Writer) error {
	o, err := parseAPI(args, getenv, stderr)
	if err != nil {
		return err
	}
	log, err := newLogger(stderr, o.LogLevel, o.LogFormat)
	if err != nil {
		return err
	}
	return API(ctx, o, log, stdout)
}

// API runs an API replica until ctx ends, then shuts down in order: report
// not ready and keep serving for o.Drain, stop taking requests and finish
// those in flight, close WebSockets, stop following price updates, close
// the connections to Kafka, Redis and PostgreSQL, all within
// o.ShutdownTimeout of ctx's end.
//
// The listener opens before the replica connects to anything: while it
// waits for PostgreSQL, Redis and Kafka, /healthz answers 200 and
// everything else 503 (httpapi.Gate).
func API(ctx context.Context, o APIOptions, log *slog.Logger, stdout io.Writer) error {
	pc, err := pricingConfig(o.Weights, o.HalfLife)
	if err != nil {
		return err
	}
	if err := checkShutdown(o.ShutdownTimeout, o.Drain); err != nil {
		return err
	}
	keys, generated, err := apiKeys(&o.AdminKey, o.APIKeys)
	if err != nil {
		return err
	}

	web, err := listen(o.Addr, nil, log)
	if err != nil {
		return err
	}
	// Until the shutdown below takes over, a failed start only has to stop
	// the listener and close what was opened.
	defer web.Close()
	var conns []func() // closes what was opened, last first
	defer func() { closeAll(conns) }()
	log.Info("listening; connecting to PostgreSQL, Redis and Kafka", "addr", web.Addr().String())

	db, err := openDB(ctx, o.DatabaseURL, log)
	if err != nil {
		return startErr(ctx, log, err)
	}
	conns = append(conns, db.Close)
	rc, err := openRedis(ctx, o.RedisAddr, log)
	if err != nil {
		return startErr(ctx, log, err)
	}
	conns = append(conns, rc.Close)
	pr, err := kafka.NewProducer(kafka.ClientConfig{Brokers: o.brokers(), Topics: o.topics(), Logger: log})
	if err != nil {
		return err
	}
	conns = append(conns, pr.Close)

	reg := newRegistry()
	hub := fanout.New(fanout.Config{
		OriginPatterns: splitList(o.WSOrigins), Logger: log, Registerer: reg,
		Snapshot: func() []fanout.Update {
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			cs, err := rc.Changes(sctx)
			if err != nil {
				log.Warn("WebSocket snapshot: reading live prices failed", "err", err)
			}
			return toUpdates(nil, cs, true)
		},
	})
	// The replica's own copy of the live prices, fed by price-updates, is
	// what it answers from while Redis is down.
	view := live.New()
	if cs, err := rc.Changes(ctx); err == nil {
		view.Publish(cs)
	}
	var following atomic.Bool
	followCtx, stopFollow := context.WithCancel(context.WithoutCancel(ctx))
	defer stopFollow()
	followDone := make(chan struct{})
	go func() {
		defer close(followDone)
		err := kafka.Follow(followCtx, kafka.ClientConfig{Brokers: o.brokers(), Topics: o.topics(), Logger: log}, func(us []fanout.Update) {
			hub.Publish(us)
			view.Publish(toChanges(us))
		}, &following)
		if err != nil {
			log.Error("following price updates stopped", "err", err)
		}
	}()

	// Ready while every dependency answers, and not once the shutdown
	// began (whatever the last check said).
	var depsOK, stopping atomic.Bool
	checkCtx, stopCheck := context.WithCancel(ctx)
	defer stopCheck()
	go watchReady(checkCtx, &depsOK, log, map[string]func(context.Context) error{
		"postgres": db.Ping, "redis": rc.Ping, "kafka": pr.Ping,
		"price-updates": func(context.Context) error {
			if !following.Load() {
				return errors.New("not following price updates yet")
			}
			return nil
		},
	})

	prices := &fallbackPrices{primary: rc, backup: live.Prices{V: view}, log: log}
	api, err := httpapi.New(httpapi.Config{
		KeyHeader: o.KeyHeader, Keys: keys, MaxEventsBody: o.MaxBody, MaxBody: 64 << 10,
		RequestTimeout: 30 * time.Second, Logger: log, Registerer: reg,
	}, httpapi.Deps{
		Engine: kafka.NewGateway(pr, rc, db, pc, o.AutoCreate), Archive: db, Prices: prices,
		Decoder:   &ingest.Decoder{Now: time.Now},
		WebSocket: hub, Metrics: promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}),
		Ready: func() bool { return !stopping.Load() && depsOK.Load() }, UI: dashboard.Handler(),
	})
	if err != nil {
		return err
	}
	web.Open(api)
	url := "http://" + displayAddr(web.Addr())
	fmt.Fprintf(stdout, "dynaprice %s api serving on %s\n", Version, url)
	fmt.Fprintf(stdout, "  prices:    %s/prices    live: %s/ws/prices    metrics: %s/metrics\n", url, strings.Replace(url, "http", "ws", 1), url)
	if generated {
		fmt.Fprintf(stdout, "  admin key: %s   (generated for this run; set ADMIN_API_KEY to share one across replicas)\n", o.AdminKey)
	}

	var runErr error
	signalled := false
	select {
	case <-ctx.Done():
		signalled = true
	case runErr = <-web.Err():
		log.Error("http server stopped", "err", runErr)
	}

	sd := beginShutdown(ctx, o.ShutdownTimeout, log)
	defer sd.end()
	stopping.Store(true)
	stopCheck()
	if signalled && depsOK.Load() {
		sd.drain(o.Drain)
	}
	log.Info("shutting down: closing the listener and WebSockets, finishing requests in flight")
	waitHub := sd.closeHub(hub)
	sd.closeHTTP(web)
	stopFollow()
	sd.wait(followDone, "following price updates had not stopped")
	waitHub()
	cs := conns
	conns = nil
	sd.run("the connections to Kafka, Redis and PostgreSQL did not all close in time", func() { closeAll(cs) })
	return runErr
}

// closeAll calls fs, last first.
func closeAll(fs []func()) {
	for i := len(fs) - 1; i >= 0; i-- {
		fs[i]()
	}
}

// fallbackPrices reads Redis and, while Redis fails, the replica's own view:
// an API replica keeps serving the last known prices through a Redis outage
// (and reports not ready meanwhile). Redis reads get a short deadline, and
// after a failure Redis is tried again at most once per retryEvery, so an
// outage costs requests nothing but a map lookup.
type fallbackPrices struct {
	primary, backup httpapi.Prices
	log             *slog.Logger
	failedAt        atomic.Int64 // unix ns of the last failure, 0 when healthy
}

const (
	redisReadTimeout = 250 * time.Millisecond
	retryEvery       = time.Second
)

// usePrimary reports whether to try Redis: it is healthy, or the last
// failure is old enough to probe again.
func (f *fallbackPrices) usePrimary() bool {
	t := f.failedAt.Load()
	return t == 0 || time.Since(time.Unix(0, t)) >= retryEvery
}

func (f *fallbackPrices) result(err error) {
	if err == nil {
		if f.failedAt.Swap(0) != 0 {
			f.log.Info("reading live prices from Redis works again")
		}
		return
	}
	if f.failedAt.Swap(time.Now().UnixNano()) == 0 {
		f.log.Warn("reading live prices from Redis failed; answering from this replica's copy", "err", err)
	}
}

func (f *fallbackPrices) Price(ctx context.Context, id string) ([]byte, bool, error) {
	if f.usePrimary() {
		rctx, cancel := context.WithTimeout(ctx, redisReadTimeout)
		b, ok, err := f.primary.Price(rctx, id)
		cancel()
		if ctx.Err() != nil {
			return nil, false, ctx.Err()
		}
		f.result(err)
		if err == nil {
			return b, ok, nil
		}
	}
	return f.backup.Price(ctx, id)
}

func (f *fallbackPrices) AppendAll(ctx context.Context, dst []byte) ([]byte, error) {
	if f.usePrimary() {
		rctx, cancel := context.WithTimeout(ctx, redisReadTimeout)
		b, err := f.primary.AppendAll(rctx, dst)
		cancel()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		f.result(err)
		if err == nil {
			return b, nil
		}
	}
	return f.backup.AppendAll(ctx, dst)
}

// toChanges converts price updates back to engine changes.
func toChanges(us []fanout.Update) []engine.Change {
	cs := make([]engine.Change, 0, len(us))
	for _, u := range us {
		src, _ := pricing.ParseSource(u.Source)
		cs = append(cs, engine.Change{ProductID: u.ProductID, Price: u.Price, Source: src, Demand: u.Demand,
			Version: u.Version, At: u.At.UnixNano(), Lowest30: u.Lowest30, PriceChanged: true})
	}
	return cs
}

// watchReady keeps ready true while every dependency answers a ping.
// Checking in the background keeps /readyz cheap and lets the API keep
// serving the last known prices (Redis caches) while reporting not ready.
func watchReady(ctx context.Context, ready *atomic.Bool, log *slog.Logger, checks map[string]func(context.Context) error) {
	failing := map[string]bool{}
	for {
		ok := true
		for name, ping := range checks {
			pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			err := ping(pctx)
			cancel()
			if ctx.Err() != nil {
				return
			}
			if err != nil {
				ok = false
				if !failing[name] {
					log.Warn("dependency is down; reporting not ready", "dependency", name, "err", err)
				}
			} else if failing[name] {
				log.Info("dependency is back", "dependency", name)
			}
			failing[name] = err != nil
		}
		ready.Store(ok)
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
}

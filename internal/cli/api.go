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
	"github.com/dynaprice/dynaprice/internal/gateway"
	"github.com/dynaprice/dynaprice/internal/health"
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
	HTTPOptions
	PricingOptions
}

func parseAPI(args []string, getenv Env, stderr io.Writer) (APIOptions, error) {
	var o APIOptions
	fs := flag.NewFlagSet("dynaprice api", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addClusterFlags(fs, &o.ClusterOptions, getenv, true, true, true)
	o.HTTPOptions.register(fs, getenv, "drain, HTTP and WebSockets, following price-updates and closing the connections to Kafka, Redis and PostgreSQL")
	o.PricingOptions.register(fs, "accept events for unknown products (the engines must run with --auto-create too)")
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
	return o, parseFlags(fs, args, stderr)
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
	pc, err := pricing.ConfigFrom(o.Weights, o.HalfLife)
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
	// The replica's own copy of the live prices, fed by price-updates, is
	// what it answers from while Redis is down; a new WebSocket client's
	// snapshot comes from Redis, which every engine writes.
	view := live.New(live.HubConfig{
		OriginPatterns: splitList(o.WSOrigins), Logger: log, Registerer: reg,
		Snapshot: func() []live.Price {
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			cs, err := rc.Changes(sctx)
			if err != nil {
				log.Warn("WebSocket snapshot: reading live prices failed", "err", err)
			}
			return cs
		},
	})
	hub := view.Hub()
	if cs, err := rc.Changes(ctx); err == nil {
		view.Publish(cs)
	}
	var following atomic.Bool
	followCtx, stopFollow := context.WithCancel(context.WithoutCancel(ctx))
	defer stopFollow()
	followDone := make(chan struct{})
	go func() {
		defer close(followDone)
		err := kafka.Follow(followCtx, kafka.ClientConfig{Brokers: o.brokers(), Topics: o.topics(), Logger: log}, view.Publish, &following)
		if err != nil {
			log.Error("following price updates stopped", "err", err)
		}
	}()

	// Ready while every dependency answers, and not once the shutdown
	// began (whatever the last check said).
	var depsOK, stopping atomic.Bool
	checkCtx, stopCheck := context.WithCancel(ctx)
	defer stopCheck()
	go health.Watch(checkCtx, &depsOK, log, health.Checks{
		"postgres": db.Ping, "redis": rc.Ping, "kafka": pr.Ping,
		"price-updates": func(context.Context) error {
			if !following.Load() {
				return errors.New("not following price updates yet")
			}
			return nil
		},
	})

	prices := live.NewFallback(rc, view, log)
	api, err := httpapi.New(httpapi.Config{
		KeyHeader: o.KeyHeader, Keys: keys, MaxEventsBody: o.MaxBody, MaxBody: 64 << 10,
		RequestTimeout: 30 * time.Second, Logger: log, Registerer: reg,
	}, httpapi.Deps{
		Engine: gateway.New(pr, prices, db, pc, o.AutoCreate), Archive: db, Prices: prices,
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

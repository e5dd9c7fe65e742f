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
	o.HTTPOptions.register(fs, getenv, "drain, HTTP and WebSockets, following price-updates and closing the connections to Kafka, Redis and PostgreSQL", "")
	o.PricingOptions.register(fs, getenv, "accept events for unknown products (the engines must run with --auto-create too)")
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
	return runRole(ctx, log, &apiRole{o: o, log: log, stdout: stdout})
}

// apiRole is `dynaprice api`: a stateless replica of the API over Kafka,
// Redis and PostgreSQL.
type apiRole struct {
	o      APIOptions
	log    *slog.Logger
	stdout io.Writer

	web        *listener
	conns      []func() // closes what was opened, last first
	hub        *live.Hub
	stopFollow context.CancelFunc
	followDone chan struct{}
	stopWatch  context.CancelFunc
	ready      health.Readiness
	signalled  bool

	// Set by Check for Open.
	pc        pricing.Config
	keys      []httpapi.Key
	generated bool
	signer    *kafka.Signer
}

// Check validates the options.
func (r *apiRole) Check() (err error) {
	if r.pc, err = r.o.PricingOptions.config(); err != nil {
		return err
	}
	if err := checkShutdown(r.o.ShutdownTimeout, r.o.Drain); err != nil {
		return err
	}
	if r.keys, r.generated, err = apiKeys(&r.o.AdminKey, r.o.APIKeys, r.o.ShortKeys); err != nil {
		return err
	}
	r.signer, err = r.o.signer()
	return err
}

// Open connects to the dependencies (waiting for them) and returns once
// the API serves.
func (r *apiRole) Open(ctx context.Context) (err error) {
	o, log, pc, keys, generated := r.o, r.log, r.pc, r.keys, r.generated
	if r.web, err = listen(o.Addr, nil, o.MaxConns, log); err != nil {
		return err
	}
	log.Info("listening; connecting to PostgreSQL, Redis and Kafka", "addr", r.web.Addr().String())
	db, err := o.openDB(ctx, log)
	if err != nil {
		return err
	}
	r.conns = append(r.conns, db.Close)
	// GET /prices and WebSocket snapshots list products in catalog order,
	// which only the database knows; it is read again (at most once a
	// second) when a product appears that it did not hold.
	order := live.NewCatalogOrder(db.ProductIDs, time.Second)
	rc, err := openRedis(ctx, o.RedisAddr, o.RedisPrefix, order.Sort, log)
	if err != nil {
		return err
	}
	r.conns = append(r.conns, rc.Close)
	kc, err := o.kafkaClient(log, r.signer)
	if err != nil {
		return err
	}
	pr, err := kafka.NewProducer(kc)
	if err != nil {
		return err
	}
	r.conns = append(r.conns, pr.Close)

	reg := newRegistry()
	// The replica's own copy of the live prices, fed by price-updates, is
	// what it answers from while Redis is down; a new WebSocket client's
	// snapshot comes from Redis, which every engine writes, a page at a
	// time, or from the copy while Redis is down (through prices, made
	// below: the Fallback needs the view, and is set before the server
	// takes a connection).
	snapshots := &lateSnapshotter{}
	view := live.New(live.HubConfig{
		OriginPatterns: splitList(o.WSOrigins), OriginSetting: wsOriginSetting, MaxClients: o.MaxWSClients, Logger: log, Registerer: reg,
		Snapshot: snapshots,
	})
	r.hub = view.Hub()
	if ps, err := rc.Changes(ctx); err == nil {
		view.Publish(ps)
	}
	var following atomic.Bool
	var followCtx context.Context
	followCtx, r.stopFollow = context.WithCancel(context.WithoutCancel(ctx))
	r.followDone = make(chan struct{})
	go func() {
		defer close(r.followDone)
		err := kafka.Follow(followCtx, kc, view.Publish, &following)
		if err != nil {
			log.Error("following price updates stopped", "err", err)
		}
	}()
	// Ready while every dependency answers, and not once the shutdown
	// began (whatever the last check said).
	var watchCtx context.Context
	watchCtx, r.stopWatch = context.WithCancel(ctx)
	r.ready.Watch(watchCtx, log, health.Checks{
		"postgres": db.Ping, "redis": rc.Ping, "kafka": pr.Ping,
		"price-updates": func(context.Context) error {
			if !following.Load() {
				return errors.New("not following price updates yet")
			}
			return nil
		},
	})

	prices := live.NewFallback(rc, view, log)
	snapshots.Snapshotter = prices
	api, err := httpapi.New(httpapi.Config{
		KeyHeader: o.KeyHeader, Keys: keys, MaxEventsBody: o.MaxBody, MaxBody: 64 << 10, BodyTimeout: o.BodyTimeout,
		KeyRate: o.KeyRate, KeyBurst: o.KeyBurst, AuthFailRate: o.AuthFailRate, AuthFailBurst: o.AuthFailBurst,
		RequestTimeout: 30 * time.Second, Logger: log, Registerer: reg,
	}, httpapi.Deps{
		Engine: kafka.NewGateway(pr, prices, db, pc, o.createsProducts()), Archive: db, Prices: prices,
		// The hours not over yet are in the engines' memory: a replica
		// reports the hours before the current one.
		Analytics: engine.Analyst{Store: db, Now: time.Now},
		Decoder:   &ingest.Decoder{Now: time.Now, MaxEvents: o.MaxEvents},
		WebSocket: r.hub, Metrics: promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}),
		Ready: r.ready.Why, UI: dashboard.Handler(),
	})
	if err != nil {
		return err
	}
	r.web.Open(api)
	url := "http://" + displayAddr(r.web.Addr())
	fmt.Fprintf(r.stdout, "dynaprice %s api serving on %s\n", Version, url)
	fmt.Fprintf(r.stdout, "  prices:    %s/prices    live: %s/ws/prices    metrics: %s/metrics\n", url, strings.Replace(url, "http", "ws", 1), url)
	if generated {
		fmt.Fprintf(r.stdout, "  admin key: %s   (generated for this run; set ADMIN_API_KEY to share one across replicas)\n", o.AdminKey)
	}
	return nil
}

// Run waits for ctx to end, or for the HTTP server to fail.
func (r *apiRole) Run(ctx context.Context) error {
	select {
	case <-ctx.Done():
		r.signalled = true
		return nil
	case err := <-r.web.Err():
		r.log.Error("http server stopped", "err", err)
		return err
	}
}

// Close shuts down in order within the shutdown deadline: drain, HTTP and
// WebSockets, following price updates, the connections.
func (r *apiRole) Close() error {
	if r.stopWatch != nil {
		r.stopWatch()
	}
	if r.hub == nil || r.followDone == nil { // Open did not get far
		if r.stopFollow != nil {
			r.stopFollow()
			<-r.followDone
		}
		if r.web != nil {
			r.web.Close()
		}
		closeAll(r.conns)
		return nil
	}
	sd := beginShutdown(context.Background(), r.o.ShutdownTimeout, r.log)
	defer sd.end()
	wasReady := r.ready.Ready()
	r.ready.Stop()
	if r.signalled && wasReady {
		sd.drain(r.o.Drain)
	}
	r.log.Info("shutting down: closing the listener and WebSockets, finishing requests in flight")
	waitHub := sd.closeHub(r.hub)
	sd.closeHTTP(r.web)
	r.stopFollow()
	sd.wait(r.followDone, "following price updates had not stopped")
	waitHub()
	cs := r.conns
	r.conns = nil
	sd.run("the connections to Kafka, Redis and PostgreSQL did not all close in time", func() { closeAll(cs) })
	return nil
}

// closeAll calls fs, last first.
func closeAll(fs []func()) {
	for i := len(fs) - 1; i >= 0; i-- {
		fs[i]()
	}
}

// lateSnapshotter is a live.Snapshotter set after the hub that reads it is
// made, and before any client connects.
type lateSnapshotter struct{ live.Snapshotter }

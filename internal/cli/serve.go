package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/dynaprice/dynaprice/internal/catalog"
	"github.com/dynaprice/dynaprice/internal/dashboard"
	"github.com/dynaprice/dynaprice/internal/engine"
	"github.com/dynaprice/dynaprice/internal/health"
	"github.com/dynaprice/dynaprice/internal/httpapi"
	"github.com/dynaprice/dynaprice/internal/ingest"
	"github.com/dynaprice/dynaprice/internal/live"
	"github.com/dynaprice/dynaprice/internal/loadgen"
	"github.com/dynaprice/dynaprice/internal/pricing"
	"github.com/dynaprice/dynaprice/internal/sqlite"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// ServeOptions are the settings of `dynaprice serve`, one per flag.
type ServeOptions struct {
	HTTPOptions
	PricingOptions
	DedupOptions
	HistoryOptions
	LogOptions
	DataDir     string
	CatalogFile string
	Demo        bool
	DemoRate    float64
	Sync        string
	DebugAddr   string
	// Listener, when set, is used instead of listening on Addr (tests pass
	// one bound to port 0).
	Listener net.Listener
}

func parseServe(args []string, getenv Env, stderr io.Writer) (ServeOptions, error) {
	o := ServeOptions{}
	fs := flag.NewFlagSet("dynaprice serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	o.HTTPOptions.register(fs, getenv, "drain, HTTP, the engine's last commit and closing the store", "127.0.0.1")
	fs.StringVar(&o.DataDir, "data", "./dynaprice-data", "data directory (created if missing)")
	fs.StringVar(&o.CatalogFile, "catalog", "", "catalog JSON file to import or update products from")
	fs.BoolVar(&o.Demo, "demo", false, "generate demo traffic in-process; an empty store gets the demo catalog with a mix of strategies (thompson, decay, seed) and --half-life defaults to 5m")
	fs.Float64Var(&o.DemoRate, "demo-rate", 20, "demo events per second")
	o.PricingOptions.register(fs, getenv, "create unknown products from an event's price instead of rejecting the event")
	fs.StringVar(&o.Sync, "sync", "full", "SQLite durability: full (fsync every commit) or normal (survives process crashes, not power loss)")
	o.DedupOptions.register(fs, "")
	o.HistoryOptions.register(fs, getenv)
	o.LogOptions.register(fs, getenv)
	fs.StringVar(&o.DebugAddr, "debug-addr", "", "if set, serve Go's pprof profiles on this separate address (e.g. 127.0.0.1:6060); keep it private")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage: dynaprice serve [flags]

Runs the whole pricing system in one process: HTTP API and WebSocket on
--addr, an embedded SQLite store in --data, the in-memory live price view.
With an empty data directory and no --catalog, the demo catalog (PA..PJ) is
loaded.

Environment: API_PORT, ADMIN_API_KEY (if unset a key is generated and printed
once), API_KEY_HEADER, DYNAPRICE_API_KEYS, DYNAPRICE_WS_ORIGINS,
DYNAPRICE_HISTORY_RAW, DYNAPRICE_HISTORY_HOURLY, DYNAPRICE_LOG_LEVEL,
DYNAPRICE_LOG_FORMAT. A flag beats its environment variable.

Flags:
`)
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args, stderr); err != nil {
		return o, err
	}
	if o.Demo && !flagGiven(fs, "half-life") {
		// Demand that halves in an hour hardly falls while someone
		// watches: the demo's decay prices follow its shoppers in minutes.
		o.HalfLife = demoHalfLife
	}
	return o, nil
}

// demoHalfLife is the decay strategy's half-life under --demo, unless
// --half-life says otherwise.
const demoHalfLife = 5 * time.Minute

// flagGiven reports whether the command line set the flag name.
func flagGiven(fs *flag.FlagSet, name string) bool {
	given := false
	fs.Visit(func(f *flag.Flag) { given = given || f.Name == name })
	return given
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func runServe(ctx context.Context, args []string, getenv Env, stdout, stderr io.Writer) error {
	o, err := parseServe(args, getenv, stderr)
	if err != nil {
		return err
	}
	log, err := newLogger(stderr, o.LogLevel, o.LogFormat)
	if err != nil {
		return err
	}
	return Serve(ctx, o, log, stdout)
}

// Serve runs the all-in-one server until ctx ends, then shuts down in order:
// report not ready and keep serving for o.Drain, stop taking requests and
// finish those in flight, commit accepted work, close WebSockets, close the
// store, all within o.ShutdownTimeout of ctx's end.
//
// The listener opens before anything is loaded: while the store opens and
// the engine loads its state, /healthz answers 200 and everything else 503
// (httpapi.Gate), so probes see a live process that is not ready rather
// than a refused connection.
func Serve(ctx context.Context, o ServeOptions, log *slog.Logger, stdout io.Writer) error {
	return runRole(ctx, log, &serveRole{o: o, log: log, stdout: stdout})
}

// serveRole is `dynaprice serve`: the embedded writer over SQLite, the live
// view and its WebSocket hub, the API and the dashboard in one process.
type serveRole struct {
	o      ServeOptions
	log    *slog.Logger
	stdout io.Writer

	web        *listener
	store      *sqlite.Store
	hub        *live.Hub
	eng        *engine.Writer
	stopDebug  func()
	stopEngine context.CancelFunc
	engErr     chan error
	stopDemo   context.CancelFunc
	demoDone   chan struct{}
	ready      health.Readiness
	serving    atomic.Bool

	// Set by Check for Open.
	pc        pricing.Config
	retention engine.HistoryRetention
	keys      []httpapi.Key
	generated bool
	cat       *catalog.File
	// Set by Run for Close.
	signalled, engStopped bool
}

// Check validates the options and reads the catalog file.
func (r *serveRole) Check() (err error) {
	if r.pc, err = r.o.PricingOptions.config(); err != nil {
		return err
	}
	if r.retention, err = r.o.HistoryOptions.retention(); err != nil {
		return err
	}
	if err := checkShutdown(r.o.ShutdownTimeout, r.o.Drain); err != nil {
		return err
	}
	if r.keys, r.generated, err = apiKeys(&r.o.AdminKey, r.o.APIKeys, r.o.ShortKeys); err != nil {
		return err
	}
	r.cat, err = catalog.ReadFile(r.o.CatalogFile)
	return err
}

// Open starts everything and returns once the API serves.
func (r *serveRole) Open(ctx context.Context) (err error) {
	o, log, pc, keys, generated, cat := r.o, r.log, r.pc, r.keys, r.generated, r.cat
	if r.web, err = listen(o.Addr, o.Listener, o.MaxConns, log); err != nil {
		return err
	}
	log.Info("listening; loading state", "addr", r.web.Addr().String())
	created, err := openDataDir(o.DataDir)
	if err != nil {
		return err
	}
	defer func() {
		// A start that fails leaves nothing behind that it created.
		if err != nil && created {
			_ = os.RemoveAll(o.DataDir)
		}
	}()
	path := filepath.Join(o.DataDir, "dynaprice.db")
	if r.store, err = sqlite.Open(ctx, sqlite.Config{Path: path, Synchronous: o.Sync, Logger: log}); err != nil {
		return fmt.Errorf("opening the store %s: %w", path, err)
	}

	reg := newRegistry()
	view := live.New(live.HubConfig{OriginPatterns: splitList(o.WSOrigins), OriginSetting: wsOriginSetting, MaxClients: o.MaxWSClients, Logger: log, Registerer: reg})
	r.hub = view.Hub()
	ecfg := engine.DefaultConfig()
	ecfg.Pricing = pc
	ecfg.AutoCreate, ecfg.BaseFromEvents, ecfg.DedupWindow, ecfg.DedupMax = o.AutoCreate, o.BaseFromEvents, o.DedupWindow, o.DedupMax
	ecfg.Retention = r.retention
	ecfg.Logger, ecfg.Metrics = log, engine.NewMetrics(reg, "serve")
	if r.eng, err = engine.NewWriter(ecfg, r.store, view); err != nil {
		return err
	}
	r.ready.Require(r.serving.Load)
	r.ready.RequireWhy(func() string {
		if r.eng.Stalled() {
			return "commits to the store keep failing"
		}
		return ""
	})
	api, err := httpapi.New(httpapi.Config{
		KeyHeader: o.KeyHeader, Keys: keys, MaxEventsBody: o.MaxBody, MaxBody: 64 << 10, BodyTimeout: o.BodyTimeout,
		KeyRate: o.KeyRate, KeyBurst: o.KeyBurst, AuthFailRate: o.AuthFailRate, AuthFailBurst: o.AuthFailBurst,
		RequestTimeout: 30 * time.Second, Logger: log, Registerer: reg,
	}, httpapi.Deps{
		Engine: r.eng, Prices: live.Prices{V: view}, Archive: r.store,
		Analytics: engine.Analyst{Store: r.store, Open: r.eng.OpenTallies}, Currency: r.eng.Currency,
		Decoder:   &ingest.Decoder{Now: time.Now, MaxEvents: o.MaxEvents},
		WebSocket: r.hub, Metrics: promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}),
		Ready: r.ready.Why, UI: dashboard.Handler(), Experiments: r.eng,
	})
	if err != nil {
		return err
	}
	// Before the engine starts, so that failing needs no engine cleanup.
	if o.DebugAddr != "" {
		if r.stopDebug, err = serveDebug(o.DebugAddr, log); err != nil {
			return err
		}
	}

	var engCtx context.Context
	engCtx, r.stopEngine = context.WithCancel(context.WithoutCancel(ctx))
	r.engErr = make(chan error, 1)
	go func() { r.engErr <- r.eng.Run(engCtx) }()
	select {
	case <-r.eng.Ready():
	case err := <-r.engErr:
		r.engStopped = true
		return err
	}
	empty := catalog.Demo()
	if o.Demo {
		empty = catalog.DemoMix()
	}
	if err := catalog.ImportOr(ctx, r.eng, cat, empty, log); err != nil {
		return err
	}
	r.web.Open(api)
	r.serving.Store(ctx.Err() == nil)

	url := "http://" + displayAddr(r.web.Addr())
	fmt.Fprintf(r.stdout, "dynaprice %s serving on %s\n", Version, url)
	fmt.Fprintf(r.stdout, "  prices:    %s/prices    live: %s/ws/prices    metrics: %s/metrics\n", url, strings.Replace(url, "http", "ws", 1), url)
	fmt.Fprintf(r.stdout, "  data:      %s\n", o.DataDir)
	if generated {
		fmt.Fprintf(r.stdout, "  admin key: %s   (generated for this run; set ADMIN_API_KEY to choose one)\n", o.AdminKey)
	}
	r.demoDone = make(chan struct{})
	var demoCtx context.Context
	demoCtx, r.stopDemo = context.WithCancel(ctx)
	if o.Demo {
		go func() {
			defer close(r.demoDone)
			runDemo(demoCtx, r.eng, view, o.DemoRate, log)
		}()
		fmt.Fprintf(r.stdout, "  demo:      generating %.0f events/s\n", o.DemoRate)
	} else {
		close(r.demoDone)
	}
	return nil
}

// Run waits for ctx to end, or for the engine or the HTTP server to fail.
func (r *serveRole) Run(ctx context.Context) error {
	select {
	case <-ctx.Done():
		r.signalled = true
		return nil
	case err := <-r.engErr:
		r.engStopped = true
		r.log.Error("engine stopped", "err", err)
		return err
	case err := <-r.web.Err():
		r.log.Error("http server stopped", "err", err)
		return err
	}
}

// Close shuts down what Open started, in order, within the shutdown
// deadline: after a failed Open it only releases what was opened.
func (r *serveRole) Close() error {
	if r.stopDemo == nil { // Open did not finish
		r.closeStarted()
		return nil
	}
	log := r.log
	sd := beginShutdown(context.Background(), r.o.ShutdownTimeout, log)
	defer sd.end()
	wasReady := r.ready.Ready()
	r.ready.Stop()
	r.stopDemo()
	sd.wait(r.demoDone, "demo traffic did not stop")
	if r.signalled && wasReady {
		sd.drain(r.o.Drain)
	}
	log.Info("shutting down: closing the listener and WebSockets, finishing requests in flight")
	// Close WebSockets and stop HTTP together; a stuck WebSocket peer must
	// not hold the process beyond the shutdown deadline.
	waitHub := sd.closeHub(r.hub)
	sd.closeHTTP(r.web)
	r.stopEngine()
	var err error
	if !r.engStopped {
		r.engStopped = sd.waitErr(r.engErr, &err, "the engine had not committed all queued work; what it had not committed was not acknowledged either")
	}
	waitHub()
	r.closeDebug()
	// Closing the store under a running engine would wait for its commit;
	// then the process exit releases the file, and SQLite's write-ahead log
	// keeps every commit that completed.
	if r.engStopped {
		var cerr error
		if sd.run("the store did not close in time; completed commits are safe in its write-ahead log", func() { cerr = r.store.Close() }) && cerr != nil {
			log.Warn("closing the store", "err", cerr)
		}
	} else {
		log.Warn("leaving the store for the process exit to close, because the engine is still running")
	}
	return err
}

// closeStarted releases what a failed Open had started.
func (r *serveRole) closeStarted() {
	if r.stopEngine != nil {
		r.stopEngine()
		if !r.engStopped {
			<-r.engErr
		}
	}
	r.closeDebug()
	if r.web != nil {
		r.web.Close()
	}
	if r.store != nil {
		r.store.Close()
	}
}

func (r *serveRole) closeDebug() {
	if r.stopDebug != nil {
		r.stopDebug()
	}
}

func displayAddr(a net.Addr) string {
	host, port, _ := net.SplitHostPort(a.String())
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "localhost"
	}
	return net.JoinHostPort(host, port)
}

func runDemo(ctx context.Context, eng *engine.Writer, view *live.View, rate float64, log *slog.Logger) {
	ps, err := eng.Products(ctx)
	if err != nil {
		return
	}
	prods := make([]pricing.Product, len(ps))
	for i, p := range ps {
		prods[i] = p.Product
	}
	err = loadgen.Demo(ctx, loadgen.DemoConfig{Rate: rate, Products: prods,
		Submit: func(ctx context.Context, evs []ingest.Event) error {
			_, err := eng.Submit(ctx, evs)
			return err
		},
		Rand: mrand.New(mrand.NewPCG(uint64(time.Now().UnixNano()), 1)), Now: time.Now,
		Shown: func(id string) (float64, bool) {
			p, ok := view.Get(id)
			return p.Price, ok
		}})
	if err != nil {
		log.Error("demo traffic stopped", "err", err)
	}
}

// serveDebug serves net/http/pprof on its own listener, so profiles are
// never reachable through the public API port.
func serveDebug(addr string, log *slog.Logger) (func(), error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("debug listener: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Warn("debug server", "err", err)
		}
	}()
	log.Info("pprof profiles", "addr", ln.Addr().String())
	return func() { _ = srv.Close() }, nil
}

// openDataDir makes sure dir exists and is writable, creating it if it is
// missing (created says so). SQLite's own error for a directory it cannot
// write names neither the path nor the cause ("unable to open database
// file"), so the directory is checked first.
func openDataDir(dir string) (created bool, err error) {
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		created = true
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return false, fmt.Errorf("data directory (--data): %w", err)
	}
	f, err := os.CreateTemp(dir, ".write-check-*")
	if err != nil {
		if created {
			_ = os.RemoveAll(dir)
		}
		return false, fmt.Errorf("data directory (--data) %s is not writable: %w", dir, err)
	}
	_ = f.Close()
	_ = os.Remove(f.Name())
	return created, nil
}

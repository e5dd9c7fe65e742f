// Package httpapi is dynaprice's HTTP API: the original system's paths and
// JSON shapes (GET /price/{id}, POST /override, DELETE /override/{id},
// GET /history/{id}, GET /ws/prices) plus event ingestion, the catalog,
// explanations, health and metrics.
//
// Everything it needs comes through small interfaces declared here, so the
// same handlers serve the all-in-one `serve` role and, later, stateless API
// replicas in front of Kafka and Redis.
package httpapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dynaprice/dynaprice/internal/engine"
	"github.com/dynaprice/dynaprice/internal/httperror"
	"github.com/dynaprice/dynaprice/internal/ingest"
	"github.com/dynaprice/dynaprice/internal/live"
	"github.com/dynaprice/dynaprice/internal/pricing"
	"github.com/prometheus/client_golang/prometheus"
)

// Engine is the part of the pricing engine the API drives.
type Engine interface {
	Submit(ctx context.Context, events []ingest.Event) (engine.SubmitResult, error)
	SetOverride(ctx context.Context, in engine.OverrideInput) error
	ClearOverride(ctx context.Context, productID, by string) error
	Release(ctx context.Context, productID, by string) error
	UpsertProduct(ctx context.Context, p pricing.Product) (created bool, err error)
	Products(ctx context.Context) ([]engine.ProductInfo, error)
	Explain(ctx context.Context, productID string) (pricing.Explanation, error)
}

// Prices is the live price view: in memory for serve, Redis for API
// replicas (hence the context and the error).
type Prices interface {
	// Price returns the JSON of one product's price; ok is false for an
	// unknown product.
	Price(ctx context.Context, id string) (body []byte, ok bool, err error)
	// AppendPage appends the JSON of a page of the listing, in catalog
	// order (see live.Pager); an After it does not know is
	// live.ErrUnknownCursor.
	AppendPage(ctx context.Context, dst []byte, p live.Page) (out []byte, n int, next string, err error)
}

// Archive answers questions about the past.
type Archive interface {
	// HistoryPage returns a product's newest price changes (at most limit)
	// and, older than those, the hourly summaries of the changes no longer
	// kept one by one (at most hourly; hourly < 0: as many as limit
	// leaves), newest first.
	HistoryPage(ctx context.Context, productID string, limit, hourly int) (engine.HistoryPage, error)
	OverrideAudit(ctx context.Context, productID string, limit int) ([]engine.OverrideRecord, error)
}

// Config configures the API.
type Config struct {
	// KeyHeader is the header carrying the API key (the original's
	// API_KEY_HEADER, default X-API-Key).
	KeyHeader string
	Keys      []Key
	// MaxEventsBody limits POST /events bodies; MaxBody all other bodies.
	MaxEventsBody int64
	MaxBody       int64
	// MaxErrors bounds the rejected events described one by one in a POST
	// /events answer (0: DefaultMaxErrors); the rest are only counted, so
	// a body of junk cannot make an answer many times its own size.
	MaxErrors int
	// KeyRate and KeyBurst limit the requests of each API key (token
	// bucket: KeyRate a second, KeyBurst at once); 0 means no limit.
	KeyRate  float64
	KeyBurst int
	// AuthFailRate and AuthFailBurst limit the failed authentications of
	// each client address; past them, every request of that address that
	// needs a key gets 429 until the bucket refills. 0 means no limit.
	AuthFailRate  float64
	AuthFailBurst int
	// BodyTimeout bounds the reading of a request body (0: 30s): a client
	// that sends its body slowly must not hold a connection for ever.
	BodyTimeout time.Duration
	// RequestTimeout bounds how long a request may wait for the engine.
	RequestTimeout time.Duration
	// Now is the clock of the answers that depend on the time (the
	// default range of GET /analytics); nil: time.Now.
	Now        func() time.Time
	Logger     *slog.Logger
	Registerer prometheus.Registerer
}

// DefaultMaxErrors is how many rejected events a POST /events answer
// describes unless Config.MaxErrors says otherwise.
const DefaultMaxErrors = 100

// Default rate limits: an API key may make 2,000 requests a second (a
// shop's ingest posting 5,000-event batches makes a few dozen); an address
// may fail to authenticate 5 times a second after a burst of 20, which
// makes guessing a 16-byte key hopeless and is far above any honest typo.
const (
	DefaultKeyRate      = 2000
	DefaultAuthFailRate = 5
)

// maxLimitedClients bounds the clients each limiter tracks.
const maxLimitedClients = 100_000

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{KeyHeader: "X-API-Key", MaxEventsBody: 16 << 20, MaxBody: 64 << 10,
		KeyRate: DefaultKeyRate, KeyBurst: 2 * DefaultKeyRate, AuthFailRate: DefaultAuthFailRate, AuthFailBurst: 20,
		RequestTimeout: 30 * time.Second, Logger: slog.Default()}
}

// Validate reports configuration errors.
func (c Config) Validate() error {
	switch {
	case c.KeyHeader == "":
		return errors.New("httpapi: key header must not be empty")
	case len(c.Keys) == 0:
		return errors.New("httpapi: at least one API key is required")
	case c.MaxEventsBody < 1 || c.MaxBody < 1:
		return errors.New("httpapi: body limits must be > 0")
	case c.RequestTimeout <= 0:
		return errors.New("httpapi: request timeout must be > 0")
	case c.Logger == nil:
		return errors.New("httpapi: logger is required")
	}
	names := map[string]bool{}
	for _, k := range c.Keys {
		if names[k.Name] {
			return fmt.Errorf("httpapi: duplicate API key name %q", k.Name)
		}
		names[k.Name] = true
	}
	return nil
}

// Deps are the components the API serves from.
type Deps struct {
	Engine  Engine
	Prices  Prices
	Archive Archive
	// Analytics serves GET /analytics; nil answers 501.
	Analytics Analytics
	// Currency returns the catalog's currency (ISO 4217), shown with
	// every price; nil: DefaultCurrency.
	Currency func() string
	Decoder  *ingest.Decoder
	// WebSocket serves GET /ws/prices.
	WebSocket http.Handler
	// Metrics serves GET /metrics.
	Metrics http.Handler
	// UI, when set, serves everything not matched by an API route.
	UI http.Handler
	// Ready reports readiness for GET /readyz: "" when ready, else why
	// not (health.Readiness.Why).
	Ready func() string
	// Experiments, when set, serves the price experiment routes and
	// prices GET /price/{id}?shopper= by the shopper's arm.
	Experiments Experiments
}

// API is the HTTP handler. Build it with New.
type API struct {
	cfg  Config
	deps Deps
	keys *keyring
	// perKey limits each API key's requests; authFails each address's
	// failed authentications.
	perKey, authFails *limiter
	mux               *http.ServeMux
	metrics           *httpMetrics
	// patterns are the "METHOD /path" patterns of the API routes, in the
	// order routes registers them.
	patterns []string
	// pages holds the buffers of GET /prices pages (*[]byte), so that a
	// client paging through a large catalog reuses one instead of leaving
	// a page of garbage per request.
	pages sync.Pool
	// curField is the currency field GET /price adds (writePrice).
	curField atomic.Pointer[currencyField]
}

// New returns the API handler.
func New(cfg Config, deps Deps) (*API, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	a := &API{cfg: cfg, deps: deps, keys: newKeyring(cfg.Keys), mux: http.NewServeMux(), metrics: newHTTPMetrics(cfg.Registerer),
		perKey:    newLimiter(cfg.KeyRate, cfg.KeyBurst, maxLimitedClients),
		authFails: newLimiter(cfg.AuthFailRate, cfg.AuthFailBurst, maxLimitedClients)}
	a.routes()
	return a, nil
}

// ServeHTTP implements http.Handler.
//
// A path that is not clean ("//", "/./", "/../") is redirected to its clean
// form as the mux would, but with a JSON body like every other answer (the
// mux writes HTML).
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if p := r.URL.Path; p != "" && p[0] == '/' {
		if clean := cleanPath(p); clean != p {
			u := *r.URL
			u.Path, u.RawPath = clean, ""
			w.Header().Set("Location", u.RequestURI())
			httperror.Write(w, http.StatusMovedPermanently, "moved permanently to "+clean)
			return
		}
	}
	a.mux.ServeHTTP(w, r)
}

// cleanPath is path.Clean keeping a trailing slash, as net/http does.
func cleanPath(p string) string {
	c := path.Clean(p)
	if strings.HasSuffix(p, "/") && c != "/" {
		c += "/"
	}
	return c
}

// now is the API's clock.
func (a *API) now() time.Time {
	if a.cfg.Now != nil {
		return a.cfg.Now()
	}
	return time.Now()
}

// currency is the catalog's currency code.
func (a *API) currency() string {
	if a.deps.Currency != nil {
		if c := a.deps.Currency(); c != "" {
			return c
		}
	}
	return pricing.DefaultCurrency
}

// Routes returns the "METHOD /path" patterns of the API's routes, as
// registered with its mux: the route table, plus GET /ws/prices and
// GET /metrics when those are served. The 405 and 404 fallbacks are not
// routes. docs/openapi.json is held to this list by the package's tests.
func (a *API) Routes() []string { return slices.Clone(a.patterns) }

type route struct {
	method, path, name string
	perm               permission // 0 = public
	h                  func(w http.ResponseWriter, r *http.Request, k Key) error
}

func (a *API) routes() {
	rs := []route{
		{"GET", "/healthz", "healthz", 0, a.healthz},
		{"GET", "/readyz", "readyz", 0, a.readyz},
		{"GET", "/price/{id}", "price", 0, a.getPrice},
		{"GET", "/prices", "prices", 0, a.getPrices},
		{"POST", "/events", "events", permIngest, a.postEvents},
		{"POST", "/override", "override_set", permOverride, a.postOverride},
		{"DELETE", "/override/{id}", "override_delete", permOverride, a.deleteOverride},
		{"POST", "/release/{id}", "release", permOverride, a.postRelease},
		{"GET", "/overrides/{id}", "override_audit", permRead, a.getOverrideAudit},
		{"GET", "/history/{id}", "history", permRead, a.getHistory},
		{"GET", "/products", "products", permRead, a.getProducts},
		{"GET", "/analytics", "analytics", permRead, a.getAnalytics},
		{"PUT", "/products/{id}", "product_put", permAdmin, a.putProduct},
	}
	if a.deps.Experiments != nil {
		rs = append(rs,
			route{"POST", "/experiments", "experiment_create", permOverride, a.postExperiment},
			route{"GET", "/experiments", "experiments", permRead, a.getExperiments},
			route{"GET", "/experiments/{id}", "experiment", permRead, a.getExperiment},
			route{"POST", "/experiments/{id}/stop", "experiment_stop", permOverride, a.postExperimentStop},
			route{"POST", "/experiments/{id}/promote", "experiment_promote", permOverride, a.postExperimentPromote})
	}
	handle := func(pattern string, h http.Handler) {
		a.mux.Handle(pattern, h)
		a.patterns = append(a.patterns, pattern)
	}
	allowed := map[string][]string{}
	for _, rt := range rs {
		handle(rt.method+" "+rt.path, a.wrap(rt))
		allowed[rt.path] = append(allowed[rt.path], rt.method)
	}
	if a.deps.WebSocket != nil {
		handle("GET /ws/prices", a.deps.WebSocket)
		allowed["/ws/prices"] = []string{"GET"}
	}
	if a.deps.Metrics != nil {
		handle("GET /metrics", a.deps.Metrics)
		allowed["/metrics"] = []string{"GET"}
	}
	// Any other method on a known path: 405 with JSON, not the mux's text.
	for path, methods := range allowed {
		allow := methods[0]
		for _, m := range methods[1:] {
			allow += ", " + m
		}
		if slices.Contains(methods, "GET") {
			allow += ", HEAD"
		}
		a.mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Allow", allow)
			httperror.Write(w, http.StatusMethodNotAllowed, "method "+r.Method+" not allowed; allowed: "+allow)
		})
	}
	// Unknown paths: the UI answers GET and HEAD when there is one (a "GET /"
	// pattern would conflict with the method-less 405 patterns above).
	a.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if a.deps.UI != nil && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
			a.deps.UI.ServeHTTP(w, r)
			return
		}
		httperror.Write(w, http.StatusNotFound, "no such endpoint: "+r.URL.Path)
	})
}

// wrap adds, around every API route: authentication and authorisation,
// panic recovery, error mapping and metrics.
func (a *API) wrap(rt route) http.Handler {
	obs := a.metrics.forRoute(rt.name)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := statusWriter{ResponseWriter: w}
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				a.cfg.Logger.Error("panic in handler", "route", rt.name, "panic", p, "stack", string(debug.Stack()))
				if sw.status == 0 {
					httperror.Write(&sw, http.StatusInternalServerError, "internal error")
				}
			}
			obs.observe(sw.status, time.Since(start))
		}()
		var key Key
		if rt.perm != 0 {
			k, err := a.authorize(r, rt.perm)
			if err != nil {
				status, msg := statusOf(err)
				setRetryAfter(&sw, err)
				httperror.Write(&sw, status, msg)
				return
			}
			key = k
		}
		if err := rt.h(&sw, r, key); err != nil {
			status, msg := statusOf(err)
			if status >= 500 {
				a.cfg.Logger.Error("request failed", "route", rt.name, "status", status, "err", err)
			}
			if sw.status == 0 {
				httperror.Write(&sw, status, msg)
			}
		}
	})
}

// authorize finds the request's API key and checks that its role grants
// perm: 401 without a key or with an unknown one, 403 for the wrong role.
//
// An address that failed too often (Config.AuthFailRate) gets 429 before
// its key is even looked at, and a key past its rate (Config.KeyRate) gets
// 429 too, both with Retry-After. Failures are logged with the address,
// never the presented secret, and only while the address is within its
// budget, so a flood of guesses cannot flood the log.
func (a *API) authorize(r *http.Request, perm permission) (Key, error) {
	now := time.Now()
	addr := clientAddr(r)
	if ok, wait := a.authFails.peek(addr, now); !ok {
		return Key{}, tooMany(wait, "too many failed authentications from this address; retry later")
	}
	presented := r.Header.Get(a.cfg.KeyHeader)
	k, ok := Key{}, false
	if presented != "" {
		k, ok = a.keys.lookup(presented)
	}
	if !ok {
		why := "missing API key (header " + a.cfg.KeyHeader + ")"
		if presented != "" {
			why = "invalid API key"
		}
		if within, _ := a.authFails.take(addr, now); within {
			a.cfg.Logger.Warn("authentication failed", "addr", addr, "reason", why, "path", r.URL.Path)
		} else if ok, _ := a.authFails.peek(addr, now); !ok {
			a.cfg.Logger.Warn("too many failed authentications; refusing the address for a while", "addr", addr)
		}
		return Key{}, errStatus(http.StatusUnauthorized, why)
	}
	if ok, wait := a.perKey.take(k.Name, now); !ok {
		return Key{}, tooMany(wait, "API key "+strconv.Quote(k.Name)+" is over its request rate; retry later")
	}
	if !k.Role.can(perm) {
		return Key{}, errStatus(http.StatusForbidden, "API key "+strconv.Quote(k.Name)+" (role "+k.Role.String()+") may not do this")
	}
	return k, nil
}

// clientAddr is the address a request came from (without the port).
func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// statusWriter remembers the status for metrics and to avoid writing an
// error after a response has started.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (s *statusWriter) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

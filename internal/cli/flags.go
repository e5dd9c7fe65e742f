package cli

import (
	"errors"
	"flag"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/dynaprice/dynaprice/internal/engine"
	"github.com/dynaprice/dynaprice/internal/httpapi"
	"github.com/dynaprice/dynaprice/internal/pricing"
)

// The flags several roles share, each registered by one function so that
// every role spells, defaults and documents them the same way, and every
// one reads the same environment variables.

// LogOptions are --log-level and --log-format (every role).
type LogOptions struct {
	LogLevel  string
	LogFormat string
}

func (o *LogOptions) register(fs *flag.FlagSet, getenv Env) {
	fs.StringVar(&o.LogLevel, "log-level", envOr(getenv, "DYNAPRICE_LOG_LEVEL", "info"), "log level: debug, info, warn, error (env DYNAPRICE_LOG_LEVEL)")
	fs.StringVar(&o.LogFormat, "log-format", envOr(getenv, "DYNAPRICE_LOG_FORMAT", "text"), "log format: text or json (env DYNAPRICE_LOG_FORMAT)")
}

// HTTPOptions are the settings of the roles that serve the API (serve,
// api): where to listen, who may call, and how they shut down.
type HTTPOptions struct {
	Addr            string
	AdminKey        string
	APIKeys         string
	KeyHeader       string
	WSOrigins       string
	MaxBody         int64
	MaxEvents       int
	MaxConns        int
	BodyTimeout     time.Duration
	KeyRate         float64
	KeyBurst        int
	AuthFailRate    float64
	AuthFailBurst   int
	MaxWSClients    int
	ShortKeys       bool
	ShutdownTimeout time.Duration
	Drain           time.Duration
}

// wsOriginSetting is how a refused WebSocket origin is told to allow
// itself: the environment variable, as the original's dashboard is set up
// (--ws-origins works too).
const wsOriginSetting = "DYNAPRICE_WS_ORIGINS"

// register registers the flags; covers says what --shutdown-timeout
// covers, and host is the interface to listen on by default (port 8080):
// "" for every interface.
func (o *HTTPOptions) register(fs *flag.FlagSet, getenv Env, covers, host string) {
	addr, where := host+":8080", "every interface"
	if host != "" {
		where = host + " only"
	}
	if p := getenv("API_PORT"); p != "" {
		// The original's variable, which it used as ":" + port.
		addr, where = ":"+p, "every interface"
	}
	fs.StringVar(&o.Addr, "addr", addr, "listen address HOST:PORT; the default listens on "+where+" (env API_PORT=N listens on :N, every interface; --addr :8080 for every interface)")
	fs.StringVar(&o.APIKeys, "api-keys", getenv("DYNAPRICE_API_KEYS"), "extra API keys as name:role:secret[,...]; roles viewer, operator, ingest, admin (env DYNAPRICE_API_KEYS)")
	fs.StringVar(&o.KeyHeader, "key-header", envOr(getenv, "API_KEY_HEADER", "X-API-Key"), "header carrying the API key (env API_KEY_HEADER)")
	fs.StringVar(&o.WSOrigins, "ws-origins", getenv("DYNAPRICE_WS_ORIGINS"), "extra allowed WebSocket origin host patterns, comma separated (same-origin is always allowed; env DYNAPRICE_WS_ORIGINS)")
	fs.Int64Var(&o.MaxBody, "max-body", 16<<20, "largest POST /events body in bytes")
	fs.Float64Var(&o.KeyRate, "key-rate", httpapi.DefaultKeyRate, "requests a second each API key may make (token bucket; more get 429 with Retry-After); 0: no limit")
	fs.IntVar(&o.KeyBurst, "key-burst", 2*httpapi.DefaultKeyRate, "requests an API key may make at once before --key-rate applies")
	fs.Float64Var(&o.AuthFailRate, "auth-fail-rate", httpapi.DefaultAuthFailRate, "failed authentications a second a client address may make; past them its keyed requests get 429 for a while; 0: no limit")
	fs.IntVar(&o.AuthFailBurst, "auth-fail-burst", 20, "failed authentications an address may make at once before --auth-fail-rate applies")
	fs.DurationVar(&o.BodyTimeout, "body-timeout", 30*time.Second, "longest a client may take to send a request body")
	fs.IntVar(&o.MaxConns, "max-conns", 10_000, "most client connections open at once (WebSockets included); more wait until one closes; 0: no limit")
	fs.IntVar(&o.MaxWSClients, "max-ws-clients", 5_000, "most WebSocket clients at once; more get 503; 0: no limit")
	fs.IntVar(&o.MaxEvents, "max-events", 100_000, "most events in one POST /events body, valid or not (more: 413)")
	fs.BoolVar(&o.ShortKeys, "insecure-short-keys", getenv("DYNAPRICE_INSECURE_SHORT_KEYS") == "1", "accept API keys shorter than 16 bytes (test setups only; env DYNAPRICE_INSECURE_SHORT_KEYS=1)")
	addShutdownFlags(fs, &o.ShutdownTimeout, &o.Drain, covers)
	o.AdminKey = getenv("ADMIN_API_KEY")
}

// PricingOptions are the pricing settings engines use, and API replicas
// need to validate and explain as engines do.
type PricingOptions struct {
	AutoCreate     bool
	BaseFromEvents bool
	HalfLife       time.Duration
	Weights        string
	// The catalog defaults of the products' limits (pricing.Limits).
	MaxQuantity int
	MaxMovePct  float64
	MoveWindow  time.Duration
}

func (o *PricingOptions) register(fs *flag.FlagSet, getenv Env, autoCreateHelp string) {
	fs.BoolVar(&o.AutoCreate, "auto-create", envBool(getenv, "DYNAPRICE_AUTO_CREATE"), autoCreateHelp+" (env DYNAPRICE_AUTO_CREATE=1)")
	fs.BoolVar(&o.BaseFromEvents, "base-from-events", envBool(getenv, "DYNAPRICE_BASE_FROM_EVENTS"),
		"the original system's pricing, for a team moving over: the price a view, cart or purchase carries becomes its product's base price, and unknown products are created from it; any ingest client then sets base prices (docs/MIGRATING.md; env DYNAPRICE_BASE_FROM_EVENTS=1; give it to engines and API replicas alike)")
	fs.DurationVar(&o.HalfLife, "half-life", time.Hour, "half-life of demand for the decay strategy")
	fs.StringVar(&o.Weights, "weights", "view=1,cart=3,purchase=5", "demand weight per event type")
	fs.IntVar(&o.MaxQuantity, "max-quantity", pricing.DefaultMaxQuantity,
		"catalog default of the largest quantity one view, cart or purchase may carry (a product's max_quantity beats it; at most 10000)")
	fs.Float64Var(&o.MaxMovePct, "max-move-pct", 0,
		"catalog default of the price-velocity breaker: hold a product whose price would move more than this many percent within --move-window (0: off; a product's max_move_pct beats it)")
	fs.DurationVar(&o.MoveWindow, "move-window", pricing.DefaultMoveWindow, "catalog default of the price-velocity breaker's window")
}

// createsProducts reports whether events may create unknown products.
func (o *PricingOptions) createsProducts() bool { return o.AutoCreate || o.BaseFromEvents }

// envBool reads a boolean environment variable: 1, true, yes or on.
func envBool(getenv Env, name string) bool {
	switch strings.ToLower(strings.TrimSpace(getenv(name))) {
	case "1", "true", "yes", "on":
		return true
	}
	return false
}

// config returns the pricing configuration the options describe.
func (o *PricingOptions) config() (pricing.Config, error) {
	pc, err := pricing.ConfigFrom(o.Weights, o.HalfLife)
	if err != nil {
		return pc, err
	}
	// Zero values (options built in code rather than parsed) mean the
	// flags' defaults, which pc.Limits already holds.
	if o.MaxQuantity < 0 || o.MaxQuantity > pricing.MaxQuantityLimit {
		return pc, fmt.Errorf("--max-quantity must be between 1 and %d", pricing.MaxQuantityLimit)
	}
	if o.MoveWindow < 0 || o.MoveWindow > pricing.MaxMoveWindow {
		return pc, fmt.Errorf("--move-window must be > 0 and at most %s", pricing.MaxMoveWindow)
	}
	if !(o.MaxMovePct >= 0) || o.MaxMovePct > 1e6 {
		return pc, errors.New("--max-move-pct must be between 0 (off) and 1000000")
	}
	pc.Limits = pricing.Limits{MaxQuantity: int32(o.MaxQuantity), MaxMovePct: o.MaxMovePct, MoveWindow: pricing.Duration(o.MoveWindow)}.Or(pc.Limits)
	return pc, nil
}

// DedupOptions bound the event ids remembered to drop retries.
type DedupOptions struct {
	DedupWindow time.Duration
	DedupMax    int
}

// register adds the dedup flags; per says what one cap covers ("" for the
// whole process, " per partition" for an engine).
func (o *DedupOptions) register(fs *flag.FlagSet, per string) {
	fs.DurationVar(&o.DedupWindow, "dedup-window", 24*time.Hour, "how long event ids are remembered for deduplication")
	fs.IntVar(&o.DedupMax, "dedup-max", engine.DefaultDedupMax, "most event ids remembered"+per+
		", a safety limit: memory follows the ids the window holds, 24-48 bytes each (10M: at most ~290 MB). "+
		"10M covers a 24h window at 100 events/s with event_id, the last 2.8h at 1,000/s, the last 17min at 10,000/s "+
		"(older ids are then forgotten early: dynaprice_dedup_evicted_in_window_total)")
}

// HistoryOptions are the price history's retention (serve, engine):
// --history-raw and --history-hourly, or DYNAPRICE_HISTORY_RAW and
// DYNAPRICE_HISTORY_HOURLY.
type HistoryOptions struct {
	HistoryRaw    retentionValue
	HistoryHourly retentionValue
	// envErr is a variable that did not parse, reported by retention
	// unless its flag was given.
	envErr error
}

func (o *HistoryOptions) register(fs *flag.FlagSet, getenv Env) {
	o.HistoryRaw = retentionValue(engine.DefaultHistoryRaw)
	o.HistoryHourly = retentionValue(engine.DefaultHistoryHourly)
	var errs []error
	for _, v := range []struct {
		dst  *retentionValue
		name string
	}{{&o.HistoryRaw, "DYNAPRICE_HISTORY_RAW"}, {&o.HistoryHourly, "DYNAPRICE_HISTORY_HOURLY"}} {
		if s := getenv(v.name); s != "" {
			if err := v.dst.Set(s); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", v.name, err))
			}
		}
	}
	o.envErr = errors.Join(errs...)
	fs.Var(&o.HistoryRaw, "history-raw", "keep every price change this long (e.g. 30d, 720h; at least 30d, the window of the 30-day lowest price; 0: keep every change forever); older ones are rolled into hourly summaries (env DYNAPRICE_HISTORY_RAW)")
	fs.Var(&o.HistoryHourly, "history-hourly", "keep the hourly summaries (open, high, low, close, changes) until they are this old (at least --history-raw; equal to it: no summaries; 0: forever) (env DYNAPRICE_HISTORY_HOURLY)")
}

// retention returns the policy the options describe.
func (o *HistoryOptions) retention() (engine.HistoryRetention, error) {
	if o.envErr != nil {
		return engine.HistoryRetention{}, o.envErr
	}
	r := engine.HistoryRetention{Raw: time.Duration(o.HistoryRaw), Hourly: time.Duration(o.HistoryHourly)}
	if err := r.Validate(); err != nil {
		return r, fmt.Errorf("--history-raw, --history-hourly: %w", err)
	}
	return r, nil
}

// retentionValue is a flag's duration, in days ("30d") or as Go writes
// durations ("720h"); 0 is "forever".
type retentionValue time.Duration

func (v *retentionValue) String() string {
	d := time.Duration(*v)
	switch {
	case d == 0:
		return "0"
	case d%(24*time.Hour) == 0:
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	}
	return d.String()
}

func (v *retentionValue) Set(s string) error {
	s = strings.TrimSpace(s)
	var d time.Duration
	if n, ok := strings.CutSuffix(s, "d"); ok {
		days, err := strconv.ParseFloat(n, 64)
		if err != nil || !(days >= 0 && days <= 100*365) {
			return fmt.Errorf("%q: want a duration such as 30d or 720h, or 0", s)
		}
		d = time.Duration(days * float64(24*time.Hour))
	} else if s == "0" {
		d = 0
	} else {
		var err error
		if d, err = time.ParseDuration(s); err != nil {
			return fmt.Errorf("%q: want a duration such as 30d or 720h, or 0", s)
		}
	}
	if d < 0 {
		return fmt.Errorf("%q: must not be negative", s)
	}
	*v = retentionValue(d)
	return nil
}

// Package redis keeps the live price view in Redis for scale-out mode:
// pricing engines write every committed change here, and stateless API
// replicas answer `GET /price` and `GET /prices` from it.
//
// Reads go through rueidis' client-side cache (RESP3 tracking), so a hot
// `GET /price` is served from the replica's memory and Redis itself tells
// the replica when an engine overwrites the entry. Writes are idempotent:
// every product carries the version the engine assigned, and a Lua script
// drops anything not newer than what is stored, so replays, redelivery and
// several engines racing on one product all converge on the newest version.
//
// Key layout (every key is prefixed by Config.Prefix):
//
//	product:price:<id>        price as a plain decimal string (compatibility)
//	product:demand:<id>       demand as a plain decimal string (compatibility)
//	dynaprice:product:<id>    hash: v, price, demand, source, at, low30, json
//	dynaprice:products        set of every product id
//	dynaprice:products:order  sorted set of every product id, scored by first write
//
// Consistency of cached reads: a Client always sees its own completed
// Writes. Other Clients see them once Redis' invalidation message reaches
// them, normally well under a millisecond after the Write returns: Redis
// queues it while executing the write, but the reader applies it
// asynchronously. CacheTTL bounds staleness should an invalidation be lost.
//
// The two product:* keys are what the original system used and are kept so
// its tools keep working. The sorted set exists because a Redis set has no
// order, and `GET /prices` must list products in the order the in-memory view
// (package live) does: the order in which they were first published.
package redis

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/rueidis"

	"github.com/dynaprice/dynaprice/internal/live"
)

// Config configures a Client.
type Config struct {
	// Addr is host:port, or a redis:// / rediss:// URL when a password, a
	// database number or TLS is needed.
	Addr string
	// Prefix is prepended to every key, so that several deployments (or
	// tests) can share one Redis.
	Prefix string
	// CacheTTL bounds how long a client-side cached entry may be served.
	// Invalidation normally evicts it much sooner; the TTL is the backstop if
	// an invalidation is ever lost (e.g. during a reconnect). Default 1m.
	CacheTTL time.Duration
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Order, when set, sorts the ids of a listing (AppendPage, Changes)
	// in place; without it they come in the order first written.
	Order func(ctx context.Context, ids []string)
}

// Client reads and writes the live price view in Redis. It is safe for
// concurrent use.
type Client struct {
	rc     rueidis.Client
	k      keys
	ttl    time.Duration
	log    *slog.Logger
	script *rueidis.Lua
	sha    string
	order  func(ctx context.Context, ids []string)

	// list is the listing pages are read from; listMu serialises its
	// rebuilding.
	list   atomic.Pointer[listing]
	listMu sync.Mutex
	// sorted holds the sorted copies of the listing (GET /prices?sort=).
	sorted live.Sorter
}

// Open connects to Redis and checks it answers. It fails when Redis is
// unreachable rather than letting the first request find out.
func Open(ctx context.Context, cfg Config) (*Client, error) {
	if cfg.Addr == "" {
		return nil, errors.New("redis: Addr is required")
	}
	if cfg.CacheTTL <= 0 {
		cfg.CacheTTL = time.Minute
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	opt := rueidis.ClientOption{InitAddress: []string{cfg.Addr}}
	if strings.Contains(cfg.Addr, "://") {
		var err error
		if opt, err = rueidis.ParseURL(cfg.Addr); err != nil {
			// A *url.Error repeats the URL, password included.
			if ue := (*url.Error)(nil); errors.As(err, &ue) {
				err = ue.Err
			}
			return nil, fmt.Errorf("redis: invalid address %s: %w", redactAddr(cfg.Addr), err)
		}
	}
	// The write script touches many products' keys and the shared index
	// keys in one call, which Redis Cluster would reject as cross-slot, so
	// only a standalone Redis is supported and rueidis need not probe for a
	// cluster first.
	opt.ForceSingleClient = true
	// One connection, so that the cached reads and the writes of a Client
	// share a stream: rueidis otherwise spreads commands over several
	// connections by key hash and at random, and a Client's cached read could
	// beat the invalidation caused by its own Write (see Write). Cache hits
	// never touch the connection, and misses are pipelined on it.
	opt.PipelineMultiplex = -1
	if dl, ok := ctx.Deadline(); ok {
		if d := time.Until(dl); d > 0 && (opt.Dialer.Timeout == 0 || d < opt.Dialer.Timeout) {
			opt.Dialer.Timeout = d
		}
	}
	rc, err := rueidis.NewClient(opt)
	if err != nil {
		if rc != nil {
			rc.Close()
		}
		return nil, fmt.Errorf("redis: connecting to %s: %w", redactAddr(cfg.Addr), err)
	}
	c := &Client{
		rc: rc, k: newKeys(cfg.Prefix), ttl: cfg.CacheTTL, log: cfg.Logger,
		script: rueidis.NewLuaScript(writeScript), sha: scriptSHA1(writeScript), order: cfg.Order,
	}
	if err := c.Ping(ctx); err != nil {
		rc.Close()
		return nil, fmt.Errorf("redis: connecting to %s: %w", redactAddr(cfg.Addr), err)
	}
	// Loading the script now lets the first Write take one round trip too;
	// Write still falls back if Redis loses it later.
	if err := rc.Do(ctx, rc.B().ScriptLoad().Script(writeScript).Build()).Error(); err != nil {
		rc.Close()
		return nil, fmt.Errorf("redis: loading write script: %w", err)
	}
	return c, nil
}

// redactAddr hides a URL's password in error messages.
func redactAddr(addr string) string {
	i := strings.Index(addr, "://")
	if i < 0 {
		return addr
	}
	rest := addr[i+3:]
	at := strings.LastIndex(rest, "@")
	if at < 0 {
		return addr
	}
	return addr[:i+3] + "***@" + rest[at+1:]
}

// Close releases the connections.
func (c *Client) Close() { c.rc.Close() }

// Ping checks that Redis answers, for readiness probes.
func (c *Client) Ping(ctx context.Context) error {
	if err := c.rc.Do(ctx, c.rc.B().Ping().Build()).Error(); err != nil {
		return fmt.Errorf("redis: ping: %w", err)
	}
	return nil
}

// keys builds the key names; they are computed once per prefix so the hot
// paths only concatenate the product id.
type keys struct {
	price, demand, product string // per-product key prefixes
	products, order        string
}

func newKeys(prefix string) keys {
	return keys{
		price:    prefix + "product:price:",
		demand:   prefix + "product:demand:",
		product:  prefix + "dynaprice:product:",
		products: prefix + "dynaprice:products",
		order:    prefix + "dynaprice:products:order",
	}
}

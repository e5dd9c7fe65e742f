package redis

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"math"
	"strconv"

	"github.com/redis/rueidis"

	"github.com/dynaprice/dynaprice/internal/live"
)

// writeScript applies a chunk of changes atomically, skipping every change
// that is not newer than the stored one. Doing the check in Redis is what
// makes writes idempotent and safe between engines without a lock.
//
// KEYS[1] is the set of product ids and KEYS[2] the sorted set that gives
// their listing order; then come three keys per change: its hash, its
// compatibility price key and its compatibility demand key. ARGV holds nine
// values per change: id, version, price, demand, demand as a whole number
// (for the compatibility key, which the original's tools read with
// strconv.Atoi), source, at, lowest 30-day price and the GET /price body.
//
// Versions travel as decimal strings and are compared by length, then in two
// parts of at most 15 digits: Lua numbers are doubles and would conflate
// versions above 2^53, and comparing the strings directly would depend on
// the server's collation locale. A new product is scored with the size of
// the order set, so listings keep first-publication order like the
// in-memory view.
const writeScript = `
local function newer(v, cur)
  if #v ~= #cur then return #v > #cur end
  local n = #v - 15
  if n > 0 then
    local hv, hc = tonumber(string.sub(v, 1, n)), tonumber(string.sub(cur, 1, n))
    if hv ~= hc then return hv > hc end
    return tonumber(string.sub(v, n + 1)) > tonumber(string.sub(cur, n + 1))
  end
  return tonumber(v) > tonumber(cur)
end
local applied = 0
for i = 0, (#KEYS - 2) / 3 - 1 do
  local h = KEYS[3 + 3 * i]
  local a = 9 * i
  local id, v = ARGV[a + 1], ARGV[a + 2]
  local cur = redis.call('HGET', h, 'v')
  if not cur or newer(v, cur) then
    if not cur then
      redis.call('SADD', KEYS[1], id)
      if not redis.call('ZSCORE', KEYS[2], id) then
        redis.call('ZADD', KEYS[2], redis.call('ZCARD', KEYS[2]), id)
      end
    end
    redis.call('HSET', h, 'v', v, 'price', ARGV[a + 3], 'demand', ARGV[a + 4],
      'source', ARGV[a + 6], 'at', ARGV[a + 7], 'low30', ARGV[a + 8], 'json', ARGV[a + 9])
    redis.call('MSET', KEYS[4 + 3 * i], ARGV[a + 3], KEYS[5 + 3 * i], ARGV[a + 5])
    applied = applied + 1
  end
end
return applied
`

// writeChunk caps the changes handled by one script call. A script blocks
// Redis while it runs, so an engine's large batch (tens of thousands of
// changes at startup) is split into calls short enough not to stall the
// replicas' reads; all calls still travel in one pipelined round trip.
const writeChunk = 256

// maxScriptCalls caps the script calls of one Write by growing the chunks of
// huge writes. rueidis sends a pipeline of BlockingPipeline (default 2000)
// commands or more on a separate connection, and the invalidations of this
// Client's own cache would then no longer be ordered before Write returns.
const maxScriptCalls = 1000

// scriptSHA1 is the digest EVALSHA needs. rueidis.Lua computes the same one
// but does not expose it, and Write has to build the EVALSHA commands itself
// to pipeline them in one round trip (Lua.ExecMulti would first send a
// SCRIPT LOAD, costing a second round trip on every call).
func scriptSHA1(s string) string {
	sum := sha1.Sum([]byte(s))
	return hex.EncodeToString(sum[:])
}

// Write stores changes idempotently, pipelining the whole slice in one round
// trip. Per product, a change whose Version is not greater than the stored
// one is ignored, also within the slice, so redelivery and replays are
// harmless and an older version never overwrites a newer one. It returns how
// many changes were applied.
//
// Invalid changes (empty product id, non-finite numbers) fail the whole call
// before anything is sent. On a Redis error, applied counts what Redis
// confirmed, other changes may or may not have been stored; calling Write
// again with the same changes is the way to recover.
func (c *Client) Write(ctx context.Context, changes []live.Price) (applied int, err error) {
	if len(changes) == 0 {
		return 0, nil
	}
	for i := range changes {
		if err := validate(&changes[i]); err != nil {
			return 0, err
		}
	}
	chunk := max(writeChunk, (len(changes)+maxScriptCalls-1)/maxScriptCalls)
	execs := make([]rueidis.LuaExec, 0, (len(changes)+chunk-1)/chunk)
	cmds := make(rueidis.Commands, 0, cap(execs)+1)
	var js []byte
	for start := 0; start < len(changes); start += chunk {
		part := changes[start:min(start+chunk, len(changes))]
		ks := make([]string, 0, 2+3*len(part))
		ks = append(ks, c.k.products, c.k.order)
		args := make([]string, 0, 9*len(part))
		for i := range part {
			ch := &part[i]
			id := ch.ProductID
			ks = append(ks, c.k.product+id, c.k.price+id, c.k.demand+id)
			js = ch.AppendJSON(js[:0])
			args = append(args, id, strconv.FormatUint(ch.Version, 10),
				formatFloat(ch.Price), formatFloat(ch.Demand), strconv.FormatInt(int64(math.Round(ch.Demand)), 10), ch.Source.String(),
				strconv.FormatInt(ch.At, 10), formatFloat(ch.Lowest30), string(js))
		}
		execs = append(execs, rueidis.LuaExec{Keys: ks, Args: args})
		cmds = append(cmds, c.rc.B().Evalsha().Sha1(c.sha).Numkeys(int64(len(ks))).Key(ks...).Arg(args...).Build())
	}

	// Redis 7 sends the invalidations a command causes to its own connection
	// after its reply, so without the trailing PING this Client could serve
	// a stale cached read right after Write returns. Its reply comes after
	// those invalidations, which rueidis applies in stream order: once
	// DoMulti returns, this Client reads its own writes.
	cmds = append(cmds, c.rc.B().Ping().Build())
	resps := c.rc.DoMulti(ctx, cmds...)
	var retry []rueidis.LuaExec
	for i, r := range resps[:len(execs)] {
		n, rerr := r.AsInt64()
		switch {
		case rerr == nil:
			applied += int(n)
		case isNoScript(rerr):
			retry = append(retry, execs[i])
		case err == nil:
			err = rerr
		}
	}
	if len(retry) > 0 {
		// Redis lost the script (restart, failover, SCRIPT FLUSH). Re-running
		// the affected chunks after later ones is safe: the version check
		// makes the stored state independent of order. Only the listing
		// position of products created by those chunks could differ, and only
		// if another client reloaded the script in the middle of this pipeline.
		// The trailing PING again orders this Client's invalidations.
		c.log.Info("redis: write script not loaded, loading it", "chunks", len(retry))
		for _, r := range c.script.ExecMulti(ctx, c.rc, retry...) {
			n, rerr := r.AsInt64()
			if rerr == nil {
				applied += int(n)
			} else if err == nil {
				err = rerr
			}
		}
		if perr := c.rc.Do(ctx, c.rc.B().Ping().Build()).Error(); err == nil {
			err = perr
		}
	}
	if err != nil {
		return applied, fmt.Errorf("redis: write: %w", err)
	}
	return applied, nil
}

func isNoScript(err error) bool {
	re, ok := rueidis.IsRedisErr(err)
	return ok && re.IsNoScript()
}

// validate rejects changes that would store something readers cannot
// parse: NaN or ±Inf are neither valid JSON nor numbers INCRBYFLOAT accepts.
func validate(c *live.Price) error {
	if c.ProductID == "" {
		return fmt.Errorf("redis: write: change without product id")
	}
	for _, f := range [...]float64{c.Price, c.Demand, c.Lowest30} {
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return fmt.Errorf("redis: write: product %q: non-finite number", c.ProductID)
		}
	}
	return nil
}

// formatFloat writes the shortest decimal that parses back to exactly f,
// never in exponent form, so both Changes and the original's tools (which
// read product:price:* with GET or INCRBYFLOAT) can parse it.
func formatFloat(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

package redis

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/dynaprice/dynaprice/internal/live"
	"github.com/dynaprice/dynaprice/internal/poll"
	"github.com/dynaprice/dynaprice/internal/pricing"
)

// testEnv gives a test its own key prefix on the Redis named by
// DYNAPRICE_TEST_REDIS and deletes every key under it when the test ends.
type testEnv struct {
	tb     testing.TB
	addr   string
	prefix string
}

func newTestEnv(tb testing.TB) *testEnv {
	tb.Helper()
	addr := os.Getenv("DYNAPRICE_TEST_REDIS")
	if addr == "" {
		tb.Skip("DYNAPRICE_TEST_REDIS not set")
	}
	// Only letters and digits from the name: the prefix is used in a SCAN
	// MATCH pattern, where *, ?, [ and \ are special.
	name := []byte(tb.Name())
	for i, b := range name {
		if !('a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9') {
			name[i] = '_'
		}
	}
	e := &testEnv{tb: tb, addr: addr, prefix: fmt.Sprintf("dynaprice-test:%s:%016x:", name, rand.Uint64())}
	admin := e.open()
	tb.Cleanup(func() {
		ctx := context.Background()
		var cursor uint64
		for {
			se, err := admin.rc.Do(ctx, admin.rc.B().Scan().Cursor(cursor).Match(e.prefix+"*").Count(1000).Build()).AsScanEntry()
			if err != nil {
				tb.Errorf("cleanup scan: %v", err)
				break
			}
			if len(se.Elements) > 0 {
				if err := admin.rc.Do(ctx, admin.rc.B().Del().Key(se.Elements...).Build()).Error(); err != nil {
					tb.Errorf("cleanup del: %v", err)
				}
			}
			if cursor = se.Cursor; cursor == 0 {
				break
			}
		}
		admin.Close()
	})
	return e
}

// open returns a client on the test's prefix, closed when the test ends.
// The long cache TTL makes any fresh read after a write the work of
// invalidation, never of expiry.
func (e *testEnv) open() *Client {
	e.tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	log := slog.New(slog.NewTextHandler(e.tb.Output(), nil))
	c, err := Open(ctx, Config{Addr: e.addr, Prefix: e.prefix, CacheTTL: time.Hour, Logger: log})
	if err != nil {
		e.tb.Fatal(err)
	}
	e.tb.Cleanup(c.Close)
	return c
}

// get runs a command without the cache and returns its string reply.
func (e *testEnv) get(c *Client, cmd rueidis.Completed) string {
	e.tb.Helper()
	s, err := c.rc.Do(context.Background(), cmd).ToString()
	if err != nil {
		e.tb.Fatalf("%v: %v", cmd.Commands(), err)
	}
	return s
}

func write(t testing.TB, c *Client, want int, changes ...live.Price) {
	t.Helper()
	n, err := c.Write(context.Background(), changes)
	if err != nil {
		t.Fatalf("Write: %v", err)
	}
	if n != want {
		t.Fatalf("Write applied %d, want %d", n, want)
	}
}

func price(t testing.TB, c *Client, id string) (string, bool) {
	t.Helper()
	b, ok, err := c.Price(context.Background(), id)
	if err != nil {
		t.Fatalf("Price(%q): %v", id, err)
	}
	return string(b), ok
}

func change(id string, version uint64, p float64) live.Price {
	return live.Price{
		ProductID: id, Price: p, Source: pricing.SourceDynamic, Demand: 9.5,
		Version: version, At: time.Date(2025, 3, 1, 12, 0, 0, 123456789, time.UTC).UnixNano() + int64(version),
		Lowest30: 299, PriceChanged: true,
	}
}

func TestOpenUnreachable(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	start := time.Now()
	c, err := Open(ctx, Config{Addr: "127.0.0.1:1"})
	if err == nil {
		c.Close()
		t.Fatal("Open of a closed port succeeded")
	}
	if time.Since(start) > 3*time.Second {
		t.Errorf("Open took %v, want it bounded by the context", time.Since(start))
	}
	t.Log(err)
}

func TestOpenURL(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	c, err := Open(ctx, Config{Addr: "redis://" + e.addr + "/0", Prefix: e.prefix})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	_, err = Open(ctx, Config{Addr: "redis://user:s3cret@bad host:1"})
	if err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("Open of a bad URL: %v; want an error without the password", err)
	}
}

func TestWriteLayout(t *testing.T) {
	e := newTestEnv(t)
	c := e.open()
	pa := live.Price{ProductID: "PA", Price: 314.00, Source: pricing.SourceDynamic, Demand: 9.123456,
		Version: 7, At: 1740830400123456789, Lowest30: 299.99, PriceChanged: true}
	pb := live.Price{ProductID: "PB", Price: 19.99, Source: pricing.SourceOverride, Demand: 0,
		Version: 1, At: 1740830400000000000, Lowest30: 19.99}
	write(t, c, 2, pa, pb)

	for _, ch := range []live.Price{pa, pb} {
		got, ok := price(t, c, ch.ProductID)
		if want := string(ch.AppendJSON(nil)); !ok || got != want {
			t.Errorf("Price(%s) = %q, %v; want %q", ch.ProductID, got, ok, want)
		}
	}
	b := c.rc.B()
	p := e.prefix
	for key, want := range map[string]string{
		p + "product:price:PA": "314",
		// A whole number: the original's tools read it with strconv.Atoi.
		p + "product:demand:PA": "9",
		p + "product:price:PB":  "19.99",
		p + "product:demand:PB": "0",
	} {
		if got := e.get(c, b.Get().Key(key).Build()); got != want {
			t.Errorf("GET %s = %q, want %q", key, got, want)
		}
	}
	// The original's tools adjust prices with INCRBYFLOAT: the value must be
	// a number Redis itself accepts.
	if got := e.get(c, b.Incrbyfloat().Key(p+"product:price:PB").Increment(0.01).Build()); got != "20" {
		t.Errorf("INCRBYFLOAT product:price:PB = %q, want 20", got)
	}

	h, err := c.rc.Do(context.Background(), b.Hgetall().Key(p+"dynaprice:product:PA").Build()).AsStrMap()
	if err != nil {
		t.Fatal(err)
	}
	wantHash := map[string]string{"v": "7", "price": "314", "demand": "9.123456", "source": "dynamic",
		"at": "1740830400123456789", "low30": "299.99", "json": string(pa.AppendJSON(nil))}
	if fmt.Sprint(h) != fmt.Sprint(wantHash) {
		t.Errorf("hash = %v\nwant  %v", h, wantHash)
	}
	members, err := c.rc.Do(context.Background(), b.Smembers().Key(p+"dynaprice:products").Build()).AsStrSlice()
	if err != nil {
		t.Fatal(err)
	}
	if len(members) != 2 || !(members[0] == "PA" && members[1] == "PB" || members[0] == "PB" && members[1] == "PA") {
		t.Errorf("SMEMBERS dynaprice:products = %v, want PA and PB", members)
	}

	if _, ok := price(t, c, "nope"); ok {
		t.Error("Price of an unknown id: ok = true")
	}
	if v, ok, err := c.Version(context.Background(), "PA"); err != nil || !ok || v != 7 {
		t.Errorf("Version(PA) = %d, %v, %v; want 7", v, ok, err)
	}
	if _, ok, err := c.Version(context.Background(), "nope"); err != nil || ok {
		t.Errorf("Version(nope) = _, %v, %v; want not found", ok, err)
	}
}

func TestWriteRejectsInvalid(t *testing.T) {
	e := newTestEnv(t)
	c := e.open()
	for _, bad := range []live.Price{
		{ProductID: "", Version: 1},
		{ProductID: "X", Version: 1, Price: math.NaN()},
		{ProductID: "X", Version: 1, Demand: math.Inf(1)},
		{ProductID: "X", Version: 1, Lowest30: math.Inf(-1)},
	} {
		n, err := c.Write(context.Background(), []live.Price{change("OK", 1, 1), bad})
		if err == nil || n != 0 {
			t.Errorf("Write(%+v) = %d, %v; want an error and nothing applied", bad, n, err)
		}
	}
	if _, ok := price(t, c, "OK"); ok {
		t.Error("a batch with an invalid change was partly written")
	}
	if n, err := c.Write(context.Background(), nil); n != 0 || err != nil {
		t.Errorf("Write(nil) = %d, %v", n, err)
	}
}

func TestVersionsNeverGoBack(t *testing.T) {
	e := newTestEnv(t)
	c := e.open()
	ctx := context.Background()
	// In one batch: the older and the equal versions after v5 are skipped.
	write(t, c, 3,
		change("PA", 5, 105),
		change("PA", 3, 103),
		change("PA", 5, 999), // same version, different content: a replay never wins
		change("PB", 1, 1),
		change("PA", 7, 107),
	)
	checkPrice := func(id string, want live.Price) {
		t.Helper()
		got, ok := price(t, c, id)
		if w := string(want.AppendJSON(nil)); !ok || got != w {
			t.Fatalf("Price(%s) = %q, want %q", id, got, w)
		}
		if got := e.get(c, c.rc.B().Get().Key(e.prefix+"product:price:"+id).Build()); got != formatFloat(want.Price) {
			t.Fatalf("product:price:%s = %q, want %v", id, got, want.Price)
		}
	}
	checkPrice("PA", change("PA", 7, 107))
	// Across batches: a full replay applies nothing.
	write(t, c, 0, change("PA", 5, 105), change("PA", 7, 1), change("PA", 6, 106), change("PB", 1, 2))
	checkPrice("PA", change("PA", 7, 107))
	checkPrice("PB", change("PB", 1, 1))
	write(t, c, 2, change("PA", 8, 108), change("PB", 2, 2))
	checkPrice("PA", change("PA", 8, 108))
	checkPrice("PB", change("PB", 2, 2))

	// Versions beyond 2^53, where a Lua number could no longer tell them
	// apart, and across a change in digit count.
	big := uint64(1)<<60 + 1
	write(t, c, 2, change("PC", big, 1), change("PC", big+1, 2))
	write(t, c, 0, change("PC", big, 3), change("PC", big+1, 4))
	write(t, c, 1, change("PC", math.MaxUint64, 5))
	write(t, c, 0, change("PC", math.MaxUint64-1, 6))
	if v, _, err := c.Version(ctx, "PC"); err != nil || v != math.MaxUint64 {
		t.Fatalf("Version(PC) = %d, %v; want MaxUint64", v, err)
	}
	checkPrice("PC", change("PC", math.MaxUint64, 5))
	write(t, c, 2, change("PD", 9, 9), change("PD", 10, 10))
	write(t, c, 0, change("PD", 9, 9))
	checkPrice("PD", change("PD", 10, 10))
	// Around the script's split of long versions into 15-digit parts.
	write(t, c, 3, change("PE", 999_999_999_999_999, 1), change("PE", 1_999_999_999_999_999, 2),
		change("PE", 2_000_000_000_000_000, 3))
	write(t, c, 0, change("PE", 1_999_999_999_999_999, 4), change("PE", 1_000_000_000_000_000, 5),
		change("PE", 999_999_999_999_999, 6))
	write(t, c, 1, change("PE", 2_000_000_000_000_001, 7))
	checkPrice("PE", change("PE", 2_000_000_000_000_001, 7))
}

// TestLargeBatch crosses several script chunks in one Write, including
// repeated products whose versions must still be honoured across chunks.
func TestLargeBatch(t *testing.T) {
	e := newTestEnv(t)
	c := e.open()
	v := live.New(live.HubConfig{})
	var batch []live.Price
	for round := range 3 {
		for i := range writeChunk + 7 {
			batch = append(batch, change(fmt.Sprintf("P%04d", (i*37)%(writeChunk+7)), uint64(round+1), float64(round*1000+i)))
		}
	}
	// Stale copies of round 1 at the very end must be ignored.
	batch = append(batch, change("P0000", 1, -1), change("P0001", 2, -1))
	write(t, c, 3*(writeChunk+7), batch...)
	v.Publish(batch[:len(batch)-2])
	got, err := c.AppendAll(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := v.AppendAll(nil); !bytes.Equal(got, want) {
		t.Fatalf("AppendAll differs from live.View:\n got %.300s\nwant %.300s", got, want)
	}
}

func TestCacheInvalidation(t *testing.T) {
	e := newTestEnv(t)
	writer, reader := e.open(), e.open()
	ctx := context.Background()
	write(t, writer, 1, change("PA", 1, 100))

	if got, _ := price(t, reader, "PA"); got != string(change("PA", 1, 100).AppendJSON(nil)) {
		t.Fatalf("first read = %q", got)
	}
	if _, ok := price(t, reader, "PB"); ok {
		t.Fatal("PB exists before it is written")
	}
	all0, err := reader.AppendAll(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	// The reads above must now be served locally, or this test would prove
	// nothing about invalidation.
	for _, id := range []string{"PA", "PB"} {
		if !reader.rc.DoCache(ctx, reader.jsonCmd(id), reader.ttl).IsCacheHit() {
			t.Fatalf("second read of %s was not a cache hit", id)
		}
	}

	write(t, writer, 2, change("PA", 2, 200), change("PB", 1, 50))
	// The invalidation travels on the reader's own connection and may land a
	// moment after the writer's reply; with an hour-long TTL only it can
	// explain a fresh value.
	want := map[string]string{
		"PA": string(change("PA", 2, 200).AppendJSON(nil)),
		"PB": string(change("PB", 1, 50).AppendJSON(nil)),
	}
	poll.Until(t, 5*time.Second, "the reader to see the write", func() error {
		for id, w := range want {
			if got, _ := price(t, reader, id); got != w {
				return fmt.Errorf("reader sees %s = %q, want %q", id, got, w)
			}
		}
		all, err := reader.AppendAll(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		return poll.Check(bytes.Contains(all, []byte(want["PB"])) && bytes.Contains(all, []byte(want["PA"])),
			"reader's listing is stale: %s (was %s)", all, all0)
	})
}

// TestReadYourWrites checks that a Client's cached reads never trail its
// own completed Write, which Redis 7 alone does not guarantee: it sends a
// writer's own invalidations after the write's reply.
func TestReadYourWrites(t *testing.T) {
	e := newTestEnv(t)
	c := e.open()
	ctx := context.Background()
	for v := uint64(1); v <= 200; v++ {
		ch := change("PA", v, float64(v))
		write(t, c, 2, ch, change(fmt.Sprintf("N%03d", v), 1, 1))
		if got, _ := price(t, c, "PA"); got != string(ch.AppendJSON(nil)) {
			t.Fatalf("after writing v%d, Price = %s", v, got)
		}
		all, err := c.AppendAll(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(all, []byte(fmt.Sprintf(`"N%03d"`, v))) {
			t.Fatalf("after writing N%03d, AppendAll misses it", v)
		}
	}
}

func TestAppendAllMatchesLiveView(t *testing.T) {
	e := newTestEnv(t)
	c := e.open()
	ctx := context.Background()
	v := live.New(live.HubConfig{})
	check := func() {
		t.Helper()
		want := v.AppendAll([]byte("prefix"))
		got, err := c.AppendAll(ctx, []byte("prefix"))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("AppendAll\n got %s\nwant %s", got, want)
		}
	}
	check() // empty: {"prices":[]}

	batches := [][]live.Price{
		{change("zeta", 1, 10), change("alpha", 1, 20.5), change("Mu", 1, 0.1+0.2)},
		{change("alpha", 2, 21), change("beta", 1, 1e9), change("zeta", 2, 11)},
		{{ProductID: "quote\"and\\slash é", Price: 1, Version: 1, Source: pricing.SourceOverride, At: -1}},
	}
	for _, b := range batches {
		write(t, c, len(b), b...)
		v.Publish(b)
		check()
	}
}

func TestChangesRoundTrip(t *testing.T) {
	e := newTestEnv(t)
	c := e.open()
	in := []live.Price{
		{ProductID: "B", Price: 0.1 + 0.2, Source: pricing.SourceBase, Demand: 1e-7, Version: 3, At: math.MaxInt64, Lowest30: 0.30000000000000004, PriceChanged: true},
		{ProductID: "A", Price: 123456789.125, Source: pricing.SourceDynamic, Demand: 17.123456789, Version: math.MaxUint64, At: 0, Lowest30: 1e-300, PriceChanged: true},
		{ProductID: "C", Price: -0.5, Source: pricing.SourceOverride, Demand: -2, Version: 1, At: -1, Lowest30: 5e15},
	}
	write(t, c, 3, in...)
	got, err := c.Changes(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(in) {
		t.Fatalf("Changes returned %d, want %d", len(got), len(in))
	}
	for i := range in {
		want := in[i]
		want.PriceChanged = true // a snapshot reports every price as news
		if got[i] != want {
			t.Errorf("Changes()[%d]\n got %+v\nwant %+v", i, got[i], want)
		}
	}

	empty := newTestEnv(t).open()
	if got, err := empty.Changes(context.Background()); err != nil || len(got) != 0 {
		t.Errorf("Changes of an empty prefix = %v, %v", got, err)
	}
}

// TestSource checks the typed lookup API replicas validate overrides
// with: a product's source, none for an unknown product, and a new source
// seen by another client once its cache is invalidated.
func TestLookup(t *testing.T) {
	e := newTestEnv(t)
	writer, reader := e.open(), e.open()
	ctx := context.Background()
	over := change("PB", 1, 5)
	over.Source = pricing.SourceOverride
	write(t, writer, 2, change("PA", 1, 10), over)
	for id, want := range map[string]pricing.Source{"PA": pricing.SourceDynamic, "PB": pricing.SourceOverride} {
		if p, ok, err := reader.Lookup(ctx, id); err != nil || !ok || p.Source != want {
			t.Errorf("Lookup(%s) = %v, %v, %v; want source %v", id, p, ok, err, want)
		}
	}
	if p, ok, err := reader.Lookup(ctx, "PC"); err != nil || ok {
		t.Errorf("Lookup(PC) = %v, %v, %v; want not found", p, ok, err)
	}
	if !reader.rc.DoCache(ctx, reader.changeCmd("PB"), reader.ttl).IsCacheHit() {
		t.Fatal("second read of PB was not a cache hit")
	}
	cleared := change("PB", 2, 9)
	write(t, writer, 1, cleared)
	deadline := time.Now().Add(5 * time.Second)
	for {
		p, ok, err := reader.Lookup(ctx, "PB")
		src := p.Source
		if err != nil || !ok {
			t.Fatalf("Source(PB) after the write = %v, %v, %v", src, ok, err)
		}
		if src == pricing.SourceDynamic {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("reader still sees PB from %v after the write", src)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestScriptReloaded(t *testing.T) {
	e := newTestEnv(t)
	c := e.open()
	ctx := context.Background()
	write(t, c, 1, change("PA", 1, 1))
	// Harmless to concurrent users of this Redis: every rueidis script
	// helper falls back to EVAL, as Write must.
	if err := c.rc.Do(ctx, c.rc.B().ScriptFlush().Build()).Error(); err != nil {
		t.Fatal(err)
	}
	batch := []live.Price{change("PA", 2, 2)}
	for i := range 2*writeChunk + 1 {
		batch = append(batch, change(fmt.Sprintf("Q%d", i), 1, 1))
	}
	write(t, c, len(batch), batch...)
	if v, _, err := c.Version(ctx, "PA"); err != nil || v != 2 {
		t.Fatalf("Version(PA) = %d, %v; want 2", v, err)
	}
}

func TestConcurrentWriters(t *testing.T) {
	e := newTestEnv(t)
	const writers, products, maxVersion = 8, 20, 400
	clients := make([]*Client, 4)
	for i := range clients {
		clients[i] = e.open()
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	applied := 0
	for w := range writers {
		wg.Go(func() {
			// Writer w owns versions ≡ w (mod writers), sent in random order
			// and in small batches, so writers keep overtaking one another.
			var mine []live.Price
			for v := uint64(w + 1); v <= maxVersion; v += writers {
				for p := range products {
					mine = append(mine, change(fmt.Sprintf("P%02d", p), v, float64(v)))
				}
			}
			rand.Shuffle(len(mine), func(i, j int) { mine[i], mine[j] = mine[j], mine[i] })
			c := clients[w%len(clients)]
			for len(mine) > 0 {
				n := min(len(mine), 1+rand.IntN(40))
				a, err := c.Write(context.Background(), mine[:n])
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				applied += a
				mu.Unlock()
				mine = mine[n:]
			}
		})
	}
	wg.Wait()
	if applied < products || applied > products*maxVersion {
		t.Errorf("applied %d changes", applied)
	}
	c := clients[0]
	for p := range products {
		id := fmt.Sprintf("P%02d", p)
		if v, ok, err := c.Version(context.Background(), id); err != nil || !ok || v != maxVersion {
			t.Errorf("Version(%s) = %d, %v, %v; want %d", id, v, ok, err, maxVersion)
		}
		// Every replica converges, cached or not.
		for _, r := range clients {
			want := string(change(id, maxVersion, maxVersion).AppendJSON(nil))
			poll.Until(t, 5*time.Second, "every replica to converge", func() error {
				got, _ := price(t, r, id)
				return poll.Check(got == want, "Price(%s) = %q, want %q", id, got, want)
			})
		}
	}
}

// TestListingOrder: without Config.Order a listing comes in the order
// products were first written; with it, in the order it gives (the
// catalog's, on an API replica), for GET /prices and snapshots alike.
func TestListingOrder(t *testing.T) {
	e := newTestEnv(t)
	w := e.open()
	var ps []live.Price
	for i, id := range []string{"PC", "PA", "PB"} {
		ps = append(ps, live.Price{ProductID: id, Price: 10 + float64(i), Source: pricing.SourceBase, Version: 1, At: 1})
	}
	write(t, w, 3, ps...)
	ctx := context.Background()
	ids := func(c *Client) (fromAll, fromChanges []string) {
		t.Helper()
		b, err := c.AppendAll(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		var all struct {
			Prices []struct {
				ID string `json:"product_id"`
			} `json:"prices"`
		}
		if err := json.Unmarshal(b, &all); err != nil {
			t.Fatal(err)
		}
		for _, p := range all.Prices {
			fromAll = append(fromAll, p.ID)
		}
		chs, err := c.Changes(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, ch := range chs {
			fromChanges = append(fromChanges, ch.ProductID)
		}
		// A WebSocket snapshot's pages are the same listing.
		var paged []string
		for after := ""; ; {
			ps, next, err := c.SnapshotPage(ctx, after, 2)
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range ps {
				paged = append(paged, p.ProductID)
			}
			if after = next; after == "" {
				break
			}
		}
		if !slices.Equal(paged, fromChanges) {
			t.Errorf("snapshot pages %v, Changes %v", paged, fromChanges)
		}
		return fromAll, fromChanges
	}
	if a, c := ids(w); !slices.Equal(a, []string{"PC", "PA", "PB"}) || !slices.Equal(c, a) {
		t.Fatalf("first-write order: %v, %v", a, c)
	}
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	catalog := live.NewCatalogOrder(func(context.Context) ([]string, error) { return []string{"PA", "PB", "PC"}, nil }, time.Second)
	r, err := Open(cctx, Config{Addr: e.addr, Prefix: e.prefix, Order: catalog.Sort})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if a, c := ids(r); !slices.Equal(a, []string{"PA", "PB", "PC"}) || !slices.Equal(c, a) {
		t.Fatalf("catalog order: %v, %v", a, c)
	}
}

// TestPagesMatchLiveView pages through a listing in Redis and in a
// live.View fed the same changes: every page is the same bytes, cursors
// and searches included, and a product written between two pages is on
// the next one.
func TestPagesMatchLiveView(t *testing.T) {
	e := newTestEnv(t)
	writer, reader := e.open(), e.open()
	ctx := context.Background()
	v := live.New(live.HubConfig{})
	var ps []live.Price
	for i := range 23 {
		ps = append(ps, change(fmt.Sprintf("item-%02d", (i*7)%23), 1, float64(i)))
	}
	write(t, writer, len(ps), ps...)
	v.Publish(ps)

	pages := func(p live.Page, between func()) (got, want []string) {
		t.Helper()
		pv := p
		for range 50 {
			g, gn, gnext, err := reader.AppendPage(ctx, nil, p)
			if err != nil {
				t.Fatalf("Redis page %+v: %v", p, err)
			}
			w, wn, wnext, _ := v.AppendPage(ctx, nil, pv)
			got, want = append(got, fmt.Sprintf("%d %s next=%s", gn, g, gnext)), append(want, fmt.Sprintf("%d %s next=%s", wn, w, wnext))
			if gnext == "" || wnext == "" {
				return got, want
			}
			p.After, pv.After = gnext, wnext
			if between != nil {
				between()
				between = nil
			}
		}
		t.Fatal("paging does not end")
		return nil, nil
	}
	for _, p := range []live.Page{{Limit: 5}, {Limit: 23}, {Limit: 1000}, {Limit: 2, Match: "M-1"}, {Limit: 3, Match: "nothing"}, {Limit: 4, After: "item-21"}} {
		if got, want := pages(p, nil); !slices.Equal(got, want) {
			t.Errorf("pages of %+v:\n got %q\nwant %q", p, got, want)
		}
	}
	// A product written while a client pages is at the end of the listing.
	late := change("late", 1, 1)
	got, want := pages(live.Page{Limit: 10}, func() {
		write(t, reader, 1, late) // the reader's own write: no invalidation to wait for
		v.Publish([]live.Price{late})
	})
	if !slices.Equal(got, want) || !strings.Contains(got[len(got)-1], `"late"`) {
		t.Errorf("paging while a product is created:\n got %q\nwant %q", got, want)
	}
	if _, _, _, err := reader.AppendPage(ctx, nil, live.Page{After: "nosuch", Limit: 5}); !errors.Is(err, live.ErrUnknownCursor) {
		t.Errorf("unknown cursor: %v", err)
	}
}

// TestSortedPagesMatchLiveView: the API replica's sorted listings (read
// from Redis) are the same pages, with the same cursors, as serve's (a
// live.View fed the same changes), for every sort either way and with a
// search; a cursor of one is a cursor of the other, so a replica paging
// through a Redis outage (live.Fallback) keeps its place.
func TestSortedPagesMatchLiveView(t *testing.T) {
	e := newTestEnv(t)
	writer, reader := e.open(), e.open()
	ctx := context.Background()
	v := live.New(live.HubConfig{})
	var ps []live.Price
	for i := range 37 {
		p := change(fmt.Sprintf("item-%02d", (i*7)%37), uint64(1+i%4), float64(i%6)+0.004*float64(i%3))
		p.Demand, p.Lowest30, p.Source = float64(i%5)/7, float64(i%4), pricing.Source(i%3)
		ps = append(ps, p)
	}
	write(t, writer, len(ps), ps...)
	v.Publish(ps)

	for _, name := range live.SortNames() {
		for _, dir := range []string{"", "-"} {
			o, err := live.ParseSort(dir + name)
			if err != nil {
				t.Fatal(err)
			}
			for _, match := range []string{"", "M-1"} {
				var got, want []string
				p := live.Page{Sort: o, Match: match, Limit: 4}
				for pages := 0; ; pages++ {
					if pages > 20 {
						t.Fatalf("sort %s: paging does not end", o)
					}
					g, gn, gnext, err := reader.AppendPage(ctx, nil, p)
					if err != nil {
						t.Fatalf("Redis page %+v: %v", p, err)
					}
					w, wn, wnext, _ := v.AppendPage(ctx, nil, p)
					got, want = append(got, fmt.Sprintf("%d %s next=%s", gn, g, gnext)), append(want, fmt.Sprintf("%d %s next=%s", wn, w, wnext))
					if gnext == "" || wnext == "" {
						break
					}
					p.After = gnext
				}
				if !slices.Equal(got, want) {
					t.Errorf("sort %s q %q:\n got %q\nwant %q", o, match, got, want)
				}
			}
		}
	}
	if _, _, _, err := reader.AppendPage(ctx, nil, live.Page{Sort: live.Sort{Key: live.ByPrice}, After: "item-01", Limit: 5}); !errors.Is(err, live.ErrBadCursor) {
		t.Errorf("an id as a price cursor: %v, want ErrBadCursor", err)
	}
}

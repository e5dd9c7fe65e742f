package live

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/dynaprice/dynaprice/internal/poll"
	"github.com/dynaprice/dynaprice/internal/pricing"
	"github.com/prometheus/client_golang/prometheus"
)

// wireMsg is a price_update as a client decodes it.
type wireMsg struct {
	Type        string  `json:"type"`
	ProductID   string  `json:"product_id"`
	NewPrice    float64 `json:"new_price"`
	Timestamp   int64   `json:"timestamp"`
	PriceSource string  `json:"price_source"`
	Demand      float64 `json:"demand"`
	Version     uint64  `json:"version"`
	Lowest30    float64 `json:"lowest_30d"`
	TimestampMS int64   `json:"timestamp_ms"`
}

type testEnv struct {
	hub *Hub
	srv *httptest.Server
	reg *prometheus.Registry
}

func newEnv(t testing.TB, cfg HubConfig) *testEnv {
	return newEnvSendBuf(t, cfg, 0)
}

// newEnvSendBuf is newEnv with the server's socket send buffers fixed at
// sendBuf bytes (0: the kernel's autotuning, up to megabytes). Tests that
// stall a client use small buffers, so that its writer blocks after
// kilobytes and it has little backlog to read afterwards.
func newEnvSendBuf(t testing.TB, cfg HubConfig, sendBuf int) *testEnv {
	t.Helper()
	reg := prometheus.NewRegistry()
	cfg.Registerer = reg
	h := NewHub(cfg)
	mux := http.NewServeMux()
	mux.Handle("GET /ws/prices", h)
	srv := httptest.NewUnstartedServer(mux)
	if sendBuf > 0 {
		srv.Listener = sendBufListener{srv.Listener, sendBuf}
	}
	srv.Start()
	// Cleanups run last-in first-out: the hub closes its clients before the
	// server stops listening.
	t.Cleanup(srv.Close)
	t.Cleanup(h.Close)
	return &testEnv{hub: h, srv: srv, reg: reg}
}

func (e *testEnv) url(query string) string {
	return "ws" + strings.TrimPrefix(e.srv.URL, "http") + "/ws/prices" + query
}

// dial connects and waits until the hub has registered the client, so that
// a following Publish reaches it.
func (e *testEnv) dial(t testing.TB, query string, opts *websocket.DialOptions) *websocket.Conn {
	t.Helper()
	before := e.hub.Clients()
	c := e.dialRaw(t, query, opts)
	poll.Until(t, 10*time.Second, "client registered", func() error {
		n := e.hub.Clients()
		return poll.Check(n > before, "%d clients, %d before the dial", n, before)
	})
	return c
}

func (e *testEnv) dialRaw(t testing.TB, query string, opts *websocket.DialOptions) *websocket.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, e.url(query), opts)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { c.CloseNow() })
	return c
}

// dialRefused dials expecting an HTTP refusal and returns the response.
func (e *testEnv) dialRefused(t *testing.T, opts *websocket.DialOptions) (*http.Response, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, e.url(""), opts)
	if err == nil {
		c.CloseNow()
		t.Fatal("dial succeeded, want refusal")
	}
	if resp == nil {
		t.Fatalf("dial failed without a response: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

func (e *testEnv) metric(t testing.TB, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := e.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				found := false
				for _, lp := range m.GetLabel() {
					if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
						found = true
					}
				}
				if !found {
					continue next
				}
			}
			if g := m.GetGauge(); g != nil {
				return g.GetValue()
			}
			if h := m.GetHistogram(); h != nil {
				return float64(h.GetSampleCount())
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

// waitClients waits until the hub has want clients.
func (e *testEnv) waitClients(t testing.TB, what string, want int) {
	t.Helper()
	poll.Until(t, 10*time.Second, what, func() error {
		n := e.hub.Clients()
		return poll.Check(n == want, "%d clients, want %d", n, want)
	})
}

func read(t testing.TB, c *websocket.Conn) wireMsg {
	t.Helper()
	m, err := tryRead(c, 10*time.Second)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return m
}

func tryRead(c *websocket.Conn, timeout time.Duration) (wireMsg, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	typ, p, err := c.Read(ctx)
	if err != nil {
		return wireMsg{}, err
	}
	if typ != websocket.MessageText {
		return wireMsg{}, fmt.Errorf("message type %v, want text", typ)
	}
	var m wireMsg
	if err := json.Unmarshal(p, &m); err != nil {
		return wireMsg{}, fmt.Errorf("decode %s: %w", p, err)
	}
	return m, nil
}

// readUntil reads until last reports true and returns what it read.
func readUntil(t testing.TB, c *websocket.Conn, last func(wireMsg) bool) []wireMsg {
	t.Helper()
	var ms []wireMsg
	for {
		m := read(t, c)
		ms = append(ms, m)
		if last(m) {
			return ms
		}
	}
}

func sequence(ms []wireMsg) string {
	var b strings.Builder
	for i, m := range ms {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%s%d", m.ProductID, m.Version)
	}
	return b.String()
}

// fixedSnapshot is a Snapshotter whose prices never change.
type fixedSnapshot []Price

func (f fixedSnapshot) SnapshotPage(_ context.Context, after string, limit int) ([]Price, string, error) {
	start := 0
	if after != "" {
		start = 1 + slices.IndexFunc(f, func(p Price) bool { return p.ProductID == after })
	}
	page := f[start:min(start+limit, len(f))]
	if start+len(page) < len(f) {
		return page, page[len(page)-1].ProductID, nil
	}
	return page, "", nil
}

func (f fixedSnapshot) SnapshotOf(_ context.Context, ids []string) ([]Price, error) {
	var out []Price
	for _, p := range f {
		if slices.Contains(ids, p.ProductID) {
			out = append(out, p)
		}
	}
	return out, nil
}

// panickySnapshot is engine code gone wrong.
type panickySnapshot struct{}

func (panickySnapshot) SnapshotPage(context.Context, string, int) ([]Price, string, error) {
	panic("engine bug")
}

func (panickySnapshot) SnapshotOf(context.Context, []string) ([]Price, error) { panic("engine bug") }

func upd(id string, v uint64, price float64) Price {
	return Price{PriceChanged: true, ProductID: id, Version: v, Price: price, Source: pricing.SourceDynamic, At: time.Unix(1773713139, 0).UnixNano()}
}

func TestMessageOnTheWire(t *testing.T) {
	e := newEnv(t, HubConfig{})
	c := e.dial(t, "", nil)
	e.hub.Publish([]Price{{
		PriceChanged: true, ProductID: "PA", Price: 151.34, Source: pricing.SourceOverride, Demand: 3.25, Version: 42,
		At: time.Unix(1773713139, 789_000_000).UnixNano(), Lowest30: 140.5,
	}})

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	typ, p, err := c.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if typ != websocket.MessageText {
		t.Fatalf("type %v, want text", typ)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(p, &m); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"type": `"price_update"`, "product_id": `"PA"`, "new_price": "151.34", "timestamp": "1773713139",
		"price_source": `"override"`, "demand": "3", "demand_exact": "3.25", "version": "42", "lowest_30d": "140.5",
		"timestamp_ms": "1773713139789",
	}
	if len(m) != len(want) {
		t.Errorf("fields %s, want exactly %v", p, want)
	}
	for k, v := range want {
		if string(m[k]) != v {
			t.Errorf("%s = %s, want %s", k, m[k], v)
		}
	}
	// Counted after the write returns, which may be after the client read.
	poll.Until(t, 10*time.Second, "sent counter", func() error {
		v := e.metric(t, "dynaprice_ws_messages_sent_total")
		return poll.Check(v == 1, "%v sent, want 1", v)
	})
}

func TestZeroTimeMeansNow(t *testing.T) {
	e := newEnv(t, HubConfig{})
	c := e.dial(t, "", nil)
	before := time.Now()
	e.hub.Publish([]Price{{PriceChanged: true, ProductID: "PA", Price: 1, Version: 1}})
	m := read(t, c)
	if m.TimestampMS < before.UnixMilli() || m.TimestampMS > time.Now().UnixMilli() || m.Timestamp != m.TimestampMS/1000 {
		t.Fatalf("timestamp %d / %d not the publish time", m.Timestamp, m.TimestampMS)
	}
}

func TestSeveralClientsReceive(t *testing.T) {
	e := newEnv(t, HubConfig{})
	var cs []*websocket.Conn
	for range 4 {
		cs = append(cs, e.dial(t, "", nil))
	}
	if n := e.hub.Clients(); n != 4 {
		t.Fatalf("Clients() = %d, want 4", n)
	}
	e.hub.Publish([]Price{upd("A", 1, 10), upd("B", 1, 20), upd("C", 1, 30)})
	e.hub.Publish([]Price{upd("A", 2, 11)})
	for i, c := range cs {
		seen := map[string]bool{}
		got := sequence(readUntil(t, c, func(m wireMsg) bool {
			seen[fmt.Sprintf("%s%d", m.ProductID, m.Version)] = true
			return seen["A2"] && seen["C1"]
		}))
		// A client whose writer had not yet taken the first batch gets A2
		// in A1's place: coalesced, not reordered.
		if got != "A1 B1 C1 A2" && got != "A2 B1 C1" {
			t.Errorf("client %d received %s", i, got)
		}
	}
	if got := e.metric(t, "dynaprice_ws_clients"); got != 4 {
		t.Errorf("gauge = %v, want 4", got)
	}
}

type sendBufListener struct {
	net.Listener
	size int
}

func (l sendBufListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetWriteBuffer(l.size)
	}
	return c, err
}

// stalledDialOptions shrink the client's socket receive buffer so that a
// client that does not read blocks the server's writes after a few
// kilobytes instead of after the kernel's autotuned megabytes.
func stalledDialOptions() *websocket.DialOptions {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			if tc, ok := c.(*net.TCPConn); ok {
				_ = tc.SetReadBuffer(128 << 10)
			}
			return c, nil
		},
	}
	return &websocket.DialOptions{HTTPClient: &http.Client{Transport: tr}}
}

// fillUntilBlocked publishes to the only, non-reading, client until its
// writer is stuck in a write: parked in the kernel, inside Hub.flush,
// waiting for room in the socket's buffers, which the client, never
// reading, does not make. To rule out a moment's wait while the kernel
// still moves data to the client, it must be found so at two checks in a
// row. From then on nothing reaches the client until it reads.
func fillUntilBlocked(t *testing.T, e *testEnv) {
	t.Helper()
	batch := make([]Price, 200)
	v, blocked := uint64(0), 0
	poll.Until(t, 30*time.Second, "the non-reading client's writer blocked in a write", func() error {
		if writerBlocked() {
			if blocked++; blocked == 2 {
				return nil
			}
		} else {
			blocked = 0
		}
		v++
		for i := range batch {
			batch[i] = upd(fmt.Sprintf("filler-product-with-a-long-identifier-%04d", i), v, float64(v))
		}
		e.hub.Publish(batch)
		return fmt.Errorf("not after %d batches (%v messages sent)", v, e.metric(t, "dynaprice_ws_messages_sent_total"))
	})
	t.Logf("writer blocked after %v messages", e.metric(t, "dynaprice_ws_messages_sent_total"))
}

// writerBlocked reports whether a client's writer is parked in a socket
// write (IO wait).
func writerBlocked() bool {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "[IO wait") && strings.Contains(g, "internal/poll.(*FD).Write") &&
			strings.Contains(g, "live.(*Hub).flush") {
			return true
		}
	}
	return false
}

// checkMonotonic records m and fails if it is not newer than the last
// version of its product.
func checkMonotonic(last map[string]uint64, m wireMsg) error {
	if prev, ok := last[m.ProductID]; ok && m.Version <= prev {
		return fmt.Errorf("product %s: version %d after %d", m.ProductID, m.Version, prev)
	}
	last[m.ProductID] = m.Version
	return nil
}

// The core guarantee: a client that stops reading slows neither Publish nor
// any other client, and once it reads again it gets the latest price of
// every product, never an older version after a newer one.
func TestStalledClientDoesNotBlock(t *testing.T) {
	const products, versions = 10, 10_000 // 100,000 updates
	// A WriteTimeout far above the publishing budget: if Publish ever
	// waited on the stalled client, it would wait this long.
	e := newEnvSendBuf(t, HubConfig{WriteTimeout: time.Minute}, 64<<10)
	stalled := e.dial(t, "", stalledDialOptions())
	fillUntilBlocked(t, e)
	healthy := e.dial(t, "", nil)

	healthyDone := make(chan error, 1)
	go func() {
		last := map[string]uint64{}
		for done := 0; done < products; {
			m, err := tryRead(healthy, 30*time.Second)
			if err != nil {
				healthyDone <- err
				return
			}
			if err := checkMonotonic(last, m); err != nil {
				healthyDone <- err
				return
			}
			if m.Version == versions {
				done++
			}
		}
		healthyDone <- nil
	}()

	start := time.Now()
	var slowest time.Duration
	batch := make([]Price, 0, 100)
	for v := uint64(1); v <= versions; v += 10 {
		batch = batch[:0]
		for dv := range uint64(10) {
			for p := range products {
				batch = append(batch, upd(fmt.Sprintf("P%d", p), v+dv, float64(v+dv)))
			}
		}
		t0 := time.Now()
		e.hub.Publish(batch)
		slowest = max(slowest, time.Since(t0))
	}
	elapsed := time.Since(start)
	t.Logf("published %d updates in %v; slowest Publish %v", products*versions, elapsed, slowest)
	if elapsed > 15*time.Second || slowest > 5*time.Second {
		t.Fatalf("Publish is held up by the stalled client: total %v, slowest call %v", elapsed, slowest)
	}

	if err := <-healthyDone; err != nil {
		t.Fatalf("healthy client: %v", err)
	}

	// Now the stalled client reads everything it is given.
	t.Logf("healthy done after %v", time.Since(start))
	last := map[string]uint64{}
	received := 0
	for done := 0; done < products; {
		m := read(t, stalled)
		received++
		if err := checkMonotonic(last, m); err != nil {
			t.Fatalf("stalled client: %v", err)
		}
		if m.Version == versions {
			done++
		}
	}
	t.Logf("stalled client received %d of %d updates (at %v)", received, products*versions, time.Since(start))
	if received >= products*versions {
		t.Errorf("stalled client received all %d updates: nothing was coalesced", received)
	}
	if got := e.metric(t, "dynaprice_ws_updates_coalesced_total"); got == 0 {
		t.Error("coalesced counter did not increase")
	}
	if n := e.hub.Clients(); n != 2 {
		t.Errorf("Clients() = %d, want both still connected", n)
	}
}

func TestSlowClientDropped(t *testing.T) {
	e := newEnvSendBuf(t, HubConfig{WriteTimeout: 2 * time.Second}, 64<<10)
	e.dial(t, "", stalledDialOptions())
	fillUntilBlocked(t, e)
	healthy := e.dial(t, "", nil)

	// The healthy client keeps getting updates while the stalled one's
	// write runs into WriteTimeout. Fillers keep the stalled client's queue
	// full: the kernel may still grow its socket buffers and take the
	// write that looked blocked, and a writer with nothing more to write
	// is never dropped.
	deadline := time.Now().Add(20 * time.Second)
	filler := make([]Price, 50)
	for v := uint64(1_000); e.metric(t, "dynaprice_ws_disconnects_total", "reason", "slow") == 0; v++ {
		if time.Now().After(deadline) {
			t.Fatal("stalled client was never dropped")
		}
		for i := range filler {
			filler[i] = upd(fmt.Sprintf("filler-product-with-a-long-identifier-%04d", i), v, float64(v))
		}
		e.hub.Publish(filler)
		e.hub.Publish([]Price{upd("live", v, float64(v))})
		for {
			m := read(t, healthy)
			if m.ProductID == "live" {
				if m.Version != v {
					t.Fatalf("healthy client got live v%d, want v%d", m.Version, v)
				}
				break
			}
		}
		// Paces the updates, so that the stalled writer's WriteTimeout
		// (2s) passes within a few hundred rounds.
		time.Sleep(20 * time.Millisecond)
	}
	if n := e.hub.Clients(); n != 1 {
		t.Errorf("Clients() = %d, want the healthy one", n)
	}
	if got := e.metric(t, "dynaprice_ws_disconnects_total", "reason", "client"); got != 0 {
		t.Errorf("client disconnects = %v, want 0", got)
	}
}

func TestOrigin(t *testing.T) {
	withOrigin := func(o string) *websocket.DialOptions {
		return &websocket.DialOptions{HTTPHeader: http.Header{"Origin": {o}}}
	}

	t.Run("same origin and no origin accepted", func(t *testing.T) {
		e := newEnv(t, HubConfig{})
		e.dial(t, "", withOrigin(e.srv.URL))
		e.dial(t, "", nil)
	})
	t.Run("foreign origin rejected", func(t *testing.T) {
		var logs bytes.Buffer
		e := newEnv(t, HubConfig{OriginSetting: "THE_SETTING", Logger: slog.New(slog.NewTextHandler(&logs, nil))})
		for range 3 {
			resp, body := e.dialRefused(t, withOrigin("https://evil.example"))
			if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "allow it with THE_SETTING=evil.example") {
				t.Fatalf("status %d %s, want 403 naming the setting", resp.StatusCode, body)
			}
		}
		if n := e.hub.Clients(); n != 0 {
			t.Fatalf("Clients() = %d after refusal", n)
		}
		if n := strings.Count(logs.String(), "cross-origin page refused"); n != 1 || !strings.Contains(logs.String(), `allow_with="THE_SETTING=evil.example"`) {
			t.Fatalf("%d log lines for 3 refusals (want 1, naming the setting): %s", n, logs.String())
		}
	})
	t.Run("allowed pattern", func(t *testing.T) {
		e := newEnv(t, HubConfig{OriginPatterns: []string{"*.shop.example", "[bad"}})
		e.dial(t, "", withOrigin("https://www.shop.example"))
		resp, _ := e.dialRefused(t, withOrigin("https://shop.example.evil"))
		if resp.StatusCode != http.StatusForbidden {
			t.Fatalf("status %d, want 403", resp.StatusCode)
		}
	})
	t.Run("explicit star allows all", func(t *testing.T) {
		e := newEnv(t, HubConfig{OriginPatterns: []string{"*"}})
		e.dial(t, "", withOrigin("https://anything.example:8443"))
	})
}

func TestSnapshotFirst(t *testing.T) {
	snap := []Price{upd("A", 3, 10), upd("B", 1, 20), upd("C", 9, 30)}
	e := newEnv(t, HubConfig{Snapshot: fixedSnapshot(snap)})
	// Published before anyone listened, and newer than the (lagging)
	// snapshot's A: the new client must start from it.
	e.hub.Publish([]Price{upd("A", 5, 12)})

	c := e.dial(t, "?snapshot=1", nil)
	plain := e.dial(t, "", nil)
	e.hub.Publish([]Price{upd("B", 2, 21)})

	for i, want := range []struct {
		id    string
		v     uint64
		price float64
	}{{"A", 5, 12}, {"B", 1, 20}, {"C", 9, 30}, {"B", 2, 21}} {
		m := read(t, c)
		if i == 1 && m.ProductID == "B" && m.Version == 2 {
			// The live B2 coalesced into the snapshot's B1, keeping its
			// place; C follows and nothing else.
			if m = read(t, c); m.ProductID != "C" {
				t.Fatalf("after coalesced B got %s", m.ProductID)
			}
			break
		}
		if m.ProductID != want.id || m.Version != want.v || m.NewPrice != want.price {
			t.Fatalf("message %d = %+v, want %s v%d %v", i, m, want.id, want.v, want.price)
		}
	}
	if m := read(t, plain); m.ProductID != "B" || m.Version != 2 {
		t.Fatalf("client without snapshot got %+v first, want live B v2", m)
	}
}

// A product twice in one batch reaches clients once, at its first position
// with its last update.
func TestBatchDuplicatesMerged(t *testing.T) {
	e := newEnv(t, HubConfig{})
	c := e.dial(t, "", nil)
	e.hub.Publish([]Price{upd("A", 1, 1), upd("B", 1, 2), upd("A", 2, 3), upd("C", 1, 4)})
	ms := readUntil(t, c, func(m wireMsg) bool { return m.ProductID == "C" })
	if got := sequence(ms); got != "A2 B1 C1" {
		t.Fatalf("received %s, want A2 B1 C1", got)
	}
	if got := e.metric(t, "dynaprice_ws_updates_coalesced_total"); got != 1 {
		t.Errorf("coalesced = %v, want 1", got)
	}
}

func TestSnapshotPanicClosesClient(t *testing.T) {
	e := newEnv(t, HubConfig{MaxClients: 1, Snapshot: panickySnapshot{}})
	c := e.dialRaw(t, "?snapshot=1", nil)
	_, err := tryRead(c, 5*time.Second)
	if s := websocket.CloseStatus(err); s != websocket.StatusInternalError {
		t.Fatalf("close status %v (%v), want StatusInternalError", s, err)
	}
	// The slot was given back.
	e.dial(t, "", nil)
}

func TestStaleAndNonFiniteDropped(t *testing.T) {
	e := newEnv(t, HubConfig{})
	c := e.dial(t, "", nil)
	e.hub.Publish([]Price{upd("A", 5, 1)})
	e.hub.Publish([]Price{upd("A", 3, 2), upd("A", 5, 3), {PriceChanged: true, ProductID: "B", Version: 1, Price: nanf()}})
	e.hub.Publish([]Price{upd("A", 6, 4), upd("A", 6, 5)})
	ms := readUntil(t, c, func(m wireMsg) bool { return m.Version == 6 })
	// A5 may have coalesced into A6; nothing else may appear.
	if got := sequence(ms); got != "A5 A6" && got != "A6" {
		t.Fatalf("received %s", got)
	}
	if p := ms[len(ms)-1].NewPrice; p != 4 {
		t.Fatalf("A6 price %v: the repeated version 6 replaced the first", p)
	}
	if got := e.metric(t, "dynaprice_ws_updates_stale_total"); got != 3 {
		t.Errorf("stale = %v, want 3", got)
	}
	// Nothing dropped as stale was queued behind A6 either: the next
	// message is one published after them all.
	e.hub.Publish([]Price{upd("Z", 1, 1)})
	if m := read(t, c); m.ProductID != "Z" {
		t.Errorf("got %+v after the last valid update, want the Z published after it", m)
	}
}

func nanf() float64 {
	var zero float64
	return zero / zero
}

func TestMaxClients(t *testing.T) {
	e := newEnv(t, HubConfig{MaxClients: 2})
	a := e.dial(t, "", nil)
	e.dial(t, "", nil)

	resp, body := e.dialRefused(t, nil)
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("status %d, want 503", resp.StatusCode)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	var msg struct{ Error string }
	if err := json.Unmarshal([]byte(body), &msg); err != nil || msg.Error == "" {
		t.Errorf("body %q is not {\"error\":...}", body)
	}

	a.Close(websocket.StatusNormalClosure, "")
	e.waitClients(t, "slot freed", 1)
	e.dial(t, "", nil)
}

func TestClose(t *testing.T) {
	e := newEnv(t, HubConfig{})
	a := e.dial(t, "", nil)
	b := e.dial(t, "", nil)
	e.hub.Publish([]Price{upd("A", 1, 1)})

	closed := make(chan struct{})
	go func() { e.hub.Close(); close(closed) }()
	for _, c := range []*websocket.Conn{a, b} {
		var err error
		for err == nil {
			_, err = tryRead(c, 10*time.Second)
		}
		if s := websocket.CloseStatus(err); s != websocket.StatusGoingAway {
			t.Fatalf("close status %v (%v), want StatusGoingAway", s, err)
		}
	}
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return")
	}
	if n := e.hub.Clients(); n != 0 {
		t.Errorf("Clients() = %d after Close", n)
	}
	resp, body := e.dialRefused(t, nil)
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, `"error"`) {
		t.Errorf("after Close: %d %q, want 503 with JSON error", resp.StatusCode, body)
	}
	e.hub.Close() // twice is fine
	e.hub.Publish([]Price{upd("A", 2, 2)})
	// A goroutine that has signalled its end may still be returning.
	poll.Until(t, 5*time.Second, "no goroutines left after Close", func() error {
		g := hubGoroutines()
		return poll.Check(g == "", "left:\n%s", g)
	})
	if got := e.metric(t, "dynaprice_ws_disconnects_total", "reason", "shutdown"); got != 2 {
		t.Errorf("shutdown disconnects = %v, want 2", got)
	}
}

// hubGoroutines returns the stacks of goroutines running the package's
// client code.
func hubGoroutines() string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "live.(*Hub).serve") || strings.Contains(g, "live.(*client).readLoop") ||
			strings.Contains(g, "live.(*Hub).ping") {
			out = append(out, g)
		}
	}
	return strings.Join(out, "\n\n")
}

// A client stuck in a write delays Close by at most about WriteTimeout.
func TestCloseWithStalledClient(t *testing.T) {
	e := newEnvSendBuf(t, HubConfig{WriteTimeout: 3 * time.Second}, 64<<10)
	e.dial(t, "", stalledDialOptions())
	fillUntilBlocked(t, e)
	start := time.Now()
	e.hub.Close()
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("Close took %v", d)
	}
	// A goroutine that has signalled its end may still be returning (as
	// in TestClose).
	poll.Until(t, 5*time.Second, "no goroutines left after Close", func() error {
		g := hubGoroutines()
		return poll.Check(g == "", "left:\n%s", g)
	})
}

func TestClientsCountAndDisconnect(t *testing.T) {
	e := newEnv(t, HubConfig{})
	a := e.dial(t, "", nil)
	b := e.dial(t, "", nil)
	e.dial(t, "", nil)
	if n := e.hub.Clients(); n != 3 {
		t.Fatalf("Clients() = %d, want 3", n)
	}
	a.Close(websocket.StatusNormalClosure, "bye")
	e.waitClients(t, "orderly close noticed", 2)
	b.CloseNow() // no close handshake: a dropped connection
	e.waitClients(t, "abrupt close noticed", 1)
	if got := e.metric(t, "dynaprice_ws_clients"); got != 1 {
		t.Errorf("gauge = %v, want 1", got)
	}
	if got := e.metric(t, "dynaprice_ws_disconnects_total", "reason", "client"); got != 2 {
		t.Errorf("client disconnects = %v, want 2", got)
	}
}

// Older clients send messages of their own; they are read and ignored, not
// punished.
func TestClientMessagesIgnored(t *testing.T) {
	e := newEnv(t, HubConfig{})
	c := e.dial(t, "", nil)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for range 5 {
		if err := c.Write(ctx, websocket.MessageText, []byte(`{"type":"subscribe","product_ids":["PA"]}`)); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Write(ctx, websocket.MessageBinary, []byte{1, 2, 3}); err != nil {
		t.Fatal(err)
	}
	e.hub.Publish([]Price{upd("PA", 1, 1)})
	if m := read(t, c); m.ProductID != "PA" {
		t.Fatalf("got %+v", m)
	}
	if n := e.hub.Clients(); n != 1 {
		t.Fatalf("Clients() = %d", n)
	}
}

func TestPingKeepsLiveClientsAndDropsDeadOnes(t *testing.T) {
	e := newEnv(t, HubConfig{PingInterval: 50 * time.Millisecond, WriteTimeout: 300 * time.Millisecond})
	var pings atomic.Int64
	live := e.dial(t, "", &websocket.DialOptions{OnPingReceived: func(context.Context, []byte) bool {
		pings.Add(1)
		return true // answer it
	}})
	// A client library answers pings only while something reads; this
	// one never does, like a peer that vanished.
	e.dial(t, "", nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			if _, _, err := live.Read(ctx); err != nil {
				return
			}
		}
	}()
	e.waitClients(t, "dead client dropped", 1)
	// The hub pings a client again only once it has answered the last
	// ping: five more pings mean four more answers taken.
	from := pings.Load()
	poll.Until(t, 10*time.Second, "five more pings to the live client", func() error {
		n := pings.Load() - from
		return poll.Check(n >= 5, "%d pings", n)
	})
	if n := e.hub.Clients(); n != 1 {
		t.Fatalf("Clients() = %d, want the live one kept", n)
	}
	if got := e.metric(t, "dynaprice_ws_disconnects_total", "reason", "ping"); got != 1 {
		t.Errorf("ping disconnects = %v, want 1", got)
	}
	cancel()
	wg.Wait()
}

// TestNotAWebSocket: requests that are not valid WebSocket handshakes get a
// JSON error with the status RFC 6455 asks for, not the library's plain
// text, and never hold a connection slot.
func TestNotAWebSocket(t *testing.T) {
	e := newEnv(t, HubConfig{MaxClients: 1})
	upgrade := http.Header{"Connection": {"keep-alive, Upgrade"}, "Upgrade": {"websocket"}}
	with := func(kv ...string) http.Header {
		h := upgrade.Clone()
		for i := 0; i < len(kv); i += 2 {
			h.Set(kv[i], kv[i+1])
		}
		return h
	}
	cases := []struct {
		name   string
		header http.Header
		status int
		// wantHeader is a response header the client needs to fix its
		// request, and its value.
		wantHeader, wantValue string
	}{
		{"plain GET", nil, http.StatusUpgradeRequired, "Upgrade", "websocket"},
		{"no Upgrade header", http.Header{"Connection": {"Upgrade"}}, http.StatusUpgradeRequired, "Upgrade", "websocket"},
		{"no version", upgrade, http.StatusBadRequest, "Sec-WebSocket-Version", "13"},
		{"version 8", with("Sec-WebSocket-Version", "8", "Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="), http.StatusUpgradeRequired, "Sec-WebSocket-Version", "13"},
		{"no key", with("Sec-WebSocket-Version", "13"), http.StatusBadRequest, "", ""},
		{"short key", with("Sec-WebSocket-Version", "13", "Sec-WebSocket-Key", "c2hvcnQ="), http.StatusBadRequest, "", ""},
	}
	for _, c := range cases {
		req, _ := http.NewRequest("GET", e.srv.URL+"/ws/prices", nil)
		for k, v := range c.header {
			req.Header[k] = v
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var body map[string]any
		if resp.StatusCode != c.status {
			t.Errorf("%s: status %d, want %d (%s)", c.name, resp.StatusCode, c.status, b)
		}
		if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("%s: Content-Type %q, want application/json", c.name, ct)
		}
		if err := json.Unmarshal(b, &body); err != nil || len(body) != 1 || body["error"] == "" || body["error"] == nil {
			t.Errorf("%s: body %q, want {\"error\": \"...\"}", c.name, b)
		}
		if c.wantHeader != "" && resp.Header.Get(c.wantHeader) != c.wantValue {
			t.Errorf("%s: %s: %q, want %q", c.name, c.wantHeader, resp.Header.Get(c.wantHeader), c.wantValue)
		}
	}
	if n := e.hub.Clients(); n != 0 {
		t.Fatalf("Clients() = %d", n)
	}
	// None of the refusals kept the only slot.
	e.dial(t, "", nil)
}

func TestSharedRegistry(t *testing.T) {
	reg := prometheus.NewRegistry()
	a := NewHub(HubConfig{Registerer: reg})
	b := NewHub(HubConfig{Registerer: reg})
	defer a.Close()
	defer b.Close()
	a.m.clients.Inc()
	b.m.clients.Inc()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "dynaprice_ws_clients" {
			if v := mf.GetMetric()[0].GetGauge().GetValue(); v != 2 {
				t.Fatalf("shared gauge = %v, want 2", v)
			}
			return
		}
	}
	t.Fatal(errors.New("gauge not registered"))
}

// The updates queued for a client go out in one write: five products
// published together cost one write, not five.
func TestQueuedUpdatesShareOneWrite(t *testing.T) {
	e := newEnv(t, HubConfig{})
	c := e.dial(t, "", nil)
	e.hub.Publish([]Price{upd("A", 1, 1), upd("B", 1, 2), upd("C", 1, 3), upd("D", 1, 4), upd("E", 1, 5)})
	ms := readUntil(t, c, func(m wireMsg) bool { return m.ProductID == "E" })
	if got := sequence(ms); got != "A1 B1 C1 D1 E1" {
		t.Fatalf("received %s", got)
	}
	poll.Until(t, 5*time.Second, "write counted", func() error {
		n := e.metric(t, "dynaprice_ws_writes_total")
		return poll.Check(n == 1, "writes = %v, want 1", n)
	})
	if got := e.metric(t, "dynaprice_ws_messages_sent_total"); got != 5 {
		t.Errorf("messages sent = %v, want 5", got)
	}
	if got := e.metric(t, "dynaprice_ws_delivery_lag_seconds"); got != 1 {
		t.Errorf("delivery lag observations = %v, want 1 (one per write)", got)
	}
}

// ?products= and subscribe messages choose what a client receives.
func TestSubscriptions(t *testing.T) {
	snap := []Price{upd("A", 1, 10), upd("B", 1, 20), upd("C", 1, 30)}
	e := newEnv(t, HubConfig{Snapshot: fixedSnapshot(snap)})
	onlyB := e.dial(t, "?products=B,C&snapshot=1", nil)
	all := e.dial(t, "", nil)

	if got := sequence(readUntil(t, onlyB, func(m wireMsg) bool { return m.ProductID == "C" })); got != "B1 C1" {
		t.Fatalf("snapshot of B,C: got %s", got)
	}
	e.hub.Publish([]Price{upd("A", 2, 11), upd("B", 2, 21)})
	if got := sequence(readUntil(t, all, func(m wireMsg) bool { return m.ProductID == "B" })); got != "A2 B2" {
		t.Fatalf("unfiltered client got %s", got)
	}
	if m := read(t, onlyB); m.ProductID != "B" || m.Version != 2 {
		t.Fatalf("B,C client got %+v, want B2 and not A", m)
	}

	// Switch to A: its current price comes first (the client asked for
	// snapshots), then only A.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := onlyB.Write(ctx, websocket.MessageText, []byte(`{"type":"subscribe","products":["A"]}`)); err != nil {
		t.Fatal(err)
	}
	if m := read(t, onlyB); m.ProductID != "A" || m.Version != 2 {
		t.Fatalf("after subscribing to A got %+v, want A's current price A2", m)
	}
	e.hub.Publish([]Price{upd("B", 3, 22), upd("A", 3, 12)})
	if m := read(t, onlyB); m.ProductID != "A" || m.Version != 3 {
		t.Fatalf("after subscribing to A got %+v, want A3 and not B3", m)
	}

	// A malformed choice is refused in JSON before the upgrade.
	_, resp, err := websocket.Dial(ctx, e.url("?products=,"), nil)
	if err == nil || resp == nil {
		t.Fatalf("?products=, dial: %v, want a refusal", err)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "products") {
		t.Fatalf("?products=, answered %d %s, want 400 naming products", resp.StatusCode, body)
	}
}

// Publish returns at once however many clients there are and whatever they
// do: the fan-out runs on the hub's dispatcher.
func TestPublishDoesNotWaitForFanOut(t *testing.T) {
	e := newEnvSendBuf(t, HubConfig{WriteTimeout: time.Minute}, 4096)
	e.dialRaw(t, "", stalledDialOptions())
	e.waitClients(t, "stalled client registered", 1)
	fillUntilBlocked(t, e)
	start := time.Now()
	for v := range uint64(1000) {
		e.hub.Publish([]Price{upd("A", 1000+v, 1)})
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("1000 Publish calls with a blocked client took %v", d)
	}
	poll.Until(t, 5*time.Second, "dispatched", func() error {
		return poll.Check(e.hub.dispatchedAll(), "inbox not dispatched")
	})
}

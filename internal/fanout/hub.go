// Package fanout delivers live price updates to WebSocket clients on
// GET /ws/prices.
//
// The engine hands every batch of price changes to Hub.Publish, which must
// never wait for a client: a browser on a bad network, or one that stopped
// reading, may not slow the engine or any other client. So each client owns a
// queue that holds at most one pending update per product. When the client
// falls behind, a newer update of a product replaces the queued one
// (coalescing) instead of growing the queue, and a client that cannot take a
// single write within Config.WriteTimeout is dropped. A price feed wants the
// latest price, not every intermediate one, so coalescing loses nothing a
// client needs.
//
// Each client is served by three goroutines at most: the HTTP handler's own,
// which writes; a reader, which discards what the client sends so that
// pings, pongs and the close handshake are processed and a disconnect is
// seen at once; and, while a ping is outstanding, a pinger. The handler owns
// the other two and does not return before they have exited; Hub.Close waits
// for every handler.
package fanout

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"
)

// Config configures a Hub. The zero value is usable.
type Config struct {
	// OriginPatterns are host patterns (path.Match syntax, matched case
	// insensitively against the Origin's host, or "scheme://host" if the
	// pattern contains "://") of cross-origin pages allowed to connect, in
	// addition to same-origin pages and non-browser clients, which send no
	// Origin. Empty allows same-origin only. "*" allows every origin; it is
	// honoured only because someone wrote it down on purpose, since it
	// exposes the feed to any web page.
	OriginPatterns []string
	// WriteTimeout bounds each write to a client, and the wait for the
	// answer to a ping. A client that cannot take a write within it is
	// dropped: it has stopped reading or its network cannot keep up, and
	// holding it open would only hold memory. Default 10s.
	WriteTimeout time.Duration
	// PingInterval is how often an idle-looking client is pinged, so that a
	// peer that vanished without a close (a laptop lid, a dead NAT entry) is
	// noticed and its resources freed. Default 30s.
	PingInterval time.Duration
	// MaxClients caps concurrent connections; 0 means no cap. Connections
	// beyond it are refused with HTTP 503 before the upgrade, so that the
	// client's backoff, not the server's memory, absorbs the overload.
	MaxClients int
	// Snapshot, if set, returns the current price of every product. A
	// client that connects with ?snapshot=1 receives it before any live
	// update, so that it can render a full page without a separate request
	// and without a gap between the two.
	Snapshot func() []Update
	// Logger receives connection-level events; nil discards them.
	Logger *slog.Logger
	// Registerer, if set, registers the hub's metrics.
	Registerer prometheus.Registerer
}

// Defaults for Config's zero values.
const (
	DefaultWriteTimeout = 10 * time.Second
	DefaultPingInterval = 30 * time.Second
)

// maxClientMessage is the largest message a client may send. Nothing a
// client sends is used, and older clients send at most small subscription
// or keep-alive messages; anything larger is abuse and closes the
// connection.
const maxClientMessage = 32 << 10

// errShutdown is the cancel cause of clients closed by Hub.Close; it tells
// the writer to send StatusGoingAway, which well-behaved clients take as
// "reconnect elsewhere" rather than as an error.
var errShutdown = errors.New("fanout: hub closed")

// Hub fans published updates out to connected WebSocket clients. It is an
// http.Handler for the WebSocket endpoint. All methods are safe for
// concurrent use.
type Hub struct {
	origins      []string
	writeTimeout time.Duration
	pingInterval time.Duration
	maxClients   int
	snapshot     func() []Update
	log          *slog.Logger
	m            metrics

	// pubMu serializes Publish: every client's queue must receive updates
	// in the order in which the hub accepted them, or a client could get a
	// product's version 5 after its version 6 from two racing calls.
	pubMu sync.Mutex
	// batch and targets are Publish's reusable scratch space, so that a
	// steady stream of batches allocates only the encoded messages.
	batch   []entry
	targets []*client

	// mu guards the fields below. Publish holds it only to record the
	// batch in latest and to copy the client list, never while touching a
	// client's queue, so connecting clients wait microseconds at most.
	mu      sync.Mutex
	closed  bool
	clients map[*client]struct{}
	// admitting counts connections let in by MaxClients whose upgrade has
	// not finished, so that a burst of connects cannot overshoot the cap.
	admitting int
	// latest is the newest accepted update of every product ever
	// published. It drops stale updates and lifts a Snapshot that lags
	// behind what was already published, so that a new client's first
	// price of a product is never older than one it may receive next.
	// Written only under both pubMu and mu, so Publish may read it under
	// pubMu alone.
	latest map[string]entry

	wg        sync.WaitGroup // one per admitted connection
	closeOnce sync.Once
}

// New returns a Hub configured by cfg.
func New(cfg Config) *Hub {
	h := &Hub{
		writeTimeout: cfg.WriteTimeout,
		pingInterval: cfg.PingInterval,
		maxClients:   max(cfg.MaxClients, 0),
		snapshot:     cfg.Snapshot,
		log:          cfg.Logger,
		clients:      make(map[*client]struct{}),
		latest:       make(map[string]entry),
	}
	if h.writeTimeout <= 0 {
		h.writeTimeout = DefaultWriteTimeout
	}
	if h.pingInterval <= 0 {
		h.pingInterval = DefaultPingInterval
	}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	for _, p := range cfg.OriginPatterns {
		// A malformed pattern would make every cross-origin handshake fail
		// with a log line each; say it once here and drop the pattern,
		// which fails closed.
		if _, err := path.Match(strings.ToLower(p), ""); err != nil {
			h.log.Error("fanout: ignoring malformed origin pattern", "pattern", p, "err", err)
			continue
		}
		h.origins = append(h.origins, p)
	}
	h.m = newMetrics(cfg.Registerer, h.log)
	return h
}

// Publish queues us for every connected client and returns without waiting
// for any of them. Updates of one product must come in increasing Version
// order across calls; an update whose non-zero Version is not above the last
// accepted one of its product is dropped as stale, and so is one with a NaN
// or infinite number, which JSON cannot carry. us is not retained.
//
// The cost is one encoding per update plus, per client, one lock and one
// map operation per update; nothing per client is allocated beyond a queue
// entry for a product that had none.
func (h *Hub) Publish(us []Update) {
	if len(us) == 0 {
		return
	}
	h.pubMu.Lock()
	defer h.pubMu.Unlock()

	// Encode outside mu: it is the bulk of the work and needs no lock.
	batch := h.batch[:0]
	var now time.Time
	nonFinite := 0
	for i := range us {
		u := &us[i]
		if !finite(u) {
			nonFinite++
			continue
		}
		if u.At.IsZero() {
			if now.IsZero() {
				now = time.Now()
			}
			c := *u
			c.At = now
			u = &c
		}
		batch = append(batch, entry{id: u.ProductID, version: u.Version, msg: appendMessage(nil, u)})
	}
	if nonFinite > 0 {
		h.log.Error("fanout: dropped updates with non-finite numbers", "count", nonFinite)
	}

	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		clear(batch)
		h.batch = batch[:0]
		return
	}
	kept := batch[:0]
	for _, e := range batch {
		if prev, ok := h.latest[e.id]; ok && e.version != 0 && e.version <= prev.version {
			continue
		}
		h.latest[e.id] = e
		kept = append(kept, e)
	}
	targets := h.targets[:0]
	for c := range h.clients {
		targets = append(targets, c)
	}
	h.mu.Unlock()

	if stale := len(batch) - len(kept); stale > 0 {
		h.m.stale.Add(float64(stale))
	}
	coalesced := 0
	for _, c := range targets {
		coalesced += c.push(kept)
	}
	if coalesced > 0 {
		h.m.coalesced.Add(float64(coalesced))
	}

	// Drop references so that scratch space does not keep departed
	// clients or old messages alive.
	clear(targets)
	h.targets = targets[:0]
	clear(batch)
	h.batch = batch[:0]
}

// Clients returns the number of connected clients.
func (h *Hub) Clients() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.clients)
}

// Close closes every client with StatusGoingAway, refuses new connections
// with 503, and returns once every client's goroutines have exited. A client
// in the middle of a write gets up to WriteTimeout to finish it, and the
// close handshake is bounded by the WebSocket library (5s each way), so a
// stuck peer delays Close by that much at most. Calling Close again waits
// for the same.
func (h *Hub) Close() {
	h.closeOnce.Do(func() {
		h.mu.Lock()
		h.closed = true
		for c := range h.clients {
			c.cancel(errShutdown)
		}
		h.mu.Unlock()
	})
	h.wg.Wait()
}

// ServeHTTP upgrades the request to a WebSocket that receives price updates
// until either side closes it. Refusals: 503 with a JSON error when the hub
// is closed or full, 403 for an origin that is neither the request's host
// nor allowed by Config.OriginPatterns, and the WebSocket library's own
// answers to requests that are not WebSocket handshakes.
func (h *Hub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if msg := h.admit(); msg != "" {
		if msg == msgFull {
			// A hint for clients that honour it; browsers' WebSocket API
			// cannot see it, so their reconnect backoff matters more.
			w.Header().Set("Retry-After", "5")
		}
		writeError(w, http.StatusServiceUnavailable, msg)
		return
	}
	defer h.wg.Done()

	conn, err := websocket.Accept(w, r, &websocket.AcceptOptions{OriginPatterns: h.origins})
	if err != nil {
		h.abandon()
		h.log.Debug("fanout: handshake refused", "remote", r.RemoteAddr, "origin", r.Header.Get("Origin"), "err", err)
		return
	}
	conn.SetReadLimit(maxClientMessage)

	var snap []entry
	if want, _ := strconv.ParseBool(r.URL.Query().Get("snapshot")); want && h.snapshot != nil {
		snap = encodeSnapshot(h.snapshot())
	}
	c := newClient(conn)
	if !h.register(c, snap) {
		conn.Close(websocket.StatusGoingAway, "server shutting down")
		return
	}
	h.log.Debug("fanout: client connected", "remote", r.RemoteAddr, "snapshot", snap != nil)
	reason := h.serve(c)
	h.unregister(c, reason)
	h.log.Debug("fanout: client disconnected", "remote", r.RemoteAddr, "reason", reason,
		"cause", context.Cause(c.ctx))
}

// Refusal messages, sent as {"error": ...}.
const (
	msgClosed = "server shutting down"
	msgFull   = "too many clients"
)

// admit reserves a connection slot, or says why there is none.
func (h *Hub) admit() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return msgClosed
	}
	if h.maxClients > 0 && len(h.clients)+h.admitting >= h.maxClients {
		return msgFull
	}
	h.admitting++
	h.wg.Add(1)
	return ""
}

// abandon gives back the slot of a connection whose handshake failed.
func (h *Hub) abandon() {
	h.mu.Lock()
	h.admitting--
	h.mu.Unlock()
}

// register turns an admitted connection into a client that Publish reaches,
// with the snapshot queued first. Both happen under mu, which Publish also
// takes to record its batch in latest and to pick its targets, so every
// update is either reflected in the snapshot (through latest) or queued for
// the client after it: none falls between the two. It reports false if the
// hub closed meanwhile.
func (h *Hub) register(c *client, snap []entry) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.admitting--
	if h.closed {
		return false
	}
	for i, e := range snap {
		if l, ok := h.latest[e.id]; ok && l.version > e.version {
			snap[i] = l
		}
	}
	c.push(snap)
	h.clients[c] = struct{}{}
	h.m.clients.Inc()
	return true
}

// unregister removes c. The metrics change under mu too, so that whoever
// sees Clients() drop also sees the disconnect counted.
func (h *Hub) unregister(c *client, reason string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.clients, c)
	h.m.clients.Dec()
	h.m.disconnects.WithLabelValues(reason).Inc()
}

// encodeSnapshot encodes what Config.Snapshot returned. It runs before the
// client is registered, outside every lock, because a catalog-sized
// snapshot takes a while to encode.
func encodeSnapshot(us []Update) []entry {
	now := time.Now()
	out := make([]entry, 0, len(us))
	for i := range us {
		u := us[i]
		if !finite(&u) {
			continue
		}
		if u.At.IsZero() {
			u.At = now
		}
		out = append(out, entry{id: u.ProductID, version: u.Version, msg: appendMessage(nil, &u)})
	}
	// Non-nil even when empty: the caller logs whether a snapshot was sent.
	return out
}

func writeError(w http.ResponseWriter, code int, msg string) {
	body, _ := json.Marshal(struct {
		Error string `json:"error"`
	}{msg})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_, _ = w.Write(append(body, '\n'))
}

// The WebSocket fan-out: Hub delivers live price changes to clients of
// GET /ws/prices.
//
// The engine hands every batch of committed prices to Hub.Publish, which must
// never wait for a client: a browser on a bad network, or one that stopped
// reading, may not slow the engine or any other client. So each client owns a
// queue that holds at most one pending update per product. When the client
// falls behind, a newer update of a product replaces the queued one
// (coalescing) instead of growing the queue, and a client that cannot take a
// single write within HubConfig.WriteTimeout is dropped. A price feed wants the
// latest price, not every intermediate one, so coalescing loses nothing a
// client needs.
//
// Each client is served by three goroutines at most: the HTTP handler's own,
// which writes; a reader, which discards what the client sends so that
// pings, pongs and the close handshake are processed and a disconnect is
// seen at once; and, while a ping is outstanding, a pinger. The handler owns
// the other two and does not return before they have exited; Hub.Close waits
// for every handler.
package live

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/dynaprice/dynaprice/internal/httperror"
	"github.com/prometheus/client_golang/prometheus"
)

// HubConfig configures a Hub. The zero value is usable.
type HubConfig struct {
	// OriginPatterns are host patterns (path.Match syntax, matched case
	// insensitively against the Origin's host, or "scheme://host" if the
	// pattern contains "://") of cross-origin pages allowed to connect, in
	// addition to same-origin pages and non-browser clients, which send no
	// Origin. Empty allows same-origin only. "*" allows every origin; it is
	// honoured only because someone wrote it down on purpose, since it
	// exposes the feed to any web page. Same-origin means the Origin's host
	// equals the request's Host header: behind a proxy that rewrites Host,
	// list the public host here.
	OriginPatterns []string
	// OriginSetting names where OriginPatterns come from (the flag or
	// environment variable), so that a refused origin's answer and log line
	// say how to allow it. Empty: "the allowed origins".
	OriginSetting string
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
	Snapshot func() []Price
	// Logger receives connection-level events; nil discards them.
	Logger *slog.Logger
	// Registerer, if set, registers the hub's metrics.
	Registerer prometheus.Registerer
}

// Defaults for HubConfig's zero values.
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
var errShutdown = errors.New("websocket: hub closed")

// Hub fans published updates out to connected WebSocket clients. It is an
// http.Handler for the WebSocket endpoint. All methods are safe for
// concurrent use.
type Hub struct {
	origins    []string
	originHint string
	// refusedLogged is when a refused origin was last logged (unix ns): at
	// most once a minute, since any web page can make refusals.
	refusedLogged atomic.Int64
	writeTimeout  time.Duration
	pingInterval  time.Duration
	maxClients    int
	snapshot      func() []Price
	log           *slog.Logger
	m             metrics

	// pubMu serializes Publish: every client's queue must receive updates
	// in the order in which the hub accepted them, or a client could get a
	// product's version 5 after its version 6 from two racing calls.
	pubMu sync.Mutex
	// targets and enc are Publish's reusable scratch space, so that a
	// steady stream of batches allocates only the batch and its messages.
	targets []*client
	enc     []byte

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
	// price of a product is never older than one it may receive next. It
	// holds one entry per product of the catalog, like the engine itself.
	latest map[string]latest
	// seq numbers Publish calls, to tell which latest entries the current
	// batch wrote.
	seq uint64

	wg        sync.WaitGroup // one per admitted connection
	closeOnce sync.Once
}

// NewHub returns a Hub configured by cfg.
func NewHub(cfg HubConfig) *Hub {
	h := &Hub{
		writeTimeout: cfg.WriteTimeout,
		pingInterval: cfg.PingInterval,
		maxClients:   max(cfg.MaxClients, 0),
		snapshot:     cfg.Snapshot,
		log:          cfg.Logger,
		originHint:   cfg.OriginSetting,
		clients:      make(map[*client]struct{}),
		latest:       make(map[string]latest),
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
	if h.originHint == "" {
		h.originHint = "the allowed origins"
	}
	for _, p := range cfg.OriginPatterns {
		// A malformed pattern would make every cross-origin handshake fail
		// with a log line each; say it once here and drop the pattern,
		// which fails closed.
		if _, err := path.Match(strings.ToLower(p), ""); err != nil {
			h.log.Error("websocket: ignoring malformed origin pattern", "pattern", p, "err", err)
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
// The cost is one encoding and one allocation per update, plus per client a
// lock and a wake-up; a client that has fallen behind also costs a map
// operation per update, to coalesce, and at most one queue entry per
// product.
func (h *Hub) Publish(us []Price) {
	if len(us) == 0 {
		return
	}
	h.pubMu.Lock()
	defer h.pubMu.Unlock()

	// Encode outside mu: it is the bulk of the work and needs no lock.
	// The batch is new each time because clients that keep up share it
	// instead of copying it (see client.push); it is never modified once
	// pushed.
	batch := make([]entry, 0, len(us))
	var now int64
	nonFinite := 0
	for i := range us {
		u := &us[i]
		if !u.PriceChanged {
			continue
		}
		if !finite(u) {
			nonFinite++
			continue
		}
		if u.At == 0 {
			if now == 0 {
				now = time.Now().UnixNano()
			}
			c := *u
			c.At = now
			u = &c
		}
		// Encode into reusable scratch space and copy out once: a single
		// allocation of the exact size instead of append's growth steps.
		h.enc = u.AppendMessage(h.enc[:0])
		batch = append(batch, entry{id: u.ProductID, version: u.Version, msg: bytes.Clone(h.enc)})
	}
	if nonFinite > 0 {
		h.log.Error("websocket: dropped updates with non-finite numbers", "count", nonFinite)
	}

	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return
	}
	// Filter in place. A product that comes twice in the batch keeps its
	// first position with its last update: clients get each product once
	// per batch, which is also what lets a client's queue take a batch
	// without looking anything up.
	h.seq++
	kept := batch[:0]
	stale, superseded := 0, 0
	for _, e := range batch {
		prev, ok := h.latest[e.id]
		switch {
		case ok && e.version != 0 && e.version <= prev.version:
			stale++
		case ok && prev.seq == h.seq:
			kept[prev.pos] = e
			h.latest[e.id] = latest{entry: e, seq: h.seq, pos: prev.pos}
			superseded++
		default:
			h.latest[e.id] = latest{entry: e, seq: h.seq, pos: len(kept)}
			kept = append(kept, e)
		}
	}
	targets := h.targets[:0]
	for c := range h.clients {
		targets = append(targets, c)
	}
	h.mu.Unlock()

	if stale > 0 {
		h.m.stale.Add(float64(stale))
	}
	// Queue for everyone first, then wake everyone. A woken writer is
	// runnable at once, and with many of them waking mid-loop the engine's
	// goroutine would be preempted and queued behind all of them before it
	// could finish the batch.
	coalesced := superseded
	for _, c := range targets {
		coalesced += c.push(kept)
	}
	if len(kept) > 0 {
		for _, c := range targets {
			c.signal()
		}
	}
	if coalesced > 0 {
		h.m.coalesced.Add(float64(coalesced))
	}

	// Drop references so that scratch space does not keep departed
	// clients alive.
	clear(targets)
	h.targets = targets[:0]
}

// latest is a product's newest accepted update, and where the Publish call
// numbered seq put it in its batch.
type latest struct {
	entry
	seq uint64
	pos int
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
// until either side closes it. Every refusal is a JSON error: 426 for a
// request that is not a WebSocket handshake (or asks for a protocol version
// other than 13), 400 for a malformed handshake, 503 when the hub is closed
// or full, and 403 for an origin that is neither the request's host nor
// allowed by HubConfig.OriginPatterns.
func (h *Hub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// Checked before admission: a request that cannot become a WebSocket
	// never takes a slot, and is told so in JSON rather than in the
	// library's plain text.
	if status, msg := checkHandshake(w.Header(), r); status != 0 {
		httperror.Write(w, status, msg)
		return
	}
	if msg := h.admit(); msg != "" {
		if msg == msgFull {
			// A hint for clients that honour it; browsers' WebSocket API
			// cannot see it, so their reconnect backoff matters more.
			w.Header().Set("Retry-After", "5")
		}
		httperror.Write(w, http.StatusServiceUnavailable, msg)
		return
	}
	defer h.wg.Done()

	if !h.originAllowed(r) {
		h.abandon()
		origin := r.Header.Get("Origin")
		host := origin
		if u, err := url.Parse(origin); err == nil && u.Host != "" {
			host = u.Host
		}
		hint := "origin " + strconv.Quote(origin) + " is not allowed (only same-origin pages are, by default); allow it with " +
			h.originHint + "=" + host
		if now := time.Now().UnixNano(); now-h.refusedLogged.Load() >= int64(time.Minute) {
			h.refusedLogged.Store(now)
			h.log.Warn("websocket: cross-origin page refused (logged at most once a minute)", "origin", origin,
				"remote", r.RemoteAddr, "allow_with", h.originHint+"="+host)
		}
		httperror.Write(w, http.StatusForbidden, hint)
		return
	}
	// The origin was checked above (so the refusal is JSON like every other
	// error); the library need not check it again.
	conn, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
	if err != nil {
		h.abandon()
		h.log.Debug("websocket: handshake refused", "remote", r.RemoteAddr, "origin", r.Header.Get("Origin"), "err", err)
		return
	}
	conn.SetReadLimit(maxClientMessage)

	snap, err := h.snapshotFor(r)
	if err != nil {
		h.abandon()
		h.log.Error("websocket: snapshot failed", "err", err)
		conn.Close(websocket.StatusInternalError, "snapshot unavailable")
		return
	}
	c := newClient(conn)
	if !h.register(c, snap) {
		conn.Close(websocket.StatusGoingAway, "server shutting down")
		return
	}
	h.log.Debug("websocket: client connected", "remote", r.RemoteAddr, "snapshot", snap != nil)
	reason := h.serve(c)
	h.unregister(c, reason)
	h.log.Debug("websocket: client disconnected", "remote", r.RemoteAddr, "reason", reason,
		"cause", context.Cause(c.ctx))
}

// checkHandshake applies RFC 6455's rules for an opening handshake (section
// 4.2.1), the same ones websocket.Accept applies, so that a refusal can be
// answered with dynaprice's JSON error instead of the library's plain text.
// It returns 0 for a valid handshake, otherwise the status and message, and
// sets on h the headers that tell the client what would be accepted.
func checkHandshake(h http.Header, r *http.Request) (int, string) {
	if !r.ProtoAtLeast(1, 1) {
		return http.StatusUpgradeRequired, "a WebSocket handshake needs HTTP/1.1 or later, got " + r.Proto
	}
	if !hasToken(r.Header, "Connection", "upgrade") || !hasToken(r.Header, "Upgrade", "websocket") {
		h.Set("Connection", "Upgrade")
		h.Set("Upgrade", "websocket")
		return http.StatusUpgradeRequired, "this endpoint is a WebSocket: send Connection: Upgrade and Upgrade: websocket"
	}
	if r.Method != http.MethodGet {
		h.Set("Allow", "GET")
		return http.StatusMethodNotAllowed, "a WebSocket handshake is a GET, not " + r.Method
	}
	// Section 4.4: an unknown version gets 426 and the versions the server
	// speaks; a missing one is a malformed handshake.
	switch v := r.Header.Values("Sec-WebSocket-Version"); {
	case len(v) == 0:
		h.Set("Sec-WebSocket-Version", "13")
		return http.StatusBadRequest, "missing Sec-WebSocket-Version; only version 13 is supported"
	case len(v) > 1 || strings.TrimSpace(v[0]) != "13":
		h.Set("Sec-WebSocket-Version", "13")
		return http.StatusUpgradeRequired, "unsupported Sec-WebSocket-Version " + strconv.Quote(strings.Join(v, ", ")) + "; only version 13 is supported"
	}
	keys := r.Header.Values("Sec-WebSocket-Key")
	if len(keys) != 1 {
		return http.StatusBadRequest, "want exactly one Sec-WebSocket-Key header, got " + strconv.Itoa(len(keys))
	}
	if k, err := base64.StdEncoding.DecodeString(strings.TrimSpace(keys[0])); err != nil || len(k) != 16 {
		return http.StatusBadRequest, "invalid Sec-WebSocket-Key: want 16 bytes in base64"
	}
	return 0, ""
}

// hasToken reports whether the comma-separated header key contains token,
// ignoring case.
func hasToken(hdr http.Header, key, token string) bool {
	for _, v := range hdr.Values(key) {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
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
			snap[i] = l.entry
		}
	}
	c.push(snap)
	c.signal()
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

// snapshotFor returns the encoded snapshot if r asks for one (?snapshot=1)
// and HubConfig.Snapshot is set. A panic in Snapshot, which is the engine's
// code, becomes an error: the connection was already upgraded, and
// net/http's own recovery would leave it and its slot open.
func (h *Hub) snapshotFor(r *http.Request) (snap []entry, err error) {
	if want, _ := strconv.ParseBool(r.URL.Query().Get("snapshot")); !want || h.snapshot == nil {
		return nil, nil
	}
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("websocket: HubConfig.Snapshot panicked: %v", p)
		}
	}()
	return encodeSnapshot(h.snapshot()), nil
}

// encodeSnapshot encodes what HubConfig.Snapshot returned. It runs before the
// client is registered, outside every lock, because a catalog-sized
// snapshot takes a while to encode.
func encodeSnapshot(us []Price) []entry {
	now := time.Now().UnixNano()
	out := make([]entry, 0, len(us))
	pos := make(map[string]int, len(us))
	for i := range us {
		u := us[i]
		if !finite(&u) {
			continue
		}
		if u.At == 0 {
			u.At = now
		}
		e := entry{id: u.ProductID, version: u.Version, msg: u.AppendMessage(nil)}
		// A client queue holds a product once; keep the newest.
		if j, ok := pos[e.id]; ok {
			if e.version >= out[j].version {
				out[j] = e
			}
			continue
		}
		pos[e.id] = len(out)
		out = append(out, e)
	}
	// Non-nil even when empty: the caller logs whether a snapshot was sent.
	return out
}

// originAllowed applies the browser origin rule: no Origin header (not a
// browser), the request's own host, or a host matching one of the
// configured patterns (path.Match syntax, case-insensitive; a pattern with
// "://" is matched against scheme://host).
func (h *Hub) originAllowed(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false
	}
	if strings.EqualFold(u.Host, r.Host) {
		return true
	}
	host := strings.ToLower(u.Host)
	full := strings.ToLower(u.Scheme) + "://" + host
	for _, p := range h.origins {
		target := host
		if strings.Contains(p, "://") {
			target = full
		}
		if ok, _ := path.Match(strings.ToLower(p), target); ok {
			return true
		}
	}
	return false
}

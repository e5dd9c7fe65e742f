// The WebSocket fan-out: Hub delivers live price changes to clients of
// GET /ws/prices.
//
// The engine hands every batch of committed prices to Hub.Publish, which
// must never wait for a client: a browser on a bad network, or one that
// stopped reading, may not slow the engine or any other client. So Publish
// only copies the batch into an inbox, and a dispatcher goroutine, started
// when there is work, encodes it and queues it for the clients. Each client
// owns a queue that holds at most one pending update per product. When the
// client falls behind, a newer update of a product replaces the queued one
// (coalescing) instead of growing the queue, and a client that cannot take
// a single write within HubConfig.WriteTimeout is dropped. A price feed
// wants the latest price, not every intermediate one, so coalescing loses
// nothing a client needs.
//
// A client's writer sends its whole queue in one write: each update stays
// one WebSocket message, but the messages leave in one system call (see
// corkConn). A client may choose its products (?products=, or a subscribe
// message); the dispatcher then queues only those for it, and wakes only
// the clients it queued something for.
//
// Each client is served by three goroutines at most: the HTTP handler's own,
// which writes; a reader, which handles subscribe messages and discards the
// rest so that pings, pongs and the close handshake are processed and a
// disconnect is seen at once; and, while a ping is outstanding, a pinger.
// The handler owns the other two and does not return before they have
// exited; Hub.Close waits for every handler and for the dispatcher.
package live

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"math"
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
	// Snapshot, if set, reads current prices for clients that connect
	// with ?snapshot=1, so that they can render a full page without a
	// separate request and without a gap between the two (see
	// Snapshotter).
	Snapshot Snapshotter
	// snapshotCurrent says that Snapshot is never behind what was
	// published (the View's: it stores a change before publishing it),
	// so the hub need not keep each product's last message to bring a
	// snapshot up to date.
	snapshotCurrent bool
	// Logger receives connection-level events; nil discards them.
	Logger *slog.Logger
	// Registerer, if set, registers the hub's metrics.
	Registerer prometheus.Registerer
}

// Snapshotter is where a WebSocket client's snapshot is read from. Without
// ?products= a snapshot is every product's current price, read and sent
// snapshotPage products at a time, so that a client costs the server a
// page however large the catalog; with it, the chosen products' (at most
// maxProducts).
type Snapshotter interface {
	// SnapshotPage returns the current prices of up to limit products that
	// follow after in catalog order ("": from the first), and the cursor
	// of the next page, "" after the last.
	SnapshotPage(ctx context.Context, after string, limit int) (ps []Price, next string, err error)
	// SnapshotOf returns the current prices of those of ids that exist.
	SnapshotOf(ctx context.Context, ids []string) ([]Price, error)
}

// snapshotPage is how many products a snapshot page holds. A client reads
// the next page once it has taken the last, between its live updates.
const snapshotPage = 1000

// snapshotTimeout bounds the read of one snapshot page.
const snapshotTimeout = 10 * time.Second

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
	snapshot      Snapshotter
	log           *slog.Logger
	m             metrics

	// inMu guards the inbox, where Publish leaves updates for the
	// dispatcher goroutine: at most one per product (inIdx says where),
	// in the order their products first came. accepted counts Publish
	// calls; done is the count the dispatcher has finished.
	inMu     sync.Mutex
	inbox    []pending
	inIdx    map[string]int
	accepted uint64
	done     atomic.Uint64
	// dispatching says whether the dispatcher runs (dwg counts it);
	// inClosed, set by Close, stops it and Publish. spare is the inbox's
	// other buffer.
	dispatching bool
	inClosed    bool
	dwg         sync.WaitGroup
	spare       []pending
	// targets and enc are the dispatcher's reusable scratch space, so that
	// a steady stream of batches allocates only the batch and its
	// messages.
	targets []*client
	enc     []byte

	// mu guards the fields below. The dispatcher holds it only to record
	// the batch in latest and to pick its targets, never while touching a
	// client's queue, so connecting clients wait microseconds at most.
	mu      sync.Mutex
	closed  bool
	clients map[*client]struct{}
	// subs indexes the clients that chose products (client.subs) by
	// product; clients that take every product are not in it.
	subs map[string]map[*client]struct{}
	// admitting counts connections let in by MaxClients whose upgrade has
	// not finished, so that a burst of connects cannot overshoot the cap.
	admitting int
	// watchers is admitting plus the clients, for Publish to read without
	// the lock (unwatched).
	watchers atomic.Int64
	// latest is the newest dispatched update of every product ever
	// published. It drops stale updates and lifts a Snapshot that lags
	// behind what was already published, so that a new client's first
	// price of a product is never older than one it may receive next. It
	// holds one entry per product of the catalog, like the engine itself.
	latest map[string]latest
	// lean says that latest keeps no messages (HubConfig.snapshotCurrent):
	// at a million products they were 300 MB kept for a lift that cannot
	// happen.
	lean bool
	// seq counts the batches dispatched: a latest entry records the batch
	// that set it, so that a snapshot page can tell which updates a
	// client already received (see queueSnapshot).
	seq uint64

	wg        sync.WaitGroup // one per admitted connection
	closeOnce sync.Once
}

// NewHub returns a Hub configured by cfg. It starts no goroutine: Publish
// starts the dispatcher when there is work, and it ends when there is none.
func NewHub(cfg HubConfig) *Hub {
	h := &Hub{
		writeTimeout: cfg.WriteTimeout,
		pingInterval: cfg.PingInterval,
		maxClients:   max(cfg.MaxClients, 0),
		snapshot:     cfg.Snapshot,
		log:          cfg.Logger,
		originHint:   cfg.OriginSetting,
		clients:      make(map[*client]struct{}),
		subs:         make(map[string]map[*client]struct{}),
		latest:       make(map[string]latest),
		lean:         cfg.snapshotCurrent,
		inIdx:        make(map[string]int),
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

// Publish hands us to the hub's dispatcher and returns at once: it takes a
// short lock and copies us, whatever the clients do, so that the engine's
// goroutine never pays for fan-out. Updates of one product must come in
// increasing Version order across calls; an update whose non-zero Version is
// not above the last accepted one of its product is dropped as stale, and so
// is a price change with a NaN or infinite number, which JSON cannot carry.
// Updates that do not change the price are not sent, but their versions
// keep snapshots and live updates apart (see register). us is not retained.
//
// Until the dispatcher takes them, updates wait in an inbox that holds at
// most one update per product, the newest: a dispatcher that falls behind
// coalesces, as client queues do, so the inbox never outgrows the catalog.
func (h *Hub) Publish(us []Price) {
	if len(us) == 0 || h.unwatched() {
		return
	}
	now := time.Now().UnixNano()
	stale, coalesced, nonFinite := 0, 0, 0
	h.inMu.Lock()
	for i := range us {
		u := us[i]
		if u.PriceChanged && !finite(&u) {
			nonFinite++
			continue
		}
		if u.At == 0 {
			u.At = now
		}
		j, ok := h.inIdx[u.ProductID]
		if !ok {
			h.inIdx[u.ProductID] = len(h.inbox)
			h.inbox = append(h.inbox, pending{Price: u, pub: now})
			continue
		}
		q := &h.inbox[j]
		if u.Version != 0 && u.Version <= q.Version {
			if u.PriceChanged {
				stale++
			}
			continue
		}
		if u.PriceChanged && q.PriceChanged {
			coalesced++
		}
		// A change followed by a version that kept the price is still a
		// change to announce, at the newer version.
		u.PriceChanged = u.PriceChanged || q.PriceChanged
		*q = pending{Price: u, pub: now}
	}
	h.accepted++
	if !h.dispatching && !h.inClosed {
		h.dispatching = true
		h.dwg.Add(1)
		go h.dispatch()
	}
	h.inMu.Unlock()
	if nonFinite > 0 {
		h.log.Error("websocket: dropped updates with non-finite numbers", "count", nonFinite)
	}
	if stale > 0 {
		h.m.stale.Add(float64(stale))
	}
	if coalesced > 0 {
		h.m.coalesced.Add(float64(coalesced))
	}
}

// pending is a published update waiting in the inbox, with when it was
// published.
type pending struct {
	Price
	pub int64
}

// dispatch is the dispatcher: it takes what Publish left in the inbox and
// queues it for the clients until the inbox is empty, then ends. Publish
// starts it when there is work and it is not running, so that an idle hub
// holds no goroutine; Close waits for it.
func (h *Hub) dispatch() {
	defer h.dwg.Done()
	for {
		// Taking the inbox and recording it in latest happen under mu
		// together (fanOut releases it), so that register finds every
		// published update in one or the other.
		h.mu.Lock()
		h.inMu.Lock()
		if len(h.inbox) == 0 || h.inClosed {
			h.dispatching = false
			h.done.Store(h.accepted)
			h.inMu.Unlock()
			h.mu.Unlock()
			return
		}
		work, seq := h.inbox, h.accepted
		h.inbox = h.spare[:0]
		h.spare = nil
		if len(work) > inboxKeep {
			// A map keeps its size once grown: after the start-up's
			// million prices, it would hold 130 MB for good.
			h.inIdx = make(map[string]int)
		} else {
			for _, p := range work {
				delete(h.inIdx, p.ProductID)
			}
		}
		h.inMu.Unlock()

		h.fanOut(work)
		clear(work)
		if cap(work) > inboxKeep {
			work = nil // the same for the buffer
		}
		h.inMu.Lock()
		h.spare = work
		h.inMu.Unlock()
		h.done.Store(seq)
	}
}

// unwatched reports whether a publish can be skipped: nobody is
// connected or connecting, and snapshots come from a view that already
// holds what is published (lean). A client that connects next starts from
// that view, and its floor (queueSnapshot) drops any older update still
// in the inbox, so nothing is lost; skipping spares a serve without
// watchers the hub's work and memory for every change (at start-up, a
// million prices).
func (h *Hub) unwatched() bool {
	if !h.lean {
		return false
	}
	return h.watchers.Load() == 0
}

// inboxKeep is the most updates an emptied inbox's index and buffer stay
// sized for.
const inboxKeep = 64 << 10

// fanOut encodes the price changes among ps and queues them for every
// client that wants them. It is called with h.mu held, and releases it.
// The cost is one encoding and one allocation per change, plus per client
// a lock and, if the client wants anything, a wake-up; a client that has
// fallen behind also costs a map operation per update, to coalesce.
func (h *Hub) fanOut(ps []pending) {
	batch := make([]entry, 0, len(ps))
	for i := range ps {
		if ps[i].PriceChanged {
			// Encode into scratch space and copy out once: a single
			// allocation of the exact size instead of append's growth.
			h.enc = ps[i].AppendMessage(h.enc[:0])
			batch = append(batch, entry{id: ps[i].ProductID, version: ps[i].Version, pub: ps[i].pub, msg: bytes.Clone(h.enc)})
		}
	}
	if h.closed {
		h.mu.Unlock()
		return
	}
	// The batch is new each time because clients that keep up share it
	// instead of copying it (see client.push); it is never modified once
	// pushed.
	kept := batch[:0]
	stale := 0
	h.seq++
	for i := range ps {
		p := &ps[i]
		l, ok := h.latest[p.ProductID]
		if ok && p.Version != 0 && p.Version <= l.top {
			if p.PriceChanged {
				stale++
				batch = batch[1:] // keep batch aligned with the changes left
			}
			continue
		}
		l.top = max(l.top, p.Version)
		if p.PriceChanged {
			l.entry, l.sent = batch[0], h.seq
			batch = batch[1:]
			kept = append(kept, l.entry)
			if h.lean {
				l.entry.msg = nil
			}
		}
		h.latest[p.ProductID] = l
	}
	targets := h.targets[:0]
	for c := range h.clients {
		if c.subs == nil {
			targets = append(targets, c)
		}
	}
	// Clients that chose products get a batch of their own, built from the
	// index of who chose what: the cost follows what they chose, not the
	// catalog times the clients.
	var picks map[*client][]entry
	if len(h.subs) > 0 {
		for _, e := range kept {
			for c := range h.subs[e.id] {
				if picks == nil {
					picks = make(map[*client][]entry)
				}
				picks[c] = append(picks[c], e)
			}
		}
	}
	h.mu.Unlock()

	if stale > 0 {
		h.m.stale.Add(float64(stale))
	}
	coalesced := 0
	if len(kept) > 0 {
		for _, c := range targets {
			coalesced += c.push(kept)
		}
		for _, c := range targets {
			c.signal()
		}
	}
	for c, es := range picks {
		coalesced += c.push(es)
		c.signal()
	}
	if coalesced > 0 {
		h.m.coalesced.Add(float64(coalesced))
	}
	// Drop references so that scratch space does not keep departed
	// clients alive.
	clear(targets)
	h.targets = targets[:0]
}

// dispatchedAll reports whether everything published so far has been queued
// for the clients connected at the time: tests wait for it.
func (h *Hub) dispatchedAll() bool {
	h.inMu.Lock()
	defer h.inMu.Unlock()
	return h.done.Load() == h.accepted
}

// latest is a product's newest price change sent to clients (entry) and
// the batch that sent it (sent, a value of Hub.seq), and the newest version
// of the product the hub has dispatched, price change or not (top).
type latest struct {
	entry
	top  uint64
	sent uint64
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
		h.inMu.Lock()
		h.inClosed = true
		h.inMu.Unlock()
	})
	h.dwg.Wait()
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
	subs, err := parseProducts(r.URL.Query())
	if err != nil {
		httperror.Write(w, http.StatusBadRequest, err.Error())
		return
	}
	if msg := h.admit(); msg != "" {
		if msg == msgFull {
			// A hint for clients that honour it; browsers' WebSocket API
			// cannot see it, so their reconnect backoff matters more.
			w.Header().Set("Retry-After", "5")
			msg = fmt.Sprintf("%s: this server takes at most %d WebSocket clients (--max-ws-clients); retry later, with backoff", msg, h.maxClients)
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
	// error); the library need not check it again. The corking writer puts
	// a corkConn under the connection, so that a client's queue goes out
	// in one write.
	cw := &corkingWriter{ResponseWriter: w, timeout: h.writeTimeout}
	conn, err := websocket.Accept(cw, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
	if err != nil {
		h.abandon()
		h.log.Debug("websocket: handshake refused", "remote", r.RemoteAddr, "origin", r.Header.Get("Origin"), "err", err)
		return
	}
	conn.SetReadLimit(maxClientMessage)

	wantSnap, _ := strconv.ParseBool(r.URL.Query().Get("snapshot"))
	var snap []entry
	next := ""
	if wantSnap && subs != nil {
		snap, err = h.snapshotOf(r.Context(), subs)
	} else if wantSnap {
		// The first page now, queued before any live update; the writer
		// reads the others as the client takes them (nextSnapshotPage).
		snap, next, err = h.snapshotPage(r.Context(), "", nil)
	}
	if err != nil {
		h.abandon()
		h.log.Error("websocket: snapshot failed", "err", err)
		conn.Close(websocket.StatusInternalError, "snapshot unavailable")
		return
	}
	c := newClient(conn, cw.conn, subs, wantSnap)
	if !h.register(c, snap, next) {
		conn.Close(websocket.StatusGoingAway, "server shutting down")
		return
	}
	h.log.Debug("websocket: client connected", "remote", r.RemoteAddr, "snapshot", snap != nil, "products", len(subs))
	reason := h.serve(c)
	h.unregister(c, reason)
	h.log.Debug("websocket: client disconnected", "remote", r.RemoteAddr, "reason", reason,
		"cause", context.Cause(c.ctx))
}

// maxProducts caps the products one client may choose, so that a client's
// share of the subscription index stays small.
const maxProducts = 10_000

// parseProducts reads ?products=PA,PB (repeatable): the products a client
// wants. nil means every product.
func parseProducts(q url.Values) (map[string]struct{}, error) {
	vs, ok := q["products"]
	if !ok {
		return nil, nil
	}
	var ids []string
	for _, v := range vs {
		for _, id := range strings.Split(v, ",") {
			if id = strings.TrimSpace(id); id != "" {
				ids = append(ids, id)
			}
		}
	}
	return productSet(ids)
}

// productSet turns a client's chosen products into a set, refusing an
// empty or oversized choice.
func productSet(ids []string) (map[string]struct{}, error) {
	if len(ids) == 0 {
		return nil, errors.New("products names no product; leave it out to receive every product")
	}
	if len(ids) > maxProducts {
		return nil, fmt.Errorf("products names %d products; at most %d are allowed (leave it out to receive every product)", len(ids), maxProducts)
	}
	set := make(map[string]struct{}, len(ids))
	for _, id := range ids {
		set[id] = struct{}{}
	}
	return set, nil
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
	h.watchers.Add(1)
	h.wg.Add(1)
	return ""
}

// abandon gives back the slot of a connection whose handshake failed.
func (h *Hub) abandon() {
	h.mu.Lock()
	h.admitting--
	h.watchers.Add(-1)
	h.mu.Unlock()
}

// register turns an admitted connection into a client that the dispatcher
// reaches, with the snapshot (or its first page) queued first. Both happen
// under mu, which the dispatcher also takes to record its batch in latest
// and to pick its targets, so every update is either reflected in the
// snapshot (through latest or the inbox) or queued for the client after
// it: none falls between the two. If next is not "", the snapshot goes on
// from there (see nextSnapshotPage). It reports false if the hub closed
// meanwhile.
func (h *Hub) register(c *client, snap []entry, next string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.admitting--
	if h.closed {
		h.watchers.Add(-1)
		return false
	}
	h.queueSnapshot(c, snap, h.seq)
	if next != "" {
		c.snap.Store(&pagedSnapshot{after: next, since: h.seq})
	}
	h.clients[c] = struct{}{}
	h.index(c, nil, c.subs)
	h.m.clients.Inc()
	return true
}

// queueSnapshot queues snap for c, first bringing each entry up to the
// newest update the hub holds. h.mu must be held.
//
// The snapshot comes from the live view, which the engine updates before it
// publishes, so it can be ahead of the dispatcher: an entry can hold a
// version that the dispatcher has yet to send. The client's floor records
// such versions, and push drops updates up to them, so that the client does
// not receive a price twice.
//
// since is the batch (Hub.seq) from which c has received every product's
// updates: a page of a snapshot that is read while live updates flow drops
// the entries whose product c already received as new or newer from a
// batch after since, for the same reason.
func (h *Hub) queueSnapshot(c *client, snap []entry, since uint64) {
	if len(snap) == 0 {
		return
	}
	floor := map[string]uint64{}
	kept := snap[:0]
	h.inMu.Lock()
	for _, e := range snap {
		l, ok := h.latest[e.id]
		if ok && l.sent != 0 && l.sent > since && l.entry.version >= e.version {
			continue // c has it
		}
		if ok && l.entry.msg != nil && l.entry.version > e.version {
			kept = append(kept, l.entry)
			continue
		}
		if j, ok := h.inIdx[e.id]; ok {
			if p := h.inbox[j]; p.PriceChanged && p.Version > e.version {
				e = entry{id: e.id, version: p.Version, pub: e.pub, msg: p.AppendMessage(nil)}
			}
		}
		kept = append(kept, e)
		if e.version != 0 && (!ok || e.version > l.top) {
			floor[e.id] = e.version
		}
	}
	h.inMu.Unlock()
	c.push(kept)
	// After the push, which the floor would filter. No batch reaches c in
	// between: a batch picks its targets under mu, which the caller holds.
	c.mu.Lock()
	for id, v := range floor {
		c.floor[id] = max(c.floor[id], v)
	}
	c.mu.Unlock()
	c.signal()
}

// pagedSnapshot is where a client's snapshot of every product goes on: the
// cursor of its next page, the batch from which the client has received
// every product's live updates (see queueSnapshot), and products to leave
// out (chosen before, so already current). A client's is replaced under
// Hub.mu; after only changes on the client's writer.
type pagedSnapshot struct {
	after string
	since uint64
	skip  map[string]struct{}
}

// nextSnapshotPage reads the next page of c's snapshot, if it has one
// pending, and queues it like the first. It runs on c's writer once the
// queue has been written, so a client holds one page at a time however
// large the catalog, and the live updates that come meanwhile are queued
// beside it. An error ends the snapshot; the caller ends the client, whose
// snapshot would otherwise stay incomplete.
func (h *Hub) nextSnapshotPage(c *client) error {
	st := c.snap.Load() // without the lock: most clients have none
	if st == nil {
		return nil
	}
	snap, next, err := h.snapshotPage(c.ctx, st.after, st.skip)
	h.mu.Lock()
	defer h.mu.Unlock()
	if c.snap.Load() != st {
		return nil // the client chose other products meanwhile
	}
	if err != nil {
		c.snap.Store(nil)
		return err
	}
	h.queueSnapshot(c, snap, st.since)
	st.after = next
	if next == "" {
		c.snap.Store(nil)
	}
	c.signal() // for the next page, if this one queued nothing
	return nil
}

// index moves c in the subscription index from the products in old to
// those in now (nil: every product, which the index does not hold). h.mu
// must be held.
func (h *Hub) index(c *client, old, now map[string]struct{}) {
	for id := range old {
		if _, keep := now[id]; keep {
			continue
		}
		if cs := h.subs[id]; cs != nil {
			delete(cs, c)
			if len(cs) == 0 {
				delete(h.subs, id)
			}
		}
	}
	for id := range now {
		cs := h.subs[id]
		if cs == nil {
			cs = make(map[*client]struct{})
			h.subs[id] = cs
		}
		cs[c] = struct{}{}
	}
}

// subscribe replaces the products c receives with ids (nil: every
// product). A client that connected with ?snapshot=1 gets the current price
// of each product it adds, as on connecting. It runs on c's reader, the only
// goroutine that changes c.subs once c is registered.
//
// Going back to every product starts a paged snapshot of the products not
// chosen before (see nextSnapshotPage). Choosing products while a paged
// snapshot is under way ends it, and sends the current price of every
// product chosen, which the client may already have had from it.
func (h *Hub) subscribe(c *client, ids map[string]struct{}) {
	h.mu.Lock()
	old, paging := c.subs, c.snap.Load() != nil
	h.mu.Unlock()
	var added map[string]struct{}
	if ids != nil && (old != nil || paging) {
		added = map[string]struct{}{}
		for id := range ids {
			if _, had := old[id]; !had || paging {
				added[id] = struct{}{}
			}
		}
	}
	var snap []entry
	if c.wantSnap && len(added) > 0 {
		var err error
		snap, err = h.snapshotOf(c.ctx, added)
		if err != nil {
			h.log.Error("websocket: snapshot failed", "err", err)
			snap = nil
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.clients[c]; !ok {
		return
	}
	h.index(c, old, ids)
	c.subs = ids
	c.snap.Store(nil)
	h.queueSnapshot(c, snap, math.MaxUint64)
	if c.wantSnap && ids == nil && old != nil {
		c.snap.Store(&pagedSnapshot{since: h.seq, skip: old})
		c.signal()
	}
}

// unregister removes c. The metrics change under mu too, so that whoever
// sees Clients() drop also sees the disconnect counted.
func (h *Hub) unregister(c *client, reason string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.clients[c]; ok {
		h.watchers.Add(-1)
	}
	delete(h.clients, c)
	h.index(c, c.subs, nil)
	h.m.clients.Dec()
	h.m.disconnects.WithLabelValues(reason).Inc()
}

// snapshotOf returns the encoded current prices of the products in ids,
// or nil if HubConfig.Snapshot is not set.
func (h *Hub) snapshotOf(ctx context.Context, ids map[string]struct{}) ([]entry, error) {
	if h.snapshot == nil {
		return nil, nil
	}
	list := make([]string, 0, len(ids))
	for id := range ids {
		list = append(list, id)
	}
	var ps []Price
	err := h.readSnapshot(ctx, func(ctx context.Context) (err error) {
		ps, err = h.snapshot.SnapshotOf(ctx, list)
		return err
	})
	if err != nil {
		return nil, err
	}
	return encodeSnapshot(ps), nil
}

// snapshotPage returns the encoded page of the snapshot of every product
// that follows after, without the products in skip, and the cursor of the
// next page ("" after the last, or without HubConfig.Snapshot).
func (h *Hub) snapshotPage(ctx context.Context, after string, skip map[string]struct{}) ([]entry, string, error) {
	if h.snapshot == nil {
		return nil, "", nil
	}
	var ps []Price
	next := ""
	err := h.readSnapshot(ctx, func(ctx context.Context) (err error) {
		ps, next, err = h.snapshot.SnapshotPage(ctx, after, snapshotPage)
		return err
	})
	if err != nil {
		return nil, "", err
	}
	if len(skip) > 0 {
		kept := make([]Price, 0, len(ps)) // ps may be the Snapshotter's
		for _, p := range ps {
			if _, ok := skip[p.ProductID]; !ok {
				kept = append(kept, p)
			}
		}
		ps = kept
	}
	return encodeSnapshot(ps), next, nil
}

// readSnapshot runs read within snapshotTimeout. A panic in it, which is
// the engine's code, becomes an error: the connection was already
// upgraded, and net/http's own recovery would leave it and its slot open.
func (h *Hub) readSnapshot(ctx context.Context, read func(context.Context) error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("websocket: HubConfig.Snapshot panicked: %v", p)
		}
	}()
	ctx, cancel := context.WithTimeout(ctx, snapshotTimeout)
	defer cancel()
	return read(ctx)
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
		e := entry{id: u.ProductID, version: u.Version, pub: now, msg: u.AppendMessage(nil)}
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

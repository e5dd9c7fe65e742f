package live

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// Disconnect reasons, as labels of dynaprice_ws_disconnects_total.
const (
	reasonClient   = "client"   // the client closed or the connection broke
	reasonSlow     = "slow"     // a write did not finish within WriteTimeout
	reasonPing     = "ping"     // a ping went unanswered within WriteTimeout
	reasonShutdown = "shutdown" // Hub.Close
	reasonSnapshot = "snapshot" // reading a page of its snapshot failed
)

// client is one connection. The dispatcher fills its queue; the handler
// goroutine drains it.
type client struct {
	conn *websocket.Conn
	// cork is under conn: the writer corks it while handing conn a queue's
	// messages, so that they go out in one write.
	cork *corkConn
	// ctx ends the client; its cause says why: errShutdown, or the error
	// that ended the reader.
	ctx    context.Context
	cancel context.CancelCauseFunc
	// wake tells the writer that the queue is not empty. One slot is
	// enough: the writer takes the whole queue per wake-up, so further
	// signals before it runs would carry no news.
	wake chan struct{}
	// subs are the products the client chose (nil: every product), and
	// wantSnap whether it asked for current prices. subs changes under the
	// hub's mu, and only on the client's reader once registered.
	subs     map[string]struct{}
	wantSnap bool
	// snap is the rest of a snapshot being sent a page at a time, nil
	// when none is. It changes under the hub's mu; the writer reads it
	// without, after every write.
	snap atomic.Pointer[pagedSnapshot]

	mu sync.Mutex
	// items are the pending updates in the order their products were first
	// queued, at most one per product; index maps a product to its item.
	// Replacing an item in place keeps the product's position, so a client
	// sees each product's updates in order and the queue never holds more
	// entries than there are products.
	items []entry
	index map[string]int
	// floor holds, for products whose snapshot was ahead of the dispatcher,
	// the version the snapshot sent: push drops updates up to it, which the
	// client already has.
	floor map[string]uint64
	// A client that keeps up finds each batch in an empty queue. Then the
	// queue simply becomes the batch, which the dispatcher never modifies
	// once pushed and which every such client shares: items is shared, and
	// costs the dispatcher neither a copy nor a map operation for that
	// client. Only a push into a non-empty queue, from a client that has
	// fallen behind, copies the queue into the client's own buf and builds
	// index (indexed).
	shared  bool
	indexed bool
	buf     []entry
}

func newClient(conn *websocket.Conn, cork *corkConn, subs map[string]struct{}, wantSnap bool) *client {
	ctx, cancel := context.WithCancelCause(context.Background())
	return &client{
		conn:     conn,
		cork:     cork,
		ctx:      ctx,
		cancel:   cancel,
		wake:     make(chan struct{}, 1),
		subs:     subs,
		wantSnap: wantSnap,
		index:    make(map[string]int),
		floor:    make(map[string]uint64),
	}
}

// push queues es, replacing a queued entry of the same product, and
// returns how many entries it replaced. es must hold each product at most
// once. It never blocks on the connection: the lock is held by the writer
// only while it swaps the queue out. The caller wakes the writer with
// signal.
func (c *client) push(es []entry) (coalesced int) {
	if len(es) == 0 {
		return 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.floor) > 0 {
		es = c.aboveFloor(es)
	}
	if len(es) == 0 {
		return 0
	}
	if len(c.items) == 0 {
		c.items, c.shared = es, true
		return 0
	}
	if c.shared {
		c.items, c.shared = append(c.buf[:0], c.items...), false
		c.buf = nil
	}
	if !c.indexed {
		for i, e := range c.items {
			c.index[e.id] = i
		}
		c.indexed = true
	}
	for _, e := range es {
		if i, ok := c.index[e.id]; ok {
			c.items[i] = e
			coalesced++
			continue
		}
		c.index[e.id] = len(c.items)
		c.items = append(c.items, e)
	}
	return coalesced
}

// aboveFloor returns es without the updates the client's snapshot already
// gave it, copying es only if it drops any. A product leaves the floor once
// the dispatcher reaches the snapshot's version. c.mu must be held.
func (c *client) aboveFloor(es []entry) []entry {
	var out []entry
	for i, e := range es {
		v, ok := c.floor[e.id]
		if ok && e.version >= v {
			delete(c.floor, e.id)
		}
		if ok && e.version <= v {
			if out == nil {
				out = append(make([]entry, 0, len(es)), es[:i]...)
			}
			continue
		}
		if out != nil {
			out = append(out, e)
		}
	}
	if out == nil {
		return es
	}
	return out
}

// signal wakes the writer if it is not already due to wake.
func (c *client) signal() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// take empties the queue and returns what it held, and whether that is the
// client's own buffer rather than a shared batch. The writer must not
// modify it, and hands it back with done once written.
func (c *client) take() (items []entry, own bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	items, own = c.items, !c.shared
	c.items, c.shared = nil, false
	if c.indexed {
		// Deleting the taken keys costs what was queued; clear(c.index)
		// would cost the map's capacity, which stays at its high-water
		// mark.
		for _, e := range items {
			delete(c.index, e.id)
		}
		c.indexed = false
	}
	return items, own
}

// done hands back what take returned, once written. The client's own
// buffer becomes buf again, so that a client that keeps falling behind
// does not allocate a queue per round; a shared batch is simply let go.
func (c *client) done(items []entry, own bool) {
	if !own {
		return
	}
	clear(items) // the messages are garbage once written
	c.mu.Lock()
	defer c.mu.Unlock()
	if cap(items) > cap(c.buf) {
		c.buf = items[:0]
	}
}

// serve runs the client until it ends and returns why it ended. It writes
// queued updates, pings, and on the way out closes the connection and waits
// for the goroutines it started.
func (h *Hub) serve(c *client) string {
	readDone := make(chan struct{})
	go h.readLoop(c, readDone)

	ticker := time.NewTicker(h.pingInterval)
	defer ticker.Stop()
	var pong chan error // non-nil while a ping is outstanding
	reason := ""
	for reason == "" {
		select {
		case <-c.ctx.Done():
			reason = reasonClient
		case <-c.wake:
			work, own := c.take()
			n, err := h.flush(c, work)
			c.done(work, own)
			if n > 0 {
				h.m.sent.Add(float64(n))
			}
			if err != nil {
				reason = reasonClient
				if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) {
					reason = reasonSlow
					h.log.Warn("websocket: dropping slow client", "timeout", h.writeTimeout)
				}
				c.cancel(err)
			} else if err := h.nextSnapshotPage(c); err != nil && c.ctx.Err() == nil {
				reason = reasonSnapshot
				h.log.Error("websocket: snapshot failed", "err", err)
				c.cancel(err)
			}
		case <-ticker.C:
			// A ping waits for its pong, which can take a round trip;
			// waiting here would hold up updates, so a helper waits.
			// Skip the tick if the last ping is still unanswered.
			if pong == nil {
				pong = make(chan error, 1)
				go h.ping(c, pong)
			}
		case err := <-pong:
			pong = nil
			if err != nil {
				reason = reasonPing
				c.cancel(err)
			}
		}
	}

	if errors.Is(context.Cause(c.ctx), errShutdown) {
		reason = reasonShutdown
		// Waits for the client's close frame, within the library's bounds.
		_ = c.conn.Close(websocket.StatusGoingAway, "server shutting down")
	} else if reason == reasonSnapshot {
		// As when the first page fails: the client is told, and reconnects.
		_ = c.conn.Close(websocket.StatusInternalError, "snapshot unavailable")
	} else {
		// The peer is gone or useless; a close handshake would only wait.
		_ = c.conn.CloseNow()
	}
	// A closed connection ends the reader's read and the pinger's wait.
	<-readDone
	if pong != nil {
		<-pong
	}
	return reason
}

// flush writes work in order and returns how many messages it wrote. The
// messages go out together: the library writes each into the corked
// connection, and uncorking sends them in one write (more only past
// corkLimit), which WriteTimeout bounds. It stops early, without error,
// when the client is ending: a closing hub should not wait for a backlog to
// drain.
func (h *Hub) flush(c *client, work []entry) (int, error) {
	oldest := int64(0)
	c.cork.Cork()
	n := 0
	var err error
	for _, e := range work {
		if c.ctx.Err() != nil {
			break
		}
		// Not derived from c.ctx: cancelling a write's context makes the
		// library drop the connection, and a hub that is closing wants to
		// finish the current write and then say StatusGoingAway. The
		// corkConn bounds the real writes.
		if err = c.conn.Write(context.Background(), websocket.MessageText, e.msg); err != nil {
			break
		}
		if oldest == 0 || e.pub < oldest {
			oldest = e.pub
		}
		n++
	}
	if uerr := c.cork.Uncork(); err == nil {
		err = uerr
	}
	if err != nil {
		return 0, err
	}
	if n > 0 {
		h.m.writes.Inc()
		h.m.lag.Observe(float64(time.Now().UnixNano()-oldest) / 1e9)
	}
	return n, nil
}

// ping sends one ping and reports on done whether its pong came within
// WriteTimeout. It ends at the latest when the connection closes.
func (h *Hub) ping(c *client, done chan<- error) {
	ctx, cancel := context.WithTimeout(context.Background(), h.writeTimeout)
	defer cancel()
	done <- c.conn.Ping(ctx)
}

// readLoop reads what the client sends until the connection fails or
// closes. Reading is what makes the library answer pings, take pongs and
// complete close handshakes, and a failed read is how a vanished client is
// noticed; the error ends the client. A subscribe message changes the
// products the client receives; anything else is ignored, as the original
// system's clients send messages of their own.
func (h *Hub) readLoop(c *client, done chan<- struct{}) {
	defer close(done)
	for {
		// Background, not c.ctx: cancelling a read's context makes the
		// library drop the connection, which would pre-empt the orderly
		// close that serve performs.
		typ, r, err := c.conn.Reader(context.Background())
		var msg []byte
		if err == nil {
			msg, err = io.ReadAll(r)
		}
		if err != nil {
			c.cancel(fmt.Errorf("read: %w", err))
			return
		}
		if typ != websocket.MessageText {
			continue
		}
		var m subscribeMessage
		if json.Unmarshal(msg, &m) != nil || m.Type != "subscribe" {
			continue
		}
		switch {
		case m.All:
			h.subscribe(c, nil)
		case m.Products != nil:
			set, err := productSet(*m.Products)
			if err != nil {
				// Said once, then the client goes: it asked for
				// something it cannot have, and a feed it did not ask
				// for would be wrong too.
				c.cancel(fmt.Errorf("subscribe: %w", err))
				_ = c.conn.Close(websocket.StatusPolicyViolation, truncate(err.Error(), 120))
				return
			}
			h.subscribe(c, set)
		}
	}
}

// subscribeMessage is what a client sends to choose its products:
// {"type":"subscribe","products":["PA","PB"]}, or {"type":"subscribe",
// "all":true} for every product. A subscribe message with neither (the
// original system's clients sent "product_ids") changes nothing.
type subscribeMessage struct {
	Type     string    `json:"type"`
	Products *[]string `json:"products"`
	All      bool      `json:"all"`
}

// truncate cuts s to at most n bytes, for a close reason (at most 123).
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

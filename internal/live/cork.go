package live

import (
	"bufio"
	"net"
	"net/http"
	"sync"
	"time"
)

// The WebSocket library writes and flushes every message on its own: one
// write system call per message, which at thousands of clients is most of
// the server's CPU. A corkConn sits under the library's connection and, while
// corked, collects what the library flushes, so that the writer can hand the
// library a client's whole queue and put it on the wire in one system call:
// several complete WebSocket messages in one TCP write, which clients cannot
// tell from separate writes.

// corkLimit is how much a corked connection collects before it writes
// anyway, so that a client's backlog never costs more memory than this.
const corkLimit = 64 << 10

// corkBufs holds the buffers of corked connections between writes: a client
// needs one only while its writer is writing, so that ten thousand idle
// clients do not hold ten thousand buffers.
var corkBufs = sync.Pool{New: func() any { b := make([]byte, 0, corkLimit); return &b }}

// corkConn is a net.Conn whose writes can be held back and written at once.
// It is safe for concurrent use: the library writes pings and close frames
// from other goroutines, one frame at a time.
type corkConn struct {
	net.Conn
	timeout time.Duration // bounds each real write

	mu     sync.Mutex
	corked bool
	buf    *[]byte // from corkBufs while corked and holding data
	err    error   // the first failed write; every later write fails too
}

// Write writes p, or while corked appends it to what Uncork will write.
func (c *corkConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return 0, c.err
	}
	if !c.corked {
		if err := c.writeLocked(p); err != nil {
			return 0, err
		}
		return len(p), nil
	}
	if c.buf == nil {
		c.buf = corkBufs.Get().(*[]byte)
	}
	*c.buf = append(*c.buf, p...)
	if len(*c.buf) >= corkLimit {
		if err := c.flushLocked(); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

// Cork holds back writes until Uncork.
func (c *corkConn) Cork() {
	c.mu.Lock()
	c.corked = true
	c.mu.Unlock()
}

// Uncork writes what was held back, in one write, and stops holding back.
func (c *corkConn) Uncork() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.corked = false
	if c.err != nil {
		c.release()
		return c.err
	}
	return c.flushLocked()
}

func (c *corkConn) flushLocked() error {
	if c.buf == nil {
		return nil
	}
	err := c.writeLocked(*c.buf)
	c.release()
	return err
}

// release gives the buffer back to the pool.
func (c *corkConn) release() {
	if c.buf == nil {
		return
	}
	*c.buf = (*c.buf)[:0]
	corkBufs.Put(c.buf)
	c.buf = nil
}

// writeLocked writes p within the timeout. The library never sets
// deadlines of its own (it closes the connection when a write's context
// ends), so this one is ours alone.
func (c *corkConn) writeLocked(p []byte) error {
	if len(p) == 0 {
		return nil
	}
	_ = c.Conn.SetWriteDeadline(time.Now().Add(c.timeout))
	_, err := c.Conn.Write(p)
	_ = c.Conn.SetWriteDeadline(time.Time{})
	if err != nil {
		c.err = err
	}
	return err
}

// corkingWriter hands the WebSocket library a corkConn when it hijacks the
// connection. conn is set by Hijack.
type corkingWriter struct {
	http.ResponseWriter
	timeout time.Duration
	conn    *corkConn
}

// Hijack takes over the connection through the wrapped writer (and any
// middleware around it) and returns it wrapped in a corkConn, with a
// buffered writer that writes to the corkConn rather than to the raw
// connection.
func (w *corkingWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	nc, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	if n := brw.Writer.Buffered(); n > 0 {
		// Nothing should be buffered: the 101 answer is written before the
		// hijack. Send it rather than lose it.
		if err := brw.Writer.Flush(); err != nil {
			nc.Close()
			return nil, nil, err
		}
	}
	w.conn = &corkConn{Conn: nc, timeout: w.timeout}
	return w.conn, bufio.NewReadWriter(brw.Reader, bufio.NewWriter(w.conn)), nil
}

// Unwrap lets http.NewResponseController reach the wrapped writer.
func (w *corkingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

package cli

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dynaprice/dynaprice/internal/poll"
)

// syncBuffer is a bytes.Buffer safe for the concurrent writes of a logger.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// get answers a GET on a new connection each time: a server that closed its
// listener must show as refused, not hide behind a kept-alive connection.
func get(url string) (int, map[string]any, http.Header, error) {
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	var m map[string]any
	b, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(b, &m)
	return resp.StatusCode, m, resp.Header, nil
}

// awaitDraining waits, after a SIGTERM sent at start, until /readyz at url
// answers 503 with a JSON error (within a second), and checks that
// /healthz still answers 200: draining, not gone.
func awaitDraining(t *testing.T, url string, start time.Time) {
	t.Helper()
	poll.Until(t, max(time.Until(start.Add(time.Second)), 0), "/readyz to answer 503 within 1s of SIGTERM", func() error {
		code, m, h, err := get(url + "/readyz")
		if err != nil {
			t.Fatalf("/readyz after SIGTERM: %v (the listener closed before /readyz turned 503)", err)
		}
		if code != 503 {
			return fmt.Errorf("/readyz %d %v", code, m)
		}
		if h.Get("Content-Type") != "application/json" || m["error"] == nil {
			t.Fatalf("/readyz while draining: %v %v, want a JSON error", h.Get("Content-Type"), m)
		}
		return nil
	})
	if code, _, _, err := get(url + "/healthz"); err != nil || code != 200 {
		t.Fatalf("/healthz while draining: %d %v", code, err)
	}
}

// awaitListenerClosed waits until url refuses connections, at most 8 s
// after a SIGTERM sent at start.
func awaitListenerClosed(t *testing.T, url string, start time.Time) {
	t.Helper()
	poll.Until(t, max(time.Until(start.Add(8*time.Second)), 0), "the listener to close within 8s of SIGTERM", func() error {
		if _, _, _, err := get(url + "/healthz"); err != nil {
			return nil
		}
		return errors.New("still accepting connections")
	})
}

// markListener is a listener whose connections watch what the server
// reads: once it has read mark and reads again, it has consumed everything
// up to mark and waits for more, and readMore is closed.
type markListener struct {
	net.Listener
	mark     []byte
	readMore chan struct{}
	once     sync.Once
}

func newMarkListener(t *testing.T, mark string) *markListener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return &markListener{Listener: ln, mark: []byte(mark), readMore: make(chan struct{})}
}

func (l *markListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &markConn{Conn: c, l: l}, nil
}

// markConn is a connection of a markListener. The server reads a
// connection from one goroutine at a time.
type markConn struct {
	net.Conn
	l    *markListener
	read []byte // what was read until mark
	seen bool   // mark was read
}

func (c *markConn) Read(p []byte) (int, error) {
	if c.seen {
		c.l.once.Do(func() { close(c.l.readMore) })
	}
	n, err := c.Conn.Read(p)
	if !c.seen {
		c.read = append(c.read, p[:n]...)
		c.seen = bytes.Contains(c.read, c.l.mark)
	}
	return n, err
}

// TestReadinessWhileLoading: the listener is open before the state is
// loaded. While the store cannot be opened yet (another connection holds
// SQLite's write lock, as a slow recovery would keep it busy), /healthz
// answers 200, and /readyz and the API answer 503 with a JSON error; once
// the lock is gone the server loads and /readyz turns 200.
func TestReadinessWhileLoading(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, testOptions(dir))
	s.post(`{"event_type":"purchase","product_id":"PA"}`)
	if err := s.stop(); err != nil {
		t.Fatal(err)
	}

	ctx := context.Background()
	db, err := sql.Open("sqlite", filepath.Join(dir, "dynaprice.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	locked := true
	defer func() {
		if locked {
			_, _ = conn.ExecContext(ctx, "ROLLBACK")
		}
	}()

	s2 := launchServer(t, testOptions(dir), io.Discard)
	poll.Until(t, 5*time.Second, "/healthz while loading", func() error {
		code, m, _, err := get(s2.url + "/healthz")
		if err != nil {
			return err
		}
		return poll.Check(code == 200 && m["status"] == "ok", "%d %v", code, m)
	})
	for _, path := range []string{"/readyz", "/price/PA", "/prices"} {
		code, m, h, err := get(s2.url + path)
		if err != nil || code != 503 || h.Get("Content-Type") != "application/json" || m["error"] == nil {
			t.Errorf("%s while loading: %d %v %v %v, want 503 with a JSON error", path, code, h.Get("Content-Type"), m, err)
		}
	}
	if _, err := conn.ExecContext(ctx, "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	locked = false
	s2.waitReady()
	if p := s2.price("PA"); p["demand"] != 5.0 {
		t.Fatalf("PA after loading = %v, want demand 5", p)
	}
}

// TestShutdownDeadlineCutsShort: a request that never finishes cannot hold
// the shutdown beyond --shutdown-timeout. Serve returns in time, says in the
// log what it cut short, and what was acknowledged before is kept.
func TestShutdownDeadlineCutsShort(t *testing.T) {
	dir := t.TempDir()
	o := testOptions(dir)
	o.ShutdownTimeout, o.Drain = time.Second, 200*time.Millisecond
	var logs syncBuffer
	// The body's first chunk, below; nothing else sent has it.
	const chunk = `[{"event_type":"view","product_id":"PB"}`
	ln := newMarkListener(t, chunk)
	o.Listener = ln
	s := launchServer(t, o, &logs)
	s.waitReady()
	s.post(`{"event_type":"cart","product_id":"PB"}`)

	// A POST /events whose body never ends.
	pr, pw := io.Pipe()
	defer pw.Close()
	req, _ := http.NewRequest("POST", s.url+"/events", pr)
	req.Header.Set("X-API-Key", ingestKey)
	go func() {
		resp, err := (&http.Client{Transport: &http.Transport{}}).Do(req)
		if err == nil {
			resp.Body.Close()
		}
	}()
	if _, err := io.WriteString(pw, chunk); err != nil {
		t.Fatal(err)
	}
	// The server has read the headers and the chunk and waits for the
	// rest of the body: the request is in progress.
	select {
	case <-ln.readMore:
	case <-time.After(10 * time.Second):
		t.Fatal("the server did not read the body's first chunk")
	}

	began := time.Now()
	if err := s.stop(); err != nil {
		t.Fatalf("Serve = %v", err)
	}
	if took := time.Since(began); took > 2*time.Second {
		t.Fatalf("shutdown took %v with a 1s deadline", took)
	}
	if !strings.Contains(logs.String(), "closing connections with requests still in flight, whose clients get no answer\" requests=1") {
		t.Fatalf("the log does not say what was cut short:\n%s", logs.String())
	}
	s2 := startServer(t, testOptions(dir))
	if p := s2.price("PB"); p["demand"] != 3.0 {
		t.Fatalf("PB after restart = %v, want demand 3 (the unfinished request applied nothing)", p)
	}
}

package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"syscall"
	"time"

	"github.com/dynaprice/dynaprice/internal/httpapi"
	"github.com/dynaprice/dynaprice/internal/live"
)

// The lifecycle shared by the roles that serve HTTP (serve, api, engine):
// the listener opens before anything is loaded or connected, and one
// deadline covers the whole shutdown after SIGTERM/SIGINT.

// role is one of the binary's long-running roles, in the shape of wtf's
// Main: Check validates its options (a mistake there is reported as such,
// even if a signal came meanwhile); Open starts it and returns once it
// serves; Run waits until ctx ends or the role fails; Close shuts it down
// in order within its deadline, or, after a failed Open, releases what Open
// had opened.
type role interface {
	Check() error
	Open(ctx context.Context) error
	Run(ctx context.Context) error
	Close() error
}

// runRole checks, opens, runs and closes r.
func runRole(ctx context.Context, log *slog.Logger, r role) error {
	if err := r.Check(); err != nil {
		return err
	}
	if err := r.Open(ctx); err != nil {
		_ = r.Close()
		return startErr(ctx, log, err)
	}
	err := r.Run(ctx)
	if cerr := r.Close(); err == nil {
		err = cerr
	}
	return err
}

const (
	defaultShutdownTimeout = 10 * time.Second
	defaultDrain           = time.Second
)

// addShutdownFlags registers --shutdown-timeout, whose help says what the
// shutdown covers, and, if drain is not nil, --drain.
func addShutdownFlags(fs *flag.FlagSet, timeout, drain *time.Duration, covers string) {
	fs.DurationVar(timeout, "shutdown-timeout", defaultShutdownTimeout, "deadline of the whole shutdown after SIGTERM/SIGINT: "+covers+"; what is still running then is cut short (and logged)")
	if drain != nil {
		fs.DurationVar(drain, "drain", defaultDrain, "after SIGTERM/SIGINT, keep serving this long with /readyz answering 503, so load balancers stop sending requests before the listener closes; 0 disables; must be shorter than --shutdown-timeout")
	}
}

// checkShutdown validates the shutdown flags (drain 0 for a role without
// --drain).
func checkShutdown(timeout, drain time.Duration) error {
	if timeout <= 0 {
		return fmt.Errorf("--shutdown-timeout %v: must be > 0", timeout)
	}
	if drain < 0 || drain >= timeout {
		return fmt.Errorf("--drain %v: must be >= 0 and shorter than --shutdown-timeout (%v)", drain, timeout)
	}
	return nil
}

// listener is a role's HTTP server. It serves from the moment it listens:
// until Open, /healthz answers 200 and everything else 503 (httpapi.Gate),
// so while the role loads its state or waits for its dependencies, probes
// see a live process that is not ready rather than a refused connection.
type listener struct {
	gate httpapi.Gate
	srv  *http.Server
	ln   net.Listener
	errc chan error

	mu     sync.Mutex
	active map[net.Conn]struct{} // connections with a request in progress
}

// listen listens on addr, or uses ln if it is not nil, and starts serving.
// Close it (deferred) for the case that the role fails to start; after
// shutdown.closeHTTP that does nothing.
// At most maxConns connections are open at once (0: no limit); beyond,
// new ones wait in the kernel's backlog until one closes. Request headers
// are limited to maxHeaderBytes.
func listen(addr string, ln net.Listener, maxConns int, log *slog.Logger) (*listener, error) {
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", addr); err != nil {
			if errors.Is(err, syscall.EADDRINUSE) {
				return nil, fmt.Errorf("listening on %s: the port is in use (another dynaprice, or another program); choose another with --addr HOST:PORT or API_PORT: %w", addr, err)
			}
			return nil, fmt.Errorf("listening on %s (--addr): %w", addr, err)
		}
	}
	if maxConns > 0 {
		ln = limitConns(ln, maxConns)
	}
	l := &listener{ln: ln, errc: make(chan error, 1), active: make(map[net.Conn]struct{})}
	l.srv = &http.Server{
		Handler: &l.gate, ConnState: l.connState,
		ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: maxHeaderBytes,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	go func() { l.errc <- l.srv.Serve(ln) }()
	return l, nil
}

// maxHeaderBytes bounds a request's header (Go's default is 1 MiB, which
// an unauthenticated client could send on every connection).
const maxHeaderBytes = 64 << 10

// limitConns returns ln accepting at most n connections open at once.
func limitConns(ln net.Listener, n int) net.Listener {
	return &connLimit{Listener: ln, slots: make(chan struct{}, n), closed: make(chan struct{})}
}

type connLimit struct {
	net.Listener
	slots     chan struct{}
	closed    chan struct{}
	closeOnce sync.Once
}

func (l *connLimit) Accept() (net.Conn, error) {
	select {
	case l.slots <- struct{}{}:
	case <-l.closed:
		return nil, net.ErrClosed
	}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.slots
		return nil, err
	}
	return &limitedConn{Conn: c, release: func() { <-l.slots }}, nil
}

func (l *connLimit) Close() error {
	l.closeOnce.Do(func() { close(l.closed) })
	return l.Listener.Close()
}

// limitedConn gives its slot back when closed, once.
type limitedConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}

// Open sends every request from now on to h.
func (l *listener) Open(h http.Handler) { l.gate.Open(h) }

// Addr is the address listened on.
func (l *listener) Addr() net.Addr { return l.ln.Addr() }

// Err delivers the error of a server that stopped by itself.
func (l *listener) Err() <-chan error { return l.errc }

// Close closes the listener and every connection at once.
func (l *listener) Close() { _ = l.srv.Close() }

// connState keeps track of the connections with a request in progress: a
// connection is active from when it starts reading a request until it is
// idle again, closed, or hijacked (a WebSocket, which its hub closes).
func (l *listener) connState(c net.Conn, st http.ConnState) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if st == http.StateActive {
		l.active[c] = struct{}{}
	} else {
		delete(l.active, c)
	}
}

// requests is how many connections have a request in progress.
func (l *listener) requests() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.active)
}

// shutdown is one deadline over everything a role does after it was told
// to stop, so that the process exits in time whatever hangs: a client that
// never finishes its body, a WebSocket peer that never answers the close, a
// commit stuck on a slow dependency. Its steps log what they cut short.
type shutdown struct {
	ctx     context.Context // ends at the deadline
	cancel  context.CancelFunc
	began   time.Time
	timeout time.Duration
	log     *slog.Logger
}

// beginShutdown starts the deadline; call end when done.
func beginShutdown(ctx context.Context, timeout time.Duration, log *slog.Logger) *shutdown {
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
	return &shutdown{ctx: sctx, cancel: cancel, began: time.Now(), timeout: timeout, log: log}
}

// drain keeps serving for d, or until the deadline, while /readyz (already
// false) answers 503: load balancers notice within their probe interval,
// and until then they keep sending requests, which are answered as usual.
func (s *shutdown) drain(d time.Duration) {
	if d <= 0 {
		return
	}
	s.log.Info("shutting down: draining (/readyz answers 503, requests are still served)", "drain", d)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-s.ctx.Done():
	}
}

// closeHTTP closes the listener and finishes the requests in flight. It gets
// the deadline but a tenth, which is kept for what comes after it (a last
// commit, closing stores and connections): a request that never ends must
// not leave them no time at all. Then connections still busy are closed.
// WebSockets are not among them: their hub closes them (closeHub).
func (s *shutdown) closeHTTP(l *listener) {
	ctx, cancel := context.WithTimeout(s.ctx, time.Until(s.began.Add(s.timeout*9/10)))
	defer cancel()
	if err := l.srv.Shutdown(ctx); err != nil {
		s.log.Warn("shutdown deadline: HTTP's share of it is over; closing connections with requests still in flight, whose clients get no answer",
			"requests", l.requests(), "err", err)
		l.Close()
	}
}

// closeHub starts closing hub's WebSockets, alongside the steps that follow
// (closeHTTP): a stuck WebSocket peer must not hold them up. The function it
// returns waits for the hub until the deadline.
func (s *shutdown) closeHub(hub *live.Hub) (wait func()) {
	closed := make(chan struct{})
	go func() { hub.Close(); close(closed) }()
	return func() {
		if _, ok := await(s.ctx, closed); !ok {
			s.reached("some WebSocket clients did not close in time", "clients", hub.Clients())
		}
	}
}

// wait waits until ch is closed, or the deadline. If the deadline comes
// first, it logs "shutdown deadline reached: <cutShort>" and returns false.
func (s *shutdown) wait(ch <-chan struct{}, cutShort string) bool {
	if _, ok := await(s.ctx, ch); !ok {
		s.reached(cutShort)
		return false
	}
	return true
}

// waitErr waits for a component's error on ch, like wait, and keeps it in
// *runErr unless that already holds one. It reports whether the component
// stopped.
func (s *shutdown) waitErr(ch <-chan error, runErr *error, cutShort string) bool {
	err, ok := await(s.ctx, ch)
	if !ok {
		s.reached(cutShort)
		return false
	}
	if *runErr == nil {
		*runErr = err
	}
	return true
}

// run runs f and waits for it like wait, leaving it running if the deadline
// comes first.
func (s *shutdown) run(cutShort string, f func()) bool {
	done := make(chan struct{})
	go func() { defer close(done); f() }()
	return s.wait(done, cutShort)
}

// reached logs what the deadline cut short.
func (s *shutdown) reached(what string, args ...any) {
	s.log.Warn("shutdown deadline reached: "+what, args...)
}

// end logs how long the shutdown took and releases its deadline.
func (s *shutdown) end() {
	s.log.Info("stopped", "took", time.Since(s.began).Round(time.Millisecond))
	s.cancel()
}

// await receives from ch unless ctx ends first; a value that is already
// there wins over an ended ctx.
func await[T any](ctx context.Context, ch <-chan T) (T, bool) {
	select {
	case v := <-ch:
		return v, true
	default:
	}
	select {
	case v := <-ch:
		return v, true
	case <-ctx.Done():
		var zero T
		return zero, false
	}
}

// startErr reports a failure to start, unless it is only the effect of a
// SIGTERM or SIGINT during the start, which is a clean stop: nothing had
// been accepted yet.
func startErr(ctx context.Context, log *slog.Logger, err error) error {
	if ctx.Err() != nil {
		log.Info("stopped while starting", "err", err)
		return nil
	}
	return err
}

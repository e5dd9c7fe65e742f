package cli

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/dynaprice/dynaprice/internal/httpapi"
)

// The lifecycle shared by the roles that serve HTTP (serve, api, engine):
// the listener opens before anything is loaded or connected, and one
// deadline covers the whole shutdown after SIGTERM/SIGINT.

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
	gate     httpapi.Gate
	srv      *http.Server
	ln       net.Listener
	errc     chan error
	inFlight atomic.Int64 // requests in handlers, WebSockets included
}

// listen listens on addr, or uses ln if it is not nil, and starts serving.
// Close it (deferred) for the case that the role fails to start; after
// shutdown.closeHTTP that does nothing.
func listen(addr string, ln net.Listener, log *slog.Logger) (*listener, error) {
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", addr); err != nil {
			return nil, fmt.Errorf("listening on %s: %w", addr, err)
		}
	}
	l := &listener{ln: ln, errc: make(chan error, 1)}
	l.srv = &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			l.inFlight.Add(1)
			defer l.inFlight.Add(-1)
			l.gate.ServeHTTP(w, r)
		}),
		ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	go func() { l.errc <- l.srv.Serve(ln) }()
	return l, nil
}

// Open sends every request from now on to h.
func (l *listener) Open(h http.Handler) { l.gate.Open(h) }

// Addr is the address listened on.
func (l *listener) Addr() net.Addr { return l.ln.Addr() }

// Err delivers the error of a server that stopped by itself.
func (l *listener) Err() <-chan error { return l.errc }

// Close closes the listener and every connection at once.
func (l *listener) Close() { _ = l.srv.Close() }

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
// websockets, if not nil, counts the WebSocket connections, which are in
// flight too but closed by their hub.
func (s *shutdown) closeHTTP(l *listener, websockets func() int) {
	ctx, cancel := context.WithTimeout(s.ctx, time.Until(s.began.Add(s.timeout*9/10)))
	defer cancel()
	if err := l.srv.Shutdown(ctx); err != nil {
		n := l.inFlight.Load()
		if websockets != nil {
			n -= int64(websockets())
		}
		s.log.Warn("shutdown deadline: HTTP's share of it is over; closing connections with requests still in flight, whose clients get no answer",
			"requests", n, "err", err)
		l.Close()
	}
}

// run runs f and waits for it until the deadline. If the deadline comes
// first, it logs "shutdown deadline reached: <cutShort>", leaves f running
// and returns false.
func (s *shutdown) run(cutShort string, f func()) bool {
	done := make(chan struct{})
	go func() { defer close(done); f() }()
	if _, ok := await(s.ctx, done); !ok {
		s.log.Warn("shutdown deadline reached: " + cutShort)
		return false
	}
	return true
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

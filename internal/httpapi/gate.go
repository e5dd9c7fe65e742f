package httpapi

import (
	"net/http"
	"sync/atomic"

	"github.com/dynaprice/dynaprice/internal/httperror"
)

// Gate is the handler a process serves while it is still loading its state,
// before the API exists: GET /healthz answers 200, so a liveness probe does
// not kill a process that is busy recovering a large store, and everything
// else, /readyz included, answers 503 with a JSON error, so a load balancer
// sends it nothing yet. A refused connection would tell probes neither.
// Open hands every later request to the real handler. The zero value is
// ready to use; it is safe for concurrent use.
type Gate struct {
	h atomic.Pointer[http.Handler]
}

// Open sends every request from now on to h.
func (g *Gate) Open(h http.Handler) { g.h.Store(&h) }

// ServeHTTP implements http.Handler.
func (g *Gate) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h := g.h.Load(); h != nil {
		(*h).ServeHTTP(w, r)
		return
	}
	if r.URL.Path == "/healthz" && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
		WriteHealth(w)
		return
	}
	w.Header().Set("Retry-After", "1")
	httperror.Write(w, http.StatusServiceUnavailable, "not ready: loading state")
}

var (
	healthBody = []byte(`{"status":"ok"}` + "\n")
	readyBody  = []byte(`{"status":"ready"}` + "\n")
)

// WriteHealth answers /healthz: 200 {"status":"ok"}.
func WriteHealth(w http.ResponseWriter) { writeJSONBytes(w, http.StatusOK, healthBody) }

// WriteReadiness answers /readyz: 200 {"status":"ready"} if why is "",
// else 503 {"error":"not ready"}, followed by ": why" when why says more.
func WriteReadiness(w http.ResponseWriter, why string) {
	switch why {
	case "":
		writeJSONBytes(w, http.StatusOK, readyBody)
	case "not ready":
		httperror.Write(w, http.StatusServiceUnavailable, why)
	default:
		httperror.Write(w, http.StatusServiceUnavailable, "not ready: "+why)
	}
}

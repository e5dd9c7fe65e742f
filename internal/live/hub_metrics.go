package live

import (
	"errors"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the hub's Prometheus instruments. They exist even without a
// Registerer so that the hot path never checks for nil.
type metrics struct {
	clients     prometheus.Gauge
	sent        prometheus.Counter
	coalesced   prometheus.Counter
	stale       prometheus.Counter
	disconnects *prometheus.CounterVec
	writes      prometheus.Counter
	lag         prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer, log *slog.Logger) metrics {
	m := metrics{
		clients: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "dynaprice_ws_clients",
			Help: "WebSocket price-feed clients currently connected.",
		}),
		sent: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "dynaprice_ws_messages_sent_total",
			Help: "Price update messages written to WebSocket clients.",
		}),
		coalesced: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "dynaprice_ws_updates_coalesced_total",
			Help: "Updates replaced by a newer update of the same product before being sent: once per update within a published batch, once per client in a lagging client's queue.",
		}),
		stale: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "dynaprice_ws_updates_stale_total",
			Help: "Published updates dropped because their version was not newer than one already published.",
		}),
		disconnects: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dynaprice_ws_disconnects_total",
			Help: "WebSocket clients disconnected, by reason: client, slow, ping, shutdown.",
		}, []string{"reason"}),
		writes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "dynaprice_ws_writes_total",
			Help: "Writes to WebSocket clients; each carries every update queued for its client, so messages sent / writes is the batching.",
		}),
		lag: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "dynaprice_ws_delivery_lag_seconds",
			Help:    "Time from Publish to the end of the write that delivered it, once per write, for the oldest update in the write.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}),
	}
	if reg == nil {
		return m
	}
	m.clients = register(reg, log, m.clients)
	m.sent = register(reg, log, m.sent)
	m.coalesced = register(reg, log, m.coalesced)
	m.stale = register(reg, log, m.stale)
	m.disconnects = register(reg, log, m.disconnects)
	m.writes = register(reg, log, m.writes)
	m.lag = register(reg, log, m.lag)
	return m
}

// register registers c, or adopts the collector already registered under
// its name, so that a second hub on the same registry (a restart within
// one process, tests) adds to the same series instead of failing. This is
// why the clients gauge is only ever incremented and decremented, never
// set.
func register[C prometheus.Collector](reg prometheus.Registerer, log *slog.Logger, c C) C {
	err := reg.Register(c)
	if err == nil {
		return c
	}
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing
		}
	}
	// The hub works without metrics; a clash is a wiring bug to report,
	// not a reason to refuse price updates.
	log.Error("websocket: metric not registered", "err", err)
	return c
}

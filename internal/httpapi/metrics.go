package httpapi

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

type httpMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newHTTPMetrics(reg prometheus.Registerer) *httpMetrics {
	m := &httpMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "dynaprice_http_requests_total",
			Help: "HTTP API requests by route and status code."}, []string{"route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "dynaprice_http_request_duration_seconds",
			Help: "HTTP API request latency by route.", Buckets: prometheus.ExponentialBuckets(0.0001, 4, 10)}, []string{"route"}),
	}
	if reg != nil {
		reg.MustRegister(m.requests, m.duration)
	}
	return m
}

// routeMetrics caches a route's children so the hot path does no label
// lookups for the common statuses.
type routeMetrics struct {
	m        *httpMetrics
	route    string
	ok       prometheus.Counter
	duration prometheus.Observer
}

func (m *httpMetrics) forRoute(route string) *routeMetrics {
	return &routeMetrics{m: m, route: route, ok: m.requests.WithLabelValues(route, "200"), duration: m.duration.WithLabelValues(route)}
}

func (r *routeMetrics) observe(status int, d time.Duration) {
	if status == 0 || status == 200 {
		r.ok.Inc()
	} else {
		r.m.requests.WithLabelValues(r.route, strconv.Itoa(status)).Inc()
	}
	r.duration.Observe(d.Seconds())
}

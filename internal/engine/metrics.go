package engine

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the engine's Prometheus collectors.
type Metrics struct {
	Applied      prometheus.Counter
	Duplicates   prometheus.Counter
	Rejected     prometheus.Counter
	PriceChanges prometheus.Counter
	Commits      prometheus.Counter
	CommitErrors prometheus.Counter
	CommitTime   prometheus.Histogram
	BatchEvents  prometheus.Histogram
}

// NewMetrics creates the collectors and registers them with reg (if not nil).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Applied:      prometheus.NewCounter(prometheus.CounterOpts{Name: "dynaprice_events_applied_total", Help: "Events applied to prices and committed."}),
		Duplicates:   prometheus.NewCounter(prometheus.CounterOpts{Name: "dynaprice_events_duplicate_total", Help: "Events acknowledged but not applied because their event_id was seen before."}),
		Rejected:     prometheus.NewCounter(prometheus.CounterOpts{Name: "dynaprice_events_rejected_total", Help: "Events rejected by the engine (unknown product)."}),
		PriceChanges: prometheus.NewCounter(prometheus.CounterOpts{Name: "dynaprice_price_changes_total", Help: "Published price changes."}),
		Commits:      prometheus.NewCounter(prometheus.CounterOpts{Name: "dynaprice_commits_total", Help: "Group commits to the store."}),
		CommitErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "dynaprice_commit_errors_total", Help: "Group commits that failed (their requests were answered with an error)."}),
		CommitTime: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "dynaprice_commit_duration_seconds", Help: "Time to commit one batch.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14)}),
		BatchEvents: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "dynaprice_commit_batch_events", Help: "Events per group commit.",
			Buckets: prometheus.ExponentialBuckets(1, 4, 9)}),
	}
	if reg != nil {
		reg.MustRegister(m.Applied, m.Duplicates, m.Rejected, m.PriceChanges, m.Commits, m.CommitErrors, m.CommitTime, m.BatchEvents)
	}
	return m
}

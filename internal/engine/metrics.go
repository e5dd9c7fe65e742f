package engine

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the partition driver's Prometheus collectors. Both modes
// register the same names, told apart by a constant role label ("serve"
// or "engine"), so one dashboard works for both; the Kafka engine adds its
// own dynaprice_stream_* transport metrics.
type Metrics struct {
	Applied      prometheus.Counter
	Duplicates   prometheus.Counter
	Rejected     prometheus.Counter
	PriceChanges prometheus.Counter
	Commits      prometheus.Counter
	CommitErrors prometheus.Counter
	CommitTime   prometheus.Histogram
	// PruneTime is how long a prune of remembered event ids took in the
	// store, in the background (Partition.Prune).
	PruneTime prometheus.Histogram
	// HistoryPruneTime is how long a run of the history retention took
	// (Store.PruneHistory, in the background); HistoryRolled counts the
	// changes it rolled into hourly summaries (or deleted), HistoryExpired
	// the summaries it deleted.
	HistoryPruneTime prometheus.Histogram
	HistoryRolled    prometheus.Counter
	HistoryExpired   prometheus.Counter
	BatchEvents      prometheus.Histogram
	Partitions       prometheus.Gauge
	Stalled          prometheus.Gauge
	// Reloads counts failed rounds that reloaded the whole state from
	// the store rather than undoing the round in memory.
	Reloads  prometheus.Counter
	Poisoned prometheus.Counter
	// DedupEvicted counts event ids forgotten before their window ended.
	DedupEvicted prometheus.Counter
	// BreakerTrips counts price-velocity breakers tripped; Held is how
	// many products they hold now.
	BreakerTrips prometheus.Counter
	Held         prometheus.Gauge
	// LearningFallback is how many products priced by a learning
	// strategy show their list price because their purchases stopped
	// arriving (a broken purchase feed, most likely).
	LearningFallback prometheus.Gauge
}

// NewMetrics creates the collectors with the label role=role and registers
// them with reg (if not nil).
func NewMetrics(reg prometheus.Registerer, role string) *Metrics {
	c := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Namespace: "dynaprice", Name: name, Help: help})
	}
	m := &Metrics{
		Applied:      c("events_applied_total", "Events applied to prices and committed."),
		Duplicates:   c("events_duplicate_total", "Events acknowledged or consumed but not applied again: a repeated event_id, or a record forwarded again after a crash."),
		Rejected:     c("events_rejected_total", "Events not applied because they cannot be (unknown product): refused to the client in serve, dead-lettered by the Kafka engine."),
		PriceChanges: c("price_changes_total", "Price changes committed (rows of price history)."),
		Commits:      c("commits_total", "Commits to the store (one per round of a partition)."),
		CommitErrors: c("commit_errors_total", "Commits that failed (serve answers their requests with 503; the Kafka engine retries)."),
		CommitTime: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "dynaprice", Name: "commit_duration_seconds",
			Help: "Time to commit one round.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14)}),
		PruneTime: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "dynaprice", Name: "dedup_prune_duration_seconds",
			Help: "Time to forget expired event ids in the store, in small steps beside the commits.", Buckets: prometheus.ExponentialBuckets(0.001, 4, 10)}),
		HistoryPruneTime: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "dynaprice", Name: "history_prune_duration_seconds",
			Help:    "Time of a run of the history retention (rolling changes older than --history-raw into hourly summaries, deleting summaries older than --history-hourly), in small steps beside the commits.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 12)}),
		HistoryRolled:  c("history_rolled_up_total", "Price changes older than --history-raw rolled into hourly summaries and deleted (PostgreSQL: counted by the engine that ran the retention)."),
		HistoryExpired: c("history_hourly_expired_total", "Hourly price summaries deleted for being older than --history-hourly."),
		BatchEvents: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "dynaprice", Name: "commit_batch_events",
			Help: "Events per commit.", Buckets: prometheus.ExponentialBuckets(1, 4, 9)}),
		Partitions: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "dynaprice", Name: "partitions_owned",
			Help: "Partitions this process prices (serve: 1; engine: its share of the topic's partitions)."}),
		DedupEvicted: c("dedup_evicted_in_window_total", "Event ids forgotten for want of room (--dedup-max) before --dedup-window ended: a retry of one would be applied twice. Raise --dedup-max if it grows."),
		Poisoned:     c("inputs_poisoned_total", "Requests or records rejected because the change they make cannot be stored (the rest of their round was committed)."),
		Stalled: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "dynaprice", Name: "partitions_stalled",
			Help: "Partitions that make no progress: a commit is being retried because the store fails, or their last 3 rounds or more failed. /readyz is 503 meanwhile."}),
		Reloads:      c("state_reloads_total", "Failed rounds after which the whole state was reloaded from the store (another writer committed, or the round could not be undone in memory)."),
		BreakerTrips: c("breaker_trips_total", "Products whose price-velocity breaker tripped: their dynamic price would have moved more than max_move_pct within move_window, and was held."),
		Held: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "dynaprice", Name: "prices_held",
			Help: "Products whose price the price-velocity breaker holds (as of the last tick); POST /release/{id} lets one go."}),
		LearningFallback: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "dynaprice", Name: "learning_fallback_products",
			Help: "Products priced by a learning strategy (thompson) that fell back to their list price because no purchase came in more views than their conversion makes credible (under 0.1% likely): check the shop's purchase events. Each recovers with its next purchase."}),
	}
	if reg != nil {
		reg = prometheus.WrapRegistererWith(prometheus.Labels{"role": role}, reg)
		reg.MustRegister(m.Applied, m.Duplicates, m.Rejected, m.PriceChanges, m.Commits, m.CommitErrors,
			m.CommitTime, m.PruneTime, m.HistoryPruneTime, m.HistoryRolled, m.HistoryExpired, m.BatchEvents, m.Partitions, m.Stalled, m.Reloads, m.Poisoned, m.DedupEvicted, m.BreakerTrips, m.Held, m.LearningFallback)
	}
	return m
}

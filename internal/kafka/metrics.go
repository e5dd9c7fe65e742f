package kafka

import "github.com/prometheus/client_golang/prometheus"

// metrics are the engine role's stream metrics.
type metrics struct {
	records, applied, duplicates, forwarded, deadLetters, historyRows prometheus.Counter
	commitErrors, fetchErrors, liveErrors, updates, updateErrors      prometheus.Counter
	commitSeconds                                                     prometheus.Histogram
	partitions                                                        prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *metrics {
	c := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Namespace: "dynaprice", Subsystem: "stream", Name: name, Help: help})
	}
	m := &metrics{
		records:      c("records_total", "Records consumed from the events and repartition topics and committed."),
		applied:      c("events_applied_total", "Events applied to prices."),
		duplicates:   c("duplicates_total", "Events dropped as already applied (repeated event_id or re-forwarded record)."),
		forwarded:    c("events_forwarded_total", "Events re-keyed through the repartition topic."),
		deadLetters:  c("dead_letters_total", "Records or events sent to the dead-letter topic."),
		historyRows:  c("history_rows_total", "Price history rows committed."),
		commitErrors: c("commit_errors_total", "Failed store commits (retried)."),
		fetchErrors:  c("fetch_errors_total", "Kafka fetch errors (retried)."),
		liveErrors:   c("live_write_errors_total", "Failed writes of live prices to Redis (retried)."),
		updates:      c("price_updates_total", "Price updates published."),
		updateErrors: c("price_update_errors_total", "Price updates that could not be published."),
		commitSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "dynaprice", Subsystem: "stream",
			Name: "commit_seconds", Help: "Duration of a partition's store commit.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14)}),
		partitions: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "dynaprice", Subsystem: "stream",
			Name: "partitions_owned", Help: "Partitions this engine owns."}),
	}
	if reg != nil {
		reg.MustRegister(m.records, m.applied, m.duplicates, m.forwarded, m.deadLetters, m.historyRows,
			m.commitErrors, m.fetchErrors, m.liveErrors, m.updates, m.updateErrors, m.commitSeconds, m.partitions)
	}
	return m
}

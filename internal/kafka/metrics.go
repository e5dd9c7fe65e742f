package kafka

import "github.com/prometheus/client_golang/prometheus"

// metrics are the Kafka engine's transport metrics (dynaprice_stream_*);
// what its partitions apply and commit is counted by engine.Metrics, under
// the same names as in serve.
type metrics struct {
	records, forwarded, deadLetters, fetchErrors, liveErrors, updates, updateErrors prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	c := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Namespace: "dynaprice", Subsystem: "stream", Name: name, Help: help})
	}
	m := &metrics{
		records:      c("records_total", "Records consumed from the events and repartition topics and committed."),
		forwarded:    c("events_forwarded_total", "Events re-keyed through the repartition topic."),
		deadLetters:  c("dead_letters_total", "Records or events sent to the dead-letter topic."),
		fetchErrors:  c("fetch_errors_total", "Kafka fetch errors (retried)."),
		liveErrors:   c("live_write_errors_total", "Failed writes of live prices to Redis (retried)."),
		updates:      c("price_updates_total", "Price updates published."),
		updateErrors: c("price_update_errors_total", "Price updates that could not be published."),
	}
	if reg != nil {
		reg.MustRegister(m.records, m.forwarded, m.deadLetters, m.fetchErrors, m.liveErrors, m.updates, m.updateErrors)
	}
	return m
}

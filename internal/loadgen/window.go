package loadgen

import (
	"sync"
	"time"

	"github.com/dynaprice/dynaprice/internal/pricing"
)

// recorder collects an HTTP run's outcomes, in total and per window. A
// few requests a second are recorded, by every client, so one mutex
// guards it all. Only the open window has a histogram (34 KiB): a closed
// one keeps its percentiles, so a day's soak costs a few hundred bytes
// per window.
type recorder struct {
	mu     sync.Mutex
	begin  time.Time
	window time.Duration
	// lastWindow is the index of the last window when the run's length
	// is known, -1 otherwise. Answers that come after it (to the last
	// batches, due just before the end) count in it, so that the last
	// row is not a sliver of a window with a meaningless rate.
	lastWindow int

	cur  int       // the open window's index
	open windowAcc // its figures
	rows []Window  // the closed windows

	tot                       windowAcc // the whole run (its hist is the overall latency)
	sent                      int64
	ans                       answer // Accepted, Rejected, Duplicates summed
	types                     [pricing.Purchase + 1]int64
	lastDone                  time.Duration
	failures                  map[string]int64
	firstFailure, firstReject string
}

// windowAcc is what a window (or the run) adds up.
type windowAcc struct {
	requests, failed, events int64
	hist                     histogram
}

func newRecorder(window, duration time.Duration) *recorder {
	r := &recorder{window: window, lastWindow: -1, failures: map[string]int64{}}
	if duration > 0 {
		r.lastWindow = int((duration - 1) / window)
	}
	return r
}

// windowOf is the window an answer at done (since the start) counts in.
func (r *recorder) windowOf(done time.Duration) int {
	w := int(done / r.window)
	if r.lastWindow >= 0 && w > r.lastWindow {
		w = r.lastWindow
	}
	return w
}

// record adds one request's outcome, answered at done.
func (r *recorder) record(done time.Duration, o outcome) {
	r.mu.Lock()
	defer r.mu.Unlock()
	// An answer timed just before a window's end may be recorded after
	// the window closed; it then counts in the open one.
	if w := r.windowOf(done); w > r.cur {
		r.closeLocked(w-1, r.window)
	}
	r.sent += o.events
	r.lastDone = max(r.lastDone, done)
	if o.kind != "" {
		r.open.failed++
		r.tot.failed++
		r.failures[o.kind]++
		if r.firstFailure == "" {
			r.firstFailure = o.detail
		}
		return
	}
	for _, acc := range []*windowAcc{&r.open, &r.tot} {
		acc.requests++
		acc.events += o.ans.Accepted
		acc.hist.record(o.latency)
	}
	r.ans.Accepted += o.ans.Accepted
	r.ans.Rejected += o.ans.Rejected
	r.ans.Duplicates += o.ans.Duplicates
	for t, n := range o.types {
		r.types[t] += n
	}
	if r.firstReject == "" {
		r.firstReject = o.firstReject
	}
}

// closeThrough closes the windows up to w (an index), each a whole window
// long.
func (r *recorder) closeThrough(w int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closeLocked(w, r.window)
}

// closeLocked closes the open window and every later one up to w, the
// last of them length long, the others a whole window.
func (r *recorder) closeLocked(w int, length time.Duration) {
	for r.cur <= w {
		l := r.window
		if r.cur == w {
			l = length
		}
		a := &r.open
		row := Window{Start: time.Duration(r.cur) * r.window, Length: l,
			Requests: a.requests, Failed: a.failed, Events: a.events, Latency: latencies(&a.hist)}
		if l > 0 {
			row.Rate = float64(a.events) / l.Seconds()
		}
		r.rows = append(r.rows, row)
		*a = windowAcc{}
		r.cur++
	}
}

// finish closes the last window, which runs to end, and returns its index
// (-1 when the run had no time at all).
func (r *recorder) finish(end time.Time) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	d := end.Sub(r.begin)
	w := max(r.windowOf(d), r.cur)
	length := d - time.Duration(w)*r.window
	if length <= 0 && r.open.requests == 0 && r.open.failed == 0 && w > 0 {
		w-- // the run ended on a window's edge: nothing is in the next
		length = r.window
	}
	if length <= 0 {
		return -1
	}
	r.closeLocked(w, length)
	return w
}

// setGauges records the server's RSS and disk use at the end of windows
// from to to.
func (r *recorder) setGauges(from, to int, rss, disk int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for w := from; w <= to && w < len(r.rows); w++ {
		r.rows[w].RSS, r.rows[w].Disk = rss, disk
	}
}

// progress is the figures the progress line shows.
type progress struct {
	accepted, requests, failed int64
	p50, p99                   time.Duration
	// last is the newest closed window, if any; rss the newest RSS read.
	last    Window
	hasLast bool
	rss     int64
}

func (r *recorder) progress() progress {
	r.mu.Lock()
	defer r.mu.Unlock()
	p := progress{accepted: r.ans.Accepted, requests: r.tot.requests, failed: r.tot.failed,
		p50: r.tot.hist.quantile(0.50), p99: r.tot.hist.quantile(0.99)}
	if n := len(r.rows); n > 0 {
		p.last, p.hasLast = r.rows[n-1], true
	}
	for i := len(r.rows) - 1; i >= 0 && p.rss == 0; i-- {
		p.rss = r.rows[i].RSS
	}
	return p
}

// report is the run's report.
func (r *recorder) report() HTTPReport {
	r.mu.Lock()
	defer r.mu.Unlock()
	rep := HTTPReport{
		Requests: r.tot.requests, Failed: r.tot.failed, FirstFailure: r.firstFailure,
		Sent: r.sent, Accepted: r.ans.Accepted, Rejected: r.ans.Rejected, Duplicates: r.ans.Duplicates,
		FirstRejection: r.firstReject,
		Views:          r.types[pricing.View], Carts: r.types[pricing.Cart], Purchases: r.types[pricing.Purchase],
		Elapsed: r.lastDone, Latency: latencies(&r.tot.hist), Windows: append([]Window(nil), r.rows...),
	}
	if len(r.failures) > 0 {
		rep.Failures = make(map[string]int64, len(r.failures))
		for k, v := range r.failures {
			rep.Failures[k] = v
		}
	}
	if rep.Elapsed > 0 {
		rep.Rate = float64(rep.Accepted) / rep.Elapsed.Seconds()
	}
	return rep
}

func latencies(h *histogram) Latencies {
	return Latencies{P50: h.quantile(0.50), P90: h.quantile(0.90), P99: h.quantile(0.99), P999: h.quantile(0.999), Max: h.max}
}

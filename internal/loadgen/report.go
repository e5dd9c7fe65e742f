package loadgen

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"
)

// WriteText writes r as a table for people. Write errors are not reported:
// the table is for a terminal, and the report itself is in r.
func (r Report) WriteText(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	p := func(format string, args ...any) { fmt.Fprintf(tw, format+"\n", args...) }
	p("events sent\t%d", r.Sent)
	p("events acked\t%d", r.Acked)
	p("elapsed\t%s", fmtDuration(r.Elapsed))
	p("send rate\t%.0f events/s\t(accepted by Kafka)", r.SendRate)
	if r.Matched > 0 {
		p("priced rate\t%.0f events/s\t(matched, first send to last matched update: %s)", r.PricedRate, fmtDuration(r.PricedElapsed))
	}
	p("price updates\t%d\t(%d stale)", r.Updates, r.Stale)
	p("matched\t%d\t(%s)", r.Matched, percent(r.Matched, r.Sent))
	p("unmatched\t%d", r.Unmatched)
	if r.Matched > 0 {
		p("latency p50\t%s", fmtDuration(r.Latency.P50))
		p("latency p90\t%s", fmtDuration(r.Latency.P90))
		p("latency p99\t%s", fmtDuration(r.Latency.P99))
		p("latency p99.9\t%s", fmtDuration(r.Latency.P999))
		p("latency max\t%s", fmtDuration(r.Latency.Max))
	}
	tw.Flush()
}

func percent(n, of int64) string {
	if of == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f%%", 100*float64(n)/float64(of))
}

// fmtDuration rounds d to about four significant digits: the histogram is
// accurate to under 1%, so more digits would only be noise.
func fmtDuration(d time.Duration) string {
	switch {
	case d >= time.Second:
		return d.Round(time.Millisecond).String()
	case d >= time.Microsecond:
		return d.Round(time.Microsecond).String()
	}
	return d.String()
}

// progressEvery is how often the progress display refreshes.
const progressEvery = time.Second

// startProgress refreshes a progress line on w until the returned stop is
// called, which writes a last line; line makes the line, given the time
// and how long the display has run. On a terminal the line is rewritten in
// place; elsewhere (a log file, a CI log) each refresh is a line of its own,
// since a carriage return would pile every refresh onto one line.
func startProgress(w io.Writer, line func(now time.Time, elapsed time.Duration) string) (stop func()) {
	tty := isTerminal(w)
	begin := time.Now()
	width := 0
	show := func(now time.Time) {
		l := line(now, now.Sub(begin))
		if !tty {
			fmt.Fprintln(w, l)
			return
		}
		pad := max(width-len(l), 0) // blank out the rest of a longer previous line
		width = len(l)
		fmt.Fprint(w, "\r"+l+strings.Repeat(" ", pad))
	}

	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(progressEvery)
		defer t.Stop()
		for {
			select {
			case now := <-t.C:
				show(now)
			case <-done:
				return
			}
		}
	})
	return func() {
		close(done)
		wg.Wait()
		show(time.Now())
		if tty {
			fmt.Fprintln(w)
		}
	}
}

// rateMeter turns a growing count into a rate since the previous reading.
type rateMeter struct {
	last  time.Time
	count int64
}

func (m *rateMeter) rate(now time.Time, count int64) float64 {
	r := 0.0
	if dt := now.Sub(m.last).Seconds(); dt > 0 && !m.last.IsZero() {
		r = float64(count-m.count) / dt
	}
	m.last, m.count = now, count
	return r
}

// progressLine is the Kafka run's progress line.
func (r *run) progressLine() func(time.Time, time.Duration) string {
	m := rateMeter{last: time.Now()}
	return func(now time.Time, elapsed time.Duration) string {
		sent := r.sent.Load()
		rate := m.rate(now, sent)
		s := r.m.snapshot()
		return fmt.Sprintf("%5.0fs  sent %d (%.0f/s)  updates %d  matched %d  p50 %s  p99 %s",
			elapsed.Seconds(), sent, rate, s.updates, s.matched, fmtDuration(s.p50), fmtDuration(s.p99))
	}
}

// isTerminal reports whether w is a character device, a terminal in
// practice.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// WriteJSONFile writes the report as indented JSON to path.
func (r Report) WriteJSONFile(path string) error { return writeJSONFile(path, r) }

func writeJSONFile(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// progressLine is the HTTP run's progress line: the overall figures, and
// the newest closed window's p99 and the server's RSS then, which are what
// drift in a soak.
func (h *httpRun) progressLine() func(time.Time, time.Duration) string {
	m := rateMeter{last: time.Now()}
	return func(now time.Time, elapsed time.Duration) string {
		p := h.rec.progress()
		line := fmt.Sprintf("%5.0fs  accepted %d (%.0f/s)  requests %d  failed %d  p50 %s  p99 %s",
			elapsed.Seconds(), p.accepted, m.rate(now, p.accepted), p.requests, p.failed, fmtDuration(p.p50), fmtDuration(p.p99))
		if p.hasLast {
			line += "  last window p99 " + fmtDuration(p.last.Latency.P99)
		}
		if p.rss > 0 {
			line += "  rss " + fmtBytes(p.rss)
		}
		return line
	}
}

// WriteText writes r as tables for people: the totals, then one row per
// window. Write errors are not reported, as for Report.
func (r HTTPReport) WriteText(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	p := func(format string, args ...any) { fmt.Fprintf(tw, format+"\n", args...) }
	rate := "as fast as answered"
	if r.TargetRate > 0 {
		rate = fmt.Sprintf("%.0f events/s", r.TargetRate)
	}
	p("target\tPOST %s\t(%s, batches of %d, %d clients)", r.URL, rate, r.Batch, r.Clients)
	ids := "without event_id"
	if r.EventIDs {
		ids = "unique event_ids"
	}
	p("products\t%d\t(%s; %s)", r.Products, r.Distribution, ids)
	p("requests\t%d\t(answered 2xx)", r.Requests)
	p("failed\t%d\t%s", r.Failed, failureSummary(r.Failures))
	if r.FirstFailure != "" {
		p("first failure\t%s", r.FirstFailure)
	}
	p("events sent\t%d\t(%d views, %d carts, %d purchases answered)", r.Sent, r.Views, r.Carts, r.Purchases)
	p("accepted\t%d\t(%s; %d duplicates)", r.Accepted, percent(r.Accepted, r.Sent), r.Duplicates)
	p("rejected\t%d", r.Rejected)
	if r.FirstRejection != "" {
		p("first rejection\t%s", r.FirstRejection)
	}
	p("elapsed\t%s", fmtDuration(r.Elapsed))
	p("rate\t%.0f events/s\t(accepted)", r.Rate)
	if r.Requests > 0 {
		from := "from when each batch was due"
		if r.TargetRate == 0 {
			from = "from each send"
		}
		p("latency p50\t%s\t(POST /events, %s)", fmtDuration(r.Latency.P50), from)
		p("latency p90\t%s", fmtDuration(r.Latency.P90))
		p("latency p99\t%s", fmtDuration(r.Latency.P99))
		p("latency p99.9\t%s", fmtDuration(r.Latency.P999))
		p("latency max\t%s", fmtDuration(r.Latency.Max))
	}
	if len(r.Windows) > 0 && r.Requests > 0 {
		worst := r.Windows[0]
		for _, win := range r.Windows[1:] {
			if win.Latency.P99 > worst.Latency.P99 {
				worst = win
			}
		}
		p("worst window p99\t%s\t(window at %s)", fmtDuration(worst.Latency.P99), worst.Start)
	}
	tw.Flush()
	if len(r.Windows) == 0 {
		return
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "window\tlength\tevents/s\trequests\tfailed\tp50\tp99\tmax\trss\tdisk\t")
	for _, win := range r.Windows {
		fmt.Fprintf(tw, "%s\t%s\t%.0f\t%d\t%d\t%s\t%s\t%s\t%s\t%s\t\n", win.Start, fmtDuration(win.Length), win.Rate,
			win.Requests, win.Failed, fmtDuration(win.Latency.P50), fmtDuration(win.Latency.P99), fmtDuration(win.Latency.Max),
			fmtBytes(win.RSS), fmtBytes(win.Disk))
	}
	tw.Flush()
}

// failureSummary lists failures by kind, most frequent first.
func failureSummary(f map[string]int64) string {
	if len(f) == 0 {
		return ""
	}
	kinds := make([]string, 0, len(f))
	for k := range f {
		kinds = append(kinds, k)
	}
	slices.SortFunc(kinds, func(a, b string) int {
		if c := cmp.Compare(f[b], f[a]); c != 0 {
			return c
		}
		return strings.Compare(a, b)
	})
	parts := make([]string, len(kinds))
	for i, k := range kinds {
		parts[i] = fmt.Sprintf("%s: %d", k, f[k])
	}
	return "(" + strings.Join(parts, ", ") + ")"
}

// fmtBytes shows a size in MiB (KiB below one); "-" when it is unknown
// (0).
func fmtBytes(n int64) string {
	switch {
	case n <= 0:
		return "-"
	case n < 1<<20:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
}

// WriteJSONFile writes the report as indented JSON to path.
func (r HTTPReport) WriteJSONFile(path string) error { return writeJSONFile(path, r) }

package loadgen

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
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
// called, which writes a last line. On a terminal the line is rewritten in
// place; elsewhere (a log file, a CI log) each refresh is a line of its own,
// since a carriage return would pile every refresh onto one line.
func startProgress(w io.Writer, r *run) (stop func()) {
	tty := isTerminal(w)
	begin := time.Now()
	last, lastSent, width := begin, int64(0), 0
	show := func(now time.Time) {
		sent := r.sent.Load()
		rate := 0.0
		if dt := now.Sub(last).Seconds(); dt > 0 {
			rate = float64(sent-lastSent) / dt
		}
		last, lastSent = now, sent
		s := r.m.snapshot()
		line := fmt.Sprintf("%5.0fs  sent %d (%.0f/s)  updates %d  matched %d  p50 %s  p99 %s",
			now.Sub(begin).Seconds(), sent, rate, s.updates, s.matched, fmtDuration(s.p50), fmtDuration(s.p99))
		if !tty {
			fmt.Fprintln(w, line)
			return
		}
		pad := max(width-len(line), 0) // blank out the rest of a longer previous line
		width = len(line)
		fmt.Fprint(w, "\r"+line+strings.Repeat(" ", pad))
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
func (r Report) WriteJSONFile(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

package loadgen

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dynaprice/dynaprice/internal/catalog"
	"github.com/dynaprice/dynaprice/internal/pricing"
)

// Defaults for the zero values of HTTPConfig.
const (
	DefaultBatch     = 500
	DefaultClients   = 16
	DefaultWindow    = 10 * time.Second
	DefaultTimeout   = 30 * time.Second
	DefaultKeyHeader = "X-API-Key"
)

// HTTPConfig configures RunHTTP: `dynaprice loadgen --url`, which posts
// batches of events to POST /events of `serve` (or of an API replica) and
// measures how long each answer takes, per window of the run, along with
// the server's memory. It is the soak test's load: a rate held for a long
// time, where what matters is that no window's latency or the server's
// RSS drifts.
type HTTPConfig struct {
	// URL is the server's base URL (http://host:8080); a trailing
	// /events is accepted too.
	URL string
	// Key is an ingest or admin API key, sent in KeyHeader (empty means
	// DefaultKeyHeader).
	Key, KeyHeader string
	// Rate is the events per second to send. Batches go out on a fixed
	// schedule (batch j when its last event is due, (j+1)*Batch/Rate
	// after the start) whatever the answers take, and a batch's latency is
	// measured from when it was due, not from when a client was free to
	// send it: a server that stalls shows its stall in every batch that
	// waited for it, rather than in only the one that was in flight
	// (coordinated omission). 0 has each client post back to back, which
	// finds the most the server takes; latency is then from the send.
	Rate float64
	// Events stops the run after this many events, Duration after the
	// batches due by then (Rate*Duration events); at least one must be
	// set.
	Events   int
	Duration time.Duration
	// Batch is the events per request (DefaultBatch when 0), Clients the
	// concurrent connections (DefaultClients when 0).
	Batch, Clients int
	// Synthetic, when > 0, sends events for the synthetic catalog of that
	// many products (catalog.WriteSynthetic writes it for the server);
	// otherwise Products, or the demo catalog when nil.
	Synthetic int
	Products  []pricing.Product
	// Distribution spreads the events over the products; Seed fixes
	// which events a run sends (see Spread).
	Distribution Distribution
	Seed         uint64
	// EventIDs gives every event a unique event_id, so that the server
	// does the deduplication work a real shop's feed costs it. Ids are
	// RunID, a dash and the event's number; an empty RunID is made
	// random, so that a second run is not taken for retries of the first.
	EventIDs bool
	RunID    string
	// Window is the length of the report's windows (DefaultWindow when
	// 0), Timeout a request's limit (DefaultTimeout when 0).
	Window, Timeout time.Duration
	// PID, when set, is the server's process, whose RSS is read from
	// /proc at the end of each window; otherwise the server's /metrics is
	// scraped for process_resident_memory_bytes, and RSS is left out if
	// it has none.
	PID int
	// DiskDir, when set, is a directory (the server's data directory)
	// whose files' total size is reported per window.
	DiskDir string
	// Progress, as in Config.
	Progress io.Writer
	// Client sends the requests; nil means one with Clients connections.
	Client *http.Client
}

// withDefaults fills in defaults and checks the configuration.
func (c HTTPConfig) withDefaults() (HTTPConfig, error) {
	c.URL = strings.TrimSuffix(strings.TrimSuffix(c.URL, "/"), "/events")
	if !strings.HasPrefix(c.URL, "http://") && !strings.HasPrefix(c.URL, "https://") {
		return c, fmt.Errorf("loadgen: URL %q must start with http:// or https://", c.URL)
	}
	if c.KeyHeader == "" {
		c.KeyHeader = DefaultKeyHeader
	}
	if c.Batch == 0 {
		c.Batch = DefaultBatch
	}
	if c.Clients == 0 {
		c.Clients = DefaultClients
	}
	if c.Window == 0 {
		c.Window = DefaultWindow
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if err := checkRun(c.Rate, c.Events, c.Duration); err != nil {
		return c, err
	}
	switch {
	case c.Batch < 0 || c.Clients < 0 || c.Window < 0 || c.Timeout < 0:
		return c, errors.New("loadgen: batch, clients, window and timeout must be > 0")
	case c.Synthetic < 0 || c.Synthetic > catalog.MaxSynthetic:
		return c, fmt.Errorf("loadgen: products %d: want 1 to %d", c.Synthetic, catalog.MaxSynthetic)
	case c.Synthetic > 0 && c.Products != nil:
		return c, errors.New("loadgen: give a synthetic catalog or products, not both")
	}
	if c.Synthetic == 0 {
		if c.Products == nil {
			c.Products = catalog.Demo().Products
		}
		if err := checkProducts(c.Products); err != nil {
			return c, err
		}
	}
	if c.EventIDs && c.RunID == "" {
		b := make([]byte, 6)
		_, _ = rand.Read(b)
		c.RunID = "lg" + hex.EncodeToString(b)
	}
	for i := 0; i < len(c.RunID); i++ {
		if b := c.RunID[i]; b < 0x21 || b > 0x7e || b == '"' || b == '\\' {
			return c, fmt.Errorf("loadgen: run id %q must be printable ASCII without quotes or backslashes", c.RunID)
		}
	}
	return c, nil
}

// checkProducts checks a list of products as the engines would.
func checkProducts(ps []pricing.Product) error {
	if len(ps) == 0 {
		return errors.New("loadgen: no products")
	}
	seen := make(map[string]bool, len(ps))
	for _, p := range ps {
		if err := p.Validate(); err != nil {
			return fmt.Errorf("loadgen: product %q: %w", p.ID, err)
		}
		if seen[p.ID] {
			return fmt.Errorf("loadgen: product %q appears twice", p.ID)
		}
		seen[p.ID] = true
	}
	return nil
}

// HTTPReport is the outcome of RunHTTP. Its JSON form gives durations in
// nanoseconds, as the field names say.
type HTTPReport struct {
	// The run's settings, so that a saved report says what it measured.
	URL          string       `json:"url"`
	TargetRate   float64      `json:"target_rate"`
	Batch        int          `json:"batch"`
	Clients      int          `json:"clients"`
	Products     int          `json:"products"`
	Distribution Distribution `json:"distribution"`
	EventIDs     bool         `json:"event_ids"`
	// Requests is the requests answered 2xx; Failed those that were not:
	// another status or no answer (an error, a timeout), by what
	// happened in Failures ("503", "timeout", "error"), the first one
	// described in FirstFailure.
	Requests     int64            `json:"requests"`
	Failed       int64            `json:"failed"`
	Failures     map[string]int64 `json:"failures,omitempty"`
	FirstFailure string           `json:"first_failure,omitempty"`
	// Sent is the events of every request sent, failed ones included.
	// Accepted, Rejected and Duplicates are the server's counts from its
	// 2xx answers (Accepted includes Duplicates), FirstRejection its
	// first reason for rejecting an event. Views, Carts and Purchases are
	// the events of the 2xx requests by type.
	Sent           int64  `json:"sent"`
	Accepted       int64  `json:"accepted"`
	Rejected       int64  `json:"rejected"`
	Duplicates     int64  `json:"duplicates"`
	FirstRejection string `json:"first_rejection,omitempty"`
	Views          int64  `json:"views"`
	Carts          int64  `json:"carts"`
	Purchases      int64  `json:"purchases"`
	// Elapsed is from the first batch's due time to the last answer;
	// Rate is Accepted over it.
	Elapsed time.Duration `json:"elapsed_ns"`
	Rate    float64       `json:"rate"`
	// Latency is of the 2xx requests, from when each was due to its whole
	// answer (see HTTPConfig.Rate).
	Latency Latencies `json:"latency_ns"`
	// Windows are the run cut into HTTPConfig.Window's lengths.
	Windows []Window `json:"windows"`
}

// Window is one window of an HTTP run. A request belongs to the window in
// which its answer (or its failure) came, so a window's rate is what the
// server got through in it.
type Window struct {
	// Start is from the run's start; Length is the window's, which for
	// the last one runs to the last answer.
	Start  time.Duration `json:"start_ns"`
	Length time.Duration `json:"length_ns"`
	// Requests answered 2xx and Failed, as in HTTPReport; Events is the
	// events the server accepted and Rate those over Length.
	Requests int64     `json:"requests"`
	Failed   int64     `json:"failed"`
	Events   int64     `json:"events"`
	Rate     float64   `json:"rate"`
	Latency  Latencies `json:"latency_ns"`
	// RSS is the server's resident memory at the window's end, Disk the
	// size of HTTPConfig.DiskDir; 0 when unknown.
	RSS  int64 `json:"rss_bytes,omitempty"`
	Disk int64 `json:"disk_bytes,omitempty"`
}

// RunHTTP runs the load cfg describes and reports. When ctx ends early it
// returns the report of what was answered so far along with an error.
// Failed requests do not stop the run: they are counted in the report.
func RunHTTP(ctx context.Context, cfg HTTPConfig) (HTTPReport, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return HTTPReport{}, err
	}
	ps := productSet{list: cfg.Products, n: cfg.Synthetic}
	spread, err := NewSpread(ps.len(), cfg.Distribution, cfg.Seed)
	if err != nil {
		return HTTPReport{}, err
	}
	client := cfg.Client
	if client == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = cfg.Clients
		tr.DisableCompression = true
		client = &http.Client{Transport: tr}
		defer tr.CloseIdleConnections()
	}
	h := &httpRun{cfg: cfg, ps: ps, spread: spread, client: client, events: cfg.URL + "/events",
		rec: newRecorder(cfg.Window, cfg.Duration), measured: -1}
	h.gauges = h.gaugeReader()

	begin := time.Now()
	h.begin, h.rec.begin = begin, begin
	stopWindows := h.closeWindows(ctx)
	stopProgress := func() {}
	if cfg.Progress != nil {
		stopProgress = startProgress(cfg.Progress, h.progressLine())
	}
	var wg sync.WaitGroup
	for range cfg.Clients {
		wg.Go(func() { h.sender(ctx) })
	}
	wg.Wait()
	stopWindows()
	end := time.Now()
	if last := h.rec.finish(end); last >= 0 {
		h.measure(last)
	}
	stopProgress()

	rep := h.rec.report()
	rep.URL, rep.TargetRate, rep.Batch, rep.Clients = h.events, cfg.Rate, cfg.Batch, cfg.Clients
	rep.Products, rep.Distribution, rep.EventIDs = ps.len(), cfg.Distribution, cfg.EventIDs
	if err := ctx.Err(); err != nil {
		return rep, fmt.Errorf("loadgen: run stopped: %w", err)
	}
	return rep, nil
}

// httpRun is the state of one RunHTTP.
type httpRun struct {
	cfg    HTTPConfig
	ps     productSet
	spread *Spread
	client *http.Client
	events string // the POST /events URL
	begin  time.Time
	next   atomic.Uint64 // the next batch to take
	rec    *recorder
	// gauges reads the server's RSS and disk use; nil when neither is
	// known. measured is the last window they were read for: the window
	// closer's, then, once it has stopped, the run's.
	gauges   func() (rss, disk int64)
	measured int
}

// answer is the part of POST /events' answer the report uses.
type answer struct {
	Accepted   int64 `json:"accepted"`
	Rejected   int64 `json:"rejected"`
	Duplicates int64 `json:"duplicates"`
	Errors     []struct {
		Error string `json:"error"`
	} `json:"errors"`
}

// sender is one connection's client: it takes the next batch, waits for
// its due time, posts it and records the outcome, until no batch is left
// or ctx ends.
func (h *httpRun) sender(ctx context.Context) {
	cfg := h.cfg
	batch := uint64(cfg.Batch)
	var deadline time.Duration // 0: none
	if cfg.Duration > 0 {
		deadline = cfg.Duration
	}
	idPrefix := ""
	if cfg.EventIDs {
		idPrefix = cfg.RunID + "-"
	}
	body := make([]byte, 0, cfg.Batch*(eventSizeHint+32))
	var resp []byte
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for ctx.Err() == nil {
		j := h.next.Add(1) - 1
		first := j * batch
		n := batch
		if cfg.Events > 0 {
			if first >= uint64(cfg.Events) {
				return
			}
			n = min(n, uint64(cfg.Events)-first)
		}
		var due time.Duration
		if cfg.Rate > 0 {
			// Due when its last event is, as a shop's client that
			// batches events as they happen would send it.
			due = time.Duration(float64(first+n) / cfg.Rate * float64(time.Second))
			if deadline > 0 && due > deadline {
				return
			}
			if wait := time.Until(h.begin.Add(due)); wait > 0 {
				timer.Reset(wait)
				select {
				case <-ctx.Done():
					return
				case <-timer.C:
				}
			}
		} else {
			due = time.Since(h.begin)
			if deadline > 0 && due >= deadline {
				return
			}
		}
		ts := h.begin.Add(due).UnixMilli()
		var types [pricing.Purchase + 1]int64
		body = append(body[:0], '[')
		for k := first; k < first+n; k++ {
			if k > first {
				body = append(body, ',')
			}
			ev := h.spread.Event(k)
			types[ev.Type]++
			body = appendSpreadEvent(body, h.ps, ev, ts, idPrefix, k)
		}
		body = append(body, ']')
		var o outcome
		resp, o = h.post(ctx, body, resp)
		if ctx.Err() != nil && o.kind != "" {
			return // cut short by the end of the run, not failed
		}
		o.events, o.types = int64(n), types
		done := time.Since(h.begin)
		o.latency = done - due
		h.rec.record(done, o)
	}
}

// outcome is one request's result.
type outcome struct {
	// kind is "" for a 2xx answer, else what went wrong ("503",
	// "timeout", "error"), detail its description.
	kind, detail string
	events       int64
	types        [pricing.Purchase + 1]int64 // events by type
	ans          answer
	firstReject  string
	latency      time.Duration
}

// post sends one batch and reads the answer into buf (reused).
func (h *httpRun) post(ctx context.Context, body, buf []byte) ([]byte, outcome) {
	rctx, cancel := context.WithTimeout(ctx, h.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodPost, h.events, bytes.NewReader(body))
	if err != nil {
		return buf, outcome{kind: "error", detail: err.Error()}
	}
	req.Header.Set("Content-Type", "application/json")
	if h.cfg.Key != "" {
		req.Header.Set(h.cfg.KeyHeader, h.cfg.Key)
	}
	resp, err := h.client.Do(req)
	if err != nil {
		return buf, failure(rctx, err)
	}
	defer resp.Body.Close()
	b := bytes.NewBuffer(buf[:0])
	_, err = b.ReadFrom(io.LimitReader(resp.Body, 1<<20))
	buf = b.Bytes()
	_, _ = io.Copy(io.Discard, resp.Body) // so that the connection is reused
	if err != nil {
		return buf, failure(rctx, err)
	}
	if resp.StatusCode/100 != 2 {
		return buf, outcome{kind: strconv.Itoa(resp.StatusCode), detail: fmt.Sprintf("%s: %.200s", resp.Status, bytes.TrimSpace(buf))}
	}
	var o outcome
	if err := json.Unmarshal(buf, &o.ans); err != nil {
		return buf, outcome{kind: "bad answer", detail: fmt.Sprintf("%s: %.200s", resp.Status, bytes.TrimSpace(buf))}
	}
	if len(o.ans.Errors) > 0 {
		o.firstReject = o.ans.Errors[0].Error
	}
	return buf, o
}

// failure describes a request that got no whole answer.
func failure(ctx context.Context, err error) outcome {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return outcome{kind: "timeout", detail: err.Error()}
	}
	return outcome{kind: "error", detail: err.Error()}
}

// closeWindows, until the returned stop is called, closes each window of
// the recorder at its end, so that windows in which nothing was answered
// are reported too, and reads the gauges for it.
func (h *httpRun) closeWindows(ctx context.Context) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTimer(time.Hour)
		defer t.Stop()
		// The last window of a run of known length is closed by finish,
		// since answers that come after it count in it.
		for w := 0; h.rec.lastWindow < 0 || w < h.rec.lastWindow; w++ {
			t.Reset(time.Until(h.begin.Add(time.Duration(w+1) * h.cfg.Window)))
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
			}
			h.rec.closeThrough(w)
			h.measure(w)
		}
	})
	return func() { close(done); wg.Wait() }
}

// measure reads the gauges into the windows up to w not measured yet
// (more than one when answers closed windows before their end came, or
// the run ended first).
func (h *httpRun) measure(w int) {
	if h.gauges == nil || w <= h.measured {
		return
	}
	rss, disk := h.gauges()
	h.rec.setGauges(h.measured+1, w, rss, disk)
	h.measured = w
}

// gaugeReader returns what reads the server's RSS and disk use.
func (h *httpRun) gaugeReader() func() (rss, disk int64) {
	var rss func() int64
	switch {
	case h.cfg.PID > 0:
		path := fmt.Sprintf("/proc/%d/status", h.cfg.PID)
		rss = func() int64 { return procRSS(path) }
	default:
		// Scraping stops for good once an answer lacks the metric (a
		// server without it); a failed scrape only misses its window.
		var absent atomic.Bool
		rss = func() int64 {
			if absent.Load() {
				return 0
			}
			v, ok := h.scrapeRSS()
			if !ok {
				absent.Store(true)
			}
			return v
		}
	}
	return func() (int64, int64) {
		var disk int64
		if h.cfg.DiskDir != "" {
			disk = dirSize(h.cfg.DiskDir)
		}
		return rss(), disk
	}
}

// metricRSS is the Prometheus process collector's resident memory.
const metricRSS = "process_resident_memory_bytes"

// scrapeRSS reads metricRSS from the server's /metrics. has is false when
// the server answered that it has no such metric (no /metrics, or one
// without it); a scrape that failed otherwise only reads 0.
func (h *httpRun) scrapeRSS() (rss int64, has bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, h.cfg.URL+"/metrics", nil)
	if err != nil {
		return 0, false
	}
	resp, err := h.client.Do(req)
	if err != nil {
		return 0, true
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, resp.Body)
		return 0, resp.StatusCode >= 500
	}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, found := strings.CutPrefix(sc.Text(), metricRSS+" "); found {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return int64(f), err == nil
		}
	}
	return 0, sc.Err() != nil
}

// procRSS reads VmRSS from a /proc/PID/status file; 0 when it cannot.
func procRSS(path string) int64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(v)
			if len(f) > 0 {
				kb, _ := strconv.ParseInt(f[0], 10, 64)
				return kb << 10
			}
		}
	}
	return 0
}

// dirSize is the total size of the regular files under dir; files that
// vanish while it is walked (a rotated log) are skipped.
func dirSize(dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return nil
		}
		if fi, err := d.Info(); err == nil {
			n += fi.Size()
		}
		return nil
	})
	return n
}

package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dynaprice/dynaprice/internal/catalog"
	"github.com/dynaprice/dynaprice/internal/ingest"
	"github.com/dynaprice/dynaprice/internal/pricing"
)

// fakeServer stands in for serve's POST /events and /metrics: it decodes
// each body with the engine's decoder, answers with its counts, and fails
// the requests fail says to with 503.
type fakeServer struct {
	t    *testing.T
	key  string
	fail func(n int) bool // request number (from 0) -> answer 503
	// stall, when set, is how long the first request waits.
	stall time.Duration

	mu       sync.Mutex
	requests int
	failed   int
	accepted int
	ids      map[string]bool
	products map[string]int
}

func newFakeServer(t *testing.T, f *fakeServer) *httptest.Server {
	f.t, f.ids, f.products = t, map[string]bool{}, map[string]int{}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /events", f.events)
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, "# HELP process_resident_memory_bytes Resident memory size in bytes.\n# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes 1.2345678e+08\n")
	})
	s := httptest.NewServer(mux)
	t.Cleanup(s.Close)
	return s
}

func (f *fakeServer) events(w http.ResponseWriter, r *http.Request) {
	var body bytes.Buffer
	_, _ = body.ReadFrom(r.Body)
	f.mu.Lock()
	n := f.requests
	f.requests++
	f.mu.Unlock()
	if n == 0 && f.stall > 0 {
		time.Sleep(f.stall)
	}
	if r.Header.Get("X-API-Key") != f.key || r.Header.Get("Content-Type") != "application/json" {
		http.Error(w, `{"error":"invalid API key"}`, http.StatusUnauthorized)
		return
	}
	if f.fail != nil && f.fail(n) {
		f.mu.Lock()
		f.failed++
		f.mu.Unlock()
		http.Error(w, `{"error":"could not persist the change; retry later"}`, http.StatusServiceUnavailable)
		return
	}
	d := ingest.Decoder{}
	evs, _, rejects, err := d.Decode(body.Bytes(), r.Header.Get("Content-Type"), nil, nil)
	if err != nil || len(rejects) > 0 {
		f.t.Errorf("body: %v %v", rejects, err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, ev := range evs {
		if ev.EventID != "" {
			if f.ids[ev.EventID] {
				f.t.Errorf("event_id %q sent twice", ev.EventID)
			}
			f.ids[ev.EventID] = true
		}
		f.products[ev.ProductID]++
	}
	f.accepted += len(evs)
	w.WriteHeader(http.StatusAccepted)
	fmt.Fprintf(w, `{"accepted":%d,"rejected":0,"duplicates":0,"errors":[]}`, len(evs))
}

func mustRunHTTP(t *testing.T, cfg HTTPConfig) HTTPReport {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rep, err := RunHTTP(ctx, cfg)
	if err != nil {
		t.Fatalf("RunHTTP: %v (report %+v)", err, rep)
	}
	return rep
}

// checkWindows checks that the windows add up to the totals and tile the
// run.
func checkWindows(t *testing.T, rep HTTPReport, window time.Duration) {
	t.Helper()
	var requests, failed, events int64
	for i, w := range rep.Windows {
		requests, failed, events = requests+w.Requests, failed+w.Failed, events+w.Events
		if w.Start != time.Duration(i)*window || w.Length <= 0 || (i < len(rep.Windows)-1 && w.Length != window) {
			t.Errorf("window %d: start %v length %v", i, w.Start, w.Length)
		}
		if w.Latency.P50 > w.Latency.P99 || w.Latency.P99 > w.Latency.Max {
			t.Errorf("window %d: latencies %+v", i, w.Latency)
		}
	}
	if requests != rep.Requests || failed != rep.Failed || events != rep.Accepted {
		t.Errorf("windows add up to %d requests, %d failed, %d events; totals %d, %d, %d",
			requests, failed, events, rep.Requests, rep.Failed, rep.Accepted)
	}
}

// TestHTTPRun: a paced run over the synthetic catalog sends every event
// once with a unique id, counts the failed requests and reports per
// window, with the server's RSS from its /metrics.
func TestHTTPRun(t *testing.T) {
	f := &fakeServer{key: "k", fail: func(n int) bool { return n%7 == 3 }}
	s := newFakeServer(t, f)
	const events, batch, rate, window = 2010, 50, 4000.0, 100 * time.Millisecond
	var progress bytes.Buffer
	begin := time.Now()
	rep := mustRunHTTP(t, HTTPConfig{URL: s.URL + "/events", Key: "k", Rate: rate, Events: events, Batch: batch, Clients: 3,
		Synthetic: 100, EventIDs: true, Window: window, Progress: &progress})
	took := time.Since(begin)

	r := rate
	if min := time.Duration(float64(events) / r * float64(time.Second)); took < min-10*time.Millisecond {
		t.Errorf("%d events at %v/s took %v: faster than the rate", events, rate, took)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	const requests = (events + batch - 1) / batch
	if rep.Requests+rep.Failed != requests || rep.Failed != int64(f.failed) || rep.Failures["503"] != rep.Failed || rep.Failed == 0 {
		t.Fatalf("requests %d + failed %d (%v), want %d of which the server failed %d", rep.Requests, rep.Failed, rep.Failures, requests, f.failed)
	}
	if !strings.HasPrefix(rep.FirstFailure, "503 Service Unavailable: ") {
		t.Errorf("first failure %q", rep.FirstFailure)
	}
	if rep.Sent != events || rep.Accepted != int64(f.accepted) || rep.Accepted < events-rep.Failed*batch {
		t.Errorf("sent %d, accepted %d; the server accepted %d", rep.Sent, rep.Accepted, f.accepted)
	}
	if rep.Views+rep.Carts+rep.Purchases != rep.Accepted {
		t.Errorf("types %d+%d+%d, accepted %d", rep.Views, rep.Carts, rep.Purchases, rep.Accepted)
	}
	if len(f.ids) != f.accepted {
		t.Errorf("%d event ids for %d events", len(f.ids), f.accepted)
	}
	for id := range f.products {
		if !strings.HasPrefix(id, "P00000") || len(id) != 8 {
			t.Fatalf("product %q is not of the synthetic catalog", id)
		}
	}
	if rep.Products != 100 || rep.Distribution != Uniform || !rep.EventIDs || rep.Batch != batch || rep.Clients != 3 || rep.URL != s.URL+"/events" {
		t.Errorf("settings in the report: %+v", rep)
	}
	if rep.Elapsed <= 0 || rep.Latency.P50 <= 0 || rep.Latency.Max < rep.Latency.P99 {
		t.Errorf("elapsed %v, latency %+v", rep.Elapsed, rep.Latency)
	}
	checkWindows(t, rep, window)
	if n := len(rep.Windows); n < 4 || rep.Windows[n-1].RSS != 123456780 {
		t.Errorf("windows %+v: want several, the RSS scraped at the end of each", rep.Windows)
	}
	if out := progress.String(); !strings.Contains(out, "accepted") || strings.Contains(out, "\r") {
		t.Errorf("progress %q", out)
	}

	var text bytes.Buffer
	rep.WriteText(&text)
	for _, want := range []string{"POST " + s.URL + "/events", "4000 events/s", "batches of 50", "(503: ", "first failure", "unique event_ids",
		"window", "events/s", "117.7 MiB", "worst window p99"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, text.String())
		}
	}
	j, _ := json.Marshal(rep)
	for _, want := range []string{`"distribution":"uniform"`, `"windows":[{"start_ns":0,"length_ns":100000000,`, `"rss_bytes":123456780`} {
		if !bytes.Contains(j, []byte(want)) {
			t.Errorf("JSON lacks %s: %s", want, j)
		}
	}
}

// TestHTTPLatencyIncludesTheWaitForAStalledServer: with one connection and
// a server that holds its first answer for half a second, the batches due
// meanwhile wait for it, and their latency is from when they were due:
// about a quarter of the run's requests are over 250 ms. Measured from
// when they were sent, all but one would be a few milliseconds
// (coordinated omission).
func TestHTTPLatencyIncludesTheWaitForAStalledServer(t *testing.T) {
	f := &fakeServer{key: "k", stall: 500 * time.Millisecond}
	s := newFakeServer(t, f)
	rep := mustRunHTTP(t, HTTPConfig{URL: s.URL, Key: "k", Rate: 1000, Duration: time.Second, Batch: 10, Clients: 1,
		Window: 250 * time.Millisecond})
	if rep.Requests != 100 || rep.Failed != 0 || rep.Accepted != 1000 {
		t.Fatalf("requests %d, failed %d, accepted %d", rep.Requests, rep.Failed, rep.Accepted)
	}
	if rep.Latency.P90 < 250*time.Millisecond || rep.Latency.Max < 500*time.Millisecond {
		t.Errorf("latency %+v: the wait behind the stalled answer is not counted", rep.Latency)
	}
	checkWindows(t, rep, 250*time.Millisecond)
	// The stalled requests are all answered at about 510 ms: the first
	// window has none, the third has the slowest (a 1 s run has four,
	// the last of which takes the answers that come after its end).
	// Once the backlog is cleared, requests are quick again.
	if len(rep.Windows) != 4 || rep.Windows[0].Requests != 0 || rep.Windows[0].Rate != 0 || rep.Windows[2].Latency.Max < 400*time.Millisecond ||
		rep.Windows[3].Latency.P50 > 100*time.Millisecond {
		t.Errorf("windows %+v", rep.Windows)
	}
}

// TestHTTPRejectionsAndUnpacedRuns: a server that rejects events has them
// counted, with its first reason; rate 0 posts back to back; a server
// without the RSS metric is scraped once, and --pid reads /proc instead.
func TestHTTPRejectionsAndUnpacedRuns(t *testing.T) {
	var scrapes sync.Map
	mux := http.NewServeMux()
	mux.HandleFunc("POST /events", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusAccepted)
		fmt.Fprint(w, `{"accepted":8,"rejected":2,"duplicates":1,"errors":[{"index":3,"error":"unknown product_id \"PA\" (not in the catalog)"}]}`)
	})
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, _ *http.Request) {
		scrapes.Store(time.Now().UnixNano(), true)
		fmt.Fprint(w, "go_goroutines 7\n")
	})
	s := httptest.NewServer(mux)
	defer s.Close()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "f"), make([]byte, 3000), 0o644); err != nil {
		t.Fatal(err)
	}
	rep := mustRunHTTP(t, HTTPConfig{URL: s.URL + "/", Events: 1000, Batch: 10, Clients: 2, Window: 20 * time.Millisecond, DiskDir: dir})
	if rep.Requests != 100 || rep.Sent != 1000 || rep.Accepted != 800 || rep.Rejected != 200 || rep.Duplicates != 100 ||
		rep.FirstRejection != `unknown product_id "PA" (not in the catalog)` || rep.TargetRate != 0 || rep.Distribution != Uniform || rep.EventIDs {
		t.Fatalf("report %+v", rep)
	}
	n := 0
	scrapes.Range(func(any, any) bool { n++; return true })
	if n != 1 {
		t.Errorf("/metrics without the RSS metric scraped %d times, want once", n)
	}
	for _, w := range rep.Windows {
		if w.RSS != 0 || w.Disk != 3000 {
			t.Errorf("window %+v: want no RSS and the directory's 3000 bytes", w)
		}
	}
	var text bytes.Buffer
	rep.WriteText(&text)
	for _, want := range []string{"as fast as answered", "first rejection", "100 duplicates", "2.9 KiB", "from each send"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, text.String())
		}
	}

	rep = mustRunHTTP(t, HTTPConfig{URL: s.URL, Events: 100, Batch: 10, PID: os.Getpid(), Window: time.Millisecond})
	if last := rep.Windows[len(rep.Windows)-1]; last.RSS <= 1<<20 {
		t.Errorf("RSS from /proc: %+v", last)
	}
}

// TestHTTPRunStopsWithItsContext: a cancelled run returns what it had
// with an error, and does not count the requests it cut short as failed.
func TestHTTPRunStopsWithItsContext(t *testing.T) {
	s := newFakeServer(t, &fakeServer{key: "k"})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	rep, err := RunHTTP(ctx, HTTPConfig{URL: s.URL, Key: "k", Rate: 1000, Duration: time.Hour, Batch: 10, Clients: 2})
	if err == nil || !strings.Contains(err.Error(), "stopped") {
		t.Fatalf("err = %v", err)
	}
	if rep.Requests < 20 || rep.Requests > 31 || rep.Failed != 0 || len(rep.Windows) != 1 {
		t.Errorf("report of the 300 ms: %d requests, %d failed, windows %+v", rep.Requests, rep.Failed, rep.Windows)
	}
}

func TestHTTPConfigErrors(t *testing.T) {
	ok := HTTPConfig{URL: "http://127.0.0.1:1", Events: 1}
	for name, c := range map[string]func(*HTTPConfig){
		"no scheme":         func(c *HTTPConfig) { c.URL = "127.0.0.1:8080" },
		"no end":            func(c *HTTPConfig) { c.Events = 0 },
		"negative rate":     func(c *HTTPConfig) { c.Rate = -1 },
		"negative batch":    func(c *HTTPConfig) { c.Batch = -1 },
		"too many products": func(c *HTTPConfig) { c.Synthetic = catalog.MaxSynthetic + 1 },
		"both catalogs":     func(c *HTTPConfig) { c.Synthetic, c.Products = 5, catalog.Demo().Products },
		"bad product":       func(c *HTTPConfig) { c.Products = []pricing.Product{{ID: "a b", BasePrice: 1}} },
		"quote in run id":   func(c *HTTPConfig) { c.EventIDs, c.RunID = true, `a"b` },
	} {
		cfg := ok
		c(&cfg)
		if _, err := RunHTTP(context.Background(), cfg); err == nil || !strings.HasPrefix(err.Error(), "loadgen: ") {
			t.Errorf("%s: err = %v, want a loadgen configuration error", name, err)
		}
	}
}

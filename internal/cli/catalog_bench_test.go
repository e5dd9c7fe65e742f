package cli

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dynaprice/dynaprice/internal/catalog"
)

// BenchmarkIngestCatalog measures what a catalog's size does to serve:
// products=N imports a catalog of N products, then 8 clients post batches
// of 5,000 events spread evenly over it (event g names product g mod N, so
// with N ≥ 40,000 a commit of eight batches touches 40,000 distinct
// products). One op is one batch. It reports
//
//   - events/s over the posting;
//   - disk-B/event: the bytes the process wrote to disk (write_bytes of
//     /proc/self/io) from the first post until serve stopped, which
//     includes the checkpoints of the log into the database, divided by
//     the events. The kernel counts a page when it is dirtied, so a page
//     of the write-ahead log written again before it reached the disk
//     counts once: a lower bound;
//   - write-B/event: the bytes passed to write(2) over the same time
//     (wchar), less the request bodies the clients sent (the server's
//     answers are a few dozen bytes a batch), per event: every byte
//     SQLite wrote, to the log and to the database;
//   - import-s: the first start, importing the catalog, to ready;
//   - restart-s: a second start on the same data to /readyz 200;
//   - rss-MiB and heap-MiB after that restart (the process's resident set
//     and the Go heap in use, after a GC; the benchmark's own buffers are
//     freed by then).
//
// The 1M case takes minutes: run it on its own, with -benchtime 200x.
func BenchmarkIngestCatalog(b *testing.B) {
	for _, n := range []int{1_000, 100_000, 1_000_000} {
		b.Run(fmt.Sprintf("products=%d", n), func(b *testing.B) { benchCatalog(b, n) })
	}
}

func benchCatalog(b *testing.B, products int) {
	dir := b.TempDir()
	cat := filepath.Join(dir, "catalog.json")
	writeCatalog(b, cat, products)
	o := testOptions(filepath.Join(dir, "data"))
	if err := os.Mkdir(o.DataDir, 0o755); err != nil {
		b.Fatal(err)
	}
	o.Sync = syncMode()
	o.CatalogFile = cat
	benchLimits(&o)

	start := time.Now()
	s := launchServer(b, o, io.Discard)
	waitReadyFor(b, s, 15*time.Minute)
	importTime := time.Since(start)

	const perBatch, clients = 5000, 8
	bodies := make([][]byte, b.N)
	for k := range bodies {
		var sb bytes.Buffer
		sb.WriteByte('[')
		for i := range perBatch {
			if i > 0 {
				sb.WriteByte(',')
			}
			g := k*perBatch + i
			fmt.Fprintf(&sb, `{"event_type":"%s","product_id":"%s","user_id":"U%d","price":10}`,
				[...]string{"view", "cart", "purchase"}[g%3], catalog.SyntheticID(g%products), i)
		}
		sb.WriteByte(']')
		bodies[k] = sb.Bytes()
	}
	written, wchar := writeBytes(b), procField(b, "/proc/self/io", "wchar:", 1)
	var sent int64
	for _, body := range bodies {
		sent += int64(len(body))
	}
	postAll(b, s.url, clients, b.N, func(k int) []byte { return bodies[k] })
	elapsed := b.Elapsed()
	if err := s.stop(); err != nil {
		b.Fatal(err)
	}
	written = writeBytes(b) - written
	wchar = procField(b, "/proc/self/io", "wchar:", 1) - wchar - sent
	events := float64(b.N * perBatch)
	bodies = nil

	runtime.GC()
	debug.FreeOSMemory()
	o.CatalogFile = "" // the catalog is in the store now
	start = time.Now()
	s = launchServer(b, o, io.Discard)
	waitReadyFor(b, s, 15*time.Minute)
	restart := time.Since(start)
	runtime.GC()
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	rss := rssBytes(b)
	if err := s.stop(); err != nil {
		b.Fatal(err)
	}

	b.ReportMetric(events/elapsed.Seconds(), "events/s")
	b.ReportMetric(float64(written)/events, "disk-B/event")
	b.ReportMetric(float64(wchar)/events, "write-B/event")
	b.ReportMetric(importTime.Seconds(), "import-s")
	b.ReportMetric(restart.Seconds(), "restart-s")
	b.ReportMetric(float64(rss)/(1<<20), "rss-MiB")
	b.ReportMetric(float64(ms.HeapInuse)/(1<<20), "heap-MiB")
}

// writeCatalog writes the synthetic catalog of n products, P0000000...,
// the one `dynaprice loadgen --write-catalog` writes.
func writeCatalog(b *testing.B, path string, n int) {
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	if err := catalog.WriteSynthetic(f, n); err != nil {
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
}

// waitReadyFor waits up to d for /readyz to answer 200.
func waitReadyFor(b *testing.B, s *server, d time.Duration) {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		select {
		case err := <-s.done:
			b.Fatalf("serve exited: %v", err)
		default:
		}
		if resp, err := http.Get(s.url + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	b.Fatalf("not ready within %v", d)
}

// writeBytes is the bytes this process has caused to be written to disk
// (Linux's /proc/self/io write_bytes); the benchmark is skipped elsewhere.
func writeBytes(b *testing.B) int64 {
	return procField(b, "/proc/self/io", "write_bytes:", 1)
}

// rssBytes is the process's resident set size.
func rssBytes(b *testing.B) int64 {
	return procField(b, "/proc/self/status", "VmRSS:", 1024)
}

func procField(b *testing.B, path, field string, unit int64) int64 {
	data, err := os.ReadFile(path)
	if err != nil {
		b.Skipf("needs %s: %v", path, err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, field); ok {
			v, err := strconv.ParseInt(strings.Fields(rest)[0], 10, 64)
			if err != nil {
				b.Fatal(err)
			}
			return v * unit
		}
	}
	b.Fatalf("%s has no %s", path, field)
	return 0
}

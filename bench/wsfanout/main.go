// Command wsfanout measures the WebSocket fan-out of a running `dynaprice
// serve`: it opens --clients WebSocket clients on GET /ws/prices, posts
// purchase events for --products products at --rate events a second to
// POST /events, and reports the delivery latency of every message every
// client received (receive time minus the message's timestamp_ms, the time
// the engine priced the change) and the ingest rate achieved against the
// rate offered. docs/BENCHMARKS.md has the command lines.
//
// The server must run with --auto-create (the tool creates its products
// P00000.. by posting events for them) and with --max-ws-clients and
// --max-conns above --clients. Clients and server share the machine, so
// the figures include the clients' own CPU.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/coder/websocket"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "server HOST:PORT")
	key := flag.String("key", os.Getenv("ADMIN_API_KEY"), "an ingest or admin API key (env ADMIN_API_KEY)")
	clients := flag.Int("clients", 1000, "WebSocket clients")
	products := flag.Int("products", 1000, "products to post events for")
	rate := flag.Float64("rate", 1000, "events offered per second")
	duration := flag.Duration("duration", 30*time.Second, "how long to measure")
	warmup := flag.Duration("warmup", 5*time.Second, "how long to send before measuring")
	subscribe := flag.Int("subscribe", 0, "if > 0, each client asks for this many products only (?products=), chosen at random")
	flag.Parse()
	if err := run(*addr, *key, *clients, *products, *rate, *duration, *warmup, *subscribe); err != nil {
		log.Fatal(err)
	}
}

// hist counts latencies in 1 ms buckets up to 60 s; timestamp_ms has
// millisecond resolution anyway.
type hist struct {
	buckets [60_001]atomic.Int64
	sum     atomic.Int64 // ms
	n       atomic.Int64
}

func (h *hist) add(ms int64) {
	ms = max(ms, 0)
	h.sum.Add(ms)
	h.n.Add(1)
	h.buckets[min(ms, int64(len(h.buckets)-1))].Add(1)
}

func (h *hist) quantile(q float64) int {
	if q >= 1 {
		for i := len(h.buckets) - 1; i > 0; i-- {
			if h.buckets[i].Load() > 0 {
				return i
			}
		}
		return 0
	}
	want := int64(q * float64(h.n.Load()))
	seen := int64(0)
	for i := range h.buckets {
		seen += h.buckets[i].Load()
		if seen > want {
			return i
		}
	}
	return len(h.buckets) - 1
}

func run(addr, key string, nClients, nProducts int, rate float64, duration, warmup time.Duration, subscribe int) error {
	// Each client is a socket; the default soft limit is often 1024.
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err == nil && lim.Cur < lim.Max {
		lim.Cur = lim.Max
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
	}
	if key == "" {
		return errors.New("give --key or ADMIN_API_KEY")
	}
	ids := make([]string, nProducts)
	for i := range ids {
		ids[i] = fmt.Sprintf("P%05d", i)
	}
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}, Timeout: 30 * time.Second}
	post := func(events []byte) (int, error) {
		req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/events", bytes.NewReader(events))
		req.Header.Set("X-API-Key", key)
		req.Header.Set("Content-Type", "application/x-ndjson")
		resp, err := hc.Do(req)
		if err != nil {
			return 0, err
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusAccepted {
			return 0, fmt.Errorf("POST /events: %s: %s", resp.Status, body)
		}
		var accepted int
		if i := bytes.Index(body, []byte(`"accepted":`)); i >= 0 {
			rest := body[i+len(`"accepted":`):]
			j := bytes.IndexAny(rest, ",}")
			accepted, _ = strconv.Atoi(string(rest[:j]))
		}
		return accepted, nil
	}
	event := func(b []byte, id string) []byte {
		return fmt.Appendf(b, `{"event_type":"purchase","product_id":%q,"user_id":"bench","price":100}`+"\n", id)
	}
	// Create the products first, so that clients see only price changes.
	var b []byte
	for _, id := range ids {
		b = event(b, id)
	}
	if _, err := post(b); err != nil {
		return err
	}

	var (
		h        hist
		measure  atomic.Bool
		received atomic.Int64 // messages while measuring
		watched  atomic.Int64 // messages of client 0 while measuring
		wg       sync.WaitGroup
	)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dialStart := time.Now()
	sem := make(chan struct{}, 64)
	var failed atomic.Int64
	var firstErr atomic.Value
	for i := range nClients {
		url := "ws://" + addr + "/ws/prices"
		if subscribe > 0 {
			q := make([]byte, 0, subscribe*7)
			for j := range subscribe {
				if j > 0 {
					q = append(q, ',')
				}
				q = append(q, ids[rand.IntN(len(ids))]...)
			}
			url += "?products=" + string(q)
		}
		sem <- struct{}{}
		dctx, dcancel := context.WithTimeout(ctx, 30*time.Second)
		c, _, err := websocket.Dial(dctx, url, nil)
		dcancel()
		<-sem
		if err != nil {
			failed.Add(1)
			firstErr.CompareAndSwap(nil, err.Error())
			continue
		}
		c.SetReadLimit(1 << 20)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.CloseNow()
			for {
				_, msg, err := c.Read(ctx)
				if err != nil {
					return
				}
				now := time.Now().UnixMilli()
				if !measure.Load() {
					continue
				}
				at := timestampMS(msg)
				if at == 0 {
					continue
				}
				h.add(now - at)
				received.Add(1)
				if i == 0 {
					watched.Add(1)
				}
			}
		}()
	}
	if f := failed.Load(); f > 0 {
		return fmt.Errorf("%d of %d clients failed to connect; first: %v", f, nClients, firstErr.Load())
	}
	fmt.Printf("%d clients connected in %v\n", nClients, time.Since(dialStart).Round(time.Millisecond))

	// Send every 10 ms what the schedule owes, so that a slow POST is made
	// up for and the offered rate holds unless the server pushes back.
	var offered, accepted atomic.Int64
	var postErr atomic.Value
	var posts sync.WaitGroup
	inflight := make(chan struct{}, 16)
	stopSend := make(chan struct{})
	sendDone := make(chan struct{})
	go func() {
		defer close(sendDone)
		start := time.Now()
		sent := 0
		next := 0
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		var buf []byte
		for {
			select {
			case <-stopSend:
				return
			case <-tick.C:
			}
			due := int(rate * time.Since(start).Seconds())
			buf = buf[:0]
			n := due - sent
			for range n {
				buf = event(buf, ids[next%len(ids)])
				next++
			}
			sent = due
			if n == 0 {
				continue
			}
			offered.Add(int64(n))
			// Up to 16 requests in flight, so that the commit latency of
			// one does not hold back the schedule.
			inflight <- struct{}{}
			body := bytes.Clone(buf)
			posts.Add(1)
			go func() {
				defer posts.Done()
				defer func() { <-inflight }()
				a, err := post(body)
				if err != nil {
					postErr.CompareAndSwap(nil, err.Error())
				}
				accepted.Add(int64(a))
			}()
		}
	}()

	time.Sleep(warmup) // a load phase, not a test's wait
	offered0, accepted0 := offered.Load(), accepted.Load()
	measure.Store(true)
	t0 := time.Now()
	time.Sleep(duration)
	measure.Store(false)
	elapsed := time.Since(t0).Seconds()
	offered1, accepted1 := offered.Load(), accepted.Load()
	close(stopSend)
	<-sendDone
	posts.Wait()
	cancel()
	wg.Wait()
	if e := postErr.Load(); e != nil {
		fmt.Println("POST error:", e)
	}

	n := h.n.Load()
	if n == 0 {
		return errors.New("no messages received while measuring")
	}
	offeredRate := float64(offered1-offered0) / elapsed
	ingestRate := float64(accepted1-accepted0) / elapsed
	fmt.Printf("clients %d, products %d, offered %.0f events/s, ingested %.0f events/s (%.1f%%)\n",
		nClients, nProducts, offeredRate, ingestRate, 100*ingestRate/offeredRate)
	fmt.Printf("price changes seen by one client: %.0f/s; messages delivered: %.0f/s in all\n",
		float64(watched.Load())/elapsed, float64(received.Load())/elapsed)
	fmt.Printf("delivery latency (receive - timestamp_ms): mean %.1f ms, p50 %d ms, p90 %d ms, p99 %d ms, p99.9 %d ms, max %d ms\n",
		float64(h.sum.Load())/float64(n), h.quantile(0.5), h.quantile(0.9), h.quantile(0.99), h.quantile(0.999), h.quantile(1))
	return nil
}

// timestampMS finds the message's timestamp_ms without decoding it all:
// at ten thousand clients, JSON decoding would be most of the tool's CPU.
func timestampMS(msg []byte) int64 {
	const field = `"timestamp_ms":`
	i := bytes.LastIndex(msg, []byte(field))
	if i < 0 {
		return 0
	}
	rest := msg[i+len(field):]
	j := bytes.IndexAny(rest, ",}")
	if j < 0 {
		return 0
	}
	v, _ := strconv.ParseInt(string(rest[:j]), 10, 64)
	return v
}

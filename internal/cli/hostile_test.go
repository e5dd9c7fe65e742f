package cli

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// hostileRequests are what an ingest producer or an operator gone wrong
// can send: values that cannot be prices, bodies built to amplify, junk.
// Each is answered with an error or per-event rejects; none may stop or
// slow pricing for others.
var hostileRequests = []struct {
	path, key, body string
}{
	{"/override", operatorKey, `{"product_id":"PB","override_price":1e307,"reason":"x"}`},
	{"/override", operatorKey, `{"product_id":"PB","override_price":0.001}`},
	{"/override", operatorKey, `{"product_id":"PB","override_price":12,"expires_at":"2611-01-01T00:00:00Z"}`},
	{"/events", ingestKey, `{"event_type":"competitor_price","product_id":"PC","competitor":"X","price":1e307}`},
	{"/events", ingestKey, `{"event_type":"purchase","product_id":"PC","quantity":1e9}`},
	{"/events", ingestKey, `{"event_type":"view","product_id":"PC","price":0.001}`},
	{"/events", ingestKey, "[" + strings.TrimSuffix(strings.Repeat("1,", 5000), ",") + "]"},
	{"/events", ingestKey, "[" + strings.TrimSuffix(strings.Repeat(`{"event_type":"view","product_id":"NOPE"},`, 2000), ",") + "]"},
	{"/events", ingestKey, `{"event_type":"view","product_id":"PC"` + strings.Repeat(" ", 1<<20)},
	{"/events", ingestKey, "\x00\xff not json"},
	{"/products/PD", operatorKey, `{"base_price":1e307}`},
}

// TestHostileTrafficDoesNotStopPricing: while hostile requests flow, the
// innocent clients' events are all accepted (no 503), priced exactly, and
// /readyz stays 200.
func TestHostileTrafficDoesNotStopPricing(t *testing.T) {
	o := testOptions(t.TempDir())
	o.MaxEvents = 10_000
	s := startServer(t, o)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var hostile atomic.Int64
	for w := range 2 {
		wg.Go(func() {
			for i := w; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				h := hostileRequests[i%len(hostileRequests)]
				method := "POST"
				if strings.HasPrefix(h.path, "/products/") {
					method = "PUT"
				}
				code, m := s.do(method, h.path, h.key, "application/json", h.body)
				if code >= 500 {
					t.Errorf("hostile %s %s: %d %v", method, h.path, code, m)
				}
				hostile.Add(1)
			}
		})
	}
	var notReady atomic.Int64
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			if code, _ := s.do("GET", "/readyz", "", "", ""); code != 200 {
				notReady.Add(1)
			}
			time.Sleep(10 * time.Millisecond) // paces the probe, as a load balancer's
		}
	})
	const rounds = 200
	for i := range rounds {
		code, m := s.do("POST", "/events", ingestKey, "application/json",
			fmt.Sprintf(`[{"event_type":"purchase","product_id":"PA","event_id":"a-%d"},{"event_type":"view","product_id":"PE"}]`, i))
		if code != 202 || m["accepted"] != 2.0 {
			t.Fatalf("innocent request %d: %d %v", i, code, m)
		}
	}
	close(stop)
	wg.Wait()
	if pa, pe := s.price("PA"), s.price("PE"); pa["demand"] != 5.0*rounds || pe["demand"] != 1.0*rounds {
		t.Errorf("demand PA %v, PE %v; want %d and %d", pa["demand"], pe["demand"], 5*rounds, rounds)
	}
	if n := notReady.Load(); n != 0 {
		t.Errorf("/readyz answered not ready %d times under hostile traffic", n)
	}
	if code, m := s.do("GET", "/price/PB", "", "", ""); code != http.StatusOK || m["price_source"] == "override" {
		t.Errorf("PB after the hostile overrides: %d %v", code, m)
	}
	t.Logf("%d hostile requests alongside %d innocent ones", hostile.Load(), rounds)
}

package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/dynaprice/dynaprice/internal/catalog"
	"github.com/dynaprice/dynaprice/internal/kafka"
	"github.com/dynaprice/dynaprice/internal/poll"
	"github.com/dynaprice/dynaprice/internal/pricing"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestClusterAPIReplicas runs one engine and two API replicas and drives
// the original's API through both: an event posted to one replica moves
// the price (the seed contract, PA demand 9 = 314.00) on the other and on
// the other's WebSocket clients; overrides travel through Kafka to the
// engine and back; history, explanations and the catalog come from
// PostgreSQL.
func TestClusterAPIReplicas(t *testing.T) {
	c := newCluster(t)
	c.migrate()
	c.env = append(c.env, "DYNAPRICE_LOG_LEVEL=info")
	eng := c.engine("engine")
	keys := []string{"DYNAPRICE_API_KEYS=viewer:viewer:" + viewerKey + ",ops:operator:" + operatorKey + ",shop:ingest:" + ingestKey}
	a1 := c.start("api-1", keys, "api", "--addr", "127.0.0.1:0")
	a2 := c.start("api-2", keys, "api", "--addr", "127.0.0.1:0")
	s1, s2 := &server{t: t, url: a1.addr}, &server{t: t, url: a2.addr}

	poll.Until(t, 20*time.Second, "replicas ready", func() error {
		c1, _ := s1.do("GET", "/readyz", "", "", "")
		c2, _ := s2.do("GET", "/readyz", "", "", "")
		return poll.Check(c1 == 200 && c2 == 200, "readyz %d and %d", c1, c2)
	})
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("engine log:\n%s\napi-1 log:\n%s", c.log("engine"), c.log("api-1"))
		}
	})
	poll.Until(t, 20*time.Second, "PA at its base price", func() error {
		code, m := s2.do("GET", "/price/PA", "", "", "")
		return poll.Check(code == 200 && m["price"] == 299.0 && m["price_source"] == "base", "%s", jsonString(m))
	})

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(s2.url, "http")+"/ws/prices", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()

	// Demand 9 (view + cart + purchase) through replica 1.
	code, m := s1.do("POST", "/events", ingestKey, "application/json",
		`[{"event_type":"view","product_id":"PA","user_id":"U1","timestamp":1773713139,"price":299},
		  {"event_type":"cart","product_id":"PA","user_id":"U1","timestamp":1773713140,"price":299},
		  {"event_type":"purchase","product_id":"PA","user_id":"U1","timestamp":1773713141,"price":299},
		  {"event_type":"view","product_id":"NOPE","user_id":"U1"}]`)
	if code != 202 || m["accepted"] != 3.0 || m["rejected"] != 1.0 {
		t.Fatalf("POST /events = %d %v, want 3 accepted and the unknown product rejected", code, m)
	}
	poll.Until(t, 20*time.Second, "PA priced on replica 2", func() error {
		code, m := s2.do("GET", "/price/PA", "", "", "")
		return poll.Check(code == 200 && m["price"] == 314.0 && m["demand"] == 9.0 && m["price_source"] == "dynamic", "%s", jsonString(m))
	})
	for {
		_, b, err := ws.Read(ctx)
		if err != nil {
			t.Fatalf("WebSocket on replica 2: %v", err)
		}
		var u map[string]any
		if err := json.Unmarshal(b, &u); err != nil {
			t.Fatal(err)
		}
		if u["product_id"] == "PA" && u["new_price"] == 314.0 {
			if u["type"] != "price_update" || u["timestamp"] == nil {
				t.Fatalf("update = %v", u)
			}
			break
		}
	}

	// Overrides: set on replica 2, seen on replica 1; wrong role 403.
	if code, _ := s2.do("POST", "/override", viewerKey, "application/json", `{"product_id":"PA","override_price":250,"reason":"promo"}`); code != 403 {
		t.Fatalf("override with a viewer key = %d, want 403", code)
	}
	if code, m := s2.do("POST", "/override", operatorKey, "application/json", `{"product_id":"NOPE","override_price":250}`); code != 404 {
		t.Fatalf("override of an unknown product = %d %v, want 404", code, m)
	}
	code, m = s2.do("POST", "/override", operatorKey, "application/json", `{"product_id":"PA","override_price":250,"reason":"promo"}`)
	if code != 200 || m["status"] != "upserted" || m["override_price"] != 250.0 {
		t.Fatalf("POST /override = %d %v", code, m)
	}
	poll.Until(t, 20*time.Second, "override visible on replica 1", func() error {
		_, m := s1.do("GET", "/price/PA", "", "", "")
		return poll.Check(m["price"] == 250.0 && m["price_source"] == "override", "%s", jsonString(m))
	})
	code, m = s1.do("DELETE", "/override/PA", operatorKey, "", "")
	if code != 200 || m["deleted"] != true {
		t.Fatalf("DELETE /override/PA = %d %v", code, m)
	}
	poll.Until(t, 20*time.Second, "dynamic price restored", func() error {
		_, m := s2.do("GET", "/price/PA", "", "", "")
		return poll.Check(m["price"] == 314.0 && m["price_source"] == "dynamic", "%s", jsonString(m))
	})
	if code, m := s1.do("DELETE", "/override/PA", operatorKey, "", ""); code != 404 {
		t.Fatalf("second DELETE /override/PA = %d %v, want 404", code, m)
	}

	// History and audit from PostgreSQL, newest first.
	code, m = s1.do("GET", "/history/PA?limit=10", viewerKey, "", "")
	hist, _ := m["history"].([]any)
	if code != 200 || len(hist) < 5 {
		t.Fatalf("GET /history/PA = %d %v", code, m)
	}
	if first := hist[0].(map[string]any); first["price"] != 314.0 || first["price_source"] != "dynamic" {
		t.Errorf("newest history point = %v, want the restored 314 dynamic", first)
	}
	// The catalog was seeded into PostgreSQL by migrate, never priced by an
	// engine before: its first price is history all the same, as the
	// original's "base" row was (its dashboard's caption reads it).
	if oldest := hist[len(hist)-1].(map[string]any); oldest["price"] != 299.0 || oldest["price_source"] != "base" || oldest["version"] != 1.0 {
		t.Errorf("oldest history point = %v, want PA's base price 299, version 1", oldest)
	}
	if code, _ := s1.do("GET", "/history/PA", "", "", ""); code != 401 {
		t.Errorf("history without a key = %d, want 401", code)
	}
	code, m = s1.do("GET", "/overrides/PA", viewerKey, "", "")
	if trail, _ := m["overrides"].([]any); code != 200 || len(trail) != 1 {
		t.Errorf("GET /overrides/PA = %d %v, want one audited override", code, m)
	}

	// An operator's write is visible to that operator's next read: the
	// replica answers once the live view shows it.
	for i := range 5 {
		price := 200.0 + float64(i)
		code, m := s2.do("POST", "/override", operatorKey, "application/json", fmt.Sprintf(`{"product_id":"PB","override_price":%v}`, price))
		if code != 200 || m["status"] != "upserted" {
			t.Fatalf("POST /override %d = %d %v", i, code, m)
		}
		if _, m := s2.do("GET", "/price/PB", "", "", ""); m["price"] != price || m["price_source"] != "override" {
			t.Fatalf("GET right after POST /override %d: %s, want the override %v", i, jsonString(m), price)
		}
		if code, m := s2.do("DELETE", "/override/PB", operatorKey, "", ""); code != 200 {
			t.Fatalf("DELETE right after POST /override %d = %d %v, want 200", i, code, m)
		}
		if _, m := s2.do("GET", "/price/PB", "", "", ""); m["price_source"] == "override" {
			t.Fatalf("GET right after DELETE %d: %s, want the override gone", i, jsonString(m))
		}
	}

	// Explanation and catalog.
	code, m = s2.do("GET", "/price/PA?explain=1", viewerKey, "", "")
	if code != 200 || m["strategy"] != "seed" {
		t.Errorf("explain = %d %v", code, m)
	}
	code, m = s1.do("PUT", "/products/PK", adminKey, "application/json", `{"product_id":"PK","base_price":99}`)
	if code != 200 && code != 201 {
		t.Fatalf("PUT /products/PK = %d %v", code, m)
	}
	poll.Until(t, 20*time.Second, "new product priced", func() error {
		code, m := s2.do("GET", "/price/PK", "", "", "")
		return poll.Check(code == 200 && m["price"] == 99.0, "%s", jsonString(m))
	})
	code, m = s2.do("GET", "/products", viewerKey, "", "")
	if ps, _ := m["products"].([]any); code != 200 || len(ps) != 11 {
		t.Errorf("GET /products = %d, %d products, want 11", code, len(ps))
	}
	code, m = s1.do("GET", "/prices", "", "", "")
	if ps, _ := m["prices"].([]any); code != 200 || len(ps) != 11 {
		t.Errorf("GET /prices = %d %v", code, m)
	}
	// A foreign WebSocket origin is refused by replicas too.
	_, resp, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(s1.url, "http")+"/ws/prices",
		&websocket.DialOptions{HTTPHeader: http.Header{"Origin": {"https://evil.example"}}})
	if err == nil || resp == nil || resp.StatusCode != 403 {
		t.Errorf("foreign origin: err %v resp %v", err, resp)
	}

	// Malformed records written straight to Kafka go to the dead-letter
	// topic with their reason; the engine counts them and keeps going.
	raw := c.client(kgo.DefaultProduceTopic("product-events"))
	bad := []*kgo.Record{{Value: []byte("{not json")}, {Key: []byte("PB"), Value: []byte(`{"event_type":"teleport","product_id":"PB"}`)}}
	if err := raw.ProduceSync(ctx, bad...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	dlq := c.client(kgo.ConsumeTopics("product-events-dlq"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	var reasons []string
	for len(reasons) < 2 && ctx.Err() == nil {
		dlq.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
			for _, h := range r.Headers {
				if h.Key == "dynaprice-error" {
					reasons = append(reasons, string(h.Value))
				}
			}
		})
	}
	if len(reasons) != 2 || !strings.Contains(strings.Join(reasons, "|"), "not JSON") || !strings.Contains(strings.Join(reasons, "|"), `"teleport"`) {
		t.Errorf("dead-letter reasons = %q", reasons)
	}
	poll.Until(t, 10*time.Second, "dead letters counted", func() error {
		v := metricValue(t, eng.addr+"/metrics", "dynaprice_stream_dead_letters_total")
		return poll.Check(v == 2, "%v counted", v)
	})
	// The engine still prices after them.
	s1.do("POST", "/events", ingestKey, "application/json", `{"event_type":"view","product_id":"PB"}`)
	poll.Until(t, 20*time.Second, "PB priced after the dead letters", func() error {
		_, m := s2.do("GET", "/price/PB", "", "", "")
		return poll.Check(m["demand"] == 1.0, "%s", jsonString(m))
	})

	// A retried event (same event_id, through either replica) counts once.
	for _, s := range []*server{s1, s2, s1} {
		if code, m := s.do("POST", "/events", ingestKey, "application/json", `{"event_id":"order-77","event_type":"purchase","product_id":"PC"}`); code != 202 {
			t.Fatalf("POST /events = %d %v", code, m)
		}
	}
	// order-78 is in PC's partition behind every copy of order-77: each
	// POST returned once Kafka had it. So once the demand shows it, every
	// copy was applied or dropped, and one counted twice would show.
	s1.do("POST", "/events", ingestKey, "application/json", `{"event_id":"order-78","event_type":"view","product_id":"PC"}`)
	poll.Until(t, 20*time.Second, "PC demand 5 + 1", func() error {
		_, m := s2.do("GET", "/price/PC", "", "", "")
		if d, _ := m["demand"].(float64); d > 6 {
			t.Fatalf("PC after a retried event_id: %v, want demand 6", m)
		}
		return poll.Check(m["demand"] == 6.0, "%s", jsonString(m))
	})

	// A catalog file given to an engine of a running deployment travels to
	// the engines as control records.
	f := &catalog.File{DefaultStrategy: "seed", Products: []pricing.Product{{ID: "PL", BasePrice: 42, Guardrails: pricing.Guardrails{Ceiling: 45}}}}
	signer, err := kafka.ParseSigner(controlKeys)
	if err != nil {
		t.Fatal(err)
	}
	if err := sendCatalog(ctx, ClusterOptions{Brokers: c.brokers, EventsTopic: "product-events", UpdatesTopic: "price-updates"}, signer, f, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 20*time.Second, "PL imported", func() error {
		code, m := s1.do("GET", "/price/PL", "", "", "")
		return poll.Check(code == 200 && m["price"] == 42.0, "%s", jsonString(m))
	})
	if code, m := s1.do("POST", "/events", ingestKey, "application/json", `[{"event_type":"purchase","product_id":"PL"},{"event_type":"purchase","product_id":"PL"}]`); code != 202 || m["accepted"] != 2.0 {
		t.Fatalf("POST /events for PL = %d %v", code, m)
	}
	poll.Until(t, 20*time.Second, "PL imported and capped by its ceiling", func() error {
		_, m := s2.do("GET", "/price/PL", "", "", "")
		return poll.Check(m["price"] == 45.0 && m["demand"] == 10.0, "%s", jsonString(m))
	})

	a1.stop(t)
	a2.stop(t)
	eng.stop(t)
}

func jsonString(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// TestClusterAPIDrainOnSIGTERM: after SIGTERM an API replica answers
// /readyz 503 at once but keeps serving requests for --drain (an event
// posted then still goes to Kafka), then closes its listener and exits 0
// within 10 s.
func TestClusterAPIDrainOnSIGTERM(t *testing.T) {
	c := newCluster(t)
	c.migrate()
	// No engine: the topics it would create are created here, and
	// --auto-create lets the replica accept events without live prices.
	if _, err := kafka.EnsureTopics(context.Background(), kadm.NewClient(c.client()), kafka.DefaultTopics(), 2, 1); err != nil {
		t.Fatal(err)
	}
	a := c.start("api", nil, "api", "--addr", "127.0.0.1:0", "--auto-create", "--drain", "2s")
	s := &server{t: t, url: a.addr}
	poll.Until(t, 20*time.Second, "API ready", func() error {
		code, m := s.do("GET", "/readyz", "", "", "")
		return poll.Check(code == 200, "%d %v", code, m)
	})
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("api log:\n%s", c.log("api"))
		}
	})

	start := time.Now()
	if err := a.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// Draining: not ready, but alive and still serving.
	awaitDraining(t, a.addr, start)
	if code, m := s.do("POST", "/events", adminKey, "application/json", `{"event_type":"view","product_id":"PA","price":299}`); code != 202 || m["accepted"] != 1.0 {
		t.Fatalf("POST /events while draining = %d %v, want 202 with 1 accepted", code, m)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("the checks of the drain took %v, longer than the drain; the test cannot tell what it saw", took)
	}

	// After the drain the listener closes and the process exits 0.
	awaitListenerClosed(t, a.addr, start)
	select {
	case <-a.done:
		if code := a.cmd.ProcessState.ExitCode(); code != 0 {
			t.Fatalf("exit status %d after SIGTERM, want 0", code)
		}
	case <-time.After(10*time.Second - time.Since(start)):
		t.Fatal("did not exit within 10s of SIGTERM")
	}
	if took := time.Since(start); took < 2*time.Second {
		t.Fatalf("exited %v after SIGTERM, before the 2s drain was over", took)
	}
	t.Logf("exited in %v", time.Since(start))
}

// TestClusterBreakerRelease: in scale-out the engine holds a price pushed
// past --max-move-pct, an API replica explains it from the committed
// state, and an operator's release travels as a signed control record and
// is answered once the engine committed it.
func TestClusterBreakerRelease(t *testing.T) {
	c := newCluster(t)
	c.migrate()
	limits := []string{"--max-move-pct", "20", "--move-window", "1h"}
	c.engine("engine", limits...)
	keys := []string{"DYNAPRICE_API_KEYS=viewer:viewer:" + viewerKey + ",ops:operator:" + operatorKey + ",shop:ingest:" + ingestKey}
	a := c.start("api", keys, append([]string{"api", "--addr", "127.0.0.1:0"}, limits...)...)
	s := &server{t: t, url: a.addr}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("engine log:\n%s\napi log:\n%s", c.log("engine"), c.log("api"))
		}
	})
	poll.Until(t, 20*time.Second, "PA at its base price", func() error {
		code, m := s.do("GET", "/price/PA", "", "", "")
		return poll.Check(code == 200 && m["price"] == 299.0, "%d %s", code, jsonString(m))
	})
	// The listing is in catalog order (the demo's PA..PJ), whatever order
	// the engine's partitions first wrote the products to Redis in.
	poll.Until(t, 20*time.Second, "GET /prices in catalog order", func() error {
		_, m := s.do("GET", "/prices", "", "", "")
		var ids []string
		ps, _ := m["prices"].([]any)
		for _, p := range ps {
			ids = append(ids, p.(map[string]any)["product_id"].(string))
		}
		return poll.Check(slices.Equal(ids, []string{"PA", "PB", "PC", "PD", "PE", "PF", "PG", "PH", "PI", "PJ"}), "%v", ids)
	})
	// Sorted pages too, read from Redis: by price, highest first, ties by
	// id, a page of four at a time; an unknown sort is a 400 as in serve.
	var sorted []string
	var last float64
	for q := "/prices?sort=-price&limit=4"; q != ""; {
		code, m := s.do("GET", q, "", "", "")
		if code != 200 {
			t.Fatalf("GET %s = %d %v", q, code, m)
		}
		for _, p := range m["prices"].([]any) {
			pm := p.(map[string]any)
			if pr := pm["price"].(float64); len(sorted) > 0 && pr > last {
				t.Fatalf("GET /prices?sort=-price: %s at %v after %v", pm["product_id"], pr, last)
			} else {
				last = pr
			}
			sorted = append(sorted, pm["product_id"].(string))
		}
		q = ""
		if next, ok := m["next"].(string); ok {
			q = "/prices?sort=-price&limit=4&after=" + url.QueryEscape(next)
		}
	}
	if len(sorted) != 10 || len(slices.Compact(slices.Sorted(slices.Values(sorted)))) != 10 {
		t.Fatalf("GET /prices?sort=-price listed %v, want the 10 products once each", sorted)
	}
	if code, m := s.do("GET", "/prices?sort=change", "", "", ""); code != 400 || m["error"] == nil {
		t.Fatalf("GET /prices?sort=change = %d %v, want 400", code, m)
	}
	// Demand 101: 349.25 (16.8% up, published); demand 151: 360.44 (held).
	code, m := s.do("POST", "/events", ingestKey, "application/json", `[
		{"event_type":"purchase","product_id":"PA","quantity":20},{"event_type":"view","product_id":"PA"},
		{"event_type":"purchase","product_id":"PA","quantity":10},{"event_type":"purchase","product_id":"PA","quantity":101}]`)
	if code != 202 || m["accepted"] != 4.0 {
		// The quantity cap is the engine's (it knows the product's limits):
		// the replica accepts the last purchase, the engine dead-letters it.
		t.Fatalf("POST /events = %d %v", code, m)
	}
	poll.Until(t, 20*time.Second, "PA held, explained", func() error {
		_, e := s.do("GET", "/price/PA?explain=1", viewerKey, "", "")
		br, _ := e["breaker"].(map[string]any)
		return poll.Check(e["price"] == 349.25 && br != nil && br["wanted_price"] == 360.44, "%s", jsonString(e))
	})
	if code, m := s.do("POST", "/release/PA", operatorKey, "", ""); code != 200 || m["released"] != true {
		t.Fatalf("POST /release/PA = %d %v", code, m)
	}
	if _, m := s.do("GET", "/price/PA", "", "", ""); m["price"] != 360.44 {
		t.Fatalf("after the release PA = %v, want 360.44 (read-your-writes)", jsonString(m))
	}
	if code, m := s.do("POST", "/release/PA", operatorKey, "", ""); code != 404 {
		t.Fatalf("second release = %d %v, want 404", code, m)
	}
	// The purchase above the cap is in the dead-letter topic with its reason.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	dlq := c.client(kgo.ConsumeTopics("product-events-dlq"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	var reason string
	for reason == "" && ctx.Err() == nil {
		dlq.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
			for _, h := range r.Headers {
				if h.Key == "dynaprice-error" {
					reason = string(h.Value)
				}
			}
		})
	}
	if !strings.Contains(reason, `quantity 101 is above product "PA"'s max_quantity 100`) {
		t.Fatalf("dead-letter reason = %q", reason)
	}
}

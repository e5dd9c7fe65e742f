package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/dynaprice/dynaprice/internal/poll"
)

// The original system's wire types, as its services and clients declare
// them (written here from its README and API, not copied): what a team
// moving over keeps running against dynaprice.
type (
	originalEvent struct {
		EventType string  `json:"event_type"`
		ProductID string  `json:"product_id"`
		UserID    string  `json:"user_id"`
		Timestamp int64   `json:"timestamp"`
		Price     float64 `json:"price"`
	}
	originalPrice struct {
		ProductID   string  `json:"product_id"`
		Price       float64 `json:"price"`
		Demand      int     `json:"demand"`
		PriceSource string  `json:"price_source"`
	}
	originalUpdate struct {
		Type      string  `json:"type"`
		ProductID string  `json:"product_id"`
		NewPrice  float64 `json:"new_price"`
		Timestamp int64   `json:"timestamp"`
	}
	originalOverride struct {
		ProductID     string  `json:"product_id"`
		OverridePrice float64 `json:"override_price"`
		Reason        string  `json:"reason"`
		Status        string  `json:"status"`
	}
	originalHistory struct {
		ProductID string `json:"product_id"`
		History   []struct {
			Price       float64   `json:"price"`
			EventTime   time.Time `json:"event_time"`
			PriceSource string    `json:"price_source"`
		} `json:"history"`
	}
)

// TestOriginalClientsWork replays, against the scale-out roles set up as
// docs/MIGRATING.md says, what the original's clients do: its producer's
// unkeyed events, its dashboard's WebSocket from localhost:3000, its API
// calls decoded into its own types (demand an int), its Redis reads
// (strconv.Atoi of the demand key) and its SETUP.md queries through the
// compatibility views.
func TestOriginalClientsWork(t *testing.T) {
	c := newCluster(t)
	c.migrate()
	c.engine("engine")
	a := c.start("api", []string{"DYNAPRICE_WS_ORIGINS=localhost:3000"}, "api", "--addr", "127.0.0.1:0")
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("engine log:\n%s\napi log:\n%s", c.log("engine"), c.log("api"))
		}
	})
	base := a.addr
	get := func(path string, key string, v any) int {
		t.Helper()
		req, _ := http.NewRequest("GET", base+path, nil)
		if key != "" {
			req.Header.Set("X-API-Key", key)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if v != nil {
			if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
				t.Fatalf("GET %s: %v", path, err)
			}
		}
		return resp.StatusCode
	}
	poll.Until(t, 20*time.Second, "the API ready (following price-updates)", func() error {
		code := get("/readyz", "", nil)
		return poll.Check(code == 200, "/readyz %d", code)
	})
	poll.Until(t, 20*time.Second, "PA priced at its base", func() error {
		var p originalPrice
		code := get("/price/PA", "", &p)
		return poll.Check(code == 200 && p.Price == 299, "%d %+v", code, p)
	})

	// The original dashboard's live feed, from its own origin.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(base, "http")+"/ws/prices",
		&websocket.DialOptions{HTTPHeader: http.Header{"Origin": {"http://localhost:3000"}}})
	if err != nil {
		t.Fatalf("the original dashboard's WebSocket: %v", err)
	}
	defer ws.CloseNow()

	// Its producer: unkeyed records, its JSON, to product-events.
	prod := c.client(kgo.DefaultProduceTopic("product-events"))
	for i, typ := range []string{"view", "cart", "purchase"} {
		b, _ := json.Marshal(originalEvent{EventType: typ, ProductID: "PA", UserID: "U1", Timestamp: 1773713139 + int64(i), Price: 299})
		if err := prod.ProduceSync(ctx, &kgo.Record{Value: b}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	poll.Until(t, 20*time.Second, "PA at 314 with demand 9", func() error {
		var p originalPrice
		code := get("/price/PA", "", &p)
		return poll.Check(code == 200 && p == originalPrice{ProductID: "PA", Price: 314, Demand: 9, PriceSource: "dynamic"}, "%d %+v", code, p)
	})
	for {
		_, b, err := ws.Read(ctx)
		if err != nil {
			t.Fatalf("WebSocket: %v", err)
		}
		var u originalUpdate
		if err := json.Unmarshal(b, &u); err != nil {
			t.Fatalf("update %s: %v", b, err)
		}
		if u.ProductID == "PA" && u.NewPrice == 314 {
			if u.Type != "price_update" || u.Timestamp < 1_700_000_000 {
				t.Fatalf("update = %+v", u)
			}
			break
		}
	}
	// Its tools read the demand key with strconv.Atoi.
	s, err := c.redis.Do(ctx, c.redis.B().Get().Key(c.redisPrefix+"product:demand:PA").Build()).ToString()
	if n, aerr := strconv.Atoi(s); err != nil || aerr != nil || n != 9 {
		t.Fatalf("product:demand:PA = %q (%v, %v), want 9 for strconv.Atoi", s, err, aerr)
	}

	// Its override calls: the id trimmed, the reason defaulted.
	req, _ := http.NewRequest("POST", base+"/override", bytes.NewBufferString(`{"product_id":" PA ","override_price":149.99}`))
	req.Header.Set("X-API-Key", adminKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var o originalOverride
	err = json.NewDecoder(resp.Body).Decode(&o)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 || o != (originalOverride{ProductID: "PA", OverridePrice: 149.99, Reason: "manual override", Status: "upserted"}) {
		t.Fatalf("POST /override = %d %+v %v", resp.StatusCode, o, err)
	}
	var h originalHistory
	if code := get("/history/PA?limit=20", adminKey, &h); code != 200 || len(h.History) < 4 ||
		h.History[0].PriceSource != "override" || h.History[len(h.History)-1].PriceSource != "base" || h.History[len(h.History)-1].Price != 299 {
		t.Fatalf("GET /history/PA = %d %+v", code, h)
	}

	// Its SETUP.md queries, through the compatibility views.
	conn, err := pgx.Connect(ctx, c.pgURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "SET search_path TO original, public"); err != nil {
		t.Fatal(err)
	}
	rows, _ := conn.Query(ctx, "SELECT * FROM price_history ORDER BY event_time DESC")
	hist, err := pgx.CollectRows(rows, pgx.RowToMap)
	if err != nil || len(hist) < 10+4 {
		t.Fatalf("SELECT * FROM price_history: %d rows, %v", len(hist), err)
	}
	if hist[0]["product_id"] != "PA" || hist[0]["price_source"] != "override" || hist[0]["price"] != 149.99 {
		t.Fatalf("newest row = %v", hist[0])
	}
	var id, reason string
	var price float64
	if err := conn.QueryRow(ctx, "SELECT product_id, override_price, reason FROM price_overrides").Scan(&id, &price, &reason); err != nil ||
		id != "PA" || price != 149.99 || reason != "manual override" {
		t.Fatalf("price_overrides: %q %v %q %v", id, price, reason, err)
	}

	req, _ = http.NewRequest("DELETE", base+"/override/PA", nil)
	req.Header.Set("X-API-Key", adminKey)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 200 {
		t.Fatalf("DELETE /override/PA: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	var n int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM price_overrides").Scan(&n); err != nil || n != 0 {
		t.Fatalf("price_overrides after the delete: %d rows, %v", n, err)
	}
}

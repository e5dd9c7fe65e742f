package cli

import (
	"encoding/csv"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dynaprice/dynaprice/internal/poll"
)

// analytics asks GET /analytics as the viewer and returns its groups.
func (s *server) analytics(query string) map[string]any {
	s.t.Helper()
	code, m := s.do("GET", "/analytics?"+query, viewerKey, "", "")
	if code != 200 {
		s.t.Fatalf("GET /analytics?%s = %d %v", query, code, m)
	}
	return m
}

func groups(t *testing.T, m map[string]any) []map[string]any {
	t.Helper()
	gs, _ := m["groups"].([]any)
	out := make([]map[string]any, len(gs))
	for i, g := range gs {
		out[i] = g.(map[string]any)
	}
	return out
}

// TestAnalyticsEndToEnd: purchases through the API show up in GET
// /analytics at once (the hour not over yet counts from memory), charged
// at the price the shopper was shown or else the current one, with cost
// from unit_cost and the list price, by product, strategy and day, as
// JSON and CSV, in the catalog's currency (also on every price); they
// survive a restart (the hour's counts are part of the committed state);
// and bad queries are 400s, missing or wrong keys 401 and 403.
func TestAnalyticsEndToEnd(t *testing.T) {
	dir := t.TempDir()
	cat := filepath.Join(dir, "catalog.json")
	if err := os.WriteFile(cat, []byte(`{"currency":"USD","products":[
		{"product_id":"A","name":"Alpha","base_price":10,"unit_cost":4},
		{"product_id":"B","name":"Beta","base_price":20,"strategy":"decay"}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	o := testOptions(filepath.Join(dir, "data"))
	o.CatalogFile = cat
	s := startServer(t, o)
	if c := s.price("A")["currency"]; c != "USD" {
		t.Errorf("GET /price/A currency = %v, want the catalog's USD", c)
	}
	if _, m := s.do("GET", "/prices", "", "", ""); m["currency"] != "USD" {
		t.Errorf("GET /prices currency = %v", m["currency"])
	}
	s.post(`[{"event_type":"view","product_id":"A"},{"event_type":"view","product_id":"A"},{"event_type":"cart","product_id":"A"}]`)
	s.post(`{"event_type":"purchase","product_id":"A","quantity":2,"price":12}`)
	current := s.price("A")["price"].(float64)
	s.post(`{"event_type":"purchase","product_id":"A"}`)
	s.post(`[{"event_type":"view","product_id":"B"},{"event_type":"purchase","product_id":"B","price":21.5}]`)
	revA := 24 + current
	check := func(when string, s *server) {
		t.Helper()
		m := s.analytics("by=product")
		if m["currency"] != "USD" || m["by"] != "product" || m["more"] != false {
			t.Errorf("%s: answer %v", when, m)
		}
		gs := groups(t, m)
		if len(gs) != 2 || gs[0]["key"] != "A" || gs[1]["key"] != "B" {
			t.Fatalf("%s: groups %v, want A then B (most revenue first)", when, gs)
		}
		a, b := gs[0], gs[1]
		want := map[string]float64{"views": 2, "carts": 1, "purchases": 2, "units": 3, "revenue": revA, "cost": 12,
			"margin": revA - 12, "avg_price": math.Round(revA/3*100) / 100, "avg_list_price": 10, "conversion": 1}
		for k, v := range want {
			if got, _ := a[k].(float64); math.Abs(got-v) > 1e-9 {
				t.Errorf("%s: A %s = %v, want %v (all: %v)", when, k, a[k], v, a)
			}
		}
		if b["revenue"] != 21.5 || b["price_index"] != 1.075 || b["cost"] != 0.0 || b["conversion"] != 1.0 {
			t.Errorf("%s: B = %v", when, b)
		}
		gs = groups(t, s.analytics("by=strategy"))
		if len(gs) != 2 || gs[0]["key"] != "seed" || gs[0]["revenue"] != a["revenue"] || gs[1]["key"] != "decay" {
			t.Errorf("%s: by strategy %v", when, gs)
		}
		gs = groups(t, s.analytics("by=hour&product=B"))
		if len(gs) != 1 || gs[0]["revenue"] != 21.5 || gs[0]["start"] == nil {
			t.Errorf("%s: B by hour %v", when, gs)
		}
		// Before anything was sold: nothing.
		if gs := groups(t, s.analytics("from=2001-01-01&to=2001-01-02&by=day")); len(gs) != 0 {
			t.Errorf("%s: a day in 2001: %v", when, gs)
		}
	}
	check("live", s)

	// CSV: the same figures, one line a group.
	req, _ := http.NewRequest("GET", s.url+"/analytics?by=product&format=csv", nil)
	req.Header.Set("X-API-Key", viewerKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != 200 || ct != "text/csv; charset=utf-8" {
		t.Fatalf("CSV: %d %q %s", resp.StatusCode, ct, body)
	}
	lines, err := csv.NewReader(strings.NewReader(string(body))).ReadAll()
	if err != nil || len(lines) != 3 || lines[0][0] != "product" || lines[0][6] != "revenue" || lines[2][0] != "B" ||
		lines[2][6] != "21.5" || lines[2][13] != "USD" || lines[2][8] != "21.5" {
		t.Errorf("CSV = %q (%v)", lines, err)
	}

	if err := s.stop(); err != nil {
		t.Fatal(err)
	}
	o.CatalogFile = "" // the currency is kept as a setting
	s2 := startServer(t, o)
	check("after a restart", s2)

	for _, c := range []struct {
		query, key string
		status     int
	}{
		{"by=week", viewerKey, 400},
		{"format=xml", viewerKey, 400},
		{"from=yesterday", viewerKey, 400},
		{"from=2026-01-02&to=2026-01-01", viewerKey, 400},
		{"from=2024-01-01&to=2026-01-01", viewerKey, 400},
		{"from=2026-01-01&to=2026-03-01&by=hour", viewerKey, 400},
		{"limit=0", viewerKey, 400},
		{"product=" + strings.Repeat("x", 300), viewerKey, 400},
		{"", "", 401},
		{"", ingestKey, 403},
	} {
		code, m := s2.do("GET", "/analytics?"+c.query, c.key, "", "")
		if code != c.status || m["error"] == nil {
			t.Errorf("GET /analytics?%.40s with key %q = %d %v, want %d with an error", c.query, c.key, code, m, c.status)
		}
	}
}

// TestDemoShowsTheMix: `serve --demo` on an empty store prices the demo
// catalog with thompson, decay and seed, and its traffic fills the
// analytics of all three within seconds; --demo shortens the decay
// half-life unless --half-life is given.
func TestDemoShowsTheMix(t *testing.T) {
	o := testOptions(t.TempDir())
	o.Demo, o.DemoRate = true, 400
	s := startServer(t, o)
	code, m := s.do("GET", "/products", viewerKey, "", "")
	if code != 200 {
		t.Fatalf("GET /products = %d %v", code, m)
	}
	strategies := map[string]int{}
	for _, p := range m["products"].([]any) {
		strategies[p.(map[string]any)["effective_strategy"].(string)]++
	}
	if strategies["thompson"] == 0 || strategies["decay"] == 0 || strategies["seed"] == 0 {
		t.Errorf("demo catalog strategies %v, want thompson, decay and seed", strategies)
	}
	poll.Until(t, 20*time.Second, "revenue under every strategy", func() error {
		sold := 0
		for _, g := range groups(t, s.analytics("by=strategy")) {
			if g["revenue"].(float64) > 0 && g["margin"].(float64) != g["revenue"].(float64) {
				sold++
			}
		}
		return poll.Check(sold == 3, "%d strategies with revenue and a cost", sold)
	})

	var stderr strings.Builder
	for _, c := range []struct {
		args []string
		want time.Duration
	}{
		{[]string{"--demo"}, demoHalfLife},
		{[]string{"--demo", "--half-life", "2h"}, 2 * time.Hour},
		{nil, time.Hour},
	} {
		po, err := parseServe(c.args, env(nil), &stderr)
		if err != nil || po.HalfLife != c.want {
			t.Errorf("serve %v: half-life %v (%v), want %v", c.args, po.HalfLife, err, c.want)
		}
	}
}

package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/dynaprice/dynaprice/internal/poll"
	"github.com/dynaprice/dynaprice/internal/pricing"
)

const (
	adminKey    = "admin-secret-0123456789"
	viewerKey   = "viewer-secret-0123456789"
	operatorKey = "operator-secret-0123456789"
	ingestKey   = "ingest-secret-0123456789"
)

// server is a real `dynaprice serve` on a random port.
type server struct {
	t    testing.TB
	url  string
	stop func() error
	done <-chan error // Serve's result, until stop takes it
}

func testOptions(dir string) ServeOptions {
	return ServeOptions{
		HTTPOptions: HTTPOptions{MaxBody: 1 << 20, AdminKey: adminKey,
			APIKeys:   "viewer:viewer:" + viewerKey + ",ops:operator:" + operatorKey + ",feed:ingest:" + ingestKey,
			KeyHeader: "X-API-Key", ShutdownTimeout: 5 * time.Second},
		PricingOptions: PricingOptions{HalfLife: time.Hour, Weights: "view=1,cart=3,purchase=5"},
		DedupOptions:   DedupOptions{DedupWindow: time.Hour, DedupMax: 1000},
		DataDir:        dir, DemoRate: 10, Sync: "normal",
	}
}

func startServer(t testing.TB, o ServeOptions) *server {
	t.Helper()
	s := launchServer(t, o, io.Discard)
	s.waitReady()
	return s
}

// launchServer starts Serve in-process, logging to logw, without waiting
// for it to be ready. It listens on o.Listener if set, else on a random
// port.
func launchServer(t testing.TB, o ServeOptions, logw io.Writer) *server {
	t.Helper()
	if o.Listener == nil {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		o.Listener = ln
	}
	ln := o.Listener
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	log := slog.New(slog.NewTextHandler(logw, nil))
	go func() { done <- Serve(ctx, o, log, io.Discard) }()
	s := &server{t: t, url: "http://" + ln.Addr().String(), done: done}
	stopped := false
	s.stop = func() error {
		if stopped {
			return nil
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(10 * time.Second):
			return fmt.Errorf("serve did not stop within 10s")
		}
	}
	t.Cleanup(func() { _ = s.stop() })
	return s
}

// waitReady waits until /readyz answers 200.
func (s *server) waitReady() {
	s.t.Helper()
	poll.Until(s.t, 10*time.Second, "/readyz to answer 200", func() error {
		select {
		case err := <-s.done:
			s.t.Fatalf("serve exited: %v", err)
		default:
		}
		resp, err := http.Get(s.url + "/readyz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		return poll.Check(resp.StatusCode == 200, "/readyz %d", resp.StatusCode)
	})
}

// do sends a request and decodes a JSON answer into a map.
func (s *server) do(method, path, key, ctype, body string) (int, map[string]any) {
	s.t.Helper()
	req, _ := http.NewRequest(method, s.url+path, strings.NewReader(body))
	if key != "" {
		req.Header.Set("X-API-Key", key)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") && !strings.HasPrefix(ct, "text/plain; version=0.0.4") {
		s.t.Fatalf("%s %s: content type %q, body %s", method, path, ct, b)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil && !strings.HasPrefix(path, "/metrics") {
		s.t.Fatalf("%s %s: %d body not a JSON object: %s", method, path, resp.StatusCode, b)
	}
	return resp.StatusCode, m
}

func (s *server) price(id string) map[string]any {
	s.t.Helper()
	code, m := s.do("GET", "/price/"+id, "", "", "")
	if code != 200 {
		s.t.Fatalf("GET /price/%s = %d %v", id, code, m)
	}
	return m
}

func (s *server) post(body string) map[string]any {
	s.t.Helper()
	code, m := s.do("POST", "/events", ingestKey, "application/json", body)
	if code != 202 {
		s.t.Fatalf("POST /events = %d %v", code, m)
	}
	return m
}

func TestSeedContractEndToEnd(t *testing.T) {
	s := startServer(t, testOptions(t.TempDir()))
	p := s.price("PA")
	if p["price"] != 299.0 || p["demand"] != 0.0 || p["price_source"] != "base" || p["product_id"] != "PA" {
		t.Fatalf("initial PA = %v", p)
	}
	m := s.post(`[{"event_type":"view","product_id":"PA","user_id":"U1","timestamp":1773713139,"price":299},
		{"event_type":"cart","product_id":"PA","user_id":"U1","timestamp":1773713140,"price":299},
		{"event_type":"purchase","product_id":"PA","user_id":"U1","timestamp":1773713141000,"price":299}]`)
	if m["accepted"] != 3.0 || m["rejected"] != 0.0 {
		t.Fatalf("post = %v", m)
	}
	p = s.price("PA")
	if p["price"] != 314.0 || p["demand"] != 9.0 || p["price_source"] != "dynamic" {
		t.Fatalf("PA after demand 9 = %v, want 314.00 dynamic", p)
	}
	if p["lowest_30d"] != 299.0 {
		t.Fatalf("lowest_30d = %v, want 299", p["lowest_30d"])
	}
	code, all := s.do("GET", "/prices", "", "", "")
	if code != 200 || len(all["prices"].([]any)) != 10 {
		t.Fatalf("GET /prices = %d %v", code, all)
	}
	want := map[string]float64{"PA": 314, "PB": 349, "PC": 129, "PD": 499, "PE": 219, "PF": 179, "PG": 649, "PH": 269, "PI": 399, "PJ": 159}
	for _, x := range all["prices"].([]any) {
		e := x.(map[string]any)
		if want[e["product_id"].(string)] != e["price"] {
			t.Errorf("%v: price %v", e["product_id"], e["price"])
		}
	}
}

func TestErrorsAreJSONWithRightStatus(t *testing.T) {
	o := testOptions(t.TempDir())
	o.MaxBody = 2048
	s := startServer(t, o)
	cases := []struct {
		method, path, key, ctype, body string
		want                           int
		msg                            string
	}{
		{"GET", "/price/NOPE", "", "", "", 404, "unknown product_id"},
		{"GET", "/price/bad%20id", "", "", "", 400, "invalid product id"},
		{"GET", "/nowhere", "", "", "", 404, "no such endpoint"},
		{"PATCH", "/price/PA", "", "", "", 405, "not allowed"},
		{"POST", "/events", "", "", `{}`, 401, "missing API key"},
		{"POST", "/events", "wrong", "", `{}`, 401, "invalid API key"},
		{"POST", "/events", viewerKey, "", `{}`, 403, "may not"},
		{"POST", "/events", ingestKey, "", `hello`, 400, ""},
		{"POST", "/events", ingestKey, "", ``, 400, ""},
		{"POST", "/events", ingestKey, "", `[` + strings.Repeat(`{"event_type":"view","product_id":"PA"},`, 100) + `{}]`, 413, "larger than"},
		{"POST", "/override", viewerKey, "", `{}`, 403, "may not"},
		{"POST", "/override", ingestKey, "", `{}`, 403, "may not"},
		{"POST", "/override", operatorKey, "", `{"product_id":"PA","override_price":-5,"reason":"x"}`, 400, "override_price"},
		{"POST", "/override", operatorKey, "", `{"product_id":"PA","override_price":0}`, 400, "override_price"},
		{"POST", "/override", operatorKey, "", `{"product_id":"PA","reason":"x"}`, 400, "override_price is required"},
		{"POST", "/override", operatorKey, "", `{"product_id":"PA","override_price":"12"}`, 400, "invalid JSON"},
		{"POST", "/override", operatorKey, "", `{"product_id":"PA","overide_price":12}`, 400, "unknown field"},
		{"POST", "/override", operatorKey, "", `{"product_id":"ZZ","override_price":12}`, 404, "unknown product_id"},
		{"POST", "/override", operatorKey, "", `{"product_id":"a/b","override_price":12}`, 400, "product_id"},
		{"POST", "/override", operatorKey, "", `{"product_id":"PA","override_price":12,"expires_at":"2001-01-01T00:00:00Z"}`, 400, "future"},
		{"POST", "/override", operatorKey, "", `{"product_id":"PA","override_price":12,"expires_at":"2611-01-01T00:00:00Z"}`, 400, "at most ten years ahead"},
		{"POST", "/override", operatorKey, "", `{"product_id":"PA","override_price":1e307}`, 400, "at most 1000000000"},
		{"POST", "/override", operatorKey, "", `{"product_id":"PA","override_price":0.004}`, 400, "at least 0.01"},
		{"POST", "/override", operatorKey, "", `not json`, 400, "invalid JSON"},
		{"DELETE", "/override/PA", operatorKey, "", "", 404, "no override"},
		{"DELETE", "/override/ZZ", operatorKey, "", "", 404, "unknown product_id"},
		{"GET", "/history/PA", "", "", "", 401, "missing API key"},
		{"GET", "/history/PA?limit=0", viewerKey, "", "", 400, "positive integer"},
		{"GET", "/history/PA?limit=abc", viewerKey, "", "", 400, "positive integer"},
		{"GET", "/history/PA?limit=-3", viewerKey, "", "", 400, "positive integer"},
		{"GET", "/history/PA?limit=1.5", viewerKey, "", "", 400, "positive integer"},
		{"GET", "/history/PA?limit=", viewerKey, "", "", 400, "positive integer"},
		{"GET", "/history/PA?limit=-99999999999999999999", viewerKey, "", "", 400, "positive integer"},
		{"GET", "/history/ZZ", viewerKey, "", "", 404, "unknown product_id"},
		{"PUT", "/products/PX", operatorKey, "", `{"base_price":10}`, 403, "may not"},
		{"PUT", "/products/PX", adminKey, "", `{"base_price":-10}`, 400, "base_price"},
		{"PUT", "/products/PX", adminKey, "", `{"product_id":"PY","base_price":10}`, 400, "differs"},
		{"PUT", "/products/PX", adminKey, "", `{"base_price":10,"strategy":"magic"}`, 400, "unknown strategy"},
		{"GET", "/price/PA?explain=1", "", "", "", 401, "API key"},
		{"GET", "/price/PA?explain=1", ingestKey, "", "", 403, "may not"},
	}
	for _, c := range cases {
		code, m := s.do(c.method, c.path, c.key, c.ctype, c.body)
		msg, _ := m["error"].(string)
		if code != c.want || msg == "" || !strings.Contains(msg, c.msg) {
			t.Errorf("%s %s %q: %d %v; want %d with error containing %q", c.method, c.path, c.body, code, m, c.want, c.msg)
		}
	}
	// Content-Length over the limit is refused before reading the body.
	req, _ := http.NewRequest("POST", s.url+"/events", bytes.NewReader(make([]byte, 4096)))
	req.Header.Set("X-API-Key", ingestKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 413 {
		t.Fatalf("oversized body: %v %v", resp, err)
	}
	resp.Body.Close()
}

// TestOversizedChunkedEventsBody: a body without Content-Length is limited
// while it is read; over the limit it gets 413 with a JSON error, and none
// of the events it carried is applied, though it begins with valid ones.
func TestOversizedChunkedEventsBody(t *testing.T) {
	o := testOptions(t.TempDir())
	o.MaxBody = 2048
	s := startServer(t, o)
	body := "[" + strings.Repeat(`{"event_type":"purchase","product_id":"PA"},`, 100) + `{"event_type":"purchase","product_id":"PA"}]`
	// Written by hand, so it is certain that no Content-Length is sent: two
	// chunks, the first of them valid events and within the limit.
	conn, err := net.Dial("tcp", strings.TrimPrefix(s.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(conn, "POST /events HTTP/1.1\r\nHost: x\r\nX-API-Key: %s\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n", ingestKey)
	for _, chunk := range []string{body[:1000], body[1000:]} {
		fmt.Fprintf(conn, "%x\r\n%s\r\n", len(chunk), chunk)
	}
	fmt.Fprint(conn, "0\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var m map[string]any
	if resp.StatusCode != 413 || resp.Header.Get("Content-Type") != "application/json" || json.Unmarshal(b, &m) != nil ||
		!strings.Contains(fmt.Sprint(m["error"]), "larger than 2048 bytes") {
		t.Fatalf("oversized chunked body: %d %q %s, want 413 with a JSON error", resp.StatusCode, resp.Header.Get("Content-Type"), b)
	}
	if p := s.price("PA"); p["demand"] != 0.0 || p["price_source"] != "base" {
		t.Fatalf("PA after the refused body = %v, want it untouched", p)
	}
	if code, h := s.do("GET", "/history/PA", viewerKey, "", ""); code != 200 || len(h["history"].([]any)) != 1 {
		t.Fatalf("history after the refused body = %d %v, want the base price only", code, h)
	}
}

// TestHistoryLimitIsCappedAt500: with more than 500 price changes, a larger
// limit, even one too large for an int, returns exactly the newest 500.
func TestHistoryLimitIsCappedAt500(t *testing.T) {
	s := startServer(t, testOptions(t.TempDir()))
	// 600 purchases in one body: each moves PA's price (by at least 22
	// cents at demand 3000), so each adds a history row to the base one.
	body := "[" + strings.Repeat(`{"event_type":"purchase","product_id":"PA"},`, 599) + `{"event_type":"purchase","product_id":"PA"}]`
	if m := s.post(body); m["accepted"] != 600.0 {
		t.Fatalf("post = %v", m)
	}
	cur := s.price("PA")
	if code, h := s.do("GET", "/history/PA?limit=500", viewerKey, "", ""); code != 200 || len(h["history"].([]any)) != 500 {
		t.Fatalf("limit=500: %d, %d rows", code, len(h["history"].([]any)))
	}
	for _, limit := range []string{"100000", "99999999999999999999"} {
		code, h := s.do("GET", "/history/PA?limit="+limit, viewerKey, "", "")
		if code != 200 {
			t.Fatalf("limit=%s: %d %v", limit, code, h)
		}
		rows := h["history"].([]any)
		if len(rows) != 500 {
			t.Fatalf("limit=%s: %d rows, want 500 of 601", limit, len(rows))
		}
		first := rows[0].(map[string]any)
		if first["price"] != cur["price"] || first["version"] != cur["version"] {
			t.Fatalf("limit=%s: newest row %v, current price %v", limit, first, cur)
		}
		// Newest first: versions count down by one, prices fall with them.
		for i := 1; i < len(rows); i++ {
			prev, r := rows[i-1].(map[string]any), rows[i].(map[string]any)
			if r["version"].(float64) != prev["version"].(float64)-1 || !(r["price"].(float64) < prev["price"].(float64)) {
				t.Fatalf("limit=%s: row %d %v after %v is not the next older change", limit, i, r, prev)
			}
		}
	}
}

func TestEventsValidationDedupAndFormats(t *testing.T) {
	s := startServer(t, testOptions(t.TempDir()))
	m := s.post(`[{"event_type":"view","product_id":"PB"},
		{"event_type":"click","product_id":"PB"},
		{"event_type":"view","product_id":"NOPE"},
		{"event_type":"view","product_id":"PB","price":-1},
		7,
		{"event_type":"cart","product_id":"PB","event_id":"e-1"},
		{"event_type":"cart","product_id":"PB","event_id":"e-1"}]`)
	if m["accepted"] != 3.0 || m["rejected"] != 4.0 || m["duplicates"] != 1.0 {
		t.Fatalf("counts = %v", m)
	}
	errs := m["errors"].([]any)
	idx := []float64{}
	for _, e := range errs {
		idx = append(idx, e.(map[string]any)["index"].(float64))
		if e.(map[string]any)["error"].(string) == "" {
			t.Errorf("empty reason: %v", e)
		}
	}
	if fmt.Sprint(idx) != "[1 2 3 4]" {
		t.Fatalf("reject indexes = %v, want [1 2 3 4]; %v", idx, errs)
	}
	if !strings.Contains(errs[1].(map[string]any)["error"].(string), "NOPE") {
		t.Errorf("unknown product reason = %v", errs[1])
	}
	// demand 1 + 3 = 4 (the duplicate was not applied): 349 + 10 = 359
	if p := s.price("PB"); p["price"] != 359.0 || p["demand"] != 4.0 {
		t.Fatalf("PB = %v, want 359 with demand 4", p)
	}
	// A retry of the same id in a later request is also not applied.
	if m := s.post(`{"event_type":"cart","product_id":"PB","event_id":"e-1"}`); m["duplicates"] != 1.0 || m["accepted"] != 1.0 {
		t.Fatalf("retry = %v", m)
	}
	// NDJSON, with a malformed line rejected on its own.
	code, m := s.do("POST", "/events", ingestKey, "application/x-ndjson",
		"{\"event_type\":\"view\",\"product_id\":\"PB\"}\n{oops\n{\"event_type\":\"purchase\",\"product_id\":\"PB\",\"quantity\":2}\n")
	if code != 202 || m["accepted"] != 2.0 || m["rejected"] != 1.0 {
		t.Fatalf("ndjson = %d %v", code, m)
	}
	if p := s.price("PB"); p["demand"] != 15.0 {
		t.Fatalf("PB demand = %v, want 15", p["demand"])
	}
}

func TestOverrideHistoryAuditExplainAndCatalog(t *testing.T) {
	s := startServer(t, testOptions(t.TempDir()))
	s.post(`[{"event_type":"purchase","product_id":"PC"},{"event_type":"purchase","product_id":"PC"},{"event_type":"purchase","product_id":"PC"},{"event_type":"purchase","product_id":"PC"},{"event_type":"purchase","product_id":"PC"}]`)
	if p := s.price("PC"); p["price"] != 154.0 { // 129 + sqrt(25)*5
		t.Fatalf("PC = %v", p)
	}
	code, m := s.do("POST", "/override", operatorKey, "", `{"product_id":"PC","override_price":99.5,"reason":"clearance"}`)
	if code != 200 || m["status"] != "upserted" || m["override_price"] != 99.5 || m["reason"] != "clearance" || m["product_id"] != "PC" {
		t.Fatalf("override = %d %v", code, m)
	}
	if p := s.price("PC"); p["price"] != 99.5 || p["price_source"] != "override" || p["lowest_30d"] != 99.5 {
		t.Fatalf("PC under override = %v", p)
	}
	code, e := s.do("GET", "/price/PC?explain=1", viewerKey, "", "")
	if code != 200 || e["strategy"] != "seed" || e["dynamic_price"] != 154.0 || e["override"].(map[string]any)["reason"] != "clearance" {
		t.Fatalf("explain = %d %v", code, e)
	}
	code, m = s.do("DELETE", "/override/PC", operatorKey, "", "")
	if code != 200 || m["deleted"] != true || m["product_id"] != "PC" {
		t.Fatalf("delete = %d %v", code, m)
	}
	if p := s.price("PC"); p["price"] != 154.0 || p["price_source"] != "dynamic" {
		t.Fatalf("after delete = %v", p)
	}
	code, h := s.do("GET", "/history/PC?limit=3", viewerKey, "", "")
	if code != 200 || h["product_id"] != "PC" {
		t.Fatalf("history = %d %v", code, h)
	}
	hist := h["history"].([]any)
	if len(hist) != 3 {
		t.Fatalf("history len = %d: %v", len(hist), hist)
	}
	srcs := []string{}
	for _, x := range hist {
		r := x.(map[string]any)
		srcs = append(srcs, r["price_source"].(string))
		if _, err := time.Parse(time.RFC3339, r["event_time"].(string)); err != nil || !strings.HasSuffix(r["event_time"].(string), "Z") {
			t.Errorf("event_time %v: %v", r["event_time"], err)
		}
	}
	if fmt.Sprint(srcs) != "[dynamic override dynamic]" || hist[0].(map[string]any)["price"] != 154.0 || hist[1].(map[string]any)["price"] != 99.5 {
		t.Fatalf("history newest first = %v", hist)
	}
	if code, h = s.do("GET", "/history/PC", operatorKey, "", ""); code != 200 || len(h["history"].([]any)) != 8 {
		t.Fatalf("default history = %d, %d rows, want 8 (base + 5 events + override + removal)", code, len(h["history"].([]any)))
	}
	if code, h = s.do("GET", "/history/PC?limit=100000", viewerKey, "", ""); code != 200 || len(h["history"].([]any)) != 8 {
		t.Fatalf("capped history = %d %v", code, h)
	}
	code, a := s.do("GET", "/overrides/PC", viewerKey, "", "")
	ov := a["overrides"].([]any)
	if code != 200 || len(ov) != 1 || ov[0].(map[string]any)["set_by"] != "ops" || ov[0].(map[string]any)["end_reason"] != "removed" {
		t.Fatalf("audit = %d %v", code, a)
	}
	// Catalog: admin creates a product; it is priced and listed.
	code, m = s.do("PUT", "/products/NEW-1", adminKey, "", `{"name":"New","base_price":10,"rounding":".99"}`)
	if code != 201 || m["status"] != "created" {
		t.Fatalf("put = %d %v", code, m)
	}
	if p := s.price("NEW-1"); p["price"] != 9.99 || p["price_source"] != "base" { // rounding applies to the base too
		t.Fatalf("NEW-1 = %v", p)
	}
	s.post(`{"event_type":"cart","product_id":"NEW-1"}`) // 10 + sqrt(3)*5 = 18.66 -> 18.99
	if p := s.price("NEW-1"); p["price"] != 18.99 {
		t.Fatalf("NEW-1 = %v, want 18.99", p)
	}
	code, m = s.do("PUT", "/products/NEW-1", adminKey, "", `{"base_price":20}`)
	if code != 200 || m["status"] != "updated" {
		t.Fatalf("update = %d %v", code, m)
	}
	code, ps := s.do("GET", "/products", viewerKey, "", "")
	if code != 200 || len(ps["products"].([]any)) != 11 {
		t.Fatalf("products = %d %v", code, ps)
	}
	// An override with a TTL expires by itself.
	code, m = s.do("POST", "/override", adminKey, "", `{"product_id":"PD","override_price":1,"ttl_seconds":1}`)
	if code != 200 || m["expires_at"] == nil {
		t.Fatalf("ttl override = %d %v", code, m)
	}
	poll.Until(t, 5*time.Second, "the override to expire", func() error {
		p := s.price("PD")
		return poll.Check(p["price_source"] != "override", "PD %v", p)
	})
	code, a = s.do("GET", "/overrides/PD", viewerKey, "", "")
	if code != 200 || a["overrides"].([]any)[0].(map[string]any)["end_reason"] != "expired" {
		t.Fatalf("audit after expiry = %v", a)
	}
}

func TestWebSocketUpdatesAndOrigin(t *testing.T) {
	s := startServer(t, testOptions(t.TempDir()))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ws := "ws" + strings.TrimPrefix(s.url, "http") + "/ws/prices"
	c, _, err := websocket.Dial(ctx, ws, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	s.post(`{"event_type":"purchase","product_id":"PE"}`)
	for {
		_, b, err := c.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		if m["product_id"] != "PE" {
			continue
		}
		want := 219 + 5*2.23606797749979
		if m["type"] != "price_update" || m["new_price"] != float64(int(want*100+0.5))/100 || m["timestamp"] == nil {
			t.Fatalf("update = %v", m)
		}
		break
	}
	// A foreign origin is refused. The original's dashboard (on
	// localhost:3000) is one: the answer says which setting allows it.
	_, resp, err := websocket.Dial(ctx, ws, &websocket.DialOptions{HTTPHeader: http.Header{"Origin": {"https://evil.example"}}})
	if err == nil || resp == nil || resp.StatusCode != 403 {
		t.Fatalf("foreign origin: err %v resp %v", err, resp)
	}
	req, _ := http.NewRequest("GET", s.url+"/ws/prices", nil)
	req.Header.Set("Origin", "http://localhost:3000")
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "websocket")
	req.Header.Set("Sec-WebSocket-Version", "13")
	req.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
	if resp, err := http.DefaultClient.Do(req); err != nil {
		t.Fatal(err)
	} else {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 403 || !strings.Contains(string(b), "allow it with DYNAPRICE_WS_ORIGINS=localhost:3000") {
			t.Fatalf("the original dashboard's origin: %d %s", resp.StatusCode, b)
		}
	}
	// Shutdown closes the socket and Serve returns nil.
	if err := s.stop(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Read(ctx); websocket.CloseStatus(err) != websocket.StatusGoingAway {
		t.Fatalf("after shutdown read err = %v, want going away", err)
	}
}

func TestHealthReadinessMetrics(t *testing.T) {
	s := startServer(t, testOptions(t.TempDir()))
	if code, m := s.do("GET", "/healthz", "", "", ""); code != 200 || m["status"] != "ok" {
		t.Fatalf("healthz %d %v", code, m)
	}
	s.post(`{"event_type":"view","product_id":"PA"}`)
	resp, err := http.Get(s.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{"dynaprice_events_applied_total{role=\"serve\"} 1", "dynaprice_partitions_owned{role=\"serve\"} 1", "dynaprice_http_requests_total{code=\"202\",route=\"events\"} 1", "go_goroutines"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

func TestRestartResumesExactly(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, testOptions(dir))
	s.post(`[{"event_type":"purchase","product_id":"PF","event_id":"x1"},{"event_type":"cart","product_id":"PF"}]`)
	s.do("POST", "/override", operatorKey, "", `{"product_id":"PG","override_price":500,"reason":"r"}`)
	before := s.price("PF")
	if err := s.stop(); err != nil {
		t.Fatal(err)
	}
	s2 := startServer(t, testOptions(dir))
	after := s2.price("PF")
	for _, k := range []string{"price", "demand", "price_source", "version", "lowest_30d"} {
		if before[k] != after[k] {
			t.Errorf("%s: before %v after %v", k, before[k], after[k])
		}
	}
	if p := s2.price("PG"); p["price"] != 500.0 || p["price_source"] != "override" {
		t.Errorf("override lost: %v", p)
	}
	// The event id is still remembered.
	if m := s2.post(`{"event_type":"purchase","product_id":"PF","event_id":"x1"}`); m["duplicates"] != 1.0 {
		t.Errorf("dedup lost across restart: %v", m)
	}
	if s2.price("PF")["demand"] != 8.0 {
		t.Errorf("demand changed: %v", s2.price("PF"))
	}
}

// TestThompsonProductLearnsAcrossRestart: a product priced by Thompson
// sampling shows ladder prices, learns from the events' shown prices, and
// after a restart continues with exactly the same learned state.
func TestThompsonProductLearnsAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, testOptions(dir))
	if code, m := s.do("PUT", "/products/PT", adminKey, "application/json", `{"product_id":"PT","base_price":100,"strategy":"thompson"}`); code != 201 {
		t.Fatalf("PUT /products/PT = %d %v", code, m)
	}
	rungs := map[float64]bool{}
	for _, m := range pricing.DefaultLadder() {
		rungs[math.Round(100*m*100)/100] = true
	}
	for k := 0; k < 60; k++ {
		p := s.price("PT")["price"].(float64)
		if !rungs[p] {
			t.Fatalf("price %v is not a rung of the ladder", p)
		}
		body := fmt.Sprintf(`{"event_type":"view","product_id":"PT","price":%v}`, p)
		if p <= 100 {
			body = fmt.Sprintf(`[{"event_type":"view","product_id":"PT","price":%v},{"event_type":"purchase","product_id":"PT","price":%v}]`, p, p)
		}
		s.post(body)
	}
	code, m := s.do("GET", "/price/PT?explain=1", viewerKey, "", "")
	if code != 200 || m["strategy"] != "thompson" {
		t.Fatalf("explain = %d %v", code, m)
	}
	rungList, _ := m["learning"].([]any)
	views, shown := 0.0, 0
	for _, r := range rungList {
		r := r.(map[string]any)
		views += r["views"].(float64)
		if r["shown"] == true {
			shown++
			if r["price"] != m["price"] {
				t.Errorf("the shown rung %v is not the price %v", r["price"], m["price"])
			}
		}
	}
	if len(rungList) != len(pricing.DefaultLadder()) || views != 60 || shown != 1 {
		t.Errorf("explanation's learning = %v, want %d rungs, 60 views, one shown", rungList, len(pricing.DefaultLadder()))
	}
	before := s.price("PT")
	if err := s.stop(); err != nil {
		t.Fatal(err)
	}
	s2 := startServer(t, testOptions(dir))
	if after := s2.price("PT"); after["price"] != before["price"] || after["version"] != before["version"] {
		t.Fatalf("after restart %v, before %v", after, before)
	}
}

// TestMarketSignalsThroughTheAPI: a catalog entry with a unit cost, a
// competitor rule and a selling plan; competitor_price and stock events
// reprice it (competitor strategy, held up by the margin floor, then the
// inventory strategy), the explanation shows the signals, and all of it
// survives a restart.
func TestMarketSignalsThroughTheAPI(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, testOptions(dir))
	start := time.Now().UTC().Add(-24 * time.Hour).Truncate(time.Second)
	product := fmt.Sprintf(`{"product_id":"PM","base_price":100,"strategy":"competitor","unit_cost":80,"min_margin_pct":10,
		"competitor":{"mode":"beat","pct":5},
		"inventory":{"period_start":%q,"period_end":%q}}`, start.Format(time.RFC3339), start.Add(48*time.Hour).Format(time.RFC3339))
	if code, m := s.do("PUT", "/products/PM", adminKey, "application/json", product); code != 201 {
		t.Fatalf("PUT /products/PM = %d %v", code, m)
	}
	m := s.post(`[{"event_type":"competitor_price","product_id":"PM","competitor":"B","price":96},
		{"event_type":"competitor_price","product_id":"PM","competitor":"C","price":110},
		{"event_type":"stock","product_id":"PM","quantity":40},
		{"event_type":"stock","product_id":"PM"},
		{"event_type":"competitor_price","product_id":"PA","price":10},
		{"event_type":"stock","product_id":"NOPE","quantity":1}]`)
	if m["accepted"] != 3.0 || m["rejected"] != 3.0 {
		t.Fatalf("POST /events = %v", m)
	}
	if p := s.price("PM"); p["price"] != 91.2 || p["price_source"] != "dynamic" { // 96 - 5%
		t.Fatalf("beating B's 96 by 5%%: %v", p)
	}
	s.post(`{"event_type":"competitor_price","product_id":"PM","competitor":"B","price":85}`)
	code, e := s.do("GET", "/price/PM?explain=1", viewerKey, "", "")
	if code != 200 || e["price"] != 88.0 { // 80.75 held up by the margin floor, 80 + 10%
		t.Fatalf("explain = %d %v", code, e)
	}
	g := e["guardrails"].([]any)
	if len(g) != 1 || g[0].(map[string]any)["guardrail"] != "margin_floor" {
		t.Fatalf("guardrails %v, want the margin floor", g)
	}
	mk, _ := e["market"].(map[string]any)
	if mk == nil || mk["stock"] != 40.0 || mk["reference"].(map[string]any)["competitor"] != "B" || len(mk["competitors"].([]any)) != 2 {
		t.Fatalf("market %v", mk)
	}
	// The same product on the inventory strategy. Its stock became known
	// half way through the period, so the plan runs from then: 40 to
	// sell by the end; 30 sold at once leaves 10 against about 40 on plan,
	// far ahead, so the price goes to the strategy's cap, 3 × base.
	strategy := strings.Replace(product, `"strategy":"competitor"`, `"strategy":"inventory"`, 1)
	if code, m := s.do("PUT", "/products/PM", adminKey, "application/json", strategy); code != 200 {
		t.Fatalf("PUT /products/PM = %d %v", code, m)
	}
	s.post(`{"event_type":"purchase","product_id":"PM","quantity":30}`)
	p := s.price("PM")
	if p["price"] != 300.0 {
		t.Fatalf("inventory price %v, want 300", p)
	}
	if err := s.stop(); err != nil {
		t.Fatal(err)
	}
	s2 := startServer(t, testOptions(dir))
	if after := s2.price("PM"); after["price"] != p["price"] || after["version"] != p["version"] {
		t.Fatalf("after restart %v, before %v", after, p)
	}
	_, e = s2.do("GET", "/price/PM?explain=1", viewerKey, "", "")
	if mk, _ := e["market"].(map[string]any); mk == nil || mk["stock"] != 10.0 || len(mk["competitors"].([]any)) != 2 {
		t.Fatalf("market after restart %v", e["market"])
	}
	_, cat := s2.do("GET", "/products", viewerKey, "", "")
	js, _ := json.Marshal(cat)
	for _, want := range []string{`"unit_cost":80`, `"min_margin_pct":10`, `"mode":"beat"`, `"period_start"`} {
		if !strings.Contains(string(js), want) {
			t.Errorf("GET /products lacks %s: %s", want, js)
		}
	}
}

// TestEventsRequestLimits: a body of junk cannot make an answer many times
// its own size (the first 100 rejects are described, the rest counted), and
// a body with more events than --max-events is refused whole.
func TestEventsRequestLimits(t *testing.T) {
	o := testOptions(t.TempDir())
	o.MaxEvents = 300
	s := startServer(t, o)
	junk := func(n int) string { return "[" + strings.TrimSuffix(strings.Repeat("1,", n), ",") + "]" }
	code, m := s.do("POST", "/events", ingestKey, "", junk(250))
	errs, _ := m["errors"].([]any)
	if code != 202 || m["rejected"] != 250.0 || len(errs) != 100 || m["errors_omitted"] != 150.0 {
		t.Fatalf("250 junk events: %d, rejected %v, %d errors, %v omitted; want 202, 250, 100, 150", code, m["rejected"], len(errs), m["errors_omitted"])
	}
	if code, m := s.do("POST", "/events", ingestKey, "", junk(301)); code != 413 || !strings.Contains(fmt.Sprint(m["error"]), "too many events") {
		t.Fatalf("301 events with --max-events 300: %d %v, want 413", code, m)
	}
	code, m = s.do("POST", "/events", ingestKey, "", `[{"event_type":"view","product_id":"PA"},1]`)
	if code != 202 || m["accepted"] != 1.0 || m["errors_omitted"] != nil {
		t.Fatalf("one good, one bad: %d %v", code, m)
	}
}

// TestHeaderAndSlowBodyLimits: a client may neither send a huge header
// nor hold a connection by sending its body slowly.
func TestHeaderAndSlowBodyLimits(t *testing.T) {
	o := testOptions(t.TempDir())
	o.BodyTimeout = 300 * time.Millisecond
	s := startServer(t, o)
	req, _ := http.NewRequest("GET", s.url+"/price/PA", nil)
	req.Header.Set("X-Junk", strings.Repeat("j", 100<<10))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("a 100 KiB header: %d, want 431", resp.StatusCode)
	}

	conn, err := net.Dial("tcp", strings.TrimPrefix(s.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /events HTTP/1.1\r\nHost: x\r\nX-API-Key: %s\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n[{\"event", ingestKey)
	start := time.Now()
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	answer, _ := io.ReadAll(conn) // the answer, then the server closes
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("a stalled body held the connection %v; --body-timeout is 300ms", took)
	}
	if !strings.HasPrefix(string(answer), "HTTP/1.1 400") {
		t.Fatalf("a stalled body was answered %q, want 400", answer)
	}
}

// TestRateLimits: an address that keeps failing to authenticate is refused
// with 429 and Retry-After, even with a right key, and each failure is
// logged without the secret; a key over its rate gets 429 too.
func TestRateLimits(t *testing.T) {
	o := testOptions(t.TempDir())
	o.AuthFailRate, o.AuthFailBurst = 0.5, 3
	var logs syncBuffer
	s := launchServer(t, o, &logs)
	s.waitReady()
	guess := "guessed-key-" + strings.Repeat("g", 8)
	for i := range 3 {
		if code, _ := s.do("GET", "/history/PA", guess, "", ""); code != 401 {
			t.Fatalf("guess %d: %d, want 401", i+1, code)
		}
	}
	req, _ := http.NewRequest("GET", s.url+"/history/PA", nil)
	req.Header.Set("X-API-Key", viewerKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("a right key after 3 failures from the address: %d, Retry-After %q; want 429 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if code, _ := s.do("GET", "/price/PA", "", "", ""); code != 200 {
		t.Fatalf("a public route from the refused address: %d, want 200", code)
	}
	out := logs.String()
	if strings.Count(out, "authentication failed") != 3 || strings.Contains(out, guess) {
		t.Errorf("log: want 3 failures logged without the presented key:\n%s", out)
	}

	o = testOptions(t.TempDir())
	o.KeyRate, o.KeyBurst = 0.5, 2
	s2 := startServer(t, o)
	for i, want := range []int{200, 200, 429} {
		if code, m := s2.do("GET", "/history/PA", viewerKey, "", ""); code != want {
			t.Fatalf("request %d of a key allowed 2 at once: %d %v, want %d", i+1, code, m, want)
		}
	}
	if code, _ := s2.do("GET", "/history/PA", operatorKey, "", ""); code != 200 {
		t.Fatalf("another key: %d, want 200 (each key has its own budget)", code)
	}
}

// TestUncleanPathsAnswerJSON: "//" and ".." are redirected to the clean
// path with a JSON body, not net/http's HTML.
func TestUncleanPathsAnswerJSON(t *testing.T) {
	s := startServer(t, testOptions(t.TempDir()))
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, p := range []string{"/price//PA", "/price/../prices", "/price/./PA"} {
		req, _ := http.NewRequest("GET", s.url+p, nil)
		req.URL.Opaque = p // send the path as written
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 301 || resp.Header.Get("Content-Type") != "application/json" || !json.Valid(b) || resp.Header.Get("Location") == "" {
			t.Errorf("GET %s: %d %s %q, Location %q; want 301 with JSON", p, resp.StatusCode, resp.Header.Get("Content-Type"), b, resp.Header.Get("Location"))
		}
	}
}

// TestBreakerHoldsAndOperatorReleases: with --max-quantity and
// --max-move-pct, a purchase above the cap is refused with its reason, a
// push past the move limit is held (explained, counted in /metrics), and
// only an operator may release it.
func TestBreakerHoldsAndOperatorReleases(t *testing.T) {
	o := testOptions(t.TempDir())
	o.MaxQuantity, o.MaxMovePct, o.MoveWindow = 10, 20, time.Hour
	s := startServer(t, o)
	code, m := s.do("POST", "/events", ingestKey, "application/json",
		`[{"event_type":"purchase","product_id":"PA","quantity":11},{"event_type":"view","product_id":"PA"}]`)
	if code != 202 || m["accepted"] != 1.0 || m["rejected"] != 1.0 ||
		!strings.Contains(fmt.Sprint(m["errors"]), `quantity 11 is above product "PA"'s max_quantity 10`) {
		t.Fatalf("quantity above the cap: %d %v", code, m)
	}
	// PA: 299 + 5*sqrt(demand); 20% above 299 is 358.80, reached at demand 140.
	s.post(`{"event_type":"purchase","product_id":"PA","quantity":10}`) // demand 50 (+1 view): 299 + 5*sqrt(51) = 334.71
	if p := s.price("PA")["price"]; p != 334.71 {
		t.Fatalf("PA = %v, want 334.71", p)
	}
	// Demand 101: 349.25, published; demand 151: 360.44, held.
	s.post(`[{"event_type":"purchase","product_id":"PA","quantity":10},{"event_type":"purchase","product_id":"PA","quantity":10}]`)
	held := 349.25
	if p := s.price("PA"); p["price"] != held {
		t.Fatalf("PA moved to %v past the breaker", p["price"])
	}
	_, e := s.do("GET", "/price/PA?explain=1", viewerKey, "", "")
	br, _ := e["breaker"].(map[string]any)
	if br == nil || br["wanted_price"] != 360.44 || br["anchor_price"] != 299.0 || br["max_move_pct"] != 20.0 {
		t.Fatalf("explanation: %v", e)
	}
	if !strings.Contains(s.metrics(), `dynaprice_breaker_trips_total{role="serve"} 1`) {
		t.Fatalf("metrics lack the trip")
	}
	if code, m := s.do("POST", "/release/PA", viewerKey, "", ""); code != 403 {
		t.Fatalf("a viewer released: %d %v", code, m)
	}
	if code, m := s.do("POST", "/release/PA", operatorKey, "", ""); code != 200 || m["released"] != true {
		t.Fatalf("release: %d %v", code, m)
	}
	if p := s.price("PA"); p["price"] != 360.44 {
		t.Fatalf("released PA = %v, want 360.44", p["price"])
	}
	if code, m := s.do("POST", "/release/PA", operatorKey, "", ""); code != 404 || !strings.Contains(fmt.Sprint(m["error"]), "not held") {
		t.Fatalf("second release: %d %v", code, m)
	}
	if code, _ := s.do("POST", "/release/ZZ", operatorKey, "", ""); code != 404 {
		t.Fatalf("release of an unknown product: %d", code)
	}
}

// metrics returns the text of /metrics.
func (s *server) metrics() string {
	s.t.Helper()
	resp, err := http.Get(s.url + "/metrics")
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// TestStartFailuresExplainThemselves: a port in use names --addr, a data
// directory that cannot be written names the path and the cause, and a
// start that fails leaves no data directory behind.
func TestStartFailuresExplainThemselves(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	ctx := context.Background()
	log := slog.New(slog.DiscardHandler)

	dir := filepath.Join(t.TempDir(), "new-data")
	o := testOptions(dir)
	o.Addr = busy.Addr().String()
	err = Serve(ctx, o, log, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "the port is in use") || !strings.Contains(err.Error(), "--addr") {
		t.Errorf("port in use: %v", err)
	}
	if _, serr := os.Stat(dir); !errors.Is(serr, fs.ErrNotExist) {
		t.Errorf("a failed start left %s behind (%v)", dir, serr)
	}

	file := filepath.Join(t.TempDir(), "a-file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ dir, want string }{
		{file, "data directory (--data): mkdir " + file + ": not a directory"},
		{"/proc/self", "data directory (--data) /proc/self is not writable"},
	} {
		o := testOptions(c.dir)
		o.Addr = "127.0.0.1:0"
		if err := Serve(ctx, o, log, io.Discard); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("--data %s: %v, want %q", c.dir, err, c.want)
		}
	}
}

// TestListenAddressDefaults: serve listens on this machine only unless
// told otherwise (API_PORT keeps the original's every-interface meaning);
// an API replica, which sits behind a load balancer, on every interface.
func TestListenAddressDefaults(t *testing.T) {
	var stderr bytes.Buffer
	if o, err := parseServe(nil, env(nil), &stderr); err != nil || o.Addr != "127.0.0.1:8080" {
		t.Errorf("serve default = %q %v", o.Addr, err)
	}
	if o, err := parseServe(nil, env(map[string]string{"API_PORT": "18481"}), &stderr); err != nil || o.Addr != ":18481" {
		t.Errorf("serve with API_PORT = %q %v", o.Addr, err)
	}
	if o, err := parseAPI(nil, env(nil), &stderr); err != nil || o.Addr != ":8080" {
		t.Errorf("api default = %q %v", o.Addr, err)
	}
}

// TestOverrideAsTheOriginalTookIt: the original trimmed the product id
// and gave an override without a reason the reason "manual override".
func TestOverrideAsTheOriginalTookIt(t *testing.T) {
	s := startServer(t, testOptions(t.TempDir()))
	code, m := s.do("POST", "/override", operatorKey, "", `{"product_id":" PA ","override_price":250}`)
	if code != 200 || m["product_id"] != "PA" || m["reason"] != "manual override" {
		t.Fatalf("override = %d %v", code, m)
	}
	_, a := s.do("GET", "/overrides/PA", viewerKey, "", "")
	if ov, _ := a["overrides"].([]any); len(ov) != 1 || ov[0].(map[string]any)["reason"] != "manual override" {
		t.Fatalf("audit = %v", a)
	}
	if code, m := s.do("POST", "/override", operatorKey, "", `{"product_id":" P A ","override_price":250}`); code != 400 {
		t.Fatalf("an id with a space inside = %d %v, want 400", code, m)
	}
}

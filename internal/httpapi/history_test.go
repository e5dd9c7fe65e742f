package httpapi

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dynaprice/dynaprice/internal/engine"
	"github.com/dynaprice/dynaprice/internal/live"
	"github.com/dynaprice/dynaprice/internal/pricing"
)

// pageArchive records the limits it is asked for and answers with summaries
// only when it has some.
type pageArchive struct {
	openapiArchive
	mu            sync.Mutex
	limit, hourly int
	page          engine.HistoryPage
}

func (a *pageArchive) HistoryPage(_ context.Context, _ string, limit, hourly int) (engine.HistoryPage, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.limit, a.hourly = limit, hourly
	return a.page, nil
}

// TestHistoryHourly: ?hourly= is passed on (absent: -1, fill what limit
// leaves; capped at 500; anything but an integer >= 0 is a 400), and the
// summaries come in "hourly" with the close's details under the names of
// a change's, absent when there are none.
func TestHistoryHourly(t *testing.T) {
	view := live.New(live.HubConfig{})
	view.Publish([]live.Price{{ProductID: "PA", Price: 1, Version: 1, At: 1}})
	arch := &pageArchive{}
	cfg := DefaultConfig()
	cfg.Keys = []Key{{Name: "dash", Role: RoleViewer, Secret: "history-test-viewer"}}
	cfg.Logger = slog.New(slog.DiscardHandler)
	a, err := New(cfg, Deps{Engine: openapiEngine{}, Prices: live.Prices{V: view}, Archive: arch})
	if err != nil {
		t.Fatal(err)
	}
	get := func(q string) (int, map[string]json.RawMessage) {
		t.Helper()
		req := httptest.NewRequest("GET", "/history/PA"+q, nil)
		req.Header.Set("X-API-Key", "history-test-viewer")
		w := httptest.NewRecorder()
		a.ServeHTTP(w, req)
		var body map[string]json.RawMessage
		if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
			t.Fatalf("%s: %s: %v", q, w.Body, err)
		}
		return w.Code, body
	}
	for _, c := range []struct {
		q             string
		limit, hourly int
	}{
		{"", 50, -1}, {"?limit=5", 5, -1}, {"?hourly=3", 50, 3}, {"?limit=2&hourly=0", 2, 0}, {"?hourly=99999999999999999999", 50, 500},
	} {
		code, body := get(c.q)
		if code != http.StatusOK || arch.limit != c.limit || arch.hourly != c.hourly {
			t.Errorf("%q: %d, asked for %d changes and %d summaries; want 200, %d and %d", c.q, code, arch.limit, arch.hourly, c.limit, c.hourly)
		}
		if _, ok := body["hourly"]; ok {
			t.Errorf("%q: %s: an empty hourly list is sent", c.q, body["hourly"])
		}
	}
	for _, q := range []string{"?hourly=-1", "?hourly=", "?hourly=x", "?hourly=1.5"} {
		if code, body := get(q); code != http.StatusBadRequest || !strings.Contains(string(body["error"]), "hourly") {
			t.Errorf("%q: %d %s, want a 400 naming hourly", q, code, body["error"])
		}
	}
	hour := time.Date(2026, 2, 10, 14, 0, 0, 0, time.UTC).UnixNano()
	arch.page = engine.HistoryPage{Hourly: []engine.HourlyRow{{ProductID: "PA", Hour: hour, Open: 1, High: 3, Low: 0.5, Close: 2,
		Changes: 4, CloseAt: hour + 90e9, Version: 9, Source: pricing.SourceOverride, Demand: 1.23456}}}
	_, body := get("")
	if string(body["history"]) != "[]" {
		t.Errorf("history = %s, want []", body["history"])
	}
	want := `[{"hour":"2026-02-10T14:00:00Z","open":1,"high":3,"low":0.5,"close":2,"changes":4,"close_time":"2026-02-10T14:01:30Z","price_source":"override","demand":1.2346,"version":9}]`
	if string(body["hourly"]) != want {
		t.Errorf("hourly = %s\nwant %s", body["hourly"], want)
	}
}

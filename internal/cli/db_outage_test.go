package cli

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/dynaprice/dynaprice/internal/httpapi"
	"github.com/dynaprice/dynaprice/internal/ingest"
	"github.com/dynaprice/dynaprice/internal/kafka"
	"github.com/dynaprice/dynaprice/internal/live"
	"github.com/dynaprice/dynaprice/internal/postgres"
	"github.com/dynaprice/dynaprice/internal/pricing"
)

// outageLog and outageLive stand in for Kafka and Redis, which stay up:
// only the database goes away in TestAPIDatabaseOutageAnswers503.
type outageLog struct{}

func (outageLog) Events(context.Context, []ingest.Event) error    { return nil }
func (outageLog) Send(context.Context, kafka.ControlRecord) error { return nil }

type outageLive struct{}

func (outageLive) Lookup(_ context.Context, id string) (live.Price, bool, error) {
	return live.Price{ProductID: id, Price: 10, Version: 1}, id == "p1", nil
}

// TestAPIDatabaseOutageAnswers503: while PostgreSQL cannot be reached, an
// API replica answers every route that needs it 503 (never 500), and no
// answer names the database's user, name, host or port.
func TestAPIDatabaseOutageAnswers503(t *testing.T) {
	pg := os.Getenv("DYNAPRICE_TEST_POSTGRES")
	if pg == "" {
		t.Skip("DYNAPRICE_TEST_POSTGRES not set")
	}
	u, err := url.Parse(pg)
	if err != nil {
		t.Fatal(err)
	}
	px := newProxy(t, u.Host)
	u.Host = px.addr
	ctx := context.Background()
	db, err := postgres.Open(ctx, postgres.Config{URL: u.String(), Schema: fmt.Sprintf("dp_outage_%d", rand.Uint32())})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	if _, err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	view := live.New(live.HubConfig{})
	view.Publish([]live.Price{{ProductID: "p1", Price: 10, Version: 1}})
	cfg := httpapi.DefaultConfig()
	cfg.Keys = []httpapi.Key{{Name: "admin", Role: httpapi.RoleAdmin, Secret: "s3cret-admin-key"}}
	cfg.RequestTimeout = 5 * time.Second
	cfg.Logger = slog.New(slog.DiscardHandler)
	api, err := httpapi.New(cfg, httpapi.Deps{
		Engine:  kafka.NewGateway(outageLog{}, outageLive{}, db, pricing.DefaultConfig(), false),
		Prices:  live.Prices{V: view},
		Archive: db,
		Decoder: &ingest.Decoder{Now: time.Now, MaxEvents: 1000},
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)

	do := func(method, path, body string) (int, string) {
		t.Helper()
		req, err := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("X-API-Key", "s3cret-admin-key")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	routes := []struct{ method, path string }{
		{"GET", "/history/p1"},
		{"GET", "/overrides/p1"},
		{"GET", "/products"},
		{"GET", "/price/p1?explain=1"},
		{"POST", "/release/p1"},
	}
	for _, r := range routes {
		if code, body := do(r.method, r.path, ""); code >= 500 {
			t.Fatalf("%s %s with the database up: %d %s", r.method, r.path, code, body)
		}
	}

	px.down()
	host, port, _ := net.SplitHostPort(px.addr)
	secrets := []string{px.addr, ":" + port, u.User.Username() + "@", strings.TrimPrefix(u.Path, "/"), "postgres://", host + ":"}
	for _, r := range routes {
		code, body := do(r.method, r.path, "")
		if code != http.StatusServiceUnavailable {
			t.Errorf("%s %s with the database down: %d %s; want 503", r.method, r.path, code, body)
		}
		for _, s := range secrets {
			if s != "" && strings.Contains(body, s) {
				t.Errorf("%s %s: the answer %q shows %q", r.method, r.path, body, s)
			}
		}
	}
	// PUT /products needs Kafka and Redis only, which are up.
	if code, body := do("PUT", "/products/p2", `{"base_price": 5}`); code != http.StatusCreated && code != http.StatusOK && code != http.StatusAccepted {
		t.Errorf("PUT /products/p2 with the database down: %d %s", code, body)
	}
}

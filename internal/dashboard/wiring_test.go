package dashboard_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/dynaprice/dynaprice/internal/dashboard"
	"github.com/dynaprice/dynaprice/internal/httpapi"
)

// TestMountedInTheAPI checks the dashboard as `dynaprice serve` mounts it:
// as the API's UI, answering GET and HEAD of paths no API route claims.
func TestMountedInTheAPI(t *testing.T) {
	cfg := httpapi.DefaultConfig()
	cfg.Keys = []httpapi.Key{{Name: "admin", Role: httpapi.RoleAdmin, Secret: "s"}}
	api, err := httpapi.New(cfg, httpapi.Deps{UI: dashboard.Handler(), Ready: func() string { return "" }})
	if err != nil {
		t.Fatal(err)
	}
	do := func(method, path string) *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		api.ServeHTTP(w, httptest.NewRequest(method, path, nil))
		return w
	}
	for _, m := range []string{"GET", "HEAD"} {
		if w := do(m, "/"); w.Code != 200 || !strings.HasPrefix(w.Header().Get("Content-Type"), "text/html") {
			t.Errorf("%s / = %d %q, want the dashboard", m, w.Code, w.Header().Get("Content-Type"))
		}
	}
	if w := do("GET", "/healthz"); w.Code != 200 || w.Body.String() != "{\"status\":\"ok\"}\n" {
		t.Errorf("GET /healthz = %d %s: the UI must not shadow API routes", w.Code, w.Body)
	}
	if w := do("DELETE", "/healthz"); w.Code != http.StatusMethodNotAllowed {
		t.Errorf("DELETE /healthz = %d, want 405", w.Code)
	}
	for _, c := range []struct{ method, path string }{{"GET", "/nowhere"}, {"POST", "/nowhere"}, {"POST", "/"}, {"DELETE", "/assets/x.js"}} {
		w := do(c.method, c.path)
		var e struct{ Error string }
		if w.Code != 404 || json.Unmarshal(w.Body.Bytes(), &e) != nil || e.Error != "no such endpoint: "+c.path {
			t.Errorf("%s %s = %d %s, want the JSON 404", c.method, c.path, w.Code, w.Body)
		}
	}
}

package httpapi

// These tests hold docs/openapi.json to the implementation. The document
// is loaded, resolved and validated (examples included) by kin-openapi,
// whose router finds the documented operation of a request and whose
// openapi3filter checks an answer against it (JSON Schema 2020-12, as
// OpenAPI 3.1 wants). What only this project knows is checked here:
//
//   - the routes the API registers (API.Routes, which is what its mux
//     serves) are the documented operations, both ways
//     (TestOpenAPICoversEveryRoute);
//   - every documented operation answers its documented examples with a
//     documented status, media type and body
//     (TestOpenAPIOperationsAnswerAsDocumented);
//   - the documented roles are the ones the API enforces (TestOpenAPIRoles);
//   - the documented WebSocket message is the one sent
//     (TestOpenAPIWebSocketMessage);
//   - the documented examples fit the documented schemas, and the documented
//     limits are the code's (TestOpenAPIExamplesFitSchemas).
//
// Each check has a subtest that feeds it something wrong, so that a check
// that cannot fail is noticed.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"mime"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/dynaprice/dynaprice/internal/engine"
	"github.com/dynaprice/dynaprice/internal/ingest"
	"github.com/dynaprice/dynaprice/internal/live"
	"github.com/dynaprice/dynaprice/internal/pricing"
	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

const openapiSpecPath = "../../docs/openapi.json"

// openapiKeys are the test's API keys, one per role.
var openapiKeys = map[string]Key{
	"viewer":   {Name: "dash", Role: RoleViewer, Secret: "oas-viewer-secret"},
	"operator": {Name: "ops", Role: RoleOperator, Secret: "oas-operator-secret"},
	"ingest":   {Name: "shop", Role: RoleIngest, Secret: "oas-ingest-secret"},
	"admin":    {Name: "admin", Role: RoleAdmin, Secret: "oas-admin-secret"},
}

var openapiRoles = []string{"viewer", "operator", "ingest", "admin"}

// openapiEngine is an Engine that accepts everything and answers with data
// that fills every optional field, so the shape checks see them all.
type openapiEngine struct{}

func (openapiEngine) Submit(_ context.Context, evs []ingest.Event) (engine.SubmitResult, error) {
	return engine.SubmitResult{Accepted: len(evs)}, nil
}

func (openapiEngine) SetOverride(context.Context, engine.OverrideInput) error { return nil }

func (openapiEngine) ClearOverride(context.Context, string, string) error { return nil }
func (openapiEngine) Release(context.Context, string, string) error       { return nil }

func (openapiEngine) UpsertProduct(context.Context, pricing.Product) (bool, error) { return true, nil }

func (openapiEngine) Products(context.Context) ([]engine.ProductInfo, error) {
	return []engine.ProductInfo{
		{Product: pricing.Product{ID: "PA", Name: "Wireless Headphones", BasePrice: 299}, EffectiveStrategy: "seed",
			Price: 314, Source: pricing.SourceDynamic, Demand: 9},
		{Product: pricing.Product{ID: "PK", Name: "USB-C Hub", BasePrice: 49, Strategy: "decay",
			Guardrails: pricing.Guardrails{Floor: 39, Ceiling: 79, MaxChangePct: 10, Rounding: ".99"},
			Limits:     pricing.Limits{MaxQuantity: 20, MaxMovePct: 50, MoveWindow: pricing.Duration(15 * time.Minute)}},
			EffectiveStrategy: "decay", Price: 48.99, Source: pricing.SourceBase},
	}, nil
}

func (openapiEngine) Explain(_ context.Context, id string) (pricing.Explanation, error) {
	if id != "PA" {
		return pricing.Explanation{}, &engine.Error{Kind: engine.KindNotFound, Msg: "unknown product_id " + strconv.Quote(id)}
	}
	now := time.Now().UTC()
	exp := now.Add(time.Hour)
	return pricing.Explanation{ProductID: "PA", Price: 279.99, Source: "override", Strategy: "seed", BasePrice: 299,
		Demand: 9, TotalDemand: 9, StrategyPrice: 314, DynamicPrice: 314,
		Guardrails: []pricing.GuardrailStep{{Guardrail: "rounding", Before: 314.004, After: 314, Detail: "rounded to cents"}},
		Override:   &pricing.OverrideInfo{Price: 279.99, Reason: "promo", By: "ops", Since: now, ExpiresAt: &exp},
		// Never both at once (an override is never held), but every field
		// is checked against the schema.
		Breaker: &pricing.BreakerInfo{Held: true, HeldSince: now, Wanted: 420, Anchor: 299, WindowStart: now,
			ReleaseAt: now.Add(15 * time.Minute), MaxMovePct: 20, Window: "15m0s", Detail: "held"},
		Lowest30: 279.99, Version: 5, UpdatedAt: now}, nil
}

// openapiArchive answers with one row of each kind of history and audit.
type openapiArchive struct{}

func (openapiArchive) HistoryPage(context.Context, string, int, int) (engine.HistoryPage, error) {
	now := time.Now().UnixNano()
	hour := engine.HourOf(now - 40*24*3600e9)
	return engine.HistoryPage{
		Changes: []engine.HistoryRow{
			{ProductID: "PA", Price: 314, Demand: 9, Source: pricing.SourceDynamic, At: now, Version: 4},
			{ProductID: "PA", Price: 299, Source: pricing.SourceBase, At: now - 1e9, Version: 1},
		},
		Hourly: []engine.HourlyRow{{ProductID: "PA", Hour: hour, Open: 299, High: 320, Low: 280.5, Close: 299, Changes: 7,
			CloseAt: hour + 3500e9, Version: 0, Source: pricing.SourceOverride, Demand: 2.5}},
	}, nil
}

func (openapiArchive) OverrideAudit(context.Context, string, int) ([]engine.OverrideRecord, error) {
	now := time.Now().UnixNano()
	return []engine.OverrideRecord{
		{ProductID: "PA", Price: 279, Reason: "promo", By: "admin", CreatedAt: now},
		{ProductID: "PA", Price: 279.99, Reason: "weekend promo", By: "ops", CreatedAt: now - 2e9, ExpiresAt: now + 1e12,
			EndedAt: now - 1e9, EndedBy: "admin", EndReason: "replaced"},
	}, nil
}

// newOpenAPITestAPI builds an API whose every optional dependency is set,
// so that every route is registered.
func newOpenAPITestAPI(t *testing.T) *API {
	t.Helper()
	view := live.New(live.HubConfig{})
	view.Publish([]live.Price{{ProductID: "PA", Price: 314, Source: pricing.SourceDynamic, Demand: 9, Version: 4,
		At: time.Now().UnixNano(), Lowest30: 299, PriceChanged: true}})
	hub := view.Hub()
	t.Cleanup(hub.Close)
	reg := prometheus.NewRegistry()
	cfg := DefaultConfig()
	cfg.AuthFailRate = 0 // the tests probe every route without keys, from one address
	for _, r := range openapiRoles {
		cfg.Keys = append(cfg.Keys, openapiKeys[r])
	}
	cfg.Logger = slog.New(slog.DiscardHandler)
	cfg.Registerer = reg
	cfg.RequestTimeout = 5 * time.Second
	a, err := New(cfg, Deps{
		Engine: openapiEngine{}, Prices: live.Prices{V: view}, Archive: openapiArchive{}, Decoder: &ingest.Decoder{},
		Analytics: openapiAnalytics{},
		WebSocket: hub, Metrics: promhttp.HandlerFor(reg, promhttp.HandlerOpts{}),
		Ready: func() string { return "" }, Experiments: openapiExperiments{},
	})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// oasSpec is the loaded document and a router over its operations.
type oasSpec struct {
	doc    *openapi3.T
	router routers.Router
	// server is the documented server URL: requests are addressed to it,
	// so that the router, which matches servers, finds them.
	server string
}

// oasOp is one documented operation.
type oasOp struct {
	method string // upper case
	path   string // template, as in the document
	op     *openapi3.Operation
	params openapi3.Parameters // path-level, then operation-level
}

func (o oasOp) String() string { return o.method + " " + o.path }

// loadOpenAPI loads and validates the document (kin-openapi validates the
// examples against their schemas by default).
func loadOpenAPI(t *testing.T) *oasSpec {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromFile(openapiSpecPath)
	if err != nil {
		t.Fatalf("loading the API description: %v", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.1") {
		t.Fatalf("openapi = %q, want 3.1.x", doc.OpenAPI)
	}
	router, err := legacy.NewRouter(doc, openapi3.EnableExamplesValidation())
	if err != nil {
		t.Fatalf("%s: %v", openapiSpecPath, err)
	}
	if len(doc.Servers) == 0 {
		t.Fatal("the API description documents no server")
	}
	return &oasSpec{doc: doc, router: router, server: strings.TrimSuffix(doc.Servers[0].URL, "/")}
}

// ops returns every documented operation, sorted.
func (s *oasSpec) ops(t *testing.T) []oasOp {
	t.Helper()
	var out []oasOp
	for path, item := range s.doc.Paths.Map() {
		for method, op := range item.Operations() {
			params := append(slices.Clone(item.Parameters), op.Parameters...)
			out = append(out, oasOp{method: method, path: path, op: op, params: params})
		}
	}
	slices.SortFunc(out, func(a, b oasOp) int { return strings.Compare(a.String(), b.String()) })
	if len(out) == 0 {
		t.Fatal("the API description documents no operation")
	}
	return out
}

// fillPath replaces every {name} of a path template.
func fillPath(tmpl string, value func(name string) string) string {
	return regexp.MustCompile(`\{([^}]+)\}`).ReplaceAllStringFunc(tmpl, func(m string) string {
		return value(m[1 : len(m)-1])
	})
}

// routeProblems compares the routes a mux serves, registered as the given
// "METHOD /path" patterns, with the documented operations.
func (s *oasSpec) routeProblems(t *testing.T, mux *http.ServeMux, registered []string) []string {
	t.Helper()
	var problems []string
	served := func(method, target string) string {
		_, pattern := mux.Handler(httptest.NewRequest(method, s.server+target, nil))
		return pattern
	}
	documented := map[string]bool{}
	docPaths := map[string]bool{}
	for _, o := range s.ops(t) {
		documented[o.String()] = true
		docPaths[o.path] = true
		if !slices.Contains(registered, o.String()) {
			problems = append(problems, fmt.Sprintf("%s is documented but not registered by the API", o))
		}
		if got := served(o.method, fillPath(o.path, func(string) string { return "PA" })); got != o.String() {
			problems = append(problems, fmt.Sprintf("documented operation %s is served by pattern %q", o, got))
		}
	}
	for _, r := range registered {
		method, path, _ := strings.Cut(r, " ")
		target := fillPath(path, func(string) string { return "x" })
		if got := served(method, target); got != r {
			problems = append(problems, fmt.Sprintf("route %s is served by pattern %q; is it registered?", r, got))
		}
		route, _, err := s.router.FindRoute(httptest.NewRequest(method, s.server+target, nil))
		if err != nil || route.Method+" "+route.Path != r {
			problems = append(problems, fmt.Sprintf("route %s is registered but not documented in docs/openapi.json", r))
		}
	}
	// Every method on every documented path: whatever the mux serves with
	// a route of its own (not the 405 or 404 fallback) is documented. HEAD
	// is served by GET routes.
	for _, path := range slices.Sorted(maps.Keys(docPaths)) {
		target := fillPath(path, func(string) string { return "PA" })
		for _, m := range []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE"} {
			if pattern := served(m, target); strings.Contains(pattern, " ") && !documented[pattern] {
				problems = append(problems, fmt.Sprintf("%s %s is served by route %s, which is not documented", m, target, pattern))
			}
		}
	}
	return problems
}

func TestOpenAPICoversEveryRoute(t *testing.T) {
	s := loadOpenAPI(t)
	a := newOpenAPITestAPI(t)
	if len(a.Routes()) == 0 {
		t.Fatal("the API registers no route")
	}
	for _, p := range s.routeProblems(t, a.mux, a.Routes()) {
		t.Error(p)
	}

	// A mux serving the given patterns, as the API's would.
	muxOf := func(patterns []string) *http.ServeMux {
		mux := http.NewServeMux()
		for _, p := range patterns {
			mux.HandleFunc(p, func(http.ResponseWriter, *http.Request) {})
		}
		return mux
	}
	mentions := func(problems []string, what string) bool {
		return slices.ContainsFunc(problems, func(p string) bool { return strings.Contains(p, what) })
	}
	t.Run("an undocumented route is caught", func(t *testing.T) {
		routes := append(a.Routes(), "POST /price/{id}/freeze")
		if p := s.routeProblems(t, muxOf(routes), routes); !mentions(p, "POST /price/{id}/freeze is registered but not documented") {
			t.Errorf("not reported: %q", p)
		}
	})
	t.Run("an undocumented method on a documented path is caught", func(t *testing.T) {
		// Served by the mux but left out of the list: the probe finds it.
		mux := muxOf(append(a.Routes(), "PATCH /products/{id}"))
		if p := s.routeProblems(t, mux, a.Routes()); !mentions(p, "served by route PATCH /products/{id}, which is not documented") {
			t.Errorf("not reported: %q", p)
		}
	})
	t.Run("a documented operation that is not registered is caught", func(t *testing.T) {
		routes := slices.DeleteFunc(a.Routes(), func(r string) bool { return r == "DELETE /override/{id}" })
		if p := s.routeProblems(t, muxOf(routes), routes); !mentions(p, "DELETE /override/{id} is documented but not registered") {
			t.Errorf("not reported: %q", p)
		}
	})
}

// oasRequest is one request built from the document.
type oasRequest struct {
	name        string
	method      string
	target      string // path and query
	contentType string
	body        []byte
	query       []*openapi3.Parameter // query parameters included
}

// requests builds one request per documented request body example (one
// request when there is no body), without optional query parameters, and,
// if the operation has some, one more with all of them set to their
// examples. Path parameters take their examples unless pathValue is given.
func (s *oasSpec) requests(t *testing.T, o oasOp, pathValue func(string) string) []oasRequest {
	t.Helper()
	target := fillPath(o.path, func(name string) string {
		if pathValue != nil {
			return pathValue(name)
		}
		if p := o.params.GetByInAndName("path", name); p != nil {
			if v, ok := p.Example.(string); ok {
				return v
			}
		}
		t.Fatalf("%s: path parameter %s has no string example", o, name)
		return ""
	})
	var bodies []oasRequest
	if o.op.RequestBody != nil {
		content := o.op.RequestBody.Value.Content
		for _, ct := range slices.Sorted(maps.Keys(content)) {
			examples := content[ct].Examples
			if len(examples) == 0 {
				t.Errorf("%s: request body %s has no examples", o, ct)
			}
			for _, n := range slices.Sorted(maps.Keys(examples)) {
				v := examples[n].Value.Value
				var b []byte
				if str, ok := v.(string); ok && (ct == "application/x-ndjson" || !strings.HasSuffix(ct, "json")) {
					b = []byte(str) // a document that is not JSON is given as a string
				} else {
					var err error
					if b, err = json.Marshal(v); err != nil {
						t.Fatal(err)
					}
				}
				bodies = append(bodies, oasRequest{name: ct + " example " + n, contentType: ct, body: b})
			}
		}
	} else {
		bodies = []oasRequest{{name: "no body"}}
	}
	var query []*openapi3.Parameter
	var q []string
	for _, ref := range o.params {
		if p := ref.Value; p.In == "query" {
			if p.Required {
				t.Errorf("%s: required query parameters are not expected", o)
			}
			if p.Example == nil {
				t.Errorf("%s: query parameter %s has no example", o, p.Name)
				continue
			}
			query = append(query, p)
			q = append(q, p.Name+"="+fmt.Sprint(p.Example))
		}
	}
	var out []oasRequest
	for _, b := range bodies {
		b.method, b.target = o.method, target
		out = append(out, b)
		if len(query) > 0 {
			b.name += " with " + strings.Join(q, "&")
			b.target = target + "?" + strings.Join(q, "&")
			b.query = query
			out = append(out, b)
		}
	}
	return out
}

// rolesOf returns the roles an x-allowed-roles extension lists, and whether
// there is one.
func rolesOf(ext map[string]any) ([]string, bool) {
	l, ok := ext["x-allowed-roles"].([]any)
	if !ok {
		return nil, false
	}
	roles := make([]string, 0, len(l))
	for _, x := range l {
		roles = append(roles, fmt.Sprint(x))
	}
	return roles, true
}

// allowedRoles returns the roles allowed by the operation and the query
// parameters of r, and whether any key is needed at all.
func allowedRoles(o oasOp, r oasRequest) (map[string]bool, bool) {
	var lists [][]string
	if l, ok := rolesOf(o.op.Extensions); ok {
		lists = append(lists, l)
	}
	for _, p := range r.query {
		if l, ok := rolesOf(p.Extensions); ok {
			lists = append(lists, l)
		}
	}
	if len(lists) == 0 {
		return nil, false
	}
	allowed := map[string]bool{}
	for _, role := range openapiRoles {
		allowed[role] = true
		for _, l := range lists {
			allowed[role] = allowed[role] && slices.Contains(l, role)
		}
	}
	return allowed, true
}

// send serves r with the given key ("" for none), addressed to the
// documented server.
func (s *oasSpec) send(a *API, r oasRequest, key string) (*http.Request, *httptest.ResponseRecorder) {
	req := httptest.NewRequest(r.method, s.server+r.target, bytes.NewReader(r.body))
	if r.contentType != "" {
		req.Header.Set("Content-Type", r.contentType)
	}
	if key != "" {
		req.Header.Set(DefaultConfig().KeyHeader, key)
	}
	w := httptest.NewRecorder()
	a.ServeHTTP(w, req)
	return req, w
}

// answerProblem says why an answer to req is not documented: the route
// does not exist, or openapi3filter finds its status, headers, media type
// or body not documented for the operation the router finds for req.
func (s *oasSpec) answerProblem(req *http.Request, w *httptest.ResponseRecorder) error {
	body := w.Body.Bytes()
	var e struct{ Error string }
	if w.Code == http.StatusMethodNotAllowed ||
		w.Code == http.StatusNotFound && json.Unmarshal(body, &e) == nil && strings.HasPrefix(e.Error, "no such endpoint") {
		return fmt.Errorf("%d %s: the route does not exist", w.Code, body)
	}
	route, params, err := s.router.FindRoute(req)
	if err != nil {
		return fmt.Errorf("no documented operation: %w", err)
	}
	header := w.Header().Clone()
	if r := route.Operation.Responses.Status(w.Code); r != nil && r.Value != nil {
		header.Set("Content-Type", documentedMediaType(r.Value.Content, header.Get("Content-Type")))
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route},
		Status:                 w.Code,
		Header:                 header,
		Options:                &openapi3filter.Options{IncludeResponseStatus: true},
	}
	in.SetBodyBytes(body)
	if err := openapi3filter.ValidateResponse(req.Context(), in); err != nil {
		return fmt.Errorf("%d %s: %w", w.Code, body, err)
	}
	return nil
}

// documentedMediaType returns the documented media type that an answer's
// Content-Type is an instance of: the same type with at least the
// documented parameters (the Prometheus text format is documented as
// "text/plain; version=0.0.4" and answered with a charset and more, which
// kin-openapi, matching parameters exactly, does not see as the same).
// Otherwise it returns the Content-Type as it is.
func documentedMediaType(content openapi3.Content, contentType string) string {
	got, gotParams, err := mime.ParseMediaType(contentType)
	if err != nil {
		return contentType
	}
	instance := func(key string) bool {
		want, wantParams, err := mime.ParseMediaType(key)
		if err != nil || want != got {
			return false
		}
		for k, v := range wantParams {
			if gotParams[k] != v {
				return false
			}
		}
		return true
	}
	for key := range content {
		if instance(key) {
			return key
		}
	}
	return contentType
}

func (s *oasSpec) checkAnswer(t *testing.T, o oasOp, what string, req *http.Request, w *httptest.ResponseRecorder) {
	t.Helper()
	if err := s.answerProblem(req, w); err != nil {
		t.Errorf("%s %s: %v", o, what, err)
	}
}

func isWebSocket(o oasOp) bool { return o.op.Extensions["x-websocket-message"] != nil }

func TestOpenAPIOperationsAnswerAsDocumented(t *testing.T) {
	s := loadOpenAPI(t)
	a := newOpenAPITestAPI(t)
	for _, o := range s.ops(t) {
		for _, r := range s.requests(t, o, nil) {
			key := ""
			if _, needed := allowedRoles(o, r); needed {
				key = openapiKeys["admin"].Secret
			}
			req, w := s.send(a, r, key)
			if isWebSocket(o) {
				// Not a handshake: the WebSocket library's documented refusal.
				if w.Code != http.StatusUpgradeRequired {
					t.Errorf("%s %s: %d, want 426", o, r.name, w.Code)
				}
			} else if w.Code < 200 || w.Code > 299 {
				t.Errorf("%s %s: %d %s, want a success", o, r.name, w.Code, w.Body)
			}
			s.checkAnswer(t, o, r.name, req, w)
			if o.path == "/events" && w.Code == http.StatusAccepted {
				var res struct{ Rejected int }
				if err := json.Unmarshal(w.Body.Bytes(), &res); err != nil || res.Rejected != 0 {
					t.Errorf("%s %s: the documented example has rejected events: %s", o, r.name, w.Body)
				}
			}
		}
		// An invalid product id in the path is a documented 400.
		if strings.Contains(o.path, "{id}") && !isWebSocket(o) {
			r := s.requests(t, o, func(string) string { return "bad%20id" })[0]
			key := ""
			if _, needed := allowedRoles(o, r); needed {
				key = openapiKeys["admin"].Secret
			}
			req, w := s.send(a, r, key)
			if w.Code != http.StatusBadRequest {
				t.Errorf("%s with an invalid id: %d %s, want 400", o, w.Code, w.Body)
			}
			s.checkAnswer(t, o, "with an invalid id", req, w)
		}
	}

	t.Run("an undocumented answer is caught", func(t *testing.T) {
		answer := func(status int, contentType, body string) *httptest.ResponseRecorder {
			w := httptest.NewRecorder()
			w.Header().Set("Content-Type", contentType)
			w.WriteHeader(status)
			w.WriteString(body)
			return w
		}
		req := httptest.NewRequest("GET", s.server+"/price/PA", nil)
		if err := s.answerProblem(req, answer(http.StatusOK, "application/json", `{"product_id": "PA", "price": "cheap"}`)); err == nil {
			t.Error("a price that is a string was not caught")
		}
		if err := s.answerProblem(req, answer(http.StatusTeapot, "application/json", `{"error": "teapot"}`)); err == nil {
			t.Error("an undocumented status was not caught")
		}
		if err := s.answerProblem(req, answer(http.StatusNotFound, "text/html", `<p>not found</p>`)); err == nil {
			t.Error("an undocumented media type was not caught")
		}
		if err := s.answerProblem(httptest.NewRequest("PATCH", s.server+"/price/PA", nil), answer(http.StatusOK, "application/json", `{}`)); err == nil {
			t.Error("an answer to an undocumented operation was not caught")
		}
	})
}

func TestOpenAPIRoles(t *testing.T) {
	s := loadOpenAPI(t)
	a := newOpenAPITestAPI(t)
	scheme := s.doc.Components.SecuritySchemes["ApiKey"]
	if scheme == nil || scheme.Value.Type != "apiKey" || scheme.Value.In != "header" || scheme.Value.Name != DefaultConfig().KeyHeader {
		t.Errorf("security scheme ApiKey must be an apiKey in header %s", DefaultConfig().KeyHeader)
	}
	for _, o := range s.ops(t) {
		if isWebSocket(o) {
			continue
		}
		opRoles, hasRoles := rolesOf(o.op.Extensions)
		switch req, _ := o.op.Extensions["x-required-role"].(string); {
		case !hasRoles && req != "public":
			t.Errorf("%s: x-required-role %q, want public (no x-allowed-roles)", o, req)
		case hasRoles && (len(opRoles) == 0 || req != opRoles[0]):
			t.Errorf("%s: x-required-role %q, want the first of x-allowed-roles %v", o, req, opRoles)
		}
		var security openapi3.SecurityRequirements
		if o.op.Security != nil {
			security = *o.op.Security
		}
		optional := slices.ContainsFunc(security, func(r openapi3.SecurityRequirement) bool { return len(r) == 0 })
		if hasRoles && (len(security) == 0 || optional) {
			t.Errorf("%s: has x-allowed-roles but its security does not require the API key: %v", o, security)
		}
		for _, r := range s.requests(t, o, nil) {
			allowed, needed := allowedRoles(o, r)
			if !needed {
				if _, w := s.send(a, r, ""); w.Code == http.StatusUnauthorized || w.Code == http.StatusForbidden {
					t.Errorf("%s %s: documented as public, got %d %s", o, r.name, w.Code, w.Body)
				}
				continue
			}
			if !hasRoles && !optional {
				t.Errorf("%s: a parameter needs a key, but security does not allow one: %v", o, security)
			}
			for _, key := range []string{"", "not-a-key"} {
				req, w := s.send(a, r, key)
				if w.Code != http.StatusUnauthorized {
					t.Errorf("%s %s with key %q: %d %s, want 401", o, r.name, key, w.Code, w.Body)
				}
				s.checkAnswer(t, o, r.name+" without a valid key", req, w)
			}
			for _, role := range openapiRoles {
				req, w := s.send(a, r, openapiKeys[role].Secret)
				switch {
				case allowed[role] && (w.Code == http.StatusUnauthorized || w.Code == http.StatusForbidden):
					t.Errorf("%s %s: role %s is documented as allowed, got %d %s", o, r.name, role, w.Code, w.Body)
				case !allowed[role] && w.Code != http.StatusForbidden:
					t.Errorf("%s %s: role %s is documented as not allowed, got %d %s", o, r.name, role, w.Code, w.Body)
				}
				s.checkAnswer(t, o, r.name+" as "+role, req, w)
			}
		}
	}
}

// componentSchema resolves a local reference to a component schema.
func (s *oasSpec) componentSchema(t *testing.T, ref any) *openapi3.Schema {
	t.Helper()
	m, _ := ref.(map[string]any)
	r, _ := m["$ref"].(string)
	name, ok := strings.CutPrefix(r, "#/components/schemas/")
	if sr := s.doc.Components.Schemas[name]; ok && sr != nil && sr.Value != nil {
		return sr.Value
	}
	t.Fatalf("%v is not a reference to a component schema", ref)
	return nil
}

func TestOpenAPIWebSocketMessage(t *testing.T) {
	s := loadOpenAPI(t)
	a := newOpenAPITestAPI(t)
	var ws *oasOp
	for _, o := range s.ops(t) {
		if isWebSocket(o) {
			ws = &o
		}
	}
	if ws == nil || ws.String() != "GET /ws/prices" {
		t.Fatalf("GET /ws/prices must be documented with x-websocket-message, found %v", ws)
	}
	if ws.op.Responses.Status(http.StatusSwitchingProtocols) == nil {
		t.Errorf("GET /ws/prices: the 101 answer is not documented")
	}
	srv := httptest.NewServer(a)
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http")+"/ws/prices?snapshot=1", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	typ, b, err := c.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if typ != websocket.MessageText {
		t.Errorf("message type %v, want text", typ)
	}
	var msg map[string]any
	if err := json.Unmarshal(b, &msg); err != nil {
		t.Fatalf("message is not a JSON object: %s", b)
	}
	schema := s.componentSchema(t, ws.op.Extensions["x-websocket-message"])
	if err := schema.VisitJSON(msg, openapi3.EnableJSONSchema2020()); err != nil {
		t.Errorf("%s: %v", b, err)
	}
	// Every documented field is sent.
	for k := range schema.Properties {
		if _, ok := msg[k]; !ok {
			t.Errorf("documented field %q is not in the message %s", k, b)
		}
	}

	t.Run("an undocumented message is caught", func(t *testing.T) {
		bad := maps.Clone(msg)
		bad["price"] = "free"
		if err := schema.VisitJSON(bad, openapi3.EnableJSONSchema2020()); err == nil {
			t.Errorf("a price that is a string was not caught: %v", bad)
		}
	})
}

// TestOpenAPIExamplesFitSchemas checks every documented example against
// its schema (loadOpenAPI has kin-openapi validate the document, examples
// included), the schemas' own examples, and the documented constants that
// the code defines.
func TestOpenAPIExamplesFitSchemas(t *testing.T) {
	s := loadOpenAPI(t)
	for _, o := range s.ops(t) {
		for code, r := range o.op.Responses.Map() {
			for ct, mt := range r.Value.Content {
				if strings.Contains(ct, "json") && mt.Schema == nil {
					t.Errorf("%s %s %s: no schema", o, code, ct)
				}
			}
		}
		if p := o.params.GetByInAndName("query", "limit"); p != nil {
			def, most := defaultHistoryLimit, maxHistoryLimit
			switch o.path {
			case "/prices":
				def, most = DefaultPricesLimit, MaxPricesLimit
			case "/analytics":
				def, most = DefaultAnalyticsLimit, MaxAnalyticsLimit
			}
			if d := p.Schema.Value.Default; d != float64(def) {
				t.Errorf("%s: limit default %v, want %d", o, d, def)
			}
			if !strings.Contains(p.Description, strconv.Itoa(most)) {
				t.Errorf("%s: limit description does not give the cap %d", o, most)
			}
		}
		if p := o.params.GetByInAndName("query", "q"); p != nil && !strings.Contains(p.Description, strconv.Itoa(maxPricesQuery)) {
			t.Errorf("%s: q description does not give the limit %d", o, maxPricesQuery)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(s.doc.Components.Schemas)) {
		schema := s.doc.Components.Schemas[name].Value
		for i, ex := range schema.Examples {
			if err := schema.VisitJSON(ex, openapi3.EnableJSONSchema2020()); err != nil {
				t.Errorf("%s.examples[%d]: %v", name, i, err)
			}
		}
	}
	cfg := DefaultConfig()
	for _, want := range []string{strconv.FormatInt(cfg.MaxEventsBody, 10), strconv.FormatInt(cfg.MaxBody, 10)} {
		if !strings.Contains(s.doc.Info.Description, want) {
			t.Errorf("info.description does not give the body limit %s", want)
		}
	}

	t.Run("an example that does not fit is caught", func(t *testing.T) {
		doc, err := openapi3.NewLoader().LoadFromFile(openapiSpecPath)
		if err != nil {
			t.Fatal(err)
		}
		ex := doc.Paths.Value("/history/{id}").Get.Responses.Status(http.StatusOK).Value.Content.Get("application/json").Examples["pa"]
		ex.Value.Value = map[string]any{"product_id": "PA", "history": "none"}
		if err := doc.Validate(context.Background(), openapi3.EnableExamplesValidation()); err == nil {
			t.Error("a history that is a string was not caught")
		}
	})
}

// openapiAnalytics answers every analytics query with one group of
// every kind of figure, and one without views (null ratios).
type openapiAnalytics struct{}

func (openapiAnalytics) Analytics(_ context.Context, q engine.AnalyticsQuery, _ int) ([]engine.AnalyticsTotal, bool, error) {
	k, start := engine.GroupKey(q.By, "PA", "seed", "", q.From)
	k2, start2 := engine.GroupKey(q.By, "PB", "decay", "", q.From+engine.DayNS)
	return []engine.AnalyticsTotal{
		{Key: k, Start: start, Tally: pricing.Tally{Views: 10, Carts: 3, Purchases: 1, Units: 2, Revenue: 630, Cost: 200, List: 598}},
		{Key: k2, Start: start2},
	}, false, nil
}

package httpapi

// These tests hold docs/openapi.json to the implementation:
//
//   - every route the API registers is documented, and every documented
//     operation is registered (TestOpenAPICoversEveryRoute);
//   - every documented operation answers its documented examples with a
//     documented status, and its JSON answers have the documented shape
//     (TestOpenAPIOperationsAnswerAsDocumented);
//   - the documented roles are the ones the API enforces (TestOpenAPIRoles);
//   - the documented WebSocket message is the one sent
//     (TestOpenAPIWebSocketMessage);
//   - the documented examples fit the documented schemas
//     (TestOpenAPIExamplesFitSchemas).
//
// Routes are found twice, so that neither way can miss one silently: from
// the source of this package (route table entries and literal mux
// patterns) and from the mux itself, which says which pattern serves a
// request.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/dynaprice/dynaprice/internal/engine"
	"github.com/dynaprice/dynaprice/internal/ingest"
	"github.com/dynaprice/dynaprice/internal/live"
	"github.com/dynaprice/dynaprice/internal/pricing"
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

func (openapiEngine) UpsertProduct(context.Context, pricing.Product) (bool, error) { return true, nil }

func (openapiEngine) Products(context.Context) ([]engine.ProductInfo, error) {
	return []engine.ProductInfo{
		{Product: pricing.Product{ID: "PA", Name: "Wireless Headphones", BasePrice: 299}, EffectiveStrategy: "seed",
			Price: 314, Source: pricing.SourceDynamic, Demand: 9},
		{Product: pricing.Product{ID: "PK", Name: "USB-C Hub", BasePrice: 49, Strategy: "decay",
			Guardrails: pricing.Guardrails{Floor: 39, Ceiling: 79, MaxChangePct: 10, Rounding: ".99"}},
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
		Lowest30:   279.99, Version: 5, UpdatedAt: now}, nil
}

// openapiArchive answers with one row of each kind of history and audit.
type openapiArchive struct{}

func (openapiArchive) History(context.Context, string, int) ([]engine.HistoryRow, error) {
	now := time.Now().UnixNano()
	return []engine.HistoryRow{
		{ProductID: "PA", Price: 314, Demand: 9, Source: pricing.SourceDynamic, At: now, Version: 4},
		{ProductID: "PA", Price: 299, Source: pricing.SourceBase, At: now - 1e9, Version: 1},
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
	for _, r := range openapiRoles {
		cfg.Keys = append(cfg.Keys, openapiKeys[r])
	}
	cfg.Logger = slog.New(slog.DiscardHandler)
	cfg.Registerer = reg
	cfg.RequestTimeout = 5 * time.Second
	a, err := New(cfg, Deps{
		Engine: openapiEngine{}, Prices: live.Prices{V: view}, Archive: openapiArchive{}, Decoder: &ingest.Decoder{},
		WebSocket: hub, Metrics: promhttp.HandlerFor(reg, promhttp.HandlerOpts{}),
		Ready: func() bool { return true },
	})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// oasSpec is the parsed document.
type oasSpec struct {
	root map[string]any
}

// oasOp is one documented operation.
type oasOp struct {
	method string // upper case
	path   string // template, as in the document
	op     map[string]any
	params []map[string]any // path-level and operation-level, resolved
}

func (o oasOp) String() string { return o.method + " " + o.path }

func loadOpenAPI(t *testing.T) *oasSpec {
	t.Helper()
	b, err := os.ReadFile(openapiSpecPath)
	if err != nil {
		t.Fatalf("reading the API description: %v", err)
	}
	var root map[string]any
	if err := json.Unmarshal(b, &root); err != nil {
		t.Fatalf("%s is not valid JSON: %v", openapiSpecPath, err)
	}
	if v, _ := root["openapi"].(string); !strings.HasPrefix(v, "3.1") {
		t.Fatalf("openapi = %q, want 3.1.x", v)
	}
	return &oasSpec{root: root}
}

func oasMap(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}

// resolve follows $ref (local JSON pointers only) until v is not a
// reference.
func (s *oasSpec) resolve(t *testing.T, v map[string]any) map[string]any {
	t.Helper()
	for i := 0; v != nil; i++ {
		ref, ok := v["$ref"].(string)
		if !ok {
			return v
		}
		if i > 32 || !strings.HasPrefix(ref, "#/") {
			t.Fatalf("unresolvable $ref %q", ref)
		}
		var cur any = s.root
		for _, tok := range strings.Split(ref[2:], "/") {
			tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
			cur = oasMap(cur)[tok]
		}
		if cur == nil {
			t.Fatalf("$ref %q points to nothing", ref)
		}
		v = oasMap(cur)
	}
	return v
}

var oasMethods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

// ops returns every documented operation, sorted.
func (s *oasSpec) ops(t *testing.T) []oasOp {
	t.Helper()
	var out []oasOp
	for path, item := range oasMap(s.root["paths"]) {
		pi := oasMap(item)
		var common []map[string]any
		for _, p := range asSlice(pi["parameters"]) {
			common = append(common, s.resolve(t, oasMap(p)))
		}
		for _, m := range oasMethods {
			op := oasMap(pi[m])
			if op == nil {
				continue
			}
			params := append([]map[string]any(nil), common...)
			for _, p := range asSlice(op["parameters"]) {
				params = append(params, s.resolve(t, oasMap(p)))
			}
			out = append(out, oasOp{method: strings.ToUpper(m), path: path, op: op, params: params})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	if len(out) == 0 {
		t.Fatal("the API description documents no operation")
	}
	return out
}

func asSlice(v any) []any {
	s, _ := v.([]any)
	return s
}

// routesFromSource returns the routes that the package's source registers:
// the entries of route tables ([]route{...} or route{...} literals) and the
// literal "METHOD /path" patterns given to Handle or HandleFunc.
func routesFromSource(t *testing.T) map[string]bool {
	t.Helper()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	routes := map[string]bool{}
	fset := token.NewFileSet()
	str := func(e ast.Expr) (string, bool) {
		lit, ok := e.(*ast.BasicLit)
		if !ok || lit.Kind != token.STRING {
			return "", false
		}
		s, err := strconv.Unquote(lit.Value)
		return s, err == nil
	}
	fromRouteLit := func(cl *ast.CompositeLit) {
		var method, path string
		for i, e := range cl.Elts {
			if kv, ok := e.(*ast.KeyValueExpr); ok {
				if k, ok := kv.Key.(*ast.Ident); ok {
					switch k.Name {
					case "method":
						method, _ = str(kv.Value)
					case "path":
						path, _ = str(kv.Value)
					}
				}
				continue
			}
			switch i {
			case 0:
				method, _ = str(e)
			case 1:
				path, _ = str(e)
			}
		}
		if method == "" || path == "" {
			t.Errorf("%s: a route literal without a literal method and path; extend routesFromSource", fset.Position(cl.Pos()))
			return
		}
		routes[method+" "+path] = true
	}
	isRoute := func(e ast.Expr) bool {
		id, ok := e.(*ast.Ident)
		return ok && id.Name == "route"
	}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(fset, f, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		// Names bound to string literals, so that a pattern passed through
		// a variable or constant is found too.
		consts := map[string]string{}
		ast.Inspect(file, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.AssignStmt:
				for i, l := range n.Lhs {
					if id, ok := l.(*ast.Ident); ok && i < len(n.Rhs) {
						if v, ok := str(n.Rhs[i]); ok {
							consts[id.Name] = v
						}
					}
				}
			case *ast.ValueSpec:
				for i, id := range n.Names {
					if i < len(n.Values) {
						if v, ok := str(n.Values[i]); ok {
							consts[id.Name] = v
						}
					}
				}
			}
			return true
		})
		ast.Inspect(file, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.CompositeLit:
				if isRoute(n.Type) {
					fromRouteLit(n)
					return false
				}
				if at, ok := n.Type.(*ast.ArrayType); ok && isRoute(at.Elt) {
					for _, e := range n.Elts {
						if cl, ok := e.(*ast.CompositeLit); ok {
							fromRouteLit(cl)
						}
					}
					return false
				}
			case *ast.CallExpr:
				sel, ok := n.Fun.(*ast.SelectorExpr)
				if !ok || (sel.Sel.Name != "Handle" && sel.Sel.Name != "HandleFunc") || len(n.Args) == 0 {
					return true
				}
				pattern, ok := str(n.Args[0])
				if id, isIdent := n.Args[0].(*ast.Ident); isIdent {
					pattern, ok = consts[id.Name]
				}
				if !ok || pattern == "/" || pattern == "GET /" {
					// Computed patterns come from the route table; "/" is
					// the fallback for unknown paths (the JSON 404, or the
					// optional UI, which is not part of the API).
					return true
				}
				if !strings.Contains(pattern, " ") {
					t.Errorf("%s: pattern %q has no method; the API description documents methods", fset.Position(n.Pos()), pattern)
					return true
				}
				routes[pattern] = true
			}
			return true
		})
	}
	if len(routes) == 0 {
		t.Fatal("found no route in the package source; routesFromSource is out of date")
	}
	return routes
}

// fillPath replaces every {name} of a path template.
func fillPath(tmpl string, value func(name string) string) string {
	return regexp.MustCompile(`\{([^}]+)\}`).ReplaceAllStringFunc(tmpl, func(m string) string {
		return value(m[1 : len(m)-1])
	})
}

// muxPattern returns the pattern the API's mux serves a request with.
func muxPattern(a *API, method, path string) string {
	_, pattern := a.mux.Handler(httptest.NewRequest(method, path, nil))
	return pattern
}

func TestOpenAPICoversEveryRoute(t *testing.T) {
	s := loadOpenAPI(t)
	a := newOpenAPITestAPI(t)
	documented := map[string]bool{}
	docPaths := map[string]bool{}
	for _, o := range s.ops(t) {
		documented[o.String()] = true
		docPaths[o.path] = true
		// The documented operation exists: the mux serves it with exactly
		// this method and path template.
		if got := muxPattern(a, o.method, fillPath(o.path, func(string) string { return "PA" })); got != o.String() {
			t.Errorf("documented operation %s is not registered (the mux serves it with pattern %q)", o, got)
		}
	}

	registered := routesFromSource(t)
	for r := range registered {
		method, path, _ := strings.Cut(r, " ")
		if got := muxPattern(a, method, fillPath(path, func(string) string { return "x" })); got != r {
			t.Errorf("route %s found in the source is served by pattern %q; is it registered?", r, got)
		}
		if !documented[r] {
			t.Errorf("route %s is registered but not documented in docs/openapi.json", r)
		}
	}
	for d := range documented {
		if !registered[d] {
			t.Errorf("%s is documented but not registered by the API", d)
		}
	}

	// Probe every documented path with every method: whatever the mux
	// serves with a route of its own (not the 405 or 404 fallback) must be
	// documented. HEAD is served by GET routes.
	for path := range docPaths {
		target := fillPath(path, func(string) string { return "PA" })
		for _, m := range []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE"} {
			pattern := muxPattern(a, m, target)
			if !strings.Contains(pattern, " ") {
				continue // the 405 handler of the path, or the 404 fallback
			}
			if !documented[pattern] {
				t.Errorf("%s %s is served by route %s, which is not documented", m, target, pattern)
			}
		}
	}
}

// oasRequest is one request built from the document.
type oasRequest struct {
	name        string
	method      string
	target      string
	contentType string
	body        []byte
	query       []map[string]any // query parameters included
}

// requests builds one request per documented request body example (one
// request when there is no body), without optional query parameters, and,
// if the operation has some, one more with all of them set to their
// examples.
func (s *oasSpec) requests(t *testing.T, o oasOp, pathValue func(string) string) []oasRequest {
	t.Helper()
	target := fillPath(o.path, func(name string) string {
		if pathValue != nil {
			return pathValue(name)
		}
		for _, p := range o.params {
			if p["in"] == "path" && p["name"] == name {
				if v, ok := p["example"].(string); ok {
					return v
				}
			}
		}
		t.Fatalf("%s: path parameter %s has no string example", o, name)
		return ""
	})
	var bodies []oasRequest
	if rb := s.resolve(t, oasMap(o.op["requestBody"])); rb != nil {
		content := oasMap(rb["content"])
		cts := make([]string, 0, len(content))
		for ct := range content {
			cts = append(cts, ct)
		}
		sort.Strings(cts)
		for _, ct := range cts {
			mt := oasMap(content[ct])
			examples := oasMap(mt["examples"])
			names := make([]string, 0, len(examples))
			for n := range examples {
				names = append(names, n)
			}
			sort.Strings(names)
			if len(names) == 0 {
				t.Errorf("%s: request body %s has no examples", o, ct)
			}
			for _, n := range names {
				v := s.resolve(t, oasMap(examples[n]))["value"]
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
	var query []map[string]any
	q := make([]string, 0)
	for _, p := range o.params {
		if p["in"] == "query" {
			if p["required"] == true {
				t.Errorf("%s: required query parameters are not expected", o)
			}
			ex, ok := p["example"]
			if !ok {
				t.Errorf("%s: query parameter %v has no example", o, p["name"])
				continue
			}
			query = append(query, p)
			q = append(q, p["name"].(string)+"="+fmt.Sprint(ex))
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

// allowedRoles returns the roles allowed by the operation and the query
// parameters of r, and whether any key is needed at all.
func allowedRoles(o oasOp, r oasRequest) (map[string]bool, bool) {
	var lists [][]any
	if l := asSlice(o.op["x-allowed-roles"]); l != nil {
		lists = append(lists, l)
	}
	for _, p := range r.query {
		if l := asSlice(p["x-allowed-roles"]); l != nil {
			lists = append(lists, l)
		}
	}
	if len(lists) == 0 {
		return nil, false
	}
	allowed := map[string]bool{}
	for _, role := range openapiRoles {
		allowed[role] = true
	}
	for _, l := range lists {
		in := map[string]bool{}
		for _, x := range l {
			in[fmt.Sprint(x)] = true
		}
		for role := range allowed {
			if !in[role] {
				delete(allowed, role)
			}
		}
	}
	return allowed, true
}

// send serves r with the given key ("" for none).
func (r oasRequest) send(a *API, key string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(r.method, r.target, bytes.NewReader(r.body))
	if r.contentType != "" {
		req.Header.Set("Content-Type", r.contentType)
	}
	if key != "" {
		req.Header.Set(DefaultConfig().KeyHeader, key)
	}
	w := httptest.NewRecorder()
	a.ServeHTTP(w, req)
	return w
}

// checkAnswer checks that an answer's status is documented for o, that its
// media type is documented for that status, and that a JSON body has the
// documented shape.
func (s *oasSpec) checkAnswer(t *testing.T, o oasOp, what string, w *httptest.ResponseRecorder) {
	t.Helper()
	body := w.Body.Bytes()
	if w.Code == http.StatusMethodNotAllowed {
		t.Errorf("%s %s: 405 %s: the route does not exist", o, what, body)
		return
	}
	var e struct{ Error string }
	if w.Code == http.StatusNotFound && json.Unmarshal(body, &e) == nil && strings.HasPrefix(e.Error, "no such endpoint") {
		t.Errorf("%s %s: %s: the route does not exist", o, what, body)
		return
	}
	resp := s.resolve(t, oasMap(oasMap(o.op["responses"])[strconv.Itoa(w.Code)]))
	if resp == nil {
		t.Errorf("%s %s: status %d is not documented (body %s)", o, what, w.Code, body)
		return
	}
	content := oasMap(resp["content"])
	if len(body) == 0 || content == nil {
		return
	}
	ct, _, _ := strings.Cut(w.Header().Get("Content-Type"), ";")
	var mt map[string]any
	for k, v := range content {
		if dk, _, _ := strings.Cut(k, ";"); strings.EqualFold(strings.TrimSpace(dk), strings.TrimSpace(ct)) {
			mt = oasMap(v)
		}
	}
	if mt == nil {
		t.Errorf("%s %s: %d answered %q, which is not a documented media type", o, what, w.Code, w.Header().Get("Content-Type"))
		return
	}
	if ct != "application/json" {
		return
	}
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		t.Errorf("%s %s: %d body is not JSON: %s", o, what, w.Code, body)
		return
	}
	for _, p := range s.shapeErrors(t, oasMap(mt["schema"]), v, "body") {
		t.Errorf("%s %s: %d %s: %s", o, what, w.Code, body, p)
	}
}

// shapeErrors reports how v departs from schema: wrong JSON types, fields
// not declared where additionalProperties is false, missing required
// fields, values outside an enum or const, strings not matching a pattern.
func (s *oasSpec) shapeErrors(t *testing.T, schema map[string]any, v any, at string) []string {
	t.Helper()
	schema = s.resolve(t, schema)
	if schema == nil {
		return nil
	}
	var errs []string
	for _, key := range []string{"oneOf", "anyOf"} {
		branches := asSlice(schema[key])
		if branches == nil {
			continue
		}
		var best []string
		for i, b := range branches {
			e := s.shapeErrors(t, oasMap(b), v, at)
			if len(e) == 0 {
				best = nil
				break
			}
			if i == 0 || len(e) < len(best) {
				best = e
			}
		}
		errs = append(errs, best...)
	}
	for _, b := range asSlice(schema["allOf"]) {
		errs = append(errs, s.shapeErrors(t, oasMap(b), v, at)...)
	}
	if types := schemaTypes(schema["type"]); types != nil && !types[jsonType(v)] && !(jsonType(v) == "integer" && types["number"]) {
		return append(errs, fmt.Sprintf("%s: %s, want %v", at, jsonType(v), schema["type"]))
	}
	if c, ok := schema["const"]; ok && !reflect.DeepEqual(c, v) {
		errs = append(errs, fmt.Sprintf("%s: %v, want %v", at, v, c))
	}
	if enum := asSlice(schema["enum"]); enum != nil {
		found := false
		for _, x := range enum {
			found = found || reflect.DeepEqual(x, v)
		}
		if !found {
			errs = append(errs, fmt.Sprintf("%s: %v is not one of %v", at, v, enum))
		}
	}
	if p, ok := schema["pattern"].(string); ok {
		if str, ok := v.(string); ok && !regexp.MustCompile(p).MatchString(str) {
			errs = append(errs, fmt.Sprintf("%s: %q does not match %s", at, str, p))
		}
	}
	switch v := v.(type) {
	case map[string]any:
		props := oasMap(schema["properties"])
		for _, r := range asSlice(schema["required"]) {
			if _, ok := v[r.(string)]; !ok {
				errs = append(errs, fmt.Sprintf("%s: required field %q missing", at, r))
			}
		}
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if p, ok := props[k]; ok {
				errs = append(errs, s.shapeErrors(t, oasMap(p), v[k], at+"."+k)...)
			} else if schema["additionalProperties"] == false {
				errs = append(errs, fmt.Sprintf("%s: field %q is not documented", at, k))
			}
		}
	case []any:
		if items := oasMap(schema["items"]); items != nil {
			for i, x := range v {
				errs = append(errs, s.shapeErrors(t, items, x, fmt.Sprintf("%s[%d]", at, i))...)
			}
		}
	}
	return errs
}

func schemaTypes(v any) map[string]bool {
	switch v := v.(type) {
	case string:
		return map[string]bool{v: true}
	case []any:
		m := map[string]bool{}
		for _, x := range v {
			m[fmt.Sprint(x)] = true
		}
		return m
	}
	return nil
}

func jsonType(v any) string {
	switch v := v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case string:
		return "string"
	case float64:
		if v == math.Trunc(v) && !math.IsInf(v, 0) {
			return "integer"
		}
		return "number"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return fmt.Sprintf("%T", v)
}

func isWebSocket(o oasOp) bool { return o.op["x-websocket-message"] != nil }

func TestOpenAPIOperationsAnswerAsDocumented(t *testing.T) {
	s := loadOpenAPI(t)
	a := newOpenAPITestAPI(t)
	for _, o := range s.ops(t) {
		for _, r := range s.requests(t, o, nil) {
			key := ""
			if _, needed := allowedRoles(o, r); needed {
				key = openapiKeys["admin"].Secret
			}
			w := r.send(a, key)
			if isWebSocket(o) {
				// Not a handshake: the WebSocket library's documented refusal.
				if w.Code != http.StatusUpgradeRequired {
					t.Errorf("%s %s: %d, want 426", o, r.name, w.Code)
				}
			} else if w.Code < 200 || w.Code > 299 {
				t.Errorf("%s %s: %d %s, want a success", o, r.name, w.Code, w.Body)
			}
			s.checkAnswer(t, o, r.name, w)
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
			w := r.send(a, key)
			if w.Code != http.StatusBadRequest {
				t.Errorf("%s with an invalid id: %d %s, want 400", o, w.Code, w.Body)
			}
			s.checkAnswer(t, o, "with an invalid id", w)
		}
	}
}

func TestOpenAPIRoles(t *testing.T) {
	s := loadOpenAPI(t)
	a := newOpenAPITestAPI(t)
	scheme := oasMap(oasMap(oasMap(s.root["components"])["securitySchemes"])["ApiKey"])
	if scheme["type"] != "apiKey" || scheme["in"] != "header" || scheme["name"] != DefaultConfig().KeyHeader {
		t.Errorf("security scheme ApiKey = %v, want an apiKey in header %s", scheme, DefaultConfig().KeyHeader)
	}
	for _, o := range s.ops(t) {
		if isWebSocket(o) {
			continue
		}
		opRoles := asSlice(o.op["x-allowed-roles"])
		switch req, _ := o.op["x-required-role"].(string); {
		case opRoles == nil && req != "public":
			t.Errorf("%s: x-required-role %q, want public (no x-allowed-roles)", o, req)
		case opRoles != nil && (len(opRoles) == 0 || req != opRoles[0]):
			t.Errorf("%s: x-required-role %q, want the first of x-allowed-roles %v", o, req, opRoles)
		}
		security := asSlice(o.op["security"])
		optional := false
		for _, x := range security {
			optional = optional || len(oasMap(x)) == 0
		}
		if opRoles != nil && (len(security) == 0 || optional) {
			t.Errorf("%s: has x-allowed-roles but its security does not require the API key: %v", o, security)
		}
		for _, r := range s.requests(t, o, nil) {
			allowed, needed := allowedRoles(o, r)
			if !needed {
				if w := r.send(a, ""); w.Code == http.StatusUnauthorized || w.Code == http.StatusForbidden {
					t.Errorf("%s %s: documented as public, got %d %s", o, r.name, w.Code, w.Body)
				}
				continue
			}
			if opRoles == nil && !optional {
				t.Errorf("%s: a parameter needs a key, but security does not allow one: %v", o, security)
			}
			for _, key := range []string{"", "not-a-key"} {
				w := r.send(a, key)
				if w.Code != http.StatusUnauthorized {
					t.Errorf("%s %s with key %q: %d %s, want 401", o, r.name, key, w.Code, w.Body)
				}
				s.checkAnswer(t, o, r.name+" without a valid key", w)
			}
			for _, role := range openapiRoles {
				w := r.send(a, openapiKeys[role].Secret)
				switch {
				case allowed[role] && (w.Code == http.StatusUnauthorized || w.Code == http.StatusForbidden):
					t.Errorf("%s %s: role %s is documented as allowed, got %d %s", o, r.name, role, w.Code, w.Body)
				case !allowed[role] && w.Code != http.StatusForbidden:
					t.Errorf("%s %s: role %s is documented as not allowed, got %d %s", o, r.name, role, w.Code, w.Body)
				}
				s.checkAnswer(t, o, r.name+" as "+role, w)
			}
		}
	}
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
	if oasMap(oasMap(ws.op["responses"])["101"]) == nil {
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
	schema := s.resolve(t, oasMap(ws.op["x-websocket-message"]))
	for _, p := range s.shapeErrors(t, schema, msg, "message") {
		t.Errorf("%s: %s", b, p)
	}
	// Every documented field is sent.
	for k := range oasMap(schema["properties"]) {
		if _, ok := msg[k]; !ok {
			t.Errorf("documented field %q is not in the message %s", k, b)
		}
	}
}

// TestOpenAPIExamplesFitSchemas checks every documented example against
// its schema, and the documented constants that the code defines.
func TestOpenAPIExamplesFitSchemas(t *testing.T) {
	s := loadOpenAPI(t)
	for _, o := range s.ops(t) {
		var media []struct {
			where string
			mt    map[string]any
		}
		if rb := s.resolve(t, oasMap(o.op["requestBody"])); rb != nil {
			for ct, mt := range oasMap(rb["content"]) {
				media = append(media, struct {
					where string
					mt    map[string]any
				}{"request " + ct, oasMap(mt)})
			}
		}
		for code, r := range oasMap(o.op["responses"]) {
			for ct, mt := range oasMap(s.resolve(t, oasMap(r))["content"]) {
				media = append(media, struct {
					where string
					mt    map[string]any
				}{code + " " + ct, oasMap(mt)})
			}
		}
		for _, m := range media {
			if !strings.Contains(m.where, "application/json") {
				continue
			}
			schema := oasMap(m.mt["schema"])
			if schema == nil {
				t.Errorf("%s %s: no schema", o, m.where)
				continue
			}
			if ex, ok := m.mt["example"]; ok {
				for _, p := range s.shapeErrors(t, schema, ex, "example") {
					t.Errorf("%s %s: %s", o, m.where, p)
				}
			}
			for name, ex := range oasMap(m.mt["examples"]) {
				for _, p := range s.shapeErrors(t, schema, s.resolve(t, oasMap(ex))["value"], "example "+name) {
					t.Errorf("%s %s: %s", o, m.where, p)
				}
			}
		}
		for _, p := range o.params {
			if p["name"] == "limit" {
				if d := oasMap(p["schema"])["default"]; d != float64(defaultHistoryLimit) {
					t.Errorf("%s: limit default %v, want %d", o, d, defaultHistoryLimit)
				}
				if desc, _ := p["description"].(string); !strings.Contains(desc, strconv.Itoa(maxHistoryLimit)) {
					t.Errorf("%s: limit description does not give the cap %d", o, maxHistoryLimit)
				}
			}
		}
	}
	for name, schema := range oasMap(oasMap(s.root["components"])["schemas"]) {
		for i, ex := range asSlice(oasMap(schema)["examples"]) {
			if oasMap(schema)["type"] != "object" {
				continue
			}
			for _, p := range s.shapeErrors(t, oasMap(schema), ex, fmt.Sprintf("%s.examples[%d]", name, i)) {
				t.Error(p)
			}
		}
	}
	desc, _ := oasMap(s.root["info"])["description"].(string)
	cfg := DefaultConfig()
	for _, want := range []string{strconv.FormatInt(cfg.MaxEventsBody, 10), strconv.FormatInt(cfg.MaxBody, 10)} {
		if !strings.Contains(desc, want) {
			t.Errorf("info.description does not give the body limit %s", want)
		}
	}
}

package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dynaprice/dynaprice/internal/catalog"
	"github.com/dynaprice/dynaprice/internal/loadgen"
	"github.com/dynaprice/dynaprice/internal/pricing"
)

// runCmd runs the command line and returns its exit status and output.
func runCmd(t *testing.T, getenv Env, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	code = Run(ctx, append([]string{"dynaprice"}, args...), getenv, &out, &errb)
	return code, out.String(), errb.String()
}

// TestLoadgenHTTPAgainstServe: `loadgen --write-catalog` writes the
// catalog serve imports, and `loadgen --url` posts events for it to a
// real serve: every event is accepted and priced (each product's demand
// is exactly the weights of the events the run's seed sent it), and the
// report's counts are the server's. A second run, zipf and without
// event_ids, adds its events; a run with a wrong key fails, counted.
func TestLoadgenHTTPAgainstServe(t *testing.T) {
	dir := t.TempDir()
	cat := filepath.Join(dir, "catalog.json")
	const products = 300
	if code, _, errs := runCmd(t, env(nil), "loadgen", "--products", "300", "--write-catalog", cat); code != 0 || !strings.Contains(errs, "wrote 300 products") {
		t.Fatalf("--write-catalog: exit %d, %s", code, errs)
	}
	o := testOptions(filepath.Join(dir, "data"))
	o.CatalogFile = cat
	s := startServer(t, o)

	// 2,050 events in batches of 100: 20 full batches and one of 50.
	const events, seed = 2050, 5
	report := filepath.Join(dir, "report.json")
	code, out, errs := runCmd(t, env(map[string]string{"DYNAPRICE_LOADGEN_KEY": ingestKey}), "loadgen", "--url", s.url, "--products", "300",
		"--rate", "20000", "--events", "2050", "--batch", "100", "--clients", "4", "--window", "100ms", "--seed", "5", "--json", report)
	if code != 0 {
		t.Fatalf("loadgen: exit %d\n%s\n%s", code, out, errs)
	}
	var rep loadgen.HTTPReport
	b, err := os.ReadFile(report)
	if err != nil || json.Unmarshal(b, &rep) != nil {
		t.Fatalf("report %s: %v", b, err)
	}
	if rep.Requests != 21 || rep.Failed != 0 || rep.Sent != events || rep.Accepted != events || rep.Rejected != 0 || rep.Duplicates != 0 ||
		rep.Views+rep.Carts+rep.Purchases != events || !rep.EventIDs || rep.Products != products || rep.Distribution != loadgen.Uniform {
		t.Fatalf("report %+v", rep)
	}
	var windowEvents int64
	for _, w := range rep.Windows {
		windowEvents += w.Events
	}
	if windowEvents != events || len(rep.Windows) < 2 || rep.Windows[len(rep.Windows)-1].RSS <= 0 {
		t.Errorf("windows add up to %d events, want %d, with serve's RSS: %+v", windowEvents, events, rep.Windows)
	}
	for _, want := range []string{"accepted", "2050", "latency p99", "window", "events/s"} {
		if !strings.Contains(out, want) {
			t.Errorf("report on stdout lacks %q:\n%s", want, out)
		}
	}
	if !strings.Contains(errs, "accepted 2050") {
		t.Errorf("no final progress line on stderr:\n%s", errs)
	}

	// What the run sent, recomputed from its seed, is what was priced.
	spread, err := loadgen.NewSpread(products, loadgen.Uniform, seed)
	if err != nil {
		t.Fatal(err)
	}
	want := make([]float64, products)
	weight := map[pricing.EventType]float64{pricing.View: 1, pricing.Cart: 3, pricing.Purchase: 5}
	for k := range uint64(events) {
		ev := spread.Event(k)
		want[ev.Product] += weight[ev.Type]
	}
	demand := func() map[string]float64 {
		t.Helper()
		code, m := s.do("GET", "/prices", "", "", "")
		if code != 200 {
			t.Fatalf("GET /prices = %d", code)
		}
		got := map[string]float64{}
		for _, p := range m["prices"].([]any) {
			p := p.(map[string]any)
			got[p["product_id"].(string)] = p["demand_exact"].(float64)
		}
		return got
	}
	got := demand()
	if len(got) != products {
		t.Fatalf("%d prices, want %d", len(got), products)
	}
	total := 0.0
	for i, w := range want {
		if g := got[catalog.SyntheticID(i)]; g != w {
			t.Errorf("%s: demand %v, want %v", catalog.SyntheticID(i), g, w)
		}
		total += w
	}
	if sent := float64(rep.Views + 3*rep.Carts + 5*rep.Purchases); sent != total {
		t.Errorf("the report's events weigh %v, the demand %v", sent, total)
	}

	// Zipf, without event_ids, as fast as serve takes them.
	code, out, errs = runCmd(t, env(nil), "loadgen", "--url", s.url+"/events", "--key", ingestKey, "--products", "300",
		"--distribution", "zipf", "--event-ids=false", "--events", "2000", "--json", report)
	if code != 0 {
		t.Fatalf("zipf run: exit %d\n%s\n%s", code, out, errs)
	}
	b, _ = os.ReadFile(report)
	rep = loadgen.HTTPReport{}
	if err := json.Unmarshal(b, &rep); err != nil || rep.Accepted != 2000 || rep.Requests != 4 || rep.EventIDs || rep.Distribution != loadgen.Zipf {
		t.Fatalf("zipf report %+v %v", rep, err)
	}
	added := 0.0
	for id, d := range demand() {
		added += d - got[id]
	}
	if w := float64(rep.Views + 3*rep.Carts + 5*rep.Purchases); math.Abs(added-w) > 1e-6 {
		t.Errorf("the zipf run added demand %v, its events weigh %v", added, w)
	}

	// A wrong key: every request fails, the report says so, the exit
	// status too.
	code, out, errs = runCmd(t, env(nil), "loadgen", "--url", s.url, "--key", "not-the-key-0123456789", "--events", "100", "--batch", "50")
	if code != 1 || !strings.Contains(out, "(401: 2)") || !strings.Contains(errs, "2 of 2 requests failed") {
		t.Errorf("wrong key: exit %d\n%s\n%s", code, out, errs)
	}
	// Events for products serve does not have: rejected, and said so.
	code, out, errs = runCmd(t, env(nil), "loadgen", "--url", s.url, "--key", ingestKey, "--products", "301", "--events", "301", "--batch", "301")
	if code != 1 || !strings.Contains(out, "rejected          1") || !strings.Contains(errs, `rejected 1 of 301 events; first: unknown product_id "P0000300"`) {
		t.Errorf("unknown product: exit %d\n%s\n%s", code, out, errs)
	}
}

func TestLoadgenFlagErrors(t *testing.T) {
	for _, args := range [][]string{
		{"loadgen", "--write-catalog", "x.json"},
		{"loadgen", "--products", "5", "--catalog", "c.json", "--events", "1"},
		{"loadgen", "--distribution", "normal", "--events", "1"},
		{"loadgen", "--url", "http://127.0.0.1:1", "--batch", "0", "--events", "1"},
	} {
		if code, _, errs := runCmd(t, env(nil), args...); code != 2 {
			t.Errorf("%v: exit %d, want 2\n%s", args, code, errs)
		}
	}
	if code, _, errs := runCmd(t, env(nil), "loadgen", "--help"); code != 0 || !strings.Contains(errs, "--url") || !strings.Contains(errs, "-products") {
		t.Errorf("--help: exit %d\n%s", code, errs)
	}
}

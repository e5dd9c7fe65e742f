package cli

import (
	"fmt"
	"strings"
	"testing"
)

// TestExperimentEndToEnd runs a price experiment through a real serve:
// an operator creates it, shoppers get their arm's price from GET /price
// and send events with their user_id, the readout counts them per arm (and
// not again when retried), survives a restart, and promoting the fixed
// arm makes its price the list price. Bad requests get a JSON error with
// the right status.
func TestExperimentEndToEnd(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, testOptions(dir))
	create := `{"id":"spring","products":["PA","PB"],"split":"shopper",
		"arms":[{"name":"list","kind":"control"},{"name":"lower","kind":"fixed","price":279}]}`
	if code, m := s.do("POST", "/experiments", viewerKey, "", create); code != 403 {
		t.Errorf("a viewer created an experiment: %d %v", code, m)
	}
	code, m := s.do("POST", "/experiments", operatorKey, "", create)
	if code != 201 || m["status"] != "running" || m["created_by"] != "ops" || m["salt"] != "spring" {
		t.Fatalf("POST /experiments = %d %v", code, m)
	}
	for _, c := range []struct {
		body   string
		status int
		msg    string
	}{
		{create, 409, "exists"},
		{strings.Replace(create, `"spring"`, `"other"`, 1), 409, "is in experiment"},
		{`{"id":"x","products":["nope"],"split":"shopper","arms":[{"name":"a","kind":"control"},{"name":"b","kind":"fixed","price":1}]}`, 400, "unknown product_id"},
		{`{"id":"x","products":["PC"],"split":"shopper","arms":[{"name":"a","kind":"control"}]}`, 400, "arms"},
		{`{"id":"x","products":["PC"],"split":"coin","arms":[{"name":"a","kind":"control"},{"name":"b","kind":"control"}]}`, 400, "split"},
		{`{"id":"x","products":["PC"],"split":"shopper","arms":[{"name":"a","kind":"control"},{"name":"b","kind":"strategy","strategy":"thompson"}]}`, 400, "strategy arms"},
		{`{"id":"x y","products":["PC"],"split":"shopper","arms":[]}`, 400, "must match"},
		{`{"id":"x","products":["PC"],"split":"shopper","arms":[{"name":"a","kind":"control","wieght":2}]}`, 400, "wieght"},
	} {
		code, m := s.do("POST", "/experiments", adminKey, "", c.body)
		if code != c.status || !strings.Contains(fmt.Sprint(m["error"]), c.msg) {
			t.Errorf("%s: %d %v, want %d and %q", c.body, code, m, c.status, c.msg)
		}
	}
	// Shoppers: each sees their arm's price, the same every time; PC is
	// not in the experiment.
	arms := map[string]int{}
	var events []string
	for u := range 60 {
		path := fmt.Sprintf("/price/PA?shopper=U%d", u)
		code, m := s.do("GET", path, "", "", "")
		if code != 200 || m["experiment"] != "spring" {
			t.Fatalf("GET %s = %d %v", path, code, m)
		}
		arm, price := m["arm"].(string), m["price"].(float64)
		if (arm == "lower") != (price == 279) || (arm == "list") != (price == 299) {
			t.Fatalf("%s: arm %s at %v", path, arm, price)
		}
		if _, again := s.do("GET", path, "", "", ""); again["arm"] != arm {
			t.Fatalf("%s: arm %s, then %v", path, arm, again["arm"])
		}
		arms[arm]++
		events = append(events, fmt.Sprintf(`{"event_type":"view","product_id":"PA","user_id":"U%d","event_id":"v%d","price":%v}`, u, u, price))
		if arm == "lower" {
			events = append(events, fmt.Sprintf(`{"event_type":"purchase","product_id":"PA","user_id":"U%d","event_id":"p%d","price":%v}`, u, u, price))
		}
	}
	if _, m := s.do("GET", "/price/PC?shopper=U1", "", "", ""); m["experiment"] != nil {
		t.Errorf("PC is priced by an experiment: %v", m)
	}
	if _, m := s.do("GET", "/price/PA", "", "", ""); m["experiment"] != nil || m["price"] != 299.0 {
		t.Errorf("without a shopper: %v", m)
	}
	body := "[" + strings.Join(events, ",") + "]"
	s.post(body)
	if m := s.post(body); m["duplicates"] != float64(len(events)) {
		t.Fatalf("retry: %v", m)
	}
	check := func(s *server, when string) {
		t.Helper()
		code, m := s.do("GET", "/experiments/spring", viewerKey, "", "")
		if code != 200 {
			t.Fatalf("%s: GET /experiments/spring = %d %v", when, code, m)
		}
		ro := m["readout"].(map[string]any)
		got := ro["arms"].([]any)
		list, lower := got[0].(map[string]any), got[1].(map[string]any)
		if list["views"] != float64(arms["list"]) || lower["views"] != float64(arms["lower"]) ||
			lower["purchases"] != float64(arms["lower"]) || lower["revenue"] != 279*float64(arms["lower"]) || list["purchases"] != 0.0 {
			t.Errorf("%s: readout arms %v, want views %v", when, got, arms)
		}
		if rpv := lower["revenue_per_visitor"].(map[string]any); rpv["estimate"] != 279.0 {
			t.Errorf("%s: revenue per visitor %v", when, rpv)
		}
	}
	check(s, "after the events")
	if err := s.stop(); err != nil {
		t.Fatal(err)
	}
	s = startServer(t, testOptions(dir))
	check(s, "after a restart")
	if code, m := s.do("GET", "/experiments", viewerKey, "", ""); code != 200 || len(m["experiments"].([]any)) != 1 {
		t.Errorf("GET /experiments = %d %v", code, m)
	}
	if code, m := s.do("POST", "/experiments/spring/promote", operatorKey, "", `{"arm":"nope"}`); code != 400 {
		t.Errorf("promoting an unknown arm: %d %v", code, m)
	}
	code, m = s.do("POST", "/experiments/spring/promote", operatorKey, "", `{"arm":"lower"}`)
	if code != 200 || m["status"] != "stopped" || m["promoted"] != "lower" || m["stopped_by"] != "ops" {
		t.Fatalf("promote = %d %v", code, m)
	}
	if p := s.price("PB"); p["price"] != 279.0 {
		t.Errorf("PB after promoting the fixed arm: %v", p)
	}
	if _, m := s.do("GET", "/price/PA?shopper=U1", "", "", ""); m["experiment"] != nil {
		t.Errorf("a stopped experiment still prices: %v", m)
	}
	if code, m := s.do("POST", "/experiments/spring/stop", operatorKey, "", ""); code != 409 {
		t.Errorf("stopping a stopped experiment: %d %v", code, m)
	}
	if code, m := s.do("GET", "/experiments/nope", viewerKey, "", ""); code != 404 {
		t.Errorf("an unknown experiment: %d %v", code, m)
	}
}

package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"net/url"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dynaprice/dynaprice/internal/engine"
	"github.com/dynaprice/dynaprice/internal/pricing"
)

func env(m map[string]string) Env { return func(k string) string { return m[k] } }

func TestServeFlagsAndEnvironment(t *testing.T) {
	var stderr bytes.Buffer
	o, err := parseServe(nil, env(map[string]string{"API_PORT": "9999", "ADMIN_API_KEY": "s3cret", "API_KEY_HEADER": "X-Key"}), &stderr)
	if err != nil {
		t.Fatal(err)
	}
	if o.Addr != ":9999" || o.AdminKey != "s3cret" || o.KeyHeader != "X-Key" || o.DataDir != "./dynaprice-data" {
		t.Fatalf("env defaults: %+v", o)
	}
	// A flag beats its environment variable.
	o, err = parseServe([]string{"--addr", "127.0.0.1:7000", "--key-header", "X-Other"}, env(map[string]string{"API_PORT": "9999", "API_KEY_HEADER": "X-Key"}), &stderr)
	if err != nil || o.Addr != "127.0.0.1:7000" || o.KeyHeader != "X-Other" {
		t.Fatalf("flags: %+v %v", o, err)
	}
	if _, err := parseServe([]string{"--nope"}, env(nil), &stderr); !errors.Is(err, errUsage) {
		t.Fatalf("unknown flag: %v", err)
	}
	if _, err := parseServe([]string{"--help"}, env(nil), &stderr); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("--help: %v", err)
	}
	if !strings.Contains(stderr.String(), "ADMIN_API_KEY") {
		t.Fatal("serve --help does not mention ADMIN_API_KEY")
	}
}

// TestServeDrainAndShutdownFlags: the drain lasts 1 s and the whole
// shutdown 10 s by default, both are in --help, and a drain that would leave
// the shutdown no time is refused.
func TestServeDrainAndShutdownFlags(t *testing.T) {
	var stderr bytes.Buffer
	o, err := parseServe(nil, env(nil), &stderr)
	if err != nil || o.Drain != time.Second || o.ShutdownTimeout != 10*time.Second {
		t.Fatalf("defaults: drain %v, shutdown timeout %v, %v", o.Drain, o.ShutdownTimeout, err)
	}
	if o, err = parseServe([]string{"--drain", "0"}, env(nil), &stderr); err != nil || o.Drain != 0 {
		t.Fatalf("--drain 0: %v %v", o.Drain, err)
	}
	if _, err := parseServe([]string{"--help"}, env(nil), &stderr); !errors.Is(err, flag.ErrHelp) {
		t.Fatal(err)
	}
	for _, want := range []string{"-drain", "-shutdown-timeout", "0 disables"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("serve --help does not mention %q", want)
		}
	}
	// Already cancelled: should the check let a value through, Serve stops at
	// once (exit 0) instead of serving until the test times out.
	stopped := cancelledContext()
	for _, args := range [][]string{{"--drain", "10s"}, {"--drain", "-1s"}, {"--shutdown-timeout", "0"}} {
		var out, errb bytes.Buffer
		if code := Run(stopped, append([]string{"dynaprice", "serve", "--data", t.TempDir(), "--addr", "127.0.0.1:0"}, args...), env(nil), &out, &errb); code != 1 || !strings.Contains(errb.String(), args[0]) {
			t.Errorf("%v: exit %d, %q; want 1 naming the flag", args, code, errb.String())
		}
	}
}

// TestScaleOutDrainAndShutdownFlags: api has serve's --drain (1 s) and
// --shutdown-timeout (10 s), the engine the same --shutdown-timeout and no
// --drain (nothing routes requests to it); both are in --help, and values
// that would leave the shutdown no time are refused before anything starts.
func TestScaleOutDrainAndShutdownFlags(t *testing.T) {
	var stderr bytes.Buffer
	ao, err := parseAPI(nil, env(nil), &stderr)
	if err != nil || ao.Drain != time.Second || ao.ShutdownTimeout != 10*time.Second {
		t.Fatalf("api defaults: drain %v, shutdown timeout %v, %v", ao.Drain, ao.ShutdownTimeout, err)
	}
	eo, err := parseEngine(nil, env(nil), &stderr)
	if err != nil || eo.ShutdownTimeout != 10*time.Second {
		t.Fatalf("engine defaults: shutdown timeout %v, %v", eo.ShutdownTimeout, err)
	}
	ctx := context.Background()
	for role, wants := range map[string][]string{"api": {"-drain", "-shutdown-timeout", "0 disables", "cut short"}, "engine": {"-shutdown-timeout", "cut short"}} {
		var out, errb bytes.Buffer
		if code := Run(ctx, []string{"dynaprice", role, "--help"}, env(nil), &out, &errb); code != 0 {
			t.Fatalf("%s --help: exit %d", role, code)
		}
		for _, want := range wants {
			if !strings.Contains(errb.String(), want) {
				t.Errorf("%s --help does not mention %q", role, want)
			}
		}
	}
	var out, errb bytes.Buffer
	if code := Run(ctx, []string{"dynaprice", "engine", "--drain", "1s"}, env(nil), &out, &errb); code != 2 {
		t.Errorf("engine --drain: exit %d, want 2 (no such flag)", code)
	}
	cases := [][]string{
		{"api", "--drain", "10s"}, {"api", "--drain", "-1s"}, {"api", "--shutdown-timeout", "0"},
		{"engine", "--shutdown-timeout", "0"}, {"engine", "--shutdown-timeout", "-1s"},
	}
	// Already cancelled, as for serve: a value let through fails fast.
	stopped := cancelledContext()
	for _, args := range cases {
		var out, errb bytes.Buffer
		if code := Run(stopped, append([]string{"dynaprice"}, args...), env(nil), &out, &errb); code != 1 || !strings.Contains(errb.String(), args[1]) {
			t.Errorf("%v: exit %d, %q; want 1 naming the flag", args, code, errb.String())
		}
	}
}

// cancelledContext is a context that has already ended.
func cancelledContext() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}

func TestParseWeights(t *testing.T) {
	w, err := pricing.ParseWeights("view=2, cart=4,purchase=8")
	if err != nil || w.View != 2 || w.Cart != 4 || w.Purchase != 8 {
		t.Fatalf("%+v %v", w, err)
	}
	for _, bad := range []string{"view=1,cart=3", "view=-1,cart=3,purchase=5", "view=x,cart=3,purchase=5", "click=1,cart=3,purchase=5"} {
		if _, err := pricing.ParseWeights(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestRunExitCodes(t *testing.T) {
	var out, errb bytes.Buffer
	ctx := context.Background()
	if code := Run(ctx, []string{"dynaprice"}, env(nil), &out, &errb); code != 2 {
		t.Errorf("no command: %d", code)
	}
	if code := Run(ctx, []string{"dynaprice", "frobnicate"}, env(nil), &out, &errb); code != 2 || !strings.Contains(errb.String(), "unknown command") {
		t.Errorf("unknown command: %d %q", code, errb.String())
	}
	out.Reset()
	if code := Run(ctx, []string{"dynaprice", "--help"}, env(nil), &out, &errb); code != 0 || !strings.Contains(out.String(), "serve") {
		t.Errorf("--help: %d %q", code, out.String())
	}
	if code := Run(ctx, []string{"dynaprice", "serve", "--weights", "bad", "--data", t.TempDir()}, env(nil), &out, &errb); code != 1 {
		t.Errorf("bad weights: %d", code)
	}
}

func TestScaleOutRolesFlagsAndEnvironment(t *testing.T) {
	var stderr bytes.Buffer
	e := env(map[string]string{"KAFKA_BROKERS": "k1:9092,k2:9092", "PRODUCT_EVENTS_TOPIC": "ev", "PRICE_UPDATES_TOPIC": "up",
		"REDIS_ADDR": "r:6379", "DATABASE_URL": "postgres://db/x", "DYNAPRICE_PARTITIONS": "24", "API_PORT": "9000",
		"ADMIN_API_KEY": "k", "API_KEY_HEADER": "X-K"})
	eo, err := parseEngine(nil, e, &stderr)
	if err != nil {
		t.Fatal(err)
	}
	if got := eo.brokers(); len(got) != 2 || got[1] != "k2:9092" || eo.topics().Events != "ev" || eo.topics().Updates != "up" ||
		eo.RedisAddr != "r:6379" || eo.DatabaseURL != "postgres://db/x" || eo.Partitions != 24 || eo.MetricsAddr != ":9090" {
		t.Errorf("engine from environment: %+v", eo)
	}
	eo, err = parseEngine([]string{"--brokers", "b:1", "--events-topic", "e2", "--partitions", "3"}, e, &stderr)
	if err != nil || eo.Brokers != "b:1" || eo.EventsTopic != "e2" || eo.Partitions != 3 {
		t.Errorf("a flag beats its environment variable: %+v %v", eo, err)
	}
	ao, err := parseAPI(nil, e, &stderr)
	if err != nil || ao.Addr != ":9000" || ao.AdminKey != "k" || ao.KeyHeader != "X-K" || ao.UpdatesTopic != "up" {
		t.Errorf("api from environment: %+v %v", ao, err)
	}
	var out bytes.Buffer
	ctx := context.Background()
	for _, role := range []string{"engine", "api", "migrate", "loadgen", "simulate"} {
		stderr.Reset()
		if code := Run(ctx, []string{"dynaprice", role, "--help"}, env(nil), &out, &stderr); code != 0 || !strings.Contains(stderr.String(), "Usage: dynaprice "+role) {
			t.Errorf("%s --help: exit %d, %q", role, code, stderr.String())
		}
		if code := Run(ctx, []string{"dynaprice", role, "--nope"}, env(nil), &out, &stderr); code != 2 {
			t.Errorf("%s with an unknown flag: exit %d, want 2", role, code)
		}
	}
	if code := Run(ctx, []string{"dynaprice", "loadgen"}, env(nil), &out, &stderr); code != 2 {
		t.Errorf("loadgen without --events or --duration: exit %d, want 2", code)
	}
	if code := Run(ctx, []string{"dynaprice", "migrate"}, env(nil), &out, &stderr); code != 1 || !strings.Contains(stderr.String(), "DATABASE_URL") {
		t.Errorf("migrate without a database: exit %d, %q", code, stderr.String())
	}
}

func TestSimulateCommand(t *testing.T) {
	var out, errb bytes.Buffer
	ctx := context.Background()
	dir := t.TempDir()
	code := Run(ctx, []string{"dynaprice", "simulate", "--strategies", "static,decay", "--json", dir + "/r.json", "--csv", dir + "/r.csv", "--svg", dir + "/charts",
		"../../scenarios/steady.json"}, env(nil), &out, &errb)
	if code != 0 {
		t.Fatalf("simulate: exit %d, %s", code, errb.String())
	}
	for _, want := range []string{"strategy", "static", "decay", "best-fixed", "100.0%", "dynamic bound"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, out.String())
		}
	}
	var doc struct {
		Scenario string
		Results  []map[string]any
	}
	b, err := os.ReadFile(dir + "/r.json")
	if err != nil || json.Unmarshal(b, &doc) != nil || doc.Scenario != "steady" || len(doc.Results) != 3 {
		t.Errorf("JSON results: %v %s", err, b)
	}
	if b, err := os.ReadFile(dir + "/r.csv"); err != nil || strings.Count(string(b), "\n") != 4 {
		t.Errorf("CSV results: %v %s", err, b)
	}
	for _, chart := range []string{"revenue", "regret", "price"} {
		b, err := os.ReadFile(dir + "/charts/" + chart + ".svg")
		if err != nil || !strings.HasPrefix(string(b), "<svg") || strings.Count(string(b), "<path") < 2 {
			t.Errorf("%s.svg: %v %.200s", chart, err, b)
		}
	}
	// Several seeds: a summary with the spread, from the seed asked for,
	// and a CSV row per strategy and one for the bound.
	out.Reset()
	errb.Reset()
	code = Run(ctx, []string{"dynaprice", "simulate", "--strategies", "static", "--seed", "101", "--seeds", "2", "--csv", dir + "/s.csv",
		"../../scenarios/steady.json"}, env(nil), &out, &errb)
	if code != 0 {
		t.Fatalf("simulate --seeds: exit %d, %s", code, errb.String())
	}
	for _, want := range []string{"steady over 2 seeds (101–102)", "static", "best-fixed", "% of bound", "dynamic bound"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, out.String())
		}
	}
	if !strings.Contains(errb.String(), "seed 102 (2 of 2)") {
		t.Errorf("no progress per seed: %s", errb.String())
	}
	if b, err := os.ReadFile(dir + "/s.csv"); err != nil || strings.Count(string(b), "\n") != 4 || !strings.Contains(string(b), "revenue_pct_of_bound_mean") {
		t.Errorf("summary CSV: %v %s", err, b)
	}
	if code := Run(ctx, []string{"dynaprice", "simulate", "--seeds", "0", "../../scenarios/steady.json"}, env(nil), &out, &errb); code != 2 {
		t.Errorf("--seeds 0: exit %d, want 2", code)
	}
	if code := Run(ctx, []string{"dynaprice", "simulate"}, env(nil), &out, &errb); code != 2 {
		t.Errorf("no scenario: exit %d, want 2", code)
	}
	if code := Run(ctx, []string{"dynaprice", "simulate", "--strategies", "nope", "../../scenarios/steady.json"}, env(nil), &out, &errb); code != 1 {
		t.Errorf("unknown strategy: exit %d, want 1", code)
	}
	if code := Run(ctx, []string{"dynaprice", "simulate", dir + "/missing.json"}, env(nil), &out, &errb); code != 1 {
		t.Errorf("missing scenario file: exit %d, want 1", code)
	}
}

// TestMigrateFailsFastOnAMissingDatabase: a server that answers but has no
// such database is a configuration mistake, reported at once, not waited
// for as an outage.
func TestMigrateFailsFastOnAMissingDatabase(t *testing.T) {
	u := os.Getenv("DYNAPRICE_TEST_POSTGRES")
	if u == "" {
		t.Skip("DYNAPRICE_TEST_POSTGRES not set")
	}
	pu, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	pu.Path = "/dynaprice_no_such_database"
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out, stderr bytes.Buffer
	code := Run(ctx, []string{"dynaprice", "migrate", "--database", pu.String()}, env(nil), &out, &stderr)
	if code != 1 || !strings.Contains(stderr.String(), "does not exist") || ctx.Err() != nil {
		t.Fatalf("migrate against a missing database: exit %d (context %v), %q; want exit 1 at once saying it does not exist", code, ctx.Err(), stderr.String())
	}
	if strings.Contains(stderr.String(), "retrying") {
		t.Errorf("it retried: %q", stderr.String())
	}
}

// TestShortAPIKeysAreRefused: a guessable admin key stops serve at start
// with a message naming the setting, unless short keys are allowed
// explicitly.
func TestShortAPIKeysAreRefused(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // only the checks run
	for _, c := range []struct {
		args []string
		env  map[string]string
		code int
	}{
		{nil, map[string]string{"ADMIN_API_KEY": "short"}, 1},
		{nil, map[string]string{"ADMIN_API_KEY": strings.Repeat("k", 16), "DYNAPRICE_API_KEYS": "ops:operator:tiny"}, 1},
		{[]string{"--insecure-short-keys"}, map[string]string{"ADMIN_API_KEY": "short"}, 0},
		{nil, map[string]string{"ADMIN_API_KEY": "short", "DYNAPRICE_INSECURE_SHORT_KEYS": "1"}, 0},
	} {
		var out, stderr bytes.Buffer
		args := append([]string{"dynaprice", "serve", "--addr", "127.0.0.1:0", "--data", t.TempDir()}, c.args...)
		code := Run(ctx, args, env(c.env), &out, &stderr)
		if code != c.code || (c.code == 1 && !strings.Contains(stderr.String(), "at least 16")) {
			t.Errorf("%v %v: exit %d, %q; want %d", c.args, c.env, code, stderr.String(), c.code)
		}
		if strings.Contains(stderr.String(), "short\"") || strings.Contains(stderr.String(), "tiny") {
			t.Errorf("the error shows the secret: %q", stderr.String())
		}
	}
}

// TestFlagMistakesAreReportedLast: a mistake prints the error, a
// suggestion for a near miss and where to find the flags, and no usage
// (which scrolled the error away); flags may follow a positional argument.
func TestFlagMistakesAreReportedLast(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		args []string
		want []string
	}{
		{[]string{"serve", "--dat", "x"}, []string{"dynaprice serve: flag provided but not defined: -dat", "Did you mean --data?"}},
		{[]string{"serve", "--shutdown-timout", "1s"}, []string{"Did you mean --shutdown-timeout?"}},
		{[]string{"engine", "--xyzzy"}, []string{"flag provided but not defined: -xyzzy"}},
		{[]string{"loadgen", "--rate", "fast"}, []string{`invalid value "fast" for flag -rate`}},
		{[]string{"serve", "extra"}, []string{`unexpected arguments ["extra"]`}},
	} {
		var out, errb bytes.Buffer
		if code := Run(ctx, append([]string{"dynaprice"}, c.args...), env(nil), &out, &errb); code != 2 {
			t.Errorf("%v: exit %d, want 2", c.args, code)
		}
		got := errb.String()
		for _, w := range c.want {
			if !strings.Contains(got, w) {
				t.Errorf("%v: stderr %q lacks %q", c.args, got, w)
			}
		}
		lines := strings.Split(strings.TrimSpace(got), "\n")
		if last := lines[len(lines)-1]; !strings.HasPrefix(last, `Run "dynaprice `+c.args[0]+` --help"`) || len(lines) > 3 ||
			strings.Contains(got, "Usage:") {
			t.Errorf("%v: want the mistake in at most 3 lines ending with the --help hint, got %q", c.args, got)
		}
		if strings.Contains(got, "Did you mean") != strings.Contains(strings.Join(c.want, " "), "Did you mean") {
			t.Errorf("%v: unexpected suggestion in %q", c.args, got)
		}
	}
}

func TestPositionalArgumentsAmongFlags(t *testing.T) {
	var svg, strat string
	fs := flag.NewFlagSet("dynaprice simulate", flag.ContinueOnError)
	fs.StringVar(&svg, "svg", "", "")
	fs.StringVar(&strat, "strategies", "", "")
	var errb bytes.Buffer
	pos, err := parseArgs(fs, []string{"--strategies", "seed", "steady.json", "--svg", "charts"}, &errb)
	if err != nil || !slices.Equal(pos, []string{"steady.json"}) || svg != "charts" || strat != "seed" {
		t.Fatalf("pos %q svg %q strategies %q err %v", pos, svg, strat, err)
	}
	pos, err = parseArgs(fs, []string{"a.json", "--", "--svg", "b"}, &errb)
	if err != nil || !slices.Equal(pos, []string{"a.json", "--svg", "b"}) {
		t.Fatalf("after --: pos %q err %v", pos, err)
	}
}

// TestHistoryRetentionFlags: serve and engine keep every change 30 days
// and hourly summaries 400 by default; the variables set them in days or
// hours, a flag beats its variable, and a policy that would lose what the
// audit of the 30-day lowest price needs (or a value that does not parse)
// stops the role before it starts, naming the setting.
func TestHistoryRetentionFlags(t *testing.T) {
	var stderr bytes.Buffer
	day := 24 * time.Hour
	so, err := parseServe(nil, env(nil), &stderr)
	if err != nil {
		t.Fatal(err)
	}
	if r, err := so.retention(); err != nil || r != (engine.HistoryRetention{Raw: 30 * day, Hourly: 400 * day}) {
		t.Fatalf("serve defaults: %+v, %v", r, err)
	}
	e := env(map[string]string{"DYNAPRICE_HISTORY_RAW": "45d", "DYNAPRICE_HISTORY_HOURLY": "17520h"})
	eo, err := parseEngine(nil, e, &stderr)
	if err != nil {
		t.Fatal(err)
	}
	if r, err := eo.retention(); err != nil || r != (engine.HistoryRetention{Raw: 45 * day, Hourly: 730 * day}) {
		t.Fatalf("engine from environment: %+v, %v", r, err)
	}
	if eo, err = parseEngine([]string{"--history-raw", "0", "--history-hourly", "0"}, e, &stderr); err != nil {
		t.Fatal(err)
	}
	if r, err := eo.retention(); err != nil || r.Enabled() {
		t.Fatalf("a flag beats its variable, 0 is forever: %+v, %v", r, err)
	}
	for _, role := range []string{"serve", "engine"} {
		stderr.Reset()
		var out bytes.Buffer
		if code := Run(context.Background(), []string{"dynaprice", role, "--help"}, env(nil), &out, &stderr); code != 0 ||
			!strings.Contains(stderr.String(), "-history-raw value") || !strings.Contains(stderr.String(), "(default 30d)") ||
			!strings.Contains(stderr.String(), "(default 400d)") || !strings.Contains(stderr.String(), "DYNAPRICE_HISTORY_RAW") {
			t.Errorf("%s --help: exit %d, %q", role, code, stderr.String())
		}
	}
	stopped := cancelledContext()
	for _, c := range []struct {
		args []string
		env  map[string]string
		want string
	}{
		{[]string{"--history-raw", "7d"}, nil, "retention 7d is shorter than 30d"},
		{[]string{"--history-raw", "40d", "--history-hourly", "35d"}, nil, "shorter than the raw one"},
		{[]string{"--history-raw", "0", "--history-hourly", "400d"}, nil, "needs a raw retention"},
		{nil, map[string]string{"DYNAPRICE_HISTORY_HOURLY": "a year"}, "DYNAPRICE_HISTORY_HOURLY"},
		{[]string{"--history-raw", "-30d"}, nil, "history-raw"},
	} {
		for _, role := range []string{"serve", "engine"} {
			var out, errb bytes.Buffer
			args := append([]string{"dynaprice", role}, c.args...)
			if role == "serve" {
				args = append(args, "--data", t.TempDir(), "--addr", "127.0.0.1:0")
			}
			if code := Run(stopped, args, env(c.env), &out, &errb); code == 0 || !strings.Contains(errb.String(), c.want) {
				t.Errorf("%s %v %v: exit %d, %q; want an error naming %q", role, c.args, c.env, code, errb.String(), c.want)
			}
		}
	}
}

// TestSimulateExperiment runs the shipped experiment examples through the
// command: one seed prints the readout and writes it as JSON; several
// print a line per seed and the rates; a misspelt field is refused.
func TestSimulateExperiment(t *testing.T) {
	var out, errb bytes.Buffer
	ctx := context.Background()
	dir := t.TempDir()
	market := "../../scenarios/experiments/ab-market.json"
	code := Run(ctx, []string{"dynaprice", "simulate", "--experiment", "../../scenarios/experiments/five-percent.json", "--json", dir + "/r.json", market}, env(nil), &out, &errb)
	if code != 0 {
		t.Fatalf("simulate --experiment: exit %d, %s", code, errb.String())
	}
	for _, want := range []string{"revenue/visitor", "p-value", "winner: 11.10", "true winner: 11.10"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("readout lacks %q:\n%s", want, out.String())
		}
	}
	var rep struct {
		TrueWinner string `json:"true_winner"`
		Readout    struct{ Arms []struct{ Views int64 } }
	}
	if b, err := os.ReadFile(dir + "/r.json"); err != nil || json.Unmarshal(b, &rep) != nil || rep.TrueWinner != "11.10" || len(rep.Readout.Arms) != 2 || rep.Readout.Arms[0].Views < 30000 {
		t.Errorf("JSON readout: %v %+v", err, rep)
	}
	out.Reset()
	if code := Run(ctx, []string{"dynaprice", "simulate", "--seeds", "3", "--experiment", "../../scenarios/experiments/a-a.json", market}, env(nil), &out, &errb); code != 0 {
		t.Fatalf("simulate --seeds 3 --experiment: exit %d, %s", code, errb.String())
	}
	if !strings.Contains(out.String(), "seed 3: ") || !strings.Contains(out.String(), "of 3 seeds") {
		t.Errorf("several seeds:\n%s", out.String())
	}
	bad := dir + "/bad.json"
	if err := os.WriteFile(bad, []byte(`{"split":"shopper","arms":[{"name":"a","kind":"control","wieght":2},{"name":"b","kind":"control"}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	errb.Reset()
	if code := Run(ctx, []string{"dynaprice", "simulate", "--experiment", bad, market}, env(nil), &out, &errb); code == 0 || !strings.Contains(errb.String(), "wieght") {
		t.Errorf("misspelt field: exit %d, %s", code, errb.String())
	}
}

package cli

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"strings"
	"testing"
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

func TestParseWeights(t *testing.T) {
	w, err := parseWeights("view=2, cart=4,purchase=8")
	if err != nil || w.View != 2 || w.Cart != 4 || w.Purchase != 8 {
		t.Fatalf("%+v %v", w, err)
	}
	for _, bad := range []string{"view=1,cart=3", "view=-1,cart=3,purchase=5", "view=x,cart=3,purchase=5", "click=1,cart=3,purchase=5"} {
		if _, err := parseWeights(bad); err == nil {
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

package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseDotEnv(t *testing.T) {
	got, err := parseDotEnv([]byte(`# the original's .env
KAFKA_BROKERS=localhost:9092
export REDIS_ADDR = localhost:6379
API_PORT=18481 # a comment
ADMIN_API_KEY="a key with # and \"quotes\""
EMPTY=
SINGLE='raw \n kept'

`))
	want := map[string]string{"KAFKA_BROKERS": "localhost:9092", "REDIS_ADDR": "localhost:6379", "API_PORT": "18481",
		"ADMIN_API_KEY": `a key with # and "quotes"`, "EMPTY": "", "SINGLE": `raw \n kept`}
	if err != nil || len(got) != len(want) {
		t.Fatalf("got %v, %v", got, err)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	for _, bad := range []string{"no equals sign", "1X=2", "A B=1", `Q="unterminated`} {
		if _, err := parseDotEnv([]byte("OK=1\n" + bad)); err == nil || !strings.Contains(err.Error(), "line 2") {
			t.Errorf("%q: %v, want an error naming line 2", bad, err)
		}
	}
}

// TestDotEnvIsReadAndTheEnvironmentBeatsIt: every role reads ./.env as
// the original's services do; a variable set in the environment wins; the
// original's ORACLE_DSN is answered with what replaces it.
func TestDotEnvIsReadAndTheEnvironmentBeatsIt(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, ".env"), []byte("API_PORT=18481\nADMIN_API_KEY=from-the-file-0123456789\nORACLE_DSN=pricing/pricingpass@localhost:1521/FREEPDB1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Chdir(dir)
	getenv, n, err := withDotEnv(dotEnvFile, env(map[string]string{"ADMIN_API_KEY": "from-the-environment-0123"}))
	if err != nil || n != 3 {
		t.Fatalf("n %d err %v", n, err)
	}
	if getenv("API_PORT") != "18481" || getenv("ADMIN_API_KEY") != "from-the-environment-0123" || getenv("NOPE") != "" {
		t.Fatalf("API_PORT %q ADMIN_API_KEY %q", getenv("API_PORT"), getenv("ADMIN_API_KEY"))
	}
	var stderr bytes.Buffer
	o, err := parseServe(nil, getenv, &stderr)
	if err != nil || o.Addr != ":18481" {
		t.Fatalf("serve with the file's API_PORT: %q %v", o.Addr, err)
	}

	// The api role, as the original's api-server was started: the file is
	// read, and the missing DATABASE_URL is explained.
	if err := os.WriteFile(filepath.Join(dir, ".env"), []byte("API_PORT=0\nORACLE_DSN=pricing/pricingpass@localhost:1521/FREEPDB1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	stderr.Reset()
	code := Run(context.Background(), []string{"dynaprice", "api"}, env(map[string]string{"ADMIN_API_KEY": "admin-0123456789abcdef", "DYNAPRICE_CONTROL_KEYS": "k1:0123456789abcdef0123456789abcdef"}), &out, &stderr)
	if code != 1 || !strings.Contains(stderr.String(), "read 2 settings from .env") ||
		!strings.Contains(stderr.String(), "ORACLE_DSN is set, but dynaprice keeps its data in PostgreSQL: set DATABASE_URL") {
		t.Fatalf("exit %d, stderr %s", code, stderr.String())
	}

	// A file that cannot be parsed stops the start, naming the line.
	if err := os.WriteFile(filepath.Join(dir, ".env"), []byte("API_PORT 8080\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	stderr.Reset()
	if code := Run(context.Background(), []string{"dynaprice", "serve"}, env(nil), &out, &stderr); code != 1 ||
		!strings.Contains(stderr.String(), ".env: line 1: want KEY=VALUE") {
		t.Fatalf("exit %d, stderr %s", code, stderr.String())
	}
}

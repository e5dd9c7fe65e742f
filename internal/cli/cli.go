// Package cli is the dynaprice command line: it parses flags and
// environment for each role and wires the components together. Only this
// package reads flags and environment; everything below takes config
// structs.
package cli

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/dynaprice/dynaprice/internal/httpapi"
)

// Env looks up an environment variable (os.Getenv in main, a map in tests).
type Env func(string) string

const usage = `dynaprice — real-time dynamic pricing engine

Usage:
  dynaprice <command> [flags]

Commands:
  serve     run the whole system in one process (embedded store, live view, HTTP API, WebSocket)

  Scale-out (Kafka, Redis, PostgreSQL):
  engine    price events from Kafka; commit to PostgreSQL, update Redis, publish price updates
  api       a stateless API replica: REST, WebSocket and dashboard over Redis, PostgreSQL and Kafka
  migrate   apply PostgreSQL migrations and seed an empty catalog
  loadgen   produce events into Kafka and measure throughput and produce-to-update latency,
            or (--url) post them to serve or api and measure POST latency per window

  simulate  compare pricing strategies on a simulated market (revenue, margin, % of optimum)

  version   print the version

Run "dynaprice <command> --help" for a command's flags.
`

// Version is set at build time with -ldflags "-X ...cli.Version=...".
var Version = "dev"

// Run runs the command line and returns the process exit status.
func Run(ctx context.Context, args []string, getenv Env, stdout, stderr io.Writer) int {
	if len(args) < 2 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	if cmd := args[1]; cmd != "version" && cmd != "--version" && cmd != "help" && !strings.HasPrefix(cmd, "-") {
		n := 0
		if getenv, n, err = withDotEnv(dotEnvFile, getenv); err != nil {
			fmt.Fprintln(stderr, "dynaprice:", err)
			return 1
		}
		if n > 0 {
			fmt.Fprintf(stderr, "dynaprice: read %d settings from %s (a variable set in the environment beats it)\n", n, dotEnvFile)
		}
	}
	switch args[1] {
	case "serve":
		err = runServe(ctx, args[2:], getenv, stdout, stderr)
	case "engine":
		err = runEngine(ctx, args[2:], getenv, stdout, stderr)
	case "api":
		err = runAPI(ctx, args[2:], getenv, stdout, stderr)
	case "migrate":
		err = runMigrate(ctx, args[2:], getenv, stdout, stderr)
	case "loadgen":
		err = runLoadgen(ctx, args[2:], getenv, stdout, stderr)
	case "simulate":
		err = runSimulate(ctx, args[2:], getenv, stdout, stderr)
	case "version", "--version":
		fmt.Fprintln(stdout, "dynaprice", Version)
	case "help", "-h", "--help", "-help":
		fmt.Fprint(stdout, usage)
	default:
		fmt.Fprintf(stderr, "dynaprice: unknown command %q\n\n%s", args[1], usage)
		return 2
	}
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		return 2
	}
	fmt.Fprintln(stderr, "dynaprice:", err)
	return 1
}

// errUsage marks a flag error already reported by the flag package.
var errUsage = errors.New("usage")

func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch strings.ToLower(format) {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", format)
}

// apiKeys parses the extra keys and puts the admin key first, generating
// one into *admin when none is set (the caller prints it once); short keys
// are refused unless allowShort.
func apiKeys(admin *string, extra string, allowShort bool) (keys []httpapi.Key, generated bool, err error) {
	keys, err = httpapi.ParseKeys(extra)
	if err != nil {
		return nil, false, err
	}
	if *admin == "" {
		b := make([]byte, 24)
		_, _ = rand.Read(b)
		*admin, generated = hex.EncodeToString(b), true
	}
	keys = append([]httpapi.Key{{Name: "admin", Role: httpapi.RoleAdmin, Secret: *admin}}, keys...)
	if err := httpapi.CheckKeys(keys, allowShort); err != nil {
		return nil, false, fmt.Errorf("%w (ADMIN_API_KEY, DYNAPRICE_API_KEYS; --insecure-short-keys allows short ones)", err)
	}
	return keys, generated, nil
}

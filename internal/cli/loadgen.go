package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/dynaprice/dynaprice/internal/catalog"
	"github.com/dynaprice/dynaprice/internal/loadgen"
)

// loadgenOptions are the flags of `dynaprice loadgen` beyond the Kafka
// mode's loadgen.Config: the HTTP mode's and the synthetic catalog's.
type loadgenOptions struct {
	CatalogFile, JSONOut string
	// Products > 0 is the synthetic catalog; WriteCatalog writes it.
	Products     int
	Distribution string
	WriteCatalog string
	// URL selects the HTTP mode.
	URL, Key, KeyHeader string
	Batch, Clients      int
	EventIDs            bool
	Window, Timeout     time.Duration
	PID                 int
	DiskDir             string
}

// runLoadgen is `dynaprice loadgen`.
func runLoadgen(ctx context.Context, args []string, getenv Env, stdout, stderr io.Writer) error {
	var o ClusterOptions
	var cfg loadgen.Config
	var lo loadgenOptions
	fs := flag.NewFlagSet("dynaprice loadgen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addClusterFlags(fs, &o, getenv, true, false, false)
	fs.Float64Var(&cfg.Rate, "rate", 0, "events per second; 0 sends as fast as Kafka (or, with --url, the server) takes them")
	fs.IntVar(&cfg.Events, "events", 0, "stop after this many events")
	fs.DurationVar(&cfg.Duration, "duration", 0, "stop after this long (at least one of --events and --duration is required)")
	fs.BoolVar(&cfg.Unkeyed, "unkeyed", false, "send records without a key, as the original's producers did (exercises re-keying)")
	fs.DurationVar(&cfg.Drain, "drain", 10*time.Second, "how long to wait for outstanding price updates after the last event")
	fs.Uint64Var(&cfg.Seed, "seed", 1, "seed of the event mix")
	fs.StringVar(&lo.CatalogFile, "catalog", "", "catalog JSON file whose products to send events for (default: the demo catalog)")
	fs.IntVar(&lo.Products, "products", 0, "send events for the synthetic catalog of this many products, P0000000... (see --write-catalog), instead of --catalog")
	fs.StringVar(&lo.Distribution, "distribution", "", "how events spread over the products: uniform (each product in turn, in a scattered order) or zipf (product i's share ∝ 1/(i+1)); default uniform with --products, otherwise the demo traffic's zipf-like draw")
	fs.StringVar(&lo.WriteCatalog, "write-catalog", "", "write the --products catalog to this file, for serve --catalog; without --events or --duration, only that")
	fs.StringVar(&lo.JSONOut, "json", "", "also write the report as JSON to this file")
	fs.StringVar(&lo.URL, "url", "", "post the events to this server's POST /events (http://host:8080, serve or api) instead of producing them to Kafka")
	fs.StringVar(&lo.Key, "key", "", "with --url: an ingest or admin API key (default: env DYNAPRICE_LOADGEN_KEY, else ADMIN_API_KEY)")
	fs.StringVar(&lo.KeyHeader, "key-header", envOr(getenv, "API_KEY_HEADER", loadgen.DefaultKeyHeader), "with --url: header carrying the API key (env API_KEY_HEADER)")
	fs.IntVar(&lo.Batch, "batch", loadgen.DefaultBatch, "with --url: events per request")
	fs.IntVar(&lo.Clients, "clients", loadgen.DefaultClients, "with --url: concurrent connections")
	fs.BoolVar(&lo.EventIDs, "event-ids", true, "with --url: give every event a unique event_id (--event-ids=false sends none)")
	fs.DurationVar(&lo.Window, "window", loadgen.DefaultWindow, "with --url: length of the report's windows")
	fs.DurationVar(&lo.Timeout, "timeout", loadgen.DefaultTimeout, "with --url: a request's time limit; one that takes longer counts as failed")
	fs.IntVar(&lo.PID, "pid", 0, "with --url: read the server's RSS from /proc/PID each window (default: scrape its /metrics)")
	fs.StringVar(&lo.DiskDir, "disk-dir", "", "with --url: report the size of this directory (serve's --data-dir) each window")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage: dynaprice loadgen [flags]

Produces seed-format shopper events into the events topic at --rate (or as
fast as possible) while reading price-updates back, then reports the rate
achieved and produce-to-price-update latency percentiles: the tool to size a
deployment with. A progress line is shown while it runs.

With --url it posts the events instead, in batches of --batch over
--clients connections, to POST /events of serve (or of an API replica),
with a unique event_id each, and reports the rate accepted, POST latency
percentiles (from when each batch was due, so a stalled server is not
flattered) and a table per --window: rate, p50/p99/max and the server's
RSS (from its /metrics, or /proc with --pid). A soak:

  dynaprice loadgen --products 1000000 --write-catalog catalog.json
  dynaprice serve --catalog catalog.json &
  dynaprice loadgen --url http://127.0.0.1:8080 --key $ADMIN_API_KEY \
      --products 1000000 --rate 30000 --duration 30m --json soak.json

Exits 1 when a request failed or an event was rejected (after the report).

Environment: KAFKA_BROKERS, PRODUCT_EVENTS_TOPIC, PRICE_UPDATES_TOPIC;
with --url DYNAPRICE_LOADGEN_KEY or ADMIN_API_KEY, API_KEY_HEADER.

Flags:
`)
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args, stderr); err != nil {
		return err
	}
	if lo.WriteCatalog != "" {
		if lo.Products <= 0 {
			fmt.Fprintln(stderr, "dynaprice loadgen: --write-catalog writes the --products catalog: give --products")
			return errUsage
		}
		if err := writeSynthetic(lo.WriteCatalog, lo.Products); err != nil {
			return err
		}
		fmt.Fprintf(stderr, "dynaprice loadgen: wrote %d products to %s (start serve with --catalog %s)\n", lo.Products, lo.WriteCatalog, lo.WriteCatalog)
		if cfg.Events <= 0 && cfg.Duration <= 0 {
			return nil
		}
	}
	if cfg.Events <= 0 && cfg.Duration <= 0 {
		fmt.Fprintln(stderr, "dynaprice loadgen: give --events or --duration")
		return errUsage
	}
	if lo.Products > 0 && lo.CatalogFile != "" {
		fmt.Fprintln(stderr, "dynaprice loadgen: give --products or --catalog, not both")
		return errUsage
	}
	dist, spread := loadgen.Uniform, lo.Products > 0
	if lo.Distribution != "" {
		d, err := loadgen.ParseDistribution(lo.Distribution)
		if err != nil {
			fmt.Fprintf(stderr, "dynaprice loadgen: --distribution %q: want uniform or zipf\n", lo.Distribution)
			return errUsage
		}
		dist, spread = d, true
	}
	cat, err := catalog.ReadFile(lo.CatalogFile)
	if err != nil {
		return err
	}
	if lo.URL != "" {
		return runLoadgenHTTP(ctx, cfg, lo, cat, dist, spread, getenv, stdout, stderr)
	}

	if cat != nil {
		cfg.Products = cat.Products
	}
	if lo.Products > 0 {
		syn, err := catalog.Synthetic(lo.Products)
		if err != nil {
			return err
		}
		cfg.Products = syn.Products
	}
	cfg.Spread, cfg.Distribution = spread, dist
	cfg.Brokers, cfg.EventsTopic, cfg.UpdatesTopic = o.brokers(), o.EventsTopic, o.UpdatesTopic
	if cfg.ClientOpts, err = o.Kafka.Opts(); err != nil {
		return err
	}
	cfg.Progress = stderr
	rep, err := loadgen.Run(ctx, cfg)
	if err != nil {
		return err
	}
	rep.WriteText(stdout)
	if lo.JSONOut != "" {
		return rep.WriteJSONFile(lo.JSONOut)
	}
	return nil
}

// runLoadgenHTTP is `dynaprice loadgen --url`. The report is written even
// when the run was interrupted (a soak stopped by Ctrl-C still says what
// it measured) or requests failed; the exit status then says so.
func runLoadgenHTTP(ctx context.Context, cfg loadgen.Config, lo loadgenOptions, cat *catalog.File,
	dist loadgen.Distribution, spread bool, getenv Env, stdout, stderr io.Writer) error {
	hc := loadgen.HTTPConfig{
		URL: lo.URL, Key: lo.Key, KeyHeader: lo.KeyHeader,
		Rate: cfg.Rate, Events: cfg.Events, Duration: cfg.Duration, Batch: lo.Batch, Clients: lo.Clients,
		Synthetic: lo.Products, Distribution: dist, Seed: cfg.Seed, EventIDs: lo.EventIDs,
		Window: lo.Window, Timeout: lo.Timeout, PID: lo.PID, DiskDir: lo.DiskDir, Progress: stderr,
	}
	if hc.Key == "" {
		hc.Key = envOr(getenv, "DYNAPRICE_LOADGEN_KEY", getenv("ADMIN_API_KEY"))
	}
	if cat != nil {
		hc.Products = cat.Products
	}
	if !spread && lo.Products == 0 {
		// Without --products or --distribution, the demo traffic's skew,
		// as the Kafka mode sends.
		hc.Distribution = loadgen.Zipf
	}
	if lo.Batch <= 0 || lo.Clients <= 0 || lo.Window <= 0 || lo.Timeout <= 0 {
		fmt.Fprintln(stderr, "dynaprice loadgen: --batch, --clients, --window and --timeout must be > 0")
		return errUsage
	}
	rep, runErr := loadgen.RunHTTP(ctx, hc)
	if rep.URL == "" { // the configuration was refused: nothing ran
		return runErr
	}
	rep.WriteText(stdout)
	if lo.JSONOut != "" {
		if err := rep.WriteJSONFile(lo.JSONOut); err != nil {
			return err
		}
	}
	switch {
	case runErr != nil:
		return runErr
	case rep.Failed > 0:
		return fmt.Errorf("loadgen: %d of %d requests failed; first: %s", rep.Failed, rep.Failed+rep.Requests, rep.FirstFailure)
	case rep.Rejected > 0:
		return fmt.Errorf("loadgen: the server rejected %d of %d events; first: %s", rep.Rejected, rep.Sent, rep.FirstRejection)
	}
	return nil
}

// writeSynthetic writes the synthetic catalog of n products to path.
func writeSynthetic(path string, n int) (err error) {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}()
	if err := catalog.WriteSynthetic(f, n); err != nil {
		return errors.Join(err, os.Remove(path))
	}
	return nil
}

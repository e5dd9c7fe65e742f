package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/dynaprice/dynaprice/internal/catalog"
	"github.com/dynaprice/dynaprice/internal/loadgen"
)

// runLoadgen is `dynaprice loadgen`.
func runLoadgen(ctx context.Context, args []string, getenv Env, stdout, stderr io.Writer) error {
	var o ClusterOptions
	var cfg loadgen.Config
	var catalogFile, jsonOut string
	fs := flag.NewFlagSet("dynaprice loadgen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addClusterFlags(fs, &o, getenv, true, false, false)
	fs.Float64Var(&cfg.Rate, "rate", 0, "events per second; 0 sends as fast as Kafka takes them")
	fs.IntVar(&cfg.Events, "events", 0, "stop after this many events")
	fs.DurationVar(&cfg.Duration, "duration", 0, "stop after this long (at least one of --events and --duration is required)")
	fs.BoolVar(&cfg.Unkeyed, "unkeyed", false, "send records without a key, as the original's producers did (exercises re-keying)")
	fs.DurationVar(&cfg.Drain, "drain", 10*time.Second, "how long to wait for outstanding price updates after the last event")
	fs.Uint64Var(&cfg.Seed, "seed", 1, "seed of the event mix")
	fs.StringVar(&catalogFile, "catalog", "", "catalog JSON file whose products to send events for (default: the demo catalog)")
	fs.StringVar(&jsonOut, "json", "", "also write the report as JSON to this file")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage: dynaprice loadgen [flags]

Produces seed-format shopper events into the events topic at --rate (or as
fast as possible) while reading price-updates back, then reports the rate
achieved and produce-to-price-update latency percentiles: the tool to size a
deployment with. A progress line is shown while it runs.

Environment: KAFKA_BROKERS, PRODUCT_EVENTS_TOPIC, PRICE_UPDATES_TOPIC.

Flags:
`)
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args, stderr); err != nil {
		return err
	}
	if cfg.Events <= 0 && cfg.Duration <= 0 {
		fmt.Fprintln(stderr, "dynaprice loadgen: give --events or --duration")
		return errUsage
	}
	cat, err := catalog.ReadFile(catalogFile)
	if err != nil {
		return err
	}
	if cat != nil {
		cfg.Products = cat.Products
	}
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
	if jsonOut != "" {
		return rep.WriteJSONFile(jsonOut)
	}
	return nil
}

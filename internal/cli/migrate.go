package cli

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/dynaprice/dynaprice/internal/catalog"
)

// runMigrate is `dynaprice migrate`: apply PostgreSQL migrations, seed an
// empty catalog, exit.
func runMigrate(ctx context.Context, args []string, getenv Env, stdout, stderr io.Writer) error {
	var o ClusterOptions
	var catalogFile string
	var noSeed bool
	fs := flag.NewFlagSet("dynaprice migrate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addClusterFlags(fs, &o, getenv, false, false, true)
	fs.StringVar(&catalogFile, "catalog", "", "catalog JSON file to seed an empty database with (default: the demo catalog)")
	fs.BoolVar(&noSeed, "no-seed", false, "leave an empty catalog empty")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage: dynaprice migrate [flags]

Applies the versioned PostgreSQL migrations that are not applied yet (each in
its own transaction, under an advisory lock so concurrent starts are safe),
gives an empty catalog the demo products or --catalog's, and exits. Engines
also migrate at start unless run with --no-migrate.

Environment: DATABASE_URL.

Flags:
`)
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args, stderr); err != nil {
		return err
	}
	log, err := newLogger(stderr, o.LogLevel, o.LogFormat)
	if err != nil {
		return err
	}
	cat, err := catalog.ReadFile(catalogFile)
	if err != nil {
		return err
	}
	db, err := o.openDB(ctx, log)
	if err != nil {
		return err
	}
	defer db.Close()
	applied, err := db.Migrate(ctx)
	if err != nil {
		return err
	}
	for _, m := range applied {
		fmt.Fprintln(stdout, "applied", m)
	}
	if len(applied) == 0 {
		fmt.Fprintln(stdout, "database is up to date")
	}
	if noSeed {
		return nil
	}
	seeded, err := db.MigrateAndSeed(ctx, cat, log)
	if err != nil {
		return err
	}
	if seeded {
		fmt.Fprintln(stdout, "empty catalog seeded")
	}
	return nil
}

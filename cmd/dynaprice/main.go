// Command dynaprice is the real-time dynamic pricing engine. See
// `dynaprice --help`.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/dynaprice/dynaprice/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Run(ctx, os.Args, os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

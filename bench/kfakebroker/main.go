// Command kfakebroker runs kfake, franz-go's in-process Kafka broker, as a
// standalone process, so that the dynaprice binary's scale-out roles can
// be run and measured on a machine without Apache Kafka (like the project's
// development machine). It speaks the real Kafka protocol over TCP; it is a
// test tool, not a production broker.
//
//	go run ./bench/kfakebroker -addr 127.0.0.1:9092
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	"github.com/twmb/franz-go/pkg/kfake"
)

func main() {
	port := flag.Int("port", 9092, "port to listen on (127.0.0.1)")
	dir := flag.String("data", "", "directory to persist the log in (empty: memory only)")
	flag.Usage = func() {
		fmt.Fprintln(flag.CommandLine.Output(), "Usage: kfakebroker [-port 9092] [-data DIR]\n\nRuns a single-broker kfake Kafka cluster until interrupted.")
		flag.PrintDefaults()
	}
	flag.Parse()
	opts := []kfake.Opt{kfake.NumBrokers(1), kfake.Ports(*port)}
	if *dir != "" {
		opts = append(opts, kfake.DataDir(*dir))
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		fmt.Fprintln(os.Stderr, "kfakebroker:", err)
		os.Exit(1)
	}
	fmt.Println("kfake broker listening on 127.0.0.1:" + strconv.Itoa(*port))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
	c.Close()
}

package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/dynaprice/dynaprice/internal/kafka"
	"github.com/dynaprice/dynaprice/internal/postgres"
	"github.com/dynaprice/dynaprice/internal/redis"
	"github.com/dynaprice/dynaprice/internal/retry"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// ClusterOptions are the settings every scale-out role shares, with the
// original system's environment names.
type ClusterOptions struct {
	Brokers      string
	EventsTopic  string
	UpdatesTopic string
	Partitions   int
	Replication  int
	RedisAddr    string
	RedisPrefix  string
	ControlTopic string
	Kafka        kafka.Security
	// ControlKeys sign and verify control records (DYNAPRICE_CONTROL_KEYS;
	// no flag: a secret on a command line is visible to every local user).
	ControlKeys string
	DatabaseURL string
	// oracleDSN is whether the original's ORACLE_DSN is set: a team moving
	// over is told that DATABASE_URL takes its place.
	oracleDSN bool
	LogOptions
}

func envOr(getenv Env, name, def string) string {
	if v := getenv(name); v != "" {
		return v
	}
	return def
}

// addClusterFlags registers the shared flags; which ones depends on what
// the role talks to.
func addClusterFlags(fs *flag.FlagSet, o *ClusterOptions, getenv Env, kafkaFlags, redisFlag, dbFlag bool) {
	if kafkaFlags {
		fs.StringVar(&o.Brokers, "brokers", envOr(getenv, "KAFKA_BROKERS", "localhost:9092"), "Kafka brokers, comma separated (env KAFKA_BROKERS)")
		fs.StringVar(&o.EventsTopic, "events-topic", envOr(getenv, "PRODUCT_EVENTS_TOPIC", "product-events"), "topic of shopper events (env PRODUCT_EVENTS_TOPIC)")
		fs.StringVar(&o.UpdatesTopic, "updates-topic", envOr(getenv, "PRICE_UPDATES_TOPIC", "price-updates"), "topic of price updates (env PRICE_UPDATES_TOPIC)")
		parts, _ := strconv.Atoi(envOr(getenv, "DYNAPRICE_PARTITIONS", "12"))
		fs.IntVar(&o.Partitions, "partitions", parts, "partitions of topics created when missing; bounds how many engines share the work (env DYNAPRICE_PARTITIONS)")
		fs.StringVar(&o.ControlTopic, "control-topic", envOr(getenv, "DYNAPRICE_CONTROL_TOPIC", kafka.DefaultControlTopic), "topic of signed control records (overrides, catalog changes); only dynaprice may write to it (env DYNAPRICE_CONTROL_TOPIC)")
		o.ControlKeys = getenv("DYNAPRICE_CONTROL_KEYS")
		fs.BoolVar(&o.Kafka.TLS, "kafka-tls", getenv("KAFKA_TLS") == "1", "connect to Kafka over TLS (env KAFKA_TLS=1)")
		fs.StringVar(&o.Kafka.CAFile, "kafka-tls-ca", getenv("KAFKA_TLS_CA"), "PEM file of the CAs to trust for Kafka's TLS instead of the system's (env KAFKA_TLS_CA)")
		fs.StringVar(&o.Kafka.SASL, "kafka-sasl", getenv("KAFKA_SASL_MECHANISM"), "Kafka SASL mechanism: plain, scram-sha-256 or scram-sha-512 (env KAFKA_SASL_MECHANISM); the password comes from KAFKA_SASL_PASSWORD only")
		fs.StringVar(&o.Kafka.User, "kafka-user", getenv("KAFKA_SASL_USER"), "Kafka SASL user (env KAFKA_SASL_USER)")
		o.Kafka.Password = getenv("KAFKA_SASL_PASSWORD")
		fs.IntVar(&o.Replication, "replication", 1, "replication factor of topics created when missing (3 in production)")
	}
	if redisFlag {
		fs.StringVar(&o.RedisAddr, "redis", envOr(getenv, "REDIS_ADDR", "localhost:6379"), "Redis HOST:PORT (env REDIS_ADDR)")
		fs.StringVar(&o.RedisPrefix, "redis-prefix", getenv("DYNAPRICE_REDIS_PREFIX"), "prefix of every Redis key, so deployments can share a Redis; empty keeps the original's key names (env DYNAPRICE_REDIS_PREFIX)")
	}
	if dbFlag {
		fs.StringVar(&o.DatabaseURL, "database", getenv("DATABASE_URL"), "PostgreSQL URL postgres://user:pass@host:5432/db (env DATABASE_URL)")
		o.oracleDSN = getenv("ORACLE_DSN") != ""
	}
	o.LogOptions.register(fs, getenv)
}

func (o ClusterOptions) topics() kafka.Topics {
	return kafka.Topics{Events: o.EventsTopic, Updates: o.UpdatesTopic, Control: o.ControlTopic}
}

// signer parses DYNAPRICE_CONTROL_KEYS, which engines and API replicas
// must share.
func (o ClusterOptions) signer() (*kafka.Signer, error) { return kafka.ParseSigner(o.ControlKeys) }

func (o ClusterOptions) brokers() []string { return splitList(o.Brokers) }

// kafkaClient is the configuration of the role's Kafka clients.
func (o ClusterOptions) kafkaClient(log *slog.Logger, signer *kafka.Signer) (kafka.ClientConfig, error) {
	opts, err := o.Kafka.Opts()
	return kafka.ClientConfig{Brokers: o.brokers(), Topics: o.topics(), Logger: log, Signer: signer, ClientOpts: opts}, err
}

// connect waits for a dependency that is down at start the way one that
// fails later is waited for (retry.Default), logging each failure.
func connect[T any](ctx context.Context, log *slog.Logger, what string, f func(context.Context) (T, error)) (T, error) {
	v, err := retry.Value(ctx, retry.Default, f, func(err error, wait time.Duration) {
		log.Warn("cannot reach "+what+" yet; retrying", "err", err, "in", wait)
	})
	if err != nil {
		return v, fmt.Errorf("%s: %w", what, err)
	}
	return v, nil
}

// openDB connects to the role's database, waiting while it is down.
func (o ClusterOptions) openDB(ctx context.Context, log *slog.Logger) (*postgres.DB, error) {
	url := o.DatabaseURL
	if url == "" && o.oracleDSN {
		return nil, errors.New("no database: ORACLE_DSN is set, but dynaprice keeps its data in PostgreSQL: set DATABASE_URL (postgres://user:pass@host:5432/db) or --database; docs/MIGRATING.md maps the tables")
	}
	if url == "" {
		return nil, errors.New("no database: set --database or DATABASE_URL (postgres://user:pass@host:5432/db)")
	}
	return connect(ctx, log, "PostgreSQL", func(ctx context.Context) (*postgres.DB, error) {
		return postgres.Open(ctx, postgres.Config{URL: url, Logger: log})
	})
}

// openRedis connects to Redis, waiting while it is down. order, when not
// nil, sorts listings (see redis.Config.Order).
func openRedis(ctx context.Context, addr, prefix string, order func(context.Context, []string), log *slog.Logger) (*redis.Client, error) {
	return connect(ctx, log, "Redis", func(ctx context.Context) (*redis.Client, error) {
		return redis.Open(ctx, redis.Config{Addr: addr, Prefix: prefix, Order: order, Logger: log})
	})
}

func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

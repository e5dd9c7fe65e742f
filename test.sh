#!/usr/bin/env bash
# Runs every test of dynaprice: the Go suite with the race detector (unit,
# end-to-end HTTP/WebSocket against a real server, kill -9 crash tests,
# scale-out tests against the real PostgreSQL and Redis and an in-process
# Kafka broker, fuzz corpora), then the dashboard's unit and
# headless-Chromium tests. PostgreSQL and Redis are started if they are
# down (scripts/services.sh). Extra arguments go to `go test` (CI passes -v
# to spot skipped tests).
set -euo pipefail
cd "$(dirname "$0")"
eval "$(scripts/services.sh)"
go test -race -count=1 "$@" ./...
./web/ci.sh

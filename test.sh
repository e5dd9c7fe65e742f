#!/usr/bin/env bash
# Runs every test of dynaprice: the Go suite with the race detector (unit,
# end-to-end HTTP/WebSocket against a real server, kill -9 crash tests,
# fuzz corpora), then the dashboard's unit and headless-Chromium tests.
# Extra arguments go to `go test` (CI passes -v to spot skipped tests).
set -euo pipefail
cd "$(dirname "$0")"
go test -race -count=1 "$@" ./...
./web/ci.sh

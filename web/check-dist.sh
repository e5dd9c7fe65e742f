#!/usr/bin/env bash
# Fails when the committed build (internal/dashboard/dist, embedded in the
# binary) differs from a fresh build of web/. The build is deterministic:
# file names carry content hashes, nothing carries a timestamp.
#
#   ./check-dist.sh               npm ci, then build and compare
#   ./check-dist.sh --no-install  use the node_modules already installed by npm ci
set -euo pipefail
cd "$(dirname "$0")"
committed=../internal/dashboard/dist

if [ "${1:-}" != "--no-install" ]; then
	npm ci --no-audit --no-fund
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
DIST_DIR="$tmp/dist" npm run --silent build >"$tmp/build.log" 2>&1 || { cat "$tmp/build.log"; exit 1; }

if ! diff -rq "$tmp/dist" "$committed"; then
	echo
	echo "check-dist: $committed is not the build of web/."
	echo "Run 'npm run build' in web/ and commit internal/dashboard/dist."
	exit 1
fi
echo "check-dist: $committed matches a fresh build ($(find "$committed" -type f | wc -l) files)"

#!/usr/bin/env bash
# CI for the dashboard: the committed API types match docs/openapi.json,
# unit tests, the committed build matches the source, then end-to-end tests
# in Debian's headless Chromium against a real `dynaprice serve` built from
# this repository. Works on a fresh clone;
# exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")"

if [ ! -x /usr/bin/chromium ]; then
	echo "== installing chromium (Debian)"
	sudo=""
	[ "$(id -u)" = 0 ] || sudo=sudo
	export DEBIAN_FRONTEND=noninteractive
	$sudo apt-get update -qq
	$sudo apt-get install -y -qq chromium >/dev/null
fi

echo "== npm ci"
npm ci --no-audit --no-fund

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

echo "== API types (src/api.gen.ts from docs/openapi.json)"
npx --no-install openapi-typescript ../docs/openapi.json -o "$tmp/api.gen.ts" >/dev/null
if ! diff -u src/api.gen.ts "$tmp/api.gen.ts"; then
	echo
	echo "ci: web/src/api.gen.ts is not what docs/openapi.json generates."
	echo "Run 'npm run gen:types' in web/ and commit web/src/api.gen.ts."
	exit 1
fi
echo "src/api.gen.ts is up to date"

echo "== unit tests"
npm test

echo "== committed dist"
./check-dist.sh --no-install

echo "== go build"
(cd .. && go build -o "$tmp/dynaprice" ./cmd/dynaprice)

echo "== end-to-end (chromium $(/usr/bin/chromium --version 2>/dev/null | awk '{print $2}'))"
DYNAPRICE_BIN="$tmp/dynaprice" npx vitest run --config vitest.e2e.config.ts

echo "dashboard CI passed"

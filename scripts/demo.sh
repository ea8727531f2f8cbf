#!/usr/bin/env bash
# `make demo`: start a simulation-mode server on loopback, then run every
# command of docs/first-five-minutes.md against it: info, version, upload
# (the small classifier in testdata/models), list, describe, run on
# examples/demo/features.npy, a signed run and its proof, profiles, the Go
# example, delete; then stop the server.
# Expects `make onnxruntime build` to have run (make demo does both).
set -euo pipefail
cd "$(dirname "$0")/.."

UNTRUSTED=${DEMO_UNTRUSTED_ADDR:-127.0.0.1:50052}
ATTESTED_PORT=${DEMO_ATTESTED_PORT:-50051}
state=$(mktemp -d)
log="$state/server.log"
server_pid=

cleanup() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$state" out run.proof
}
trap cleanup EXIT

# Bold headings on a terminal only: no escape codes in logs and pipes.
if [ -t 1 ]; then bold=$'\033[1m' plain=$'\033[0m'; else bold= plain=; fi
say() { printf '\n%s==> %s%s\n' "$bold" "$*" "$plain"; }

say "starting blindfold-server in simulation mode (state in $state)"
bin/blindfold-server --simulation \
  --untrusted-addr "$UNTRUSTED" --attested-addr "127.0.0.1:$ATTESTED_PORT" \
  --state-dir "$state" \
  >"$log" 2>&1 &
server_pid=$!

for _ in $(seq 1 100); do
  grep -q 'msg=serving' "$log" 2>/dev/null && break
  if ! kill -0 "$server_pid" 2>/dev/null; then
    echo "the server did not start:" >&2; cat "$log" >&2; exit 1
  fi
  sleep 0.1
done
grep -q 'msg=serving' "$log" || { echo "the server did not start in 10 s:" >&2; cat "$log" >&2; exit 1; }

say "what the server printed at start"
cat "$log"

# The connection, as docs/first-five-minutes.md sets it: the attested port
# is the one the server reports. A profile file of the demo's own leaves
# the user's profiles alone.
export BLINDFOLD_ADDR="$UNTRUSTED"
export BLINDFOLD_HOST_CERT="$state/host_server.pem"
export BLINDFOLD_SIMULATION=1
export BLINDFOLD_PROFILES="$state/profiles.toml"
unset BLINDFOLD_PROFILE BLINDFOLD_TOKEN BLINDFOLD_ATTESTED_PORT BLINDFOLD_POLICY BLINDFOLD_QUIET

say "blindfold info"
bin/blindfold info

say "blindfold version (client and server); later commands run with --quiet: a one-line simulation warning"
bin/blindfold version --quiet

say "blindfold upload testdata/models/demo.onnx (prints the model's inputs and outputs)"
bin/blindfold upload testdata/models/demo.onnx --id demo-classifier --quiet

say "blindfold list"
bin/blindfold list --quiet

say "blindfold describe demo-classifier"
bin/blindfold describe demo-classifier --quiet

say "blindfold run demo-classifier on examples/demo/features.npy (two flowers, four features each)"
bin/blindfold run demo-classifier --input features=examples/demo/features.npy --json --quiet

say "a signed run, saved as a proof file, verified offline"
bin/blindfold run demo-classifier --input features=examples/demo/features.npy --sign --proof run.proof --output-dir out --quiet
bin/blindfold proof verify run.proof --allow-simulation --model-id demo-classifier --input examples/demo/features.npy

say "a profile: the address, the pinned certificate fingerprint and the ports, saved once"
bin/blindfold profile save demo --quiet
bin/blindfold profile list

say "blindfold delete demo-classifier"
bin/blindfold delete demo-classifier --quiet

say "the Go example (examples/go): connect, upload, list, signed run, delete"
go run ./examples/go --addr "$BLINDFOLD_ADDR" --host-cert "$BLINDFOLD_HOST_CERT" --model testdata/models/demo.onnx --simulation 2>/dev/null

say "stopping the server (SIGTERM)"
kill -TERM "$server_pid"
wait "$server_pid" || true
server_pid=
tail -n 3 "$log"

say "simulation warnings the server logged (one at start, one per connection)"
grep -c 'SIMULATION MODE' "$log" | xargs printf '%s warnings, e.g.:\n'
grep -m1 'msg="SIMULATION MODE' "$log"
printf '\nDemo finished. Simulation mode protects nothing: see README.md, "Running for real".\n'

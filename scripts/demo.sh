#!/usr/bin/env bash
# `make demo`: start a simulation-mode server on loopback, upload the small
# classifier that ships in testdata/models, run it on examples/demo/features.npy,
# print the result, delete the model and stop the server.
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
  rm -rf "$state"
}
trap cleanup EXIT

say() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

say "starting blindfold-server in simulation mode (state in $state)"
bin/blindfold-server --simulation \
  --untrusted-addr "$UNTRUSTED" --attested-addr "127.0.0.1:$ATTESTED_PORT" \
  --state-dir "$state" --onnxruntime-lib .cache/onnxruntime/libonnxruntime.so.1 \
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

conn=(--simulation --host-cert "$state/host_server.pem" --attested-port "$ATTESTED_PORT")

say "blindfold info"
bin/blindfold info "$UNTRUSTED" "${conn[@]}"

say "blindfold upload testdata/models/demo.onnx"
bin/blindfold upload "$UNTRUSTED" testdata/models/demo.onnx --id demo-classifier "${conn[@]}"

say "blindfold run demo-classifier on examples/demo/features.npy (two flowers, four features each)"
bin/blindfold run "$UNTRUSTED" demo-classifier --input features=examples/demo/features.npy --json "${conn[@]}"

say "blindfold delete demo-classifier"
bin/blindfold delete "$UNTRUSTED" demo-classifier "${conn[@]}"

say "stopping the server (SIGTERM)"
kill -TERM "$server_pid"
wait "$server_pid" || true
server_pid=
tail -n 3 "$log"

say "simulation warnings the server logged (one at start, one per connection)"
grep -c 'SIMULATION MODE' "$log" | xargs printf '%s warnings, e.g.:\n'
grep -m1 'msg="SIMULATION MODE' "$log"
printf '\nDemo finished. Simulation mode protects nothing: see README.md, "Running for real".\n'

#!/usr/bin/env bash
# A/B of the webhook receiver alone: two builds of `examples/webhook_server` (or one build under
# two environments) driven alternately with the load of bench/webhook.sh, each run on a fresh
# store, so that a change is measured against its parent on the same machine at the same moment.
# Prints, per run: requests/s, p50 latency, server CPU per request (user + system time over the
# run) and peak RSS.
#
# Usage: bench/webhook-ab.sh ROUNDS BIN_A BIN_B [ENV_A] [ENV_B]
#   e.g. git stash; cargo build --release --example webhook_server; cp target/release/examples/webhook_server /tmp/a
#        git stash pop; cargo build --release --example webhook_server
#        bench/webhook-ab.sh 4 /tmp/a target/release/examples/webhook_server
#   or one binary under two settings: bench/webhook-ab.sh 3 BIN BIN "" "MALLOC_ARENA_MAX=8"
# Knobs (env): DURATION (8s), CONNECTIONS (32), BAD=1 signs with a wrong secret (the 401 path).
# Needs wrk, openssl and python3 (bench/webhook.sh installs them).
set -euo pipefail

cd "$(dirname "$0")/.."
ROUNDS=${1:?rounds}
BIN_A=${2:?binary A}
BIN_B=${3:?binary B}
ENV_A=${4:-}
ENV_B=${5:-}
DURATION=${DURATION:-8s}
CONNECTIONS=${CONNECTIONS:-32}
PORT=18786
BODY=$PWD/tests/fixtures/github/pull_request.opened.json
SECRET=ab-secret
SIGNED_WITH=$SECRET
if [ -n "${BAD:-}" ]; then SIGNED_WITH=not-$SECRET; fi
SIGNATURE="sha256=$(openssl dgst -sha256 -hmac "$SIGNED_WITH" -r <"$BODY" | cut -d' ' -f1)"
STORE=$(mktemp -d /tmp/sentinel-webhook-ab.XXXXXX)
trap 'rm -rf "$STORE"' EXIT
TICKS=$(getconf CLK_TCK)

# run LABEL BIN ENV: one measured run on a fresh store.
run() {
  local label=$1 bin=$2 env_vars=$3
  rm -rf "$STORE/db"
  # shellcheck disable=SC2086 # ENV is a list of assignments
  env $env_vars SENTINEL_BENCH_SECRETS=$SECRET "$bin" serve "127.0.0.1:$PORT" "$STORE/db" \
    >"$STORE/server.log" 2>&1 &
  local pid=$!
  for _ in $(seq 1 200); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then break; fi
    sleep 0.05
  done
  local before after summary
  before=$(awk '{print $14 + $15}' "/proc/$pid/stat")
  summary=$(BENCH_BODY=$BODY BENCH_SIGNATURE=$SIGNATURE BENCH_RUN="ab-$label-$RANDOM" \
    BENCH_PATH=/webhooks/github wrk -t1 -c"$CONNECTIONS" -d"$DURATION" --timeout 10s \
    -s bench/webhook.lua "http://127.0.0.1:$PORT/webhooks/github" | tail -n 1)
  after=$(awk '{print $14 + $15}' "/proc/$pid/stat")
  local peak
  peak=$(awk '/^VmHWM:/ {print $2}' "/proc/$pid/status")
  kill -TERM "$pid"
  wait "$pid" 2>/dev/null || true
  python3 - "$label" "$summary" "$((after - before))" "$TICKS" "$peak" <<'PY'
import json, sys
label, summary, ticks, hz, peak = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
cpu_us = ticks / hz * 1e6 / max(summary["requests"], 1)
print(f"{label}: {summary['rps']:8.0f} req/s  p50 {summary['p50_ms']:.2f} ms  "
      f"CPU {cpu_us:4.0f} us/request  peak RSS {peak / 1024:.0f} MiB  {summary['statuses']}")
PY
}

for _ in $(seq "$ROUNDS"); do
  run A "$BIN_A" "$ENV_A"
  run B "$BIN_B" "$ENV_B"
done

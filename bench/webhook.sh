#!/usr/bin/env bash
# Benchmark of `POST /webhooks/github`: signed 28 KB GitHub deliveries (the real
# pull_request.opened payload), each with a new delivery id, stored durably (flushed) before the
# 202, driven by wrk on loopback. In the same run and with the same wrk settings, the same
# signed deliveries go to @octokit/webhooks (Node, a no-op handler) and to adnanh/webhook (the
# Debian `webhook` package, a hook checking the same HMAC-SHA256 signature and running
# /bin/true). Then the same load with a bad signature. As a reference for what the machine
# allows, the same load also goes to examples/hmac_floor.rs: the least a receiver can do (read
# the body, check the signature with the receiver's own verifier, answer; nothing stored).
# Reports requests/s, p50/p99 latency, peak RSS of each server, and checks that every delivery
# answered 202 was stored.
#
# Usage: bench/webhook.sh [DURATION] [CONNECTIONS] [WRK_THREADS]   (defaults: 10s 32 1)
# Installs what it needs (wrk, webhook, node/npm, openssl, python3 via apt-get when missing;
# @octokit/webhooks with npm into a temporary directory). Results: stdout and
# target/bench/webhook-results.md.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
DURATION=${1:-10s}
CONNECTIONS=${2:-32}
THREADS=${3:-1}
WARMUP=3s
OCTOKIT_VERSION=14.2.0
BODY=$ROOT/tests/fixtures/github/pull_request.opened.json
LUA=$ROOT/bench/webhook.lua
OUT_DIR=$ROOT/target/bench
PORT_SENTINEL=18787
PORT_OCTOKIT=18788
PORT_ADNANH=18789
PORT_FLOOR=18790

log() { printf '%s\n' "$*" >&2; }

need() {
  local cmd=$1 pkg=$2
  if ! command -v "$cmd" >/dev/null 2>&1; then
    log "installing $pkg"
    if [ -z "${APT_UPDATED:-}" ]; then apt-get update -qq; APT_UPDATED=1; fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$pkg" >/dev/null
  fi
}
need wrk wrk
need webhook webhook
need node nodejs
need npm npm
need openssl openssl
need python3 python3

WORK=$(mktemp -d /tmp/sentinel-webhook-bench.XXXXXX)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

SECRET="bench-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
hmac() { openssl dgst -sha256 -hmac "$1" -r <"$BODY" | cut -d' ' -f1; }
GOOD_SIG="sha256=$(hmac "$SECRET")"
BAD_SIG="sha256=$(hmac "not-$SECRET")"

log "building the receiver (release)"
cargo build --release --quiet --example webhook_server --example hmac_floor
SENTINEL_BIN=$ROOT/target/release/examples/webhook_server
FLOOR_BIN=$ROOT/target/release/examples/hmac_floor

log "installing @octokit/webhooks@$OCTOKIT_VERSION into $WORK/octokit"
mkdir -p "$WORK/octokit"
(cd "$WORK/octokit" && npm init -y >/dev/null &&
  npm install --silent --no-audit --no-fund "@octokit/webhooks@$OCTOKIT_VERSION" >/dev/null)
cat >"$WORK/octokit/server.mjs" <<'JS'
// @octokit/webhooks with a no-op handler; its logger is silenced so that rejected requests
// cost it no console output (its most favourable setting).
import http from "node:http";
import { Webhooks, createNodeMiddleware } from "@octokit/webhooks";
const webhooks = new Webhooks({ secret: process.env.BENCH_SECRET });
webhooks.onAny(() => {});
const silent = { debug() {}, info() {}, warn() {}, error() {} };
const middleware = createNodeMiddleware(webhooks, { path: "/webhooks/github", log: silent });
http.createServer(middleware).listen(Number(process.env.PORT), "127.0.0.1", () => console.log("listening"));
JS

cat >"$WORK/hooks.json" <<JSON
[{
  "id": "github",
  "execute-command": "/bin/true",
  "trigger-rule-mismatch-http-response-code": 401,
  "trigger-rule": {"match": {"type": "payload-hmac-sha256", "secret": "$SECRET",
    "parameter": {"source": "header", "name": "X-Hub-Signature-256"}}}
}]
JSON

wait_port() {
  for _ in $(seq 1 200); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    sleep 0.05
  done
  log "nothing listens on port $1"; return 1
}

# wrk NAME URL SIGNATURE DURATION -> the JSON summary line
load() {
  BENCH_BODY=$BODY BENCH_SIGNATURE=$3 BENCH_RUN="$1-$RANDOM" BENCH_PATH=$(python3 -c 'import sys,urllib.parse as u;print(u.urlparse(sys.argv[1]).path)' "$2") \
    wrk -t"$THREADS" -c"$CONNECTIONS" -d"$4" --timeout 10s -s "$LUA" "$2" | tail -n 1
}

peak_rss_kib() { awk '/^VmHWM:/ {print $2}' "/proc/$1/status"; }

# bench NAME PORT PATH -- command...: starts the server, warms up, measures good then bad.
bench() {
  local name=$1 port=$2 path=$3; shift 4
  log "== $name"
  "$@" >"$WORK/$name.log" 2>&1 &
  local pid=$!
  PIDS+=("$pid")
  wait_port "$port"
  local url="http://127.0.0.1:$port$path"
  local warm good bad rss
  warm=$(load "$name" "$url" "$GOOD_SIG" "$WARMUP")
  good=$(load "$name" "$url" "$GOOD_SIG" "$DURATION")
  rss=$(peak_rss_kib "$pid")
  bad=$(load "$name" "$url" "$BAD_SIG" "$DURATION")
  local rss_all
  rss_all=$(peak_rss_kib "$pid")
  kill -TERM "$pid"
  wait "$pid" 2>/dev/null || true
  printf '{"name": "%s", "warmup": %s, "good": %s, "bad": %s, "peak_rss_kib_good": %s, "peak_rss_kib": %s}\n' \
    "$name" "$warm" "$good" "$bad" "$rss" "$rss_all" >>"$WORK/results.jsonl"
}

bench sentinel "$PORT_SENTINEL" /webhooks/github -- \
  env SENTINEL_BENCH_SECRETS="$SECRET" "$SENTINEL_BIN" serve "127.0.0.1:$PORT_SENTINEL" "$WORK/store"
STORED=$("$SENTINEL_BIN" count "$WORK/store")
bench floor "$PORT_FLOOR" /webhooks/github -- \
  env SENTINEL_BENCH_SECRETS="$SECRET" "$FLOOR_BIN" "127.0.0.1:$PORT_FLOOR"
bench octokit "$PORT_OCTOKIT" /webhooks/github -- \
  env BENCH_SECRET="$SECRET" PORT="$PORT_OCTOKIT" node "$WORK/octokit/server.mjs"
bench adnanh "$PORT_ADNANH" /hooks/github -- \
  webhook -hooks "$WORK/hooks.json" -ip 127.0.0.1 -port "$PORT_ADNANH"

mkdir -p "$OUT_DIR"
python3 - "$WORK/results.jsonl" "$STORED" "$DURATION" "$CONNECTIONS" "$THREADS" "$(du -sk "$WORK/store" | cut -f1)" <<'PY' | tee "$OUT_DIR/webhook-results.md"
import json, os, platform, sys
path, stored, duration, conns, threads, store_kib = sys.argv[1:7]
rows = {r["name"]: r for r in map(json.loads, open(path))}
deliveries, events = map(int, stored.split())
def ok(r): return sum(n for code, n in r["statuses"].items() if code.startswith("2"))
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
print(f"wrk -t{threads} -c{conns} -d{duration}, loopback; {os.cpu_count()} CPUs ({cpu}); body 28,011 bytes\n")
print("| server | good sig req/s | p50 ms | p99 ms | answers | bad sig req/s | p50 ms | p99 ms | answers | peak RSS MiB |")
print("|---|---:|---:|---:|---|---:|---:|---:|---|---:|")
for name, label in [("sentinel", "codegen-sentinel (stored + flushed)"), ("floor", "reference: HMAC check only (hmac_floor)"), ("octokit", "@octokit/webhooks (no-op)"), ("adnanh", "adnanh/webhook (/bin/true)")]:
    r = rows[name]; g, b = r["good"], r["bad"]
    st = lambda x: " ".join(f"{k}×{v}" for k, v in sorted(x["statuses"].items())) + (f" sockerr×{x['socket_errors']}" if x["socket_errors"] else "")
    print(f"| {label} | {g['rps']:.0f} | {g['p50_ms']:.2f} | {g['p99_ms']:.2f} | {st(g)} | {b['rps']:.0f} | {b['p50_ms']:.2f} | {b['p99_ms']:.2f} | {st(b)} | {r['peak_rss_kib']/1024:.1f} |")
s, o, a, f = rows["sentinel"], rows["octokit"], rows["adnanh"], rows["floor"]
answered = ok(s["warmup"]) + ok(s["good"])
print()
print(f"- stored: {deliveries} deliveries and {events} events for {answered} deliveries answered 2xx "
      f"({'all stored' if deliveries >= answered else 'MISSING ' + str(answered - deliveries)}); store {int(store_kib)/1024:.0f} MiB on disk")
def ratio(x, y): return x / y if y else float("inf")
checks = [
    ("good-signature req/s vs octokit", ratio(s["good"]["rps"], o["good"]["rps"]), 1.0),
    ("good-signature req/s vs adnanh/webhook", ratio(s["good"]["rps"], a["good"]["rps"]), 3.0),
    ("bad-signature req/s vs octokit", ratio(s["bad"]["rps"], o["bad"]["rps"]), 3.0),
]
for what, got, target in checks:
    print(f"- {what}: {got:.2f}x (target >= {target:.1f}x: {'met' if got >= target else 'MISSED'})")
print(f"- codegen-sentinel against the HMAC-only reference: {ratio(s['good']['rps'], f['good']['rps']):.2f}x with good signatures "
      f"(it stores and flushes each one), {ratio(s['bad']['rps'], f['bad']['rps']):.2f}x with bad ones; "
      f"3x octokit's bad-signature rate is {ratio(3 * o['bad']['rps'], f['bad']['rps']):.2f}x the reference's")
rss = s["peak_rss_kib"] / 1024
print(f"- codegen-sentinel peak RSS: {rss:.1f} MiB (target <= 64 MiB: {'met' if rss <= 64 else 'MISSED'})")
PY

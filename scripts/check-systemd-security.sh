#!/usr/bin/env bash
# Checks the systemd unit of codegen-sentinel: it must parse cleanly (`systemd-analyze verify`)
# and its sandbox exposure (`systemd-analyze security --offline=yes`) must be at most 2.0.
# Needs no running systemd: both analyses read the unit file. Prints the measured score.
#
# Usage: scripts/check-systemd-security.sh [UNIT_FILE]   (exit 0 pass, 1 fail)
# MAX_EXPOSURE=1.5 scripts/check-systemd-security.sh     tightens the bound.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
unit=${1:-$root/deploy/systemd/codegen-sentinel.service}
max=${MAX_EXPOSURE:-2.0}

if ! command -v systemd-analyze >/dev/null 2>&1; then
    echo "systemd-analyze not found: installing the systemd package" >&2
    if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
        DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends systemd >/dev/null
    else
        echo "error: systemd-analyze is missing and cannot be installed here (need root and apt-get)" >&2
        exit 1
    fi
fi
[ -f "$unit" ] || { echo "error: no unit file at $unit" >&2; exit 1; }

echo "unit: $unit ($(systemd-analyze --version | head -n1))"

# 1. Syntax. `verify` also insists that ExecStart's binary exists, which it does not on a
# build machine, so the check runs on a copy whose ExecStart points at /bin/true. Any output
# (an unknown key, a bad value) counts as a failure: systemd only warns and carries on.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
name=$(basename "$unit")
sed -E 's#^(ExecStart=)[^ ]+#\1/bin/true#' "$unit" >"$tmp/$name"
if ! out=$(systemd-analyze verify --man=no "$tmp/$name" 2>&1) || [ -n "$out" ]; then
    echo "FAIL: systemd-analyze verify reported problems:" >&2
    printf '%s\n' "${out//$tmp\//}" >&2
    exit 1
fi
echo "verify: clean"

# 2. Exposure. --threshold counts in tenths; the printed score is parsed as well so that the
# figure appears in the output whatever the verdict.
threshold=$(awk -v m="$max" 'BEGIN { printf "%d", m * 10 + 0.5 }')
set +e
report=$(systemd-analyze security --offline=yes --threshold="$threshold" "$unit" 2>&1)
status=$?
set -e
score=$(printf '%s\n' "$report" | sed -nE 's/.*Overall exposure level for [^:]+: ([0-9]+\.[0-9]+).*/\1/p' | tail -n1)
if [ -z "$score" ]; then
    printf '%s\n' "$report" >&2
    echo "FAIL: could not read the exposure level" >&2
    exit 1
fi
# The settings that still cost something, for whoever wants to lower the score further.
printf '%s\n' "$report" | awk '/^✗/ { $1 = ""; sub(/^ +/, ""); print "  open: " $0 }'
if [ "$status" -ne 0 ] || awk -v s="$score" -v m="$max" 'BEGIN { exit !(s > m) }'; then
    echo "FAIL: exposure $score is above $max"
    exit 1
fi
echo "PASS: exposure $score (at most $max)"

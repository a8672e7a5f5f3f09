#!/usr/bin/env bash
# The gateway's load test (docs/performance.md): the gateway over a pre-rendered mock image and
# a bare axum handler answering the same bytes, side by side, on loopback, with `hey` (a Debian
# package: apt-get install hey) at fixed rates, 10 s each.
#   cargo build --release -p imagegate-server --example loadtarget
#   bash crates/server/examples/loadtest.sh [RATES...]
set -euo pipefail
cd "$(dirname "$0")/../../.."
BIN=${LOADTARGET:-target/release/examples/loadtarget}
DURATION=${DURATION:-10s}
RATES=("${@:-500 1000 2000 5000}")
BODY='{"model": "gpt-image-1", "prompt": "a lighthouse"}'
declare -A URLS PIDS
for mode in bare gateway; do
  out=$(mktemp)
  "$BIN" "$mode" 127.0.0.1:0 0.5K >"$out" 2>/dev/null &
  PIDS[$mode]=$!
  until [ -s "$out" ]; do sleep 0.05; done
  URLS[$mode]=$(head -1 "$out" | sed 's/^listening on //')
done
trap 'kill ${PIDS[bare]} ${PIDS[gateway]}' EXIT
printf '%-8s %6s %9s %9s %9s %8s\n' server rate achieved p50_ms p99_ms errors
for rate in ${RATES[@]}; do
  for mode in bare gateway; do
    # hey's -q is per worker: 50 workers at rate/50 each (100 and 200 workers from 2,000 and 5,000).
    workers=50; [ "$rate" -ge 2000 ] && workers=100; [ "$rate" -ge 5000 ] && workers=200
    report=$(hey -z "$DURATION" -c "$workers" -q $((rate / workers)) -m POST \
      -T application/json -d "$BODY" "${URLS[$mode]}/v1/images/generations")
    achieved=$(awk '/Requests\/sec/ {print $2}' <<<"$report")
    p50=$(awk '/ 50%% in/ || / 50% in/ {print $3 * 1000}' <<<"$report")
    p99=$(awk '/ 99% in/ {print $3 * 1000}' <<<"$report")
    errors=$(awk '/\[2[0-9][0-9]\]/ {ok += $2} /\[[345][0-9][0-9]\]/ {bad += $2} END {print bad + 0}' <<<"$report")
    printf '%-8s %6s %9s %9.2f %9.2f %8s\n' "$mode" "$rate" "$achieved" "$p50" "$p99" "$errors"
  done
done

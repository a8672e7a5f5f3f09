#!/usr/bin/env bash
# The gateway's load test (docs/performance.md): the gateway over a pre-rendered 0.5K mock image
# and a bare axum handler answering the same bytes, side by side on loopback, driven by `oha`
# (crates.io: cargo install oha) at fixed rates with coordinated-omission correction.
#   cargo build --release -p imagegate-server --example loadtarget
#   bash crates/server/examples/loadtest.sh            # the four rates, 10 s each
#   bash crates/server/examples/loadtest.sh ladder     # the highest rate with p99 under 10 ms
set -euo pipefail
cd "$(dirname "$0")/../../.."
BIN=${LOADTARGET:-target/release/examples/loadtarget}
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

# run MODE RATE DURATION -> "achieved p50_ms p99_ms non_2xx"
run() {
  oha --no-tui -z "$3" -c 64 -q "$2" --latency-correction -m POST -T application/json \
    -d "$BODY" --output-format json "${URLS[$1]}/v1/images/generations" |
    python3 -c '
import json, sys
d = json.load(sys.stdin)
codes = d.get("statusCodeDistribution", {})
# Requests still open when the run ends are "aborted due to deadline": not errors.
errors = d.get("errorDistribution", {})
bad = sum(n for c, n in codes.items() if not c.startswith("2")) + sum(n for e, n in errors.items() if "deadline" not in e)
p = d["latencyPercentiles"]
rps = d["summary"]["requestsPerSec"]
print("%.0f %.3f %.3f %d" % (rps, p["p50"] * 1000, p["p99"] * 1000, bad))'
}

if [ "${1:-}" = ladder ]; then
  printf '%-8s %7s %9s %8s %8s %6s\n' server rate achieved p50_ms p99_ms errors
  for mode in bare gateway; do
    for rate in 5000 10000 15000 20000 25000 30000 40000 50000 60000 80000; do
      read -r achieved p50 p99 bad < <(run "$mode" "$rate" 5s)
      printf '%-8s %7s %9s %8s %8s %6s\n' "$mode" "$rate" "$achieved" "$p50" "$p99" "$bad"
      if awk -v p="$p99" -v a="$achieved" -v r="$rate" 'BEGIN {exit !(p >= 10 || a < 0.95 * r)}'; then
        break
      fi
    done
  done
  exit 0
fi

printf '%-8s %7s %9s %8s %8s %6s\n' server rate achieved p50_ms p99_ms errors
for rate in 500 1000 2000 5000; do
  for mode in bare gateway; do
    read -r achieved p50 p99 bad < <(run "$mode" "$rate" 10s)
    printf '%-8s %7s %9s %8s %8s %6s\n' "$mode" "$rate" "$achieved" "$p50" "$p99" "$bad"
  done
done

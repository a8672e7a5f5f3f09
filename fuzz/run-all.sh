#!/usr/bin/env bash
# Runs every fuzz target (docs/testing.md, "Fuzzing").
#
#   fuzz/run-all.sh short           each target for SHORT_SECONDS (default 5), built unoptimised:
#                                   CI's smoke run
#   fuzz/run-all.sh long [RUNS]     each target for RUNS executions (default 10000000), one at a
#                                   time (JOBS=2 for two at once), niced, at most MAX_SECONDS each
#                                   when set; logs and a summary table under fuzz/runs/<UTC time>/
#   fuzz/run-all.sh build           only builds the targets (optimised) and the seed corpus
#
# TARGETS="hints config" limits a run to those targets. The corpus grows in fuzz/corpus/<target>
# (seeded from the repository by `seed`, see input/src/bin/seed.rs); a crash is written to
# fuzz/artifacts/<target>/ and fails the run; replay one with the target's binary and the file.
#
# Needs cargo-fuzz (`cargo install cargo-fuzz --locked`). It runs on the stable toolchain:
# RUSTC_BOOTSTRAP=1 lets cargo-fuzz pass its -Z flags, and `--sanitizer none` builds without
# AddressSanitizer (every crate here forbids unsafe code; libFuzzer's coverage guidance, overflow
# checks and debug assertions stay on).
set -euo pipefail
cd "$(dirname "$0")"

mode="${1:-short}"
runs="${2:-10000000}"
export RUSTC_BOOTSTRAP=1
FUZZ_FLAGS=(--sanitizer none)

all_targets=(gemini_response openrouter_response openai_response vertex_response
  google_rpc_status hints openrouter_key config emulator_config scenario batch_input
  batch_journal gateway_request)
read -r -a targets <<<"${TARGETS:-${all_targets[*]}}"

dict_for() {
  case "$1" in
    gemini_response | vertex_response | google_rpc_status) echo google ;;
    openrouter_response | openrouter_key) echo openrouter ;;
    openai_response) echo openai ;;
    hints) echo hints ;;
    config | emulator_config | scenario) echo config ;;
    batch_input | batch_journal) echo batch ;;
    gateway_request) echo gateway ;;
    *) echo "no dictionary for $1" >&2; exit 2 ;;
  esac
}

echo "== fuzz: seed corpus from the repository's fixtures and docs"
cargo run --quiet --locked -p imagegate-fuzz-input --bin seed -- .. corpus

# The smoke run builds unoptimised (half the CPU time of a release build, which matters on CI's
# two cores; a few seconds of fuzzing need no speed); long runs build optimised.
if [ "$mode" = short ]; then
  FUZZ_FLAGS+=(--dev)
  profile=debug
else
  profile=release
fi
echo "== fuzz: build ($profile, $(date -u +%T))"
build_start=$(date +%s)
cargo fuzz build "${FUZZ_FLAGS[@]}"
echo "built in $(($(date +%s) - build_start))s"
BIN_DIR="${CARGO_TARGET_DIR:-$PWD/target}/$(rustc -vV | sed -n 's/^host: //p')/$profile"
export BIN_DIR
[ "$mode" = build ] && exit 0

# One target: its log, then "target executions cov ft corpus seconds" on stdout.
run_one() {
  local target="$1" log="$2"
  shift 2
  local start end
  start=$(date +%s)
  mkdir -p "corpus/$target" "artifacts/$target"
  # The binary itself, not `cargo fuzz run`: that rebuilds everything with other flags to
  # print a crash's input, and the next target then rebuilds everything again.
  if ! "$BIN_DIR/$target" "corpus/$target" -artifact_prefix="artifacts/$target/" \
    -dict="dict/$(dict_for "$target").dict" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 "$@" >"$log" 2>&1; then
    echo "fuzz target $target FAILED; from its log ($log):" >&2
    grep -a -A 3 -m 1 'panicked at\|ERROR: libFuzzer' "$log" | cut -c 1-2000 >&2 || true
    grep -a 'Test unit written to' "$log" >&2 || tail -n 20 "$log" >&2
    echo "replay it: $BIN_DIR/$target <that file>" >&2
    return 1
  fi
  end=$(date +%s)
  local execs cov ft corp
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1 | cut -d' ' -f2)
  ft=$(grep -o 'ft: [0-9]*' "$log" | tail -n 1 | cut -d' ' -f2)
  corp=$(grep -o 'corp: [0-9]*' "$log" | tail -n 1 | cut -d' ' -f2)
  echo "$target ${execs:-?} ${cov:-?} ${ft:-?} ${corp:-?} $((end - start))"
}

case "$mode" in
  short)
    seconds="${SHORT_SECONDS:-5}"
    logs="$(mktemp -d)"
    for target in "${targets[@]}"; do
      run_one "$target" "$logs/$target.log" -max_total_time="$seconds"
    done
    rm -rf "$logs"
    ;;
  long)
    out="runs/$(date -u +%Y%m%dT%H%M%SZ)"
    mkdir -p "$out"
    jobs="${JOBS:-1}"
    echo "== fuzz: $runs executions per target${MAX_SECONDS:+ (at most ${MAX_SECONDS}s each)}, $jobs at a time; logs in fuzz/$out"
    export -f run_one dict_for
    printf '%s\n' "${targets[@]}" |
      xargs -P "$jobs" -I{} nice -n 19 bash -c 'run_one "$1" "$2/$1.log" -runs="$3" ${4:+-max_total_time=$4}' \
        _ {} "$out" "$runs" "${MAX_SECONDS:-}" |
      tee "$out/summary.txt"
    {
      echo "| target | executions | cov | ft | corpus | seconds |"
      echo "|---|---:|---:|---:|---:|---:|"
      while read -r target execs cov ft corp secs; do
        echo "| $target | $execs | $cov | $ft | $corp | $secs |"
      done <"$out/summary.txt"
    } >"$out/summary.md"
    cat "$out/summary.md"
    test "$(wc -l <"$out/summary.txt")" -eq "${#targets[@]}"
    ;;
  build) ;;
  *)
    echo "usage: fuzz/run-all.sh short|long [RUNS]|build" >&2
    exit 2
    ;;
esac

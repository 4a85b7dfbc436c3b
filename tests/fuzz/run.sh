#!/usr/bin/env bash
# Builds the libFuzzer targets with clang-14 (ASan + UBSan) and runs each for N seconds.
# Usage: tests/fuzz/run.sh [seconds-per-target, default 60] [build dir, default build-fuzz]
# Prints the executions each target reached; exits non-zero on the first crash.
set -euo pipefail
seconds=${1:-60}
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${2:-$root/build-fuzz}
CC=clang-14 CXX=clang++-14 cmake -S "$root" -B "$build" -G Ninja -DEDGED_FUZZ=ON -DEDGED_BENCH=OFF \
  -DEDGED_CUDA=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" --target unpi_fuzz zcl_fuzz -j"${JOBS:-2}"
for t in unpi zcl; do
  work=$(mktemp -d)
  cp "$root/tests/fuzz/corpus/$t/"* "$work/" 2>/dev/null || true
  echo "== $t: ${seconds}s"
  rc=0
  "$build/tests/fuzz/${t}_fuzz" -max_total_time="$seconds" -print_final_stats=1 -max_len=512 \
    "$work" >"$work.log" 2>&1 || rc=$?
  grep -E "stat::number_of_executed_units|ERROR|SUMMARY|Done" "$work.log" || true
  if [ "$rc" -ne 0 ]; then tail -40 "$work.log"; exit "$rc"; fi
  rm -f "$work.log"
  rm -rf "$work"
done

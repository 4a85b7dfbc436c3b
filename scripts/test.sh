#!/usr/bin/env bash
# The test command (README and CI): configure, build everything, run every test with CTest.
# Usage: scripts/test.sh [build-dir]   (default: build). Extra CMake flags via EDGED_CMAKE_FLAGS.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
jobs=${EDGED_JOBS:-$(nproc)}
# shellcheck disable=SC2086
cmake -S . -B "$build" -G Ninja ${EDGED_CMAKE_FLAGS:-}
cmake --build "$build" -j "$jobs"
ctest --test-dir "$build" --output-on-failure -j "$jobs" --timeout 600

#!/usr/bin/env bash
# CI checks that need more than one ctest run on the main build:
#   1. the .deb from that build installs on this (clean Debian 12) machine, and its unit verifies;
#   2. every libFuzzer target runs for a bounded time without a crash;
#   3. the protocol, MQTT, config and daemon tests pass again under ASan + UBSan.
# Usage: tests/ci/after-build.sh BUILD_DIR
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:?usage: after-build.sh BUILD_DIR}
jobs=${EDGED_JOBS:-2}
section() { printf '\n=== %s (%ss since start)\n' "$1" "$SECONDS"; }

section "package: build and install the .deb"
"$root/tests/deploy/deb-install.sh" "$build"

section "fuzz: each target ${EDGED_FUZZ_SECONDS:-30}s"
JOBS=$jobs "$root/tests/fuzz/run.sh" "${EDGED_FUZZ_SECONDS:-30}" "$root/build-fuzz"

section "sanitizers: ASan + UBSan"
# OpenCV-heavy camera tests are left to the main run: they add build time, not protocol coverage.
sanitized_tests='^(Config|Mqtt|Edge|Zigbee|DeviceQueues|Serial|Bridge|Storage|Labels|Usb|Inventory)'
cmake -S "$root" -B "$root/build-asan" -G Ninja -DEDGED_ASAN=ON -DEDGED_UBSAN=ON -DEDGED_BENCH=OFF \
  -DEDGED_CUDA=OFF -DCMAKE_BUILD_TYPE=Debug >/dev/null
targets=$(cmake --build "$root/build-asan" --target help | sed -n 's/^\([a-z_]*_test\): .*/\1/p' |
          grep -Ev '^(detect|capture|motion|regions|detector|tracker|events|pipeline)' | tr '\n' ' ')
# shellcheck disable=SC2086
cmake --build "$root/build-asan" -j "$jobs" --target edged edged-zsim $targets
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir "$root/build-asan" -R "$sanitized_tests" --output-on-failure -j "$jobs" --timeout 600
section "after-build checks passed"

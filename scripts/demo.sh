#!/usr/bin/env bash
# The demo: builds edged, starts a local mosquitto on 127.0.0.1:1883 (unless a broker already listens
# there), and runs edged on config/examples/demo.yaml — simulated Zigbee network, the sample video with
# CPU detection, storage health of this machine. Ctrl-C stops both.
# Watch it: mosquitto_sub -h 127.0.0.1 -t 'zigbee2mqtt/#' -t 'frigate/#' -t 'homeassistant/#' -v
#           curl -s http://127.0.0.1:9822/metrics ; curl -s http://127.0.0.1:9822/readyz
set -euo pipefail
cd "$(dirname "$0")/.."
build=${EDGED_BUILD:-build}
if [ ! -x "$build/edge/edged" ]; then
  cmake -S . -B "$build" -G Ninja -DEDGED_TESTS=OFF -DEDGED_BENCH=OFF
  cmake --build "$build" -j "$(nproc)" --target edged
else
  cmake --build "$build" -j "$(nproc)" --target edged
fi

broker_pid=""
cleanup() { [ -n "$broker_pid" ] && kill "$broker_pid" 2>/dev/null || true; }
trap cleanup EXIT
if ! (exec 3<>/dev/tcp/127.0.0.1/1883) 2>/dev/null; then
  conf=$(mktemp /tmp/edged-demo-mosquitto.XXXXXX.conf)
  printf 'listener 1883 127.0.0.1\nallow_anonymous true\npersistence false\nlog_dest none\n' >"$conf"
  mosquitto -c "$conf" &
  broker_pid=$!
  for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/1883) 2>/dev/null && break; sleep 0.1; done
  echo "demo: started mosquitto on 127.0.0.1:1883 (pid $broker_pid)"
fi
"$build/edge/edged" --config config/examples/demo.yaml "$@"

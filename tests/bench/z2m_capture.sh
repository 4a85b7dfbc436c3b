#!/usr/bin/env bash
# Runs zigbee2mqtt (tests/peers-z2m, `npm ci` there first) against edged-zsim on a private mosquitto,
# permits joining, and writes the last payload per topic to tests/bridge/fixtures/z2m-*-edged-zsim.txt,
# the reference the Bridge compatibility test compares edged's payloads with. Not part of CI: it needs
# node and the npm packages. Usage: tests/bench/z2m_capture.sh <build-dir> [seconds]
set -euo pipefail
build=${1:?usage: $0 <build-dir> [seconds]}
seconds=${2:-30}
repo=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
mqtt_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
printf 'listener %s 127.0.0.1\nallow_anonymous true\n' "$mqtt_port" > "$work/mosquitto.conf"
/usr/sbin/mosquitto -c "$work/mosquitto.conf" > "$work/mosquitto.log" 2>&1 & pids+=($!)
zsim_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$build/drivers/zigbee/edged-zsim" --tcp "$zsim_port" --report-interval 5 > "$work/zsim.log" 2>&1 & pids+=($!)
sleep 1
mkdir -p "$work/data"
cat > "$work/data/configuration.yaml" <<YAML
version: 4
homeassistant: {enabled: true}
mqtt: {base_topic: zigbee2mqtt, server: "mqtt://127.0.0.1:$mqtt_port"}
serial: {port: "tcp://127.0.0.1:$zsim_port", adapter: zstack}
advanced:
  network_key: [1, 3, 5, 7, 9, 11, 13, 15, 0, 2, 4, 6, 8, 10, 12, 13]
  pan_id: 6754
  ext_pan_id: [221, 221, 221, 221, 221, 221, 221, 221]
  channel: 11
  log_output: [console]
frontend: {enabled: false}
availability: {enabled: true}
YAML
mosquitto_sub -p "$mqtt_port" -v -t '#' > "$work/capture.txt" 2>/dev/null & pids+=($!)
# Run from outside any git checkout: zigbee2mqtt's index.js compares `git rev-parse HEAD` of the
# current directory with its dist hash and tries to rebuild (with pnpm) when they differ.
(cd "$work" && ZIGBEE2MQTT_DATA="$work/data" exec node "$repo/tests/peers-z2m/node_modules/zigbee2mqtt/index.js") \
  > "$work/z2m.log" 2>&1 & pids+=($!)
for _ in $(seq 60); do grep -q '"state":"online"' "$work/capture.txt" && break; sleep 0.5; done
mosquitto_pub -p "$mqtt_port" -t zigbee2mqtt/bridge/request/permit_join -m '{"time":120}'
sleep "$seconds"
version=$(node -p "require('$repo/tests/peers-z2m/node_modules/zigbee2mqtt/package.json').version")
out="$repo/tests/bridge/fixtures/z2m-$version-edged-zsim.txt"
python3 - "$work/capture.txt" "$out" "$version" <<'PY'
import json, sys
src, out, version = sys.argv[1:]
last, events = {}, []
skip = ('bridge/definitions', 'bridge/logging', 'bridge/converters', 'bridge/extensions', 'bridge/request/permit_join')
for line in open(src, encoding='utf-8', errors='replace'):
    line = line.rstrip('\n')
    if ' ' not in line: continue
    topic, payload = line.split(' ', 1)
    if topic.endswith(skip): continue
    if topic == 'zigbee2mqtt/bridge/event': events.append(payload); continue
    if topic == 'zigbee2mqtt/bridge/info':
        d = json.loads(payload); d.pop('config_schema', None); d.pop('os', None)
        d['config'] = {'homeassistant': d['config'].get('homeassistant'), 'mqtt': {'base_topic': 'zigbee2mqtt'}}
        payload = json.dumps(d, sort_keys=True, separators=(',', ':'), ensure_ascii=False)
    last[topic] = payload
with open(out, 'w') as f:
    f.write(f'# zigbee2mqtt {version} (tests/peers-z2m) against edged-zsim with the five default devices, captured by\n')
    f.write('# tests/bench/z2m_capture.sh: the last payload per topic ("topic payload" per line), then bridge/event lines.\n')
    for t in sorted(last): f.write(f'{t} {last[t]}\n')
    for e in events: f.write(f'zigbee2mqtt/bridge/event {e}\n')
PY
echo "wrote $out"

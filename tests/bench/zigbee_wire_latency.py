#!/usr/bin/env python3
"""Splits zigbee_e2e_bench's report -> MQTT latency into its hops, from a packet capture of loopback.

The bench measures end to end: from the simulated coordinator's write to the moment an independent
subscriber reads the state message. That sum includes two hops that are not the bridge's: the broker
routing the message and the subscriber waking up. This script takes a capture of the same run and, for
every matched report, finds the three packets of its way:

    coordinator frame on the wire -> bridge's PUBLISH to the broker -> broker's PUBLISH to the subscriber

so "bridge" below is the time the bridge held the report (its wake-up, decoding, conversion, JSON and
MQTT send), the same clock for both peers.

    tcpdump -i lo -w /tmp/e2e.pcap -s 0 -B 65536 &
    build/tests/bench/zigbee_e2e_bench --devices 200 --seconds 60 --samples /tmp/lat-
    kill %1
    python3 tests/bench/zigbee_wire_latency.py /tmp/e2e.pcap /tmp/lat-edged.txt /tmp/lat-zigbee2mqtt.txt

Each samples file is "sent_ns latency_ms 0x<ieee>" per report (the bench's --samples). Standard
library only; reads pcap files with Ethernet framing (tcpdump on lo).
"""
import bisect
import collections
import re
import struct
import sys

ZNP_SOF = 0xFE
AF_INCOMING_MSG = (0x44, 0x81)
ZDO_END_DEVICE_ANNCE_IND = (0x45, 0xC1)
TEMPERATURE_CLUSTER = 0x0402
STATE_RE = re.compile(rb'/(0x[0-9a-f]{16})\x00?\{[^}]*"temperature":(-?[0-9.]+)')


def read_segments(path):
    """Yields (time, sport, dport, payload) for every TCP segment with a payload."""
    with open(path, 'rb') as f:
        magic = f.read(24)[:4]
        if magic not in (b'\xd4\xc3\xb2\xa1', b'\x4d\x3c\xb2\xa1'):
            sys.exit(f'{path}: not a little-endian pcap file (pcapng is not read; use tcpdump -w)')
        nanos = magic == b'\x4d\x3c\xb2\xa1'
        while True:
            header = f.read(16)
            if len(header) < 16:
                return
            sec, frac, caplen, _ = struct.unpack('<IIII', header)
            frame = f.read(caplen)
            if len(frame) < 34 or frame[12:14] != b'\x08\x00':
                continue
            ip = frame[14:]
            if ip[9] != 6:
                continue
            tcp = ip[(ip[0] & 15) * 4:]
            sport, dport = struct.unpack('>HH', tcp[:4])
            payload = tcp[(tcp[12] >> 4) * 4:]
            if payload:
                yield sec + frac / (1e9 if nanos else 1e6), sport, dport, payload


def znp_frames(payload):
    """(cmd0, cmd1, body) of each whole ZNP frame in one segment."""
    i = 0
    while i + 5 <= len(payload):
        if payload[i] != ZNP_SOF:
            i += 1
            continue
        length = payload[i + 1]
        yield payload[i + 2], payload[i + 3], payload[i + 4:i + 4 + length]
        i += 5 + length


def quantile(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * q))] if values else float('nan')


def main(pcap, sample_files):
    segments = list(read_segments(pcap))
    # The coordinator's port: the one whose segments are ZNP frames.
    starts = collections.Counter(sp for _, sp, _, pl in segments if pl[0] == ZNP_SOF)
    coordinator_ports = {port for port, n in starts.items() if n > 100}
    nwk_of = {}
    temperature_frames = []  # (time, nwk, value in 0.01 degC)
    publishes = collections.defaultdict(list)  # ieee -> [(time, sport, dport, value)]
    for t, sp, dp, pl in segments:
        if sp in coordinator_ports:
            for cmd0, cmd1, body in znp_frames(pl):
                if (cmd0, cmd1) == ZDO_END_DEVICE_ANNCE_IND and len(body) >= 12:
                    nwk_of['0x%016x' % struct.unpack('<Q', body[4:12])[0]] = struct.unpack('<H', body[2:4])[0]
                elif (cmd0, cmd1) == AF_INCOMING_MSG and len(body) >= 6:
                    zcl = body[17:]  # after the AF header; a report: control, seq, command, id, type, value
                    if struct.unpack('<H', body[2:4])[0] == TEMPERATURE_CLUSTER and len(zcl) >= 8:
                        centi = struct.unpack('<h', zcl[6:8])[0]
                        temperature_frames.append((t, struct.unpack('<H', body[4:6])[0], centi))
        elif dp not in coordinator_ports:
            for m in STATE_RE.finditer(pl):
                publishes[m.group(1).decode()].append((t, sp, dp, m.group(2).decode()))
    frame_times = [t for t, _, _ in temperature_frames]

    print('| peer | hop | p50 ms | p90 ms | p99 ms | samples |')
    print('|---|---|---|---|---|---|')
    for path in sample_files:
        peer = path.rsplit('-', 1)[-1].removesuffix('.txt')
        hops = collections.defaultdict(list)
        for line in open(path):
            sent_ns, latency_ms, ieee = line.split()
            sent = int(sent_ns) / 1e9
            nwk = nwk_of.get(ieee)
            j = bisect.bisect_left(frame_times, sent - 0.001)
            frame = next(((t, c) for t, n, c in temperature_frames[j:j + 2000] if n == nwk and t < sent + 0.05), None)
            if frame is None:
                continue
            wire_in, centi = frame
            # The first state that carries the new value (states of earlier frames may still be on the way).
            ways = sorted(p for p in publishes.get(ieee, [])
                          if wire_in <= p[0] < wire_in + 0.5 and abs(float(p[3]) * 100 - centi) < 0.6)
            if not ways:
                continue
            bridge_out = ways[0]  # the bridge's PUBLISH to the broker
            broker_port, bridge_port, value = bridge_out[2], bridge_out[1], bridge_out[3]
            to_subscriber = next((p for p in ways if p[1] == broker_port and p[2] != bridge_port and p[3] == value),
                                 None)
            if to_subscriber is None:
                continue
            bridge = (bridge_out[0] - wire_in) * 1e3
            broker = (to_subscriber[0] - bridge_out[0]) * 1e3
            hops['bridge: coordinator frame in -> PUBLISH out'].append(bridge)
            hops['broker: PUBLISH in -> PUBLISH to the subscriber'].append(broker)
            hops['subscriber: wake-up and read (the rest)'].append(float(latency_ms) - bridge - broker)
            hops['end to end (the bench)'].append(float(latency_ms))
        for hop, values in hops.items():
            print(f'| {peer} | {hop} | {quantile(values, .5):.3f} | {quantile(values, .9):.3f} | '
                  f'{quantile(values, .99):.3f} | {len(values)} |')


if __name__ == '__main__':
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2:])

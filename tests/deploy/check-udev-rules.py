#!/usr/bin/env python3
"""Checks systemd/99-edged-zigbee.rules without udevd: Debian 12's systemd 252 has no `udevadm verify`
(added in 254), and `udevadm test` needs the rule installed in /etc. So this:
  1. parses the file with udev(7)'s grammar: KEY[{attr}] OP "value", comma separated; known keys only,
     match operators (== !=) only on keys that can match, assignments (= += -= :=) only on keys that can
     be assigned, LABEL/GOTO pairs consistent;
  2. evaluates the rules (the subset udev semantics they use: ==/!= with globs and | alternatives,
     ATTRS on one parent, ENV, GOTO/LABEL, SYMLINK+=, GROUP, MODE) against simulated devices: every
     Zigbee stick gets /dev/zigbee and group dialout, a plain USB-serial bridge does not;
  3. checks every VID:PID of drivers/usb/coordinators.cc appears in a rule.
When udevadm has `verify` (systemd >= 254) it is run as well.
Usage: check-udev-rules.py RULES [COORDINATORS.cc]"""
import fnmatch
import os
import re
import shutil
import subprocess
import sys

MATCH_ONLY = {"ACTION", "DEVPATH", "KERNEL", "KERNELS", "SUBSYSTEM", "SUBSYSTEMS", "DRIVER", "DRIVERS",
              "ATTRS", "TAGS", "TEST", "PROGRAM", "RESULT", "CONST"}
BOTH = {"NAME", "SYMLINK", "ATTR", "SYSCTL", "ENV", "TAG", "IMPORT"}
ASSIGN_ONLY = {"OWNER", "GROUP", "MODE", "SECLABEL", "RUN", "LABEL", "GOTO", "OPTIONS"}
WITH_ATTR = {"ATTR", "ATTRS", "SYSCTL", "ENV", "TEST", "CONST", "SECLABEL", "IMPORT", "RUN"}
NEED_ATTR = {"ATTR", "ATTRS", "SYSCTL", "ENV", "CONST", "SECLABEL", "IMPORT"}
TOKEN = re.compile(r'\s*([A-Z_]+)(?:\{([^}]*)\})?\s*(==|!=|\+=|-=|:=|=)\s*"((?:[^"\\]|\\.)*)"\s*')


class RuleError(Exception):
    pass


def parse(path):
    """Returns [(line_number, [(key, attr, op, value), ...]), ...]; raises RuleError."""
    rules, buf, start = [], "", 0
    with open(path) as f:
        lines = f.read().split("\n")
    for n, raw in enumerate(lines, 1):
        if not buf:
            start = n
        if raw.endswith("\\"):
            buf += raw[:-1]
            continue
        line, buf = (buf + raw).strip(), ""
        if not line or line.startswith("#"):
            continue
        pos, tokens = 0, []
        while pos < len(line):
            m = TOKEN.match(line, pos)
            if not m:
                raise RuleError(f"{path}:{start}: cannot parse at column {pos + 1}: {line[pos:pos + 40]!r}")
            key, attr, op, value = m.groups()
            where = f"{path}:{start}: {key}"
            if key not in MATCH_ONLY | BOTH | ASSIGN_ONLY:
                raise RuleError(f"{where}: unknown key")
            if attr is not None and key not in WITH_ATTR:
                raise RuleError(f"{where}: takes no {{attribute}}")
            if attr is None and key in NEED_ATTR:
                raise RuleError(f"{where}: needs a {{attribute}}")
            if op in ("==", "!=") and key in ASSIGN_ONLY:
                raise RuleError(f"{where}: cannot be matched with {op}")
            if op not in ("==", "!=") and key in MATCH_ONLY:
                raise RuleError(f"{where}: cannot be assigned with {op}")
            if key in ("LABEL", "GOTO") and op != "=":
                raise RuleError(f"{where}: only '=' is allowed")
            if key == "MODE" and not re.fullmatch(r"0?[0-7]{3}", value):
                raise RuleError(f"{where}: mode {value!r} is not octal")
            if key in ("ATTRS", "ATTR") and attr in ("idVendor", "idProduct") and op == "==" \
                    and not re.fullmatch(r"[0-9a-f]{4}", value):
                raise RuleError(f"{where}{{{attr}}}: {value!r} must be 4 lower-case hex digits as sysfs shows it")
            tokens.append((key, attr, op, value))
            pos = m.end()
            if pos < len(line):
                if line[pos] != ",":
                    raise RuleError(f"{path}:{start}: expected ',' at column {pos + 1}")
                pos += 1
                if pos >= len(line.rstrip()):
                    raise RuleError(f"{path}:{start}: trailing ','")
        rules.append((start, tokens))
    labels = [v for _, toks in rules for k, _, _, v in toks if k == "LABEL"]
    if len(labels) != len(set(labels)):
        raise RuleError(f"{path}: duplicate LABEL")
    for n, toks in rules:
        for k, _, _, v in toks:
            if k == "GOTO" and v not in labels:
                raise RuleError(f"{path}:{n}: GOTO=\"{v}\" has no LABEL")
    return rules


def glob_match(pattern, value):
    return any(fnmatch.fnmatchcase(value, p) for p in pattern.split("|"))


def evaluate(rules, dev):
    """Runs the rules on a simulated tty device: dev = {SUBSYSTEM, ACTION, ATTRS: {..}, ENV: {..}}."""
    out = {"SYMLINK": [], "GROUP": None, "MODE": None, "ENV": dict(dev.get("ENV", {}))}
    label_at = {v: i for i, (_, toks) in enumerate(rules) for k, _, _, v in toks if k == "LABEL"}
    i = 0
    while i < len(rules):
        toks = rules[i][1]
        ok = True
        for key, attr, op, value in toks:
            if op not in ("==", "!="):
                continue
            if key == "ATTRS":
                have = dev["ATTRS"].get(attr)
            elif key == "ENV":
                have = out["ENV"].get(attr, "")
            else:
                have = dev.get(key, "")
            hit = have is not None and glob_match(value, have)
            if (op == "==") != hit:
                ok = False
                break
        i += 1
        if not ok:
            continue
        for key, attr, op, value in toks:
            value = re.sub(r"\$env\{([^}]*)\}", lambda m: out["ENV"].get(m.group(1), ""), value)
            if key == "SYMLINK" and op == "+=":
                out["SYMLINK"].append(value)
            elif key in ("GROUP", "MODE") and op in ("=", ":="):
                out[key] = value
            elif key == "ENV" and op == "=":
                out["ENV"][attr] = value
            elif key == "GOTO":
                i = label_at[value]
    return out


DEVICES = [
    # (name, expect a /dev/zigbee link, device)
    ("TI CC2531", True, {"ATTRS": {"idVendor": "0451", "idProduct": "16a8", "product": "TI CC2531 USB CDC"},
                         "ENV": {"ID_SERIAL_SHORT": "__0X00124B0018ED3DDF"}}),
    ("Sonoff ZBDongle-P", True, {"ATTRS": {"idVendor": "10c4", "idProduct": "ea60",
                                           "product": "Sonoff Zigbee 3.0 USB Dongle Plus"},
                                 "ENV": {"ID_SERIAL_SHORT": "c0e8eeb4a8e2eb118bdc"}}),
    ("SMLIGHT SLZB-06 on USB", True, {"ATTRS": {"idVendor": "10c4", "idProduct": "ea60", "product": "SLZB-06"}}),
    ("Sonoff ZBDongle-E", True, {"ATTRS": {"idVendor": "1a86", "idProduct": "55d4",
                                           "product": "SONOFF Zigbee 3.0 USB Dongle Plus V2"}}),
    ("Home Assistant SkyConnect", True, {"ATTRS": {"idVendor": "10c4", "idProduct": "ea60",
                                                   "manufacturer": "Nabu Casa", "product": "SkyConnect v1.0"}}),
    ("ConBee II", True, {"ATTRS": {"idVendor": "1cf1", "idProduct": "0030", "product": "ConBee II"}}),
    ("LaunchPad ZNP port", True, {"ATTRS": {"idVendor": "0451", "idProduct": "bef3", "product": "XDS110"},
                                  "ENV": {"ID_USB_INTERFACE_NUM": "00"}}),
    ("LaunchPad debug port", False, {"ATTRS": {"idVendor": "0451", "idProduct": "bef3", "product": "XDS110"},
                                     "ENV": {"ID_USB_INTERFACE_NUM": "03"}}),
    ("plain CP2102 (a 3D printer)", False, {"ATTRS": {"idVendor": "10c4", "idProduct": "ea60",
                                                      "product": "CP2102 USB to UART Bridge Controller"}}),
    ("plain CH340", False, {"ATTRS": {"idVendor": "1a86", "idProduct": "7523", "product": "USB Serial"}}),
    ("ESP32-S3 dev board", False, {"ATTRS": {"idVendor": "303a", "idProduct": "4001", "product": "Espressif Device"}}),
    ("unknown FTDI", False, {"ATTRS": {"idVendor": "0403", "idProduct": "6001", "product": "FT232R USB UART"}}),
    ("ZBDongle-P being removed", False, {"ACTION": "remove", "ATTRS": {"idVendor": "10c4", "idProduct": "ea60",
                                                                       "product": "Sonoff Zigbee 3.0 USB Dongle Plus"}}),
    ("ZBDongle-P's USB interface (not the tty)", False, {"SUBSYSTEM": "usb", "ATTRS": {
        "idVendor": "10c4", "idProduct": "ea60", "product": "Sonoff Zigbee 3.0 USB Dongle Plus"}}),
]


BROKEN = {
    'ATTRS{idVendor}="0451", GOTO="x"\nLABEL="x"': "cannot be assigned",
    'GROUP=="dialout"': "cannot be matched",
    'FOO=="bar"': "unknown key",
    'SUBSYSTEM=="tty, GROUP="dialout"': "expected ','",
    'SUBSYSTEM==tty': "cannot parse",
    'SUBSYSTEM=="tty", GOTO="nowhere"': "has no LABEL",
    'SUBSYSTEM=="tty", MODE="0999"': "not octal",
    'ENV=="x"': "needs a {attribute}",
    'ATTRS{idVendor}=="0451" GROUP="dialout"': "expected ','",
    'ATTRS{idVendor}=="10C4", GROUP="dialout"': "lower-case hex",
}


def self_test():
    import tempfile
    failed = 0
    for text, want in BROKEN.items():
        with tempfile.NamedTemporaryFile("w", suffix=".rules", delete=False) as f:
            f.write(text + "\n")
        try:
            parse(f.name)
            print(f"self-test FAILED: accepted {text!r}")
            failed += 1
        except RuleError as e:
            if want not in str(e):
                print(f"self-test FAILED: {text!r}: {e} (want '{want}')")
                failed += 1
        finally:
            os.unlink(f.name)
    print("self-test:", "FAILED" if failed else f"ok ({len(BROKEN)} broken rules rejected)")
    return 1 if failed else 0


def main(argv):
    if len(argv) == 2 and argv[1] == "--self-test":
        return self_test()
    if len(argv) < 2:
        print(__doc__)
        return 2
    path = argv[1]
    problems = []
    try:
        rules = parse(path)
    except RuleError as e:
        print("FAILED:", e)
        return 1
    print(f"parsed {len(rules)} rules")
    for name, want, dev in DEVICES:
        dev = {"SUBSYSTEM": "tty", "ACTION": "add", **dev}
        out = evaluate(rules, dev)
        got = "zigbee" in out["SYMLINK"]
        if got != want:
            problems.append(f"{name}: /dev/zigbee link {'made' if got else 'missing'}")
        if want and (out["GROUP"] != "dialout" or out["MODE"] != "0660"):
            problems.append(f"{name}: group/mode {out['GROUP']}/{out['MODE']}, want dialout/0660")
        serial = dev.get("ENV", {}).get("ID_SERIAL_SHORT")
        if want and serial and f"zigbee-{serial}" not in out["SYMLINK"]:
            problems.append(f"{name}: no /dev/zigbee-{serial} link ({out['SYMLINK']})")
        print(f"  {name}: {'/dev/' + ', /dev/'.join(out['SYMLINK']) if out['SYMLINK'] else 'no link'}")
    ids = {(v2, v3) for _, toks in rules for (_, a2, _, v2), (_, a3, _, v3) in zip(toks, toks[1:])
           if a2 == "idVendor" and a3 == "idProduct"}
    if len(argv) > 2 and os.path.exists(argv[2]):
        with open(argv[2]) as f:
            table = set(re.findall(r"KnownCoordinator\{0x([0-9a-fA-F]{4}),\s*0x([0-9a-fA-F]{4})", f.read()))
        if not table:
            problems.append(f"{argv[2]}: no KnownCoordinator entries found (table format changed?)")
        for vid, pid in sorted(table):
            if (vid.lower(), pid.lower()) not in ids:
                problems.append(f"{vid}:{pid} from {argv[2]} has no udev rule")
        print(f"{len(table)} VID:PIDs in {argv[2]}, all with a rule" if not problems else "")
    udevadm = shutil.which("udevadm")
    if udevadm and subprocess.run([udevadm, "verify", "--help"], capture_output=True).returncode == 0:
        r = subprocess.run([udevadm, "verify", path], capture_output=True, text=True)
        print(r.stdout + r.stderr)
        if r.returncode != 0:
            problems.append("udevadm verify failed")
    else:
        print("note: no `udevadm verify` here (systemd < 254); the parser above stands in for it")
    for p in problems:
        print("FAILED:", p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

#!/usr/bin/env python3
"""Every alert in the rules file must have a promtool unit test in which it fires (non-empty
exp_alerts) and one in which it does not (exp_alerts: []). promtool itself only runs the tests that
exist; this makes a new alert without tests a failure.
Usage: check-alert-tests.py RULES.yaml TESTS.yaml   (exit 77 when PyYAML is missing)"""
import sys

try:
    import yaml
except ImportError:
    print("SKIP: python3 PyYAML is not installed (apt-get install -y python3-yaml)")
    sys.exit(77)


def main(rules_path, tests_path):
    with open(rules_path) as f:
        rules = yaml.safe_load(f)
    with open(tests_path) as f:
        tests = yaml.safe_load(f)
    alerts = {r["alert"] for g in rules["groups"] for r in g["rules"] if "alert" in r}
    firing, quiet = set(), set()
    for t in tests.get("tests", []):
        for a in t.get("alert_rule_test", []):
            (firing if a.get("exp_alerts") else quiet).add(a["alertname"])
    problems = []
    for a in sorted(alerts):
        if a not in firing:
            problems.append(f"{a}: no test where it fires")
        if a not in quiet:
            problems.append(f"{a}: no test where it stays quiet")
    for a in sorted((firing | quiet) - alerts):
        problems.append(f"{a}: tested but not defined in {rules_path}")
    for p in problems:
        print("FAILED:", p)
    if not alerts:
        print("FAILED: no alerts found")
        return 1
    if problems:
        return 1
    print(f"ok: {len(alerts)} alerts, each tested firing and not firing")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        print(__doc__)
        sys.exit(2)
    sys.exit(main(sys.argv[1], sys.argv[2]))

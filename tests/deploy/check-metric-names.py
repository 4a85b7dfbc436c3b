#!/usr/bin/env python3
"""Checks that every metric name used in PromQL (alert rules, Grafana dashboard) is one edged exports.

Usage:
  check-metric-names.py --exported tests/deploy/exported-metrics.txt --rules FILE.yaml ...
  check-metric-names.py --exported ... --dashboard FILE.json ...
  check-metric-names.py --self-test

A small PromQL lexer, not a full parser: strings, label matchers {..}, ranges [..] and grouping
clauses (by/without/on/ignoring/group_left/group_right (..)) are removed, then every identifier that is
not a function call, a keyword or part of a number is a metric name. Histogram series (_bucket, _sum,
_count) count as their base name. `up` and the other series Prometheus writes itself are allowed.
Exit 0: all known; 1: unknown names (listed with where they are used); 77: PyYAML missing for --rules.
"""
import argparse
import json
import re
import sys

KEYWORDS = {"and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right",
            "bool", "offset", "inf", "nan", "atan2", "start", "end"}
# Series that Prometheus adds to every target itself; they are not on edged's /metrics.
PROMETHEUS_SERIES = {"up", "scrape_duration_seconds", "scrape_samples_scraped",
                     "scrape_samples_post_metric_relabeling", "scrape_series_added"}
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_GRAFANA_VAR = re.compile(r'\$\{[^}]*\}|\[\[[^\]]*\]\]|\$[A-Za-z_][A-Za-z0-9_]*')
_MATCHERS = re.compile(r'\{[^{}]*\}')
_RANGE = re.compile(r'\[[^\[\]]*\]')
_GROUPING = re.compile(r'\b(by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)')
_IDENT = re.compile(r'(?<![A-Za-z0-9_:.])[A-Za-z_:][A-Za-z0-9_:]*')
_LABEL_VALUES = re.compile(r'^\s*label_values\s*\(\s*([A-Za-z_:][A-Za-z0-9_:]*)?(\{[^}]*\})?\s*(,[^)]*)?\)\s*$')


def metric_names(expr):
    """Returns the set of metric names referenced by one PromQL expression."""
    s = _GRAFANA_VAR.sub("x", expr)  # "x" keeps [$__rate_interval] a well-formed range
    s = _STRING.sub('""', s)
    s = _MATCHERS.sub(" ", s)
    s = _RANGE.sub(" ", s)
    prev = None
    while prev != s:  # `on (a) group_left (b)`: repeat until no grouping clause is left
        prev, s = s, _GROUPING.sub(" ", s)
    names = set()
    for m in _IDENT.finditer(s):
        word = m.group(0)
        rest = s[m.end():].lstrip()
        if rest.startswith("("):
            continue  # function or aggregation
        if word.lower() in KEYWORDS:
            continue
        names.add(word)
    return names


def grafana_variable_metrics(query):
    """label_values(metric, label) and query_result(expr) in a dashboard's template variables."""
    m = _LABEL_VALUES.match(query)
    if m:
        return {m.group(1)} if m.group(1) else set()
    qr = re.match(r'^\s*query_result\s*\((.*)\)\s*$', query, re.S)
    if qr:
        return metric_names(qr.group(1))
    return metric_names(query)


def known(name, exported):
    if name in exported or name in PROMETHEUS_SERIES:
        return True
    return any(name.endswith(sfx) and name[: -len(sfx)] in exported for sfx in HISTOGRAM_SUFFIXES)


def rules_exprs(path):
    try:
        import yaml
    except ImportError:
        print(f"SKIP: python3 PyYAML is not installed (apt-get install -y python3-yaml); cannot read {path}")
        sys.exit(77)
    with open(path) as f:
        doc = yaml.safe_load(f)
    for group in doc.get("groups", []):
        for rule in group.get("rules", []):
            name = rule.get("alert") or rule.get("record")
            yield f"{path}: {group['name']}/{name}", rule["expr"]


def dashboard_exprs(path):
    with open(path) as f:
        dash = json.load(f)

    def panels(items):
        for p in items:
            yield p
            yield from panels(p.get("panels", []))

    for p in panels(dash.get("panels", [])):
        for t in p.get("targets", []):
            if t.get("expr"):
                yield f"{path}: panel '{p.get('title', '?')}' ref {t.get('refId', '?')}", t["expr"]
    for v in dash.get("templating", {}).get("list", []):
        if v.get("type") == "query":
            q = v.get("query")
            if isinstance(q, dict):
                q = q.get("query", "")
            if q:
                yield f"{path}: variable '{v.get('name')}'", ("__label_values__", q)


def check(exported, sources):
    bad, count = [], 0
    for where, expr in sources:
        if isinstance(expr, tuple):
            names = grafana_variable_metrics(expr[1])
            expr = expr[1]
        else:
            names = metric_names(expr)
        if not names:
            bad.append(f"{where}: no metric name found in {expr!r} (the checker cannot read it?)")
        count += 1
        for n in sorted(names):
            if not known(n, exported):
                bad.append(f"{where}: '{n}' is not in the exported list (expr: {' '.join(expr.split())})")
    return count, bad


def self_test():
    cases = {
        'up{job="edged"} == 0': {"up"},
        'sum by (job, instance, camera) (rate(edged_camera_frames_total{stage=~"detected|skipped"}[10m])) > 0':
            {"edged_camera_frames_total"},
        'max by (job, instance) (a_metric == 1) and on (job, instance) group_left (x) b_metric':
            {"a_metric", "b_metric"},
        'predict_linear(edged_filesystem_avail_bytes[6h], 24*60*60) < 0 and x_total offset 5m > 1e9':
            {"edged_filesystem_avail_bytes", "x_total"},
        'histogram_quantile(0.99, sum by (le) (rate(h_seconds_bucket{camera=~"$camera"}[$__rate_interval])))':
            {"h_seconds_bucket"},
        'time() - max by (device) (last_seen{instance="${instance}"})': {"last_seen"},
        'label_replace(foo, "dst", "$1", "src", "(.*)") or vector(0)': {"foo"},
        'sum(rate(m[5m:1m])) without (pod)': {"m"},
    }
    failed = 0
    for expr, want in cases.items():
        got = metric_names(expr)
        if got != want:
            print(f"self-test FAILED: {expr!r}: got {sorted(got)}, want {sorted(want)}")
            failed += 1
    if grafana_variable_metrics("label_values(edged_build_info, instance)") != {"edged_build_info"}:
        print("self-test FAILED: label_values(edged_build_info, instance)")
        failed += 1
    exported = {"h_seconds", "foo"}
    if not known("h_seconds_bucket", exported) or known("bar_bucket", exported) or not known("up", exported):
        print("self-test FAILED: histogram suffix / Prometheus series handling")
        failed += 1
    # The check must fail on a name nobody exports.
    n, bad = check({"foo"}, [("case", 'foo + not_exported_total')])
    if n != 1 or len(bad) != 1 or "not_exported_total" not in bad[0]:
        print(f"self-test FAILED: an unknown name was not reported: {bad}")
        failed += 1
    print("self-test:", "FAILED" if failed else f"ok ({len(cases) + 3} cases)")
    return 1 if failed else 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--exported")
    ap.add_argument("--rules", nargs="*", default=[])
    ap.add_argument("--dashboard", nargs="*", default=[])
    ap.add_argument("--self-test", action="store_true")
    args = ap.parse_args()
    if args.self_test:
        return self_test()
    with open(args.exported) as f:
        exported = {l.strip() for l in f if l.strip() and not l.startswith("#")}
    sources = []
    for r in args.rules:
        sources.extend(rules_exprs(r))
    for d in args.dashboard:
        sources.extend(dashboard_exprs(d))
    count, bad = check(exported, sources)
    if count == 0:
        print("FAILED: no PromQL expression found in the given files")
        return 1
    for b in bad:
        print("FAILED:", b)
    if bad:
        print(f"{len(bad)} problem(s); add the metric to {args.exported} only if edged really exports it")
        return 1
    print(f"ok: {count} expressions, every metric name is exported by edged")
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Static checks of the Dockerfile, since no container engine runs on the CI machine:
for each FLAVOR (cpu, cuda) every FROM resolves to an image or an earlier stage, COPY --from names a
stage, the image installs the CPack .deb, exposes the chart's port and runs /usr/bin/edged.
Usage: check-dockerfile.py DOCKERFILE VALUES_YAML"""
import re
import sys


def main(path, values_path):
    text = open(path).read().replace("\\\n", " ")
    lines = [l.strip() for l in text.splitlines() if l.strip() and not l.strip().startswith("#")]
    global_args = {}
    for l in lines:
        if l.upper().startswith("FROM"):
            break
        m = re.match(r"ARG\s+(\w+)(?:=(\S+))?", l, re.I)
        if m:
            global_args[m.group(1)] = m.group(2) or ""
    problems = []
    for flavor in ("cpu", "cuda"):
        args = dict(global_args, FLAVOR=flavor)
        stages = []
        for l in lines:
            m = re.match(r"FROM\s+(\S+)(?:\s+AS\s+(\S+))?", l, re.I)
            if m:
                base = re.sub(r"\$\{(\w+)\}", lambda a: args.get(a.group(1), "<unset " + a.group(1) + ">"), m.group(1))
                if "<unset" in base:
                    problems.append(f"{flavor}: FROM {m.group(1)} uses an ARG not declared before the first FROM")
                elif ":" not in base and "/" not in base and base not in stages:
                    problems.append(f"{flavor}: FROM {base} is neither an image nor an earlier stage")
                stages.append(m.group(2) or f"#{len(stages)}")
            m = re.match(r"COPY\s+--from=(\S+)", l, re.I)
            if m and m.group(1) not in stages:
                problems.append(f"{flavor}: COPY --from={m.group(1)} names no earlier stage")
    if not re.search(r"cpack -G DEB", text):
        problems.append("the build stage does not package with cpack -G DEB")
    if not re.search(r"apt-get install[^\n]*/tmp/edged\.deb", text):
        problems.append("the image does not install the .deb")
    port = re.search(r"^\s*port:\s*(\d+)", open(values_path).read().split("\nhttp:", 1)[1], re.M).group(1)
    if not re.search(rf"^EXPOSE\s+{port}\b", text, re.M):
        problems.append(f"EXPOSE does not match the chart's http.port {port}")
    if '"/usr/bin/edged"' not in text:
        problems.append("ENTRYPOINT is not /usr/bin/edged")
    if not re.search(r"^USER\s+(?!root|0\b)\S+", text, re.M):
        problems.append("the image runs as root by default")
    for p in problems:
        print("FAILED:", p)
    if not problems:
        print("ok: both flavors resolve; the image installs the CPack .deb and runs edged as a non-root user")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))

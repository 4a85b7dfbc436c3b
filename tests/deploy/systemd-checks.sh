#!/usr/bin/env bash
# systemd-checks.sh verify|security [UNIT [DROP-IN...]]   (drop-ins are appended, as systemd merges them)
#   verify:   `systemd-analyze verify` on the unit. The edged binary need not exist: a copy of the unit
#             whose ExecStart*/ExecStartPre point at a stub executable is verified (verify insists that
#             the executable exists; everything else is checked as written). Any diagnostic fails,
#             since verify exits 0 on lines it merely ignores ("Failed to parse ..., ignoring").
#   security: `systemd-analyze security --offline=yes` exposure must be <= ${EDGED_MAX_EXPOSURE:-2.5}.
# Exit 77 (CTest skip) when systemd-analyze is missing (apt-get install -y systemd).
set -euo pipefail
mode="${1:?verify|security}"
unit="${2:-$(cd "$(dirname "$0")/../.." && pwd)/systemd/edged.service}"
dropins=("${@:3}")
if ! command -v systemd-analyze >/dev/null 2>&1; then
  echo "SKIP: systemd-analyze is not installed (apt-get install -y systemd)"; exit 77
fi
tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
printf '#!/bin/sh\nexit 0\n' > "$tmp/edged"; chmod +x "$tmp/edged"
cat "$unit" "${dropins[@]}" | sed "s#/usr/bin/edged#$tmp/edged#g" > "$tmp/edged.service"

case "$mode" in
  verify)
    # Unit files outside the search path pull in their dependencies from the host; a container without
    # systemd as PID 1 still has the unit files installed, which is all verify reads.
    out="$(SYSTEMD_LOG_LEVEL=notice systemd-analyze verify "$tmp/edged.service" 2>&1)" && rc=0 || rc=$?
    [ -z "$out" ] || echo "$out"
    if [ $rc -ne 0 ] || [ -n "$out" ]; then
      echo "FAILED: systemd-analyze verify $unit (rc=$rc) printed diagnostics above"; exit 1
    fi
    echo "ok: systemd-analyze verify: no diagnostics for $unit"
    ;;
  security)
    out="$(systemd-analyze security --offline=yes --no-pager "$tmp/edged.service" 2>&1)" || true
    score="$(printf '%s\n' "$out" | sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p' | tail -1)"
    if [ -z "$score" ]; then
      echo "$out"; echo "FAILED: no exposure score in the output of systemd-analyze security"; exit 1
    fi
    printf '%s\n' "$out" | grep -E '^✗' | cut -c1-110 || true
    max="${EDGED_MAX_EXPOSURE:-2.5}"
    if awk -v s="$score" -v m="$max" 'BEGIN { exit !(s > m) }'; then
      echo "FAILED: exposure $score is above $max"; exit 1
    fi
    echo "ok: exposure $score <= $max"
    ;;
  *) echo "usage: $0 verify|security [UNIT]"; exit 2 ;;
esac

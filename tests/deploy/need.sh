#!/usr/bin/env bash
# need.sh TOOL[=apt-package] ... -- COMMAND ARGS...
# Runs COMMAND when every TOOL is on PATH; otherwise prints why and exits 77, which CTest reports as
# a skip (SKIP_RETURN_CODE 77). A missing tool is the only reason to skip: everything else must pass.
set -euo pipefail
missing=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do
  tool="${1%%=*}"; pkg="${1#*=}"
  command -v "$tool" >/dev/null 2>&1 || missing+=("'$tool' (apt-get install -y $pkg)")
  shift
done
[ "${1:-}" = "--" ] && shift
if [ ${#missing[@]} -gt 0 ]; then
  echo "SKIP: not installed: ${missing[*]}"
  exit 77
fi
exec "$@"

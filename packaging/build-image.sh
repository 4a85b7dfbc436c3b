#!/usr/bin/env bash
# Builds the edged container image with podman or buildah (docker works too, where a daemon runs).
#   packaging/build-image.sh [--flavor cpu|cuda] [--tag TAG] [--name NAME] [--engine podman|buildah|docker]
#                            [--push] [--dry-run]
# Produces NAME:TAG (cpu) or NAME:TAG-cuda. Default NAME localhost/edged, TAG the project version.
# Needs network access to pull debian:12-slim (and, for cuda, NVIDIA's Debian 12 apt repository).
# The development/CI machine has no container engine running, so this script is not part of CI; its
# --dry-run is (CTest DeployImageDryRun). k3d: `k3d image import localhost/edged:dev -c <cluster>`.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
flavor=cpu; name=localhost/edged; engine=""; push=0; dry=0
tag="$(sed -n 's/^project(edged VERSION \([0-9.]*\).*/\1/p' "$repo/CMakeLists.txt")"
while [ $# -gt 0 ]; do
  case "$1" in
    --flavor) flavor="$2"; shift 2 ;;
    --tag) tag="$2"; shift 2 ;;
    --name) name="$2"; shift 2 ;;
    --engine) engine="$2"; shift 2 ;;
    --push) push=1; shift ;;
    --dry-run) dry=1; shift ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    *) echo "build-image: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
case "$flavor" in cpu) image="$name:$tag" ;; cuda) image="$name:$tag-cuda" ;;
  *) echo "build-image: --flavor must be cpu or cuda, not '$flavor'" >&2; exit 2 ;; esac

if [ -z "$engine" ]; then
  for e in podman buildah docker; do
    if command -v "$e" >/dev/null 2>&1; then
      # A docker client without a reachable daemon is no engine.
      if [ "$e" = docker ] && ! docker info >/dev/null 2>&1; then continue; fi
      engine="$e"; break
    fi
  done
fi
case "$engine" in
  podman|docker) cmd=("$engine" build --build-arg "FLAVOR=$flavor" -t "$image" -f "$repo/Dockerfile" "$repo") ;;
  buildah) cmd=(buildah bud --layers --build-arg "FLAVOR=$flavor" -t "$image" -f "$repo/Dockerfile" "$repo") ;;
  "") if [ $dry -eq 0 ]; then
        echo "build-image: no container engine here (podman, buildah, or docker with a running daemon)." >&2
        echo "  Debian/Ubuntu: sudo apt-get install -y podman   then run this script again." >&2
        exit 2
      fi
      cmd=(podman build --build-arg "FLAVOR=$flavor" -t "$image" -f "$repo/Dockerfile" "$repo") ;;
  *) echo "build-image: unknown engine '$engine'" >&2; exit 2 ;;
esac

# The demo camera's sample video (values-k3d.yaml) comes from ../shared/data when it is there.
stage="$repo/.cache/image-demo"
if [ $dry -eq 0 ]; then
  mkdir -p "$stage"
  src="$repo/../shared/data/video/vtest.avi"
  if [ -f "$src" ]; then cp -u "$src" "$stage/vtest.avi"; else echo "build-image: note: no $src; the image has no demo video" >&2; fi
fi

echo "+ ${cmd[*]}"
[ $dry -eq 1 ] && exit 0
"${cmd[@]}"
if [ $push -eq 1 ]; then
  case "$engine" in buildah) buildah push "$image" ;; *) "$engine" push "$image" ;; esac
fi
echo "build-image: built $image"

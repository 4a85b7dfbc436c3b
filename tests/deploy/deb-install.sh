#!/usr/bin/env bash
# deb-install.sh BUILD_DIR: builds the .deb from an already built tree (cpack -G DEB), installs it with
# apt-get on this machine (CI: a fresh Debian 12, as root) and checks what a user gets: files, the
# conffile, the edged user in dialout+video, the unit verified against the real binary, the example
# config accepted by the daemon; then remove (conffile stays) and purge. Not a CTest test: it changes
# the machine. Needs root, apt-get, dpkg-dev (dpkg-shlibdeps) and systemd (systemd-analyze).
set -euo pipefail
build="$(cd "${1:?usage: deb-install.sh BUILD_DIR}" && pwd)"
repo="$(cd "$(dirname "$0")/../.." && pwd)"
fail() { echo "deb-install: FAILED: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || fail "must run as root (it installs a package)"
[ -x "$build/edge/edged" ] || fail "$build/edge/edged is not built; run cmake --build $build first"

rm -f "$build"/edged_*.deb
(cd "$build" && cpack -G DEB)
deb="$(ls "$build"/edged_*.deb)"
echo "== $deb"; dpkg-deb -I "$deb" | sed -n '/Package:/,$p'
dpkg-deb -f "$deb" Depends | grep -q 'lib' || fail "Depends lists no runtime library (dpkg-shlibdeps missing?)"

export DEBIAN_FRONTEND=noninteractive
apt-get install -y "$deb"

for f in /usr/bin/edged /usr/lib/systemd/system/edged.service /usr/lib/udev/rules.d/99-edged-zigbee.rules \
         /usr/lib/sysusers.d/edged.conf /usr/lib/tmpfiles.d/edged.conf /etc/edged/edged.yaml \
         /usr/share/edged/prometheus/edged-rules.yaml /usr/share/edged/grafana/edged-dashboard.json; do
  [ -e "$f" ] || fail "$f was not installed"
done
dpkg-query -W -f='${Conffiles}\n' edged | grep -q '/etc/edged/edged.yaml' || fail "/etc/edged/edged.yaml is not a conffile"
id edged || fail "no edged user"
for g in dialout video; do id -nG edged | tr ' ' '\n' | grep -qx "$g" || fail "edged is not in group $g"; done
[ "$(getent passwd edged | cut -d: -f7)" = /usr/sbin/nologin ] || fail "edged has a login shell"
[ -d /var/lib/edged ] && [ "$(stat -c %U /var/lib/edged)" = edged ] || fail "/var/lib/edged missing or not owned by edged"
[ "$(stat -c %G:%a /etc/edged/edged.yaml)" = edged:640 ] || fail "/etc/edged/edged.yaml is not root:edged 0640"
/usr/bin/edged --version
# The daemon, as the edged user, accepts the packaged config (what ExecStartPre does).
su -s /bin/sh edged -c '/usr/bin/edged --check-config /etc/edged/edged.yaml' || fail "edged --check-config /etc/edged/edged.yaml"
# The installed unit, with the real binary in place.
out="$(systemd-analyze verify /usr/lib/systemd/system/edged.service 2>&1)" || fail "systemd-analyze verify: $out"
[ -z "$out" ] || fail "systemd-analyze verify printed: $out"
systemd-analyze security --offline=yes /usr/lib/systemd/system/edged.service | tail -1
[ -L /etc/systemd/system/multi-user.target.wants/edged.service ] || fail "edged.service is not enabled"
ldd /usr/bin/edged | grep 'not found' && fail "missing shared libraries"

# remove keeps the conffile; purge removes it and the state.
apt-get remove -y edged
[ -f /etc/edged/edged.yaml ] || fail "remove deleted the conffile"
apt-get purge -y edged
[ ! -e /etc/edged/edged.yaml ] || fail "purge left /etc/edged/edged.yaml"
[ ! -e /var/lib/edged ] || fail "purge left /var/lib/edged"
echo "deb-install: ok ($deb)"

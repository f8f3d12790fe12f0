#!/usr/bin/env bash
# Builds the Debian packages from BUILD_DIR (configured with
# -DCMAKE_INSTALL_PREFIX=/usr), installs them with apt-get, builds and runs
# a consumer with find_package (shared and static) and with pkg-config
# against the system copy, then removes the packages.
#   deb_check.sh BUILD_DIR
# It changes the system: root (or sudo) is needed, and it refuses to run
# where a uvpool package is installed already.
set -euo pipefail
build="$(cd "$1" && pwd)"
here="$(cd "$(dirname "$0")" && pwd)"
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
if dpkg-query -W -f='${Package} ${Status}\n' 'libuvpool*' 2>/dev/null |
  grep "ok installed" >/dev/null; then
  echo "deb_check: a uvpool package is installed already; remove it first"
  exit 1
fi
(cd "$build" && rm -f ./*.deb && cpack -G DEB >/dev/null 2>&1)
debs=("$build"/libuvpool*.deb)
[ ${#debs[@]} -eq 2 ] || { echo "deb_check: expected two packages"; exit 1; }
pkgs=()
for d in "${debs[@]}"; do
  echo "deb_check: $(basename "$d"): $(dpkg-deb -f "$d" Depends)"
  pkgs+=("$(dpkg-deb -f "$d" Package)")
done
work="$(mktemp -d)"
cleanup() {
  DEBIAN_FRONTEND=noninteractive $sudo apt-get purge -y -qq \
    "${pkgs[@]}" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq \
  --no-install-recommends "${debs[@]}" >/dev/null

cmake -S "$here/consumer" -B "$work/consumer" >/dev/null
cmake --build "$work/consumer" >/dev/null
"$work/consumer/consumer_shared"
"$work/consumer/consumer_static"
ldd "$work/consumer/consumer_shared" |
  grep -E "libuvpool\.so\.[0-9.]+ => /(usr/)?lib/" >/dev/null ||
  { echo "deb_check: the consumer does not use the packaged library"; exit 1; }
cc -std=c11 -D_GNU_SOURCE "$here/consumer/main.c" -o "$work/consumer_pc" \
  $(pkg-config --cflags --libs uvpool)
"$work/consumer_pc"
echo "deb_check: packages install; find_package and pkg-config consumers ok"

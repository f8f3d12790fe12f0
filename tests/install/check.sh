#!/usr/bin/env bash
# Installs the build tree $1 into $2 and builds a consumer against the
# installed copy with find_package (shared and static) and with pkg-config.
set -euo pipefail
build="$1"
prefix="$2"
here="$(cd "$(dirname "$0")" && pwd)"
rm -rf "$prefix"
cmake --install "$build" --prefix "$prefix" >/dev/null
libdir=$(dirname "$(find "$prefix" -name uvpool.pc | head -n1)")/..
export LD_LIBRARY_PATH="$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

cmake -S "$here/consumer" -B "$prefix/consumer" \
  -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
cmake --build "$prefix/consumer" >/dev/null
"$prefix/consumer/consumer_shared"
"$prefix/consumer/consumer_static"
# The shared consumer must resolve uvpool from the installed copy.
# grep reads to the end: with -q it may close the pipe while ldd still
# writes, and pipefail would then fail on ldd's SIGPIPE.
ldd "$prefix/consumer/consumer_shared" | grep "$prefix" >/dev/null

export PKG_CONFIG_PATH="$libdir/pkgconfig"
cc -std=c11 -D_GNU_SOURCE "$here/consumer/main.c" -o "$prefix/consumer_pc" \
  $(pkg-config --cflags --libs uvpool)
"$prefix/consumer_pc"
# Only the API is exported from the shared library.
bad=$(nm -D --defined-only "$libdir"/libuvpool.so | awk '$2 ~ /[TDB]/ {print $3}' |
  grep -v '^uvpool_' || true)
if [ -n "$bad" ]; then
  echo "unexpected exported symbols: $bad"
  exit 1
fi
echo "install check: find_package (shared, static) and pkg-config consumers ok"

#!/usr/bin/env bash
# The library alone, as on a machine with only libuv, pkg-config, cmake and
# a C compiler: pkg-config is shown libuv's .pc file and nothing else, so
# cmocka, SQLite and hiredis look absent even where they are installed.
#   library_only.sh BUILD_DIR PREFIX
# Checks that the plain configure skips every other part with a note naming
# its Debian package, that asking for the tests is then an error naming
# libcmocka-dev, that the library builds and installs, and that consumers
# build against the installed copy (tests/install/check.sh).
set -euo pipefail
build="$1"
prefix="$2"
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
pcdir="$build-pkgconfig"
rm -rf "$build" "$pcdir"
mkdir -p "$pcdir"
ln -s "$(pkg-config --variable=pcfiledir libuv)/libuv.pc" "$pcdir/libuv.pc"
export PKG_CONFIG_LIBDIR="$pcdir"

log="$build-asked.log"
if cmake -S "$root" -B "$build-asked" -DUVPOOL_BUILD_TESTS=ON >"$log" 2>&1; then
  echo "library_only: -DUVPOOL_BUILD_TESTS=ON configured without cmocka"
  exit 1
fi
grep -q "libcmocka-dev" "$log" ||
  { cat "$log"; echo "library_only: the error does not name libcmocka-dev"; exit 1; }
rm -rf "$build-asked" "$log"

cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release >"$build.log" 2>&1 ||
  { cat "$build.log"; exit 1; }
note=$(grep "uvpool: skipping" "$build.log" || true)
for pkg in libcmocka-dev libsqlite3-dev libhiredis-dev; do
  case "$note" in
  *"$pkg"*) ;;
  *) cat "$build.log"; echo "library_only: no note names $pkg"; exit 1 ;;
  esac
done
echo "library_only: configure says: ${note#-- }"
cmake --build "$build" -j2 >/dev/null
unset PKG_CONFIG_LIBDIR
"$here/check.sh" "$build" "$prefix"

# As a subproject, with every dependency visible: the library alone.
sub="$build-subproject"
rm -rf "$sub"
cmake -S "$here/subproject" -B "$sub" -DUVPOOL_SOURCE_DIR="$root" >/dev/null
targets=$(cmake --build "$sub" --target help | grep -Eo 'test_[a-z_]+|hashsum|kvd|uvpool_bench' | sort -u || true)
if [ -n "$targets" ]; then
  echo "library_only: a subproject builds more than the library: $targets"
  exit 1
fi
cmake --build "$sub" -j2 >/dev/null
"$sub/consumer"
echo "library_only: as a subproject only the library is built"

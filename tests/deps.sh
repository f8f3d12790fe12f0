# Sourced by demo/run and tests/run: installs the Debian packages that are
# missing (as root), and nothing when all are present.
uvpool_install_deps() {
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep "ok installed" >/dev/null ||
      missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "installing: ${missing[*]}"
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq \
    --no-install-recommends "${missing[@]}" >/dev/null
}

# The library: a C compiler, cmake, pkg-config and libuv.
UVPOOL_BUILD_DEPS=(cmake make gcc pkg-config libuv1-dev)
# The kvd demo: SQLite and hiredis; its tests drive it with redis-tools.
UVPOOL_DEMO_DEPS=(libsqlite3-dev libhiredis-dev redis-tools)
# The suite: cmocka; clang and its sanitizer runtimes; the checkers; gdb
# for the reports of a hung child; dpkg-dev for the packages' exact
# dependencies (dpkg-shlibdeps); gnuplot for the benchmark's chart.
UVPOOL_TEST_DEPS=(clang libclang-rt-14-dev libcmocka-dev valgrind gcovr
  gnuplot-nox python3 clang-format clang-tidy cppcheck gdb dpkg-dev)

# Sourced by demo/run and tests/run: installs the Debian packages that are
# missing (as root), and nothing when all are present.
uvpool_install_deps() {
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
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

UVPOOL_BUILD_DEPS=(cmake make gcc pkg-config libuv1-dev)
UVPOOL_DEMO_DEPS=(libsqlite3-dev libhiredis-dev redis-tools)
UVPOOL_TEST_DEPS=(clang libclang-rt-14-dev libcmocka-dev valgrind gcovr
  gnuplot-nox python3 clang-format clang-tidy cppcheck gdb)

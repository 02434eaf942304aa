#!/usr/bin/env bash
# Installs what evflow's build, tests and benchmarks need on Debian 12, when it is missing,
# per target: `deps.sh test` the suite's toolchain only (what `make test` needs), `deps.sh
# bench` the benchmarks' peers and report tools, `deps.sh check` (or no argument)
# everything `make check` runs. As root it uses apt-get; otherwise it names the packages to
# install and fails.
set -euo pipefail

# package:file-that-proves-it-is-installed, per group
test_deps=(
  "g++:/usr/bin/g++"
  "make:/usr/bin/make"
  "googletest:/usr/src/googletest/googletest/src/gtest-all.cc"
  "libgtest-dev:/usr/include/gtest/gtest.h"
)
bench_deps=(
  "libbenchmark-dev:/usr/include/benchmark/benchmark.h"
  # the comparison benchmarks (bench/compare/): peers, report, charts, CPU pinning
  "libev-dev:/usr/include/ev.h"
  "libuv1-dev:/usr/include/uv.h"
  "libevent-dev:/usr/include/event2/event.h"
  "libasio-dev:/usr/include/asio.hpp"
  # bench/task_bench.cpp's stackful peer
  "libboost-fiber-dev:/usr/include/boost/fiber/all.hpp"
  "python3:/usr/bin/python3"
  "gnuplot-nox:/usr/bin/gnuplot"
  "util-linux:/usr/bin/taskset"
  # bench/net/: the HTTP workload's load generator
  "wrk:/usr/bin/wrk"
)
check_deps=(
  # the package check: consumers built with pkg-config and with CMake
  "pkg-config:/usr/bin/pkg-config"
  "cmake:/usr/bin/cmake"
  "clang-format:/usr/bin/clang-format"
  "g++-aarch64-linux-gnu:/usr/bin/aarch64-linux-gnu-g++"
  "qemu-user:/usr/bin/qemu-aarch64"
  # fuzzing (fuzz/: clang's libFuzzer runtime) and the valgrind run of the test suite
  "clang-14:/usr/bin/clang++-14"
  "libclang-rt-14-dev:/usr/lib/llvm-14/lib/clang/14.0.6/lib/linux/libclang_rt.fuzzer-x86_64.a"
  "valgrind:/usr/bin/valgrind"
  # the Windows build (MinGW-w64's g++, -posix flavour) and its test run under wine
  "g++-mingw-w64-x86-64:/usr/bin/x86_64-w64-mingw32-g++-posix"
  "wine:/usr/bin/wine"
  "wine64:/usr/lib/wine/wine64"
)
case "${1:-check}" in
  test) wanted=("${test_deps[@]}") ;;
  bench) wanted=("${test_deps[@]}" "${bench_deps[@]}") ;;
  check) wanted=("${test_deps[@]}" "${bench_deps[@]}" "${check_deps[@]}") ;;
  *)
    echo "usage: $0 [test|bench|check]" >&2
    exit 2
    ;;
esac
missing=()
for entry in "${wanted[@]}"; do
  [ -e "${entry#*:}" ] || missing+=("${entry%%:*}")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "evflow: missing build dependencies: ${missing[*]}" >&2
  echo "evflow: install them with: sudo apt-get install ${missing[*]}" >&2
  exit 1
fi
echo "evflow: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"

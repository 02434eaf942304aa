# evflow — build, test, benchmark and install. GNU make; `make help` lists the targets.
#
# Configurations (CONFIG=...), each built in build/<CONFIG>/:
#   release  -O2 -DNDEBUG                      the library that `make install` ships
#   debug    -O1 -g, thread checks on          what `make test` builds and runs
#   asan     debug + AddressSanitizer + UndefinedBehaviorSanitizer
#   tsan     debug + ThreadSanitizer
#   aarch64  debug, cross-built with aarch64-linux-gnu-g++, static, run under qemu-aarch64
#   asan-clang  asan built with clang (its UBSan also checks pointer arithmetic on null); make
#            check has clang's sanitizers through kqueue-macos instead
# These and the ones below build with -g1 (line tables: what a sanitizer's report or a
# debugger's backtrace needs) rather than -g, which costs a quarter more compile time.
#   fuzz     clang, libFuzzer coverage + AddressSanitizer + UndefinedBehaviorSanitizer (fuzz/)
#   kqueue-freebsd, kqueue-macos
#            asan, with the loop's Backend the kqueue backend over the test-only kqueue
#            emulation (tests/support) in that ABI flavour: the suite on kqueue's logic;
#            kqueue-macos is built with clang, so that the suite also runs under clang's
#            ASan and UBSan
#   kqueue-tsan  kqueue-freebsd's backend under ThreadSanitizer
#   windows  debug, cross-built with MinGW-w64 (x86_64-w64-mingw32-g++-posix), static, the
#            IOCP backend (platform/win/), run under wine through .ci/wine-run
# The core (platform/ timers/ signals/ reactor/) always builds with -fno-exceptions -fno-rtti.

CONFIG ?= release

# Parallel by default: the makes that test, bench and check start take one job per CPU,
# unless this make was given -j (then they share its jobs). Decided in the recipe, where
# MAKEFLAGS shows a -j; GNU make 4.3 hides it from the makefile itself.
NPROC := $(shell nproc 2>/dev/null || echo 2)
PARALLEL = $$(case " $$MAKEFLAGS " in *" -j"*|*jobserver*) ;; *) echo -j$(NPROC) ;; esac)
PREFIX ?= /usr/local
DESTDIR ?=
FUZZ_SECONDS ?= 60

BUILD := build/$(CONFIG)
GTEST_SRC ?= /usr/src/googletest/googletest

CXX_NATIVE ?= g++
CXX_AARCH64 ?= aarch64-linux-gnu-g++
CXX_MINGW ?= x86_64-w64-mingw32-g++-posix
CXX_CLANG ?= clang++-14
QEMU_AARCH64 ?= qemu-aarch64

CXXSTD := -std=c++20
WARNINGS := -Wall -Wextra -Werror -Wshadow -Wnon-virtual-dtor -Wold-style-cast -Wcast-align -Wnull-dereference
CORE_ONLY := -fno-exceptions -fno-rtti
CPPFLAGS = -I. -Iinclude -MMD -MP $(BACKEND_FLAGS)

ifeq ($(CONFIG),release)
  CXX := $(CXX_NATIVE)
  MODE := -O2 -DNDEBUG -g
else ifeq ($(CONFIG),debug)
  CXX := $(CXX_NATIVE)
  MODE := -O1 -g
else ifeq ($(CONFIG),asan)
  CXX := $(CXX_NATIVE)
  MODE := -O1 -g1 -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
else ifeq ($(CONFIG),tsan)
  CXX := $(CXX_NATIVE)
  MODE := -O1 -g1 -fsanitize=thread
else ifeq ($(CONFIG),aarch64)
  CXX := $(CXX_AARCH64)
  MODE := -O1 -g1
  LDSTATIC := -static
else ifeq ($(CONFIG),asan-clang)
  CXX := $(CXX_CLANG)
  MODE := -O1 -g1 -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
else ifeq ($(CONFIG),fuzz)
  CXX := $(CXX_CLANG)
  MODE := -O1 -g -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
else ifeq ($(CONFIG),kqueue-freebsd)
  CXX := $(CXX_NATIVE)
  MODE := -O1 -g1 -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
  BACKEND_FLAGS := '-DEVFLOW_BACKEND_HEADER="tests/support/kqueue_emulated_backend.hpp"'
else ifeq ($(CONFIG),kqueue-macos)
  CXX := $(CXX_CLANG)
  MODE := -O1 -g1 -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
  BACKEND_FLAGS := '-DEVFLOW_BACKEND_HEADER="tests/support/kqueue_emulated_backend.hpp"' -DEVFLOW_EMULATED_MACOS=1
else ifeq ($(CONFIG),kqueue-tsan)
  CXX := $(CXX_NATIVE)
  MODE := -O1 -g1 -fsanitize=thread
  BACKEND_FLAGS := '-DEVFLOW_BACKEND_HEADER="tests/support/kqueue_emulated_backend.hpp"'
else ifeq ($(CONFIG),windows)
  # The -posix flavour of MinGW-w64's g++: its libstdc++ (GCC 12) has std::thread and
  # std::mutex, over winpthreads; the -win32 flavour's has neither.
  # -static: the .exe carries libstdc++, libgcc and winpthreads, so wine needs no MinGW DLLs.
  CXX := $(CXX_MINGW)
  MODE := -O1 -g1
  LDSTATIC := -static
  # Winsock (WSAStartup, the socket calls the IOCP backend and the tests use).
  PLATFORM_LIBS := -lws2_32
  # MinGW's g++ names its output foo.exe when told -o foo: make must expect that name.
  EXE := .exe
else
  $(error unknown CONFIG '$(CONFIG)': release, debug, asan, asan-clang, tsan, aarch64, fuzz, kqueue-freebsd, kqueue-macos, kqueue-tsan or windows)
endif

CXXFLAGS_BASE := $(CXXSTD) $(MODE) -pthread
CORE_CXXFLAGS := $(CXXFLAGS_BASE) $(WARNINGS) $(CORE_ONLY)
TEST_CXXFLAGS := $(CXXFLAGS_BASE) $(WARNINGS) -isystem $(GTEST_SRC)/include
LDFLAGS := $(MODE) -pthread $(LDSTATIC)

# The OS layer: platform/linux everywhere but CONFIG=windows, which has platform/win
# (the IOCP backend) in its place.
ifeq ($(CONFIG),windows)
  CORE_DIRS := platform platform/win timers signals reactor tasks net
else
  CORE_DIRS := platform platform/linux timers signals reactor tasks net
endif
CORE_SRCS := $(foreach d,$(CORE_DIRS),$(wildcard $(d)/*.cpp))
CORE_HDRS := $(foreach d,$(CORE_DIRS),$(wildcard $(d)/*.hpp))
# What a user includes: <evflow/evflow.hpp> and one header per watcher, each a door into
# the core headers above (installed beside them, under include/evflow/).
PUBLIC_HDRS := $(wildcard include/evflow/*.hpp)
CORE_OBJS := $(CORE_SRCS:%.cpp=$(BUILD)/%.o)
LIB := $(BUILD)/libevflow.a

# Test sources that cannot exist on Windows, left out of CONFIG=windows's suite (the
# others guard what is POSIX-only in them with #if); one line per reason:
# Linux's own system calls (raw syscall numbers, epoll, signalfd, timerfd)
WINDOWS_EXCLUDED_TESTS := tests/platform/linux/%
# kqueue (FreeBSD, macOS): the backend's tests and the emulation's own
WINDOWS_EXCLUDED_TESTS += tests/platform/bsd/%
# the kqueue emulation itself, built over epoll, eventfd, timerfd and pthreads
WINDOWS_EXCLUDED_TESTS += tests/support/kqueue_emulation%
# fork(): Windows has none
WINDOWS_EXCLUDED_TESTS += tests/reactor/fork_test.cpp tests/reactor/signal_fork_regression_test.cpp
WINDOWS_EXCLUDED_TESTS += tests/tasks/process_test.cpp tests/tasks/process_pool_test.cpp
# UnixStream::pair() (socketpair): EAFNOSUPPORT on Windows
WINDOWS_EXCLUDED_TESTS += tests/tasks/message_channel_test.cpp

TEST_SRCS := $(shell find tests -name '*.cpp' 2>/dev/null | sort)
ifeq ($(CONFIG),windows)
  TEST_SRCS := $(filter-out $(WINDOWS_EXCLUDED_TESTS),$(TEST_SRCS))
endif
TEST_OBJS := $(TEST_SRCS:%.cpp=$(BUILD)/%.o)
TEST_BIN := $(BUILD)/evflow_tests$(EXE)
GTEST_OBJS := $(BUILD)/gtest/gtest-all.o

EXAMPLE_SRCS := $(wildcard examples/*.cpp)
EXAMPLE_BINS := $(EXAMPLE_SRCS:examples/%.cpp=$(BUILD)/examples/%$(EXE))

BENCH_SRCS := $(wildcard bench/*_bench.cpp)
BENCH_BINS := $(BENCH_SRCS:bench/%.cpp=$(BUILD)/bench/%$(EXE))

COMPARE_LIBRARIES := kernel evflow evflow_io_uring libev libuv libevent asio
COMPARE_BINS := $(COMPARE_LIBRARIES:%=$(BUILD)/bench/compare/%)

# The socket workloads (bench/net/): a server per library and workload, and the echo load
# generator; bench/net/run.py runs them.
NET_SRCS := $(wildcard bench/net/*.cpp)
NET_BINS := $(NET_SRCS:bench/net/%.cpp=$(BUILD)/bench/net/%)

FUZZ_SRCS := $(wildcard fuzz/*_fuzz.cpp)
FUZZ_NAMES := $(FUZZ_SRCS:fuzz/%.cpp=%)
FUZZ_BINS := $(FUZZ_NAMES:%=$(BUILD)/fuzz/%)

BSD_HDRS := $(wildcard platform/bsd/*.hpp)
BSD_SRCS := $(wildcard platform/bsd/*.cpp)
# What bsd-check compiles for each FreeBSD/macOS target: the whole library but platform/linux.
BSD_LIBRARY_SRCS := $(foreach d,platform platform/bsd timers signals reactor tasks net,$(wildcard $(d)/*.cpp))
BSD_LIBRARY_HDRS := $(foreach d,platform platform/bsd timers signals reactor tasks net,$(wildcard $(d)/*.hpp))
HEADER_CHECKS := $(CORE_HDRS:%.hpp=$(BUILD)/header-check/%.ok) $(BSD_HDRS:%.hpp=$(BUILD)/header-check/%.ok) \
  $(PUBLIC_HDRS:%.hpp=$(BUILD)/header-check/%.ok)

.PHONY: fuzz fuzz-build fuzz-targets fuzz-smoke fuzz-merge
.PHONY: test-run-io-uring
.PHONY: all lib test check manual-check bench bench-quick bench-tasks bench-compare bench-net bench-net-build bench-net-run bench-deps deps deps-test deps-check bench-smoke bench-build examples install uninstall format format-check \
        clean deps help test-run sanitizers valgrind cross bsd-check kqueue-emulation header-check install-check \
        windows windows-build windows-bench windows-bench-build

all: lib

help:
	@echo "make            build build/release/libevflow.a"
	@echo "make test       build and run the test suite (debug build)"
	@echo "make check      everything CI runs: tests, sanitizers (gcc and clang ASan+UBSan, TSan), valgrind,"
	@echo "                fuzz smoke, aarch64 under qemu, FreeBSD/macOS compiles, the suite on the kqueue"
	@echo "                backend over the kqueue emulation, Windows (MinGW-w64, wine), -fno-exceptions,"
	@echo "                header checks, install + pkg-config, benchmark build, format check"
	@echo "make bench      run the benchmarks and the comparison with libev, libuv, libevent, Asio"
	@echo "                (pinned to one CPU; tables, bench/results/latest.json, charts)"
	@echo "make bench-quick the comparison on a reduced grid (about a minute)"
	@echo "make bench-net  the socket workloads alone (echo, HTTP under wrk; evflow, libuv, libev,"
	@echo "                libevent, Asio, the epoll floor), merged into bench/results/latest.json"
	@echo "make bench-tasks the coroutine-task benchmark alone (evflow, Asio, Boost.Fiber), merged into"
	@echo "                bench/results/latest.json and tasks.svg"
	@echo "make fuzz       every fuzz/ target for FUZZ_SECONDS (default 60), FUZZ_JOBS (2) at a time"
	@echo "make valgrind   the test suite under valgrind's memcheck"
	@echo "make bsd-check  compile the library for FreeBSD 14 and macOS 13 (x86_64, arm64) with clang"
	@echo "make kqueue-emulation  the suite on the kqueue backend over tests/support's emulation:"
	@echo "                FreeBSD and macOS ABIs under ASan+UBSan, FreeBSD's under TSan"
	@echo "make windows    the suite cross-built with MinGW-w64 (build/windows/), run under wine"
	@echo "make windows-build  only build/windows/libevflow.a, the library cross-built with MinGW-w64"
	@echo "make windows-bench  timer lateness and a loopback ping-pong on the IOCP backend, under wine"
	@echo "make examples   build examples/"
	@echo "make install    PREFIX=$(PREFIX) DESTDIR=: headers, libevflow.a, evflow.pc"
	@echo "make format     clang-format every source file"
	@echo "make deps       install missing build dependencies (Debian, as root)"

lib: $(LIB)

$(LIB): $(CORE_OBJS)
	@mkdir -p $(dir $@)
	rm -f $@
	ar rcs $@ $^

# The core: no exceptions, no RTTI.
$(BUILD)/platform/%.o $(BUILD)/reactor/%.o $(BUILD)/timers/%.o $(BUILD)/signals/%.o $(BUILD)/tasks/%.o $(BUILD)/net/%.o: CXXFLAGS = $(CORE_CXXFLAGS)
$(BUILD)/tests/%.o: CXXFLAGS = $(TEST_CXXFLAGS)
ifneq ($(filter asan-clang kqueue-macos,$(CONFIG)),)
  # clang 14 cannot emit -fsanitize=function's prologue data for the parts a coroutine is
  # split into ("Cannot represent a difference across sections"): the coroutine tests go
  # without that one check of UBSan's; every other check stays.
  $(BUILD)/tests/tasks/%.o $(BUILD)/tests/net/%.o: CXXFLAGS = $(TEST_CXXFLAGS) -fno-sanitize=function
endif
$(BUILD)/examples/%.o: CXXFLAGS = $(CORE_CXXFLAGS)
$(BUILD)/fuzz/%.o: CXXFLAGS = $(CORE_CXXFLAGS)
# The coroutine target goes without -fsanitize=function, as the coroutine tests do in
# CONFIG=asan-clang and kqueue-macos (clang 14 cannot emit its prologue data for a coroutine's parts).
$(BUILD)/fuzz/tasks_fuzz.o: CXXFLAGS = $(CORE_CXXFLAGS) -fno-sanitize=function
$(BUILD)/bench/%.o: CXXFLAGS = $(CXXFLAGS_BASE) $(WARNINGS)

$(BUILD)/%.o: %.cpp
	@mkdir -p $(dir $@)
	$(CXX) $(CPPFLAGS) $(CXXFLAGS) -c $< -o $@

# GoogleTest, built from Debian's sources with this configuration's compiler and flags
# (sanitizers and the cross compiler need an instrumented or aarch64 copy).
$(BUILD)/gtest/gtest-all.o: $(GTEST_SRC)/src/gtest-all.cc
	@mkdir -p $(dir $@)
	$(CXX) $(CXXSTD) $(MODE) -pthread -isystem $(GTEST_SRC)/include -I$(GTEST_SRC) -c $< -o $@

$(TEST_BIN): $(TEST_OBJS) $(GTEST_OBJS) $(LIB)
	$(CXX) $(LDFLAGS) -o $@ $(TEST_OBJS) $(GTEST_OBJS) $(LIB) $(PLATFORM_LIBS)

# The coroutine layer and the sockets on it need no exceptions: their tests once more, built with -fno-exceptions
# -fno-rtti (GoogleTest too), run by the debug configuration's test-run.
NOEXCEPT_TEST_SRCS := $(sort $(wildcard tests/tasks/*.cpp tests/net/*.cpp)) tests/main.cpp tests/support/allocation_control.cpp
NOEXCEPT_TEST_OBJS := $(NOEXCEPT_TEST_SRCS:%.cpp=$(BUILD)/noexcept/%.o) $(BUILD)/noexcept/gtest-all.o
NOEXCEPT_TEST_BIN := $(BUILD)/evflow_tasks_noexcept_tests$(EXE)
$(BUILD)/noexcept/tests/%.o: tests/%.cpp
	@mkdir -p $(dir $@)
	$(CXX) $(CPPFLAGS) $(TEST_CXXFLAGS) $(CORE_ONLY) -c $< -o $@
$(BUILD)/noexcept/gtest-all.o: $(GTEST_SRC)/src/gtest-all.cc
	@mkdir -p $(dir $@)
	$(CXX) $(CXXSTD) $(MODE) $(CORE_ONLY) -pthread -isystem $(GTEST_SRC)/include -I$(GTEST_SRC) -c $< -o $@
$(NOEXCEPT_TEST_BIN): $(NOEXCEPT_TEST_OBJS) $(LIB)
	$(CXX) $(LDFLAGS) -o $@ $(NOEXCEPT_TEST_OBJS) $(LIB) $(PLATFORM_LIBS)

$(GTEST_SRC)/src/gtest-all.cc:
	@echo "GoogleTest sources not found at $(GTEST_SRC): run 'make deps' (installs googletest) or set GTEST_SRC" && exit 1

# --- running the suite ----------------------------------------------------------

ifeq ($(CONFIG),aarch64)
  # qemu-user cannot re-exec the binary for threadsafe death tests: fork-only style.
  # EVFLOW_TEST_EMULATOR tells the tests that need it what runs them (to_thread_test.cpp).
  RUN_TESTS := EVFLOW_TEST_EMULATOR=qemu-user $(QEMU_AARCH64) $(TEST_BIN) --gtest_death_test_style=fast
else ifeq ($(CONFIG),windows)
  # wine, quiet and without a display, in build/wineprefix, under a time limit: .ci/wine-run.
  RUN_TESTS := .ci/wine-run $(TEST_BIN)
else
  RUN_TESTS := $(TEST_BIN)
endif

# A program that dies (under wine, a crash can end with status 0) writes no report: the
# run fails unless the report is there.
test-run: $(TEST_BIN) $(if $(filter debug,$(CONFIG)),$(NOEXCEPT_TEST_BIN))
	@rm -f $(BUILD)/test-report.xml
	$(RUN_TESTS) --gtest_brief=1 --gtest_output=xml:$(BUILD)/test-report.xml $(GTEST_ARGS)
	@test -s $(BUILD)/test-report.xml || { echo "test-run: $(TEST_BIN) ended without its report"; exit 1; }
ifeq ($(CONFIG),debug)
	@echo "tasks/ and net/ tests built with -fno-exceptions -fno-rtti:"
	$(NOEXCEPT_TEST_BIN) --gtest_brief=1 $(GTEST_ARGS)
endif

# The same suite with every loop opened on io_uring (EVFLOW_BACKEND, linux_backend.hpp);
# where the kernel refuses io_uring the loops fall back to epoll and the run checks that.
test-run-io-uring: $(TEST_BIN)
	@rm -f $(BUILD)/test-report-io-uring.xml
	EVFLOW_BACKEND=io_uring $(RUN_TESTS) --gtest_brief=1 --gtest_output=xml:$(BUILD)/test-report-io-uring.xml $(GTEST_ARGS)
	@test -s $(BUILD)/test-report-io-uring.xml || { echo "test-run-io-uring: $(TEST_BIN) ended without its report"; exit 1; }

test: deps-test
	$(MAKE) $(PARALLEL) --no-print-directory CONFIG=debug test-run

# gcc's ASan+UBSan and TSan; clang's ASan+UBSan run the suite in kqueue-emulation
# (CONFIG=kqueue-macos), and `make CONFIG=asan-clang test-run` on the epoll backend.
sanitizers:
	$(MAKE) --no-print-directory CONFIG=asan test-run test-run-io-uring
	TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" $(MAKE) --no-print-directory CONFIG=tsan test-run test-run-io-uring

# --- FreeBSD and macOS: cross-compilation -------------------------------------------
#
# No BSD or Apple headers exist here: platform/bsd declares the kqueue ABI itself, and
# clang compiles for each target against the host's libstdc++ and C headers of the
# matching architecture (-nostdinc plus explicit -isystem; -D_GNU_SOURCE, which g++ sets
# for Linux targets and libstdc++ needs from glibc's headers; -U__nonnull -U__nullable,
# which clang predefines for Apple targets and glibc uses as macros of its own). Every
# library header and source but platform/linux's is compiled, never linked or run: the C
# library's declarations (and numbers such as SIGCHLD's) are glibc's, so this proves the
# code is free of Linux-only calls and compiles for each target's ABI, not that the
# objects would run. The kqueue backend's behaviour is tested on Linux, over the
# emulation (CONFIG=kqueue-freebsd, kqueue-macos).
kqueue-emulation:
	$(MAKE) --no-print-directory CONFIG=kqueue-freebsd test-run
	$(MAKE) --no-print-directory CONFIG=kqueue-macos test-run
	TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" $(MAKE) --no-print-directory CONFIG=kqueue-tsan test-run

BSD_TARGETS := x86_64-unknown-freebsd14 aarch64-unknown-freebsd14 x86_64-apple-macos13 arm64-apple-macos13
CLANG_RESOURCE = $(shell $(CXX_CLANG) -print-resource-dir)
BSD_INCLUDES_x86_64 = -isystem /usr/include/c++/12 -isystem /usr/include/x86_64-linux-gnu/c++/12 \
  -isystem $(CLANG_RESOURCE)/include -isystem /usr/include/x86_64-linux-gnu -isystem /usr/include
BSD_INCLUDES_aarch64 = -isystem /usr/aarch64-linux-gnu/include/c++/12 \
  -isystem /usr/aarch64-linux-gnu/include/c++/12/aarch64-linux-gnu -isystem $(CLANG_RESOURCE)/include \
  -isystem /usr/aarch64-linux-gnu/include
# One compile per target and source, and one per target of every header at once (each
# header alone is header-check's: it compiles every core, BSD and public header by
# itself), run as parallel jobs of make.
BSD_COMPILES := $(foreach t,$(BSD_TARGETS),bsd-compile/$(t)/headers $(addprefix bsd-compile/$(t)/,$(BSD_LIBRARY_SRCS)))
.PHONY: bsd-check bsd-check-tools $(BSD_COMPILES)
bsd-check: $(BSD_COMPILES)
bsd-check-tools:
	@command -v $(CXX_CLANG) >/dev/null || { echo "missing $(CXX_CLANG): run 'make deps'"; exit 1; }
bsd-target = $(firstword $(subst /, ,$*))
bsd-file = $(patsubst $(bsd-target)/%,%,$*)
$(BSD_COMPILES): bsd-compile/%: bsd-check-tools
	@echo "clang --target=$(bsd-target) $(bsd-file)"
	@$(if $(filter headers,$(bsd-file)),printf '#include "%s"\n' $(BSD_LIBRARY_HDRS),echo '#include "$(bsd-file)"') | \
	  $(CXX_CLANG) --target=$(bsd-target) $(CXXSTD) -nostdinc -nostdinc++ -D_GNU_SOURCE -U__nonnull -U__nullable \
	  $(if $(filter x86_64-%,$(bsd-target)),$(BSD_INCLUDES_x86_64),$(BSD_INCLUDES_aarch64)) \
	  -I. $(WARNINGS) $(CORE_ONLY) -x c++ -c -o /dev/null -

# The suite under valgrind's memcheck: no invalid access, no uninitialised value reaching
# a branch or a system call, no leak. tests/valgrind.supp lists the reports tests provoke on
# purpose. valgrind 3.19 does not know epoll_pwait2 (ENOSYS), so this run also covers the
# loop's fallback sleep path. The test binary's own operator new (allocation_test) stays in
# place (somalloc=nouserintercepts).
# valgrind's own messages go to build/debug/valgrind.log (printed, without its notes on
# system calls it does not know, when the run fails).
VALGRIND_FLAGS := --error-exitcode=1 --leak-check=full --show-leak-kinds=definite,indirect \
  --errors-for-leak-kinds=definite,indirect --soname-synonyms=somalloc=nouserintercepts \
  --suppressions=tests/valgrind.supp --log-file=build/debug/valgrind.log
valgrind:
	@command -v valgrind >/dev/null || { echo "missing valgrind: run 'make deps'"; exit 1; }
	$(MAKE) --no-print-directory CONFIG=debug build/debug/evflow_tests
	@echo "valgrind build/debug/evflow_tests (log: build/debug/valgrind.log)"
	@valgrind $(VALGRIND_FLAGS) build/debug/evflow_tests --gtest_brief=1 \
	  || { grep -v '^--' build/debug/valgrind.log | tail -n 80; echo "valgrind: FAILED"; exit 1; }
	@grep -h 'ERROR SUMMARY' build/debug/valgrind.log | sed 's/^==[0-9]*== //' | sort | uniq -c

cross:
	@command -v $(CXX_AARCH64) >/dev/null || { echo "missing $(CXX_AARCH64): run 'make deps'"; exit 1; }
	@command -v $(QEMU_AARCH64) >/dev/null || { echo "missing $(QEMU_AARCH64): run 'make deps'"; exit 1; }
	$(MAKE) --no-print-directory CONFIG=aarch64 test-run

# --- Windows: MinGW-w64 and wine ------------------------------------------------
#
# CONFIG=windows cross-builds the library with platform/win (the IOCP backend) in place of
# platform/linux, and the suite less WINDOWS_EXCLUDED_TESTS, into static .exe files that
# wine runs. .ci/wine-run gives wine what a run needs here and in CI (no display, no
# standard input): a prefix of its own (build/wineprefix unless WINEPREFIX says otherwise,
# created on first use in 6 to 10 s), a wineserver kept up and warmed by one trivial program
# before the suite, a time limit, and no wine process left behind (one would hold CI's log
# open). WINE_TIMEOUT (seconds, default 900) bounds the suite.
windows:
	@command -v $(CXX_MINGW) >/dev/null || { echo "missing $(CXX_MINGW): run 'make deps'"; exit 1; }
	@command -v wine >/dev/null || { echo "missing wine: run 'make deps'"; exit 1; }
	$(MAKE) --no-print-directory CONFIG=windows test-run header-check windows-bench-build

# bench/windows/: plain programs (Debian has no Google Benchmark for MinGW-w64), built by
# `make windows` so that they cannot rot, run by `make windows-bench`.
WINDOWS_BENCH_SRCS := $(wildcard bench/windows/*.cpp)
WINDOWS_BENCH_BINS := $(WINDOWS_BENCH_SRCS:bench/windows/%.cpp=build/windows/bench/windows/%.exe)
windows-bench-build: $(if $(filter windows,$(CONFIG)),$(WINDOWS_BENCH_BINS))
$(BUILD)/bench/windows/%.exe: $(BUILD)/bench/windows/%.o $(LIB)
	$(CXX) $(LDFLAGS) -o $@ $^ $(PLATFORM_LIBS)
windows-bench:
	$(MAKE) --no-print-directory CONFIG=windows windows-bench-build
	@for b in $(WINDOWS_BENCH_BINS); do echo "== $$b"; .ci/wine-run $$b || exit 1; done

windows-build:
	@command -v $(CXX_MINGW) >/dev/null || { echo "missing $(CXX_MINGW): run 'make deps'"; exit 1; }
	$(MAKE) --no-print-directory CONFIG=windows lib

# Every core header compiles on its own, with -fno-exceptions -fno-rtti; each public
# header as a user includes it, with include/ as the only include directory.
header-check: $(HEADER_CHECKS)
$(BUILD)/header-check/%.ok: %.hpp
	@mkdir -p $(dir $@)
	@echo '#include "$<"' | $(CXX) $(CORE_CXXFLAGS) -I. -x c++ -fsyntax-only - && touch $@
$(BUILD)/header-check/include/evflow/%.ok: include/evflow/%.hpp
	@mkdir -p $(dir $@)
	@echo '#include <evflow/$*.hpp>' | $(CXX) $(CORE_CXXFLAGS) -Iinclude -x c++ -fsyntax-only - && touch $@

examples: $(EXAMPLE_BINS)
$(BUILD)/examples/%$(EXE): $(BUILD)/examples/%.o $(LIB)
	@mkdir -p $(dir $@)
	$(CXX) $(LDFLAGS) -o $@ $^ $(PLATFORM_LIBS)

# --- benchmarks -----------------------------------------------------------------

BENCH_LIBS := -lbenchmark -lpthread
# What one program links besides: BENCH_LIBS_<program>. task_bench's stackful peer,
# Boost.Fiber (Debian's libboost-fiber-dev), over Boost.Context, and libuv for its thread
# pool (the one peer library task_bench links: no other exports a clashing API there).
BENCH_LIBS_task_bench := -lboost_fiber -lboost_context -l:libuv_a.a -ldl -lrt
bench-build: $(BENCH_BINS) $(COMPARE_BINS) $(NET_BINS)
$(BUILD)/bench/%$(EXE): $(BUILD)/bench/%.o $(LIB)
	@mkdir -p $(dir $@)
	$(CXX) $(LDFLAGS) -o $@ $^ $(BENCH_LIBS_$*) $(BENCH_LIBS) $(PLATFORM_LIBS)

# The side-by-side comparison (bench/compare/): one executable per library, each peer
# linked statically from Debian's archives, as evflow is. Peer headers use macros and
# casts that the core's warning set rejects, so these build with -Wall -Wextra only.
COMPARE_LIBS_evflow := $(LIB)
COMPARE_LIBS_evflow_io_uring := $(LIB)
COMPARE_LIBS_libev := -l:libev.a -lm
COMPARE_LIBS_libuv := -l:libuv_a.a -ldl -lrt
COMPARE_LIBS_libevent := -l:libevent_core.a -l:libevent_pthreads.a
COMPARE_LIBS_asio :=
COMPARE_LIBS_kernel :=
$(BUILD)/bench/compare/%.o: CXXFLAGS = $(CXXFLAGS_BASE) -Wall -Wextra -Werror
$(BUILD)/bench/compare/asio.o: CXXFLAGS = $(CXXFLAGS_BASE) -Wall -Wextra -Werror -DASIO_NO_DEPRECATED
.SECONDEXPANSION:
$(COMPARE_BINS): $(BUILD)/bench/compare/%: $(BUILD)/bench/compare/%.o $$(filter $(LIB),$$(COMPARE_LIBS_$$*))
	$(CXX) $(LDFLAGS) -o $@ $< $(COMPARE_LIBS_$*) $(BENCH_LIBS)

# bench/net/<workload>_<library>: linked as the comparison's program of that library is
# (echo_client with nothing), without Google Benchmark.
NET_LIBRARY = $(patsubst echo_%,%,$(patsubst http_%,%,$(1)))
$(BUILD)/bench/net/%.o: CXXFLAGS = $(CXXFLAGS_BASE) -Wall -Wextra -Werror
$(BUILD)/bench/net/echo_asio.o $(BUILD)/bench/net/http_asio.o: CXXFLAGS = $(CXXFLAGS_BASE) -Wall -Wextra -Werror -DASIO_NO_DEPRECATED
$(NET_BINS): $(BUILD)/bench/net/%: $(BUILD)/bench/net/%.o $$(filter $(LIB),$$(COMPARE_LIBS_$$(call NET_LIBRARY,$$*)))
	$(CXX) $(LDFLAGS) -o $@ $< $(COMPARE_LIBS_$(call NET_LIBRARY,$*)) -lpthread

# make bench: the micro-benchmarks of bench/*.cpp, then the comparison, each program
# pinned to CPU 1. BENCH_ARGS goes to every program (e.g. --benchmark_filter=benchc).
# Each micro-benchmark program also writes its JSON to BENCH_MICRO_OUT; task_bench's (the
# coroutine tasks, evflow beside Asio and Boost.Fiber) joins the comparison's report as
# the `tasks` workload. make bench-quick runs task_bench once, briefly, for the same.
# task_bench's rows are compared with one another, so their repetitions run interleaved
# at random (TASK_BENCH_ARGS): drift of this shared machine then hits every library alike.
BENCH_CPU ?= 1
BENCH_OUT := build/release/bench/results
BENCH_MICRO_OUT := build/release/bench/micro
MICRO_BENCH_ARGS := --benchmark_repetitions=5 --benchmark_report_aggregates_only=true --benchmark_min_time=0.2
TASK_BENCH_ARGS := --benchmark_enable_random_interleaving=true
bench: bench-deps
	$(MAKE) $(PARALLEL) --no-print-directory CONFIG=release bench-build
	@rm -rf $(BENCH_MICRO_OUT) && mkdir -p $(BENCH_MICRO_OUT)
	@for b in $(BENCH_SRCS:bench/%.cpp=build/release/bench/%); do \
	  echo "== $$b"; taskset -c $(BENCH_CPU) $$b $(MICRO_BENCH_ARGS) \
	    $$(case $$b in */task_bench) echo '$(TASK_BENCH_ARGS)';; esac) \
	    --benchmark_out=$(BENCH_MICRO_OUT)/$$(basename $$b).json --benchmark_out_format=json $(BENCH_ARGS) \
	    || exit 1; done
	$(MAKE) --no-print-directory bench-net-run NET_GRID=full
	$(MAKE) $(PARALLEL) --no-print-directory bench-compare GRID=full TASK_RESULTS=$(BENCH_MICRO_OUT)/task_bench.json \
	  NET_RESULTS=$(BENCH_NET_OUT)/net.json

bench-quick: bench-deps
	$(MAKE) $(PARALLEL) --no-print-directory CONFIG=release bench-build
	@rm -rf $(BENCH_MICRO_OUT) && mkdir -p $(BENCH_MICRO_OUT)
	taskset -c $(BENCH_CPU) build/release/bench/task_bench --benchmark_repetitions=3 \
	  --benchmark_report_aggregates_only=true --benchmark_min_time=0.05 $(TASK_BENCH_ARGS) \
	  --benchmark_out=$(BENCH_MICRO_OUT)/task_bench.json --benchmark_out_format=json $(BENCH_ARGS)
	$(MAKE) --no-print-directory bench-net-run NET_GRID=quick
	$(MAKE) $(PARALLEL) --no-print-directory bench-compare GRID=quick TASK_RESULTS=$(BENCH_MICRO_OUT)/task_bench.json \
	  NET_RESULTS=$(BENCH_NET_OUT)/net.json

# The coroutine-task rows alone: task_bench run as make bench runs it, its figures merged
# into bench/results/latest.json (every other workload's records kept) and tasks.svg redrawn.
bench-tasks: bench-deps
	$(MAKE) $(PARALLEL) --no-print-directory CONFIG=release build/release/bench/task_bench
	@mkdir -p $(BENCH_MICRO_OUT)
	taskset -c $(BENCH_CPU) build/release/bench/task_bench $(MICRO_BENCH_ARGS) $(TASK_BENCH_ARGS) \
	  --benchmark_out=$(BENCH_MICRO_OUT)/task_bench.json --benchmark_out_format=json $(BENCH_ARGS)
	python3 bench/compare/report.py --merge --out bench/results $(BENCH_MICRO_OUT)/task_bench.json

# The socket workloads alone (bench/net/, bench/net/run.py): each server of each library,
# a fresh process per round, pinned to BENCH_CPU, its load generator (echo_client, or wrk)
# to NET_CLIENT_CPU; with two loops the server and wrk share both. Their figures are merged
# into bench/results/latest.json (every other workload's records kept), echo.svg and
# http.svg redrawn. NET_GRID=full (make bench's: 3 rounds) or quick (make bench-quick's).
# NET_ARGS goes to run.py, e.g. NET_ARGS=--realtime (SCHED_FIFO, as root) on a busy machine.
NET_GRID ?= full
NET_ARGS ?=
NET_CLIENT_CPU ?= 0
BENCH_NET_OUT := build/release/bench/net-results
bench-net: bench-deps
	$(MAKE) $(PARALLEL) --no-print-directory CONFIG=release bench-net-build
	$(MAKE) --no-print-directory bench-net-run
	python3 bench/compare/report.py --merge --out bench/results $(BENCH_NET_OUT)/net.json
bench-net-build: $(NET_BINS)
bench-net-run:
	@rm -rf $(BENCH_NET_OUT) && mkdir -p $(BENCH_NET_OUT)
	python3 bench/net/run.py --bin build/release/bench/net --grid $(NET_GRID) --server-cpu $(BENCH_CPU) \
	  --client-cpu $(NET_CLIENT_CPU) --out $(BENCH_NET_OUT)/net.json $(NET_ARGS)

# Rounds: every program runs once per round, in turn, so that drift of this shared machine
# hits every library alike; the report takes each figure's median over the rounds. Each
# round starts two libraries further on, and the system-call floor (kernel) runs last, so
# that no library runs after the same program in every round: what ran before can count
# (right after the kernel program exited, a first write of 36 MB on huge pages took
# 80-112 ms against 2 ms run again at once: the host had taken the freed memory back).
# TASK_RESULTS: a task_bench JSON to report beside them, NET_RESULTS bench/net/run.py's
# records (make bench and bench-quick set both).
GRID ?= full
ROUNDS ?= $(if $(filter quick,$(GRID)),1,3)
TASK_RESULTS ?=
NET_RESULTS ?=
bench-compare:
	@rm -rf $(BENCH_OUT) && mkdir -p $(BENCH_OUT)
	@for r in $$(seq 1 $(ROUNDS)); do \
	  order="$$(echo $(filter-out kernel,$(COMPARE_LIBRARIES)) | \
	    awk -v k=$$((2 * (r - 1))) '{ for (i = 0; i < NF; i++) printf "%s ", $$((i + k) % NF + 1) }')$(filter kernel,$(COMPARE_LIBRARIES))"; \
	  for lib in $$order; do \
	  echo "== round $$r/$(ROUNDS): $$lib ($(GRID) grid, CPU $(BENCH_CPU))"; \
	  taskset -c $(BENCH_CPU) build/release/bench/compare/$$lib --grid=$(GRID) \
	    --benchmark_out=$(BENCH_OUT)/round$$r-$$lib.json --benchmark_out_format=json $(BENCH_ARGS) >/dev/null \
	    || exit 1; \
	done; done
	python3 bench/compare/report.py --out bench/results $(BENCH_OUT)/round*.json $(TASK_RESULTS) $(NET_RESULTS)

bench-deps:
	@./.ci/deps.sh bench

# A few seconds of the comparison, of task_bench and of the socket workloads (bench/net/,
# all on CPU 0, which every machine has), so that `make check` proves every program runs
# and the report (JSON, tables, gnuplot charts) is produced; the figures go to a scratch
# directory.
bench-smoke:
	@rm -rf build/bench-smoke && mkdir -p build/bench-smoke
	@for lib in $(COMPARE_LIBRARIES); do \
	  build/release/bench/compare/$$lib --grid=quick --benchmark_filter='syscall_floor|idle_iteration/timers:0/' \
	    --benchmark_out=build/bench-smoke/$$lib.json --benchmark_out_format=json >/dev/null || exit 1; \
	done
	@build/release/bench/task_bench --benchmark_min_time=0.01 \
	  --benchmark_out=build/bench-smoke/task_bench.json --benchmark_out_format=json >/dev/null
	@python3 bench/net/run.py --bin build/release/bench/net --grid smoke --server-cpu 0 --client-cpu 0 \
	  --out build/bench-smoke/net.json >/dev/null
	python3 bench/compare/report.py --out build/bench-smoke build/bench-smoke/*.json

# --- fuzzing --------------------------------------------------------------------
#
# Each fuzz/*_fuzz.cpp is a libFuzzer target built with clang (CONFIG=fuzz: coverage,
# ASan, UBSan). A run starts from the committed seeds in fuzz/corpus/<target>/ and keeps
# what it finds in build/fuzz/work/corpus/<target>/; a crashing input is written to
# build/fuzz/work/artifacts/ (reproduce: build/fuzz/fuzz/<target> <file>).
#   make fuzz                every target for FUZZ_SECONDS (default 60), FUZZ_JOBS at a time
#   make fuzz-smoke          every target over its seeds, then FUZZ_SMOKE_SECONDS of fuzzing
#   make fuzz-merge          minimises the work corpus into fuzz/corpus/ (to commit new seeds);
#                            inputs named regression-* (each once found a bug) are kept as they are
FUZZ_JOBS ?= 2
FUZZ_SMOKE_SECONDS ?= 20
FUZZ_WORK := build/fuzz/work
FUZZ_OPTIONS := -max_len=4096 -timeout=20 -print_final_stats=1 $(FUZZ_ARGS)

fuzz-build:
	@command -v $(CXX_CLANG) >/dev/null || { echo "missing $(CXX_CLANG): run 'make deps'"; exit 1; }
	$(MAKE) --no-print-directory CONFIG=fuzz fuzz-targets
fuzz-targets: $(FUZZ_BINS)
.PRECIOUS: $(BUILD)/fuzz/%.o
$(BUILD)/fuzz/%: $(BUILD)/fuzz/%.o $(LIB)
	$(CXX) $(LDFLAGS) -fsanitize=fuzzer -o $@ $^

fuzz: deps-check fuzz-build
	@rm -rf $(FUZZ_WORK)/logs && mkdir -p $(FUZZ_WORK)/logs
	$(MAKE) --no-print-directory -j$(FUZZ_JOBS) $(FUZZ_NAMES:%=fuzz-run-%) fuzz-io-uring-reactor_io_fuzz FUZZ_TIME=$(FUZZ_SECONDS)
	@python3 fuzz/summary.py $(FUZZ_WORK)/logs/*.log

fuzz-smoke: fuzz-build
	@rm -rf $(FUZZ_WORK)/corpus $(FUZZ_WORK)/logs && mkdir -p $(FUZZ_WORK)/logs
	$(MAKE) --no-print-directory $(FUZZ_NAMES:%=fuzz-run-%) fuzz-io-uring-reactor_io_fuzz FUZZ_TIME=$(FUZZ_SMOKE_SECONDS)
	@python3 fuzz/summary.py $(FUZZ_WORK)/logs/*.log

# One target for FUZZ_TIME seconds; its log is printed if it fails.
fuzz-run-%:
	@mkdir -p $(FUZZ_WORK)/corpus/$* $(FUZZ_WORK)/artifacts $(FUZZ_WORK)/logs
	@echo "fuzz: $* for $(FUZZ_TIME) s (log: $(FUZZ_WORK)/logs/$*.log)"
	@build/fuzz/fuzz/$* $(FUZZ_WORK)/corpus/$* fuzz/corpus/$* -max_total_time=$(FUZZ_TIME) $(FUZZ_OPTIONS) \
	  -artifact_prefix=$(FUZZ_WORK)/artifacts/$*- >$(FUZZ_WORK)/logs/$*.log 2>&1 \
	  || { tail -n 60 $(FUZZ_WORK)/logs/$*.log; echo "fuzz: $* FAILED"; exit 1; }

# The same with the loops on io_uring (EVFLOW_BACKEND): fuzz-smoke runs reactor_io_fuzz so,
# whose model knows that a poll of the loop may hold a closed socket open until the loop
# has removed it (README, "io_uring"). Where the kernel refuses io_uring the loop falls
# back to epoll, and the run is the epoll run again.
fuzz-io-uring-%:
	@mkdir -p $(FUZZ_WORK)/corpus/$* $(FUZZ_WORK)/artifacts $(FUZZ_WORK)/logs
	@echo "fuzz: $* on io_uring for $(FUZZ_TIME) s (log: $(FUZZ_WORK)/logs/$*-io-uring.log)"
	@EVFLOW_BACKEND=io_uring build/fuzz/fuzz/$* $(FUZZ_WORK)/corpus/$* fuzz/corpus/$* -max_total_time=$(FUZZ_TIME) \
	  $(FUZZ_OPTIONS) -artifact_prefix=$(FUZZ_WORK)/artifacts/$*-io-uring- >$(FUZZ_WORK)/logs/$*-io-uring.log 2>&1 \
	  || { tail -n 60 $(FUZZ_WORK)/logs/$*-io-uring.log; echo "fuzz: $* on io_uring FAILED"; exit 1; }

fuzz-merge: fuzz-build
	@for t in $(FUZZ_NAMES); do mkdir -p fuzz/corpus/$$t.new; \
	  build/fuzz/fuzz/$$t -merge=1 -max_len=4096 fuzz/corpus/$$t.new fuzz/corpus/$$t $(FUZZ_WORK)/corpus/$$t 2>&1 | tail -n 1; \
	  cp fuzz/corpus/$$t/regression-* fuzz/corpus/$$t.new/ 2>/dev/null; \
	  rm -rf fuzz/corpus/$$t && mv fuzz/corpus/$$t.new fuzz/corpus/$$t; done

# --- install --------------------------------------------------------------------

# The CMake package (lib/cmake/evflow/) is the one CMakeLists.txt installs, written without
# CMake: the config from the same template, a hand-written targets file that finds the
# prefix from its own directory, and the version rule of SameMajorVersion (cmake/).
EVFLOW_VERSION := $(shell sed -n 's/^Version: *//p' evflow.pc.in)
CMAKE_PACKAGE_DIR = $(DESTDIR)$(PREFIX)/lib/cmake/evflow

install: lib
	install -d $(DESTDIR)$(PREFIX)/lib $(DESTDIR)$(PREFIX)/lib/pkgconfig $(CMAKE_PACKAGE_DIR)
	for h in $(CORE_HDRS); do install -D -m 644 $$h $(DESTDIR)$(PREFIX)/include/evflow/$$h; done
	for h in $(PUBLIC_HDRS); do sed 's|^#include "\.\./\.\./|#include "|' $$h > $(DESTDIR)$(PREFIX)/include/evflow/$$(basename $$h); done
	install -m 644 $(LIB) $(DESTDIR)$(PREFIX)/lib/libevflow.a
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@LIBDIR@|$${prefix}/lib|g' -e 's|@INCLUDEDIR@|$${prefix}/include|g' \
	  evflow.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/evflow.pc
	sed '/@PACKAGE_INIT@/d' cmake/evflowConfig.cmake.in > $(CMAKE_PACKAGE_DIR)/evflowConfig.cmake
	sed 's|@EVFLOW_VERSION@|$(EVFLOW_VERSION)|g' cmake/evflowConfigVersion-make.cmake.in > $(CMAKE_PACKAGE_DIR)/evflowConfigVersion.cmake
	install -m 644 cmake/evflowTargets-make.cmake $(CMAKE_PACKAGE_DIR)/evflowTargets.cmake

uninstall:
	rm -rf $(DESTDIR)$(PREFIX)/include/evflow $(DESTDIR)$(PREFIX)/lib/libevflow.a $(DESTDIR)$(PREFIX)/lib/pkgconfig/evflow.pc \
	  $(CMAKE_PACKAGE_DIR)

# Installs into a scratch prefix and builds every example from the installed copy only.
install-check:
	rm -rf build/install-check
	$(MAKE) --no-print-directory CONFIG=release install PREFIX=$(CURDIR)/build/install-check
	@for e in $(EXAMPLE_SRCS); do \
	  echo "c++ $$e against the installed evflow"; \
	  PKG_CONFIG_PATH=$(CURDIR)/build/install-check/lib/pkgconfig \
	  $(CXX_NATIVE) -std=c++20 -Wall -Wextra -Werror -fno-exceptions -fno-rtti $$e \
	    $$(PKG_CONFIG_PATH=$(CURDIR)/build/install-check/lib/pkgconfig pkg-config --cflags --libs evflow) \
	    -o build/install-check/$$(basename $$e .cpp) || exit 1; done

# Every way a project can use the library, each proved by building examples/consumers/main.cpp
# against it and running it (.ci/package-check): pkg-config and find_package after make install
# and after cmake --install, add_subdirectory, FetchContent. Scratch and logs: build/package-check/.
.PHONY: package-check
package-check:
	@CXX="$(CXX_NATIVE)" EVFLOW_MAKE_INSTALL="$(MAKE) $(PARALLEL) --no-print-directory CONFIG=release install" \
	  .ci/package-check

# docs/manual.md names every public symbol: the checker reads them from the public
# headers (clang's syntax trees of <evflow/evflow.hpp>, <evflow/tasks.hpp>,
# <evflow/net.hpp> and <evflow/process.hpp>, namespace evflow without detail)
# and fails on any the manual does not mention.
manual-check:
	@command -v $(CXX_CLANG) >/dev/null || { echo "missing $(CXX_CLANG): run 'make deps'"; exit 1; }
	python3 docs/check_manual.py --cxx $(CXX_CLANG) --include include \
		--header evflow/evflow.hpp --header evflow/tasks.hpp \
		--header evflow/net.hpp --header evflow/process.hpp docs/manual.md

# --- the whole of CI ------------------------------------------------------------

check: deps-check format-check
	@rm -f build/stage-times.txt
	.ci/timed debug $(MAKE) $(PARALLEL) --no-print-directory CONFIG=debug test-run test-run-io-uring
	.ci/timed release $(MAKE) $(PARALLEL) --no-print-directory CONFIG=release lib header-check examples bench-build
	.ci/timed bench-smoke $(MAKE) $(PARALLEL) --no-print-directory bench-smoke
	.ci/timed install-check $(MAKE) $(PARALLEL) --no-print-directory install-check
	.ci/timed package-check $(MAKE) $(PARALLEL) --no-print-directory package-check
	.ci/timed manual-check $(MAKE) --no-print-directory manual-check
	.ci/timed sanitizers $(MAKE) $(PARALLEL) --no-print-directory sanitizers
	.ci/timed valgrind $(MAKE) $(PARALLEL) --no-print-directory valgrind
	.ci/timed fuzz-smoke $(MAKE) $(PARALLEL) --no-print-directory fuzz-smoke
	.ci/timed cross $(MAKE) $(PARALLEL) --no-print-directory cross
	.ci/timed bsd-check $(MAKE) $(PARALLEL) --no-print-directory bsd-check
	.ci/timed kqueue-emulation $(MAKE) $(PARALLEL) --no-print-directory kqueue-emulation
	.ci/timed windows $(MAKE) $(PARALLEL) --no-print-directory windows
	@echo "make check: stage times"; cat build/stage-times.txt
	@echo "make check: all passed"

# --- housekeeping ---------------------------------------------------------------

FORMAT_SRCS = $(shell find include platform reactor timers signals tasks net tests bench examples fuzz \( -name '*.cpp' -o -name '*.hpp' \) 2>/dev/null)
format:
	clang-format -i $(FORMAT_SRCS)
format-check:
	clang-format --dry-run --Werror $(FORMAT_SRCS)

# What each target installs when it is missing (.ci/deps.sh): make test only the test
# toolchain (a compiler, make, GoogleTest); make bench also the peers and report tools;
# make check (and make deps) everything.
deps:
	./.ci/deps.sh check
deps-test:
	@./.ci/deps.sh test
deps-check:
	@./.ci/deps.sh check

clean:
	rm -rf build

-include $(shell find $(BUILD) -name "*.d" 2>/dev/null)

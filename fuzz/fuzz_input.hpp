// evflow fuzzing — reading a libFuzzer input as a stream of operation codes and operands.
//
// Every target decodes its input with this reader: it never fails and never reads past
// the end; once the input is used up it answers zeros, and the target stops when
// done() says so. Small edits to an input change few operations, which is what lets
// libFuzzer's mutations explore step by step.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace evflow::fuzz {

class FuzzInput {
 public:
  FuzzInput(const uint8_t* data, size_t size) noexcept : data_(data), size_(size) {}

  bool done() const noexcept { return position_ >= size_; }

  uint8_t byte() noexcept { return done() ? 0 : data_[position_++]; }

  // A value in [0, count): one byte when count fits in one, two otherwise.
  uint32_t below(uint32_t count) noexcept {
    if (count <= 1) return 0;
    const uint32_t raw = count <= 256 ? byte() : static_cast<uint32_t>(byte()) | static_cast<uint32_t>(byte()) << 8;
    return raw % count;
  }

  bool flag() noexcept { return (byte() & 1) != 0; }

  // `width` bytes, little-endian.
  uint64_t bits(int width) noexcept {
    uint64_t value = 0;
    for (int i = 0; i < width; ++i)
      value |= static_cast<uint64_t>(byte()) << (8 * i);
    return value;
  }

  int64_t int64() noexcept { return static_cast<int64_t>(bits(8)); }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t position_ = 0;
};

// a + b, clamped to the int64 range. The same rule as timers' saturating_add, written
// again on purpose: the models compute expected deadlines without the code under test.
inline int64_t clamped_add(int64_t a, int64_t b) noexcept {
  int64_t sum;
  if (__builtin_add_overflow(a, b, &sum)) return b > 0 ? INT64_MAX : INT64_MIN;
  return sum;
}

// EVFLOW_FUZZ_TRACE=1 in the environment makes targets print each operation to stderr,
// to turn a crashing input into a readable regression test.
inline bool tracing() noexcept {
  static const bool enabled = std::getenv("EVFLOW_FUZZ_TRACE") != nullptr;
  return enabled;
}

[[noreturn]] inline void fail(const char* file, int line, const char* condition, const char* what) noexcept {
  std::fprintf(stderr, "%s:%d: invariant broken: %s (%s)\n", file, line, what, condition);
  std::abort();
}

}  // namespace evflow::fuzz

// Aborts with the broken invariant when `condition` is false: libFuzzer records the
// input as a crash.
#define FUZZ_TRACE(...) \
  (::evflow::fuzz::tracing() ? static_cast<void>(std::fprintf(stderr, __VA_ARGS__)) : static_cast<void>(0))

#define FUZZ_CHECK(condition, what) \
  ((condition) ? static_cast<void>(0) : ::evflow::fuzz::fail(__FILE__, __LINE__, #condition, what))

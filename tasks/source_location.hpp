// evflow — SourceLocation: where a task was spawned, for the task observer (observer.hpp).
//
// std::source_location where the standard library has it; elsewhere (a compiler without
// __builtin_source_location, clang before 15 with libstdc++) a class with the same members,
// filled by the compiler's __builtin_FILE, __builtin_FUNCTION and __builtin_LINE, and a
// column of 0.
#pragma once

#include <cstdint>
#if __has_include(<source_location>)
#include <source_location>
#endif

namespace evflow {

class Loop;

#if defined(__cpp_lib_source_location)
using SourceLocation = std::source_location;
#else
class SourceLocation {
 public:
  constexpr SourceLocation() noexcept = default;
  static constexpr SourceLocation current(const char* file = __builtin_FILE(),
                                          const char* function = __builtin_FUNCTION(),
                                          std::uint_least32_t line = __builtin_LINE()) noexcept {
    SourceLocation where;
    where.file_ = file;
    where.function_ = function;
    where.line_ = line;
    return where;
  }
  constexpr const char* file_name() const noexcept { return file_; }
  constexpr const char* function_name() const noexcept { return function_; }
  constexpr std::uint_least32_t line() const noexcept { return line_; }
  constexpr std::uint_least32_t column() const noexcept { return 0; }

 private:
  const char* file_ = "";
  const char* function_ = "";
  std::uint_least32_t line_ = 0;
};
#endif

// What spawn() takes where it is given a loop: the loop, and where the call is (a
// parameter a caller never writes: `spawn(loop, fn)` converts the loop and records the
// place of that call).
struct SpawnSite {
  SpawnSite(Loop& where_loop, SourceLocation where = SourceLocation::current()) noexcept  // NOLINT: implicit by design
      : loop(where_loop), location(where) {}
  Loop& loop;
  SourceLocation location;
};

}  // namespace evflow

// evflow — Error and Result<T>: how every fallible call in evflow reports failure.
//
// A failure is a value, never an exception: the core builds with -fno-exceptions.
// An Error carries a positive errno-style code (EBADF, EPERM, EMFILE, ...); a
// default-constructed Error means success. Result<T> carries either a T or an Error.
// EAGAIN is not an error at this level: wrappers that can return it say so.
#pragma once

#include <cerrno>
#include <cstring>
#include <utility>

#include "fatal.hpp"

namespace evflow {

class [[nodiscard]] Error {
 public:
  constexpr Error() noexcept = default;
  constexpr explicit Error(int code) noexcept : code_(code) {}

  // The errno-style code; 0 when this Error means success.
  constexpr int code() const noexcept { return code_; }
  // True when this is a failure, so `if (auto err = loop.open())` reads naturally.
  constexpr explicit operator bool() const noexcept { return code_ != 0; }
  // A human-readable description of the code, for logs.
  const char* message() const noexcept { return code_ == 0 ? "success" : std::strerror(code_); }

  friend constexpr bool operator==(Error a, Error b) noexcept { return a.code_ == b.code_; }

 private:
  int code_ = 0;
};

// A value of type T, or the Error that prevented computing it.
// Precondition of value(): ok(). Reading the value of a failed Result aborts:
// it is a programming error, caught the same way in release and debug builds.
template <class T>
class [[nodiscard]] Result {
 public:
  constexpr Result(T value) noexcept : value_(std::move(value)) {}     // NOLINT: implicit by design
  constexpr Result(Error error) noexcept : value_(), error_(error) {}  // NOLINT: implicit by design

  constexpr bool ok() const noexcept { return !error_; }
  constexpr explicit operator bool() const noexcept { return ok(); }
  constexpr Error error() const noexcept { return error_; }

  constexpr T& value() noexcept {
    if (!ok()) detail::fatal("Result::value() called on a failed Result");
    return value_;
  }
  constexpr const T& value() const noexcept {
    if (!ok()) detail::fatal("Result::value() called on a failed Result");
    return value_;
  }
  constexpr T value_or(T fallback) const noexcept { return ok() ? value_ : fallback; }

 private:
  T value_;
  Error error_;
};

}  // namespace evflow

// evflow — the readiness mask a backend reports and an Io watcher asks for.
#pragma once

#include <cstdint>

namespace evflow {

class Events {
 public:
  constexpr Events() noexcept = default;
  constexpr explicit Events(uint8_t bits) noexcept : bits_(bits) {}

  constexpr uint8_t bits() const noexcept { return bits_; }
  constexpr bool empty() const noexcept { return bits_ == 0; }
  constexpr bool readable() const noexcept { return (bits_ & 1) != 0; }
  constexpr bool writable() const noexcept { return (bits_ & 2) != 0; }
  // The descriptor became unusable while watched (closed, or refused by the kernel when
  // evflow re-registered it); the watcher has been stopped before this callback.
  constexpr bool invalid() const noexcept { return (bits_ & 4) != 0; }
  // True when every bit of `other` is set here.
  constexpr bool contains(Events other) const noexcept { return (bits_ & other.bits_) == other.bits_; }

  friend constexpr Events operator|(Events a, Events b) noexcept { return Events(uint8_t(a.bits_ | b.bits_)); }
  friend constexpr Events operator&(Events a, Events b) noexcept { return Events(uint8_t(a.bits_ & b.bits_)); }
  constexpr Events& operator|=(Events other) noexcept {
    bits_ = uint8_t(bits_ | other.bits_);
    return *this;
  }
  friend constexpr bool operator==(Events a, Events b) noexcept { return a.bits_ == b.bits_; }

 private:
  uint8_t bits_ = 0;
};

// Interest and readiness bits. An Io watcher asks for Readable, Writable or both; its
// callback receives the subset that is ready, or Invalid alone.
inline constexpr Events Readable{1};
inline constexpr Events Writable{2};
inline constexpr Events Invalid{4};

namespace detail {
inline constexpr Events kInterestMask = Readable | Writable;  // the bits a watcher may ask for
}  // namespace detail

}  // namespace evflow

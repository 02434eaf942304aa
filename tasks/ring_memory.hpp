// evflow — detail::RingMemory<T>: the raw memory of a ring of T (Channel, ThreadChannel).
//
// Uninitialised room for `size` values, from the form of operator new that gives null when
// out of memory (the aligned form for an over-aligned T), so that a ring that cannot be
// allocated is an error code, never an exception; null also when size * sizeof(T) would
// overflow. The caller constructs and destroys the values.
#pragma once

#include <cstddef>
#include <cstdint>
#include <new>

namespace evflow::detail {

template <class T>
struct RingMemory {
  static constexpr bool kOverAligned = alignof(T) > __STDCPP_DEFAULT_NEW_ALIGNMENT__;

  static T* allocate(std::size_t size) noexcept {
    if (size > SIZE_MAX / sizeof(T)) return nullptr;
    if constexpr (kOverAligned) {
      return static_cast<T*>(::operator new(size * sizeof(T), std::align_val_t(alignof(T)), std::nothrow));
    } else {
      return static_cast<T*>(::operator new(size * sizeof(T), std::nothrow));
    }
  }
  static void deallocate(T* slots) noexcept {
    if (slots == nullptr) return;
    if constexpr (kOverAligned) {
      ::operator delete(slots, std::align_val_t(alignof(T)));
    } else {
      ::operator delete(slots);
    }
  }
};

}  // namespace evflow::detail

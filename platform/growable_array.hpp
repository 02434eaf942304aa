// evflow — GrowableArray<T>: the one growable container of the core, which reports when
// memory runs out instead of ending the process.
//
// std::vector aborts when an allocation fails in a build without exceptions. Here every
// growth is explicit and answers false when the memory is not there, so that the caller
// can return ENOMEM and leave everything as it was. The rule the core follows with it:
// grow where an error can be returned (open, start), and only use capacity reserved
// there on the paths that cannot fail (dispatch, expiry, stop).
//
// Elements are plain values (table entries, pointers, indices): trivially copyable, so a
// growth is one allocation and a copy. Memory comes from the nothrow operator new, which
// a program (or a test) may replace. Large arrays are not advised onto transparent huge
// pages: in a virtual machine whose host takes back the guest's free memory, a huge page
// first written costs the host's faults for all of it. Writing 36 MB for the first time
// after a pause or another program's exit measured 80-117 ms on 2 MB pages and 15-21 ms
// on 4 KB pages (otherwise 2 ms and 15 ms): a million timers' first expiry paid that.
#pragma once

#include <cstddef>
#include <cstring>
#include <new>
#include <type_traits>

#include "fatal.hpp"

namespace evflow::detail {

template <class T>
class GrowableArray {
  static_assert(std::is_trivially_copyable_v<T> && std::is_trivially_destructible_v<T>,
                "GrowableArray holds plain values");

 public:
  GrowableArray() noexcept = default;
  ~GrowableArray() { ::operator delete(data_); }
  GrowableArray(const GrowableArray&) = delete;
  GrowableArray& operator=(const GrowableArray&) = delete;

  std::size_t size() const noexcept { return size_; }
  std::size_t capacity() const noexcept { return capacity_; }
  bool empty() const noexcept { return size_ == 0; }
  T* data() noexcept { return data_; }
  T* begin() noexcept { return data_; }
  T* end() noexcept { return data_ + size_; }
  const T* begin() const noexcept { return data_; }
  const T* end() const noexcept { return data_ + size_; }
  T& operator[](std::size_t i) noexcept { return data_[i]; }
  const T& operator[](std::size_t i) const noexcept { return data_[i]; }
  T& back() noexcept { return data_[size_ - 1]; }

  // Makes room for `count` elements. O(size) when it grows. False when the memory is not
  // there; the array is then unchanged.
  [[nodiscard]] bool reserve(std::size_t count) noexcept {
    if (count <= capacity_) return true;
    if (count > static_cast<std::size_t>(-1) / sizeof(T)) return false;
    T* bigger = static_cast<T*>(::operator new(count * sizeof(T), std::nothrow));
    if (bigger == nullptr) return false;
    if (size_ != 0) std::memcpy(static_cast<void*>(bigger), static_cast<const void*>(data_), size_ * sizeof(T));
    ::operator delete(data_);
    data_ = bigger;
    capacity_ = count;
    return true;
  }

  // reserve(), growing at least twofold: amortised O(1) per element.
  [[nodiscard]] bool reserve_amortised(std::size_t count) noexcept {
    if (count <= capacity_) return true;
    const std::size_t doubled = capacity_ * 2;
    return reserve(count > doubled ? count : doubled) || reserve(count);
  }

  // Writes to every page of the reserved capacity beyond size(), so that the kernel maps
  // it now rather than at first use (a page fault costs microseconds in a guest). For
  // element types that need no construction.
  void prefault() noexcept {
    static_assert(std::is_trivially_copyable_v<T> && std::is_trivially_destructible_v<T>);
    constexpr std::size_t kStep = 4096 / sizeof(T) > 0 ? 4096 / sizeof(T) : 1;
    for (std::size_t i = size_; i < capacity_; i += kStep)
      data_[i] = T{};
    if (capacity_ > size_) data_[capacity_ - 1] = T{};
  }

  // Sets the size; new elements are value-initialised. False (unchanged) when growing
  // needs memory that is not there.
  [[nodiscard]] bool resize(std::size_t count) noexcept {
    if (!reserve_amortised(count)) return false;
    for (std::size_t i = size_; i < count; ++i)
      data_[i] = T{};
    size_ = count;
    return true;
  }

  // Appends within the reserved capacity. Precondition: size() < capacity(); reaching
  // past it is a bug in the caller's reservation, caught in every build.
  void push_back(const T& value) noexcept {
    if (size_ == capacity_) fatal("GrowableArray::push_back beyond the reserved capacity");
    data_[size_++] = value;
  }

  // Shrinks the size to `count` (<= size()); the capacity stays.
  void truncate(std::size_t count) noexcept { size_ = count < size_ ? count : size_; }
  void clear() noexcept { size_ = 0; }

  void swap(GrowableArray& other) noexcept {
    T* data = data_;
    data_ = other.data_;
    other.data_ = data;
    const std::size_t size = size_, capacity = capacity_;
    size_ = other.size_;
    capacity_ = other.capacity_;
    other.size_ = size;
    other.capacity_ = capacity;
  }

 private:
  T* data_ = nullptr;
  std::size_t size_ = 0;
  std::size_t capacity_ = 0;
};

}  // namespace evflow::detail

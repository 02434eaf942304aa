// evflow — InlineCallback: a watcher's callback, stored inside the watcher.
//
// Any callable (lambda, function pointer, functor) whose size fits the inline buffer is
// constructed in place: starting, stopping and firing a watcher never allocates. A
// callable that does not fit is a compile-time error; capture a pointer to your state
// (`[conn]` or `[this]`) instead of many references.
//
// A callback is called through a noexcept function: unwinding out of one ends the process
// (std::terminate).
//
// A callable may take the watcher's argument list or any prefix of it: `(Io&, Events)`,
// `(Io&)` or `()`. A null function pointer stores nothing: the watcher then has no
// callback, and start() answers EINVAL, as for one never given. For captures larger than
// the inline buffer, evflow::WithCapacity<Watcher, Bytes> gives a watcher a larger one.
#pragma once

#include <cstddef>
#include <new>
#include <tuple>
#include <type_traits>
#include <utility>

namespace evflow {

// Bytes available for a callback's captures: three pointers, e.g. `[this, &a, &b]`.
inline constexpr std::size_t kCallbackCapacity = 3 * sizeof(void*);

namespace detail {

template <class Signature, std::size_t Capacity = kCallbackCapacity>
class InlineCallback;

// The longest prefix of Args... that Fn can be called with; -1 if none.
template <class Fn, class Tuple, std::size_t N = std::tuple_size_v<Tuple>>
constexpr int longest_prefix() noexcept {
  constexpr bool callable = []<std::size_t... I>(std::index_sequence<I...>) {
    return std::is_invocable_v<Fn&, std::tuple_element_t<I, Tuple>...>;
  }
  (std::make_index_sequence<N>());
  if constexpr (callable) {
    return static_cast<int>(N);
  } else if constexpr (N == 0) {
    return -1;
  } else {
    return longest_prefix<Fn, Tuple, N - 1>();
  }
}

template <class R, class... Args, std::size_t Capacity>
class InlineCallback<R(Args...), Capacity> {
 public:
  InlineCallback() noexcept = default;
  ~InlineCallback() { reset(); }
  InlineCallback(const InlineCallback&) = delete;
  InlineCallback& operator=(const InlineCallback&) = delete;

  using Signature = R(Args...);
  static constexpr std::size_t kCapacity = Capacity;

  template <class F>
  void emplace(F&& f) noexcept {
    using Fn = std::decay_t<F>;
    static_assert(detail::longest_prefix<Fn, std::tuple<Args...>>() >= 0,
                  "evflow: the callback must be callable with the watcher's arguments, a prefix of them, or none");
    static_assert(sizeof(Fn) <= Capacity,
                  "evflow: callback too large for the watcher's inline storage; capture a pointer "
                  "to your state instead of many values");
    static_assert(alignof(Fn) <= alignof(void*), "evflow: callback alignment exceeds pointer alignment");
    static_assert(std::is_nothrow_constructible_v<Fn, F&&>, "evflow: callbacks must be nothrow constructible");
    reset();
    if constexpr (std::is_pointer_v<std::remove_reference_t<F>> || std::is_member_pointer_v<std::decay_t<F>>) {
      if (f == nullptr) return;  // a null function pointer is no callback: start() says EINVAL
    }
    ::new (static_cast<void*>(storage_)) Fn(std::forward<F>(f));
    ops_ = &kOps<Fn>;
  }

  // Destroys the stored callable, if any.
  void reset() noexcept {
    if (ops_ != nullptr && ops_->destroy != nullptr) ops_->destroy(storage_);
    ops_ = nullptr;
  }

  explicit operator bool() const noexcept { return ops_ != nullptr; }

  // Precondition: a callable is stored.
  R operator()(Args... args) noexcept { return ops_->invoke(storage_, args...); }

 private:
  // One table per callable type: the watcher keeps a single pointer, not two.
  struct Ops {
    R (*invoke)(void*, Args...) noexcept;
    void (*destroy)(void*);  // null when the callable is trivially destructible
  };
  template <class Fn>
  // noexcept, and instantiated where the callback is given (in the caller's code, built
  // with exceptions or not): an exception leaving a callback ends the process through
  // std::terminate right there, whatever flags the library was built with.
  static R invoke(void* self, Args... args) noexcept {
    constexpr std::size_t kTaken = static_cast<std::size_t>(detail::longest_prefix<Fn, std::tuple<Args...>>());
    return [&]<std::size_t... I>(std::index_sequence<I...>)->R {
      [[maybe_unused]] auto all = std::forward_as_tuple(args...);  // unused when none is taken
      return static_cast<R>((*static_cast<Fn*>(self))(std::get<I>(all)...));
    }
    (std::make_index_sequence<kTaken>());
  }
  template <class Fn>
  static void destroy(void* self) {
    static_cast<Fn*>(self)->~Fn();
  }
  template <class Fn>
  static constexpr Ops kOps{&invoke<Fn>, std::is_trivially_destructible_v<Fn> ? nullptr : &destroy<Fn>};

  alignas(void*) unsigned char storage_[Capacity];
  const Ops* ops_ = nullptr;
};

}  // namespace detail
}  // namespace evflow

// evflow — ContextVar<T>: a value per task, inherited at spawn.
//
//   inline evflow::ContextVar<std::string> request_id("-");   // "-" where none is set
//
//   evflow::Task<> handle(Request r) {
//     (void)request_id.set(r.id);                 // this task's value, from now on
//     auto reply = co_await evflow::spawn(loop, fetch, r.url).join();   // fetch sees r.id
//     log(request_id.get(), reply);
//   }
//
// Each task has its own value of every variable. A spawned task starts with the values the
// spawning code had at the moment of the spawn (a task's, or plain code's on that thread):
// a snapshot, so that a later set() in either is not seen by the other. Code awaited
// inside a task (a Task, a scope's body, a group's body) is the same task and sees its
// values; a group's child is spawned, so it starts from a snapshot.
//
// get() gives the running code's value, or the variable's default when none is set.
// set() and reset() change only the running code's context: a task's own, or, in plain
// code, the thread's (which the tasks it spawns inherit).
//
// Costs: a spawn shares its spawner's values (one atomic increment, nothing copied); a
// task switch swaps one pointer; get() is a scan of the variables set (few, in practice);
// set() allocates the new value, and copies the table of values (pointers) when another
// task still shares it. Errors: set() gives ENOMEM when that memory is not there (the
// value is then unchanged).
#pragma once

#include <new>
#include <utility>

#include "context.hpp"

namespace evflow {

template <class T>
class ContextVar {
 public:
  explicit ContextVar(T default_value = T()) noexcept(std::is_nothrow_move_constructible_v<T>)
      : key_(detail::new_context_key()), default_(std::move(default_value)) {}
  ContextVar(const ContextVar&) = delete;
  ContextVar& operator=(const ContextVar&) = delete;
  // Values already set stay with the contexts that hold them until those end.
  ~ContextVar() = default;

  // The running code's value (a copy), or the default.
  T get() const {
    const T* value = find();
    return value != nullptr ? *value : default_;
  }
  // The running code's value, or null when none is set. The pointer is good until the
  // next set() or reset() of this variable in the same task (or plain code's thread).
  const T* find() const noexcept {
    detail::Context* context = detail::current_context();
    if (context == nullptr) return nullptr;
    detail::ContextValue* value = context->find(key_);
    return value != nullptr ? &static_cast<Box*>(value)->value : nullptr;
  }
  // Whether the running code has a value of its own (set, or inherited at its spawn).
  bool is_set() const noexcept { return find() != nullptr; }

  // Gives the running code the value `value`: ENOMEM when the memory is not there.
  Error set(T value) noexcept(std::is_nothrow_move_constructible_v<T>) {
    void* memory = ::operator new(sizeof(Box), std::nothrow);
    if (memory == nullptr) return Error(ENOMEM);
    Box* box = ::new (memory) Box(std::move(value));
    return detail::put_context_value(detail::current_context(), key_, box);
  }
  // Back to the default for the running code. ENOMEM when its shared table could not be
  // copied.
  Error reset() noexcept { return detail::put_context_value(detail::current_context(), key_, nullptr); }

  const T& default_value() const noexcept { return default_; }
  // The variable's key in a context table: unique for the life of the process.
  uint64_t key() const noexcept { return key_; }

 private:
  struct Box : detail::ContextValue {
    explicit Box(T&& v) noexcept(std::is_nothrow_move_constructible_v<T>) : value(std::move(v)) {
      destroy = [](detail::ContextValue* self) noexcept {
        Box* box = static_cast<Box*>(self);
        box->~Box();
        ::operator delete(box);
      };
    }
    T value;
  };

  uint64_t key_;
  T default_;
};

}  // namespace evflow

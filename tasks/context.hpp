// evflow — detail::Context: the values of the context variables of one task.
//
// The bet: context variables are read often and set rarely, and a task is spawned far
// more often than it sets one. So a context is an immutable-once-shared array of (key,
// value) pairs, reference counted: a spawn shares the spawning task's context (one
// increment), a task switch swaps one pointer (the running task, scheduler.hpp), and only
// set() pays: it copies the array when another task shares it (copy on write) and makes
// a new value, so that no task ever sees another's later change.
//
// Each value is a ContextValue of its own, reference counted by the contexts that hold it:
// copying a context copies pointers, never values. Counts are atomic so that a snapshot
// can be handed to another thread (work sent to a thread pool).
//
// Outside any task (plain code on a thread), the thread has a context of its own: what
// plain code sets there, the tasks it spawns see. It goes with the thread, except on
// Windows, where plain code resets what it set (a table left empty is freed).
#pragma once

#include <atomic>
#include <cstdint>

#include "../platform/result.hpp"
#include "scheduler.hpp"

namespace evflow::detail {

// One value of one context variable.
struct ContextValue {
  std::atomic<uint32_t> references{1};
  void (*destroy)(ContextValue* self) noexcept = nullptr;

  void release() noexcept {
    if (references.fetch_sub(1, std::memory_order_acq_rel) == 1) destroy(this);
  }
};

struct ContextEntry {
  uint64_t key;  // the variable's (ContextVar::key())
  ContextValue* value;
};

// Followed in memory by `capacity` entries, of which the first `size` are in use.
struct alignas(alignof(ContextEntry)) Context {
  std::atomic<uint32_t> references{1};
  uint32_t size = 0;
  uint32_t capacity = 0;

  ContextEntry* entries() noexcept { return reinterpret_cast<ContextEntry*>(this + 1); }
  ContextValue* find(uint64_t key) noexcept {
    ContextEntry* entry = entries();
    for (uint32_t i = 0; i < size; ++i)
      if (entry[i].key == key) return entry[i].value;
    return nullptr;
  }
};

inline Context* retain_context(Context* context) noexcept {
  if (context != nullptr) context->references.fetch_add(1, std::memory_order_relaxed);
  return context;
}

// The context of plain code on this thread (released when the thread ends).
Context*& thread_context() noexcept;

// Where the running code's context is: the running task's, else the thread's.
inline Context*& current_context() noexcept {
  TaskRoot* task = TaskScheduler::current();
  return task != nullptr ? task->context : thread_context();
}

// Gives `*slot` the value `value` for `key` (taking over the caller's reference), or
// none when `value` is null; copies the context first when it is shared. ENOMEM when
// the copy cannot be allocated (then `value` is released and `*slot` unchanged).
Error put_context_value(Context*& slot, uint64_t key, ContextValue* value) noexcept;

// A new key, one per context variable for the life of the process.
uint64_t new_context_key() noexcept;

}  // namespace evflow::detail

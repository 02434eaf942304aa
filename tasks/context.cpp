#include "context.hpp"

#include <new>

namespace evflow::detail {

namespace {

Context* make_context(uint32_t capacity) noexcept {
  void* memory = ::operator new(sizeof(Context) + capacity * sizeof(ContextEntry), std::nothrow);
  if (memory == nullptr) return nullptr;
  auto* context = ::new (memory) Context();
  context->capacity = capacity;
  return context;
}

void destroy_context(Context* context) noexcept {
  ContextEntry* entry = context->entries();
  for (uint32_t i = 0; i < context->size; ++i)
    entry[i].value->release();
  context->~Context();
  ::operator delete(context);
}

#if defined(_WIN32)
// MinGW-w64's thread_local objects with destructors corrupt the heap at thread exit in
// static builds: a plain pointer there, whose table reset() frees once it is empty.
thread_local Context* plain_code_context = nullptr;
Context*& plain_code_slot() noexcept { return plain_code_context; }
#else
// Plain code's context on one thread, released when the thread ends.
struct ThreadContext {
  Context* context = nullptr;
  ThreadContext() noexcept = default;
  ThreadContext(const ThreadContext&) = delete;
  ThreadContext& operator=(const ThreadContext&) = delete;
  ~ThreadContext() { release_context(context); }
};
thread_local ThreadContext plain_code_context;
Context*& plain_code_slot() noexcept { return plain_code_context.context; }
#endif

}  // namespace

Context*& thread_context() noexcept { return plain_code_slot(); }

void release_context(Context* context) noexcept {
  if (context != nullptr && context->references.fetch_sub(1, std::memory_order_acq_rel) == 1) destroy_context(context);
}

uint64_t new_context_key() noexcept {
  static std::atomic<uint64_t> last{0};
  return last.fetch_add(1, std::memory_order_relaxed) + 1;
}

Error put_context_value(Context*& slot, uint64_t key, ContextValue* value) noexcept {
  Context* context = slot;
  uint32_t index = 0;
  while (context != nullptr && index < context->size && context->entries()[index].key != key)
    ++index;
  const bool present = context != nullptr && index < context->size;
  if (!present && value == nullptr) return Error();  // nothing to remove
  const uint32_t size = context != nullptr ? context->size : 0;
  const bool shared = context != nullptr && context->references.load(std::memory_order_acquire) != 1;
  if (context == nullptr || shared || (!present && size == context->capacity)) {
    // Copy on write, with room for one more (twice the size when growing).
    const uint32_t capacity = size < 2 ? 4 : size * 2;
    Context* copy = make_context(capacity);
    if (copy == nullptr) {
      if (value != nullptr) value->release();
      return Error(ENOMEM);
    }
    for (uint32_t i = 0; i < size; ++i) {
      copy->entries()[i] = context->entries()[i];
      copy->entries()[i].value->references.fetch_add(1, std::memory_order_relaxed);
    }
    copy->size = size;
    release_context(context);
    slot = context = copy;
  }
  ContextEntry* entries = context->entries();
  if (present) {
    entries[index].value->release();
    if (value != nullptr) {
      entries[index].value = value;
    } else {
      entries[index] = entries[--context->size];
      if (context->size == 0) {  // nothing set any more: no table
        release_context(context);
        slot = nullptr;
      }
    }
  } else {
    entries[context->size++] = ContextEntry{key, value};
  }
  return Error();
}

}  // namespace evflow::detail

#include "frame_pool.hpp"

#include <new>

namespace evflow::detail {

FramePool::~FramePool() {
  for (FreeBlock*& head : free_) {
    while (FreeBlock* block = head) {
      head = block->next;
      ::operator delete(static_cast<void*>(block));
    }
  }
}

void* FramePool::allocate_new(std::size_t size) noexcept {
  const std::size_t total = size + kHeaderSize;
  FramePool* pool = current_;
  const std::size_t klass = pool != nullptr ? class_of(total) : kClasses;
  void* raw = ::operator new(klass < kClasses ? class_bytes(klass) : total, std::nothrow);
  if (raw == nullptr) return nullptr;
  if (klass < kClasses) return pool->hand_out(raw, klass);
  Header* header = static_cast<Header*>(raw);
  header->pool = nullptr;
  header->klass = kClasses;
  return static_cast<unsigned char*>(raw) + kHeaderSize;
}

void FramePool::free_to_heap(Header* header) noexcept { ::operator delete(static_cast<void*>(header)); }

void FramePool::release() noexcept {
  if (current_ == this) current_ = nullptr;
  if (blocks_out_ == 0) {
    delete this;
  } else {
    orphaned_ = true;
  }
}

}  // namespace evflow::detail

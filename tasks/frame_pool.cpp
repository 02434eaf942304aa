#include "frame_pool.hpp"

#include <new>

namespace evflow::detail {

namespace {

struct Header {
  FramePool* pool;    // null: the block came from the heap and goes back there
  std::size_t klass;  // the size class, when pooled
};
static_assert(sizeof(Header) <= FramePool::kHeaderSize);

// The smallest class holding `bytes`, or kClasses when none does.
std::size_t class_of(std::size_t bytes) noexcept {
  std::size_t klass = 0;
  std::size_t capacity = FramePool::kSmallestClass;
  while (klass < FramePool::kClasses && capacity < bytes) {
    capacity *= 2;
    ++klass;
  }
  return klass;
}

std::size_t class_bytes(std::size_t klass) noexcept { return FramePool::kSmallestClass << klass; }

}  // namespace

thread_local FramePool* FramePool::current_ = nullptr;

FramePool::~FramePool() {
  for (FreeBlock*& head : free_) {
    while (FreeBlock* block = head) {
      head = block->next;
      ::operator delete(static_cast<void*>(block));
    }
  }
}

void* FramePool::allocate(std::size_t size) noexcept {
  const std::size_t total = size + kHeaderSize;
  FramePool* pool = current_;
  const std::size_t klass = pool != nullptr ? class_of(total) : kClasses;
  void* raw = nullptr;
  if (klass < kClasses && pool->free_[klass] != nullptr) {
    FreeBlock* block = pool->free_[klass];
    pool->free_[klass] = block->next;
    raw = block;
  } else {
    raw = ::operator new(klass < kClasses ? class_bytes(klass) : total, std::nothrow);
    if (raw == nullptr) return nullptr;
  }
  Header* header = static_cast<Header*>(raw);
  if (klass < kClasses) {
    header->pool = pool;
    header->klass = klass;
    ++pool->blocks_out_;
    pool->live_ += class_bytes(klass);
    if (pool->live_ > pool->high_water_) pool->high_water_ = pool->live_;
  } else {
    header->pool = nullptr;
    header->klass = kClasses;
  }
  return static_cast<unsigned char*>(raw) + kHeaderSize;
}

void FramePool::deallocate(void* block) noexcept {
  if (block == nullptr) return;
  void* raw = static_cast<unsigned char*>(block) - kHeaderSize;
  Header* header = static_cast<Header*>(raw);
  FramePool* pool = header->pool;
  if (pool == nullptr) {
    ::operator delete(raw);
    return;
  }
  const std::size_t klass = header->klass;
  pool->live_ -= class_bytes(klass);
  --pool->blocks_out_;
  FreeBlock* free = static_cast<FreeBlock*>(raw);
  free->next = pool->free_[klass];
  pool->free_[klass] = free;
  if (pool->orphaned_ && pool->blocks_out_ == 0) delete pool;
}

void FramePool::release() noexcept {
  if (current_ == this) current_ = nullptr;
  if (blocks_out_ == 0) {
    delete this;
  } else {
    orphaned_ = true;
  }
}

}  // namespace evflow::detail

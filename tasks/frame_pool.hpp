// evflow — detail::FramePool: where one loop's coroutine frames come from.
//
// The bet: a server's tasks are a few shapes spawned over and over, so their frames are a
// few sizes. Frames are kept by size class (64, 128, ..., 4096 bytes, each a power of two)
// in singly linked free lists; a frame given back goes to the head of its class's list and
// the next frame of that class takes it, so in steady state no frame touches the heap.
// Larger frames come from the heap each time. No atomics: a pool belongs to one loop, so
// to one thread, and frames must be given back on that thread.
//
// Each block starts with a 16-byte header naming its pool and class, so that a frame can
// be given back without knowing where it came from (a coroutine's operator delete gets
// only the pointer and the size). A frame made while no pool is current has no pool and
// goes back to the heap.
//
// The pool outlives its loop while frames are out: when the loop goes, release() marks
// it orphaned and the last frame given back deletes it.
//
// Costs: allocate and deallocate O(1), one branch on the class; the memory of the free
// lists is kept until the pool goes: at most the sum of each class's own peak, which can
// exceed high_water_bytes() (the peak of all classes together) when the shapes change.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>

namespace evflow::detail {

class FramePool {
 public:
  static constexpr std::size_t kSmallestClass = 64;
  static constexpr std::size_t kClasses = 7;  // 64 .. 4096 bytes
  static constexpr std::size_t kHeaderSize = 16;

  FramePool() noexcept = default;
  FramePool(const FramePool&) = delete;
  FramePool& operator=(const FramePool&) = delete;

  // The pool that frames made now come from (set while a loop runs its tasks and while
  // it spawns), or null: the heap.
  static FramePool* current() noexcept { return current_; }
  // Makes `pool` current until the returned scope ends.
  class Scope {
   public:
    explicit Scope(FramePool* pool) noexcept : saved_(current_) { current_ = pool; }
    ~Scope() { current_ = saved_; }
    Scope(const Scope&) = delete;
    Scope& operator=(const Scope&) = delete;

   private:
    FramePool* saved_;
  };

  // `size` bytes from the current pool, or from the heap when none is current or the size
  // is larger than the largest class. Null when the memory is not there.
  static void* allocate(std::size_t size) noexcept {
    FramePool* pool = current_;
    if (pool != nullptr) {
      const std::size_t klass = class_of(size + kHeaderSize);
      if (klass < kClasses && pool->free_[klass] != nullptr) {
        FreeBlock* block = pool->free_[klass];
        pool->free_[klass] = block->next;
        return pool->hand_out(block, klass);
      }
    }
    return allocate_new(size);
  }
  // Gives back a block from allocate(), to its pool (or to the heap).
  static void deallocate(void* block) noexcept {
    if (block == nullptr) return;
    Header* header = reinterpret_cast<Header*>(static_cast<unsigned char*>(block) - kHeaderSize);
    FramePool* pool = header->pool;
    if (pool == nullptr) return free_to_heap(header);
    const std::size_t klass = header->klass;
    pool->live_ -= class_bytes(klass);
    --pool->blocks_out_;
    FreeBlock* free = reinterpret_cast<FreeBlock*>(header);
    free->next = pool->free_[klass];
    pool->free_[klass] = free;
    if (pool->orphaned_ && pool->blocks_out_ == 0) delete pool;
  }

  // The most bytes of pooled frames live at once (headers and class rounding included).
  std::size_t high_water_bytes() const noexcept { return high_water_; }
  std::size_t live_bytes() const noexcept { return live_; }

  // The loop goes: the pool deletes itself now if no frame is out, else with the last.
  void release() noexcept;

 private:
  struct FreeBlock {
    FreeBlock* next;
  };
  struct Header {
    FramePool* pool;    // null: the block came from the heap and goes back there
    std::size_t klass;  // the size class, when pooled
  };
  static_assert(sizeof(Header) <= kHeaderSize);

  ~FramePool();

  // The smallest class holding `bytes` (64 << class), or kClasses when none does.
  static std::size_t class_of(std::size_t bytes) noexcept {
    if (bytes <= kSmallestClass) return 0;
    const std::size_t klass = static_cast<std::size_t>(std::bit_width(bytes - 1)) - 6;
    return klass < kClasses ? klass : kClasses;
  }
  static std::size_t class_bytes(std::size_t klass) noexcept { return kSmallestClass << klass; }

  void* hand_out(void* raw, std::size_t klass) noexcept {
    Header* header = static_cast<Header*>(raw);
    header->pool = this;
    header->klass = klass;
    ++blocks_out_;
    live_ += class_bytes(klass);
    if (live_ > high_water_) high_water_ = live_;
    return static_cast<unsigned char*>(raw) + kHeaderSize;
  }
  static void* allocate_new(std::size_t size) noexcept;
  static void free_to_heap(Header* header) noexcept;

  static inline thread_local FramePool* current_ = nullptr;

  FreeBlock* free_[kClasses] = {};
  std::size_t live_ = 0;
  std::size_t high_water_ = 0;
  std::size_t blocks_out_ = 0;
  bool orphaned_ = false;
};

}  // namespace evflow::detail

// The replaced global allocation functions (allocation_control.hpp).
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"  // new/delete here are malloc/free
#include "tests/support/allocation_control.hpp"

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <new>

namespace {

std::atomic<long> g_allocations{0};
std::atomic<long> g_countdown{0};  // > 0: armed; the allocation that brings it to 0 fails
std::atomic<bool> g_reached{false};
std::atomic<long> g_throwing_while_armed{0};
thread_local int t_kernel_depth = 0;  // KernelAllocations alive in this thread

// True when this allocation is the armed one.
bool fails_now() noexcept {
  long left = g_countdown.load(std::memory_order_relaxed);
  while (left > 0) {
    if (g_countdown.compare_exchange_weak(left, left - 1, std::memory_order_relaxed)) {
      if (left != 1) return false;
      g_reached.store(true);
      return true;
    }
  }
  return false;
}

void* allocate_nothrow(std::size_t size) noexcept {
  if (t_kernel_depth > 0) return std::malloc(size ? size : 1);
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (fails_now()) return nullptr;
  return std::malloc(size ? size : 1);
}

// Out of memory in a throwing operator new: bad_alloc, or the end of a build without
// exceptions (as the standard library's own operator new does there).
[[noreturn]] void out_of_memory() {
#if defined(__cpp_exceptions)
  throw std::bad_alloc();
#else
  std::fputs("evflow test: out of memory\n", stderr);
  std::abort();
#endif
}

void* allocate_throwing(std::size_t size) {
  if (t_kernel_depth > 0) {
    if (void* p = std::malloc(size ? size : 1)) return p;
    out_of_memory();
  }
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (g_countdown.load(std::memory_order_relaxed) > 0) g_throwing_while_armed.fetch_add(1);
  if (fails_now()) {
    std::fputs(
        "evflow test: a throwing operator new was made to fail; the library must allocate with "
        "new (std::nothrow) and report ENOMEM\n",
        stderr);
    std::abort();
  }
  if (void* p = std::malloc(size ? size : 1)) return p;
  out_of_memory();
}

}  // namespace

void* operator new(std::size_t size) { return allocate_throwing(size); }
void* operator new[](std::size_t size) { return allocate_throwing(size); }
void* operator new(std::size_t size, const std::nothrow_t&) noexcept { return allocate_nothrow(size); }
void* operator new[](std::size_t size, const std::nothrow_t&) noexcept { return allocate_nothrow(size); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { std::free(p); }

namespace evflow::testing {

long allocation_count() noexcept { return g_allocations.load(); }

void arm_failure(long k) noexcept {
  g_reached.store(false);
  g_throwing_while_armed.store(0);
  g_countdown.store(k);
}

bool disarm_failure() noexcept {
  g_countdown.store(0);
  return g_reached.load();
}

long throwing_allocations_while_armed() noexcept { return g_throwing_while_armed.load(); }

KernelAllocations::KernelAllocations() noexcept { ++t_kernel_depth; }
KernelAllocations::~KernelAllocations() { --t_kernel_depth; }

}  // namespace evflow::testing

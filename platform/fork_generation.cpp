#include "fork_generation.hpp"

#include <atomic>

#if !defined(_WIN32)
#include <pthread.h>
#endif

namespace evflow::detail {

std::atomic<uint64_t> fork_generation_counter{0};

#if defined(_WIN32)
void watch_forks() noexcept {}  // no fork() on Windows: the generation never changes
#else
namespace {

pthread_once_t g_once = PTHREAD_ONCE_INIT;

void on_fork_child() { fork_generation_counter.fetch_add(1, std::memory_order_relaxed); }

// pthread_atfork goes through libc on purpose: only libc knows when fork() happens
// (DESIGN.md, "What the syscall layer owns").
void install() { (void)pthread_atfork(nullptr, nullptr, on_fork_child); }

}  // namespace

void watch_forks() noexcept { (void)pthread_once(&g_once, install); }
#endif

}  // namespace evflow::detail

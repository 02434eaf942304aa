// evflow — noticing fork(): a process-wide generation that a pthread_atfork child
// handler bumps. A loop compares it on every iteration and, in a forked child, rebuilds
// its kernel objects before touching them (DESIGN.md, "Fork").
#pragma once

#include <atomic>
#include <cstdint>

namespace evflow::detail {

extern std::atomic<uint64_t> fork_generation_counter;  // bumped in every forked child

// Installs the atfork handler (once per process; later calls are free).
void watch_forks() noexcept;

// Increases by one in every forked child, never in the parent. Async-signal-safe read.
// Read once per loop iteration: inline, one relaxed load.
inline uint64_t fork_generation() noexcept { return fork_generation_counter.load(std::memory_order_relaxed); }

}  // namespace evflow::detail

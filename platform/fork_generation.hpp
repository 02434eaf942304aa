// evflow — noticing fork(): a process-wide generation that a pthread_atfork child
// handler bumps. A loop compares it on every iteration and, in a forked child, rebuilds
// its kernel objects before touching them (DESIGN.md, "Fork").
#pragma once

#include <cstdint>

namespace evflow {

// Installs the atfork handler (once per process; later calls are free).
void watch_forks() noexcept;

// Increases by one in every forked child, never in the parent. Async-signal-safe read.
uint64_t fork_generation() noexcept;

}  // namespace evflow

// Test support (Linux): acting once another thread blocks in the kernel, instead of
// guessing how long that takes to begin.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <thread>

namespace evflow::testing {

// Waits, yielding, until thread `tid` of this process sleeps in the kernel (state S in
// /proc/self/task/<tid>/stat), or until `done`. False when `done` came first or the thread
// is gone.
inline bool wait_until_asleep(pid_t tid, const std::atomic<bool>& done) {
  char path[64];
  std::snprintf(path, sizeof path, "/proc/self/task/%d/stat", static_cast<int>(tid));
  while (!done.load()) {
    char stat[512] = {};
    FILE* f = std::fopen(path, "r");
    if (f == nullptr) return false;
    const size_t got = std::fread(stat, 1, sizeof stat - 1, f);
    std::fclose(f);
    const char* end_of_name = std::strrchr(stat, ')');  // the name may hold spaces and ')'
    if (got > 0 && end_of_name != nullptr && end_of_name[1] == ' ' && end_of_name[2] == 'S') return true;
    std::this_thread::yield();
  }
  return false;
}

}  // namespace evflow::testing

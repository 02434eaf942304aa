// Test support: a local that counts its own destruction, to see that a coroutine frame
// was destroyed (its locals unwound) when a loop went away.
#pragma once

namespace evflow::testing {

struct UnwindCounter {
  int* count;
  ~UnwindCounter() { ++*count; }
};

}  // namespace evflow::testing

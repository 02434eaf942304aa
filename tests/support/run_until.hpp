// Test support: running a loop until something happened, without sleeping and without
// a timing assertion.
#pragma once

#include <chrono>

#include "reactor/loop.hpp"
#include "reactor/timer.hpp"

namespace evflow::testing {

// Runs `loop` in the calling thread until `done()`. The one-minute timer is a cap that
// only a failing test reaches: without it, a lost event would block the loop for ever.
// Returns done().
template <class Done>
bool run_until(Loop& loop, Done done) {
  if (loop.run(RunMode::NoWait)) return false;  // run() makes this thread the owner, who starts timers
  bool expired = false;
  Timer cap(loop);
  if (cap.start(std::chrono::minutes(1), [&] { expired = true; })) return false;
  while (!done() && !expired) {
    if (loop.run(RunMode::Once)) return false;
  }
  return done();
}

}  // namespace evflow::testing

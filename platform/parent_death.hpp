// evflow — ParentDeathSignal for this platform: a signal the kernel sends a process when
// its parent dies. See the platform's file for the mechanism.
//
// Only Linux has one (prctl PR_SET_PDEATHSIG). Elsewhere the class below says so, and a
// forked worker learns of its parent's death only from its channel: the parent's end
// closes with the parent, and the worker's next receive gives EPIPE.
// - FreeBSD has procctl(PROC_PDEATHSIG_CTL) (FreeBSD >= 11.2); not relied on here.
// - macOS: none (a kqueue EVFILT_PROC NOTE_EXIT on the parent's pid would do, not done).
// - Windows: no fork, no parent tie (a job object with KILL_ON_JOB_CLOSE is the nearest).
#pragma once

#if defined(__linux__)
#include "linux/parent_death.hpp"
#else

#include "result.hpp"

namespace evflow::detail {

class ParentDeathSignal {
 public:
  // False: arm() does nothing and answers ENOTSUP.
  static constexpr bool kAvailable = false;

  static Error arm(int) noexcept { return Error(ENOTSUP); }
};

}  // namespace evflow::detail

#endif

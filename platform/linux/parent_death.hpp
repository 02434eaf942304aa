// evflow — a signal when the parent dies (Linux: prctl(PR_SET_PDEATHSIG)).
//
// a) The signal is sent when the thread that forked this process ends, not the process
//    (prctl(2), PR_SET_PDEATHSIG, "the parent thread"): fork from a thread that lives as
//    long as the process (the loop's thread, usually the main one).
// b) The setting is cleared by a fork (the new child has none) and kept across execve
//    of a non-set-user-ID program (prctl(2)).
// c) A parent that died before the call sends nothing: the caller compares getppid()
//    with the parent's id afterwards (process.cpp does).
#pragma once

#include <sys/prctl.h>

#include <cerrno>

#include "../result.hpp"

namespace evflow::detail {

class ParentDeathSignal {
 public:
  static constexpr bool kAvailable = true;

  // Asks the kernel to send `signal` to this process when its parent dies (note a).
  // EINVAL: not a signal number.
  static Error arm(int signal) noexcept {
    if (::prctl(PR_SET_PDEATHSIG, static_cast<unsigned long>(signal), 0UL, 0UL, 0UL) != 0) return Error(errno);
    return Error();
  }
};

}  // namespace evflow::detail

// evflow — the kqueue entry points on FreeBSD and macOS, as the kqueue backend's kernel.
//
// kqueue(2) and kevent(2) are declared here with the project's own ABI types
// (kqueue_abi.hpp): C linkage ignores parameter types, and the layouts are pinned there.
// They are called through libc, which on both systems is the supported system-call
// interface (macOS has no stable raw system-call ABI). close(2) and fcntl(2) come from the
// C library's own headers.
#pragma once

#if defined(__FreeBSD__) || defined(__APPLE__)

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

#include "kqueue_abi.hpp"
#include "kqueue_backend.hpp"

extern "C" {
int kqueue(void) noexcept;
int kevent(int kq, const evflow::detail::kqueue_abi::native::Kevent* changelist, int nchanges,
           evflow::detail::kqueue_abi::native::Kevent* eventlist, int nevents,
           const evflow::detail::kqueue_abi::Timespec* timeout) noexcept;
}

namespace evflow::detail {

// The kernel of BasicKqueueBackend on the system it was compiled for.
struct NativeKqueue {
  using Kevent = kqueue_abi::native::Kevent;
  static constexpr int16_t kEvfiltUser = kqueue_abi::native::kEvfiltUser;
  static constexpr uint32_t kNoteNanoseconds = kqueue_abi::native::kNoteNanoseconds;

  static int kqueue() noexcept { return ::kqueue(); }
  static int kevent(int kq, const Kevent* changes, int nchanges, Kevent* events, int nevents,
                    const kqueue_abi::Timespec* timeout) noexcept {
    return ::kevent(kq, changes, nchanges, events, nevents, timeout);
  }
  static int close(int fd) noexcept { return ::close(fd); }
  static int set_cloexec(int fd) noexcept { return ::fcntl(fd, F_SETFD, FD_CLOEXEC); }
  static int refusal(int fd) noexcept { return refusal_by_file_type(fd); }
  static int last_error() noexcept { return errno; }
};

using KqueueBackend = BasicKqueueBackend<NativeKqueue>;
static_assert(ReadinessBackend<KqueueBackend>);

}  // namespace evflow::detail

#endif

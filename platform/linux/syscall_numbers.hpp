// evflow — Linux system call numbers used by evflow, per architecture.
//
// x86_64 uses its own table (arch/x86/entry/syscalls/syscall_64.tbl); aarch64 uses the
// generic table (include/uapi/asm-generic/unistd.h), which has no epoll_wait, pipe or
// epoll_create: only their newer forms, which are the ones evflow calls everywhere, but
// for epoll_wait where it exists (sys.hpp, epoll_poll).
#pragma once

namespace evflow::detail::linux_abi::nr {

#if defined(__x86_64__)
inline constexpr long read = 0;
inline constexpr long write = 1;
inline constexpr long close = 3;
inline constexpr long mmap = 9;
inline constexpr long munmap = 11;
inline constexpr long socket = 41;
inline constexpr long connect = 42;
inline constexpr long sendto = 44;
inline constexpr long recvfrom = 45;
inline constexpr long recvmsg = 47;
inline constexpr long shutdown = 48;
inline constexpr long bind = 49;
inline constexpr long listen = 50;
inline constexpr long getsockname = 51;
inline constexpr long getpeername = 52;
inline constexpr long socketpair = 53;
inline constexpr long setsockopt = 54;
inline constexpr long getsockopt = 55;
inline constexpr long prctl = 157;
inline constexpr long futex = 202;
inline constexpr long clock_gettime = 228;
inline constexpr long epoll_wait = 232;
inline constexpr long epoll_ctl = 233;
inline constexpr long epoll_pwait = 281;
inline constexpr long timerfd_create = 283;
inline constexpr long timerfd_settime = 286;
inline constexpr long accept4 = 288;
inline constexpr long signalfd4 = 289;
inline constexpr long eventfd2 = 290;
inline constexpr long epoll_create1 = 291;
inline constexpr long dup3 = 292;
inline constexpr long io_uring_setup = 425;
inline constexpr long io_uring_enter = 426;
inline constexpr long io_uring_register = 427;
inline constexpr long pidfd_open = 434;
inline constexpr long epoll_pwait2 = 441;
#elif defined(__aarch64__)
inline constexpr long eventfd2 = 19;
inline constexpr long epoll_create1 = 20;
inline constexpr long epoll_ctl = 21;
inline constexpr long epoll_pwait = 22;
inline constexpr long dup3 = 24;
inline constexpr long close = 57;
inline constexpr long read = 63;
inline constexpr long write = 64;
inline constexpr long signalfd4 = 74;
inline constexpr long futex = 98;
inline constexpr long timerfd_create = 85;
inline constexpr long timerfd_settime = 86;
inline constexpr long clock_gettime = 113;
inline constexpr long prctl = 167;
inline constexpr long socket = 198;
inline constexpr long socketpair = 199;
inline constexpr long bind = 200;
inline constexpr long listen = 201;
inline constexpr long connect = 203;
inline constexpr long getsockname = 204;
inline constexpr long getpeername = 205;
inline constexpr long sendto = 206;
inline constexpr long recvfrom = 207;
inline constexpr long setsockopt = 208;
inline constexpr long getsockopt = 209;
inline constexpr long shutdown = 210;
inline constexpr long recvmsg = 212;
inline constexpr long munmap = 215;
inline constexpr long mmap = 222;
inline constexpr long accept4 = 242;
inline constexpr long io_uring_setup = 425;
inline constexpr long io_uring_enter = 426;
inline constexpr long io_uring_register = 427;
inline constexpr long pidfd_open = 434;
inline constexpr long epoll_pwait2 = 441;
#endif

}  // namespace evflow::detail::linux_abi::nr

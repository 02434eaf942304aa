// evflow — raw Linux system calls without libc: inline assembly for x86_64 and aarch64.
//
// The kernel returns -errno in [-4095, -1] on failure; nothing here touches the
// thread's errno, so the wrappers in sys.hpp are async-signal-safe and cannot be
// confused by a libc that caches or interposes calls.
//
// x86_64: number in rax, arguments in rdi, rsi, rdx, r10, r8, r9; `syscall` clobbers
// rcx and r11. aarch64: number in x8, arguments in x0..x5, result in x0; `svc #0`.
// (Linux syscall(2), "Architecture calling conventions".)
#pragma once

#include <cstdint>

namespace evflow::detail::linux_abi {

#if defined(__x86_64__)

inline long raw_syscall(long n, long a = 0, long b = 0, long c = 0, long d = 0, long e = 0, long f = 0) noexcept {
  long ret;
  register long r10 __asm__("r10") = d;
  register long r8 __asm__("r8") = e;
  register long r9 __asm__("r9") = f;
  __asm__ volatile("syscall"
                   : "=a"(ret)
                   : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
                   : "rcx", "r11", "memory");
  return ret;
}

#elif defined(__aarch64__)

inline long raw_syscall(long n, long a = 0, long b = 0, long c = 0, long d = 0, long e = 0, long f = 0) noexcept {
  register long x8 __asm__("x8") = n;
  register long x0 __asm__("x0") = a;
  register long x1 __asm__("x1") = b;
  register long x2 __asm__("x2") = c;
  register long x3 __asm__("x3") = d;
  register long x4 __asm__("x4") = e;
  register long x5 __asm__("x5") = f;
  __asm__ volatile("svc #0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2), "r"(x3), "r"(x4), "r"(x5) : "memory");
  return x0;
}

#else
#error "evflow: raw syscalls are implemented for x86_64 and aarch64 only"
#endif

// True when a raw return value encodes -errno (the kernel's error range).
constexpr bool is_error(long ret) noexcept { return ret < 0 && ret >= -4095; }

}  // namespace evflow::detail::linux_abi

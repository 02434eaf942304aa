// evflow — the kqueue ABI, declared by the project: no BSD or Apple header is needed to
// build the kqueue backend, and both flavours are declared on every platform, so that
// their layouts are checked (and a test-only emulation can speak them) on Linux too.
//
// Two flavours differ in ways that compile silently and fail at run time:
// - struct kevent is 64 bytes on FreeBSD >= 12.0 (data widened to int64_t and four
//   ext[] words added; FreeBSD's sys/sys/event.h, kevent(2)) and 32 bytes on macOS, where
//   it is declared under #pragma pack(4) (xnu's bsd/sys/event.h; the macOS 13 SDK).
// - EVFILT_USER is -11 on FreeBSD (-10 there is EVFILT_LIO) and -10 on macOS.
// - EVFILT_TIMER's unit flags: FreeBSD NOTE_SECONDS 0x1, NOTE_MSECONDS 0x2,
//   NOTE_USECONDS 0x4, NOTE_NSECONDS 0x8, NOTE_ABSTIME 0x10; macOS NOTE_SECONDS 0x1,
//   NOTE_USECONDS 0x2, NOTE_NSECONDS 0x4, NOTE_ABSOLUTE 0x8 (milliseconds when none).
// - EVFILT_PROC's NOTE_EXIT puts the wait(2) status in `data` on FreeBSD; macOS does so
//   only with NOTE_EXITSTATUS (0x04000000) added.
// Everything else the backend uses has the same value in both (sources as above).
//
// `native` names the flavour of the build target (FreeBSD or macOS); it is undefined
// elsewhere.
#pragma once

#include <cstddef>
#include <cstdint>

namespace evflow::detail::kqueue_abi {

// Flags of a change or a result (identical on FreeBSD and macOS).
inline constexpr uint16_t kEvAdd = 0x0001;       // add the event; re-adding modifies it
inline constexpr uint16_t kEvDelete = 0x0002;    // remove it
inline constexpr uint16_t kEvEnable = 0x0004;    // report it again
inline constexpr uint16_t kEvDisable = 0x0008;   // keep it, but do not report it
inline constexpr uint16_t kEvOneshot = 0x0010;   // delete it after its first report
inline constexpr uint16_t kEvClear = 0x0020;     // reset its state once reported (edge)
inline constexpr uint16_t kEvReceipt = 0x0040;   // answer every change with an EV_ERROR entry
inline constexpr uint16_t kEvDispatch = 0x0080;  // disable it after each report
inline constexpr uint16_t kEvError = 0x4000;     // result: `data` holds an errno (0 with EV_RECEIPT)
inline constexpr uint16_t kEvEof = 0x8000;       // result: end of file or hang-up; fflags may hold an errno

// Filters with the same number in both.
inline constexpr int16_t kEvfiltRead = -1;
inline constexpr int16_t kEvfiltWrite = -2;
inline constexpr int16_t kEvfiltProc = -5;
inline constexpr int16_t kEvfiltSignal = -6;
inline constexpr int16_t kEvfiltTimer = -7;

// EVFILT_USER fflags, and EVFILT_PROC's exit note (same values in both).
inline constexpr uint32_t kNoteTrigger = 0x01000000;  // fire the user event
inline constexpr uint32_t kNoteExit = 0x80000000;     // the process exited

struct Timespec {  // struct timespec on both 64-bit targets: time_t and long
  int64_t tv_sec;
  long tv_nsec;
};

namespace freebsd {

struct Kevent {
  uintptr_t ident;  // descriptor, signal number, pid, or user-chosen id
  int16_t filter;
  uint16_t flags;
  uint32_t fflags;
  int64_t data;
  void* udata;
  uint64_t ext[4];  // ext[0..1] filter-specific, ext[2..3] passed through untouched
};

inline constexpr int16_t kEvfiltUser = -11;
inline constexpr uint32_t kNoteSeconds = 0x01;
inline constexpr uint32_t kNoteMilliseconds = 0x02;
inline constexpr uint32_t kNoteMicroseconds = 0x04;
inline constexpr uint32_t kNoteNanoseconds = 0x08;
inline constexpr uint32_t kNoteAbsolute = 0x10;
inline constexpr uint32_t kNoteExitStatus = 0;  // NOTE_EXIT alone reports the status

}  // namespace freebsd

namespace macos {

#pragma pack(push, 4)
struct Kevent {
  uintptr_t ident;
  int16_t filter;
  uint16_t flags;
  uint32_t fflags;
  intptr_t data;
  void* udata;
};
#pragma pack(pop)

inline constexpr int16_t kEvfiltUser = -10;
inline constexpr uint32_t kNoteSeconds = 0x01;
inline constexpr uint32_t kNoteMicroseconds = 0x02;
inline constexpr uint32_t kNoteNanoseconds = 0x04;
inline constexpr uint32_t kNoteAbsolute = 0x08;
inline constexpr uint32_t kNoteExitStatus = 0x04000000;

}  // namespace macos

// Layouts, as each kernel reads them (64-bit targets; the only ones evflow supports here).
static_assert(sizeof(void*) == 8, "the kqueue ABI is declared for 64-bit targets");
static_assert(sizeof(freebsd::Kevent) == 64);
static_assert(offsetof(freebsd::Kevent, filter) == 8 && offsetof(freebsd::Kevent, flags) == 10);
static_assert(offsetof(freebsd::Kevent, fflags) == 12 && offsetof(freebsd::Kevent, data) == 16);
static_assert(offsetof(freebsd::Kevent, udata) == 24 && offsetof(freebsd::Kevent, ext) == 32);
static_assert(sizeof(macos::Kevent) == 32 && alignof(macos::Kevent) == 4);
static_assert(offsetof(macos::Kevent, filter) == 8 && offsetof(macos::Kevent, flags) == 10);
static_assert(offsetof(macos::Kevent, fflags) == 12 && offsetof(macos::Kevent, data) == 16);
static_assert(offsetof(macos::Kevent, udata) == 24);
static_assert(sizeof(Timespec) == 16);

#if defined(__FreeBSD__)
namespace native = freebsd;
#elif defined(__APPLE__)
namespace native = macos;
#endif

}  // namespace evflow::detail::kqueue_abi

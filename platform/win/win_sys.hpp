// evflow — the Windows entry points the IOCP backend, the console-event layer and Child
// watchers use, each returning Result<T> with the Windows error mapped to an errno code.
//
// Only platform/win/*.cpp include this file: <windows.h> and <winsock2.h> stay out of
// every header the library's users include.
//
// Paths: kernel32 and ws2_32 are called through their import libraries (the supported
// interface). The three ntdll calls the AFD poll needs (NtCreateFile on \Device\Afd,
// NtDeviceIoControlFile, NtCancelIoFileEx) and RtlNtStatusToDosError are looked up once
// with GetProcAddress, as wepoll and mio do: they are exported by every ntdll since
// Windows Vista but not documented for use outside drivers, and mingw-w64's import
// library does not list NtCancelIoFileEx.
#pragma once

#if defined(_WIN32)

#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#ifndef NOMINMAX
#define NOMINMAX
#endif
#include <winsock2.h>  // before windows.h, which would include the older winsock.h

#include <windows.h>

#include <cstdint>

#include "../result.hpp"

namespace evflow::detail::win_abi {

// NTSTATUS values the backend tests for (ntstatus.h; spelled out here so that this file
// does not need the WIN32_NO_STATUS dance around <windows.h>).
using NtStatus = LONG;
inline constexpr NtStatus kStatusSuccess = 0;
inline constexpr NtStatus kStatusPending = 0x00000103;
inline constexpr NtStatus kStatusCancelled = static_cast<NtStatus>(0xC0000120);
inline constexpr NtStatus kStatusNotFound = static_cast<NtStatus>(0xC0000225);

// IO_STATUS_BLOCK (wdm.h): the status of a request, written by the kernel when it completes.
struct IoStatusBlock {
  union {
    NtStatus status;
    void* pointer;
  };
  ULONG_PTR information;
};

// The AFD poll request (the layout wepoll, mio and libuv's unix-emulation use; afd.h of
// ReactOS). One handle per request: `exclusive` FALSE so that other polls on the socket
// (another library's) are left alone.
struct AfdPollHandleInfo {
  HANDLE handle;
  ULONG events;
  NtStatus status;
};
struct AfdPollInfo {
  LARGE_INTEGER timeout;
  ULONG handle_count;
  ULONG exclusive;
  AfdPollHandleInfo handles[1];
};
inline constexpr ULONG kIoctlAfdPoll = 0x00012024;

// AFD_POLL_* event bits.
inline constexpr ULONG kAfdPollReceive = 0x0001;
inline constexpr ULONG kAfdPollReceiveExpedited = 0x0002;
inline constexpr ULONG kAfdPollSend = 0x0004;
inline constexpr ULONG kAfdPollDisconnect = 0x0008;
inline constexpr ULONG kAfdPollAbort = 0x0010;
inline constexpr ULONG kAfdPollLocalClose = 0x0020;
inline constexpr ULONG kAfdPollAccept = 0x0080;
inline constexpr ULONG kAfdPollConnectFail = 0x0100;

// A Windows error (GetLastError, WSAGetLastError) as an errno code. The codes with a
// meaning for evflow's callers are mapped one by one; anything else is EIO.
Error error_from_win32(DWORD code) noexcept;
// An NTSTATUS as an errno code, through RtlNtStatusToDosError.
Error error_from_ntstatus(NtStatus status) noexcept;
// The calling thread's GetLastError(), mapped.
inline Error last_error() noexcept { return error_from_win32(GetLastError()); }

// A new I/O completion port for one thread's use.
Result<HANDLE> create_completion_port() noexcept;
// A handle to the AFD driver (\Device\Afd\Evflow), associated with `port` under `key`:
// its poll requests complete there. Set to skip signalling itself on completion (nobody waits
// on it), which saves the kernel a wake-up per request.
Result<HANDLE> open_afd(HANDLE port, ULONG_PTR key) noexcept;
// The base provider's socket under `socket`, for AFD: layered service providers (LSPs)
// hand out their own handles, which AFD does not know. SIO_BASE_HANDLE first; an LSP
// that hides it may still answer SIO_BSP_HANDLE_POLL or SIO_BSP_HANDLE_SELECT (the
// order wepoll uses). Errors: EBADF when `socket` is no handle at all, ENOTSOCK when it
// is a handle but not a socket (a file, a pipe).
Result<HANDLE> base_socket(SOCKET socket) noexcept;
// Why `socket` cannot be watched, once Winsock or AFD refused it: EBADF when it is no
// handle at all (closed, or made up), ENOTSOCK when it is a handle of another kind.
Error refusal_of(SOCKET socket) noexcept;
// Starts an IOCTL_AFD_POLL. `status_block`'s address comes back as the completion
// packet's OVERLAPPED pointer. A request that completes at once (STATUS_SUCCESS) still
// queues its packet: the file was not set to skip the port on success.
Error start_afd_poll(HANDLE afd, AfdPollInfo* info, IoStatusBlock* status_block) noexcept;
// Cancels the poll whose status block is `status_block`. Succeeds also when it had
// already completed (STATUS_NOT_FOUND): either way exactly one packet comes for it.
Error cancel_afd_poll(HANDLE afd, IoStatusBlock* status_block) noexcept;

// GetQueuedCompletionStatusEx for at most `timeout_ms` (INFINITE: no limit). Returns how
// many entries it removed; a timeout returns 0.
Result<int> dequeue(HANDLE port, OVERLAPPED_ENTRY* entries, ULONG capacity, DWORD timeout_ms) noexcept;
// PostQueuedCompletionStatus. Thread-safe; callable from any thread.
Error post(HANDLE port, DWORD bytes, ULONG_PTR key, OVERLAPPED* overlapped) noexcept;

// Winsock for the lifetime of an owner: WSAStartup/WSACleanup are reference counted.
Error start_winsock() noexcept;
void stop_winsock() noexcept;

}  // namespace evflow::detail::win_abi

#endif

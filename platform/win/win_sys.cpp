#if defined(_WIN32)

#include "win_sys.hpp"

#include "socket.hpp"

#include <mswsock.h>

#include <cerrno>

namespace evflow::detail::win_abi {

namespace {

// UNICODE_STRING and OBJECT_ATTRIBUTES (winternl.h), for NtCreateFile.
struct UnicodeString {
  USHORT length;
  USHORT maximum_length;
  const wchar_t* buffer;
};
struct ObjectAttributes {
  ULONG length;
  HANDLE root_directory;
  UnicodeString* object_name;
  ULONG attributes;
  void* security_descriptor;
  void* security_quality_of_service;
};

using NtCreateFileFn = NtStatus(NTAPI*)(HANDLE*, ACCESS_MASK, ObjectAttributes*, IoStatusBlock*, LARGE_INTEGER*, ULONG,
                                        ULONG, ULONG, ULONG, void*, ULONG);
using NtDeviceIoControlFileFn = NtStatus(NTAPI*)(HANDLE, HANDLE, void*, void*, IoStatusBlock*, ULONG, void*, ULONG,
                                                 void*, ULONG);
using NtCancelIoFileExFn = NtStatus(NTAPI*)(HANDLE, IoStatusBlock*, IoStatusBlock*);
using RtlNtStatusToDosErrorFn = ULONG(NTAPI*)(NtStatus);

struct Ntdll {
  NtCreateFileFn create_file = nullptr;
  NtDeviceIoControlFileFn device_io_control_file = nullptr;
  NtCancelIoFileExFn cancel_io_file_ex = nullptr;
  RtlNtStatusToDosErrorFn status_to_dos_error = nullptr;
  bool complete() const noexcept {
    return create_file && device_io_control_file && cancel_io_file_ex && status_to_dos_error;
  }
};

template <class F>
F lookup(HMODULE module, const char* name) noexcept {
  // GetProcAddress returns a generic function pointer; the type is the documented one.
  return reinterpret_cast<F>(reinterpret_cast<void*>(GetProcAddress(module, name)));
}

// Resolved once, thread-safely (a function-local static), on first use.
const Ntdll& ntdll() noexcept {
  static const Ntdll table = [] {
    Ntdll t;
    HMODULE module = GetModuleHandleW(L"ntdll.dll");
    if (module == nullptr) return t;
    t.create_file = lookup<NtCreateFileFn>(module, "NtCreateFile");
    t.device_io_control_file = lookup<NtDeviceIoControlFileFn>(module, "NtDeviceIoControlFile");
    t.cancel_io_file_ex = lookup<NtCancelIoFileExFn>(module, "NtCancelIoFileEx");
    t.status_to_dos_error = lookup<RtlNtStatusToDosErrorFn>(module, "RtlNtStatusToDosError");
    return t;
  }();
  return table;
}

// SIO_BSP_HANDLE_* (mswsock.h in newer SDKs; values from Winsock's WSAIoctl documentation).
constexpr DWORD kSioBaseHandle = 0x48000022;
constexpr DWORD kSioBspHandlePoll = 0x4800001D;
constexpr DWORD kSioBspHandleSelect = 0x4800001C;

Result<HANDLE> ask_provider(SOCKET socket, DWORD ioctl) noexcept {
  SOCKET base = INVALID_SOCKET;
  DWORD bytes = 0;
  if (WSAIoctl(socket, ioctl, nullptr, 0, &base, sizeof base, &bytes, nullptr, nullptr) == SOCKET_ERROR)
    return error_from_win32(static_cast<DWORD>(WSAGetLastError()));
  if (base == INVALID_SOCKET) return Error(ENOTSOCK);
  return reinterpret_cast<HANDLE>(base);
}

}  // namespace

Error error_from_win32(DWORD code) noexcept {
  switch (code) {
    case ERROR_SUCCESS:
      return Error();
    case ERROR_INVALID_HANDLE:
    case WSAEBADF:
      return Error(EBADF);
    case WSAENOTSOCK:
      return Error(ENOTSOCK);
    case ERROR_NOT_ENOUGH_MEMORY:
    case ERROR_OUTOFMEMORY:
    case ERROR_NO_SYSTEM_RESOURCES:
    case ERROR_NONPAGED_SYSTEM_RESOURCES:
    case ERROR_COMMITMENT_LIMIT:
      return Error(ENOMEM);
    case WSAENOBUFS:
      return Error(ENOBUFS);
    case ERROR_TOO_MANY_OPEN_FILES:
    case WSAEMFILE:
      return Error(EMFILE);
    case ERROR_ACCESS_DENIED:
    case WSAEACCES:
      return Error(EACCES);
    case ERROR_INVALID_PARAMETER:
    case WSAEINVAL:
      return Error(EINVAL);
    case ERROR_NOT_SUPPORTED:
    case ERROR_CALL_NOT_IMPLEMENTED:
    case ERROR_INVALID_FUNCTION:
    case WSAEOPNOTSUPP:
      return Error(ENOTSUP);
    case ERROR_OPERATION_ABORTED:
      return Error(ECANCELED);
    case WSANOTINITIALISED:
      return Error(EINVAL);
    default:
      return Error(EIO);
  }
}

Error error_from_ntstatus(NtStatus status) noexcept {
  if (status == kStatusSuccess) return Error();
  const Ntdll& nt = ntdll();
  if (nt.status_to_dos_error == nullptr) return Error(EIO);
  return error_from_win32(nt.status_to_dos_error(status));
}

Result<HANDLE> create_completion_port() noexcept {
  HANDLE port = CreateIoCompletionPort(INVALID_HANDLE_VALUE, nullptr, 0, 1);
  if (port == nullptr) return last_error();
  return port;
}

Result<HANDLE> open_afd(HANDLE port, ULONG_PTR key) noexcept {
  const Ntdll& nt = ntdll();
  if (!nt.complete()) return Error(ENOTSUP);
  // Any name under \Device\Afd opens the driver; the suffix only names us in handle lists.
  static const wchar_t kName[] = L"\\Device\\Afd\\Evflow";
  UnicodeString name{sizeof kName - sizeof(wchar_t), sizeof kName, kName};
  ObjectAttributes attributes{sizeof(ObjectAttributes), nullptr, &name, 0, nullptr, nullptr};
  IoStatusBlock status_block{};
  HANDLE afd = nullptr;
  const NtStatus status = nt.create_file(&afd, SYNCHRONIZE, &attributes, &status_block, nullptr, 0,
                                         FILE_SHARE_READ | FILE_SHARE_WRITE, FILE_OPEN, 0, nullptr, 0);
  if (status != kStatusSuccess) return error_from_ntstatus(status);
  if (CreateIoCompletionPort(afd, port, key, 0) == nullptr ||
      !SetFileCompletionNotificationModes(afd, FILE_SKIP_SET_EVENT_ON_HANDLE)) {
    const Error err = last_error();
    CloseHandle(afd);
    return err;
  }
  return afd;
}

Result<HANDLE> base_socket(SOCKET socket) noexcept {
  Result<HANDLE> base = ask_provider(socket, kSioBaseHandle);
  if (base) return base;
  for (DWORD ioctl : {kSioBspHandlePoll, kSioBspHandleSelect}) {
    Result<HANDLE> layered = ask_provider(socket, ioctl);
    if (!layered) continue;
    // An LSP may answer with a handle of another layer: ask that one for its base too.
    Result<HANDLE> beneath = ask_provider(reinterpret_cast<SOCKET>(layered.value()), kSioBaseHandle);
    return beneath ? beneath : layered;
  }
  if (base.error().code() != ENOTSOCK) return base.error();
  return refusal_of(socket);
}

Error refusal_of(SOCKET socket) noexcept {
  DWORD flags = 0;
  if (!GetHandleInformation(reinterpret_cast<HANDLE>(socket), &flags)) return Error(EBADF);
  return Error(ENOTSOCK);
}

Error start_afd_poll(HANDLE afd, AfdPollInfo* info, IoStatusBlock* status_block) noexcept {
  status_block->status = kStatusPending;
  const NtStatus status = ntdll().device_io_control_file(afd, nullptr, nullptr, status_block, status_block,
                                                         kIoctlAfdPoll, info, sizeof *info, info, sizeof *info);
  if (status == kStatusPending || status == kStatusSuccess) return Error();
  return error_from_ntstatus(status);
}

Error cancel_afd_poll(HANDLE afd, IoStatusBlock* status_block) noexcept {
  IoStatusBlock cancel_status{};
  const NtStatus status = ntdll().cancel_io_file_ex(afd, status_block, &cancel_status);
  if (status == kStatusSuccess || status == kStatusNotFound) return Error();
  return error_from_ntstatus(status);
}

Result<int> dequeue(HANDLE port, OVERLAPPED_ENTRY* entries, ULONG capacity, DWORD timeout_ms) noexcept {
  ULONG removed = 0;
  if (GetQueuedCompletionStatusEx(port, entries, capacity, &removed, timeout_ms, FALSE))
    return static_cast<int>(removed);
  const DWORD code = GetLastError();
  if (code == WAIT_TIMEOUT) return 0;
  return error_from_win32(code);
}

Error post(HANDLE port, DWORD bytes, ULONG_PTR key, OVERLAPPED* overlapped) noexcept {
  if (PostQueuedCompletionStatus(port, bytes, key, overlapped)) return Error();
  return last_error();
}

Error start_winsock() noexcept {
  WSADATA data;
  const int code = WSAStartup(MAKEWORD(2, 2), &data);
  return code == 0 ? Error() : error_from_win32(static_cast<DWORD>(code));
}

void stop_winsock() noexcept { (void)WSACleanup(); }

}  // namespace evflow::detail::win_abi

namespace evflow::detail::win {

Error close_socket(int fd) noexcept {
  const SOCKET socket = static_cast<SOCKET>(static_cast<intptr_t>(fd));  // iocp_backend.hpp, note l
  if (closesocket(socket) == 0) return Error();
  const int code = WSAGetLastError();
  return code == WSAENOTSOCK ? Error(EBADF) : win_abi::error_from_win32(static_cast<DWORD>(code));
}

}  // namespace evflow::detail::win

#endif

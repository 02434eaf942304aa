#include "linux_backend.hpp"

#include <cstdlib>
#include <cstring>

namespace evflow::detail {

namespace {

// EVFLOW_BACKEND=io_uring or epoll: what BackendKind::Default means in this process.
BackendKind default_kind() noexcept {
  const char* name = std::getenv("EVFLOW_BACKEND");
  if (name != nullptr && std::strcmp(name, "io_uring") == 0) return BackendKind::IoUring;
  return BackendKind::Epoll;
}

}  // namespace

Error LinuxBackend::open(BackendKind wanted) noexcept {
  if (uring_.native_handle() >= 0 || epoll_.native_handle() >= 0) return Error(EBUSY);
  if (wanted == BackendKind::Default) wanted = default_kind();
  if (wanted == BackendKind::IoUring) {
    const Error err = uring_.open();
    if (!err) {
      occupant_ = BackendKind::IoUring;
      return Error();
    }
    // No descriptor left: epoll would need more. Anything else (ENOSYS, EPERM, ENOMEM, a
    // kernel too old): epoll instead, and kind() says so.
    if (err.code() == EMFILE || err.code() == ENFILE) return err;
  }
  occupant_ = BackendKind::Epoll;
  return epoll_.open();
}

}  // namespace evflow::detail

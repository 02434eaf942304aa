// detail::Operations: the loop's side of the operations a backend performs.
#include "operations.hpp"

namespace evflow::detail {

namespace {

// The backend's optional members (platform/operation.hpp), through templates so that a
// backend without them compiles.
template <class B>
bool backend_performs(const B& backend) noexcept {
  if constexpr (PerformsOperations<B>) {
    return backend.performs_operations();
  } else {
    (void)backend;
    return false;
  }
}

template <class B>
Error backend_submit(B& backend, OperationRequest& request) noexcept {
  if constexpr (PerformsOperations<B>) {
    return backend.submit(request);
  } else {
    (void)backend;
    (void)request;
    return Error(EOPNOTSUPP);
  }
}

template <class B>
void backend_cancel(B& backend, OperationRequest& request, bool abandon) noexcept {
  if constexpr (PerformsOperations<B>) {
    if (abandon) {
      backend.abandon(request);
    } else {
      backend.cancel(request);
    }
  } else {
    (void)backend;
    (void)request;
    (void)abandon;
  }
}

template <class B>
OperationRequest* backend_take_completed(B& backend) noexcept {
  if constexpr (PerformsOperations<B>) {
    return backend.take_completed();
  } else {
    (void)backend;
    return nullptr;
  }
}

}  // namespace

bool Operations::available() const noexcept { return core_.open && backend_performs(core_.backend); }

Error Operations::submit(OperationRequest& request) noexcept {
  core_.assert_owner_thread();
  if (!available()) return Error(EOPNOTSUPP);
  if (Error err = core_.check_fork()) return err;
  if (Error err = backend_submit(core_.backend, request)) return err;
  ++pending_;
  ++core_.active;
  ++core_.kernel_watchers;
  return Error();
}

void Operations::cancel(OperationRequest& request) noexcept {
  core_.assert_owner_thread();
  if (!request.in_kernel) return;
  backend_cancel(core_.backend, request, false);
}

void Operations::abandon(OperationRequest& request) noexcept {
  if (!request.in_kernel && !request.completed) return;
  backend_cancel(core_.backend, request, true);
  if (pending_ == 0) return;  // detached with the loop
  --pending_;
  --core_.active;
  --core_.kernel_watchers;
}

void Operations::dispatch() noexcept {
  while (OperationRequest* request = backend_take_completed(core_.backend)) {
    if (pending_ > 0) {
      --pending_;
      --core_.active;
      --core_.kernel_watchers;
    }
    ++core_.dispatched;
    request->done(*request);
    if (core_.forked()) return;  // a callback forked: the rest is the parent's
  }
}

}  // namespace evflow::detail

// evflow — detail::Operations: socket operations the loop's backend performs itself.
//
// On io_uring the kernel can perform a receive, a send, an accept or a connect on its
// own, and the loop then only collects the outcome (platform/operation.hpp). This is the
// loop's component for that: net/ asks available() and submits; the request goes to the
// kernel with the loop's next wait, and its `done` runs in the I/O phase of the
// iteration whose wait collected it, after the readiness callbacks. A request in the
// kernel keeps the loop running, as an active watcher does. On every other backend
// available() is false, and net/ waits for readiness instead.
//
// A request must stay where it is until `done` has run, or until abandon() returned.
// cancel() is a request to the kernel: `done` still runs, with -ECANCELED, or with the
// outcome when the kernel had finished first (data received is never dropped).
#pragma once

#include "../platform/operation.hpp"
#include "loop_core.hpp"

namespace evflow::detail {

class Operations {
 public:
  explicit Operations(LoopCore& core) noexcept : core_(core) {}
  Operations(const Operations&) = delete;
  Operations& operator=(const Operations&) = delete;

  // Whether the loop's backend performs operations (io_uring), once it is open.
  bool available() const noexcept;
  // Queues `request` (its `done` set). Errors: EOPNOTSUPP where !available(); EBUSY when it
  // is pending already; ENOMEM; EINVAL for an endpoint the system cannot take; the
  // error of rebuilding a loop in a forked child.
  Error submit(OperationRequest& request) noexcept;
  // Asks the kernel to cancel a pending request; a no-op when it is not pending.
  void cancel(OperationRequest& request) noexcept;
  // Ends a pending request now (cancelled, and waited for): `done` is never called. For
  // an owner that goes away. A no-op when it is not pending.
  void abandon(OperationRequest& request) noexcept;
  // Calls `done` for every request that completed (the loop's I/O phase).
  void dispatch() noexcept;
  // Requests submitted whose `done` has not run.
  int pending() const noexcept { return pending_; }
  void forget_all() noexcept { pending_ = 0; }  // the loop detaches everything

 private:
  LoopCore& core_;
  int pending_ = 0;
};

}  // namespace evflow::detail

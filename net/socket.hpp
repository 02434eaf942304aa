// evflow — Socket: an open socket descriptor, owned; and the await every socket call of a
// task uses.
//
// How an operation runs (read, write, accept, connect, send_to, recv_from):
// 1. A cancelled task (or scope) completes the operation at once with ECANCELED, ready or
//    not: every socket call is a cancellation point.
// 2. The system call is tried first. When it completes (data, an error, the end of the
//    stream), the task goes on without suspending. After 64 such completions in a row
//    the task goes through the ready queue once, so that a peer that always has data
//    cannot keep the loop from its other tasks, its timers and its I/O.
//    One exception, for reads: when the socket's last read showed its receive buffer
//    empty (EAGAIN, or fewer bytes than asked for: a stream socket gives all it holds),
//    the next read does not try first but waits for readiness at once, which the loop's
//    next poll reports if data came meanwhile (level-triggered). In a request-response
//    exchange the read after a reply would otherwise always be a wasted system call; a
//    server with many connections makes one call per message instead of two.
//    When other tasks are ready to run, such a read also tries once more at the end of
//    the task phase (TaskScheduler::defer_to_phase_end), after they have run: by then
//    the peer may have answered, and the task is served in the order its reads began
//    instead of the order the poll reports (a level-triggered poll reports first the
//    descriptors it reported last time, which lets recently served connections overtake
//    the others and doubles the tail latency of a busy server).
// 3. Only on EAGAIN does the task wait: the await starts an Io watcher embedded in the
//    awaiting frame, and the call is tried again in the watcher's callback, waiting
//    again on EAGAIN (spurious readiness). When the await completes, the watcher hands its
//    kernel registration to the socket (Io::hand_over), so the next wait of the same
//    direction makes no system call.
// 4. A cancellation while waiting stops the watcher: nothing was read, written or
//    accepted by the cancelled call (a write_all or read_exact reports what it moved
//    before).
//
// On a loop whose backend performs operations itself (io_uring; reactor/operations.hpp)
// steps 2 and 3 are replaced: the operation is submitted as it is (IORING_OP_RECV, SEND,
// ACCEPT, CONNECT, RECVMSG, SENDMSG) without a system call of its own, goes to the kernel
// with the loop's next wait, and the task resumes when it has completed: one system call
// per iteration for every socket the loop serves. A call is then always a suspension
// point. A cancellation asks the kernel to cancel the operation, and the task resumes
// only once the kernel has let go of the buffer: with ECANCELED, or with the outcome
// when the kernel had finished first (data received is never dropped; the next await
// sees the cancellation). A frame destroyed while its operation is in the kernel
// cancels it and waits for the kernel there and then.
//
// A Socket is move-only and closes its descriptor when destroyed. It is not bound to a
// loop: the loop of the awaiting task serves each await. One task at a time may read and
// one may write (a reader task and a writer task may share a stream); moving or closing a
// socket while an await on it is pending is misuse.
#pragma once

#include <coroutine>
#include <cstddef>
#include <optional>
#include <utility>

#include "../platform/descriptor.hpp"
#include "../platform/operation.hpp"
#include "../platform/socket.hpp"
#include "../reactor/io.hpp"
#include "../reactor/loop.hpp"
#include "../tasks/await_base.hpp"
#include "../tasks/scheduler.hpp"
#include "address.hpp"

namespace evflow {

namespace detail {
struct SocketAccess;
}

// What a read_exact or a write_all moved: all of it, or the bytes before the error.
struct Transfer {
  std::size_t bytes = 0;       // moved before the call ended
  Error error;                 // ECANCELED, EPIPE, ECONNRESET, ...; none at the end of the stream
  bool end_of_stream = false;  // read_exact: the peer ended the stream before `size` bytes
  bool ok() const noexcept { return !error && !end_of_stream; }
  explicit operator bool() const noexcept { return ok(); }
};

class Socket {
 public:
  Socket() noexcept = default;
  // Takes ownership of `fd`, a non-blocking socket.
  explicit Socket(int fd) noexcept : fd_(fd) {}
  Socket(Socket&& other) noexcept
      : fd_(std::exchange(other.fd_, -1)),
        read_drained_(std::exchange(other.read_drained_, false)),
        read_handover_(std::exchange(other.read_handover_, {})),
        write_handover_(std::exchange(other.write_handover_, {})) {}
  Socket& operator=(Socket&& other) noexcept {
    if (this != &other) {
      (void)close();
      fd_ = std::exchange(other.fd_, -1);
      read_drained_ = std::exchange(other.read_drained_, false);
      read_handover_ = std::exchange(other.read_handover_, {});
      write_handover_ = std::exchange(other.write_handover_, {});
    }
    return *this;
  }
  ~Socket() { (void)close(); }

  // The descriptor (Windows: the SOCKET as an int), -1 when closed.
  int fd() const noexcept { return fd_; }
  bool is_open() const noexcept { return fd_ >= 0; }
  // Gives the descriptor up without closing it.
  int release() noexcept;
  // Closes the descriptor now; the error close(2) reported (it is released anyway).
  Error close() noexcept;

  // The address the socket is bound to (after bind, or the one connect chose).
  Result<SocketAddress> local_address() const noexcept;
  // Sets or reads an option (platform/socket.hpp lists them); ENOPROTOOPT where the
  // system or the socket has none.
  Error set_option(detail::SocketOption option, int value) noexcept;
  Result<int> option(detail::SocketOption option) const noexcept;

 protected:
  friend struct detail::SocketAccess;
  int fd_ = -1;
  bool read_drained_ = false;    // the last read found the receive buffer empty (step 2 above)
  Io::Handover read_handover_;   // what the last completed read-side wait left
  Io::Handover write_handover_;  // the same for the write side
};

namespace detail {

// A call on a closed socket (EBADF) or with a null buffer of a non-zero size (EINVAL),
// found before any system call; or none.
inline Error check_call(const Socket& socket, const void* buffer, std::size_t size) noexcept {
  if (socket.fd() < 0) return Error(EBADF);
  if (buffer == nullptr && size != 0) return Error(EINVAL);
  return Error();
}

struct SocketAccess {
  static Io::Handover& read_handover(Socket& s) noexcept { return s.read_handover_; }
  static bool& read_drained(Socket& s) noexcept { return s.read_drained_; }
  static Io::Handover& write_handover(Socket& s) noexcept { return s.write_handover_; }
};

// The await of one socket operation. `Operation` provides:
//   static constexpr const char* kActivity;   what the task tree shows while it waits
//   static constexpr Events kInterest;         Readable or Writable
//   int fd() const;                            the descriptor it waits on
//   Io::Handover* handover();                  the socket's slot for this direction, or null
//   bool attempt() noexcept;                   tries the call: true when finished (result kept),
//                                              false on EAGAIN
//   bool wait_first() const;                   true: the call is known to give EAGAIN now
//                                              (a drained receive buffer): wait without trying
//   auto result(Error interrupted) noexcept;   what the await gives; `interrupted` is
//                                              ECANCELED, or why the wait could not start
//   bool prepare(OperationRequest&) noexcept;  the operation as a request for the kernel:
//                                              true to submit it, false when it finished
//                                              at once (bad input, 0 bytes; result kept)
//   bool absorb(OperationRequest&) noexcept;   the kernel's outcome: true when finished
//                                              (result kept), false to submit the request
//                                              again (prepared for the rest)
template <class Operation>
concept SubmittedWhole = requires(Operation& op, OperationRequest& request) {
  { op.prepare(request) }
  noexcept->std::same_as<bool>;
  { op.absorb(request) }
  noexcept->std::same_as<bool>;
};

// Requests hold at most this many bytes (Linux's limit for one read or write).
inline constexpr std::size_t kMaxRequestBytes = 0x7ffff000;
inline uint32_t request_bytes(std::size_t size) noexcept {
  return static_cast<uint32_t>(size < kMaxRequestBytes ? size : kMaxRequestBytes);
}
// Makes `request` an operation of `kind` on the socket over buffer[0..size) (the kernel
// only reads the buffer of a send).
inline void describe_request(OperationRequest& request, OperationKind kind, const Socket& socket, const void* buffer,
                             std::size_t size) noexcept {
  request.kind = kind;
  request.fd = socket.fd();
  request.buffer = const_cast<void*>(buffer);
  request.size = request_bytes(size);
}
// The outcome of a call that moves bytes once: the count or the error. False (submit
// again) on EAGAIN, which a kernel that polls for the operation itself does not give.
inline bool absorb_bytes(const OperationRequest& request, Result<std::size_t>& outcome) noexcept {
  if (request.result == -EAGAIN) return false;
  outcome = request.result < 0 ? Result<std::size_t>(Error(-request.result)) : static_cast<std::size_t>(request.result);
  return true;
}

template <class Operation>
class SocketAwait : public CancellableAwait, private Operation, private PhaseEndWork {
 public:
  static constexpr const char* kActivity = Operation::kActivity;

  template <class... Args>
  explicit SocketAwait(Args&&... args) noexcept : Operation(std::forward<Args>(args)...) {}
  ~SocketAwait() {
    if (PhaseEndWork::pending) root_->scheduler->withdraw(*this);  // a frame destroyed while waiting
    if (operations_ != nullptr) {
      operations_->abandon(request_);  // the kernel lets go first
      // A connection the kernel accepted as the frame went: nobody will have it.
      if (request_.kind == OperationKind::accept && request_.result >= 0) (void)close_descriptor(request_.result);
    }
  }

  template <class Promise>
  std::coroutine_handle<> await_suspend(std::coroutine_handle<Promise> awaiting) noexcept {
    if (!enter<SocketAwait>(awaiting)) return awaiting;  // cancelled: ECANCELED at once
    if constexpr (SubmittedWhole<Operation>) {
      Operations& operations = root_->scheduler->loop().operations();
      if (operations.available()) return submit(operations, awaiting);
    }
    const bool drained = Operation::wait_first();
    if (!drained && Operation::attempt()) {
      root_->suspended = nullptr;
      return root_->scheduler->transfer(*root_, awaiting);
    }
    io_.emplace(root_->scheduler->loop());
    auto ready = [this](Io&, Events events) { retry(!events.invalid()); };
    Io::Handover* slot = Operation::handover();
    Error error;
    if (slot != nullptr && slot->fd == Operation::fd() && slot->fd >= 0) {
      error = io_->start(std::exchange(*slot, Io::Handover{}), Operation::kInterest, ready);
    } else {
      error = io_->start(Operation::fd(), Operation::kInterest, ready);
    }
    if (error) {
      refuse(error);
      return awaiting;
    }
    if (drained && root_->scheduler->busy()) {  // step 2: once more after the tasks ahead
      PhaseEndWork::run = [](PhaseEndWork& self) noexcept { static_cast<SocketAwait&>(self).retry(true); };
      root_->scheduler->defer_to_phase_end(*this);
    }
    return std::noop_coroutine();
  }
  decltype(auto) await_resume() noexcept { return Operation::result(error_); }
  void stop_waiting() noexcept {
    io_->stop();
    root_->scheduler->withdraw(*this);
  }

 private:
  // The completion path (io_uring): the operation goes to the kernel as it is.
  template <class Promise>
  std::coroutine_handle<> submit(Operations& operations, std::coroutine_handle<Promise> awaiting) noexcept {
    if (!Operation::prepare(request_)) {
      root_->suspended = nullptr;
      return root_->scheduler->transfer(*root_, awaiting);
    }
    request_.done = [](OperationRequest& request) noexcept { static_cast<SocketAwait*>(request.context)->on_done(); };
    request_.context = this;
    if (const Error error = operations.submit(request_)) {
      refuse(error);
      return awaiting;
    }
    operations_ = &operations;
    interrupt = [](Suspension& self) noexcept {
      auto& awaiter = static_cast<SocketAwait&>(static_cast<CancellableAwait&>(self));
      if (!awaiter.cancelling_) {
        awaiter.cancelling_ = true;
        awaiter.operations_->cancel(awaiter.request_);
      }
      return false;  // the task resumes once the kernel has let go (on_done)
    };
    return std::noop_coroutine();
  }
  void on_done() noexcept {
    if (request_.result == -ECANCELED && cancelling_) return finish(Error(ECANCELED));
    if (Operation::absorb(request_)) return finish(Error());
    // A part moved (write_all, read_exact): the rest, unless cancelled meanwhile.
    if (cancelling_) return finish(Error(ECANCELED));
    if constexpr (requires(const Operation& op) { op.wants_readiness(); }) {
      if (Operation::wants_readiness()) return wait_for_readiness();
    }
    if (const Error error = operations_->submit(request_)) finish(error);
  }
  // The readiness path from here on, for an operation the kernel would only fail again
  // at once (an accept out of descriptors): its calls are tried when the socket is ready.
  void wait_for_readiness() noexcept {
    operations_ = nullptr;
    interrupt = &stop_and_cancel<SocketAwait>;  // the readiness path's
    io_.emplace(root_->scheduler->loop());
    if (const Error error =
            io_->start(Operation::fd(), Operation::kInterest, [this](Io&, Events events) { retry(!events.invalid()); }))
      complete(error);
  }
  void finish(Error error) noexcept {
    operations_ = nullptr;
    complete(error);
  }

  // The call again (readiness came, or the end of the task phase): the await completes
  // unless it gives EAGAIN, and then the watcher goes on waiting.
  void retry(bool keep_registration) noexcept {
    if (!Operation::attempt()) return;
    root_->scheduler->withdraw(*this);
    Io::Handover* slot = Operation::handover();
    if (slot != nullptr && keep_registration) {
      *slot = io_->hand_over();
    } else {
      io_->stop();
    }
    complete();
  }

  std::optional<Io> io_;
  OperationRequest request_;          // the completion path's
  Operations* operations_ = nullptr;  // while request_ is the kernel's
  bool cancelling_ = false;
};

}  // namespace detail

}  // namespace evflow

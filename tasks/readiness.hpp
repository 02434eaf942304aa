// evflow — readable(fd), writable(fd): a task waits for a descriptor's readiness.
//
//   auto ready = co_await evflow::readable(fd);   // Result<Events>
//   if (!ready) ... ready.error() ...              // EBADF, EPERM, ECANCELED, ...
//   if (ready.value().invalid()) ...               // the descriptor became unusable
//
// Each await embeds an Io watcher in the awaiting frame, started at the suspension and
// stopped when it completes. A task that awaits the same descriptor again (the loop of a
// reader: read until EAGAIN, await, read again) hands the registration from one await to
// the next (Io::hand_over): while the interest is unchanged, neither the stop nor the next
// start makes a system call. Readiness is level-triggered, as for Io; an await may see
// readiness that another reader consumed first (read until EAGAIN). On Windows the
// descriptor is a socket, as for Io.
#pragma once

#include <optional>

#include "../reactor/io.hpp"
#include "await_base.hpp"

namespace evflow {

namespace detail {

class ReadinessAwaiter : public CancellableAwait {
 public:
  static constexpr const char* kActivity = "waiting on a descriptor";
  ReadinessAwaiter(int fd, Events interest) noexcept : fd_(fd), interest_(interest) {}

  template <class Promise>
  bool await_suspend(std::coroutine_handle<Promise> awaiting) noexcept {
    if (!enter<ReadinessAwaiter>(awaiting)) return false;
    io_.emplace(root_->scheduler->loop());
    const Io::Handover handover = std::exchange(root_->last_readiness, Io::Handover{});
    auto ready = [this](Io& io, Events events) {
      events_ = events;
      if (!events.invalid()) root_->last_readiness = io.hand_over();
      complete();
    };
    const Error error = handover.fd == fd_ ? io_->start(handover, interest_, ready) : io_->start(fd_, interest_, ready);
    return error ? refuse(error) : true;
  }
  // The readiness seen (a subset of the interest, or Invalid alone), or the error:
  // ECANCELED, or what Io::start refused (EBADF; EPERM for a descriptor the backend
  // cannot watch, such as a regular file under epoll; ENOMEM).
  Result<Events> await_resume() const noexcept {
    if (error_) return error_;
    return events_;
  }
  void stop_waiting() noexcept { io_->stop(); }

 private:
  int fd_;
  Events interest_;
  Events events_;
  std::optional<Io> io_;
};

}  // namespace detail

// Suspends the task until `fd` is readable (or unusable).
inline detail::ReadinessAwaiter readable(int fd) noexcept { return {fd, Readable}; }
// Suspends the task until `fd` is writable (or unusable).
inline detail::ReadinessAwaiter writable(int fd) noexcept { return {fd, Writable}; }
// Suspends the task until `fd` is ready for any of `interest`.
inline detail::ReadinessAwaiter ready(int fd, Events interest) noexcept { return {fd, interest}; }

}  // namespace evflow

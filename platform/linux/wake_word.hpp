// evflow — the word that tells wake() whether the loop's thread is in the kernel
// (Linux backends: epoll's notes l and m, io_uring's note g).
//
// a) States: idle (no wake-up since the last acknowledged), parked (the thread sleeps on
//    the word itself, futex(2)), sent (a wake-up not yet acknowledged) and polling (the
//    thread waits in the kernel, where only its eventfd reaches it).
// b) Only the loop's thread moves the word out of sent (acknowledge) or into parked and
//    polling; wake() moves it to sent from any thread, or from a signal handler
//    (exchange and futex_wake are async-signal-safe).
// c) A wait that may block is bracketed: announce_wait() from idle to polling, and
//    end_wait() back to idle. A wake-up found by announce_wait() turns the wait into a
//    poll; one that came during the wait leaves the word sent for the loop to report.
// d) The eventfd is written only for a thread in the kernel, or for a loop another loop
//    polls (polled_from_outside: that loop never waits itself).
#pragma once

#include <atomic>
#include <cstdint>

#include "sys.hpp"

namespace evflow::detail {

class WakeWord {
 public:
  // Before a wait that may block (note c). False: a wake-up is already there, so the
  // wait must not block.
  bool announce_wait() noexcept {
    uint32_t state = kIdle;
    return word_.compare_exchange_strong(state, kPolling);
  }
  // After the wait announce_wait() allowed. A wake-up that came during it stays sent.
  void end_wait() noexcept {
    uint32_t state = kPolling;
    (void)word_.compare_exchange_strong(state, kIdle);
  }

  // Sleeps on the word itself (epoll's note l) until a wake-up, unless one is already
  // there. False if none came: the sleep was interrupted.
  bool park() noexcept {
    uint32_t state = kIdle;
    if (word_.compare_exchange_strong(state, kParked)) {
      linux_abi::futex_wait(&word_, kParked);
      state = kParked;
      if (word_.compare_exchange_strong(state, kIdle)) return false;  // a signal: no wake-up
    }
    return state == kSent;
  }

  // Whether a wake-up waits to be acknowledged.
  bool sent() const noexcept { return word_.load() == kSent; }

  // wake(), from any thread or a signal handler. True if the eventfd must be written
  // (note d); a parked thread is woken here.
  bool send() noexcept {
    const uint32_t before = word_.exchange(kSent);
    if (before == kParked) {
      linux_abi::futex_wake(&word_);
      return false;
    }
    return before == kPolling || polled_from_outside_.load();
  }

  // The loop is polled by another loop from now on (note d). True the first time, if a
  // wake-up already sent must be written now.
  bool poll_from_outside() noexcept {
    if (polled_from_outside_.load(std::memory_order_relaxed)) return false;
    polled_from_outside_.store(true);
    return sent();
  }

  // The loop has taken the wake-up: before its own wake-up flag is cleared.
  void acknowledge() noexcept { word_.store(kIdle, std::memory_order_release); }

  // In a forked child: the loop's thread may have been parked or polling in the parent.
  void reset() noexcept { word_.store(kIdle); }

 private:
  static constexpr uint32_t kIdle = 0;
  static constexpr uint32_t kParked = 1;
  static constexpr uint32_t kSent = 2;
  static constexpr uint32_t kPolling = 3;
  alignas(64) std::atomic<uint32_t> word_{kIdle};  // written from other threads: a line of its own
  std::atomic<bool> polled_from_outside_{false};   // set once, read by send()
};

}  // namespace evflow::detail

// Test support: driving one backend directly (platform/backend.hpp), for the contract
// suite and the backends' own tests.
#pragma once

#include <gtest/gtest.h>

#include <span>
#include <vector>

#include "platform/clock.hpp"
#include "platform/readiness.hpp"

namespace evflow::testing {

template <class B>
class BackendHarness : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_FALSE(backend.open()); }

  Error apply_one(int fd, Events from, Events to, uint32_t tag) {
    detail::InterestChange change{fd, from, to, tag};
    backend.apply(std::span<detail::InterestChange>(&change, 1));
    return change.error;
  }

  // Waits at most `timeout_ns` and returns the descriptor events (wake-ups left out).
  std::vector<detail::ReadyEvent> poll(int64_t timeout_ns = 0) {
    std::vector<detail::ReadyEvent> out;
    Result<int> n = backend.wait(timeout_ns, detail::monotonic_ns() + timeout_ns);
    EXPECT_TRUE(n.ok());
    for (int i = 0; i < n.value_or(0); ++i) {
      if (backend.event(i).fd != detail::kWakeDescriptor) out.push_back(backend.event(i));
    }
    return out;
  }

  // The events of a condition that holds already. epoll and kqueue know it at once; on
  // IOCP the AFD poll completes on its own schedule, so wait for it (up to a minute:
  // never reached unless the report is missing, which fails the test anyway).
  std::vector<detail::ReadyEvent> poll_expecting_events() {
    for (int round = 0; round < 60; ++round) {
      std::vector<detail::ReadyEvent> events = poll(1'000'000'000);
      if (!events.empty()) return events;
    }
    return {};
  }

  B backend;
};

}  // namespace evflow::testing

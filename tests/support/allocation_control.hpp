// Test support: the test binary's global allocation functions, counted and, on request,
// made to fail. tests/support/allocation_control.cpp replaces operator new and delete for
// the whole binary (a program may replace them once), so every test can read the count.
//
// Failing on purpose: arm_failure(k) makes the k-th allocation from now on fail, once.
// The nothrow forms then return null, as they do when memory runs out. The library must
// allocate only through those (it builds without exceptions, so a throwing operator new
// that fails would end the process): a throwing allocation while a failure is armed is
// counted in throwing_allocations_while_armed() and, if it is the one to fail, aborts
// with a message naming the rule.
#pragma once

namespace evflow::testing {

// Every allocation so far (operator new in all its forms), from any thread.
long allocation_count() noexcept;

// The k-th allocation (k >= 1) from now on fails; the others succeed.
void arm_failure(long k) noexcept;
// Ends the armed state. Returns true when the armed allocation was reached (and failed).
bool disarm_failure() noexcept;
// Throwing-form allocations made while a failure was armed, since the last arm_failure.
long throwing_allocations_while_armed() noexcept;

// While one lives, the allocations of its thread are neither counted nor failed: for the
// tests' stand-ins of a kernel (the kqueue emulation), whose memory a real kernel would
// not take from the program's allocator.
class KernelAllocations {
 public:
  KernelAllocations() noexcept;
  ~KernelAllocations();
  KernelAllocations(const KernelAllocations&) = delete;
  KernelAllocations& operator=(const KernelAllocations&) = delete;
};

}  // namespace evflow::testing

// Test-only: the loop's Backend for the kqueue-freebsd and kqueue-macos builds (Makefile):
// the kqueue backend over the kqueue emulation, in the ABI flavour EVFLOW_EMULATED_MACOS
// selects. platform/backend.hpp includes it through EVFLOW_BACKEND_HEADER, so the whole
// suite runs on the kqueue backend's logic on Linux.
#pragma once

#include "platform/bsd/kqueue_backend.hpp"
#include "tests/support/kqueue_emulation.hpp"

namespace evflow::detail {

#if defined(EVFLOW_EMULATED_MACOS)
using Backend = BasicKqueueBackend<testing::EmulatedKqueue<testing::MacosAbi>>;
#else
using Backend = BasicKqueueBackend<testing::EmulatedKqueue<testing::FreeBsdAbi>>;
#endif
static_assert(ReadinessBackend<Backend>);

}  // namespace evflow::detail

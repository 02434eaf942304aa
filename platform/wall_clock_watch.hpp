// evflow — WallClockWatch for this platform: a descriptor that becomes readable when
// the wall clock is set. See the platform's file for the mechanism.
#pragma once

#if defined(__linux__)
#include "platform/linux/wall_clock_watch.hpp"
#elif defined(__FreeBSD__) || defined(__APPLE__)
#include "platform/bsd/wall_clock_watch.hpp"
#else
#error "evflow: no wall-clock watch for this platform yet"
#endif

// evflow — everything a user of the reactor includes: the loop and all watchers.
//
// The public headers are the files of this directory; what they pull in from the
// directories beside it is the library's inside (namespace evflow::detail).
#pragma once

#include "async.hpp"
#include "child.hpp"
#include "hook.hpp"
#include "io.hpp"
#include "loop.hpp"
#include "periodic.hpp"
#include "signal.hpp"
#include "timer.hpp"
#include "with_capacity.hpp"

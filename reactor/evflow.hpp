// evflow — everything a user of the reactor includes: the loop and all watchers.
#pragma once

#include "reactor/async.hpp"
#include "reactor/child.hpp"
#include "reactor/hook.hpp"
#include "reactor/io.hpp"
#include "reactor/loop.hpp"
#include "reactor/periodic.hpp"
#include "reactor/signal.hpp"
#include "reactor/timer.hpp"
#include "reactor/with_capacity.hpp"

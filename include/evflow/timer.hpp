// evflow — Timer: a relative timeout, one-shot or repeating, on the monotonic clock.
#pragma once

#include "../../reactor/timer.hpp"

// evflow — Periodic: wall-clock times (absolute, on an interval, or by a rule).
#pragma once

#include "../../reactor/periodic.hpp"

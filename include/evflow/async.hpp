// evflow — Async: a wake-up sent from any thread or signal handler.
#pragma once

#include "../../reactor/async.hpp"

// evflow — the loop: run, stop, post, time, fork, embedding, statistics.
#pragma once

#include "../../reactor/loop.hpp"

// evflow — WithCapacity: a watcher whose callback may capture more than three pointers.
#pragma once

#include "../../reactor/with_capacity.hpp"

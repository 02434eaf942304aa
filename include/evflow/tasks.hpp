// evflow — coroutine tasks on the loop: Task, spawn, TaskHandle, sleep, yield.
#pragma once

#include "../../tasks/tasks.hpp"

// evflow — coroutine tasks on the reactor: Task, spawn, TaskHandle, sleep, yield.
#pragma once

#include "sleep.hpp"
#include "spawn.hpp"
#include "task.hpp"

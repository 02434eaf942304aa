// evflow — coroutine tasks on the loop: Task, spawn, TaskHandle, the awaits of every
// watcher, cancellation scopes.
#pragma once

#include "../../tasks/tasks.hpp"

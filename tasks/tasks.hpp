// evflow — coroutine tasks on the reactor: Task, spawn, TaskHandle, and an await for
// every watcher: sleep, yield, readable/writable, child_exit, Notification, SignalWaiter.
#pragma once

#include "child_exit.hpp"
#include "notification.hpp"
#include "readiness.hpp"
#include "signal_waiter.hpp"
#include "sleep.hpp"
#include "spawn.hpp"
#include "task.hpp"

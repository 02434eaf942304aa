// evflow — coroutine tasks on the reactor: Task, spawn, TaskHandle, and an await for
// every watcher: sleep, yield, readable/writable, child_exit, Notification, SignalWaiter;
// CancellationScope, with_timeout, with_deadline, shielded; TaskGroup, SupervisorGroup, gather;
// Generator; ContextVar; the task observer and the task tree.
#pragma once

#include "cancellation.hpp"
#include "child_exit.hpp"
#include "context_var.hpp"
#include "gather.hpp"
#include "generator.hpp"
#include "notification.hpp"
#include "observer.hpp"
#include "readiness.hpp"
#include "signal_waiter.hpp"
#include "sleep.hpp"
#include "spawn.hpp"
#include "task.hpp"
#include "task_group.hpp"

// evflow — coroutine tasks on the reactor: Task, spawn, TaskHandle, and an await for
// every watcher: sleep, yield, readable/writable, child_exit, Notification, SignalWaiter;
// CancellationScope, with_timeout, with_deadline, shielded; TaskGroup, SupervisorGroup, gather;
// Generator; ContextVar; Lock, Semaphore, Event, Condition, Channel; the task observer and the task
// tree.
#pragma once

#include "cancellation.hpp"
#include "channel.hpp"
#include "child_exit.hpp"
#include "condition.hpp"
#include "context_var.hpp"
#include "event.hpp"
#include "gather.hpp"
#include "generator.hpp"
#include "lock.hpp"
#include "notification.hpp"
#include "observer.hpp"
#include "readiness.hpp"
#include "semaphore.hpp"
#include "signal_waiter.hpp"
#include "sleep.hpp"
#include "spawn.hpp"
#include "task.hpp"
#include "task_group.hpp"

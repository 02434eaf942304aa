// evflow — worker processes: spawn_process, WorkerProcess, MessageChannel, ProcessPool.
// Apart from <evflow/tasks.hpp> because a MessageChannel is built on a UnixStream: this
// header brings the sockets of <evflow/net.hpp> with it.
#pragma once

#include "../../tasks/process_pool.hpp"

// bench/compare: evflow with its loops on the io_uring readiness backend
// (platform/linux/uring_backend.hpp), beside evflow on epoll. The program stops if the
// kernel gave epoll instead: its figures would be epoll's under another name.
#define EVFLOW_BENCH_BACKEND evflow::BackendKind::IoUring
#define EVFLOW_BENCH_NAME "evflow_io_uring"
#include "evflow.cpp"

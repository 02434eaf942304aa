// The echo workload's server on evflow with its loops on io_uring: echo_evflow.cpp's server,
// whose socket calls then go to the kernel as operations, one io_uring_enter per
// iteration for all of them (net/socket.hpp). It stops if the kernel gives epoll instead.
#define NETBENCH_IO_URING 1
#include "bench/net/echo_evflow.cpp"  // NOLINT(bugprone-suspicious-include)

// evflow — the io_uring form of each socket operation (operation.hpp): the submission
// entry that performs it, and its outcome read back as the system call's would be.
// Implemented in socket.cpp, beside the conversions between Endpoint and sockaddr.
#pragma once

#include "../operation.hpp"
#include "uring_abi.hpp"

namespace evflow::detail {

// Fills `sqe` (zeroed, user_data left alone) to perform `request`; the sockaddr, msghdr
// and iovec the kernel reads or writes go to the request's scratch space. EINVAL: the
// endpoint cannot be turned into a sockaddr (nothing is submitted then).
Error prepare_operation(OperationRequest& request, linux_abi::IoUringSqe& sqe) noexcept;

// Sets request.result from the completion's `res`, mapped as socket.cpp maps the system
// call's (accept's network errors become ECONNABORTED); converts the peer or sender back
// into *request.endpoint and sets `truncated`.
void finish_operation(OperationRequest& request, int32_t res, uint32_t flags) noexcept;

}  // namespace evflow::detail

// evflow — detail::OperationRequest: a socket operation that the backend performs itself.
//
// The backend contract is readiness (backend.hpp). A backend that can also perform I/O
// (io_uring) offers it beside the contract, through four optional members that the loop
// calls where they exist (the PerformsOperations concept below):
//
//   bool performs_operations() const  whether it does now (the Linux slot: on io_uring,
//                                     not on epoll); the others may be called only then.
//   Error submit(OperationRequest&)   queue the operation; it goes to the kernel with the
//                                     next wait (no system call of its own). The request
//                                     must stay where it is until it completes. Errors:
//                                     ENOMEM (no room to track it), EINVAL (an address
//                                     the system cannot take).
//   void cancel(OperationRequest&)    ask the kernel to cancel it (with the next wait). It
//                                     still completes, with ECANCELED, or with its result
//                                     when the kernel had finished it first.
//   void abandon(OperationRequest&)   cancel it and wait, here and now, until the kernel
//                                     has let go of the request and its buffer; it then
//                                     never completes. For an owner that goes away.
//   OperationRequest* take_completed()
//                                     the next request that completed, oldest first
//                                     (null: none); the loop calls its `done`.
//
// Every field but the scratch space is the caller's, set before submit(); `result` and
// `truncated` are the backend's answer. Addresses cross as Endpoints, as for every other
// socket call (socket.hpp); the backend keeps what the kernel needs of them (sockaddr,
// msghdr) in `scratch`.
#pragma once

#include <concepts>
#include <cstdint>

#include "socket.hpp"

namespace evflow::detail {

enum class OperationKind : uint8_t {
  receive,       // recv(2) into buffer[0..size): result = bytes, 0 at the end of the stream
  send,          // send(2) of buffer[0..size), never a SIGPIPE: result = bytes accepted
  accept,        // accept4(2), non-blocking and close-on-exec: result = the descriptor;
                 // the peer in *endpoint when endpoint is not null
  connect,       // connect(2) of the socket fd to *endpoint: result = 0
  receive_from,  // recvmsg(2): one datagram into the buffer; its sender in *endpoint when
                 // endpoint is not null, `truncated` when it did not fit
  send_to,       // sendmsg(2) of one datagram to *endpoint, or to the connected peer
                 // when endpoint is null
};

struct OperationRequest {
  OperationKind kind = OperationKind::receive;
  bool truncated = false;  // receive_from: the datagram was longer than the buffer
  int fd = -1;
  void* buffer = nullptr;
  uint32_t size = 0;
  Endpoint* endpoint = nullptr;  // see OperationKind (const for connect and send_to)
  // The outcome: >= 0 as OperationKind says, or -errno (ECANCELED when cancelled).
  int32_t result = 0;
  // Called by the loop when the request has completed (in the loop's I/O phase).
  void (*done)(OperationRequest& request) noexcept = nullptr;
  void* context = nullptr;  // the owner's, for `done`

  // The backend's.
  OperationRequest* next_completed = nullptr;
  uint32_t slot = 0;
  bool in_kernel = false;  // submitted and not completed yet
  bool completed = false;  // in the backend's list of completed requests
  alignas(8) unsigned char scratch[224];
};

// The optional members above.
template <class B>
concept PerformsOperations = requires(B& b, const B& cb, OperationRequest& request) {
  { cb.performs_operations() }
  noexcept->std::same_as<bool>;
  { b.submit(request) }
  noexcept->std::same_as<Error>;
  { b.cancel(request) }
  noexcept->std::same_as<void>;
  { b.abandon(request) }
  noexcept->std::same_as<void>;
  { b.take_completed() }
  noexcept->std::same_as<OperationRequest*>;
};

}  // namespace evflow::detail

// evflow — MessageChannel: whole messages (frames) over a connected local stream, between
// two processes (spawn_process: the parent and its worker) or two tasks.
//
//   Error sent = co_await channel.send("ping");
//   std::string frame;                                   // reused: no allocation once grown
//   Result<std::size_t> got = co_await channel.receive(frame);
//
// Format: each frame is its length, 4 bytes little-endian, then that many bytes. A frame
// holds 0 to max_frame() bytes (kDefaultMaxFrame unless set_max_frame() said otherwise;
// both ends should agree).
//
// Decisions:
// - One send and one receive may be in flight at once (from two tasks); a second send, or a
//   second receive, while one is in flight gives EBUSY (frames would interleave).
// - receive(frame) resizes `frame` to the frame's size and fills it: a string reused from
//   one receive to the next allocates only when a frame is larger than any before.
// - A receive cancelled while waiting keeps what it had read of a frame in the channel:
//   the next receive goes on with that frame, from the first byte. Cancelling a receive
//   leaves the channel usable (MessageChannel test "ACancelledReceiveLeavesTheChannelUsable").
// - A send cancelled after part of a frame went out cannot take it back: the channel ends
//   its writing side (the peer's receive gives EPROTO for the truncated frame) and later
//   sends give EPIPE. One cancelled before any byte went out leaves the channel usable.
//
// Errors of send: EMSGSIZE (larger than max_frame(); nothing sent), EPIPE (the peer is gone
// or the writing side was ended), ECONNRESET, ECANCELED, EBUSY, EBADF (closed channel).
// Errors of receive: EPIPE (the peer closed its end between two frames: the end of the
// messages), EPROTO (the peer closed in the middle of a frame, or announced a frame larger
// than max_frame(): the channel is then broken), ECONNRESET, ECANCELED, EBUSY, EBADF.
// Both are cancellation points, and must be awaited at once (their arguments are referred
// to until they complete).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "../net/stream.hpp"
#include "task.hpp"

namespace evflow {

class MessageChannel {
 public:
  // The largest frame by default (1 MiB).
  static constexpr std::size_t kDefaultMaxFrame = std::size_t{1} << 20;
  // The largest frame the format can carry (the length field is 32 bits).
  static constexpr std::size_t kFormatMaxFrame = UINT32_MAX;

  MessageChannel() noexcept = default;
  // Takes a connected stream (one end of UnixStream::pair()).
  explicit MessageChannel(UnixStream stream) noexcept : stream_(std::move(stream)) {}
  MessageChannel(MessageChannel&&) noexcept = default;
  MessageChannel& operator=(MessageChannel&&) noexcept = default;

  // Sends `size` bytes at `data` as one frame. Completes once the frame is in the kernel's
  // buffers (not once the peer read it).
  Task<Error> send(const void* data, std::size_t size);
  Task<Error> send(std::string_view bytes) { return send(bytes.data(), bytes.size()); }
  // Receives the next frame into `frame` (resized to it); gives its size.
  Task<Result<std::size_t>> receive(std::string& frame);

  // The largest frame sent or accepted; at most kFormatMaxFrame (EINVAL above it).
  Error set_max_frame(std::size_t bytes) noexcept;
  std::size_t max_frame() const noexcept { return max_frame_; }

  // Closes the stream now: the peer's receive gives EPIPE. Not while a send or receive is
  // in flight (EBUSY). Idempotent.
  Error close() noexcept;
  bool is_open() const noexcept { return stream_.is_open(); }
  // The stream's descriptor, -1 when closed.
  int fd() const noexcept { return stream_.fd(); }

 private:
  static constexpr std::size_t kHeaderBytes = 4;
  static constexpr std::size_t kCoalescedBytes = 60;  // a frame this small: one write with its header
  // Writes the length of a frame of `size` bytes into `header`, followed by the frame when
  // it fits in kCoalescedBytes; gives how many of its bytes were copied (0 or size).
  static std::size_t put_header(unsigned char* header, const void* data, std::size_t size) noexcept;
  void break_sending() noexcept;  // a send was cut inside a frame
  std::size_t frame_size() const noexcept;
  // Resizes `frame` to `size` and puts a cancelled receive's bytes first; gives their count.
  std::size_t take_partial(std::string& frame, std::size_t size);
  void keep_partial(const std::string& frame, std::size_t bytes);

  UnixStream stream_;
  std::size_t max_frame_ = kDefaultMaxFrame;
  std::string partial_;                      // a cancelled receive's part of a frame
  unsigned char header_[kHeaderBytes] = {};  // the length of the frame being received
  std::size_t header_bytes_ = 0;             // of header_, read so far
  bool sending_ = false;
  bool receiving_ = false;
  bool send_broken_ = false;     // a send was cut inside a frame: the writing side ended
  bool receive_broken_ = false;  // EPROTO was reported: nothing more can be read
};

namespace detail {

// Sets a flag for as long as an operation is in flight.
struct InFlight {
  bool& flag;
  explicit InFlight(bool& f) noexcept : flag(f) { flag = true; }
  ~InFlight() { flag = false; }
  InFlight(const InFlight&) = delete;
  InFlight& operator=(const InFlight&) = delete;
};

}  // namespace detail

// The coroutines are defined here, not in the library: a task's frame layout follows the
// program's exceptions setting (task.hpp), which the library's cannot know.
inline Task<Error> MessageChannel::send(const void* data, std::size_t size) {
  if (!stream_.is_open()) co_return Error(EBADF);
  if (sending_) co_return Error(EBUSY);
  if (size > max_frame_) co_return Error(EMSGSIZE);
  if (send_broken_) co_return Error(EPIPE);
  if (data == nullptr && size != 0) co_return Error(EINVAL);
  detail::InFlight in_flight(sending_);
  unsigned char header[kHeaderBytes + kCoalescedBytes];
  const std::size_t together = put_header(header, data, size);  // a small frame goes out whole
  Transfer head = co_await stream_.write_all(header, kHeaderBytes + together);
  if (head.error) {
    if (head.bytes != 0) break_sending();  // part of a header went out: no more framing
    co_return head.error;
  }
  if (together == size) co_return Error();
  Transfer body = co_await stream_.write_all(data, size);
  if (body.error) {
    break_sending();
    co_return body.error;
  }
  co_return Error();
}

inline Task<Result<std::size_t>> MessageChannel::receive(std::string& frame) {
  if (!stream_.is_open()) co_return Error(EBADF);
  if (receiving_) co_return Error(EBUSY);
  if (receive_broken_) co_return Error(EPROTO);
  detail::InFlight in_flight(receiving_);
  while (header_bytes_ < sizeof header_) {
    Transfer head = co_await stream_.read_exact(header_ + header_bytes_, sizeof header_ - header_bytes_);
    header_bytes_ += head.bytes;
    if (head.end_of_stream) {
      if (header_bytes_ == 0) co_return Error(EPIPE);
      receive_broken_ = true;
      co_return Error(EPROTO);
    }
    if (head.error) co_return head.error;  // a cancellation keeps what was read
  }
  const std::size_t size = frame_size();
  if (size > max_frame_) {
    receive_broken_ = true;
    co_return Error(EPROTO);
  }
  std::size_t have = take_partial(frame, size);
  if (have < size) {
    Transfer body = co_await stream_.read_exact(frame.data() + have, size - have);
    have += body.bytes;
    if (body.end_of_stream) {
      receive_broken_ = true;
      co_return Error(EPROTO);
    }
    if (body.error) {
      keep_partial(frame, have);  // the next receive goes on from here
      co_return body.error;
    }
  }
  header_bytes_ = 0;
  co_return size;
}

}  // namespace evflow

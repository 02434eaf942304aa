#include "message_channel.hpp"

#include <cstring>

namespace evflow {

Error MessageChannel::set_max_frame(std::size_t bytes) noexcept {
  if (bytes > kFormatMaxFrame) return Error(EINVAL);
  max_frame_ = bytes;
  return Error();
}

Error MessageChannel::close() noexcept {
  if (sending_ || receiving_) return Error(EBUSY);
  partial_.clear();
  header_bytes_ = 0;
  return stream_.close();
}

std::size_t MessageChannel::put_header(unsigned char* header, const void* data, std::size_t size) noexcept {
  const auto length = static_cast<uint32_t>(size);
  header[0] = static_cast<unsigned char>(length);
  header[1] = static_cast<unsigned char>(length >> 8);
  header[2] = static_cast<unsigned char>(length >> 16);
  header[3] = static_cast<unsigned char>(length >> 24);
  if (size > kCoalescedBytes || size == 0) return 0;
  std::memcpy(header + kHeaderBytes, data, size);
  return size;
}

void MessageChannel::break_sending() noexcept {
  send_broken_ = true;
  (void)stream_.shutdown_write();  // the peer reads a truncated frame (EPROTO), not garbage
}

std::size_t MessageChannel::frame_size() const noexcept {
  return std::size_t{header_[0]} | (std::size_t{header_[1]} << 8) | (std::size_t{header_[2]} << 16) |
         (std::size_t{header_[3]} << 24);
}

std::size_t MessageChannel::take_partial(std::string& frame, std::size_t size) {
  frame.resize(size);
  const std::size_t have = partial_.size();
  if (have != 0) {
    std::memcpy(frame.data(), partial_.data(), have);
    partial_.clear();
  }
  return have;
}

void MessageChannel::keep_partial(const std::string& frame, std::size_t bytes) { partial_.assign(frame.data(), bytes); }

}  // namespace evflow

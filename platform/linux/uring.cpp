#include "uring.hpp"

#include <cstring>

namespace evflow::detail {

namespace {

using linux_abi::IoUringCqe;
using linux_abi::IoUringSqe;

// The ring words are shared with the kernel (note a).
uint32_t load_acquire(const uint32_t* word) noexcept { return __atomic_load_n(word, __ATOMIC_ACQUIRE); }
void store_release(uint32_t* word, uint32_t value) noexcept { __atomic_store_n(word, value, __ATOMIC_RELEASE); }

template <class T>
T* at(void* base, uint32_t offset) noexcept {
  return reinterpret_cast<T*>(static_cast<char*>(base) + offset);
}

Result<void*> map_ring(int fd, unsigned long size, uint64_t offset) noexcept {
  return linux_abi::mmap(size, linux_abi::kProtRead | linux_abi::kProtWrite,
                         linux_abi::kMapShared | linux_abi::kMapPopulate, fd, offset);
}

}  // namespace

Error Uring::open(unsigned entries, unsigned cq_entries, uint32_t flags) noexcept {
  close();
  linux_abi::IoUringParams params;
  std::memset(&params, 0, sizeof params);
  params.flags = flags;
  if (cq_entries != 0) {
    params.flags |= linux_abi::kIoringSetupCqsize;
    params.cq_entries = cq_entries;
  }
  Result<int> fd = linux_abi::io_uring_setup(entries, &params);
  if (!fd) return fd.error();
  fd_ = fd.value();
  features_ = params.features;
  sq_entries_ = params.sq_entries;
  cq_entries_ = params.cq_entries;

  // Sizes of the two rings (note c): each ends with its array.
  sq_ring_size_ = params.sq_off.array + params.sq_entries * sizeof(uint32_t);
  cq_ring_size_ = params.cq_off.cqes + params.cq_entries * sizeof(IoUringCqe);
  const bool single = (features_ & linux_abi::kIoringFeatSingleMmap) != 0;
  if (single) {
    if (cq_ring_size_ > sq_ring_size_) sq_ring_size_ = cq_ring_size_;
    cq_ring_size_ = sq_ring_size_;
  }

  Result<void*> sq = map_ring(fd_, sq_ring_size_, linux_abi::kIoringOffSqRing);
  if (!sq) {
    Error err = sq.error();
    close();
    return err;
  }
  sq_ring_ = sq.value();
  if (single) {
    cq_ring_ = sq_ring_;
  } else {
    Result<void*> cq = map_ring(fd_, cq_ring_size_, linux_abi::kIoringOffCqRing);
    if (!cq) {
      Error err = cq.error();
      close();
      return err;
    }
    cq_ring_ = cq.value();
  }
  sqes_size_ = params.sq_entries * sizeof(IoUringSqe);
  Result<void*> sqes = map_ring(fd_, sqes_size_, linux_abi::kIoringOffSqes);
  if (!sqes) {
    Error err = sqes.error();
    close();
    return err;
  }
  sqes_ = static_cast<IoUringSqe*>(sqes.value());

  sq_head_ = at<uint32_t>(sq_ring_, params.sq_off.head);
  sq_tail_ = at<uint32_t>(sq_ring_, params.sq_off.tail);
  sq_flags_ = at<uint32_t>(sq_ring_, params.sq_off.flags);
  sq_mask_ = *at<uint32_t>(sq_ring_, params.sq_off.ring_mask);
  cq_head_ = at<uint32_t>(cq_ring_, params.cq_off.head);
  cq_tail_ = at<uint32_t>(cq_ring_, params.cq_off.tail);
  cq_mask_ = *at<uint32_t>(cq_ring_, params.cq_off.ring_mask);
  cqes_ = at<IoUringCqe>(cq_ring_, params.cq_off.cqes);

  // Slot i of the submission ring names SQE i, for good (note b).
  uint32_t* array = at<uint32_t>(sq_ring_, params.sq_off.array);
  for (uint32_t i = 0; i < params.sq_entries; ++i)
    array[i] = i;
  sqe_tail_ = *sq_tail_;
  sq_tail_published_ = sqe_tail_;
  return Error();
}

void Uring::close() noexcept {
  if (sqes_ != nullptr) (void)linux_abi::munmap(sqes_, sqes_size_);
  if (cq_ring_ != nullptr && cq_ring_ != sq_ring_) (void)linux_abi::munmap(cq_ring_, cq_ring_size_);
  if (sq_ring_ != nullptr) (void)linux_abi::munmap(sq_ring_, sq_ring_size_);
  if (fd_ >= 0) (void)linux_abi::close(fd_);
  fd_ = -1;
  features_ = 0;
  sq_entries_ = cq_entries_ = 0;
  sq_ring_ = cq_ring_ = nullptr;
  sq_ring_size_ = cq_ring_size_ = sqes_size_ = 0;
  sqes_ = nullptr;
  sq_head_ = sq_tail_ = sq_flags_ = cq_head_ = cq_tail_ = nullptr;
  sq_mask_ = cq_mask_ = 0;
  cqes_ = nullptr;
  sqe_tail_ = sq_tail_published_ = 0;
}

IoUringSqe* Uring::get_sqe() noexcept {
  if (sqes_ == nullptr) return nullptr;
  // The kernel's head tells which slots it has consumed (note a).
  if (sqe_tail_ - load_acquire(sq_head_) >= sq_entries_) return nullptr;
  IoUringSqe* sqe = &sqes_[sqe_tail_ & sq_mask_];
  ++sqe_tail_;
  std::memset(sqe, 0, sizeof *sqe);
  return sqe;
}

Result<int> Uring::submit_and_wait(unsigned wait_nr, const linux_abi::KernelTimespec* timeout) noexcept {
  if (fd_ < 0) return Error(EBADF);
  if (sqe_tail_ != sq_tail_published_) {
    // The SQEs' contents before the tail that covers them (note a).
    store_release(sq_tail_, sqe_tail_);
    sq_tail_published_ = sqe_tail_;
  }
  // Everything published and not yet consumed, including what an earlier call left in
  // the ring (note g).
  const unsigned to_submit = sqe_tail_ - load_acquire(sq_head_);
  unsigned flags = 0;
  // Overflowed completions are moved into the ring only by a GETEVENTS enter (note f).
  if (wait_nr != 0 || (load_acquire(sq_flags_) & linux_abi::kIoringSqCqOverflow) != 0) {
    flags |= linux_abi::kIoringEnterGetevents;
  }
  if (wait_nr != 0 && timeout != nullptr) {
    if ((features_ & linux_abi::kIoringFeatExtArg) == 0) return Error(EOPNOTSUPP);  // note e
    linux_abi::IoUringGeteventsArg arg{};
    arg.ts = reinterpret_cast<uint64_t>(timeout);
    return linux_abi::io_uring_enter(fd_, to_submit, wait_nr, flags, arg);
  }
  return linux_abi::io_uring_enter(fd_, to_submit, wait_nr, flags);
}

const IoUringCqe* Uring::peek() const noexcept {
  if (cqes_ == nullptr) return nullptr;
  const uint32_t head = *cq_head_;  // written by this process only
  if (head == load_acquire(cq_tail_)) return nullptr;
  return &cqes_[head & cq_mask_];
}

unsigned Uring::pending() const noexcept {
  if (sq_head_ == nullptr) return 0;
  return sqe_tail_ - load_acquire(sq_head_);
}

unsigned Uring::ready() const noexcept {
  if (cqes_ == nullptr) return 0;
  return load_acquire(cq_tail_) - *cq_head_;
}

void Uring::advance(unsigned count) noexcept {
  if (count == 0) return;
  // The CQEs are read before their slots go back to the kernel (note a).
  store_release(cq_head_, *cq_head_ + count);
}

Result<bool> Uring::supports(uint8_t opcode) noexcept {
  if (fd_ < 0) return Error(EBADF);
  constexpr unsigned kOps = 256;
  struct {
    linux_abi::IoUringProbeHeader header;
    linux_abi::IoUringProbeOp ops[kOps];
  } probe;
  std::memset(&probe, 0, sizeof probe);
  Result<int> ret = linux_abi::io_uring_register(fd_, linux_abi::kIoringRegisterProbe, &probe, kOps);
  if (!ret) return ret.error();
  if (opcode >= probe.header.ops_len) return false;
  return (probe.ops[opcode].flags & linux_abi::kIoUringOpSupported) != 0;
}

}  // namespace evflow::detail

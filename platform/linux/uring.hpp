// evflow — an io_uring instance mapped and driven by evflow itself: io_uring_setup, the
// two rings and the submission array mapped with mmap, io_uring_enter to submit and wait.
// No liburing. A building block for a backend; it knows nothing of the loop.
//
// Notes on the kernel's behaviour that this class relies on or handles:
//
// a) Each ring is a power-of-two array with a free-running 32-bit head and tail; entries
//    are tail - head, the slot of a position is position & mask, and the counters wrap.
//    The submission tail and the completion head are written by the process, the other
//    two by the kernel. The process reads what the kernel wrote with acquire loads and
//    publishes what it wrote with release stores, so that an SQE is complete before the
//    kernel sees the tail that covers it, and a CQE is read before its slot is handed
//    back.
// b) The submission ring holds indices into a separate SQE array (the SQ "array"). They
//    are set once, slot i to SQE i, at open(); only the tail moves afterwards.
// c) With kIoringFeatSingleMmap (Linux >= 5.4) both rings live in one mapping, of the
//    larger of the two sizes; before, each is mapped at its own offset. The SQE array is
//    always a third mapping.
// d) io_uring_setup answers ENOSYS where io_uring does not exist (or a seccomp filter or
//    qemu-user refuses it), EPERM when kernel.io_uring_disabled or a filter forbids it,
//    and ENOMEM when memory, or before Linux 5.12 RLIMIT_MEMLOCK, is short. open() returns
//    these unchanged, so that a caller can fall back to epoll; it returns mmap's errors
//    likewise, after undoing what it had done.
// e) A timed wait takes a relative timeout through kIoringEnterExtArg (Linux >= 5.11,
//    kIoringFeatExtArg); it ends with ETIME when it expires without enough completions.
//    Without that feature submit_and_wait() refuses a timeout with EOPNOTSUPP; epoll's
//    nanosecond wait, epoll_pwait2, dates from the same release.
// f) With kIoringFeatNodrop (Linux >= 5.5) completions that find the ring full wait in a
//    kernel list, and kIoringSqCqOverflow is set in the submission ring's flags; they are
//    moved into the ring by the next io_uring_enter with kIoringEnterGetevents, which
//    submit_and_wait() then asks for even when it does not wait.
// g) io_uring_enter may consume fewer SQEs than published: it stops after an SQE that
//    fails to start (that one completes with its error), and answers EAGAIN or EBUSY when
//    it could take none. The rest stay in the ring, past the kernel's head, and the next
//    submit_and_wait() submits them again: it counts from that head.
// h) A forked child shares the parent's mappings and ring. It must not submit to or reap
//    from them; it may only forget them (unmap and close, which do not affect the parent).
#pragma once

#include <cstdint>

#include "../result.hpp"
#include "sys.hpp"
#include "uring_abi.hpp"

namespace evflow::detail {

class Uring {
 public:
  Uring() noexcept = default;
  ~Uring() { close(); }
  Uring(const Uring&) = delete;
  Uring& operator=(const Uring&) = delete;

  // A ring of at least `entries` submissions (the kernel rounds up to a power of two, and
  // gives the completion ring twice as many, or `cq_entries` if not 0), set up with the
  // kIoringSetup* bits in `flags`. Closes a ring already open first.
  // Errors: ENOSYS, EPERM, ENOMEM and the others of io_uring_setup and mmap (note d);
  // EINVAL for flags this kernel does not know.
  Error open(unsigned entries, unsigned cq_entries = 0, uint32_t flags = 0) noexcept;
  // Unmaps the rings and closes the descriptor; nothing in flight is waited for.
  void close() noexcept;
  bool is_open() const noexcept { return fd_ >= 0; }

  int fd() const noexcept { return fd_; }
  // kIoringFeat* bits the kernel reported at open().
  uint32_t features() const noexcept { return features_; }
  unsigned sq_entries() const noexcept { return sq_entries_; }
  unsigned cq_entries() const noexcept { return cq_entries_; }
  // The kernel's submission head and completion tail: how far it has consumed and posted.
  uint32_t kernel_sq_head() const noexcept {
    return sq_head_ == nullptr ? 0 : __atomic_load_n(sq_head_, __ATOMIC_ACQUIRE);
  }
  uint32_t kernel_cq_tail() const noexcept {
    return cq_tail_ == nullptr ? 0 : __atomic_load_n(cq_tail_, __ATOMIC_ACQUIRE);
  }

  // The next free SQE, zeroed, or null when the submission ring is full (submitted or
  // not). It is published to the kernel by the next submit_and_wait().
  linux_abi::IoUringSqe* get_sqe() noexcept;
  // SQEs handed out by get_sqe() and not yet consumed by the kernel.
  unsigned pending() const noexcept;

  // One io_uring_enter: submits what get_sqe() handed out (note g), then waits until `wait_nr`
  // completions are in the ring, or `timeout` (relative, null = no limit) has passed
  // (note e). `wait_nr` 0 does not wait, whatever the timeout. Returns the number of
  // SQEs the kernel consumed; ETIME when the timeout expired first and nothing was
  // submitted; EOPNOTSUPP for a timeout without kIoringFeatExtArg.
  Result<int> submit_and_wait(unsigned wait_nr, const linux_abi::KernelTimespec* timeout) noexcept;

  // The oldest unread completion, or null. It stays valid until advance() passes it.
  const linux_abi::IoUringCqe* peek() const noexcept;
  // Completions ready to read.
  unsigned ready() const noexcept;
  // Hands `count` read completions back to the kernel.
  void advance(unsigned count) noexcept;

  // Whether the kernel knows `opcode`, from IORING_REGISTER_PROBE (Linux >= 5.6; EINVAL
  // before).
  Result<bool> supports(uint8_t opcode) noexcept;

 private:
  int fd_ = -1;
  uint32_t features_ = 0;
  unsigned sq_entries_ = 0;
  unsigned cq_entries_ = 0;

  // The mappings (note c): cq_ring_ equals sq_ring_ when they are one.
  void* sq_ring_ = nullptr;
  unsigned long sq_ring_size_ = 0;
  void* cq_ring_ = nullptr;
  unsigned long cq_ring_size_ = 0;
  linux_abi::IoUringSqe* sqes_ = nullptr;
  unsigned long sqes_size_ = 0;

  // Pointers into the rings (note a).
  uint32_t* sq_head_ = nullptr;   // kernel-written
  uint32_t* sq_tail_ = nullptr;   // process-written
  uint32_t* sq_flags_ = nullptr;  // kernel-written
  uint32_t sq_mask_ = 0;
  uint32_t* cq_head_ = nullptr;  // process-written
  uint32_t* cq_tail_ = nullptr;  // kernel-written
  uint32_t cq_mask_ = 0;
  linux_abi::IoUringCqe* cqes_ = nullptr;

  // The submission tail as get_sqe() advanced it, and as last published to the kernel.
  uint32_t sqe_tail_ = 0;
  uint32_t sq_tail_published_ = 0;
};

}  // namespace evflow::detail

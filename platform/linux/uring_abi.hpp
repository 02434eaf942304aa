// evflow — the io_uring kernel ABI evflow uses (include/uapi/linux/io_uring.h), declared
// here rather than taken from the system's headers, as sys.hpp does for epoll.
//
// Only what evflow needs is declared. Structures keep the kernel's layout exactly; where
// the kernel has a union, the field is named after the use evflow makes of it and the
// comment lists the other meanings. Values are the same on x86_64 and aarch64, both
// little-endian (the 32-bit poll mask of an SQE is word-swapped on big-endian machines).
#pragma once

#include <cstddef>
#include <cstdint>

namespace evflow::detail::linux_abi {

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "the SQE's poll mask layout assumes little-endian");

// Where the kernel wrote the fields of the submission ring, as byte offsets from the start
// of its mapping (struct io_sqring_offsets).
struct IoSqringOffsets {
  uint32_t head;          // next entry the kernel consumes; written by the kernel
  uint32_t tail;          // one past the last entry published; written by the process
  uint32_t ring_mask;     // entries - 1
  uint32_t ring_entries;  // number of entries (a power of two)
  uint32_t flags;         // kIoringSq* bits; written by the kernel
  uint32_t dropped;       // invalid entries the kernel skipped
  uint32_t array;         // uint32_t[entries]: indices into the SQE array
  uint32_t resv1;
  uint64_t user_addr;  // with IORING_SETUP_NO_MMAP only; reserved otherwise
};
static_assert(sizeof(IoSqringOffsets) == 40);
static_assert(offsetof(IoSqringOffsets, array) == 24);

// The same for the completion ring (struct io_cqring_offsets).
struct IoCqringOffsets {
  uint32_t head;          // next entry the process reads; written by the process
  uint32_t tail;          // one past the last entry posted; written by the kernel
  uint32_t ring_mask;     // entries - 1
  uint32_t ring_entries;  // number of entries (a power of two)
  uint32_t overflow;      // completions lost to a full ring (none with kIoringFeatNodrop)
  uint32_t cqes;          // IoUringCqe[entries]
  uint32_t flags;         // kIoringCqEventfdDisabled; written by the process
  uint32_t resv1;
  uint64_t user_addr;  // with IORING_SETUP_NO_MMAP only; reserved otherwise
};
static_assert(sizeof(IoCqringOffsets) == 40);
static_assert(offsetof(IoCqringOffsets, cqes) == 20);

// The argument of io_uring_setup(2), in and out (struct io_uring_params). The process
// sets flags (and cq_entries with kIoringSetupCqsize); the kernel fills in the rest.
struct IoUringParams {
  uint32_t sq_entries;
  uint32_t cq_entries;
  uint32_t flags;  // kIoringSetup* bits
  uint32_t sq_thread_cpu;
  uint32_t sq_thread_idle;
  uint32_t features;  // kIoringFeat* bits, written by the kernel
  uint32_t wq_fd;
  uint32_t resv[3];
  IoSqringOffsets sq_off;
  IoCqringOffsets cq_off;
};
static_assert(sizeof(IoUringParams) == 120);
static_assert(offsetof(IoUringParams, features) == 20);
static_assert(offsetof(IoUringParams, sq_off) == 40);
static_assert(offsetof(IoUringParams, cq_off) == 80);

// One submission (struct io_uring_sqe), 64 bytes.
struct IoUringSqe {
  uint8_t opcode;   // kIoringOp*
  uint8_t flags;    // kIosqe* bits
  uint16_t ioprio;  // also the send/recv/accept/poll flags (IORING_RECVSEND_*, ...)
  int32_t fd;
  uint64_t off;   // file offset; also addr2 (CONNECT's address length, TIMEOUT's count)
  uint64_t addr;  // buffer, sockaddr, timespec or target user_data
  uint32_t len;   // buffer size; TIMEOUT: 1 (one timespec)
  // The operation's own flags: rw_flags, poll32_events, msg_flags, timeout_flags,
  // accept_flags, cancel_flags, ... (one union in the kernel).
  uint32_t op_flags;
  uint64_t user_data;  // handed back unchanged in the completion
  uint16_t buf_index;  // registered buffer index, or buffer group
  uint16_t personality;
  int32_t file_index;  // also splice_fd_in, or addr_len and padding
  uint64_t addr3;
  uint64_t pad2;
};
static_assert(sizeof(IoUringSqe) == 64);
static_assert(offsetof(IoUringSqe, fd) == 4);
static_assert(offsetof(IoUringSqe, off) == 8);
static_assert(offsetof(IoUringSqe, addr) == 16);
static_assert(offsetof(IoUringSqe, len) == 24);
static_assert(offsetof(IoUringSqe, op_flags) == 28);
static_assert(offsetof(IoUringSqe, user_data) == 32);
static_assert(offsetof(IoUringSqe, buf_index) == 40);
static_assert(offsetof(IoUringSqe, file_index) == 44);
static_assert(offsetof(IoUringSqe, addr3) == 48);

// One completion (struct io_uring_cqe), 16 bytes (32 with IORING_SETUP_CQE32, unused).
struct IoUringCqe {
  uint64_t user_data;
  int32_t res;     // the operation's result, or -errno
  uint32_t flags;  // kIoringCqeF* bits
};
static_assert(sizeof(IoUringCqe) == 16);
static_assert(offsetof(IoUringCqe, res) == 8);
static_assert(offsetof(IoUringCqe, flags) == 12);

// The extended argument of io_uring_enter(2) with kIoringEnterExtArg
// (struct io_uring_getevents_arg, Linux >= 5.11).
struct IoUringGeteventsArg {
  uint64_t sigmask;  // pointer to a kernel sigset, or 0
  uint32_t sigmask_sz;
  uint32_t pad;
  uint64_t ts;  // pointer to a KernelTimespec (relative), or 0
};
static_assert(sizeof(IoUringGeteventsArg) == 24);
static_assert(offsetof(IoUringGeteventsArg, ts) == 16);

// IORING_REGISTER_PROBE's result (struct io_uring_probe and io_uring_probe_op).
struct IoUringProbeOp {
  uint8_t op;
  uint8_t resv;
  uint16_t flags;  // kIoUringOpSupported
  uint32_t resv2;
};
static_assert(sizeof(IoUringProbeOp) == 8);
struct IoUringProbeHeader {
  uint8_t last_op;  // highest opcode the kernel knows
  uint8_t ops_len;  // entries of ops[] the kernel filled in
  uint16_t resv;
  uint32_t resv2[3];
  // IoUringProbeOp ops[] follows.
};
static_assert(sizeof(IoUringProbeHeader) == 16);
inline constexpr uint16_t kIoUringOpSupported = 1u << 0;

// Opcodes (enum io_uring_op; the kernel version that added each).
inline constexpr uint8_t kIoringOpNop = 0;             // 5.1
inline constexpr uint8_t kIoringOpReadv = 1;           // 5.1
inline constexpr uint8_t kIoringOpWritev = 2;          // 5.1
inline constexpr uint8_t kIoringOpPollAdd = 6;         // 5.1; multishot 5.13
inline constexpr uint8_t kIoringOpPollRemove = 7;      // 5.1; update 5.13
inline constexpr uint8_t kIoringOpSendmsg = 9;         // 5.3
inline constexpr uint8_t kIoringOpRecvmsg = 10;        // 5.3
inline constexpr uint8_t kIoringOpTimeout = 11;        // 5.4
inline constexpr uint8_t kIoringOpTimeoutRemove = 12;  // 5.5
inline constexpr uint8_t kIoringOpAccept = 13;         // 5.5
inline constexpr uint8_t kIoringOpAsyncCancel = 14;    // 5.5
inline constexpr uint8_t kIoringOpLinkTimeout = 15;    // 5.5
inline constexpr uint8_t kIoringOpConnect = 16;        // 5.5
inline constexpr uint8_t kIoringOpClose = 19;          // 5.6
inline constexpr uint8_t kIoringOpRead = 22;           // 5.6
inline constexpr uint8_t kIoringOpWrite = 23;          // 5.6
inline constexpr uint8_t kIoringOpSend = 26;           // 5.6
inline constexpr uint8_t kIoringOpRecv = 27;           // 5.6
inline constexpr uint8_t kIoringOpShutdown = 34;       // 5.11

// Submission flags (IOSQE_*).
inline constexpr uint8_t kIosqeIoLink = 1u << 2;
inline constexpr uint8_t kIosqeAsync = 1u << 4;
inline constexpr uint8_t kIosqeCqeSkipSuccess = 1u << 6;  // 5.17

// io_uring_setup(2) flags (IORING_SETUP_*).
inline constexpr uint32_t kIoringSetupCqsize = 1u << 3;         // 5.5
inline constexpr uint32_t kIoringSetupClamp = 1u << 4;          // 5.6
inline constexpr uint32_t kIoringSetupSubmitAll = 1u << 7;      // 5.18
inline constexpr uint32_t kIoringSetupCoopTaskrun = 1u << 8;    // 5.19
inline constexpr uint32_t kIoringSetupSingleIssuer = 1u << 12;  // 6.0

// Features the kernel reports in IoUringParams::features (IORING_FEAT_*).
inline constexpr uint32_t kIoringFeatSingleMmap = 1u << 0;     // 5.4: one mapping for both rings
inline constexpr uint32_t kIoringFeatNodrop = 1u << 1;         // 5.5: completions are never lost
inline constexpr uint32_t kIoringFeatSubmitStable = 1u << 2;   // 5.5
inline constexpr uint32_t kIoringFeatFastPoll = 1u << 5;       // 5.7
inline constexpr uint32_t kIoringFeatPoll32Bits = 1u << 6;     // 5.9
inline constexpr uint32_t kIoringFeatExtArg = 1u << 8;         // 5.11: IoUringGeteventsArg
inline constexpr uint32_t kIoringFeatNativeWorkers = 1u << 9;  // 5.12
inline constexpr uint32_t kIoringFeatRsrcTags = 1u << 10;      // 5.13, with multishot polls
inline constexpr uint32_t kIoringFeatCqeSkip = 1u << 11;       // 5.17

// io_uring_enter(2) flags (IORING_ENTER_*).
inline constexpr uint32_t kIoringEnterGetevents = 1u << 0;
inline constexpr uint32_t kIoringEnterExtArg = 1u << 3;  // 5.11

// Bits of the submission ring's flags word (IORING_SQ_*).
inline constexpr uint32_t kIoringSqNeedWakeup = 1u << 0;
inline constexpr uint32_t kIoringSqCqOverflow = 1u << 1;  // completions wait in the overflow list
inline constexpr uint32_t kIoringSqTaskrun = 1u << 2;

// Bits of the completion ring's flags word (IORING_CQ_*).
inline constexpr uint32_t kIoringCqEventfdDisabled = 1u << 0;

// mmap(2) offsets that select what a mapping of the ring descriptor shows
// (IORING_OFF_*).
inline constexpr uint64_t kIoringOffSqRing = 0;
inline constexpr uint64_t kIoringOffCqRing = 0x8000000;
inline constexpr uint64_t kIoringOffSqes = 0x10000000;

// TIMEOUT's op_flags (IORING_TIMEOUT_*).
inline constexpr uint32_t kIoringTimeoutAbs = 1u << 0;
inline constexpr uint32_t kIoringTimeoutUpdate = 1u << 1;

// POLL_ADD's and POLL_REMOVE's flags, carried in the SQE's len field (IORING_POLL_*).
inline constexpr uint32_t kIoringPollAddMulti = 1u << 0;        // 5.13
inline constexpr uint32_t kIoringPollUpdateEvents = 1u << 1;    // 5.13
inline constexpr uint32_t kIoringPollUpdateUserData = 1u << 2;  // 5.13

// ASYNC_CANCEL's op_flags (IORING_ASYNC_CANCEL_*, 5.19).
inline constexpr uint32_t kIoringAsyncCancelAll = 1u << 0;
inline constexpr uint32_t kIoringAsyncCancelFd = 1u << 1;
inline constexpr uint32_t kIoringAsyncCancelAny = 1u << 2;  // 5.19

// Completion flags (IORING_CQE_F_*).
inline constexpr uint32_t kIoringCqeFBuffer = 1u << 0;
inline constexpr uint32_t kIoringCqeFMore = 1u << 1;  // the request stays armed
inline constexpr uint32_t kIoringCqeFSockNonempty = 1u << 2;

// io_uring_register(2) opcodes (IORING_REGISTER_*).
inline constexpr unsigned kIoringRegisterProbe = 8;     // 5.6
inline constexpr unsigned kIoringRegisterRingFds = 20;  // 5.18

}  // namespace evflow::detail::linux_abi

// Reactor I/O fuzzer: Io watchers on socketpairs and pipes whose descriptors are written,
// read, shut down, duplicated, closed and reused, checked against a model of every end.
//
// The input drives up to 8 Io watchers over up to 12 socketpairs and pipes (plus duplicates):
// start/stop/set_interest/forget/destroy watchers, write/read/shutdown/close/dup/dup3
// descriptors (a closed number is soon reused by the next socketpair or dup), rebuild the
// kernel set, and run the loop one non-blocking iteration at a time. Callbacks do the same
// to other watchers, to themselves, and to descriptors.
//
// Checked at every callback: the watcher is active (no callback after stop()); the events
// are a non-empty subset of its interest; Readable is reported only when its socket has
// data or an end-of-file, or was read during this iteration (spurious readiness the header
// allows). Checked after every iteration: every watcher that was active with data (or EOF)
// waiting, or with Writable interest, and was not touched during the iteration, got its
// callback (level-triggered: nothing lost). Reads return exactly what the model says.
//
// Misuse is fuzzed too: closing (or dup3-ing over) a descriptor under an active watcher.
// The header's documented outcome is weaker (the watcher may get one Invalid callback
// later, and its number may stay deaf until its watchers are all stopped), so watchers on
// such a number are exempt from the nothing-lost check until the loop has applied a state
// with no watcher on it; memory safety is still checked by the sanitizers.
//
// On io_uring (EVFLOW_BACKEND=io_uring) a poll holds a reference to its file: an end whose
// last descriptor is closed while a watcher of it is active, or stopped in this iteration
// (its removal not yet submitted), stays open until the loop has removed every poll of it
// (README, "io_uring"), and a poll left on a number closed under its watcher is armed again
// on whatever file takes the number next. Until then the model lets the peer of such an
// end see it open or closed.
#include "reactor/io.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <map>
#include <optional>
#include <set>
#include <vector>

#include "fuzz/fuzz_input.hpp"
#include "reactor/loop.hpp"

namespace {

using evflow::Events;
using evflow::Io;
using evflow::Loop;
using evflow::Readable;
using evflow::RunMode;
using evflow::Writable;
using evflow::fuzz::FuzzInput;

constexpr int kWatchers = 8;
constexpr int kMaxChannels = 12;
constexpr int kMaxDescriptors = 36;
constexpr int kMaxUnread = 1024;  // per direction: keeps every socket writable

// One end of a socketpair, as the model sees it.
struct End {
  int unread = 0;            // bytes the peer wrote that this end has not read
  bool peer_shut = false;    // the peer shut down writing: end-of-file after the data
  bool peer_closed = false;  // every descriptor of the peer is closed
  bool shut = false;         // this end shut down writing
  bool read_this_iteration = false;
  int descriptors = 0;  // open descriptors referring to this end
  bool held = false;    // no descriptor left, but the loop's ring may still hold it open
  // A pipe's ends go one way: the read end is never writable, the write end never
  // readable (each reports the other's closing as a hang-up or an error).
  bool pipe_read = false, pipe_write = false;
  bool can_read() const { return !pipe_write; }
  bool can_write() const { return !pipe_read; }
};

struct Watcher {
  std::optional<Io> io;
  bool active = false;
  int fd = -1;
  Events interest;
  bool lenient = false;    // started on a number closed under an active watcher
  bool touched = false;    // started, stopped or re-aimed during the current iteration
  bool restarted = false;  // started during the current iteration
  uint64_t start_seq = 0;  // watchers of one descriptor are served in this order
  bool called = false;     // called during the current iteration
  Events called_with;
  // The same watcher restarted on a reused number before the loop ran needs forget()
  // (io.hpp): the number it stopped on, and whether that number was closed since.
  int stopped_fd = -1;
  bool stopped_fd_closed = false;
  int end = -1;  // the end it was started on (io_uring's polls hold its file)
};

struct Harness {
  FuzzInput& in;
  Loop loop;
  End ends[2 * kMaxChannels];
  int channels = 0;
  std::map<int, int> fds;                      // open descriptor -> index of its end in ends[]
  std::set<int> poisoned;                      // numbers closed under an active watcher
  std::map<int, std::set<int>> poisoned_ends;  // the ends each such number was closed on
  std::set<int> poisoned_during_run;
  Watcher watchers[kWatchers];
  bool running = false;
  uint64_t next_start_seq = 1;
  int last_fd = -1;  // descriptor of the previous callback in this iteration
  uint64_t last_seq = 0;
  int depth = 0;  // nested operations from callbacks

  explicit Harness(FuzzInput& input) : in(input) {}

  bool uring = false;                             // the loop runs on io_uring
  int64_t runs_begun = 0;                         // a removal queued before run k begins is submitted by run k
  std::vector<std::pair<int, int64_t>> removals;  // (end, runs_begun) of each queued removal

  void queue_removal(const Watcher& w) {
    if (w.active && w.end >= 0) removals.emplace_back(w.end, runs_begun);
  }

  // Whether the end's file may still be open though its last descriptor is closed.
  bool may_hold(int end) const {
    if (!uring) return false;
    for (const Watcher& w : watchers)
      if (w.active && w.end == end) return true;
    for (const auto& [e, run] : removals)
      if (e == end && run == runs_begun) return true;  // not yet submitted
    for (const auto& [number, held_ends] : poisoned_ends)
      if (held_ends.count(end) != 0) return true;  // a poll the loop no longer knows of
    return false;
  }
  // A number in use again. On io_uring a poll the loop still has on it (a watcher's, from
  // before the number was closed under it) is armed again by number, and so may come to
  // hold the file the number now refers to.
  void reuse_number(int fd) {
    if (auto it = poisoned_ends.find(fd); it != poisoned_ends.end()) it->second.insert(fds.at(fd));
  }
  // The peer of `end` is closed for sure (not merely out of descriptors).
  bool peer_gone(int end) const { return ends[end].peer_closed && !ends[peer_of(end)].held; }

  ~Harness() {
    for (Watcher& w : watchers)
      w.io.reset();
    for (auto& [fd, end] : fds)
      ::close(fd);
  }

  static int peer_of(int end) { return end ^ 1; }

  End* end_of(int fd) {
    auto it = fds.find(fd);
    return it == fds.end() ? nullptr : &ends[it->second];
  }

  int pick_fd() {
    if (fds.empty()) return -1;
    auto it = fds.begin();
    std::advance(it, in.below(static_cast<uint32_t>(fds.size())));
    return it->first;
  }

  Events pick_interest() {
    switch (in.below(3)) {
      case 0:
        return Readable;
      case 1:
        return Writable;
      default:
        return Readable | Writable;
    }
  }

  // --- descriptors ------------------------------------------------------------------

  // A socketpair, or a pipe (end 0 reads, end 1 writes).
  void open_channel(bool pipe) {
    if (channels == kMaxChannels || fds.size() + 2 > kMaxDescriptors) return;
    int pair[2];
    if (pipe) {
      FUZZ_CHECK(::pipe2(pair, O_NONBLOCK | O_CLOEXEC) == 0, "pipe2");
    } else {
      FUZZ_CHECK(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, pair) == 0, "socketpair");
    }
    const int end = 2 * channels++;
    for (int i = 0; i < 2; ++i) {
      fds[pair[i]] = end + i;
      reuse_number(pair[i]);
      ends[end + i].descriptors = 1;
    }
    ends[end].pipe_read = ends[end + 1].pipe_write = pipe;
    FUZZ_TRACE("%s %d %d (ends %d %d)\n", pipe ? "pipe" : "socketpair", pair[0], pair[1], end, end + 1);
  }

  // The model's side of closing `fd` (by close or by dup3 over it).
  void forget_descriptor(int fd) {
    const int end = fds.at(fd);
    fds.erase(fd);
    if (--ends[end].descriptors == 0) {
      ends[peer_of(end)].peer_closed = true;
      ends[end].held = may_hold(end);
      FUZZ_TRACE("end %d has no descriptor left%s\n", end, ends[end].held ? "; the loop may still hold it" : "");
    }
    for (Watcher& w : watchers) {
      if (w.active && w.fd == fd) {
        poisoned.insert(fd);
        poisoned_ends[fd].insert(end);
        if (running) poisoned_during_run.insert(fd);
        w.lenient = true;
      }
      if (!w.active && w.stopped_fd == fd) w.stopped_fd_closed = true;
    }
  }

  void close_fd(int fd, bool stop_watchers_first) {
    if (stop_watchers_first) {
      for (int i = 0; i < kWatchers; ++i)
        if (watchers[i].active && watchers[i].fd == fd) stop(i);
    }
    FUZZ_TRACE("close %d%s\n", fd, stop_watchers_first ? "" : " under active watchers");
    forget_descriptor(fd);
    FUZZ_CHECK(::close(fd) == 0, "close");
  }

  void dup_fd(int fd) {
    if (fds.size() >= kMaxDescriptors) return;
    const int copy = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
    FUZZ_CHECK(copy >= 0, "dup");
    fds[copy] = fds.at(fd);
    reuse_number(copy);
    ++ends[fds.at(fd)].descriptors;
    FUZZ_TRACE("dup %d -> %d\n", fd, copy);
  }

  // dup3 over an open number: the old file is closed without a close() the loop can see.
  void dup_over(int fd, int target, bool stop_watchers_first) {
    if (fd == target) return;
    if (stop_watchers_first) {
      for (int i = 0; i < kWatchers; ++i)
        if (watchers[i].active && watchers[i].fd == target) stop(i);
    }
    FUZZ_TRACE("dup3 %d over %d\n", fd, target);
    forget_descriptor(target);
    FUZZ_CHECK(::dup3(fd, target, O_CLOEXEC) == target, "dup3");
    fds[target] = fds.at(fd);
    reuse_number(target);
    ++ends[fds.at(fd)].descriptors;
  }

  void write_fd(int fd) {
    const int end = fds.at(fd);
    End& peer = ends[peer_of(end)];
    const int size = 64 + static_cast<int>(in.below(192));
    char buffer[256] = {};
    // Sockets: send() without SIGPIPE. Pipes: write(), SIGPIPE is ignored (LLVMFuzzerInitialize).
    const ssize_t n = ends[end].pipe_read || ends[end].pipe_write
                          ? ::write(fd, buffer, static_cast<size_t>(size))
                          : ::send(fd, buffer, static_cast<size_t>(size), MSG_NOSIGNAL | MSG_DONTWAIT);
    FUZZ_TRACE("write %d bytes to %d: %zd\n", size, fd, n);
    if (!ends[end].can_write()) {
      FUZZ_CHECK(n < 0 && errno == EBADF, "writing to a pipe's read end is EBADF");
      return;
    }
    if (!ends[end].shut && peer.descriptors == 0 && peer.held) return;  // open or closed: either
    if (ends[end].shut || peer.descriptors == 0) {
      FUZZ_CHECK(n < 0 && errno == EPIPE, "writing to a shut or closed socket fails with EPIPE");
      return;
    }
    if (peer.unread + size > kMaxUnread) {
      // Beyond the model's budget: take it back out so sockets stay writable.
      FUZZ_CHECK(n == size, "a small write to a socket with room is complete");
      peer.unread += size;
      drain(peer_of(end), size);
      return;
    }
    FUZZ_CHECK(n == size, "a small write to a socket with room is complete");
    peer.unread += size;
  }

  // Reads `count` bytes from the end's first descriptor (a helper for the budget).
  void drain(int end, int count) {
    for (auto& [fd, e] : fds) {
      if (e != end) continue;
      char buffer[kMaxUnread + 256];
      const ssize_t n = ::read(fd, buffer, static_cast<size_t>(count));
      FUZZ_CHECK(n == count, "draining returns the bytes written");
      ends[end].unread -= count;
      return;
    }
  }

  void read_fd(int fd) {
    End& end = *end_of(fd);
    const int want = 1 + static_cast<int>(in.below(kMaxUnread));
    char buffer[kMaxUnread];
    const ssize_t n = ::read(fd, buffer, static_cast<size_t>(want));
    FUZZ_TRACE("read %d from %d: %zd (model %d)\n", want, fd, n, end.unread);
    if (!end.can_read()) {
      FUZZ_CHECK(n < 0 && errno == EBADF, "reading a pipe's write end is EBADF");
      return;
    }
    if (running) end.read_this_iteration = true;
    if (end.peer_closed && ends[peer_of(fds.at(fd))].held) {  // the peer may still be open
      FUZZ_CHECK(n <= end.unread && (n >= 0 || errno == EAGAIN || errno == ECONNRESET),
                 "a read of a held peer returns what the model holds, EAGAIN, or the end");
      if (n > 0) end.unread -= static_cast<int>(n);
      if (n < 0 && errno == ECONNRESET) end.unread = 0;
      return;
    }
    if (end.unread > 0) {
      FUZZ_CHECK(n == std::min(want, end.unread) || (n < 0 && errno == ECONNRESET && end.peer_closed),
                 "a read returns the bytes the model holds");
      if (n < 0) {
        end.unread = 0;  // AF_UNIX drops the data of a reset connection
        return;
      }
      end.unread -= static_cast<int>(n);
    } else if (end.peer_shut || end.peer_closed) {
      FUZZ_CHECK(n == 0 || (n < 0 && errno == ECONNRESET), "end-of-file after the peer shut down");
    } else {
      FUZZ_CHECK(n < 0 && errno == EAGAIN, "nothing to read is EAGAIN");
    }
  }

  void shutdown_fd(int fd) {
    const int end = fds.at(fd);
    if (ends[end].pipe_read || ends[end].pipe_write) return;  // sockets only
    FUZZ_TRACE("shutdown %d\n", fd);
    FUZZ_CHECK(::shutdown(fd, SHUT_WR) == 0, "shutdown");
    ends[end].shut = true;
    ends[peer_of(end)].peer_shut = true;
  }

  // --- watchers ---------------------------------------------------------------------

  void ensure_watcher(int i) {
    if (watchers[i].io) return;
    watchers[i].io.emplace(loop);
    // Sets the callback; descriptor -1 is refused (EBADF), leaving the watcher stopped.
    const evflow::Error err = watchers[i].io->start(-1, Readable, [this, i](Io&, Events ready) { on_io(i, ready); });
    FUZZ_CHECK(err.code() == EBADF && !watchers[i].io->active(), "a negative descriptor is EBADF");
  }

  void start(int i, int fd) {
    ensure_watcher(i);
    Watcher& w = watchers[i];
    if (fd < 0) return;
    if (w.stopped_fd == fd && w.stopped_fd_closed) {
      FUZZ_TRACE("forget %d before restarting on a reused %d\n", i, fd);
      w.io->forget();  // required by io.hpp for exactly this sequence
    }
    const Events interest = pick_interest();
    const evflow::Error err = w.io->start(fd, interest);
    FUZZ_TRACE("start %d on %d interest %d: %d\n", i, fd, interest.bits(), err.code());
    FUZZ_CHECK(!err, "starting a watcher on an open socket succeeds");
    FUZZ_CHECK(w.io->active(), "a started watcher is active");
    if (w.end != fds.at(fd)) queue_removal(w);  // restarted elsewhere: the old poll goes
    w.active = true;
    w.fd = fd;
    w.interest = interest;
    w.end = fds.at(fd);
    w.lenient = poisoned.count(fd) != 0;
    if (w.lenient && running) poisoned_during_run.insert(fd);
    w.touched = w.restarted = true;
    w.start_seq = next_start_seq++;
    w.stopped_fd = -1;
  }

  // A descriptor number nobody has open: EBADF, and the watcher ends up stopped.
  void start_on_closed(int i) {
    ensure_watcher(i);
    stop(i);
    const int fd = 1000 + in.byte();
    const evflow::Error err = watchers[i].io->start(fd, Readable);
    FUZZ_TRACE("start %d on closed %d: %d\n", i, fd, err.code());
    FUZZ_CHECK(err.code() == EBADF && !watchers[i].io->active(), "a closed descriptor is EBADF");
  }

  void stop(int i) {
    Watcher& w = watchers[i];
    if (!w.io) return;
    FUZZ_TRACE("stop %d\n", i);
    const bool was_active = w.active;
    queue_removal(w);
    w.io->stop();
    FUZZ_CHECK(!w.io->active(), "stop() deactivates");
    if (was_active) {
      w.stopped_fd = w.fd;
      w.stopped_fd_closed = false;
    }
    w.active = false;
    w.touched = true;
  }

  void destroy(int i) {
    Watcher& w = watchers[i];
    FUZZ_TRACE("destroy %d\n", i);
    queue_removal(w);
    w.io.reset();  // destroying an active watcher stops it
    w.active = false;
    w.touched = true;
    w.stopped_fd = -1;
  }

  void set_interest(int i) {
    Watcher& w = watchers[i];
    if (!w.io) return;
    const Events interest = pick_interest();
    FUZZ_TRACE("set_interest %d %d\n", i, interest.bits());
    FUZZ_CHECK(!w.io->set_interest(interest), "set_interest with a valid mask succeeds");
    w.interest = interest;
    w.touched = true;
    const Events refused[] = {Events(), evflow::Invalid, Events(8), Readable | evflow::Invalid};
    FUZZ_CHECK(w.io->set_interest(refused[in.below(4)]).code() == EINVAL && w.io->interest() == interest,
               "an empty or unknown interest is EINVAL and changes nothing");
  }

  void on_io(int i, Events ready) {
    Watcher& w = watchers[i];
    FUZZ_TRACE("  callback %d fd %d events %d\n", i, w.fd, ready.bits());
    FUZZ_CHECK(running, "callbacks run only inside run()");
    FUZZ_CHECK(w.active, "no callback for a stopped watcher");
    // Once per iteration, unless restarted meanwhile (io.hpp: a watcher started during the
    // iteration may be called in it).
    FUZZ_CHECK(!w.called || w.restarted, "one callback per watcher per iteration");
    if (!ready.invalid()) {
      // Watchers of one descriptor are served in start order (io.hpp): consecutive
      // callbacks for one number come from one dispatch of its watcher chain.
      if (w.fd == last_fd) FUZZ_CHECK(w.start_seq > last_seq, "watchers of one descriptor run in start order");
      last_fd = w.fd;
      last_seq = w.start_seq;
    }
    w.called = true;
    w.called_with |= ready;
    if (ready.invalid()) {
      FUZZ_CHECK(w.lenient, "Invalid only for a watcher whose descriptor was closed under it");
      FUZZ_CHECK(ready == evflow::Invalid, "Invalid comes alone");
      FUZZ_CHECK(!w.io->active(), "a watcher is stopped before its Invalid callback");
      w.active = false;
      w.stopped_fd = -1;
    } else {
      FUZZ_CHECK(!ready.empty() && w.interest.contains(ready), "events are a subset of the interest");
      if (ready.readable() && !w.lenient) {
        const End* end = end_of(w.fd);
        FUZZ_CHECK(end != nullptr, "a watcher on an open descriptor");
        FUZZ_CHECK(end->unread > 0 || end->peer_shut || end->peer_closed || end->read_this_iteration,
                   "Readable only with data, an end-of-file, or a read in this iteration");
      }
    }
    if (depth < 2) {
      ++depth;
      step(true, i);
      --depth;
    }
  }

  // --- the iteration ----------------------------------------------------------------

  void run_once() {
    bool expect_read[kWatchers] = {}, expect_write[kWatchers] = {};
    for (int i = 0; i < kWatchers; ++i) {
      Watcher& w = watchers[i];
      w.touched = w.restarted = w.called = false;
      w.called_with = Events();
      if (!w.active || w.lenient) continue;
      const End* end = end_of(w.fd);
      FUZZ_CHECK(end != nullptr, "a watcher that is not lenient has an open descriptor");
      expect_read[i] = w.interest.readable() && (end->unread > 0 || end->peer_shut || peer_gone(w.end));
      // Writable, or a hang-up on a pipe's read end, reported as what the watcher asked for.
      expect_write[i] = w.interest.writable() && (end->can_write() || peer_gone(w.end));
    }
    std::set<int> watched;
    for (const Watcher& w : watchers)
      if (w.active) watched.insert(w.fd);
    for (End& end : ends)
      end.read_this_iteration = false;
    // This iteration applies the stops made so far: forget() is no longer needed after
    // them (stops made by its callbacks are applied by the next one).
    for (Watcher& w : watchers)
      w.stopped_fd = -1;
    FUZZ_TRACE("run\n");
    ++runs_begun;
    last_fd = -1;
    running = true;
    const evflow::Error err = loop.run(RunMode::NoWait);
    running = false;
    FUZZ_CHECK(!err, "run succeeds");
    for (int i = 0; i < kWatchers; ++i) {
      const Watcher& w = watchers[i];
      if (w.touched || w.lenient) continue;
      if (w.io) FUZZ_CHECK(w.io->active() == w.active, "active() agrees with the model");
      const End* end = end_of(w.fd);
      if (end != nullptr && end->read_this_iteration) expect_read[i] = false;  // drained: spurious allowed
      if (expect_read[i] || expect_write[i])
        FUZZ_TRACE("  expected %d: read %d write %d, called %d with %d\n", i, expect_read[i], expect_write[i], w.called,
                   w.called_with.bits());
      if (expect_read[i])
        FUZZ_CHECK(w.called && w.called_with.readable(), "a watcher with data waiting is called (nothing lost)");
      if (expect_write[i]) FUZZ_CHECK(w.called && w.called_with.writable(), "a writable socket is reported");
    }
    // A number is healed once an iteration applied a state with no watcher on it, and
    // none was started on it or closed under one meanwhile.
    for (const Watcher& w : watchers)
      if (w.active) watched.insert(w.fd);
    for (auto it = poisoned.begin(); it != poisoned.end();) {
      if (watched.count(*it) == 0 && poisoned_during_run.count(*it) == 0) {
        poisoned_ends.erase(*it);
        it = poisoned.erase(it);
      } else {
        ++it;
      }
    }
    poisoned_during_run.clear();
    // The iteration submitted every removal queued before it: what no watcher holds any
    // more is closed now.
    std::erase_if(removals, [&](const auto& removal) { return removal.second < runs_begun; });
    for (int e = 0; e < 2 * channels; ++e)
      if (ends[e].held && !(ends[e].held = may_hold(e))) FUZZ_TRACE("end %d let go\n", e);
  }

  // One operation; from a callback (`inside`), the operations that callbacks perform.
  void step(bool inside, int self) {
    const int op = static_cast<int>(in.below(inside ? 16 : 18));
    const int i = static_cast<int>(in.below(kWatchers));
    switch (op) {
      case 0:
      case 1:
        start(i, pick_fd());
        break;
      case 2:
        stop(i);
        break;
      case 3:
        set_interest(i);
        break;
      case 4:
        if (in.below(4) == 0) {
          start_on_closed(i);
        } else if (watchers[i].io && !watchers[i].active) {
          watchers[i].io->forget();
        }
        break;
      case 5:
        destroy(i);
        break;
      case 6:
      case 7:
        if (int fd = pick_fd(); fd >= 0) write_fd(fd);
        break;
      case 8:
        if (int fd = inside && self >= 0 && watchers[self].active && end_of(watchers[self].fd) ? watchers[self].fd
                                                                                               : pick_fd();
            fd >= 0)
          read_fd(fd);
        break;
      case 9:
        if (int fd = pick_fd(); fd >= 0) shutdown_fd(fd);
        break;
      case 10:
        if (int fd = pick_fd(); fd >= 0) close_fd(fd, in.below(4) != 0);
        break;
      case 11:
        open_channel(in.below(3) == 0);
        break;
      case 12:
        if (int fd = pick_fd(); fd >= 0) dup_fd(fd);
        break;
      case 13:
        if (int fd = pick_fd(), target = pick_fd(); fd >= 0) dup_over(fd, target, in.below(4) != 0);
        break;
      case 14:
        FUZZ_CHECK(!loop.rebuild(), "rebuild succeeds");
        break;
      case 15:
        break;  // callbacks mostly do nothing
      default:
        run_once();
        break;
    }
  }

  void run() {
    FUZZ_CHECK(!loop.open(), "the loop opens");
    uring = loop.backend_kind() == evflow::BackendKind::IoUring;
    for (int i = 0; i < 3; ++i)
      open_channel(i == 2);
    while (!in.done())
      step(false, -1);
    // Settle: with no more input, a few iterations must still report every waiting byte.
    for (int i = 0; i < 3; ++i)
      run_once();
  }
};

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  std::signal(SIGPIPE, SIG_IGN);  // a write to a pipe whose reader is gone is EPIPE, not death
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzInput in(data, size);
  Harness harness(in);
  harness.run();
  return 0;
}

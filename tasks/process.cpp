#include "process.hpp"

#include <mutex>
#include <vector>

#include "../platform/descriptor.hpp"
#include "../platform/parent_death.hpp"
#include "../signals/signal_registry.hpp"

namespace evflow {

namespace detail {

namespace {

// The parent's ends of the channels to the workers of this process, which a worker forked
// later closes (process.hpp, "Descriptors"). The lock is held across fork(), so that the
// child's copy is consistent; the identity tells a descriptor that is still the channel
// from one that reused its number after the channel was closed.
struct ParentEnd {
  int pid;
  int fd;
  unsigned long long identity;
};

struct ParentEnds {
  std::mutex lock;
  std::vector<ParentEnd> ends;
};

ParentEnds& parent_ends() noexcept {
  static ParentEnds* registry = new ParentEnds();  // never destroyed: forks may outlive statics
  return *registry;
}

void forget_parent_end(int pid) noexcept {
  ParentEnds& registry = parent_ends();
  std::lock_guard<std::mutex> hold(registry.lock);
  for (std::size_t i = 0; i < registry.ends.size(); ++i) {
    if (registry.ends[i].pid != pid) continue;
    registry.ends[i] = registry.ends.back();
    registry.ends.pop_back();
    return;
  }
}

// In the child, before anything else: what fork_worker's header comment promises.
[[noreturn]] void run_child(int parent, int own_parent_end, UnixStream stream, const ProcessOptions& options,
                            WorkerEntry entry, void* fn) noexcept {
  for (const ParentEnd& end : parent_ends().ends) {
    if (ProcessFork::file_identity(end.fd) == end.identity) (void)close_descriptor(end.fd);
  }
  parent_ends().lock.unlock();  // locked by the thread that forked, which this one continues
  (void)close_descriptor(own_parent_end);
  signals::release_every_slot();  // the parent's handlers would swallow SIGTERM here
  ProcessFork::unblock_signals();
  if (options.parent_death_signal != 0 && ParentDeathSignal::kAvailable) {
    (void)ParentDeathSignal::arm(options.parent_death_signal);
  }
  if (ProcessFork::parent_id() != parent) ProcessFork::exit_now(WorkerProcess::kParentGoneExitCode);
  MessageChannel channel(std::move(stream));
  (void)channel.set_max_frame(options.max_frame);
  int code = WorkerProcess::kTaskFailedExitCode;
  {
    Loop loop;
    if (!loop.open()) code = entry(fn, loop, channel);
  }
  ProcessFork::exit_now(code);
}

}  // namespace

Result<WorkerProcess> fork_worker(Loop& loop, const ProcessOptions& options, WorkerEntry entry, void* fn) noexcept {
  if (!ProcessFork::kAvailable) return Error(ENOTSUP);
  if (!loop.is_open()) return Error(EINVAL);
  if (options.max_frame > MessageChannel::kFormatMaxFrame) return Error(EINVAL);
  Result<std::pair<UnixStream, UnixStream>> pair = UnixStream::pair();
  if (!pair) return pair.error();
  UnixStream parent_end = std::move(pair.value().first);
  UnixStream child_end = std::move(pair.value().second);
  const int parent = ProcessFork::self_id();
  ParentEnds& registry = parent_ends();
  registry.lock.lock();
  Result<int> forked = ProcessFork::fork();
  if (forked && forked.value() == 0) run_child(parent, parent_end.fd(), std::move(child_end), options, entry, fn);
  (void)child_end.close();  // before another fork can copy it
  if (!forked) {
    registry.lock.unlock();
    return forked.error();
  }
  const int pid = forked.value();
  registry.ends.push_back(ParentEnd{pid, parent_end.fd(), ProcessFork::file_identity(parent_end.fd())});
  registry.lock.unlock();
  MessageChannel channel(std::move(parent_end));
  (void)channel.set_max_frame(options.max_frame);
  return WorkerProcess(pid, std::move(channel));
}

}  // namespace detail

WorkerProcess& WorkerProcess::operator=(WorkerProcess&& other) noexcept {
  if (this != &other) {
    abandon();
    pid_ = std::exchange(other.pid_, 0);
    channel_ = std::move(other.channel_);
    status_ = std::exchange(other.status_, std::nullopt);
  }
  return *this;
}

void WorkerProcess::abandon() noexcept {
  if (pid_ <= 0) return;
  if (!status_) {
    (void)detail::ProcessFork::send_signal(pid_, detail::ProcessFork::kill_signal());
    (void)detail::ProcessFork::reap_blocking(pid_);
  }
  (void)channel_.close();
  detail::forget_parent_end(pid_);
  pid_ = 0;
}

Error WorkerProcess::send_signal(int signal) noexcept {
  if (pid_ <= 0) return Error(EINVAL);
  if (status_) return Error(ESRCH);
  return detail::ProcessFork::send_signal(pid_, signal);
}

}  // namespace evflow

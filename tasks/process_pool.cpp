#include "process_pool.hpp"

namespace evflow {

struct ProcessPool::Slot {
  enum class State : uint8_t {
    Empty,  // no worker (before start(), after close(), or a failed restart)
    Idle,
    Busy,   // holds a request
    Gone,   // exited while busy: the submit restarts it once it has seen the failure
    Dying,  // killed after a failure: the exit restarts it
  };
  Slot(Loop& loop, std::size_t slot_index) noexcept : watcher(loop), index(slot_index) {}
  WorkerProcess process;
  Child watcher;
  std::size_t index;
  State state = State::Empty;
};

ProcessPool::ProcessPool(Loop& loop, std::size_t workers, WorkerMain main, ProcessOptions options)
    : loop_(loop), main_(std::move(main)), options_(options) {
  slots_.reserve(workers);
  for (std::size_t i = 0; i < workers; ++i)
    slots_.push_back(std::make_unique<Slot>(loop, i));
}

ProcessPool::~ProcessPool() {
  closing_ = true;
  waiters_.release_all(Error(EPIPE));
  for (auto& slot : slots_) {
    slot->watcher.stop();
    slot->process.abandon();
  }
}

Error ProcessPool::start() noexcept {
  if (slots_.empty() || started_) return Error(EINVAL);
  started_ = true;
  for (auto& slot : slots_) {
    Result<WorkerProcess> spawned = spawn_process(loop_, main_, options_);
    Error error = spawned ? Error() : spawned.error();
    if (!error) {
      slot->process = std::move(spawned.value());
      Slot* self = slot.get();
      error = slot->watcher.start(slot->process.pid(),
                                  [this, self](Child&, ExitStatus status) { worker_exited(*self, status); });
    }
    if (error) {
      for (auto& started : slots_) {
        started->watcher.stop();
        started->process.abandon();
        started->state = Slot::State::Empty;
      }
      closing_ = true;
      return error;
    }
    slot->state = Slot::State::Idle;
  }
  return Error();
}

std::size_t ProcessPool::idle() const noexcept {
  std::size_t count = 0;
  for (const auto& slot : slots_)
    count += slot->state == Slot::State::Idle ? 1 : 0;
  return count;
}

int ProcessPool::pid(std::size_t slot) const noexcept {
  if (slot >= slots_.size() || slots_[slot]->state == Slot::State::Empty) return 0;
  return slots_[slot]->process.pid();
}

bool ProcessPool::any_usable() const noexcept {
  if (closing_ || !started_) return false;
  for (const auto& slot : slots_) {
    if (slot->state != Slot::State::Empty) return true;
  }
  return false;
}

bool ProcessPool::take_idle(std::size_t& slot) noexcept {
  for (std::size_t step = 0; step < slots_.size(); ++step) {
    const std::size_t candidate = (next_ + step) % slots_.size();
    if (slots_[candidate]->state != Slot::State::Idle) continue;
    slots_[candidate]->state = Slot::State::Busy;
    next_ = (candidate + 1) % slots_.size();
    slot = candidate;
    return true;
  }
  return false;
}

void ProcessPool::make_idle(Slot& slot) noexcept {
  if (auto* waiter = static_cast<Acquire*>(waiters_.front())) {
    slot.state = Slot::State::Busy;
    waiter->grant(slot.index);
    return;
  }
  slot.state = Slot::State::Idle;
}

void ProcessPool::respawn(Slot& slot) noexcept {
  slot.process = WorkerProcess();  // its exit was seen: closes the channel, reaps nothing
  slot.state = Slot::State::Empty;
  if (closing_) return;
  Result<WorkerProcess> spawned = spawn_process(loop_, main_, options_);
  Error error = spawned ? Error() : spawned.error();
  if (!error) {
    slot.process = std::move(spawned.value());
    error = slot.watcher.start(slot.process.pid());  // the callback set at start()
    if (error) slot.process.abandon();
  }
  if (error) {
    last_spawn_error_ = error;
    if (!any_usable()) waiters_.release_all(unusable_error());
    return;
  }
  ++restarts_;
  make_idle(slot);
}

void ProcessPool::worker_exited(Slot& slot, ExitStatus status) noexcept {
  const int pid = slot.process.pid();
  slot.process.exited(status);
  if (on_exit_) on_exit_(WorkerExit{slot.index, pid, status});
  if (slot.state == Slot::State::Busy) {
    slot.state = Slot::State::Gone;  // the submit in flight fails, then restarts the slot
    return;
  }
  respawn(slot);
}

void ProcessPool::lose(Slot& slot) noexcept {
  if (closing_) return;  // close() ends every worker
  if (slot.state == Slot::State::Gone) {
    respawn(slot);
    return;
  }
  slot.state = Slot::State::Dying;  // the exit restarts it
  (void)slot.process.send_signal(detail::ProcessFork::kill_signal());
}

Error ProcessPool::unusable_error() const noexcept {
  return last_spawn_error_ && !closing_ && started_ ? last_spawn_error_ : Error(EPIPE);
}

MessageChannel& ProcessPool::channel_of(std::size_t slot) noexcept { return slots_[slot]->process.channel(); }

Error ProcessPool::finish(std::size_t index, Error error) noexcept {
  Slot& slot = *slots_[index];
  if (!error || error == Error(EMSGSIZE)) {  // answered, or nothing went out: the worker is as it was
    if (slot.state == Slot::State::Busy) {
      make_idle(slot);
    } else if (slot.state == Slot::State::Gone) {  // it exited after answering
      respawn(slot);
    }
    return error;
  }
  lose(slot);
  return error == Error(ECANCELED) ? error : Error(ECONNRESET);
}

void ProcessPool::begin_close() noexcept {
  closing_ = true;
  waiters_.release_all(Error(EPIPE));
  for (auto& slot : slots_) {
    slot->watcher.stop();
    if (slot->process.pid() > 0) (void)slot->process.send_signal(detail::ProcessFork::terminate_signal());
  }
}

WorkerProcess* ProcessPool::live_worker(std::size_t slot) noexcept {
  WorkerProcess& worker = slots_[slot]->process;
  return worker.pid() > 0 ? &worker : nullptr;
}

void ProcessPool::worker_closed(std::size_t index, Result<ExitStatus> ended) noexcept {
  Slot& slot = *slots_[index];
  if (ended && on_exit_) on_exit_(WorkerExit{index, slot.process.pid(), ended.value()});
  slot.process.abandon();  // reaps nothing more once the exit was seen; closes the channel
  slot.state = Slot::State::Empty;
}

}  // namespace evflow

// evflow — EventLoop: the pools of calls and descriptors, the call_soon batch, run_forever.
#include "event_loop.hpp"

#include <new>

namespace evflow {

namespace detail {

// The post queue builds the batch in place from a temporary: from here on its address is
// fixed until the loop runs or drops it, and the EventLoop may disarm it there.
LoopCallBatch::LoopCallBatch(LoopCallBatch&& other) noexcept : owner_(other.owner_) {
  other.owner_ = nullptr;
  if (owner_ != nullptr) owner_->batch_ = this;
}

LoopCallBatch::~LoopCallBatch() {
  if (owner_ != nullptr && owner_->batch_ == this) owner_->batch_ = nullptr;  // dropped with its loop
}

void LoopCallBatch::operator()() noexcept {
  EventLoop* owner = owner_;
  if (owner == nullptr) return;  // the EventLoop went away first
  owner_ = nullptr;
  owner->batch_ = nullptr;  // calls made from here on post the next batch
  owner->run_soon_batch();
}

}  // namespace detail

bool CallHandle::cancel() noexcept {
  if (!pending()) return false;
  owner_->cancel(*call_);
  cancelled_ = true;
  return true;
}

bool CallHandle::pending() const noexcept {
  return call_ != nullptr && call_->generation == generation_ && call_->state == detail::LoopCall::State::Scheduled;
}

EventLoop::EventLoop() noexcept : owned_(std::in_place), loop_(*owned_), keep_running_(loop_) {}

EventLoop::EventLoop(Loop& loop) noexcept : loop_(loop), keep_running_(loop) {}

EventLoop::~EventLoop() {
  if (batch_ != nullptr) batch_->disarm();  // the loop runs or drops it as empty work
  keep_running_.stop();
  while (detail::LoopCall* call = all_calls_) {
    all_calls_ = call->next_all;
    delete call;  // stops its timer, destroys its callable
  }
  while (detail::LoopDescriptor* entry = all_descriptors_) {
    all_descriptors_ = entry->next_all;
    delete entry;  // stops its watcher
  }
  delete[] table_;
}

Error EventLoop::open() noexcept { return loop_.is_open() ? Error() : loop_.open(); }

// ---- call_soon, call_later, call_at ----

Error EventLoop::acquire(detail::LoopCall*& call) noexcept {
  if (!loop_.is_open()) return Error(EINVAL);
  call = free_calls_;
  if (call != nullptr) {
    free_calls_ = call->next;
  } else {
    call = new (std::nothrow) detail::LoopCall(loop_);
    if (call == nullptr) return Error(ENOMEM);
    call->next_all = all_calls_;
    all_calls_ = call;
    ++call_pool_size_;
  }
  call->next = nullptr;
  call->state = detail::LoopCall::State::Scheduled;
  ++pending_calls_;
  return Error();
}

void EventLoop::release(detail::LoopCall& call) noexcept {
  if (call.state == detail::LoopCall::State::Scheduled) --pending_calls_;
  call.fn.reset();
  call.state = detail::LoopCall::State::Free;
  ++call.generation;  // every handle to the call it held is stale from now on
  call.next = free_calls_;
  free_calls_ = &call;
}

Error EventLoop::schedule_soon(detail::LoopCall& call) noexcept {
  if (!call.fn) {
    release(call);
    return Error(EINVAL);
  }
  if (batch_ == nullptr) {
    // No batch is waiting: post one (it registers itself in batch_ as it is built).
    if (Error err = loop_.post(detail::LoopCallBatch(this))) {
      release(call);
      return err;
    }
  }
  call.timed = false;
  *soon_tail_ = &call;
  soon_tail_ = &call.next;
  return Error();
}

Error EventLoop::schedule_later(detail::LoopCall& call, Duration delay) noexcept {
  if (!call.fn) {
    release(call);
    return Error(EINVAL);
  }
  call.owner = this;
  return schedule_timed(call, call.timer.start(delay < Duration::zero() ? Duration::zero() : delay,
                                               [&call] { call.owner->fire_timed(call); }));
}

Error EventLoop::schedule_at(detail::LoopCall& call, MonotonicClock::time_point deadline) noexcept {
  if (!call.fn) {
    release(call);
    return Error(EINVAL);
  }
  call.owner = this;
  return schedule_timed(call, call.timer.start_at(deadline, [&call] { call.owner->fire_timed(call); }));
}

Error EventLoop::schedule_timed(detail::LoopCall& call, Error started) noexcept {
  if (started) {
    release(call);
    return started;
  }
  call.timed = true;
  return Error();
}

void EventLoop::cancel(detail::LoopCall& call) noexcept {
  if (call.timed) {
    call.timer.stop();
    release(call);
    return;
  }
  // A call_soon stays linked in its batch, which frees the record when it reaches it.
  call.fn.reset();
  call.state = detail::LoopCall::State::Cancelled;
  --pending_calls_;
}

void EventLoop::run_soon_batch() noexcept {
  // The calls present now; those they make go to a new batch, in the next iteration.
  detail::LoopCall* call = soon_head_;
  soon_head_ = nullptr;
  soon_tail_ = &soon_head_;
  while (call != nullptr) {
    detail::LoopCall* next = call->next;
    if (call->state == detail::LoopCall::State::Scheduled) {
      call->state = detail::LoopCall::State::Running;
      --pending_calls_;
      call->fn();
    }
    release(*call);
    call = next;
  }
}

void EventLoop::fire_timed(detail::LoopCall& call) noexcept {
  call.state = detail::LoopCall::State::Running;
  --pending_calls_;
  call.fn();
  release(call);
}

// ---- add_reader, add_writer ----

// A record for a descriptor not registered yet; it enters the table once its watcher has
// started, so that the kernel has vouched for the number before the table grows to it.
Error EventLoop::take_descriptor(int fd, detail::LoopDescriptor*& entry) noexcept {
  if (fd < 0) return Error(EBADF);
  if (!loop_.is_open()) return Error(EINVAL);
  entry = free_descriptors_;
  if (entry != nullptr) {
    free_descriptors_ = entry->next_free;
  } else {
    entry = new (std::nothrow) detail::LoopDescriptor(loop_);
    if (entry == nullptr) return Error(ENOMEM);
    entry->next_all = all_descriptors_;
    all_descriptors_ = entry;
  }
  entry->fd = fd;
  return Error();
}

Error EventLoop::enter_in_table(detail::LoopDescriptor& entry) noexcept {
  const auto index = static_cast<std::size_t>(entry.fd);
  if (index >= table_size_) {
    std::size_t size = table_size_ == 0 ? 64 : table_size_;
    while (size <= index)
      size *= 2;
    auto** table = new (std::nothrow) detail::LoopDescriptor*[size];
    if (table == nullptr) return Error(ENOMEM);
    for (std::size_t i = 0; i < size; ++i)
      table[i] = i < table_size_ ? table_[i] : nullptr;
    delete[] table_;
    table_ = table;
    table_size_ = size;
  }
  table_[index] = &entry;
  return Error();
}

Error EventLoop::watch(detail::LoopDescriptor& entry) noexcept {
  const Events interest = (entry.want_reader ? Readable : Events{}) | (entry.want_writer ? Writable : Events{});
  if (entry.io.active()) return entry.io.set_interest(interest);
  detail::LoopDescriptor* self = &entry;
  Error err = entry.io.start(entry.fd, interest, [this, self](Io&, Events ready) { dispatch(*self, ready); });
  if (!err) err = enter_in_table(entry);
  if (err) {  // a descriptor refused: nothing of it stays registered
    entry.want_reader = entry.want_writer = false;
    entry.io.stop();
    settle(entry);
  }
  return err;
}

bool EventLoop::remove(int fd, Events side) noexcept {
  detail::LoopDescriptor* entry = find(fd);
  if (entry == nullptr) return false;
  bool& wanted = side == Readable ? entry->want_reader : entry->want_writer;
  if (!wanted) return false;
  wanted = false;
  if (entry->want_reader || entry->want_writer) {
    (void)entry->io.set_interest(entry->want_reader ? Readable : Writable);  // valid bits: cannot fail
  } else {
    entry->io.stop();
  }
  settle(*entry);
  return true;
}

// Outside a dispatch of its callbacks: destroys the callables no longer wanted, and frees
// the record when neither side is.
void EventLoop::settle(detail::LoopDescriptor& entry) noexcept {
  if (entry.dispatching) return;  // the dispatch settles it when its callbacks are done
  if (!entry.want_reader && !entry.want_writer) {
    release(entry);
    return;
  }
  if (!entry.want_reader) entry.reader.reset();
  if (!entry.want_writer) entry.writer.reset();
}

void EventLoop::release(detail::LoopDescriptor& entry) noexcept {
  entry.io.stop();
  entry.reader.reset();
  entry.writer.reset();
  entry.want_reader = entry.want_writer = false;
  if (find(entry.fd) == &entry) table_[entry.fd] = nullptr;
  entry.fd = -1;
  entry.next_free = free_descriptors_;
  free_descriptors_ = &entry;
}

void EventLoop::dispatch(detail::LoopDescriptor& entry, Events ready) noexcept {
  // The callbacks may remove either side or both: the record stays until they are done.
  entry.dispatching = true;
  const int fd = entry.fd;
  const bool invalid = ready.invalid();
  if ((invalid || ready.readable()) && entry.want_reader) entry.reader(fd);
  if ((invalid || ready.writable()) && entry.want_writer) entry.writer(fd);
  entry.dispatching = false;
  if (invalid) {
    // A descriptor closed under its watcher (misuse): the loop stopped the watcher; each
    // side was called once so that its read or write sees the error, and both are dropped.
    entry.want_reader = entry.want_writer = false;
    entry.io.stop();
  }
  settle(entry);
}

// ---- run_forever, stop ----

Error EventLoop::run_forever() noexcept {
  if (!loop_.is_open()) return Error(EINVAL);
  if (running_) return Error(EBUSY);
  const bool once = stop_before_run_;
  stop_before_run_ = false;
  if (!keep_running_.active()) {
    if (Error err = keep_running_.start([] {})) return err;
  }
  running_ = true;
  const Error err = loop_.run(once ? RunMode::NoWait : RunMode::Default);
  running_ = false;
  keep_running_.stop();
  return err;
}

void EventLoop::stop() noexcept {
  if (running_) {
    loop_.stop();
  } else {
    stop_before_run_ = true;
  }
}

}  // namespace evflow

#include "thread_pool.hpp"

#include <pthread.h>

#include <new>
#include <thread>

#include "context.hpp"
#include "thread_return_path.hpp"

namespace evflow {

namespace detail {

// Every pool and every return path of the process, so that fork() can hold the pools'
// mutexes (no thread is inside one when the child is made) and the child can recover the
// work its vanished threads had. Lock order: the registry, then pools. A pool's thread
// hands finished work to its return path under the pool's mutex, so the child finds each
// piece of work in the pool's lists or on its path's (an atomic list, never half-changed).
struct ThreadForkHandlers {
  static std::mutex& registry() noexcept {
    static std::mutex mutex;
    return mutex;
  }
  static inline ThreadPool* pools = nullptr;
  static inline ThreadReturnPath* paths = nullptr;

  static void install() noexcept {
#if !defined(_WIN32)
    static const bool installed = [] {
      (void)pthread_atfork(&prepare, &in_parent, &in_child);
      return true;
    }();
    (void)installed;
#endif
  }

  static void prepare() noexcept {
    registry().lock();
    for (ThreadPool* pool = pools; pool != nullptr; pool = pool->next_pool_)
      pool->mutex_.lock();
  }
  static void in_parent() noexcept {
    for (ThreadPool* pool = pools; pool != nullptr; pool = pool->next_pool_)
      pool->mutex_.unlock();
    registry().unlock();
  }
  // The forking thread held every pool's mutex, and is the child's one thread: it unlocks them
  // (a mutex made anew instead would still count as held for ThreadSanitizer). The wake-up
  // locks, which a thread gone in the fork may have held, are made anew. Each pool hands
  // the work its threads had back to the loops, failed.
  static void in_child() noexcept {
    for (ThreadReturnPath* path = paths; path != nullptr; path = path->next_path)
      ::new (&path->wake_lock) std::mutex();
    for (ThreadPool* pool = pools; pool != nullptr; pool = pool->next_pool_)
      pool->after_fork_in_child();
    // A thread may have been between appending to a list and waking its loop: every path
    // with work waiting wakes its loop here.
    for (ThreadReturnPath* path = paths; path != nullptr; path = path->next_path)
      if (path->has_arrivals() && path->awake) path->arrivals.send();
    registry().unlock();
  }

  template <class T>
  static void link(T*& head, T* item, T* T::*next, T* T::*prev) noexcept {
    item->*prev = nullptr;
    item->*next = head;
    if (head != nullptr) head->*prev = item;
    head = item;
  }
  template <class T>
  static void unlink(T*& head, T* item, T* T::*next, T* T::*prev) noexcept {
    if (item->*prev != nullptr)
      item->*prev->*next = item->*next;
    else
      head = item->*next;
    if (item->*next != nullptr) item->*next->*prev = item->*prev;
  }
};

}  // namespace detail

using detail::ThreadForkHandlers;
using detail::ThreadReturnPath;
using detail::ThreadWork;

struct ThreadPool::Worker {
  pthread_t thread;
};

ThreadPool::ThreadPool(std::size_t threads) noexcept {
  if (threads == 0) threads = std::thread::hardware_concurrency();
  if (threads == 0) threads = 1;
  size_ = threads < kMaxThreads ? threads : kMaxThreads;
  ThreadForkHandlers::install();
  std::lock_guard<std::mutex> lock(ThreadForkHandlers::registry());
  ThreadForkHandlers::link(ThreadForkHandlers::pools, this, &ThreadPool::next_pool_, &ThreadPool::prev_pool_);
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  work_ready_.notify_all();
  for (std::size_t i = 0; i < started_; ++i)
    (void)pthread_join(workers_[i].thread, nullptr);
  delete[] workers_;
  std::lock_guard<std::mutex> lock(ThreadForkHandlers::registry());
  ThreadForkHandlers::unlink(ThreadForkHandlers::pools, this, &ThreadPool::next_pool_, &ThreadPool::prev_pool_);
}

ThreadPool& ThreadPool::default_pool() noexcept {
  // Never destroyed: at exit its threads may be blocked in work that never ends.
  static ThreadPool* pool = new ThreadPool(0);
  return *pool;
}

std::size_t ThreadPool::started_threads() const noexcept {
  std::lock_guard<std::mutex> lock(mutex_);
  return started_;
}

Error ThreadPool::start_threads() noexcept {
  if (workers_ == nullptr) {
    workers_ = new (std::nothrow) Worker[size_];
    if (workers_ == nullptr) return Error(ENOMEM);
  }
  while (started_ < size_) {
    const int error = pthread_create(&workers_[started_].thread, nullptr, &ThreadPool::thread_main, this);
    if (error != 0) return started_ > 0 ? Error() : Error(error);  // fewer threads still run the work
    ++started_;
  }
  return Error();
}

Error ThreadPool::submit(ThreadWork& work) noexcept {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (started_ == 0) {
      if (Error error = start_threads()) return error;
    }
    work.stage = ThreadWork::Stage::Queued;
    queue_.push_back(work);
  }
  work_ready_.notify_one();
  return Error();
}

bool ThreadPool::withdraw(ThreadWork& work) noexcept {
  std::lock_guard<std::mutex> lock(mutex_);
  if (work.stage != ThreadWork::Stage::Queued) return false;
  queue_.remove(work);
  work.stage = ThreadWork::Stage::Done;
  return true;
}

void* ThreadPool::thread_main(void* pool) noexcept {
  static_cast<ThreadPool*>(pool)->work_loop();
  return nullptr;
}

ThreadWork* ThreadPool::start_next() noexcept {
  ThreadWork* work = queue_.front();
  if (work == nullptr) return nullptr;
  queue_.remove(*work);
  work->stage = ThreadWork::Stage::Running;
  running_.push_back(*work);
  return work;
}

void ThreadPool::work_loop() noexcept {
  std::unique_lock<std::mutex> lock(mutex_);
  for (;;) {
    work_ready_.wait(lock, [this] { return !queue_.empty() || stopping_; });
    ThreadWork* work = start_next();
    if (work == nullptr) return;  // stopping, and the queue is empty
    lock.unlock();
    // One lock per piece of work: the finished one goes back and the next queued one is
    // taken together, and the loop is woken with no lock held (a woken loop that runs at
    // once, as on a single CPU, finds nothing of this thread's in its way).
    while (work != nullptr) {
      work->run(*work);
      lock.lock();
      running_.remove(*work);
      work->stage = ThreadWork::Stage::Done;
      ThreadReturnPath* path = work->path;
      const ThreadReturnPath::Handed handed = path->hand_back(*work);
      ThreadWork* next = start_next();
      lock.unlock();
      path->finish_hand_back(*work, handed);
      work = next;
    }
    lock.lock();
  }
}

void ThreadPool::after_fork_in_child() noexcept {
  mutex_.unlock();                                 // held by the forking thread (prepare)
  ::new (&work_ready_) std::condition_variable();  // its waiters are gone
  // The threads do not exist here: their records are dropped (their stacks are the
  // parent's memory, copied), and the pool starts afresh with its next submission.
  delete[] workers_;
  workers_ = nullptr;
  started_ = 0;
  for (detail::IntrusiveList<ThreadWork>* list : {&running_, &queue_}) {
    while (ThreadWork* work = list->front()) {
      list->remove(*work);
      work->stage = ThreadWork::Stage::Done;
      work->error = Error(EOWNERDEAD);
      work->path->deliver(*work);
    }
  }
}

namespace detail {

namespace {

struct PathRegistration {
  static void link(ThreadReturnPath* path) noexcept {
    std::lock_guard<std::mutex> lock(ThreadForkHandlers::registry());
    ThreadForkHandlers::link(ThreadForkHandlers::paths, path, &ThreadReturnPath::next_path,
                             &ThreadReturnPath::prev_path);
  }
  static void unlink(ThreadReturnPath* path) noexcept {
    std::lock_guard<std::mutex> lock(ThreadForkHandlers::registry());
    ThreadForkHandlers::unlink(ThreadForkHandlers::paths, path, &ThreadReturnPath::next_path,
                               &ThreadReturnPath::prev_path);
  }
};

std::size_t class_bytes(std::size_t size_class) noexcept { return std::size_t{64} << size_class; }

}  // namespace

ThreadReturnPath::ThreadReturnPath(Loop& loop) noexcept : arrivals(loop) {
  run = [](LoopEndHook& self) noexcept { static_cast<ThreadReturnPath&>(self).close(); };
  arrivals.set_callback([this] { take_arrivals(); });
  ThreadForkHandlers::install();
  PathRegistration::link(this);
}

ThreadReturnPath::~ThreadReturnPath() {
  PathRegistration::unlink(this);
  for (std::size_t klass = 0; klass < kClasses; ++klass) {
    while (void* block = free_[klass]) {
      free_[klass] = *static_cast<void**>(block);
      ::operator delete(block);
    }
  }
}

ThreadReturnPath* ThreadReturnPath::of(TaskScheduler& scheduler) noexcept {
  if (ThreadReturnPath* path = scheduler.thread_return_path()) return path;
  auto* path = new (std::nothrow) ThreadReturnPath(scheduler.loop());
  if (path == nullptr) return nullptr;
  scheduler.set_thread_return_path(path);
  scheduler.on_loop_end(*path);
  return path;
}

void* ThreadReturnPath::allocate(std::size_t size, uint8_t& size_class) noexcept {
  uint8_t klass = 0;
  while (klass < kClasses && class_bytes(klass) < size)
    ++klass;
  size_class = klass;
  if (klass == kHeapClass) return ::operator new(size, std::nothrow);
  if (void* block = free_[klass]) {
    free_[klass] = *static_cast<void**>(block);
    return block;
  }
  return ::operator new(class_bytes(klass), std::nothrow);
}

void ThreadReturnPath::sent() noexcept {
  if (out++ == 0) (void)arrivals.start();  // EINVAL only on a loop not open: a task runs on it
  retain();
}

void ThreadReturnPath::recycle(ThreadWork& work) noexcept {
  const uint8_t klass = work.size_class;
  work.destroy(work);
  void* block = &work;
  if (klass == kHeapClass) {
    ::operator delete(block);
  } else {
    *static_cast<void**>(block) = free_[klass];
    free_[klass] = block;
  }
}

void ThreadReturnPath::discard(ThreadWork& work) noexcept {
  recycle(work);
  if (--out == 0) arrivals.stop();
  release();
}

void ThreadReturnPath::free_record(ThreadWork& work) noexcept {
  work.destroy(work);
  ::operator delete(static_cast<void*>(&work));
}

ThreadReturnPath::Handed ThreadReturnPath::hand_back(ThreadWork& work) noexcept {
  retain();  // the wake-up's: once the record is on the list the loop may close the path
  ThreadWork* head = done.load(std::memory_order_relaxed);
  do {
    if (head == closed_mark()) return Handed::Closed;
    work.next_done = head;
  } while (!done.compare_exchange_weak(head, &work, std::memory_order_release, std::memory_order_relaxed));
  return head == nullptr ? Handed::First : Handed::Queued;
}

void ThreadReturnPath::finish_hand_back(ThreadWork& work, Handed handed) noexcept {
  if (handed == Handed::Closed) {
    free_record(work);
    release();  // the work's
  } else if (handed == Handed::First) {
    std::lock_guard<std::mutex> waking(wake_lock);
    if (awake) arrivals.send();  // close() waits for this: the loop is there
  }
  release();  // the wake-up's
}

void ThreadReturnPath::take_arrivals() noexcept {
  // The list holds the latest first: reversed, the works come back in the order they finished.
  ThreadWork* latest = done.exchange(nullptr, std::memory_order_acquire);
  ThreadWork* list = nullptr;
  while (ThreadWork* work = latest) {
    latest = work->next_done;
    work->next_done = list;
    list = work;
  }
  while (ThreadWork* work = list) {
    list = work->next_done;
    Waiter* waiter = work->waiter;
    if (waiter != nullptr) {
      if (--out == 0) arrivals.stop();
      release();
      waiter->arrived(*waiter);  // the await owns the record from now on
    } else {
      discard(*work);
    }
  }
}

void ThreadReturnPath::close() noexcept {
  {
    std::lock_guard<std::mutex> waking(wake_lock);
    awake = false;
  }
  ThreadWork* list = done.exchange(closed_mark(), std::memory_order_acquire);
  arrivals.stop();
  // The tasks are gone: whatever came back is theirs, abandoned.
  while (ThreadWork* work = list) {
    list = work->next_done;
    free_record(*work);
    release();
  }
  release();  // the loop's reference
}

void ThreadReturnPath::release() noexcept {
  if (references.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
}

}  // namespace detail
}  // namespace evflow

// evflow — gather(): run tasks side by side and combine how they end, by a strategy.
//
//   auto both = co_await evflow::gather(evflow::all, fetch(a), fetch(b));
//   if (both.ok()) { auto& [ra, rb] = both.value(); ... } else ... both.failures() ...
//   auto first = co_await evflow::gather(evflow::race, std::move(tasks), 8);   // 8 at once
//
// The tasks run as children of a group of the gather's own (task_group.hpp): in the
// awaiting task's scope, each one a task of the loop. The strategies:
//   all     every value, in argument order; the first failure cancels the others
//   settle  every outcome (value, failure, cancelled), in argument order; nothing cancelled
//   any     the first success; the others cancelled; if none succeeds, every failure
//   race    the first to end in any way; the others cancelled (a task ended by a
//           cancellation from outside the gather wins nothing: the gather is cancelled)
// Whatever the strategy, gather returns only after every task it started has ended: the
// losers are cancelled AND awaited. A failure is what a group counts as one (an Error
// other than ECANCELED, a failed Result); a task that passes ECANCELED on, or a Task<>
// that ends under a cancellation, is Cancelled. With exceptions on, an exception leaving a
// task is a failure too (EIO in failures()), and gather throws a TaskGroupError holding
// every exception once everything has ended.
//
// The range form takes a std::vector of tasks of one type and runs at most `limit` of
// them at once (0: all at once): each one that ends starts the next; a cancelled gather
// starts no more (those are Cancelled). any and race take tasks of one type.
#pragma once

#include <cstddef>
#include <optional>
#include <span>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "task_group.hpp"

namespace evflow {

namespace detail {
struct GatherAccess;
}  // namespace detail

// How one task of a gather ended.
template <class T>
class Outcome {
 public:
  enum class Kind : uint8_t { Value, Failed, Cancelled };
  using Stored = std::conditional_t<std::is_void_v<T>, std::monostate, T>;

  Outcome() noexcept = default;  // Cancelled: the task never ended with anything else
  Kind kind() const noexcept { return kind_; }
  bool has_value() const noexcept { return kind_ == Kind::Value; }
  bool failed() const noexcept { return kind_ == Kind::Failed; }
  bool cancelled() const noexcept { return kind_ == Kind::Cancelled; }
  // The failure (Failed), ECANCELED (Cancelled), or success.
  Error error() const noexcept { return error_; }
  // What the task returned. Precondition: has_value().
  Stored& value() noexcept {
    if (!value_) detail::fatal("evflow: Outcome::value() of a task that gave no value");
    return *value_;
  }

 private:
  friend struct detail::GatherAccess;
  void set_value(Stored value) noexcept(std::is_nothrow_move_constructible_v<Stored>) {
    value_.emplace(std::move(value));
    kind_ = Kind::Value;
    error_ = Error();
  }
  void set_failed(Error error) noexcept {
    kind_ = Kind::Failed;
    error_ = error;
  }

  Kind kind_ = Kind::Cancelled;
  Error error_{ECANCELED};
  std::optional<Stored> value_;
};

// The strategies (tags).
struct GatherAll {};
struct GatherSettle {};
struct GatherAny {};
struct GatherRace {};
inline constexpr GatherAll all{};
inline constexpr GatherSettle settle{};
inline constexpr GatherAny any{};
inline constexpr GatherRace race{};

// What gather gives: the combined value when ok(), every failure, and for any and race
// the index of the task that decided.
template <class V>
class [[nodiscard]] GatherResult {
 public:
  // all: every task gave a value; any: one did; race: one ended (always, unless none
  // ran or a cancellation from outside ended them); settle: always.
  bool ok() const noexcept { return value_.has_value(); }
  // all: the tuple (vector) of values; settle: the outcomes; any: the winner's value;
  // race: the winner's Outcome. Precondition: ok().
  V& value() noexcept {
    if (!value_) detail::fatal("evflow: GatherResult::value() of a gather that is not ok()");
    return *value_;
  }
  // Every failure, in the order the tasks ended.
  std::span<const Error> failures() const noexcept { return failures_; }
  // any, race: the argument position of the task that decided; -1 if none did.
  int index() const noexcept { return index_; }
  // A cancellation from outside the gather reached its tasks.
  bool cancelled() const noexcept { return cancelled_; }
  // Why nothing ran (ENOMEM, a task that is empty); success otherwise.
  Error error() const noexcept { return error_; }

 private:
  friend struct detail::GatherAccess;
  std::optional<V> value_;
  std::vector<Error> failures_;
  int index_ = -1;
  bool cancelled_ = false;
  Error error_;
};

namespace detail {

enum class Strategy : uint8_t { All, Settle, Any, Race };

// What gather's internals may touch of an Outcome and a GatherResult.
struct GatherAccess {
  template <class T, class V>
  static void set_value(Outcome<T>& outcome, V&& value) {
    outcome.set_value(std::forward<V>(value));
  }
  template <class T>
  static void set_failed(Outcome<T>& outcome, Error error) noexcept {
    outcome.set_failed(error);
  }
  template <class V>
  static std::optional<V>& value(GatherResult<V>& result) noexcept {
    return result.value_;
  }
  template <class V>
  static void set(GatherResult<V>& result, std::vector<Error> failures, int index, bool cancelled, Error error) {
    result.failures_ = std::move(failures);
    result.index_ = index;
    result.cancelled_ = cancelled;
    result.error_ = error;
  }
};

// What the children of one gather share: the strategy and what has been decided.
struct GatherState {
  TaskGroup* group = nullptr;
  Strategy strategy = Strategy::All;
  int winner = -1;
  std::vector<Error> failures;
  void (*start_next)(GatherState&) = nullptr;  // the range form's window, or null
  void* window = nullptr;                      // what start_next works on
#if defined(__cpp_exceptions)
  std::vector<std::exception_ptr> exceptions;
#endif

  // `cancelled_now`: the child's task was cancelled when it ended; before a decision only
  // a cancellation from outside the gather does that, and such an end decides nothing.
  template <class T>
  void ended(int index, const Outcome<T>& outcome, bool cancelled_now) {
    if (outcome.failed()) failures.push_back(outcome.error());
    const bool ended_from_outside = outcome.cancelled() && cancelled_now;
    const bool decides = (strategy == Strategy::All && outcome.failed()) ||
                         (strategy == Strategy::Any && outcome.has_value()) ||
                         (strategy == Strategy::Race && !ended_from_outside);
    if (decides && winner < 0) {
      winner = index;
      group->cancel();
    }
    if (start_next != nullptr) start_next(*this);
  }
};

// A child of a gather is the gathered task itself, spawned into the gather's group by a
// call that gives it back: its record keeps (state, index, outcome) as that call's
// arguments, and how it ended is read from the record when it finishes. No frame between.
template <class T>
struct GatherChild {
  struct Call {
    Task<T> operator()(Task<T>&& task, GatherState*, int, Outcome<T>*) const noexcept { return std::move(task); }
  };
  using Record = SpawnRecord<T, Call, Task<T>, GatherState*, int, Outcome<T>*>;

  static void spawn(TaskGroup& group, GatherState* state, int index, Task<T> task, Outcome<T>* out) noexcept {
    (void)group.spawn_reporting(&ended, Call{}, std::move(task), state, index, out);
  }

  static void ended(TaskRoot& root, GroupNode& node) noexcept {
    auto& record = static_cast<Record&>(root);
    GatherState* state = std::get<1>(record.call->args);
    Outcome<T>& out = *std::get<3>(record.call->args);
    // A child that never ran (its loop went first) decides nothing.
    if (record.state == TaskState::Completed || record.state == TaskState::Failed) {
      record_outcome(record, *state, out);
      state->ended(std::get<2>(record.call->args), out, record.cancelled());
    }
    static_cast<TaskGroup&>(node).child_left();
  }

  static void record_outcome(Record& record, [[maybe_unused]] GatherState& state, Outcome<T>& out) noexcept {
#if defined(__cpp_exceptions)
    if (record.exception) {
      state.exceptions.push_back(record.exception);
      GatherAccess::set_failed(out, Error(EIO));
      return;
    }
#endif
    if (!record.value) return;
    if constexpr (std::is_void_v<T>) {
      if (!record.cancelled()) GatherAccess::set_value(out, std::monostate{});  // else it ended under a cancellation
    } else {
      T& value = *record.value;
      const Error failure = failure_of(value);
      bool passed_on_cancel = false;
      if constexpr (std::is_same_v<T, Error>) {
        passed_on_cancel = value.code() == ECANCELED;
      } else if constexpr (requires {
                             value.ok();
                             value.error();
                           }) {
        passed_on_cancel = !value.ok() && value.error().code() == ECANCELED;
      }
      if (failure) {
        GatherAccess::set_failed(out, failure);
      } else if (!passed_on_cancel) {
        GatherAccess::set_value(out, std::move(value));
      }
    }
  }
};

template <class V>
void finish(GatherResult<V>& result, GatherState& state, bool reached, Error error) {
  GatherAccess::set(result, std::move(state.failures), state.winner, reached, error);
#if defined(__cpp_exceptions)
  if (!state.exceptions.empty()) {
    throw TaskGroupError(std::move(state.exceptions),
                         std::vector<Error>(result.failures().begin(), result.failures().end()));
  }
#endif
}

// The variadic form: one child per argument.
template <class V, class... T>
Task<GatherResult<V>> gather_tuple(Strategy strategy, std::tuple<Task<T>...> tasks) {
  std::tuple<Outcome<T>...> outcomes;
  SupervisorGroup group;
  GatherState state;
  state.group = &group;
  state.strategy = strategy;
  auto start_each = [&]<std::size_t... I>(std::index_sequence<I...>) noexcept {
    (GatherChild<T>::spawn(group, &state, static_cast<int>(I), std::move(std::get<I>(tasks)), &std::get<I>(outcomes)),
     ...);
  };
  auto ran = co_await GroupStartAndWait(group, [&]() noexcept { start_each(std::index_sequence_for<T...>{}); });
  GatherResult<V> result;
  finish(result, state, ran.cancelled_from_outside, ran.error);
  if (ran.error) co_return result;
  if (strategy == Strategy::Settle) {
    if constexpr (std::is_same_v<V, std::tuple<Outcome<T>...>>)
      GatherAccess::value(result).emplace(std::move(outcomes));
  } else if (strategy == Strategy::All) {
    if constexpr (std::is_same_v<V, std::tuple<typename Outcome<T>::Stored...>>) {
      const bool every = std::apply([](auto&... o) { return (o.has_value() && ...); }, outcomes);
      if (every)
        GatherAccess::value(result).emplace(
            std::apply([](auto&... o) { return V(std::move(o.value())...); }, outcomes));
    }
  }
  co_return result;
}

template <class T>
struct RangeGather {
  GatherState state;
  std::vector<Task<T>> tasks;
  std::vector<Outcome<T>> outcomes;
  std::size_t next = 0;

  void start_one() {
    const std::size_t index = next++;
    GatherChild<T>::spawn(*state.group, &state, static_cast<int>(index), std::move(tasks[index]), &outcomes[index]);
  }
  static void start_next(GatherState& state) {
    auto& self = *static_cast<RangeGather*>(state.window);
    if (self.next < self.tasks.size() && state.winner < 0 && state.group->running()) self.start_one();
  }
};

// The range form.
template <class V, class T>
Task<GatherResult<V>> gather_range(Strategy strategy, std::vector<Task<T>> tasks, std::size_t limit) {
  RangeGather<T> range;
  range.tasks = std::move(tasks);
  range.outcomes.resize(range.tasks.size());
  SupervisorGroup group;
  range.state.group = &group;
  range.state.strategy = strategy;
  range.state.start_next = limit == 0 ? nullptr : &RangeGather<T>::start_next;
  range.state.window = &range;
  auto ran = co_await GroupStartAndWait(group, [&]() noexcept {
    const std::size_t first = limit == 0 ? range.tasks.size() : std::min(limit, range.tasks.size());
    for (std::size_t i = 0; i < first; ++i)
      range.start_one();
  });
  GatherResult<V> result;
  finish(result, range.state, ran.cancelled_from_outside, ran.error);
  if (ran.error) co_return result;
  const int winner = range.state.winner;
  if constexpr (std::is_same_v<V, std::vector<Outcome<T>>>) {
    GatherAccess::value(result).emplace(std::move(range.outcomes));
  } else if constexpr (std::is_same_v<V, Outcome<T>>) {
    if (winner >= 0) GatherAccess::value(result).emplace(std::move(range.outcomes[static_cast<std::size_t>(winner)]));
  } else if constexpr (std::is_same_v<V, typename Outcome<T>::Stored>) {
    if (winner >= 0 && range.outcomes[static_cast<std::size_t>(winner)].has_value())
      GatherAccess::value(result).emplace(std::move(range.outcomes[static_cast<std::size_t>(winner)].value()));
  } else {  // all: the vector of values
    bool every = true;
    for (auto& outcome : range.outcomes)
      every = every && outcome.has_value();
    if (every) {
      V values;
      values.reserve(range.outcomes.size());
      for (auto& outcome : range.outcomes)
        values.push_back(std::move(outcome.value()));
      GatherAccess::value(result).emplace(std::move(values));
    }
  }
  co_return result;
}

template <class T, class... U>
inline constexpr bool kAllSame = (std::is_same_v<T, U> && ...);

}  // namespace detail

// gather(all, tasks...): GatherResult<std::tuple<T...>> (void tasks give std::monostate).
template <class... T>
Task<GatherResult<std::tuple<typename Outcome<T>::Stored...>>> gather(GatherAll, Task<T>... tasks) {
  return detail::gather_tuple<std::tuple<typename Outcome<T>::Stored...>>(detail::Strategy::All,
                                                                          std::tuple<Task<T>...>(std::move(tasks)...));
}
// gather(settle, tasks...): GatherResult<std::tuple<Outcome<T>...>>, always ok().
template <class... T>
Task<GatherResult<std::tuple<Outcome<T>...>>> gather(GatherSettle, Task<T>... tasks) {
  return detail::gather_tuple<std::tuple<Outcome<T>...>>(detail::Strategy::Settle,
                                                         std::tuple<Task<T>...>(std::move(tasks)...));
}
// gather(any, tasks...): the first value (GatherResult<T>), index() saying whose.
template <class T, class... U>
requires detail::kAllSame<T, U...> Task<GatherResult<typename Outcome<T>::Stored>> gather(GatherAny, Task<T> first,
                                                                                          Task<U>... rest) {
  std::vector<Task<T>> tasks;
  tasks.reserve(1 + sizeof...(rest));
  tasks.push_back(std::move(first));
  (tasks.push_back(std::move(rest)), ...);
  return detail::gather_range<typename Outcome<T>::Stored>(detail::Strategy::Any, std::move(tasks), 0);
}
// gather(race, tasks...): the first to end, as an Outcome<T>, index() saying whose.
template <class T, class... U>
requires detail::kAllSame<T, U...> Task<GatherResult<Outcome<T>>> gather(GatherRace, Task<T> first, Task<U>... rest) {
  std::vector<Task<T>> tasks;
  tasks.reserve(1 + sizeof...(rest));
  tasks.push_back(std::move(first));
  (tasks.push_back(std::move(rest)), ...);
  return detail::gather_range<Outcome<T>>(detail::Strategy::Race, std::move(tasks), 0);
}

// The range forms, at most `limit` tasks at once (0: no limit).
template <class T>
Task<GatherResult<std::vector<typename Outcome<T>::Stored>>> gather(GatherAll, std::vector<Task<T>> tasks,
                                                                    std::size_t limit = 0) {
  return detail::gather_range<std::vector<typename Outcome<T>::Stored>>(detail::Strategy::All, std::move(tasks), limit);
}
template <class T>
Task<GatherResult<std::vector<Outcome<T>>>> gather(GatherSettle, std::vector<Task<T>> tasks, std::size_t limit = 0) {
  return detail::gather_range<std::vector<Outcome<T>>>(detail::Strategy::Settle, std::move(tasks), limit);
}
template <class T>
Task<GatherResult<typename Outcome<T>::Stored>> gather(GatherAny, std::vector<Task<T>> tasks, std::size_t limit = 0) {
  return detail::gather_range<typename Outcome<T>::Stored>(detail::Strategy::Any, std::move(tasks), limit);
}
template <class T>
Task<GatherResult<Outcome<T>>> gather(GatherRace, std::vector<Task<T>> tasks, std::size_t limit = 0) {
  return detail::gather_range<Outcome<T>>(detail::Strategy::Race, std::move(tasks), limit);
}

}  // namespace evflow

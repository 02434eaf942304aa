// Coroutine task fuzzer: trees of tasks on a loop with a fake clock, checked against a
// model of the scheduler.
//
// The input spawns up to 8 tasks, each running a small program: sleep(0..5 ms), yield(),
// join() of a task spawned before it, and cancellation scopes (with or without a deadline
// of 0..6 ms, shields among them) whose bodies are programs again, nested up to 3 deep.
// Between iterations it cancels tasks and moves the clock by 0..7 ms; at the end it runs
// the loop until every task has finished, or destroys the loop with tasks suspended.
//
// The model runs the same programs by the rules tasks/ documents: one FIFO ready queue
// run in the posted-work phase, after the iteration's timers, up to a budget of
// resumptions; timers fire in (deadline, start order); cancellation is
// level-triggered, reaches a suspension through the scopes unless a shield is in the
// way, and ends a pending sleep or join at once; a scope's outcome is Completed, Cancelled
// or TimedOut. Checked after every iteration: the same events (each await's result, each
// scope's outcome, each task's end and its value) in the same order, and the same state
// for every task; at the end, a destroyed loop leaves every unfinished task Cancelled.
//
// Beside them the input spawns up to 3 trees of groups, gathers and deadlines (see "groups,
// gather and deadlines" below), cancels them, and checks them by invariants after every
// await and every group, gather and scope.
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <memory>
#include <optional>
#include <tuple>
#include <utility>
#include <vector>

#include "fuzz/fuzz_input.hpp"
#include "reactor/loop.hpp"
#include "tasks/tasks.hpp"

namespace {

using evflow::CancellationScope;
using evflow::ClockSource;
using evflow::Error;
using evflow::GatherResult;
using evflow::Loop;
using evflow::Outcome;
using evflow::RunMode;
using evflow::ScopeOutcome;
using evflow::SupervisorGroup;
using evflow::Task;
using evflow::TaskGroup;
using evflow::TaskHandle;
using evflow::TaskState;
using evflow::fuzz::FuzzInput;
using std::chrono::milliseconds;

constexpr int kTasks = 8;
constexpr int kMaxOpsPerTask = 24;  // keeps a task's inline transfers under the scheduler's bound
constexpr int kMaxDepth = 3;
constexpr int64_t kMs = 1'000'000;

struct Op {
  enum Kind { Sleep, Yield, Join, Scope } kind = Yield;
  int arg = 0;           // Sleep: ms; Join: the task; Scope: the deadline in ms, -1 none
  bool shield = false;   // Scope
  std::vector<Op> body;  // Scope
};
using Program = std::vector<Op>;

// One event of the run: what an await gave, how a scope ended, how a task ended.
struct Event {
  int task;
  char what;  // 'S' sleep, 'Y' yield, 'J' join, 'C' scope, 'F' finished
  int value;
  bool operator==(const Event&) const = default;
};

Program decode_program(FuzzInput& in, int task, int depth, int& budget) {
  Program program;
  const uint32_t count = in.below(5);
  for (uint32_t i = 0; i < count && budget > 0; ++i) {
    --budget;
    Op op;
    switch (in.below(depth < kMaxDepth ? 4 : 3)) {
      case 0:
        op.kind = Op::Sleep;
        op.arg = static_cast<int>(in.below(6));
        break;
      case 1:
        op.kind = Op::Yield;
        break;
      case 2:
        if (task == 0) break;  // nobody to join: a yield
        op.kind = Op::Join;
        op.arg = static_cast<int>(in.below(static_cast<uint32_t>(task)));
        break;
      default:
        op.kind = Op::Scope;
        op.arg = static_cast<int>(in.below(8)) - 1;
        op.shield = in.below(4) == 0;
        op.body = decode_program(in, task, depth + 1, budget);
        break;
    }
    program.push_back(std::move(op));
  }
  return program;
}

int value_of_task(int task, const Program& program) { return task * 1000 + static_cast<int>(program.size()); }

// --- groups, gather and deadlines -------------------------------------------------
//
// A tree is one more task of the loop, running a tree of nodes under a deadline of its
// own: a leaf awaits sleeps, yields or a Notification nobody sends, then succeeds, fails
// or passes a cancellation on; a group node runs a TaskGroup or a SupervisorGroup whose
// body spawns children (nodes again), sleeps, cancels the group or a child; a gather node
// runs its children through gather() with a strategy, in the variadic or the range form
// (with a limit); a scope node runs its child under with_timeout, with_deadline, a
// CancellationScope (a shield or not) with a deadline, shielded(), or runs it and then a
// second child shielded, as cleanup. Trees run beside the modelled tasks and leave their
// events alone: the checks below are invariants.
//
// The cancellation in effect is computed apart from the library: each node runs under a
// context (the tree's task, a scope and its deadline on the fake clock, a group, a
// gather, a group's child), flagged when the fuzzer cancels it or when the rules say it is
// cancelled (a TaskGroup's first failure, a gather's decision). Checked: an await begun
// under a cancellation ends with ECANCELED, and one that ends with ECANCELED had one; a
// sleep never ends early; a spawn is refused with ECANCELED exactly under a cancellation;
// a group or gather returns with every child finished, and reports exactly the failures
// of its children in the order they ended; a gather's decider, value, outcomes and limit,
// and a scope's outcome, are what the contexts predict, and so are a group's and a
// gather's cancelled(): a cancellation from outside (or the group's own cancel()).
//
// Trees stay small (16 nodes each) so that they never use up a phase's budget of
// resumptions, which the model of the other tasks counts on.

constexpr int kTrees = 3;
constexpr int kMaxNodesPerTree = 16;
constexpr int kMaxNesting = 3;
constexpr int kMaxChildren = 4;

// Where a node runs, seen from outside the library.
struct Context {
  Context* parent = nullptr;
  bool shield = false;
  bool flagged = false;          // cancelled by the fuzzer, a group's rule or a gather's decision
  int64_t deadline = INT64_MAX;  // on the fake clock
};

bool cancelled_at(const Context* context, int64_t now) {
  for (; context != nullptr; context = context->parent) {
    if (context->flagged || now >= context->deadline) return true;
    if (context->shield) return false;
  }
  return false;
}

bool is_failure(Error result) { return result && result.code() != ECANCELED; }

struct Node {
  enum Kind { Leaf, Group, Gather, Scope } kind = Leaf;
  // Leaf: the awaits (0..5: sleep that many ms, 6: yield, 7: a Notification never sent)
  // and what it returns: 0 success and 1 its failure, each ECANCELED instead when an await
  // was cancelled; 2 its failure and 3 success, whatever happened.
  std::vector<int> waits;
  int plan = 0;
  int failure_code = EIO;
  // Group: the body's operations (kind, argument); whether it is a SupervisorGroup; whether
  // the body fails.
  enum BodyOp { Spawn, Sleep, Yield, CancelGroup, CancelChild };
  std::vector<std::pair<BodyOp, int>> body;
  bool supervisor = false;
  bool body_fails = false;
  // Gather: the strategy (0 all, 1 settle, 2 any, 3 race), the range form or not, its limit.
  int strategy = 0;
  bool range = false;
  size_t limit = 0;
  // Scope: 0 with_timeout, 1 with_deadline, 2 a CancellationScope with a timeout, 3 the same
  // as a shield, 4 shielded(), 5 the first child then the second shielded.
  int scope_kind = 0;
  int ms = 0;
  std::vector<Node> children;

  // What the run did.
  bool started = false;
  bool ended = false;
  Error result;
  uint64_t end_seq = 0;
};

// What a group or a gather learns from its children's ends.
struct Family {
  enum Kind { TaskGroupFamily, SupervisorFamily, GatherFamily } kind;
  Context* context;
  int strategy = 0;
  int winner = -1;  // gather: the child that decided
  std::vector<Node>* children = nullptr;
  int running = 0;
  int most_running = 0;
  bool failed = false;  // a TaskGroup: a failure has cancelled it
};

const int kFailureCodes[] = {EIO, EPROTO, ENOSPC, EPIPE};

Node decode_node(FuzzInput& in, int depth, bool finite, int& budget, int& ids) {
  --budget;
  Node node;
  node.failure_code = kFailureCodes[ids++ % 4];
  const uint32_t kinds = depth < kMaxNesting && budget > 0 ? 4 : 1;
  node.kind = static_cast<Node::Kind>(in.below(kinds));
  switch (node.kind) {
    case Node::Leaf: {
      const uint32_t waits = in.below(3);
      for (uint32_t i = 0; i < waits; ++i)
        node.waits.push_back(static_cast<int>(in.below(finite ? 7 : 8)));
      node.plan = static_cast<int>(in.below(4));
      break;
    }
    case Node::Group: {
      node.supervisor = in.flag();
      const uint32_t ops = in.below(6);
      for (uint32_t i = 0; i < ops; ++i) {
        const auto op = static_cast<Node::BodyOp>(in.below(5));
        int arg = static_cast<int>(in.below(4));
        if (op == Node::Spawn) {
          if (node.children.size() >= kMaxChildren || budget <= 0) continue;
          node.children.push_back(decode_node(in, depth + 1, finite, budget, ids));
        }
        node.body.emplace_back(op, arg);
      }
      node.body_fails = in.below(4) == 0;
      break;
    }
    case Node::Gather: {
      node.strategy = static_cast<int>(in.below(4));
      node.range = in.flag();
      node.limit = in.below(4);
      const uint32_t count = in.below(kMaxChildren);
      for (uint32_t i = 0; i < count && budget > 0; ++i)
        node.children.push_back(decode_node(in, depth + 1, finite, budget, ids));
      if (node.children.empty()) node.range = true;
      break;
    }
    case Node::Scope: {
      node.scope_kind = static_cast<int>(in.below(6));
      node.ms = static_cast<int>(in.below(8));
      const bool shielding = node.scope_kind >= 3;
      node.children.push_back(decode_node(in, depth + 1, finite || shielding, budget, ids));
      if (node.scope_kind == 5) node.children.push_back(decode_node(in, depth + 1, true, budget, ids));
      break;
    }
  }
  return node;
}

struct Tree {
  Node root;
  int timeout_ms = 0;
  Context task;   // flagged by the fuzzer's cancel
  Context scope;  // the tree's deadline
};

struct Forest {
  std::deque<Tree> trees;
  std::vector<TaskHandle<int>> handles;
  uint64_t seq = 0;
};

// --- the real thing ---------------------------------------------------------------

struct Real {
  int64_t mono = 1'000'000'000;
  ClockSource clock{[](void* self) { return static_cast<Real*>(self)->mono; },
                    [](void* self) { return static_cast<Real*>(self)->mono; }, this};
  std::deque<Program> programs;
  std::vector<Event> log;
  std::vector<TaskHandle<int>> handles;
  Forest forest;
  std::unique_ptr<Loop> loop = std::make_unique<Loop>();
};

Task<int> interpret(Real* real, int task, const Program* program) {
  for (const Op& op : *program) {
    switch (op.kind) {
      case Op::Sleep:
        real->log.push_back({task, 'S', (co_await evflow::sleep(milliseconds(op.arg))).code()});
        break;
      case Op::Yield:
        real->log.push_back({task, 'Y', (co_await evflow::yield()).code()});
        break;
      case Op::Join: {
        auto joined = co_await real->handles[static_cast<size_t>(op.arg)].join();
        real->log.push_back({task, 'J', joined ? joined.value() : -joined.error().code()});
        break;
      }
      case Op::Scope: {
        CancellationScope scope;
        scope.set_shield(op.shield);
        if (op.arg >= 0) (void)scope.set_timeout(milliseconds(op.arg));
        auto scoped = co_await scope.run(interpret(real, task, &op.body));
        real->log.push_back({task, 'C', static_cast<int>(scoped.outcome())});
        break;
      }
    }
  }
  co_return value_of_task(task, *program);
}

Task<int> run_task(Real* real, int task) {
  const int value = co_await interpret(real, task, &real->programs[static_cast<size_t>(task)]);
  real->log.push_back({task, 'F', value});
  co_return value;
}

Task<Error> run_node(Real* real, Node* node, Context* context, Family* family);

void check_scope_outcome(ScopeOutcome outcome, const Context& inside, int64_t now) {
  const ScopeOutcome expected = now >= inside.deadline       ? ScopeOutcome::TimedOut
                                : cancelled_at(&inside, now) ? ScopeOutcome::Cancelled
                                                             : ScopeOutcome::Completed;
  FUZZ_CHECK(outcome == expected, "a scope's outcome is not the one its deadline and cancellations give");
}

// A failure of a TaskGroup's child or body: the first one cancels the group.
void note_failure(Family* family) {
  if (family->kind != Family::TaskGroupFamily || family->context->flagged) return;
  family->failed = true;
  family->context->flagged = true;
}

void node_ended(Real* real, Node* node, Family* family, Error result) {
  node->ended = true;
  node->result = result;
  node->end_seq = ++real->forest.seq;
  if (family == nullptr) return;
  --family->running;
  if (is_failure(result)) note_failure(family);
  if (family->kind != Family::GatherFamily) return;
  // A race's task that a cancellation from outside ended (it passed ECANCELED on) wins
  // nothing.
  const bool ended_from_outside = result.code() == ECANCELED && cancelled_at(family->context->parent, real->mono);
  const bool decides = (family->strategy == 0 && is_failure(result)) || (family->strategy == 2 && !result) ||
                       (family->strategy == 3 && !ended_from_outside);
  if (decides && family->winner < 0) {
    family->winner = static_cast<int>(node - family->children->data());
    family->context->flagged = true;
  }
}

// One await of a leaf or of a group's body, checked against the contexts.
Task<Error> checked_wait(Real* real, Context* context, int wait) {
  const bool expected = cancelled_at(context, real->mono);
  const int64_t began = real->mono;
  Error result;
  if (wait <= 5) {
    result = co_await evflow::sleep(milliseconds(wait));
  } else if (wait == 6) {
    result = co_await evflow::yield();
  } else {
    evflow::Notification never_sent(*real->loop);
    result = co_await never_sent.wait();
  }
  FUZZ_CHECK(!result || result.code() == ECANCELED, "an await failed");
  FUZZ_CHECK(!expected || result.code() == ECANCELED, "an await begun under a cancellation did not give ECANCELED");
  FUZZ_CHECK(result.code() != ECANCELED || cancelled_at(context, real->mono),
             "an await gave ECANCELED with no cancellation in effect");
  FUZZ_CHECK(result || wait > 5 || real->mono >= began + wait * kMs, "a sleep ended early");
  FUZZ_CHECK(result || wait != 7, "a Notification nobody sent woke its task");
  co_return result;
}

template <class Group>
Task<Error> group_body(Real* real, Node* node, Group* group, Family* family, std::vector<Context>* child_contexts,
                       std::vector<TaskHandle<Error>>* handles, bool* by_hand, Node* body_record) {
  size_t next = 0;
  for (const auto& [op, arg] : node->body) {
    switch (op) {
      case Node::Spawn: {
        const size_t index = next++;
        const bool refused = cancelled_at(family->context, real->mono);
        auto handle = group->spawn(run_node, real, &node->children[index], &(*child_contexts)[index], family);
        FUZZ_CHECK(handle.valid() != refused, "a spawn into a group was refused, or not, against its cancellation");
        FUZZ_CHECK(handle.valid() || handle.error().code() == ECANCELED, "a spawn into a cancelled group");
        handles->push_back(std::move(handle));
        break;
      }
      case Node::Sleep:
        (void)co_await checked_wait(real, family->context, arg);
        break;
      case Node::Yield:
        (void)co_await checked_wait(real, family->context, 6);
        break;
      case Node::CancelGroup:
        *by_hand = true;  // says cancelled, even after a failure has cancelled the group
        family->context->flagged = true;
        group->cancel();
        break;
      case Node::CancelChild:
        if (static_cast<size_t>(arg) < handles->size()) {
          (*child_contexts)[static_cast<size_t>(arg)].flagged = true;
          (*handles)[static_cast<size_t>(arg)].cancel();
        }
        break;
    }
  }
  const Error result = node->body_fails ? Error(EIO) : Error();
  if (result) note_failure(family);
  body_record->started = true;
  node_ended(real, body_record, nullptr, result);
  co_return result;
}

template <class Group>
Task<Error> run_group(Real* real, Node* node, Context* context) {
  Group group;
  Context inside;
  inside.parent = context;
  std::vector<Context> child_contexts(node->children.size());
  for (Context& child : child_contexts)
    child.parent = &inside;
  Family family{node->supervisor ? Family::SupervisorFamily : Family::TaskGroupFamily, &inside};
  family.children = &node->children;
  std::vector<TaskHandle<Error>> handles;
  bool by_hand = false;
  Node body_record;
  auto ran =
      co_await group.run(group_body(real, node, &group, &family, &child_contexts, &handles, &by_hand, &body_record));
  const int64_t now = real->mono;
  FUZZ_CHECK(!ran.error(), "a group did not run its body");
  FUZZ_CHECK(group.size() == 0 && !group.running(), "a group returned with children alive");
  for (size_t i = 0; i < handles.size(); ++i) {
    if (!handles[i].valid()) continue;
    const TaskState expected = node->children[i].started ? TaskState::Completed : TaskState::Cancelled;
    FUZZ_CHECK(handles[i].state() == expected, "a group returned before a child was done, or it ended otherwise");
  }
  std::vector<const Node*> ended{&body_record};
  for (const Node& child : node->children) {
    FUZZ_CHECK(!child.started || child.ended, "a group returned before a child ended");
    if (child.ended) ended.push_back(&child);
  }
  FUZZ_CHECK(body_record.ended, "a group returned before its body ended");
  FUZZ_CHECK(ran.value().code() == body_record.result.code(), "a group gave another value than its body's");
  std::sort(ended.begin(), ended.end(), [](const Node* a, const Node* b) { return a->end_seq < b->end_seq; });
  std::vector<int> expected_failures;
  for (const Node* child : ended)
    if (is_failure(child->result)) expected_failures.push_back(child->result.code());
  FUZZ_CHECK(ran.failures().size() == expected_failures.size(), "a group reported another number of failures");
  for (size_t i = 0; i < expected_failures.size(); ++i)
    FUZZ_CHECK(ran.failures()[i].code() == expected_failures[i], "a group reported its failures out of order");
  if (by_hand) {
    FUZZ_CHECK(ran.cancelled(), "a group cancelled by hand did not say cancelled");
  } else {
    FUZZ_CHECK(ran.cancelled() == cancelled_at(context, now), "a group's cancelled() is not its cancellation");
  }
  if (!ran.failures().empty()) co_return ran.failures()[0];
  co_return ran.cancelled() ? Error(ECANCELED) : Error();
}

// What a gather gave, whatever its strategy and form.
struct Seen {
  Outcome<Error>::Kind kind;
  int code;
  bool operator==(const Seen&) const = default;
};
struct Observed {
  bool ok = false;
  std::vector<Error> failures;
  int index = -1;
  bool cancelled = false;
  Error error;
  std::vector<Seen> items;
};

void take(std::vector<Seen>& items, Error& value) { items.push_back({Outcome<Error>::Kind::Value, value.code()}); }
void take(std::vector<Seen>& items, Outcome<Error>& outcome) {
  items.push_back({outcome.kind(), outcome.error().code()});
}
template <class E>
void take(std::vector<Seen>& items, std::vector<E>& values) {
  for (E& value : values)
    take(items, value);
}
template <class... E>
void take(std::vector<Seen>& items, std::tuple<E...>& values) {
  std::apply([&items](auto&... value) { (take(items, value), ...); }, values);
}

template <class V>
Observed observe(GatherResult<V>& result) {
  Observed seen;
  seen.ok = result.ok();
  seen.failures.assign(result.failures().begin(), result.failures().end());
  seen.index = result.index();
  seen.cancelled = result.cancelled();
  seen.error = result.error();
  if (seen.ok) take(seen.items, result.value());
  return seen;
}

template <class Strategy>
Task<Observed> gather_with(Strategy strategy, std::vector<Task<Error>> tasks, bool range, size_t limit) {
  if (range) {
    auto gathered = co_await evflow::gather(strategy, std::move(tasks), limit);
    co_return observe(gathered);
  }
  if (tasks.size() == 1) {
    auto gathered = co_await evflow::gather(strategy, std::move(tasks[0]));
    co_return observe(gathered);
  }
  if (tasks.size() == 2) {
    auto gathered = co_await evflow::gather(strategy, std::move(tasks[0]), std::move(tasks[1]));
    co_return observe(gathered);
  }
  auto gathered = co_await evflow::gather(strategy, std::move(tasks[0]), std::move(tasks[1]), std::move(tasks[2]));
  co_return observe(gathered);
}

Seen seen_of(const Node& child) {
  if (!child.started || child.result.code() == ECANCELED) return {Outcome<Error>::Kind::Cancelled, ECANCELED};
  if (child.result) return {Outcome<Error>::Kind::Failed, child.result.code()};
  return {Outcome<Error>::Kind::Value, 0};
}

Task<Error> run_gather(Real* real, Node* node, Context* context) {
  Context inside;
  inside.parent = context;
  Family family{Family::GatherFamily, &inside, node->strategy};
  family.children = &node->children;
  std::vector<Task<Error>> tasks;
  for (Node& child : node->children)
    tasks.push_back(run_node(real, &child, &inside, &family));
  Observed seen;
  switch (node->strategy) {
    case 0:
      seen = co_await gather_with(evflow::all, std::move(tasks), node->range, node->limit);
      break;
    case 1:
      seen = co_await gather_with(evflow::settle, std::move(tasks), node->range, node->limit);
      break;
    case 2:
      seen = co_await gather_with(evflow::any, std::move(tasks), node->range, node->limit);
      break;
    default:
      seen = co_await gather_with(evflow::race, std::move(tasks), node->range, node->limit);
      break;
  }
  const int64_t now = real->mono;
  const std::vector<Node>& children = node->children;
  FUZZ_CHECK(!seen.error, "a gather did not run");
  std::vector<const Node*> ended;
  for (const Node& child : children) {
    FUZZ_CHECK(!child.started || child.ended, "a gather returned before a task ended");
    if (child.ended) ended.push_back(&child);
  }
  std::sort(ended.begin(), ended.end(), [](const Node* a, const Node* b) { return a->end_seq < b->end_seq; });
  std::vector<int> expected_failures;
  for (const Node* child : ended)
    if (is_failure(child->result)) expected_failures.push_back(child->result.code());
  FUZZ_CHECK(seen.failures.size() == expected_failures.size(), "a gather reported another number of failures");
  for (size_t i = 0; i < expected_failures.size(); ++i)
    FUZZ_CHECK(seen.failures[i].code() == expected_failures[i], "a gather reported its failures out of order");
  const int winner = family.winner;
  FUZZ_CHECK(seen.index == (node->strategy == 1 ? -1 : winner), "a gather named another task as the decider");
  const bool outside = cancelled_at(context, now);
  FUZZ_CHECK(seen.cancelled == outside, "a gather's cancelled() is not the cancellation from outside");
  if (node->range && node->limit > 0)
    FUZZ_CHECK(family.most_running <= static_cast<int>(node->limit), "a gather ran more tasks at once than its limit");
  Error result = Error(ECANCELED);
  switch (node->strategy) {
    case 0: {
      bool every = true;
      for (const Node& child : children)
        every = every && child.started && !child.result;
      FUZZ_CHECK(seen.ok == every, "gather(all) is ok() but a task gave no value, or the reverse");
      if (seen.ok) {
        FUZZ_CHECK(seen.items.size() == children.size(), "gather(all) gave another number of values");
        result = Error();
      } else if (!seen.failures.empty()) {
        result = seen.failures[0];
      }
      break;
    }
    case 1:
      FUZZ_CHECK(seen.ok && seen.items.size() == children.size(), "gather(settle) gave another number of outcomes");
      for (size_t i = 0; i < children.size(); ++i)
        FUZZ_CHECK(seen.items[i] == seen_of(children[i]), "gather(settle) gave an outcome the task did not have");
      result = Error();
      break;
    case 2:
      FUZZ_CHECK(seen.ok == (winner >= 0), "gather(any) is ok() without a success, or the reverse");
      if (seen.ok) {
        FUZZ_CHECK(seen.items.size() == 1 && seen.items[0].code == 0, "gather(any) gave a value nobody gave");
        result = Error();
      } else if (!seen.failures.empty()) {
        result = seen.failures[0];
      }
      break;
    default:
      FUZZ_CHECK(seen.ok == (winner >= 0), "gather(race) is ok() without a task that ended, or the reverse");
      if (seen.ok) {
        const Seen expected = seen_of(children[static_cast<size_t>(winner)]);
        FUZZ_CHECK(seen.items.size() == 1 && seen.items[0] == expected, "gather(race) gave another outcome");
        result = expected.kind == Outcome<Error>::Kind::Value ? Error() : Error(expected.code);
      }
      break;
  }
  co_return result;
}

Task<Error> run_scope(Real* real, Node* node, Context* context) {
  Context inside;
  inside.parent = context;
  const int64_t deadline = real->mono + node->ms * kMs;
  Node* body = &node->children[0];
  Error result;
  switch (node->scope_kind) {
    case 0: {
      inside.deadline = deadline;
      auto ran = co_await evflow::with_timeout(milliseconds(node->ms), run_node(real, body, &inside, nullptr));
      FUZZ_CHECK(!ran.error(), "with_timeout did not run its body");
      check_scope_outcome(ran.outcome(), inside, real->mono);
      result = ran.value();
      break;
    }
    case 1: {
      inside.deadline = deadline;
      const auto at = evflow::MonotonicClock::time_point(std::chrono::nanoseconds(deadline));
      auto ran = co_await evflow::with_deadline(at, run_node(real, body, &inside, nullptr));
      FUZZ_CHECK(!ran.error(), "with_deadline did not run its body");
      check_scope_outcome(ran.outcome(), inside, real->mono);
      result = ran.value();
      break;
    }
    case 2:
    case 3: {
      inside.deadline = deadline;
      inside.shield = node->scope_kind == 3;
      CancellationScope scope;
      scope.set_shield(inside.shield);
      (void)scope.set_timeout(milliseconds(node->ms));
      auto ran = co_await scope.run(run_node(real, body, &inside, nullptr));
      FUZZ_CHECK(!ran.error(), "a scope did not run its body");
      check_scope_outcome(ran.outcome(), inside, real->mono);
      result = ran.value();
      break;
    }
    case 4:
      inside.shield = true;
      result = co_await evflow::shielded(run_node(real, body, &inside, nullptr));
      break;
    default: {
      result = co_await run_node(real, body, context, nullptr);
      inside.shield = true;
      const Error cleaned = co_await evflow::shielded(run_node(real, &node->children[1], &inside, nullptr));
      if (!result) result = cleaned;
      break;
    }
  }
  co_return result;
}

Task<Error> run_node(Real* real, Node* node, Context* context, Family* family) {
  node->started = true;
  if (family != nullptr) family->most_running = std::max(family->most_running, ++family->running);
  Error result;
  switch (node->kind) {
    case Node::Leaf: {
      bool cancelled = false;
      for (int wait : node->waits) {
        const Error waited = co_await checked_wait(real, context, wait);
        cancelled = cancelled || waited.code() == ECANCELED;
      }
      const Error failure(node->failure_code);
      switch (node->plan) {
        case 0:
          result = cancelled ? Error(ECANCELED) : Error();
          break;
        case 1:
          result = cancelled ? Error(ECANCELED) : failure;
          break;
        case 2:
          result = failure;
          break;
        default:
          break;
      }
      break;
    }
    case Node::Group:
      if (node->supervisor) {
        result = co_await run_group<SupervisorGroup>(real, node, context);
      } else {
        result = co_await run_group<TaskGroup>(real, node, context);
      }
      break;
    case Node::Gather:
      result = co_await run_gather(real, node, context);
      break;
    case Node::Scope:
      result = co_await run_scope(real, node, context);
      break;
  }
  node_ended(real, node, family, result);
  co_return result;
}

Task<int> run_tree(Real* real, int index) {
  Tree& tree = real->forest.trees[static_cast<size_t>(index)];
  tree.scope.parent = &tree.task;
  tree.scope.deadline = real->mono + tree.timeout_ms * kMs;
  auto ran =
      co_await evflow::with_timeout(milliseconds(tree.timeout_ms), run_node(real, &tree.root, &tree.scope, nullptr));
  FUZZ_CHECK(!ran.error(), "a tree's scope did not run");
  check_scope_outcome(ran.outcome(), tree.scope, real->mono);
  co_return index;
}

// --- the model --------------------------------------------------------------------

struct Model {
  struct Scope {
    bool cancelled = false;
    bool shield = false;
    ScopeOutcome reason = ScopeOutcome::Completed;
    uint64_t timer = 0;  // its deadline's timer, 0: none
  };
  struct Frame {
    const Program* program;
    size_t pc = 0;
  };
  enum class Wait { None, Queued, Sleeping, Joining };
  struct TaskModel {
    TaskState state = TaskState::Pending;
    std::vector<Frame> frames;
    std::vector<Scope> scopes;  // one per frame but the first, innermost last
    bool cancel_requested = false;
    Wait wait = Wait::Queued;
    uint64_t sleep_timer = 0;
    int joining = -1;
    int pending = 0;  // the result of the await it resumes from
    int value = 0;
    std::vector<int> joiners;  // tasks waiting for this one, in the order they began
  };
  struct TimerModel {
    int64_t deadline;
    uint64_t seq;
    int task;
    int scope;  // -1: the task's sleep
  };

  int64_t now = 1'000'000'000;
  uint64_t next_seq = 0;
  std::vector<TaskModel> tasks;
  std::vector<TimerModel> timers;
  std::deque<int> ready;
  std::vector<Event> log;
  const std::deque<Program>* programs = nullptr;

  bool cancelled(const TaskModel& t) const {
    for (auto scope = t.scopes.rbegin(); scope != t.scopes.rend(); ++scope) {
      if (scope->cancelled) return true;
      if (scope->shield) return false;
    }
    return t.cancel_requested;
  }
  uint64_t start_timer(int64_t deadline, int task, int scope) {
    timers.push_back({deadline, ++next_seq, task, scope});
    return next_seq;
  }
  void stop_timer(uint64_t seq) {
    std::erase_if(timers, [seq](const TimerModel& timer) { return timer.seq == seq; });
  }
  void wake(int task, int result) {
    tasks[task].pending = result;
    tasks[task].wait = Wait::Queued;
    ready.push_back(task);
  }
  // A cancellation that may now reach the task's pending sleep or join.
  void deliver(int task) {
    TaskModel& t = tasks[task];
    if ((t.wait != Wait::Sleeping && t.wait != Wait::Joining) || !cancelled(t)) return;
    if (t.wait == Wait::Sleeping) {
      stop_timer(t.sleep_timer);
      wake(task, ECANCELED);
    } else {
      std::erase(tasks[t.joining].joiners, task);
      wake(task, -ECANCELED);
    }
  }
  void cancel_scope(int task, int scope, ScopeOutcome reason) {
    Scope& s = tasks[task].scopes[scope];
    if (s.cancelled) return;
    s.cancelled = true;
    s.reason = reason;
    if (s.timer != 0) stop_timer(std::exchange(s.timer, 0));
    deliver(task);
  }
  void finish(int task, TaskState state, int value) {
    TaskModel& t = tasks[task];
    t.state = state;
    t.value = value;
    t.wait = Wait::None;
    if (state == TaskState::Completed) log.push_back({task, 'F', value});
    for (int joiner : std::exchange(t.joiners, {}))
      wake(joiner, state == TaskState::Completed ? value : -ECANCELED);
  }

  void spawn(int task) {
    TaskModel t;
    t.frames.push_back({&(*programs)[task]});
    tasks.push_back(std::move(t));
    ready.push_back(task);
  }
  void cancel(int task) {
    TaskModel& t = tasks[task];
    if (t.state == TaskState::Pending) {
      std::erase(ready, task);
      finish(task, TaskState::Cancelled, 0);
    } else if (t.state == TaskState::Running) {
      t.cancel_requested = true;
      deliver(task);
    }
  }

  // Runs the task from where it was woken until it suspends or ends.
  void resume(int task) {
    TaskModel& t = tasks[task];
    if (t.state == TaskState::Pending) {
      t.state = TaskState::Running;
    } else {  // the await it was suspended in gives its result
      Frame& frame = t.frames.back();
      const Op& op = (*frame.program)[frame.pc++];
      log.push_back({task, op.kind == Op::Sleep ? 'S' : op.kind == Op::Yield ? 'Y' : 'J', t.pending});
    }
    t.wait = Wait::None;
    for (;;) {
      Frame& frame = t.frames.back();
      if (frame.pc == frame.program->size()) {
        const int value = value_of_task(task, *frame.program);
        if (t.frames.size() == 1) {
          finish(task, TaskState::Completed, value);
          return;
        }
        const bool reached = cancelled(t);
        Scope& scope = t.scopes.back();
        if (scope.timer != 0) stop_timer(scope.timer);
        const ScopeOutcome outcome = !reached          ? ScopeOutcome::Completed
                                     : scope.cancelled ? scope.reason
                                                       : ScopeOutcome::Cancelled;
        t.scopes.pop_back();
        t.frames.pop_back();
        ++t.frames.back().pc;
        log.push_back({task, 'C', static_cast<int>(outcome)});
        continue;
      }
      const Op& op = (*frame.program)[frame.pc];
      switch (op.kind) {
        case Op::Sleep:
          if (cancelled(t)) break;
          t.sleep_timer = start_timer(now + op.arg * kMs, task, -1);
          t.wait = Wait::Sleeping;
          return;
        case Op::Yield:
          if (cancelled(t)) break;
          wake(task, 0);
          return;
        case Op::Join: {
          const TaskModel& joined = tasks[op.arg];
          if (cancelled(t)) {  // level-triggered: before the joined task's end
            ++frame.pc;
            log.push_back({task, 'J', -ECANCELED});
            continue;
          }
          if (joined.state == TaskState::Completed || joined.state == TaskState::Cancelled) {
            ++frame.pc;
            log.push_back({task, 'J', joined.state == TaskState::Completed ? joined.value : -ECANCELED});
            continue;
          }
          tasks[op.arg].joiners.push_back(task);
          t.joining = op.arg;
          t.wait = Wait::Joining;
          return;
        }
        case Op::Scope: {
          Scope scope;
          scope.shield = op.shield;
          t.scopes.push_back(scope);
          t.frames.push_back({&op.body});
          const int index = static_cast<int>(t.scopes.size()) - 1;
          if (op.arg == 0) {
            cancel_scope(task, index, ScopeOutcome::TimedOut);
          } else if (op.arg > 0) {
            t.scopes.back().timer = start_timer(now + op.arg * kMs, task, index);
          }
          continue;
        }
      }
      // An await of a cancelled task: ECANCELED at once.
      ++frame.pc;
      log.push_back({task, op.kind == Op::Sleep ? 'S' : 'Y', ECANCELED});
    }
  }

  // One iteration at `now`: due timers, then the ready queue up to the budget.
  void iterate() {
    for (;;) {
      auto due = std::min_element(timers.begin(), timers.end(), [](const TimerModel& a, const TimerModel& b) {
        return a.deadline != b.deadline ? a.deadline < b.deadline : a.seq < b.seq;
      });
      if (due == timers.end() || due->deadline > now) break;
      const TimerModel timer = *due;
      timers.erase(due);
      if (timer.scope < 0) {
        wake(timer.task, 0);
      } else {
        tasks[timer.task].scopes[timer.scope].timer = 0;
        cancel_scope(timer.task, timer.scope, ScopeOutcome::TimedOut);
      }
    }
    for (int resumed = 0; resumed < evflow::detail::TaskScheduler::kResumptionsPerPhase && !ready.empty(); ++resumed) {
      const int task = ready.front();
      ready.pop_front();
      resume(task);
    }
  }
};

void fail(const char* what, const Real& real, const Model& model) {
  std::fprintf(stderr, "tasks_fuzz: %s\n", what);
  const size_t n = std::max(real.log.size(), model.log.size());
  for (size_t i = 0; i < n; ++i) {
    auto show = [](const std::vector<Event>& log, size_t at) {
      if (at >= log.size()) return std::fprintf(stderr, "%-16s", "-");
      return std::fprintf(stderr, "t%d %c %-10d", log[at].task, log[at].what, log[at].value);
    };
    std::fprintf(stderr, "%4zu real ", i);
    show(real.log, i);
    std::fprintf(stderr, " model ");
    show(model.log, i);
    std::fprintf(stderr, "%s\n",
                 i < real.log.size() && i < model.log.size() && real.log[i] == model.log[i] ? "" : " <");
  }
  std::abort();
}

void compare(const Real& real, const Model& model) {
  if (real.log != model.log) fail("the events differ", real, model);
  for (size_t i = 0; i < model.tasks.size(); ++i) {
    if (real.handles[i].state() != model.tasks[i].state) fail("a task's state differs", real, model);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzInput in(data, size);
  Real real;
  if (real.loop->open() || real.loop->set_clock(&real.clock)) std::abort();
  real.handles.reserve(kTasks);
  Model model;
  model.programs = &real.programs;
  const bool trace = evflow::fuzz::tracing();

  auto step = [&](int64_t advance_ms) {
    real.mono += advance_ms * kMs;
    model.now = real.mono;
    if (real.loop->run(RunMode::NoWait)) std::abort();
    model.iterate();
    compare(real, model);
  };

  while (!in.done()) {
    switch (in.below(6)) {
      case 0: {  // spawn
        if (real.handles.size() >= kTasks) break;
        const int task = static_cast<int>(real.handles.size());
        int budget = kMaxOpsPerTask;
        real.programs.push_back(decode_program(in, task, 0, budget));
        if (trace) std::fprintf(stderr, "spawn t%d (%zu ops)\n", task, real.programs.back().size());
        real.handles.push_back(evflow::spawn(*real.loop, run_task, &real, task));
        if (!real.handles.back().valid()) std::abort();
        model.spawn(task);
        break;
      }
      case 1: {  // cancel
        if (real.handles.empty()) break;
        const auto task = in.below(static_cast<uint32_t>(real.handles.size()));
        if (trace) std::fprintf(stderr, "cancel t%u\n", task);
        real.handles[task].cancel();
        model.cancel(static_cast<int>(task));
        compare(real, model);
        break;
      }
      case 2: {  // a tree of groups, gathers and scopes
        if (real.forest.trees.size() >= kTrees) break;
        const int index = static_cast<int>(real.forest.trees.size());
        Tree& tree = real.forest.trees.emplace_back();
        tree.timeout_ms = 4 + static_cast<int>(in.below(32));
        int budget = kMaxNodesPerTree;
        int ids = 0;
        tree.root = decode_node(in, 0, false, budget, ids);
        if (trace) std::fprintf(stderr, "tree %d (%d nodes, %d ms)\n", index, ids, tree.timeout_ms);
        real.forest.handles.push_back(evflow::spawn(*real.loop, run_tree, &real, index));
        if (!real.forest.handles.back().valid()) std::abort();
        break;
      }
      case 3: {  // cancel a tree
        if (real.forest.handles.empty()) break;
        const auto index = in.below(static_cast<uint32_t>(real.forest.handles.size()));
        if (trace) std::fprintf(stderr, "cancel tree %u\n", index);
        real.forest.trees[index].task.flagged = true;
        real.forest.handles[index].cancel();
        break;
      }
      default: {
        const int64_t advance = in.below(8);
        if (trace) std::fprintf(stderr, "step +%lld ms\n", static_cast<long long>(advance));
        step(advance);
        break;
      }
    }
  }

  if (in.flag()) {  // the loop goes with tasks suspended: each one unfinished says Cancelled
    real.loop.reset();
    for (size_t i = 0; i < model.tasks.size(); ++i) {
      const TaskState expected =
          model.tasks[i].state == TaskState::Completed ? TaskState::Completed : TaskState::Cancelled;
      if (real.handles[i].state() != expected) fail("a task outlived its loop", real, model);
    }
    for (const auto& tree : real.forest.handles)
      FUZZ_CHECK(tree.state() == TaskState::Completed || tree.state() == TaskState::Cancelled,
                 "a tree outlived its loop");
    return 0;
  }
  // Every task ends: sleeps and deadlines are finite, and a task joins only earlier ones.
  for (int i = 0; i < 10'000 && evflow::live_tasks(*real.loop) > 0; ++i)
    step(1);
  if (evflow::live_tasks(*real.loop) != 0) fail("tasks never finished", real, model);
  for (const auto& t : model.tasks)
    if (t.state == TaskState::Pending || t.state == TaskState::Running)
      fail("the model's tasks never finished", real, model);
  for (size_t i = 0; i < real.forest.trees.size(); ++i) {
    const Tree& tree = real.forest.trees[i];
    FUZZ_CHECK(!tree.root.started || tree.root.ended, "a tree's task finished before its root node");
    const TaskState expected = tree.root.started ? TaskState::Completed : TaskState::Cancelled;
    FUZZ_CHECK(real.forest.handles[i].state() == expected, "a tree's task ended otherwise than its root node");
  }
  return 0;
}

// evflow — detail::ChangeBatch: interest changes gathered for the backend.
//
// At most kMaxChangesPerApply changes go to one Backend::apply() call, from a fixed array:
// applying changes never allocates. Each change's outcome is handed to `record` as the
// batch is submitted; the first error `record` returns is kept for finish().
#pragma once

#include <cstddef>

#include "../platform/backend.hpp"

namespace evflow::detail {

class ChangeBatch {
 public:
  // Records the outcome of one applied change; returns an error for finish() to report.
  using Record = Error (*)(void* context, const InterestChange& change) noexcept;

  ChangeBatch(Backend& backend, Record record, void* context) noexcept
      : backend_(backend), record_(record), context_(context) {}
  ~ChangeBatch() { submit(); }
  ChangeBatch(const ChangeBatch&) = delete;
  ChangeBatch& operator=(const ChangeBatch&) = delete;

  void add(const InterestChange& change) noexcept {
    changes_[count_++] = change;
    if (count_ == kMaxChangesPerApply) submit();
  }
  // Applies what is left; the first error a record returned.
  Error finish() noexcept {
    submit();
    return first_error_;
  }

 private:
  void submit() noexcept {
    if (count_ == 0) return;
    backend_.apply(std::span<InterestChange>(changes_, count_));
    for (size_t i = 0; i < count_; ++i) {
      if (Error err = record_(context_, changes_[i]); err && !first_error_) first_error_ = err;
    }
    count_ = 0;
  }

  Backend& backend_;
  Record record_;
  void* context_;
  size_t count_ = 0;
  Error first_error_;
  InterestChange changes_[kMaxChangesPerApply];
};

}  // namespace evflow::detail

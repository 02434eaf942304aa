#include "reactor/callback.hpp"

#include <gtest/gtest.h>

#include <memory>

namespace evflow {
namespace {

TEST(InlineCallback, InvokesWithTheWatchersArguments) {
  detail::InlineCallback<void(int, int)> cb;
  EXPECT_FALSE(cb);
  int sum = 0;
  cb.emplace([&sum](int a, int b) { sum = a + b; });
  ASSERT_TRUE(cb);
  cb(2, 3);
  EXPECT_EQ(sum, 5);
}

TEST(InlineCallback, AcceptsACallableWithoutArguments) {
  detail::InlineCallback<void(int)> cb;
  int calls = 0;
  cb.emplace([&calls] { ++calls; });
  cb(7);
  EXPECT_EQ(calls, 1);
}

TEST(InlineCallback, AcceptsAPlainFunctionPointer) {
  static int calls = 0;
  detail::InlineCallback<void()> cb;
  cb.emplace(+[] { ++calls; });
  cb();
  EXPECT_EQ(calls, 1);
}

TEST(InlineCallback, DestroysTheCapturesOnResetReplaceAndDestruction) {
  auto token = std::make_shared<int>(0);
  {
    detail::InlineCallback<void()> cb;
    cb.emplace([token] {});
    EXPECT_EQ(token.use_count(), 2);
    cb.emplace([] {});
    EXPECT_EQ(token.use_count(), 1) << "replacing destroys the old callable";
    cb.emplace([token] {});
    EXPECT_EQ(token.use_count(), 2);
    cb.reset();
    EXPECT_EQ(token.use_count(), 1);
    EXPECT_FALSE(cb);
    cb.emplace([token] {});
  }
  EXPECT_EQ(token.use_count(), 1) << "destruction destroys the callable";
}

TEST(InlineCallback, HoldsThreePointersOfCaptures) {
  int a = 0, b = 0, c = 0;
  detail::InlineCallback<void()> cb;
  cb.emplace([&a, &b, &c] { a = b = c = 1; });
  cb();
  EXPECT_EQ(a + b + c, 3);
  static_assert(kCallbackCapacity == 3 * sizeof(void*));
}

}  // namespace
}  // namespace evflow

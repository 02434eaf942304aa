#include "platform/result.hpp"

#include <gtest/gtest.h>

namespace evflow {
namespace {

TEST(Error, DefaultMeansSuccessAndIsFalse) {
  Error ok;
  EXPECT_FALSE(ok);
  EXPECT_EQ(ok.code(), 0);
  EXPECT_STREQ(ok.message(), "success");
}

TEST(Error, CarriesTheCodeAndDescribesIt) {
  Error err(EBADF);
  EXPECT_TRUE(err);
  EXPECT_EQ(err.code(), EBADF);
  EXPECT_STREQ(err.message(), std::strerror(EBADF));
  EXPECT_EQ(err, Error(EBADF));
  EXPECT_FALSE(err == Error(EPERM));
}

TEST(Result, HoldsAValueOrAnError) {
  Result<int> value = 42;
  ASSERT_TRUE(value.ok());
  EXPECT_EQ(value.value(), 42);
  EXPECT_FALSE(value.error());

  Result<int> failure = Error(EMFILE);
  EXPECT_FALSE(failure.ok());
  EXPECT_EQ(failure.error().code(), EMFILE);
  EXPECT_EQ(failure.value_or(-1), -1);
}

TEST(ResultDeathTest, ReadingTheValueOfAFailureAborts) {
  Result<int> failure = Error(EINVAL);
  EXPECT_DEATH((void)failure.value(), "value\\(\\) called on a failed Result");
}

}  // namespace
}  // namespace evflow

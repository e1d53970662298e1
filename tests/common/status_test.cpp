#include "common/status.h"

#include <gtest/gtest.h>

namespace tf {
namespace {

Result<int> half(int x) {
  if (x % 2) return invalidArgument("odd");
  return x / 2;
}

Status chain(int x) {
  auto r = half(x);
  if (!r) return r.status().withContext("halving");
  return Status::ok();
}

TEST(StatusTest, OkAndErrorCarryCodeAndMessage) {
  EXPECT_TRUE(Status::ok().isOk());
  Status s = notFound("no such module");
  EXPECT_FALSE(s.isOk());
  EXPECT_EQ(s.code(), Code::NotFound);
  EXPECT_EQ(s.toString(), "NOT_FOUND: no such module");
}

TEST(StatusTest, ResultHoldsValueOrStatus) {
  auto a = half(8);
  ASSERT_TRUE(a);
  EXPECT_EQ(*a, 4);
  auto b = half(3);
  ASSERT_FALSE(b);
  EXPECT_EQ(b.status().code(), Code::InvalidArgument);
  EXPECT_EQ(chain(3).message(), "halving: odd");
  EXPECT_TRUE(chain(2).isOk());
}

} // namespace
} // namespace tf

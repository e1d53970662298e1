#include "common/env.h"

#include <cstdlib>
#include <gtest/gtest.h>

namespace tf::env {
namespace {

TEST(EnvTest, BooleansAndIntegers) {
  setenv("TF_TEST_FLAG", "yes", 1);
  EXPECT_TRUE(*getBool("TF_TEST_FLAG", false));
  setenv("TF_TEST_FLAG", "0", 1);
  EXPECT_FALSE(*getBool("TF_TEST_FLAG", true));
  setenv("TF_TEST_FLAG", "maybe", 1);
  auto bad = getBool("TF_TEST_FLAG", true);
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.status().message().find("TF_TEST_FLAG"), std::string::npos);
  unsetenv("TF_TEST_FLAG");
  EXPECT_TRUE(*getBool("TF_TEST_FLAG", true));

  setenv("TF_TEST_INT", "0x10", 1);
  EXPECT_EQ(*getInt("TF_TEST_INT", 0), 16);
  setenv("TF_TEST_INT", "12abc", 1);
  EXPECT_FALSE(getInt("TF_TEST_INT", 0));
  unsetenv("TF_TEST_INT");
}

} // namespace
} // namespace tf::env

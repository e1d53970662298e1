#include "common/units.h"

#include <gtest/gtest.h>

namespace tf::units {
namespace {

TEST(UnitsTest, ParsesBinaryAndDecimalSuffixes) {
  EXPECT_EQ(*parseBytes("80GiB"), 80 * GiB);
  EXPECT_EQ(*parseBytes("512Mi"), 512 * MiB);
  EXPECT_EQ(*parseBytes("1.5Gi"), 3 * GiB / 2);
  EXPECT_EQ(*parseBytes("2G"), 2000000000ull);
  EXPECT_EQ(*parseBytes("4096"), 4096ull);
  EXPECT_EQ(*parseBytes(" 1 KiB "), 1024ull);
}

TEST(UnitsTest, RejectsBadSizesWithReason) {
  EXPECT_EQ(parseBytes("").status().code(), Code::InvalidArgument);
  EXPECT_NE(parseBytes("12XB").status().message().find("unknown unit"), std::string::npos);
  EXPECT_NE(parseBytes("-5").status().message().find("does not start with a number"),
            std::string::npos);
  EXPECT_FALSE(parseBytes("99999999999999999999TiB"));
}

TEST(UnitsTest, FormatsForPeople) {
  EXPECT_EQ(formatBytes(0), "0 B");
  EXPECT_EQ(formatBytes(80 * GiB), "80 GiB");
  EXPECT_EQ(formatBytes(1536 * KiB), "1.5 MiB");
}

} // namespace
} // namespace tf::units

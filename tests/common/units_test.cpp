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

namespace tf::units {
TEST(Units, ParsesDurationsAsGoWritesThem) {
  EXPECT_EQ(*parseDurationMs("0"), 0u);
  EXPECT_EQ(*parseDurationMs("90s"), 90000u);
  EXPECT_EQ(*parseDurationMs("5m"), 300000u);
  EXPECT_EQ(*parseDurationMs("1h30m"), 5400000u);
  EXPECT_EQ(*parseDurationMs("1.5h"), 5400000u);
  EXPECT_EQ(*parseDurationMs("250ms"), 250u);
  EXPECT_EQ(*parseDurationMs("1500us"), 2u);
  for (const char* bad : {"", "5", "m", "5x", "-5s", "5s3", "1e400h", "s5"})
    EXPECT_FALSE(parseDurationMs(bad).isOk()) << bad;
}
}  // namespace tf::units

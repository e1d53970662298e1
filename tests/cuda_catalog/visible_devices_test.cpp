#include "cuda/visible_devices.h"

#include <gtest/gtest.h>

namespace tf::cuda {
namespace {

const std::vector<std::string> kBoard = {"GPU-0a1b2c3d-0000-0000-0000-000000000000",
                                         "GPU-8f2e0000-0000-0000-0000-000000000001",
                                         "GPU-8f3a0000-0000-0000-0000-000000000002"};

std::vector<int> seen(std::string_view list) { return selectVisibleDevices(list, kBoard); }

TEST(VisibleDevicesTest, IndicesAndUuidsInTheOrderGiven) {
  EXPECT_EQ(seen("0,1,2"), (std::vector<int>{0, 1, 2}));
  EXPECT_EQ(seen("2,0"), (std::vector<int>{2, 0}));
  EXPECT_EQ(seen(" 1 , 0 "), (std::vector<int>{1, 0}));
  EXPECT_EQ(seen("GPU-8f3a0000-0000-0000-0000-000000000002,0"), (std::vector<int>{2, 0}));
  EXPECT_EQ(seen("gpu-0A1B"), (std::vector<int>{0}));  // a unique prefix, any case
}

TEST(VisibleDevicesTest, TheListEndsAtTheFirstEntryThatNamesNoNewDevice) {
  EXPECT_EQ(seen("1,7,0"), (std::vector<int>{1}));   // out of range
  EXPECT_EQ(seen("0,-1,1"), (std::vector<int>{0}));  // "-1": the usual way to hide the rest
  EXPECT_EQ(seen("0,0,1"), (std::vector<int>{0}));   // named twice
  EXPECT_EQ(seen("2,GPU-8f,0"), (std::vector<int>{2}));  // a prefix of two devices
  EXPECT_EQ(seen("0,GPU-ffff"), (std::vector<int>{0}));  // no such UUID
  EXPECT_EQ(seen("1,"), (std::vector<int>{1}));
  EXPECT_EQ(seen("0,MIG-1234"), (std::vector<int>{0}));
}

TEST(VisibleDevicesTest, AnEmptyOrUselessListShowsNothing) {
  EXPECT_TRUE(seen("").empty());
  EXPECT_TRUE(seen("  ").empty());
  EXPECT_TRUE(seen("-1").empty());
  EXPECT_TRUE(seen("GPU-").empty());
  EXPECT_TRUE(selectVisibleDevices("0", {}).empty());
}

}  // namespace
}  // namespace tf::cuda

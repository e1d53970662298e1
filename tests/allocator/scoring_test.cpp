#include <gtest/gtest.h>

#include "allocator/scoring.h"

namespace tf::allocator {
namespace {

// Capacity 100 TFLOPS / 100 GiB; available 40 TFLOPS / 75 GiB:
// ta = 40, va = 75, tu = 60, vu = 25.
const Amount kCap{100000, 100LL << 30};
const Amount kAvail{40000, 75LL << 30};

TEST(Scoring, CompactFirstScoresUsed) {
  // norm(vu, tu) = round(25*0.7 + 60*0.3) = round(35.5) = 36
  EXPECT_EQ(gpuScore(Placement::CompactFirst, kCap, kAvail, true), 36);
  EXPECT_EQ(gpuScore(Placement::CompactFirst, kCap, kAvail, false), 36);
}

TEST(Scoring, LowLoadFirstScoresAvailable) {
  // norm(va, ta) = round(75*0.7 + 40*0.3) = round(64.5) = 65 (half away from zero, as Go)
  EXPECT_EQ(gpuScore(Placement::LowLoadFirst, kCap, kAvail, true), 65);
  EXPECT_EQ(gpuScore(Placement::LowLoadFirst, kCap, kAvail, false), 65);
}

TEST(Scoring, NodeCompactGpuLowLoadSplitsByLevel) {
  EXPECT_EQ(gpuScore(Placement::NodeCompactGpuLowLoad, kCap, kAvail, true), 36);
  EXPECT_EQ(gpuScore(Placement::NodeCompactGpuLowLoad, kCap, kAvail, false), 65);
}

TEST(Scoring, BoundsAndEmptyCapacity) {
  EXPECT_EQ(gpuScore(Placement::LowLoadFirst, kCap, kCap, false), 100);
  EXPECT_EQ(gpuScore(Placement::CompactFirst, kCap, kCap, false), 0);
  // Over-booked (negative available) clamps to 100 used.
  EXPECT_EQ(gpuScore(Placement::CompactFirst, kCap, Amount{-10000, -1}, false), 100);
  EXPECT_EQ(gpuScore(Placement::LowLoadFirst, Amount{}, Amount{}, false), 0);
}

}  // namespace
}  // namespace tf::allocator

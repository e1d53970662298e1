// Reclaiming the slot of a process whose pid now belongs to another process (docs/limiter.md:
// "a reused pid with a different start time"), and keeping the slot of a live one.
#include <filesystem>
#include <unistd.h>

#include <gtest/gtest.h>

#include "limiter/quota_region.h"

namespace tf::limiter {
namespace {

class RegionReclaimTest : public ::testing::Test {
protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("tf-region-reclaim-" + std::to_string(getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
    VgpuSpec s;
    s.name = "reclaim";
    DeviceLimits d;
    d.vramLimit = 1 << 30;
    s.devices.push_back(d);
    auto r = QuotaRegion::create((dir_ / "region").string(), s);
    ASSERT_TRUE(r) << r.status().toString();
    region_ = std::move(*r);
  }
  void TearDown() override {
    region_.reset();
    std::filesystem::remove_all(dir_);
  }

  std::filesystem::path dir_;
  std::unique_ptr<QuotaRegion> region_;
};

TEST_F(RegionReclaimTest, ASlotWhosePidWasReusedIsReclaimedWhole) {
  // A slot claimed by "this pid" when it belonged to a process that started at another time:
  // the pid is alive (it is ours), but not that process any more.
  auto stale = region_->attachForTest(getpid(), 1);
  ASSERT_TRUE(stale) << stale.status().toString();
  ASSERT_TRUE(region_->reserve(*stale, 0, 300 << 20, Pool::Device));
  // This process's own slot, with memory of its own: live, so it stays.
  auto mine = region_->attach();
  ASSERT_TRUE(mine) << mine.status().toString();
  ASSERT_NE(*mine, *stale);
  ASSERT_TRUE(region_->reserve(*mine, 0, 100 << 20, Pool::Device));
  EXPECT_EQ(region_->used(0, Pool::Device), 400u << 20); // (processes() would reap first)

  EXPECT_EQ(region_->reapDead(), 1);
  EXPECT_EQ(region_->used(0, Pool::Device), 100u << 20); // the stale slot's 300 MiB came back
  auto procs = region_->processes();
  ASSERT_EQ(procs.size(), 1u);
  EXPECT_EQ(procs[0].pid, getpid());
  EXPECT_EQ(procs[0].vram[0], 100u << 20);
  EXPECT_EQ(region_->reapDead(), 0); // nothing else to reclaim, and the live slot is kept
  EXPECT_EQ(region_->used(0, Pool::Device), 100u << 20);
  // attach() finds its own slot again, not the reclaimed one.
  auto again = region_->attach();
  ASSERT_TRUE(again);
  EXPECT_EQ(*again, *mine);
}

} // namespace
} // namespace tf::limiter

#include "limiter/quota_region.h"

#include <atomic>
#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <random>
#include <sys/mman.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

#include <gtest/gtest.h>

namespace tf::limiter {
namespace {

class QuotaRegionTest : public ::testing::Test {
protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("tf-region-test-" + std::to_string(getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
    path_ = (dir_ / "region").string();
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  VgpuSpec spec(uint64_t vram, uint32_t bp = 10000, uint64_t host = 0) {
    VgpuSpec s;
    s.name = "test";
    DeviceLimits d;
    d.vramLimit = vram;
    d.computeBasisPoints = bp;
    d.hostAllowance = host;
    s.devices.push_back(d);
    return s;
  }

  std::filesystem::path dir_;
  std::string path_;
};

TEST_F(QuotaRegionTest, CreateThenOpenSeesTheSameLimits) {
  auto created = QuotaRegion::create(path_, spec(1 << 30, 3000, 1 << 20));
  ASSERT_TRUE(created) << created.status().toString();
  auto opened = QuotaRegion::open(path_);
  ASSERT_TRUE(opened) << opened.status().toString();
  EXPECT_EQ((*opened)->name(), "test");
  EXPECT_EQ((*opened)->deviceCount(), 1);
  EXPECT_EQ((*opened)->limits(0).vramLimit, 1u << 30);
  EXPECT_EQ((*opened)->limits(0).computeBasisPoints, 3000u);
  EXPECT_EQ((*opened)->limits(0).hostAllowance, 1u << 20);
  EXPECT_EQ(QuotaRegion::create(path_, spec(1)).status().code(), Code::AlreadyExists);
}

TEST_F(QuotaRegionTest, BadRegionsAreClearErrors) {
  EXPECT_EQ(QuotaRegion::open(path_).status().code(), Code::NotFound);
  { std::ofstream(path_) << "garbage that is not a region at all"; }
  auto r = QuotaRegion::open(path_);
  ASSERT_FALSE(r);
  EXPECT_NE(r.status().message().find("size"), std::string::npos) << r.status().message();
  std::filesystem::remove(path_);
  ASSERT_TRUE(QuotaRegion::create(path_, spec(1 << 20)));
  {
    std::fstream f(path_, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(8);
    uint32_t version = 99;
    f.write(reinterpret_cast<char*>(&version), 4); // another layout version
  }
  r = QuotaRegion::open(path_);
  ASSERT_FALSE(r);
  EXPECT_NE(r.status().message().find("version 99"), std::string::npos) << r.status().message();
  EXPECT_FALSE(QuotaRegion::create(dir_ / "x", spec(0))); // no VRAM
  EXPECT_FALSE(QuotaRegion::create(dir_ / "y", spec(1, 0)));
  EXPECT_FALSE(QuotaRegion::create(dir_ / "z", spec(1, 10001)));
}

TEST_F(QuotaRegionTest, ReservationsStopAtTheLimitAndComeBack) {
  auto r = std::move(*QuotaRegion::create(path_, spec(1000)));
  int slot = *r->attach();
  EXPECT_TRUE(r->reserve(slot, 0, 600, Pool::Device));
  EXPECT_EQ(r->reserve(slot, 0, 600, Pool::Device).code(), Code::ResourceExhausted);
  EXPECT_TRUE(r->reserve(slot, 0, 400, Pool::Device));
  EXPECT_EQ(r->used(0, Pool::Device), 1000u);
  r->release(slot, 0, 600, Pool::Device);
  EXPECT_EQ(r->used(0, Pool::Device), 400u);
  EXPECT_EQ(r->reserve(slot, 0, 1, Pool::Host).code(), Code::ResourceExhausted); // no allowance
  r->release(slot, 0, 10'000, Pool::Device); // over-release clamps at zero, no underflow
  EXPECT_EQ(r->used(0, Pool::Device), 0u);
  EXPECT_FALSE(r->reserve(slot, 5, 1, Pool::Device));
}

// N processes hammer one limit; a shared counter of what they actually hold must never pass it.
TEST_F(QuotaRegionTest, ConcurrentProcessesNeverPassTheLimit) {
  constexpr uint64_t kLimit = 1 << 20;
  ASSERT_TRUE(QuotaRegion::create(path_, spec(kLimit)));
  auto* shared = static_cast<std::atomic<int64_t>*>(
      mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0));
  new (&shared[0]) std::atomic<int64_t>(0); // held now
  new (&shared[1]) std::atomic<int64_t>(0); // worst seen
  new (&shared[2]) std::atomic<int64_t>(0); // successes
  constexpr int kProcs = 8, kRounds = 3000;
  std::vector<pid_t> kids;
  for (int p = 0; p < kProcs; ++p) {
    pid_t pid = fork();
    if (pid == 0) {
      auto r = QuotaRegion::open(path_);
      if (!r) _exit(3);
      int slot = *(*r)->attach();
      std::mt19937 rng(p);
      std::uniform_int_distribution<uint64_t> size(1, kLimit / 3);
      for (int i = 0; i < kRounds; ++i) {
        uint64_t n = size(rng);
        if (!(*r)->reserve(slot, 0, n, Pool::Device)) continue;
        int64_t now = shared[0].fetch_add(static_cast<int64_t>(n)) + static_cast<int64_t>(n);
        int64_t worst = shared[1].load();
        while (now > worst && !shared[1].compare_exchange_weak(worst, now)) {
        }
        shared[2].fetch_add(1);
        shared[0].fetch_sub(static_cast<int64_t>(n));
        (*r)->release(slot, 0, n, Pool::Device);
      }
      _exit(0);
    }
    kids.push_back(pid);
  }
  for (pid_t k : kids) {
    int st = 0;
    waitpid(k, &st, 0);
    EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  }
  EXPECT_LE(shared[1].load(), static_cast<int64_t>(kLimit));
  EXPECT_GT(shared[2].load(), kProcs * kRounds / 2); // allocations that fit did succeed
  auto r = QuotaRegion::open(path_);
  EXPECT_EQ((*r)->used(0, Pool::Device), 0u);
  munmap(shared, 4096);
}

// A process killed at any point, even mid-reservation, leaves nothing charged once reaped.
TEST_F(QuotaRegionTest, KilledProcessesLeakNothing) {
  ASSERT_TRUE(QuotaRegion::create(path_, spec(1 << 30)));
  // Each child says when it has attached, so every kill lands while it holds a slot (on a
  // loaded machine a child may otherwise not run at all before it is killed).
  auto* attached = static_cast<std::atomic<int>*>(
      mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0));
  ASSERT_NE(static_cast<void*>(attached), MAP_FAILED);
  new (attached) std::atomic<int>(0);
  std::mt19937 rng(7);
  const int kRounds = 40;
  for (int round = 0; round < kRounds; ++round) {
    pid_t pid = fork();
    if (pid == 0) {
      auto r = QuotaRegion::open(path_);
      int slot = *(*r)->attach();
      attached->fetch_add(1);
      for (uint64_t i = 0;; ++i) {
        (void)(*r)->reserve(slot, 0, 4096 + i % 8192, Pool::Device);
        if (i % 3 == 0) (*r)->release(slot, 0, 4096, Pool::Device);
      }
    }
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (attached->load() <= round && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::microseconds(50));
    std::this_thread::sleep_for(std::chrono::microseconds(rng() % 3000));
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
  }
  EXPECT_EQ(attached->load(), kRounds);
  munmap(attached, 4096);
  auto r = std::move(*QuotaRegion::open(path_));
  EXPECT_EQ(r->reapDead(), kRounds); // every killed process left its slot behind
  EXPECT_EQ(r->used(0, Pool::Device), 0u);
  EXPECT_TRUE(r->processes().empty());
}

// Waits until the bucket lets a launch go; returns the seconds waited.
double waitForTokens(QuotaRegion& r) {
  auto start = std::chrono::steady_clock::now();
  while (r.throttleNs(0) != 0 && std::chrono::steady_clock::now() - start < std::chrono::seconds(30))
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

TEST_F(QuotaRegionTest, ComputeBucketThrottlesAtTheShare) {
  VgpuSpec s = spec(1 << 20, 2500); // 25%
  s.windowNs = 20'000'000;
  auto r = std::move(*QuotaRegion::create(path_, s));
  EXPECT_EQ(r->throttleNs(0), 0u); // starts with a window's worth (5 ms at 25%)
  // One kernel of 100 ms, five windows: the debt is paid back in full, (100 - 5) ms at 0.25 ns
  // per ns, however long the kernel (a bound of one window would let it go after ~80 ms).
  r->charge(0, 100'000'000, 1);
  EXPECT_GT(r->throttleNs(0), 0u);
  const double waited = waitForTokens(*r);
  EXPECT_GT(waited, 0.36);
  // No wall-clock ceiling (a loaded machine oversleeps); waitForTokens gives up at 30 s.
  EXPECT_LT(waited, 30.0) << "the debt was never repaid";
  EXPECT_EQ(r->usage(0).busyNs, 100'000'000u);
  ASSERT_TRUE(r->setComputeBasisPoints(0, 10000));
  r->charge(0, 1'000'000'000, 1);
  EXPECT_EQ(r->throttleNs(0), 0u); // unlimited never waits
  EXPECT_FALSE(r->setComputeBasisPoints(0, 0));
}

// Time refilled while a long kernel runs is not lost to the bucket's cap: the cap grows by the
// longest kernel seen, so a 100 ms kernel that started on an empty bucket at 25% is charged its
// 75 ms net only.
TEST_F(QuotaRegionTest, RefillDuringALongKernelIsNotCappedAway) {
  VgpuSpec s = spec(1 << 20, 2500);
  s.windowNs = 20'000'000;
  auto r = std::move(*QuotaRegion::create(path_, s));
  r->charge(0, 5'000'000, 1);     // empty the bucket (5 ms at 25% of 20 ms)
  r->charge(0, 100'000'000, 1);   // learn a 100 ms kernel, then pay for it
  waitForTokens(*r);              // the bucket is just positive again
  std::this_thread::sleep_for(std::chrono::milliseconds(100)); // a 100 ms kernel runs...
  EXPECT_EQ(r->throttleNs(0), 0u); // ...while another thread asks (refilling 25 ms, cap 30 ms)
  r->charge(0, 100'000'000, 1);    // it finishes: 25 - 100 = -75 ms, repaid in 300 ms
  EXPECT_GT(r->throttleNs(0), 0u);
  std::this_thread::sleep_for(std::chrono::milliseconds(330));
  EXPECT_EQ(r->throttleNs(0), 0u); // a cap of 5 ms would have left -95 ms: 380 ms to repay
}

// Time used while the quota controller lent the vGPU the whole device is not debt once the
// share shrinks back: the change credits the time before it at the old share (up to the cap, a
// window plus the longest kernel).
TEST_F(QuotaRegionTest, LentTimeIsNotDebtAfterTheShareShrinks) {
  VgpuSpec s = spec(1 << 20, 2500);
  s.windowNs = 20'000'000;
  auto r = std::move(*QuotaRegion::create(path_, s));
  ASSERT_TRUE(r->setComputeBasisPoints(0, 10000));
  r->charge(0, 60'000'000, 1); // a 60 ms kernel at the whole device's share
  std::this_thread::sleep_for(std::chrono::milliseconds(140)); // refills to its cap, 80 ms
  ASSERT_TRUE(r->setComputeBasisPoints(0, 2500));
  r->charge(0, 60'000'000, 1); // another, run while lent, charged after the share shrank
  EXPECT_EQ(r->throttleNs(0), 0u); // credited at 25% instead, it would be 65 ms in debt
}

TEST(ComputeLimitTest, PercentAndTflops) {
  EXPECT_EQ(*parseComputeLimit("30%", 0), 3000u);
  EXPECT_EQ(*parseComputeLimit("12.5", 0), 1250u);
  EXPECT_EQ(*parseComputeLimit("100TFLOPS", 1000), 1000u);
  EXPECT_FALSE(parseComputeLimit("100tflops", 0));  // no rating to convert with
  EXPECT_FALSE(parseComputeLimit("150%", 0));
  EXPECT_FALSE(parseComputeLimit("-3%", 0));
  EXPECT_FALSE(parseComputeLimit("lots", 0));
  EXPECT_FALSE(parseComputeLimit("30 parsecs", 0));
}

} // namespace
} // namespace tf::limiter

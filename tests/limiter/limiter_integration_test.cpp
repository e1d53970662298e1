// Real CUDA programs (nvcc, real cudart) run on the soft GPU with the limiter preloaded, each in
// a vGPU made for the test.
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

#include <gtest/gtest.h>

#include "limiter/quota_region.h"
#include "support/child_process.h"

namespace tf::limiter {
namespace {

namespace fs = std::filesystem;

using test::Child;

class LimiterIntegrationTest : public ::testing::Test {
protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("tf-limiter-it-" + std::to_string(getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_ / "state");
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string makeVgpu(const std::string& name, uint64_t vram, uint32_t bp, uint64_t host = 0) {
    VgpuSpec s;
    s.name = name;
    DeviceLimits d;
    d.vramLimit = vram;
    d.computeBasisPoints = bp;
    d.hostAllowance = host;
    s.devices.push_back(d);
    std::string path = (dir_ / ("vgpu-" + name)).string();
    auto r = QuotaRegion::create(path, s);
    EXPECT_TRUE(r) << r.status().toString();
    return path;
  }

  Child spawn(const std::string& program, std::vector<std::string> args,
              std::map<std::string, std::string> env) {
    env["LD_LIBRARY_PATH"] = TF_LIB_DIR;
    env["LD_PRELOAD"] = std::string(TF_LIB_DIR) + "/libtensor-fusion-limiter.so";
    env["TF_SOFTGPU_STATE_DIR"] = (dir_ / "state").string();
    env["TF_SOFTGPU_NODE"] = "limiter-it";
    Child c = test::spawnChild(program, std::move(args), env, dir_ / ("out-" + std::to_string(counter_++)));
    EXPECT_GT(c.pid, 0) << program;
    return c;
  }

  fs::path dir_;
  int counter_ = 0;
};

constexpr uint64_t MiB = 1 << 20;

TEST_F(LimiterIntegrationTest, EveryAllocationPathIsChargedAndInfoShowsTheVgpu) {
  auto region = makeVgpu("mem", 256 * MiB, 10000);
  Child c = spawn(TF_LIMITER_MEMORY, {}, {{"TF_VGPU_REGION", region}});
  EXPECT_EQ(c.wait(), 0) << c.output();
  auto spillRegion = makeVgpu("spill", 256 * MiB, 10000, 128 * MiB);
  Child s = spawn(TF_LIMITER_MEMORY, {"spill"}, {{"TF_VGPU_REGION", spillRegion}});
  EXPECT_EQ(s.wait(), 0) << s.output();
}

TEST_F(LimiterIntegrationTest, MissingOrCorruptRegionRefusesToRunUnlimited) {
  Child none = spawn(TF_LIMITER_MEMORY, {}, {{"TF_VGPU_REGION", ""}});
  EXPECT_NE(none.wait(), 0);
  EXPECT_NE(none.output().find("TF_VGPU_REGION is not set"), std::string::npos) << none.output();
  auto bad = dir_ / "corrupt";
  std::ofstream(bad) << "not a region";
  Child corrupt = spawn(TF_LIMITER_MEMORY, {}, {{"TF_VGPU_REGION", bad.string()}});
  EXPECT_NE(corrupt.wait(), 0);
  EXPECT_NE(corrupt.output().find("Refusing to run unlimited"), std::string::npos) << corrupt.output();
  auto region = makeVgpu("ok", 256 * MiB, 10000);
  Child badSource = spawn(TF_LIMITER_MEMORY, {}, {{"TF_VGPU_REGION", region}, {"TF_LIMITER_TIME_SOURCE", "sundial"}});
  EXPECT_NE(badSource.wait(), 0);
  EXPECT_NE(badSource.output().find("TF_LIMITER_TIME_SOURCE='sundial'"), std::string::npos) << badSource.output();
}

TEST_F(LimiterIntegrationTest, ManyProcessesRacingNeverPassTheLimit) {
  const uint64_t limit = 256 * MiB;
  auto region = makeVgpu("race", limit, 10000);
  std::vector<Child> kids;
  for (int p = 0; p < 8; ++p)
    kids.push_back(spawn(TF_VRAM_RACE, {"2000", std::to_string(limit), std::to_string(p + 1)},
                         {{"TF_VGPU_REGION", region}}));
  for (auto& k : kids) EXPECT_EQ(k.wait(), 0) << k.output();
  auto r = QuotaRegion::open(region);
  ASSERT_TRUE(r);
  EXPECT_EQ((*r)->used(0, Pool::Device), 0u); // everything freed or reclaimed
}

class ComputeShareTest : public LimiterIntegrationTest {
protected:
  // Each vGPU (compute share in basis points, synchronise after every launch?) runs one
  // saturating program for `seconds`; returns each vGPU's share of the device's time as the
  // soft GPU measured it. timeSource: "auto" (the soft GPU's accounting) or "events" (CUDA
  // events, as on NVIDIA's driver).
  std::vector<double> shares(std::vector<std::pair<uint32_t, bool>> vgpus, double seconds,
                             const std::string& timeSource = "auto") {
    std::vector<std::string> regions;
    for (size_t i = 0; i < vgpus.size(); ++i)
      regions.push_back(makeVgpu("c" + std::to_string(i), 1024 * MiB, vgpus[i].first));
    std::vector<Child> kids;
    auto begin = std::chrono::steady_clock::now();
    for (size_t i = 0; i < vgpus.size(); ++i)
      // Timing mode: kernels hold the device for 100 ns per thread (0.8 to 13 ms for these
      // grids) without burning the CPU. The soft GPU's synchronise round trip (two thread
      // wake-ups, ~50 us) is then as small beside a kernel as a real GPU's is.
      kids.push_back(spawn(TF_COMPUTE_LOAD, {std::to_string(seconds), vgpus[i].second ? "sync" : "async"},
                           {{"TF_VGPU_REGION", regions[i]}, {"TF_SOFTGPU_THREAD_TIME_NS", "100"},
                            {"TF_LIMITER_TIME_SOURCE", timeSource}}));
    for (auto& k : kids) EXPECT_EQ(k.wait(), 0) << k.output();
    double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - begin).count();
    std::vector<double> out;
    for (size_t i = 0; i < regions.size(); ++i) {
      auto r = QuotaRegion::open(regions[i]);
      out.push_back(r ? (*r)->usage(0).busyNs / 1e9 / wall : -1);
      printf("vGPU %zu: limit %.0f%% (%s launches), measured share %.1f%%\n", i,
             vgpus[i].first / 100.0, vgpus[i].second ? "synchronised" : "asynchronous",
             out.back() * 100);
    }
    return out;
  }
};

TEST_F(ComputeShareTest, ThirtySeventySplitHolds) {
  auto s = shares({{3000, false}, {7000, true}}, 10);
  EXPECT_NEAR(s[0], 0.30, 0.03);
  EXPECT_NEAR(s[1], 0.70, 0.03);
}

TEST_F(ComputeShareTest, TenNinetySplitHolds) {
  auto s = shares({{1000, true}, {9000, false}}, 10);
  EXPECT_NEAR(s[0], 0.10, 0.03);
  EXPECT_NEAR(s[1], 0.90, 0.03);
}

// The time source used over NVIDIA's driver (events around each limited launch), exercised on
// the soft GPU, which times events like a GPU does.
TEST_F(ComputeShareTest, EventTimedSplitHolds) {
  auto s = shares({{3000, false}, {7000, true}}, 10, "events");
  EXPECT_NEAR(s[0], 0.30, 0.03);
  EXPECT_NEAR(s[1], 0.70, 0.03);
}

TEST_F(ComputeShareTest, AloneAtThirtyGetsThirtyNotMore) {
  auto s = shares({{3000, false}}, 10);
  EXPECT_NEAR(s[0], 0.30, 0.03);
}

} // namespace
} // namespace tf::limiter

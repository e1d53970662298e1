// The quota controller with real workloads: a 30% vGPU (limit 100%) and a 70% vGPU share one
// soft GPU; when the 70% one goes idle the other borrows its time, and gives it back within a
// second when it returns. Kernels run in the soft GPU's timing mode (no CPU burnt).
#include <chrono>
#include <filesystem>
#include <thread>
#include <unistd.h>

#include <gtest/gtest.h>

#include "hypervisor/hypervisor.h"
#include "support/child_process.h"

namespace tf::hypervisor {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

class QuotaControllerE2eTest : public ::testing::Test {
protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("tf-qc-e2e-" + std::to_string(getpid()));
    fs::create_directories(dir_ / "softgpu");
    setenv("TF_SOFTGPU_STATE_DIR", (dir_ / "softgpu").c_str(), 1);
    setenv("TF_SOFTGPU_DEVICES", "H100", 1);
    HypervisorOptions o;
    o.stateDir = (dir_ / "state").string();
    o.regionDir = (dir_ / "regions").string();
    o.tickMs = 100;
    hv_ = std::make_unique<Hypervisor>(o);
    ASSERT_TRUE(hv_->start());
  }
  void TearDown() override {
    hv_.reset();
    fs::remove_all(dir_);
  }
  Vgpu grant(const std::string& name, double request, double limit) {
    VgpuRequest r;
    r.name = name;
    r.percentRequest = request;
    r.percentLimit = limit;
    r.vramRequest = r.vramLimit = 1ull << 30;
    auto v = hv_->createVgpu(r);
    EXPECT_TRUE(v) << v.status().toString();
    return *v;
  }
  test::Child load(const Vgpu& v, double seconds) {
    return test::spawnChild(TF_COMPUTE_LOAD, {std::to_string(seconds), "async"},
                            {{"LD_PRELOAD", std::string(TF_LIB_DIR) + "/libtensor-fusion-limiter.so"},
                             {"LD_LIBRARY_PATH", TF_LIB_DIR},
                             {"TF_VGPU_REGION", v.regionPath},
                             {"TF_SOFTGPU_THREAD_TIME_NS", "100"}},
                            dir_ / ("out-" + v.id + "-" + std::to_string(runs_++)));
  }
  // GPU seconds each vGPU used during [from, to) seconds after `start`.
  std::pair<double, double> shares(const Vgpu& a, const Vgpu& b, Clock::time_point start,
                                   double from, double to) {
    std::this_thread::sleep_until(start + std::chrono::duration<double>(from));
    auto a0 = hv_->usage(a.id).busyNs, b0 = hv_->usage(b.id).busyNs;
    std::this_thread::sleep_until(start + std::chrono::duration<double>(to));
    auto a1 = hv_->usage(a.id).busyNs, b1 = hv_->usage(b.id).busyNs;
    double span = (to - from) * 1e9;
    return {(a1 - a0) / span, (b1 - b0) / span};
  }

  fs::path dir_;
  std::unique_ptr<Hypervisor> hv_;
  int runs_ = 0;
};

TEST_F(QuotaControllerE2eTest, IdleShareIsLentAndTakenBackWithinASecond) {
  Vgpu borrower = grant("borrower", 30, 100), owner = grant("owner", 70, 70);
  auto start = Clock::now();
  test::Child a = load(borrower, 10.5);
  test::Child b1 = load(owner, 3.5);
  auto busy = shares(borrower, owner, start, 1.0, 3.0);          // both busy
  auto lent = shares(borrower, owner, start, 4.5, 6.5);          // owner idle
  std::this_thread::sleep_until(start + std::chrono::duration<double>(7.0));
  test::Child b2 = load(owner, 3.5);                             // owner returns at ~7 s
  auto back = shares(borrower, owner, start, 8.2, 10.2);         // from 1.2 s after its return
  EXPECT_EQ(a.wait(), 0) << a.output();
  EXPECT_EQ(b1.wait(), 0) << b1.output();
  EXPECT_EQ(b2.wait(), 0) << b2.output();
  printf("both busy: %.1f%% / %.1f%%; owner idle: borrower %.1f%%; owner back: %.1f%% / %.1f%%\n",
         busy.first * 100, busy.second * 100, lent.first * 100, back.first * 100, back.second * 100);
  EXPECT_NEAR(busy.first, 0.30, 0.03);
  EXPECT_NEAR(busy.second, 0.70, 0.03);
  EXPECT_GT(lent.first, 0.85);  // borrows the idle 70% (its limit is 100%)
  EXPECT_NEAR(back.first, 0.30, 0.04);
  EXPECT_NEAR(back.second, 0.70, 0.04);
}

} // namespace
} // namespace tf::hypervisor

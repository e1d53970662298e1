// The quota controller with real workloads: a 30% vGPU (limit 100%) and a 70% vGPU share one
// soft GPU; when the 70% one goes idle the other borrows its time, and gives it back within a
// second when it returns. Kernels run in the soft GPU's timing mode (no CPU burnt).
#include <signal.h>

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
    return test::spawnChild(TF_COMPUTE_LOAD, {"async", std::to_string(seconds)},
                            {{"LD_PRELOAD", std::string(TF_LIB_DIR) + "/libtensor-fusion-limiter.so"},
                             {"LD_LIBRARY_PATH", TF_LIB_DIR},
                             {"TF_VGPU_REGION", v.regionPath},
                             {"TF_SOFTGPU_THREAD_TIME_NS", "100"}},
                            dir_ / ("out-" + v.id + "-" + std::to_string(runs_++)));
  }
  // Waits (up to 30 s: start-up is slow on a loaded machine) until `v`'s GPU time grows, i.e.
  // its workload is past start-up and running kernels; returns when it was seen.
  Clock::time_point running(const Vgpu& v) {
    const auto t0 = hv_->usage(v.id).busyNs;
    const auto deadline = Clock::now() + std::chrono::seconds(30);
    while (hv_->usage(v.id).busyNs == t0 && Clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    EXPECT_GT(hv_->usage(v.id).busyNs, t0) << v.id << " never ran a kernel";
    return Clock::now();
  }
  // The share of GPU time each vGPU used during [from, to) seconds after `start`.
  std::pair<double, double> shares(const Vgpu& a, const Vgpu& b, Clock::time_point start,
                                   double from, double to) {
    std::this_thread::sleep_until(start + std::chrono::duration<double>(from));
    auto t0 = Clock::now();
    auto a0 = hv_->usage(a.id).busyNs, b0 = hv_->usage(b.id).busyNs;
    std::this_thread::sleep_until(start + std::chrono::duration<double>(to));
    auto a1 = hv_->usage(a.id).busyNs, b1 = hv_->usage(b.id).busyNs;
    double span = std::chrono::duration<double, std::nano>(Clock::now() - t0).count();
    return {(a1 - a0) / span, (b1 - b0) / span};
  }

  fs::path dir_;
  std::unique_ptr<Hypervisor> hv_;
  int runs_ = 0;
};

// Every window is placed from what the workloads were seen doing (running, exited), not from
// when they were started: a loaded machine may take seconds to start a CUDA program.
TEST_F(QuotaControllerE2eTest, IdleShareIsLentAndTakenBackWithinASecond) {
  Vgpu borrower = grant("borrower", 30, 100), owner = grant("owner", 70, 70);
  test::Child a = load(borrower, 60); // until SIGTERM below
  test::Child b1 = load(owner, 3.0);
  running(borrower);
  auto both = running(owner);
  auto busy = shares(borrower, owner, both, 0.3, 2.3);           // both busy
  EXPECT_EQ(b1.wait(), 0) << b1.output();
  auto lent = shares(borrower, owner, Clock::now(), 1.0, 3.0);   // owner idle
  test::Child b2 = load(owner, 4.0);
  auto back = shares(borrower, owner, running(owner), 1.0, 3.0); // from 1 s after its return
  EXPECT_EQ(b2.wait(), 0) << b2.output();
  kill(a.pid, SIGTERM); // compute_load stops its loop and reports as if its time was up
  EXPECT_EQ(a.wait(), 0) << a.output();
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

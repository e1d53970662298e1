// A worker starts with a clean environment: the hypervisor's own settings for other programs
// (a soft GPU timing mode, a limiter's variables, a remote worker's address, a preload) do
// not reach it; what says which devices the node has does.
#include "hypervisor/worker_process.h"

#include <algorithm>

#include <gtest/gtest.h>

namespace tf::hypervisor {
namespace {

bool has(const std::vector<std::string>& env, const std::string& kv) {
  return std::find(env.begin(), env.end(), kv) != env.end();
}
bool named(const std::vector<std::string>& env, const std::string& name) {
  return std::any_of(env.begin(), env.end(),
                     [&](const std::string& e) { return e.rfind(name + "=", 0) == 0; });
}

TEST(WorkerEnvironment, KeepsDeviceIdentityDropsTheRest) {
  const char* parent[] = {"PATH=/usr/bin",
                          "HOME=/root",
                          "TF_SOFTGPU_DEVICES=H100:8GiB",
                          "TF_SOFTGPU_STATE_DIR=/tmp/state",
                          "TF_SOFTGPU_KERNEL_TIME_NS=1000",
                          "TF_SOFTGPU_THREAD_TIME_NS=5",
                          "TF_LIMITER_TIME_SOURCE=events",
                          "TF_REMOTE_WORKER=tcp://1.2.3.4:5",
                          "LD_PRELOAD=/evil.so",
                          "TF_VGPU_REGION=/other/region",
                          "CUDA_VISIBLE_DEVICES=1",
                          "MALFORMED",
                          nullptr};
  WorkerSpec spec;
  spec.regionPath = "/state/vgpu-1.region";
  spec.softGpu = true;
  auto env = workerEnvironment(spec, "/opt/tf/lib", parent);
  EXPECT_TRUE(has(env, "PATH=/usr/bin"));
  EXPECT_TRUE(has(env, "TF_SOFTGPU_DEVICES=H100:8GiB"));
  EXPECT_TRUE(has(env, "TF_SOFTGPU_STATE_DIR=/tmp/state"));
  EXPECT_TRUE(has(env, "CUDA_VISIBLE_DEVICES=1"));
  EXPECT_FALSE(named(env, "TF_SOFTGPU_KERNEL_TIME_NS"));
  EXPECT_FALSE(named(env, "TF_SOFTGPU_THREAD_TIME_NS"));
  EXPECT_FALSE(named(env, "TF_LIMITER_TIME_SOURCE"));
  EXPECT_FALSE(named(env, "TF_REMOTE_WORKER"));
  EXPECT_FALSE(has(env, "MALFORMED"));
  // Its own preload and region, once each.
  EXPECT_TRUE(has(env, "LD_PRELOAD=/opt/tf/lib/libtensor-fusion-limiter.so"));
  EXPECT_TRUE(has(env, "TF_VGPU_REGION=/state/vgpu-1.region"));
  EXPECT_EQ(std::count_if(env.begin(), env.end(),
                          [](const std::string& e) { return e.rfind("LD_PRELOAD=", 0) == 0; }),
            1);
  EXPECT_TRUE(has(env, "LD_LIBRARY_PATH=/opt/tf/lib")); // the soft GPU's driver
}

TEST(WorkerEnvironment, RealDriverKeepsTheLibraryPath) {
  const char* parent[] = {"LD_LIBRARY_PATH=/usr/local/nvidia/lib64", nullptr};
  WorkerSpec spec;
  spec.regionPath = "/r";
  auto env = workerEnvironment(spec, "/opt/tf/lib", parent);
  EXPECT_TRUE(has(env, "LD_LIBRARY_PATH=/usr/local/nvidia/lib64"));
  auto none = workerEnvironment(spec, "/opt/tf/lib", nullptr);
  EXPECT_FALSE(named(none, "LD_LIBRARY_PATH"));
  EXPECT_TRUE(named(none, "TF_VGPU_REGION"));
}

} // namespace
} // namespace tf::hypervisor

namespace tf::hypervisor {
namespace {
TEST(WorkerArguments, TiersOnlyWhenAskedAndTheAdminTokenNeverOnTheCommandLine) {
  WorkerSpec spec;
  spec.listen = "shm://tf-x";
  spec.token = "t";
  auto plain = workerArguments(spec, "/lib/libcuda.so.1");
  EXPECT_EQ(plain, (std::vector<std::string>{"worker", "--listen", "shm://tf-x", "--driver", "/lib/libcuda.so.1", "--token", "t"}));
  spec.tiers = true;
  spec.waitMs = 7000;
  spec.coldDir = "/var/cold";
  spec.adminToken = "secret";
  spec.freezeIdleMs = 300000;
  spec.coldAfterMs = 3300000;
  auto tiered = workerArguments(spec, "/lib/libcuda.so.1");
  auto at = [&](const std::string& flag) {
    auto it = std::find(tiered.begin(), tiered.end(), flag);
    return it == tiered.end() || it + 1 == tiered.end() ? std::string("<none>") : *(it + 1);
  };
  EXPECT_NE(std::find(tiered.begin(), tiered.end(), "--tiers"), tiered.end());
  EXPECT_EQ(at("--thaw-wait-ms"), "7000");
  EXPECT_EQ(at("--alloc-wait-ms"), "7000");
  EXPECT_EQ(at("--cold-dir"), "/var/cold");
  EXPECT_EQ(at("--freeze-idle-ms"), "300000");
  EXPECT_EQ(at("--cold-after-ms"), "3300000");
  EXPECT_EQ(std::find(tiered.begin(), tiered.end(), "secret"), tiered.end());
}
}  // namespace
}  // namespace tf::hypervisor

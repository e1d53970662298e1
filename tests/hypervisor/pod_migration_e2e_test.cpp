// A pod's hard vGPU moved to another GPU of its node, without a cluster: the hypervisor makes
// the vGPU from a pod's annotations as cluster mode does (vgpuRequestForPod), and the program
// runs as in the pod's container: in a mount namespace of its own where the pod's directory is
// mounted elsewhere (as the webhook mounts it) and the node's directory of pods is hidden. The
// program moves mid-run and finishes with every byte right; the new worker's socket and region
// are in the pod's directory, the name the pod's programs start with reaches the new worker,
// a second program that cannot move is served by the old worker to its end, then the old
// worker stops, the move is told (cluster mode patches the pod and posts an Event from
// there), and moving the pod's vGPU to another node is refused with the reason.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <sys/stat.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

#include "hypervisor/cluster/node_registrar.h"
#include "hypervisor/cluster/pod_vgpus.h"
#include "hypervisor/hypervisor.h"

namespace tf::hypervisor {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

std::string readFile(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

ino_t inode(const fs::path& p) {
  struct stat st {};
  return ::stat(p.c_str(), &st) == 0 ? st.st_ino : 0;
}

class PodMigration : public ::testing::Test {
protected:
  void SetUp() override {
    char tmpl[] = "/tmp/tf-pod-migration-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    mount_ = dir_ / "container" / "vgpu";
    fs::create_directories(dir_ / "softgpu");
    fs::create_directories(mount_);
    setenv("TF_SOFTGPU_STATE_DIR", (dir_ / "softgpu").c_str(), 1);
    setenv("TF_SOFTGPU_DEVICES", "H100:2GiB,H100:2GiB", 1);
    HypervisorOptions o;
    o.stateDir = (dir_ / "state").string();
    o.regionDir = (dir_ / "regions").string();
    o.tickMs = 100;
    o.tiers.enabled = true;
    h_ = std::make_unique<Hypervisor>(o);
    Status s = h_->start();
    ASSERT_TRUE(s.isOk()) << s.toString();
  }
  void TearDown() override {
    for (pid_t p : programs_) kill(p, SIGKILL), waitpid(p, nullptr, 0);
    if (h_) {
      for (const Vgpu& v : h_->vgpus()) (void)h_->deleteVgpu(v.id);
      h_->stop();
    }
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  // The pod's program, as its container sees the node: TF_REMOTE_WORKER and the token file at
  // the mount, the node's pod directory hidden.
  pid_t startInPod(const fs::path& podDir, const std::string& args, const fs::path& out) {
    const std::string script = "mount --bind '" + podDir.string() + "' '" + mount_.string() +
                               "' && mount -t tmpfs none '" + podRoot().string() + "' && exec " +
                               TF_MIGRATE_PROGRAM + " " + args + " > '" + out.string() + "' 2>&1";
    pid_t pid = fork();
    if (pid == 0) {
      setenv("LD_LIBRARY_PATH", TF_LIB_DIR "/remote", 1);
      setenv("TF_REMOTE_WORKER", ("shm://" + (mount_ / "worker.sock").string()).c_str(), 1);
      setenv("TF_REMOTE_TOKEN_FILE", (mount_ / "worker.token").c_str(), 1);
      execl("/usr/bin/unshare", "unshare", "-m", "sh", "-c", script.c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
    programs_.push_back(pid);
    return pid;
  }
  int waitProgram(pid_t pid) {
    int st = 0;
    waitpid(pid, &st, 0);
    std::erase(programs_, pid);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  }
  fs::path podRoot() const { return dir_ / "pods"; }

  fs::path dir_, mount_;  // mount_: where the container mounts the pod's directory
  std::unique_ptr<Hypervisor> h_;
  std::vector<pid_t> programs_;
};

TEST_F(PodMigration, APodsHardVgpuMovesToAnotherGpuOfItsNode) {
  const std::vector<GpuDevice> devices = h_->devices();
  ASSERT_EQ(devices.size(), 2u);
  const nlohmann::json pod = {
      {"metadata",
       {{"name", "app"},
        {"namespace", "team-a"},
        {"uid", "0f1e2d3c-0000-1111-2222-333344445555"},
        {"labels", {{"tensor-fusion.ai/component", "worker"}}},
        {"annotations",
         {{"tensor-fusion.ai/gpu-ids", gpuObjectName(devices[0].uuid)},
          {"tensor-fusion.ai/isolation", "hard"},
          {"tensor-fusion.ai/vram-limit", "512Mi"},
          {"tensor-fusion.ai/compute-percent-limit", "50"}}}}},
      {"status", {{"phase", "Running"}}}};
  auto want = vgpuRequestForPod(pod, devices, podRoot().string());
  ASSERT_TRUE(want.isOk() && want->has_value()) << want.status().toString();
  auto made = h_->createVgpu(**want);
  ASSERT_TRUE(made.isOk()) << made.status().toString();
  const fs::path podDir = fs::path(made->regionPath).parent_path();
  const int oldWorker = made->workerPid;
  std::vector<std::pair<std::string, std::string>> told;  // the vGPU, and where it went
  h_->onMoved([&](const Vgpu& v, const Hypervisor::Migration& m) { told.emplace_back(v.id, m.to); });

  const fs::path out = dir_ / "program.out";
  const pid_t program = startInPod(podDir, "64 12 300", out);
  bool running = false;
  for (int i = 0; i < 1200 && !running; ++i) {
    running = readFile(out).find("round 2\n") != std::string::npos;
    if (!running) std::this_thread::sleep_for(100ms);
  }
  ASSERT_TRUE(running) << readFile(out);
  // A second program that cannot move (a graph that allocates memory) stays with the old
  // worker, which must serve it to its end though the pod's name for its worker has moved on.
  const fs::path stayedOut = dir_ / "stayed.out";
  const pid_t stayed = startInPod(podDir, "16 40 200 allocgraph", stayedOut);  // outlasts the first
  running = false;
  for (int i = 0; i < 1200 && !running; ++i) {
    running = readFile(stayedOut).find("round 1\n") != std::string::npos;
    if (!running) std::this_thread::sleep_for(100ms);
  }
  ASSERT_TRUE(running) << readFile(stayedOut);

  auto moved = h_->migrateVgpu(made->id, "1");
  ASSERT_TRUE(moved.isOk()) << moved.status().toString();
  EXPECT_EQ(moved->clients, 2);
  EXPECT_EQ(moved->moved, 1) << (moved->failures.empty() ? "" : moved->failures.front());
  EXPECT_EQ(moved->to, devices[1].uuid);
  auto now = h_->vgpu(made->id);
  ASSERT_TRUE(now);
  EXPECT_EQ(now->devices.at(0).deviceUuid, devices[1].uuid);
  // Its region and worker stay in the pod's directory; the pod's name for its worker follows.
  EXPECT_EQ(now->regionPath, (podDir / "region-m1").string());
  EXPECT_EQ(now->workerAddress, "shm://" + (podDir / "worker-m1.sock").string());
  EXPECT_NE(inode(podDir / "worker.sock"), 0u);
  EXPECT_EQ(inode(podDir / "worker.sock"), inode(podDir / "worker-m1.sock"));
  ASSERT_EQ(told.size(), 1u);
  EXPECT_EQ(told[0], std::make_pair(made->id, devices[1].uuid));
  // Another node: refused, the pod's vGPU untouched.
  auto far = h_->migrateVgpu(made->id, "127.0.0.1:9");
  EXPECT_EQ(far.status().code(), Code::FailedPrecondition);
  EXPECT_NE(far.status().message().find("belongs to a pod"), std::string::npos) << far.status().message();

  EXPECT_EQ(waitProgram(program), 0) << readFile(out);
  EXPECT_NE(readFile(out).find("OK 64 MiB, 12 rounds"), std::string::npos) << readFile(out);
  EXPECT_EQ(waitProgram(stayed), 0) << readFile(stayedOut);
  EXPECT_NE(readFile(stayedOut).find("OK 16 MiB, 40 rounds"), std::string::npos) << readFile(stayedOut);
  bool stopped = false;
  for (int i = 0; i < 100 && !stopped; ++i) {
    stopped = !workerAlive(oldWorker);
    if (!stopped) std::this_thread::sleep_for(100ms);
  }
  EXPECT_TRUE(stopped) << "the old worker " << oldWorker << " is still running";
  // A program the pod starts now reaches the new worker by the name it always uses.
  const fs::path second = dir_ / "second.out";
  EXPECT_EQ(waitProgram(startInPod(podDir, "8 2 0", second)), 0) << readFile(second);
  EXPECT_NE(readFile(second).find("OK 8 MiB, 2 rounds"), std::string::npos) << readFile(second);
}

}  // namespace
}  // namespace tf::hypervisor

#include "hypervisor/worker_process.h"

#include "common/self_path.h"

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <limits.h>
#include <poll.h>
#include <random>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

namespace tf::hypervisor {

std::string newToken() {
  std::random_device rd;
  std::mt19937_64 rng((static_cast<uint64_t>(rd()) << 32) ^ rd());
  char buf[33];
  snprintf(buf, sizeof buf, "%016llx%016llx", static_cast<unsigned long long>(rng()),
           static_cast<unsigned long long>(rng()));
  return buf;
}

bool workerAlive(pid_t pid) {
  if (pid <= 0) return false;
  int st;
  if (waitpid(pid, &st, WNOHANG) == pid) return false; // our child, and it exited
  return kill(pid, 0) == 0;
}

void stopWorker(pid_t pid) {
  if (pid <= 0) return;
  kill(pid, SIGTERM);
  for (int i = 0; i < 100 && workerAlive(pid); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  if (!workerAlive(pid)) return;
  kill(pid, SIGKILL);
  // Reaped, not left a zombie (workerAlive reaps our child once it has died).
  for (int i = 0; i < 200 && workerAlive(pid); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(5));
}

std::vector<std::string> workerEnvironment(const WorkerSpec& spec, const std::string& libDir,
                                           const char* const* parent) {
  // Passed through: the basics, which devices a node has (real or soft), logging.
  static const char* const kKeep[] = {
      "PATH", "HOME", "USER", "LOGNAME", "TMPDIR", "LANG", "LC_ALL", "LC_CTYPE", "TZ",
      "CUDA_VISIBLE_DEVICES", "NVIDIA_VISIBLE_DEVICES", "TF_LOG_LEVEL", "TF_SOFTGPU_DEVICES",
      "TF_SOFTGPU_CONFIG", "TF_SOFTGPU_NODE", "TF_SOFTGPU_STATE_DIR"};
  std::vector<std::string> env;
  std::string libraryPath;
  for (const char* const* e = parent; e && *e; ++e) {
    std::string_view kv(*e);
    auto eq = kv.find('=');
    if (eq == std::string_view::npos) continue;
    std::string_view name = kv.substr(0, eq);
    if (name == "LD_LIBRARY_PATH") libraryPath = std::string(kv.substr(eq + 1));
    for (const char* k : kKeep)
      if (name == k) env.emplace_back(kv);
  }
  env.push_back("LD_PRELOAD=" + libDir + "/libtensor-fusion-limiter.so");
  env.push_back("TF_VGPU_REGION=" + spec.regionPath);
  // A soft GPU's driver is ours; a real one is found where the hypervisor's would be.
  if (spec.softGpu) env.push_back("LD_LIBRARY_PATH=" + libDir);
  else if (!libraryPath.empty()) env.push_back("LD_LIBRARY_PATH=" + libraryPath);
  return env;
}

std::vector<std::string> workerArguments(const WorkerSpec& spec, const std::string& driver) {
  std::vector<std::string> args = {"worker", "--listen", spec.listen, "--driver", driver, "--token", spec.token};
  if (spec.tiers) {
    args.insert(args.end(), {"--tiers", "--thaw-wait-ms", std::to_string(spec.waitMs), "--alloc-wait-ms",
                             std::to_string(spec.waitMs)});
    if (!spec.coldDir.empty()) args.insert(args.end(), {"--cold-dir", spec.coldDir});
    if (spec.freezeIdleMs) args.insert(args.end(), {"--freeze-idle-ms", std::to_string(spec.freezeIdleMs)});
    if (spec.freezeIdleMs && spec.coldAfterMs)
      args.insert(args.end(), {"--cold-after-ms", std::to_string(spec.coldAfterMs)});
  }
  return args;
}

Result<WorkerHandle> startWorker(const WorkerSpec& spec) {
  const std::string bin = selfDir() + "/tensor-fusion";
  const std::string lib = selfDir() + "/../lib";
  if (access(bin.c_str(), X_OK) != 0) return unavailable("no worker binary at " + bin);
  int out[2];
  if (pipe2(out, O_CLOEXEC) != 0) return internalError(std::string("pipe: ") + strerror(errno));
  const std::string driver = spec.softGpu ? lib + "/libcuda.so.1" : "libcuda.so.1";
  std::vector<std::string> env = workerEnvironment(spec, lib, environ);
  if (!spec.adminToken.empty()) env.push_back("TF_WORKER_ADMIN_TOKEN=" + spec.adminToken);
  std::vector<char*> envp;
  for (auto& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);
  pid_t pid = fork();
  if (pid < 0) return internalError(std::string("fork: ") + strerror(errno));
  if (pid == 0) {
    setsid(); // survives the hypervisor: its clients keep working if the hypervisor crashes
    dup2(out[1], 1);
    int log = open(spec.logPath.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (log >= 0) dup2(log, 2);
    std::vector<std::string> args = workerArguments(spec, driver);
    args.insert(args.begin(), bin);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    execve(bin.c_str(), argv.data(), envp.data());
    _exit(127);
  }
  close(out[1]);
  std::string line;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (line.find('\n') == std::string::npos && std::chrono::steady_clock::now() < deadline) {
    pollfd p{out[0], POLLIN, 0};
    if (poll(&p, 1, 100) <= 0) continue;
    char buf[256];
    ssize_t n = read(out[0], buf, sizeof buf);
    if (n <= 0) break;
    line.append(buf, static_cast<size_t>(n));
  }
  close(out[0]);
  const std::string prefix = "listening on ";
  auto at = line.find(prefix);
  if (at == std::string::npos) {
    stopWorker(pid);
    return unavailable("the worker for " + spec.vgpuId + " did not start (see " + spec.logPath + ")");
  }
  WorkerHandle h;
  h.pid = pid;
  h.address = line.substr(at + prefix.size(), line.find('\n', at) - at - prefix.size());
  return h;
}

} // namespace tf::hypervisor

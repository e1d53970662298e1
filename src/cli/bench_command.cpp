// `tensor-fusion bench softgpu|ptx|limiter|remoting`: runs a benchmark built beside this binary
// (<build>/bench/...). Each prints its figures beside baselines measured in the same run.
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli/commands.h"
#include "common/self_path.h"

namespace tf::cli {
namespace {

struct Bench {
  const char* name;
  const char* exe; // under <build>/bench/
  const char* what;
};
constexpr Bench kBenches[] = {
    {"softgpu", "softgpu/softgpu_bench", "soft GPU: sync call, copy bandwidth, launch rate, start-up"},
    {"ptx", "ptx/ptx_bench", "PTX engine: instruction throughput against native code"},
    {"limiter", "limiter/limiter_bench", "limiter: hooked-call overhead and start-up"},
    {"remoting", "remoting/bench_remoting", "GPU-over-IP: round trips, launch rate, bandwidth, start-up"},
};

int runBench(const std::string& name, const std::string& driver) {
  const std::string bin = selfDir(), build = bin + "/..", lib = build + "/lib";
  const Bench* b = nullptr;
  for (const Bench& x : kBenches)
    if (name == x.name) b = &x;
  if (!b) return 2; // CLI11 checked the name
  const std::string exe = build + "/bench/" + b->exe;
  if (access(exe.c_str(), X_OK) != 0) {
    fprintf(stderr, "tensor-fusion bench: %s is not built (%s); build the tree first\n", name.c_str(),
            exe.c_str());
    return 1;
  }
  std::vector<std::string> args = {exe};
  if (name == "limiter") args.insert(args.end(), {lib, exe});
  if (name == "remoting")
    args.insert(args.end(), {bin + "/tensor-fusion-worker", driver.empty() ? lib + "/libcuda.so.1" : driver,
                             lib + "/remote/libcuda.so.1"});
  char stateDir[] = "/tmp/tf-bench-XXXXXX";
  if (!mkdtemp(stateDir)) return 1;
  pid_t pid = fork();
  if (pid == 0) {
    if (name == "softgpu" || name == "limiter") setenv("LD_LIBRARY_PATH", lib.c_str(), 1);
    setenv("TF_SOFTGPU_STATE_DIR", stateDir, 1);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(exe.c_str(), argv.data());
    _exit(127);
  }
  int status = 1;
  if (pid > 0) waitpid(pid, &status, 0);
  std::string rm = std::string("rm -rf '") + stateDir + "'";
  (void)!system(rm.c_str());
  return pid > 0 && WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}

} // namespace

void addBenchCommand(CLI::App& app, int& exitCode) {
  static std::string name, driver;
  std::string help = "Run a benchmark built beside this binary; each figure is printed beside a "
                     "baseline measured in the same run:";
  std::vector<std::string> names;
  for (const Bench& b : kBenches) {
    help += std::string("\n  ") + b.name + ": " + b.what;
    names.push_back(b.name);
  }
  auto* cmd = app.add_subcommand("bench", help);
  cmd->add_option("name", name, "Which benchmark")->required()->check(CLI::IsMember(names));
  cmd->add_option("--driver", driver,
                  "remoting: the libcuda.so.1 the worker serves (default: the soft GPU)");
  cmd->callback([&exitCode] { exitCode = runBench(name, driver); });
}

} // namespace tf::cli

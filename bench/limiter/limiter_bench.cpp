// What the limiter costs an application, each figure beside its baseline measured in the same
// run: a hooked call that is not throttled (cuMemGetInfo, a kernel launch) through the
// limiter's hook and through the driver directly, and the start-up a process pays for the
// limiter (a process running cuInit + one allocation, with and without the limiter preloaded;
// then 8 such processes at once against the same 8 one after another, with and without the
// limiter: if the limiter serialised start-up, its "at once" would take as long as its "one
// after another", while without it the machine's cores overlap them).
// Every driver call is checked, in the timed loops too; any failure exits non-zero.
//
//   limiter_bench <lib dir> <path of this binary>      (the bench target passes both)
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <dlfcn.h>
#include <spawn.h>
#include <string>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

#include <cuda.h>

#include "limiter/quota_region.h"

extern char** environ;

namespace {

using Clock = std::chrono::steady_clock;
double nsSince(Clock::time_point t) { return std::chrono::duration<double, std::nano>(Clock::now() - t).count(); }

const char* kEmptyKernelPtx = R"(
.version 8.0
.target sm_80
.address_size 64
.visible .entry empty()
{
  ret;
}
)";

[[noreturn]] void fail(const char* what, int code) {
  fprintf(stderr, "limiter_bench: FAILED: %s (%d)\n", what, code);
  exit(1);
}
void check(CUresult r, const char* what) {
  if (r != CUDA_SUCCESS) fail(what, r);
}

template <typename F> double perCall(int n, F&& f) {
  auto t = Clock::now();
  for (int i = 0; i < n; ++i) f();
  return nsSince(t) / n;
}

// The child mode: what a short CUDA process does at start.
int child() {
  if (cuInit(0) != CUDA_SUCCESS) return 1;
  CUcontext ctx;
  if (cuDevicePrimaryCtxRetain(&ctx, 0) != CUDA_SUCCESS || cuCtxSetCurrent(ctx) != CUDA_SUCCESS) return 2;
  CUdeviceptr p;
  if (cuMemAlloc(&p, 1 << 20) != CUDA_SUCCESS) return 3;
  return cuMemFree(p) == CUDA_SUCCESS ? 0 : 4;
}

// Starts `count` child processes, all at once (concurrent) or each after the previous one
// exited, and returns the milliseconds until all have exited successfully.
double spawnMany(const std::string& self, int count, bool preload, const std::string& libDir,
                 const std::string& region, bool concurrent = true) {
  std::vector<std::string> env;
  for (char** e = environ; *e; ++e)
    if (strncmp(*e, "LD_PRELOAD=", 11) && strncmp(*e, "TF_VGPU_REGION=", 15)) env.push_back(*e);
  if (preload) {
    env.push_back("LD_PRELOAD=" + libDir + "/libtensor-fusion-limiter.so");
    env.push_back("TF_VGPU_REGION=" + region);
  }
  std::vector<char*> envp;
  for (auto& s : env) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::string arg0 = self, arg1 = "--child";
  char* argv[] = {arg0.data(), arg1.data(), nullptr};
  auto wait = [](pid_t pid) {
    int st;
    if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st)) fail("child", st);
  };
  auto t = Clock::now();
  std::vector<pid_t> pids(count);
  for (auto& pid : pids) {
    int e = posix_spawn(&pid, self.c_str(), nullptr, nullptr, argv, envp.data());
    if (e != 0) fail("posix_spawn", e);
    if (!concurrent) wait(pid);
  }
  if (concurrent)
    for (pid_t pid : pids) wait(pid);
  return nsSince(t) / 1e6;
}

} // namespace

int main(int argc, char** argv) {
  if (argc > 1 && !strcmp(argv[1], "--child")) return child();
  if (argc < 3) {
    fprintf(stderr, "usage: %s <lib dir> <self>\n", argv[0]);
    return 2;
  }
  const std::string libDir = argv[1], self = argv[2];
  char dir[] = "/tmp/tf-limiter-bench-XXXXXX";
  if (!mkdtemp(dir)) return 1;
  const std::string region = std::string(dir) + "/vgpu";
  setenv("TF_SOFTGPU_STATE_DIR", dir, 1);
  tf::limiter::VgpuSpec spec;
  spec.name = "bench";
  tf::limiter::DeviceLimits d;
  d.vramLimit = 8ull << 30;
  spec.devices.push_back(d);
  if (!tf::limiter::QuotaRegion::create(region, spec)) return 1;
  setenv("TF_VGPU_REGION", region.c_str(), 1);

  // The driver's functions, and the limiter's hooks for the same symbols, side by side.
  void* cuda = dlopen("libcuda.so.1", RTLD_NOW | RTLD_GLOBAL);
  void* lim = dlopen((libDir + "/libtensor-fusion-limiter.so").c_str(), RTLD_NOW);
  if (!cuda || !lim) {
    fprintf(stderr, "cannot load: %s\n", dlerror());
    return 1;
  }
  using MemGetInfo = CUresult (*)(size_t*, size_t*);
  using Launch = CUresult (*)(CUfunction, unsigned, unsigned, unsigned, unsigned, unsigned,
                              unsigned, unsigned, CUstream, void**, void**);
  auto realInfo = reinterpret_cast<MemGetInfo>(dlsym(cuda, "cuMemGetInfo_v2"));
  auto hookInfo = reinterpret_cast<MemGetInfo>(dlsym(lim, "cuMemGetInfo_v2"));
  auto realLaunch = reinterpret_cast<Launch>(dlsym(cuda, "cuLaunchKernel"));
  auto hookLaunch = reinterpret_cast<Launch>(dlsym(lim, "cuLaunchKernel"));
  auto hookInit = reinterpret_cast<CUresult (*)(unsigned)>(dlsym(lim, "cuInit"));
  if (!realInfo || !hookInfo || !realLaunch || !hookLaunch || !hookInit) {
    fprintf(stderr, "missing symbols: %s\n", dlerror());
    return 1;
  }
  check(hookInit(0), "cuInit through the limiter");
  CUcontext ctx;
  check(cuDevicePrimaryCtxRetain(&ctx, 0), "cuDevicePrimaryCtxRetain");
  check(cuCtxSetCurrent(ctx), "cuCtxSetCurrent");
  CUmodule mod;
  CUfunction fn;
  if (cuModuleLoadData(&mod, kEmptyKernelPtx) != CUDA_SUCCESS ||
      cuModuleGetFunction(&fn, mod, "empty") != CUDA_SUCCESS) {
    fprintf(stderr, "cannot load the empty kernel\n");
    return 1;
  }
  // Interleaved rounds, best of each side: the machine's other work only ever adds time.
  size_t f, t;
  auto best = [](int rounds, auto&& measure) {
    double b = 1e30;
    for (int i = 0; i < rounds; ++i) b = std::min(b, measure());
    return b;
  };
  double infoBase = 1e30, infoHooked = 1e30;
  for (int round = 0; round < 9; ++round) {
    infoBase = std::min(infoBase, perCall(200'000, [&] { check(realInfo(&f, &t), "cuMemGetInfo"); }));
    infoHooked = std::min(infoHooked, perCall(200'000, [&] { check(hookInfo(&f, &t), "hooked cuMemGetInfo"); }));
  }
  printf("cuMemGetInfo: driver %.1f ns, through the limiter %.1f ns, added %.1f ns (%.2fx)\n",
         infoBase, infoHooked, infoHooked - infoBase, infoHooked / infoBase);
  double launchBase = 1e30, launchHooked = 1e30;
  for (int round = 0; round < 9; ++round) {
    launchBase = std::min(launchBase, best(1, [&] {
      double v = perCall(5000, [&] {
        check(realLaunch(fn, 1, 1, 1, 32, 1, 1, 0, nullptr, nullptr, nullptr), "cuLaunchKernel");
      });
      check(cuCtxSynchronize(), "cuCtxSynchronize");
      return v;
    }));
    launchHooked = std::min(launchHooked, best(1, [&] {
      double v = perCall(5000, [&] {
        check(hookLaunch(fn, 1, 1, 1, 32, 1, 1, 0, nullptr, nullptr, nullptr), "hooked cuLaunchKernel");
      });
      check(cuCtxSynchronize(), "cuCtxSynchronize");
      return v;
    }));
  }
  printf("cuLaunchKernel (no compute limit): driver %.1f ns, through the limiter %.1f ns, added %.1f ns (%.2fx)\n",
         launchBase, launchHooked, launchHooked - launchBase, launchHooked / launchBase);

  const int starts = 20;
  double plain = 0, preloaded = 0;
  for (int i = 0; i < starts; ++i) {
    plain += spawnMany(self, 1, false, libDir, region);
    preloaded += spawnMany(self, 1, true, libDir, region);
  }
  printf("process start-up (cuInit + 1 MiB alloc, mean of %d): without limiter %.2f ms, with %.2f ms, added %.2f ms\n",
         starts, plain / starts, preloaded / starts, (preloaded - plain) / starts);
  // 8 at once against the same 8 one after another, interleaved, best of 3 rounds each.
  double atOnce[2] = {1e30, 1e30}, inTurn[2] = {1e30, 1e30};
  for (int round = 0; round < 3; ++round)
    for (int pre = 0; pre < 2; ++pre) {
      atOnce[pre] = std::min(atOnce[pre], spawnMany(self, 8, pre, libDir, region, true));
      inTurn[pre] = std::min(inTurn[pre], spawnMany(self, 8, pre, libDir, region, false));
    }
  printf("8 processes at once / the same 8 one after another (best of 3): without limiter %.1f / %.1f ms "
         "(%.2fx), with %.1f / %.1f ms (%.2fx); serialised start-up would make the limiter's ratio ~1.00 "
         "where the plain ratio is lower\n",
         atOnce[0], inTurn[0], atOnce[0] / inTurn[0], atOnce[1], inTurn[1], atOnce[1] / inTurn[1]);
  if (tf::Status s = tf::limiter::QuotaRegion::remove(region); !s) {
    fprintf(stderr, "limiter_bench: cannot remove %s: %s\n", region.c_str(), s.toString().c_str());
    return 1;
  }
  return 0;
}

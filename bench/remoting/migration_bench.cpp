// What moving a client to another worker costs it (remoting/worker/migration.h): a client with
// N MiB of device memory (default 1024) on worker A is moved to worker B, both on soft GPUs of
// their own on this machine; the pause is the longest call the client saw while it moved (its
// call held at the source, the contents sent and re-created, the reconnection, the call sent
// again). Beside it, in the same run: the same client sending the same bytes to its worker
// (cuMemcpyHtoD of N MiB), the baseline a move must be compared with.
//
//   migration_bench WORKER_BIN SOFTGPU_LIB STUB_LIB [MIB] [tcp|shm]
//   ninja -C build/<preset> migration_bench_run
#include <dlfcn.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include <cuda.h>

#include "remoting/tier_control.h"

namespace {

using Clock = std::chrono::steady_clock;
double ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

struct Worker {
  pid_t pid = -1;
  std::string address;
};

Worker startWorker(const char* bin, const char* lib, const std::string& listen, const std::string& token,
                   const std::string& admin, const std::string& state) {
  int out[2];
  if (pipe(out) != 0) return {};
  Worker w;
  w.pid = fork();
  if (w.pid == 0) {
    dup2(out[1], 1);
    close(out[0]);
    setenv("TF_SOFTGPU_STATE_DIR", state.c_str(), 1);
    execl(bin, bin, "--listen", listen.c_str(), "--driver", lib, "--token", token.c_str(), "--tiers",
          "--admin-token", admin.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  close(out[1]);
  std::string line;
  char c;
  while (read(out[0], &c, 1) == 1 && c != '\n') line += c;
  close(out[0]);
  if (line.rfind("listening on ", 0) == 0) w.address = line.substr(13);
  return w;
}

#define LOAD(name) auto name = reinterpret_cast<decltype(&::name)>(dlsym(stub, #name))

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: migration_bench WORKER_BIN SOFTGPU_LIB STUB_LIB [MIB] [tcp|shm]\n");
    return 2;
  }
  const size_t mib = argc > 4 ? strtoull(argv[4], nullptr, 10) : 1024;
  const std::string transport = argc > 5 ? argv[5] : "shm";
  const size_t bytes = mib << 20;
  char dir[] = "/tmp/tf-migration-bench-XXXXXX";
  const std::string state = mkdtemp(dir);
  (void)system(("mkdir -p " + state + "/a " + state + "/b").c_str());
  const std::string token = "bench-" + std::to_string(getpid()), admin = "admin-" + std::to_string(getpid());
  auto listen = [&](const char* which) {
    return transport == "tcp" ? std::string("tcp://127.0.0.1:0")
                              : "shm://tf-migration-bench-" + std::to_string(getpid()) + which;
  };
  Worker a = startWorker(argv[1], argv[2], listen("a"), token, admin, state + "/a");
  Worker b = startWorker(argv[1], argv[2], listen("b"), token, admin, state + "/b");
  auto cleanup = [&] {
    for (pid_t p : {a.pid, b.pid})
      if (p > 0) {
        kill(p, SIGKILL);
        waitpid(p, nullptr, 0);
      }
    (void)system(("rm -rf " + state).c_str());
  };
  if (a.address.empty() || b.address.empty()) {
    fprintf(stderr, "migration_bench: the workers did not start\n");
    cleanup();
    return 1;
  }
  setenv("TF_REMOTE_WORKER", a.address.c_str(), 1);
  setenv("TF_REMOTE_TOKEN", token.c_str(), 1);
  void* stub = dlopen(argv[3], RTLD_NOW | RTLD_LOCAL);
  if (!stub) {
    fprintf(stderr, "migration_bench: %s\n", dlerror());
    cleanup();
    return 1;
  }
  LOAD(cuInit);
  LOAD(cuDeviceGet);
  LOAD(cuCtxCreate_v2);
  LOAD(cuMemAlloc_v2);
  LOAD(cuMemcpyHtoD_v2);
  LOAD(cuMemcpyDtoH_v2);
  LOAD(cuCtxSynchronize);
  CUdevice dev = 0;
  CUcontext ctx = nullptr;
  CUdeviceptr p = 0;
  if (cuInit(0) != CUDA_SUCCESS || cuDeviceGet(&dev, 0) != CUDA_SUCCESS || cuCtxCreate_v2(&ctx, 0, dev) != CUDA_SUCCESS ||
      cuMemAlloc_v2(&p, bytes) != CUDA_SUCCESS) {
    fprintf(stderr, "migration_bench: no client memory on the worker\n");
    cleanup();
    return 1;
  }
  std::vector<uint8_t> host(bytes);
  for (size_t i = 0; i < bytes; i += 4096) host[i] = static_cast<uint8_t>(i >> 12);
  // The baseline: the client sends its N MiB to its worker (best of three).
  double copyMs = 1e30;
  for (int i = 0; i < 3; ++i) {
    auto t0 = Clock::now();
    cuMemcpyHtoD_v2(p, host.data(), bytes);
    copyMs = std::min(copyMs, ms(Clock::now() - t0));
  }
  // The move: the admin orders it while the client keeps making synchronous calls.
  std::atomic<bool> done{false};
  tf::Result<tf::remoting::WorkerAdmin::Migrated> moved = tf::internalError("not run");
  std::thread order([&] {
    auto adm = tf::remoting::WorkerAdmin::connect(a.address, admin);
    if (adm) moved = (*adm)->migrateOut(static_cast<uint32_t>(getpid()), b.address, admin, 30000);
    else moved = adm.status();
    done = true;
  });
  double longest = 0;
  while (!done) {
    auto t0 = Clock::now();
    cuCtxSynchronize();
    longest = std::max(longest, ms(Clock::now() - t0));
  }
  order.join();
  std::vector<uint8_t> back(bytes);
  const bool same = cuMemcpyDtoH_v2(back.data(), p, bytes) == CUDA_SUCCESS && back == host;
  if (!moved) {
    fprintf(stderr, "migration_bench: the move failed: %s\n", moved.status().toString().c_str());
    cleanup();
    return 1;
  }
  printf("migration of a client holding %zu MiB (%s, both workers on this machine)\n", mib, transport.c_str());
  printf("  pause the client saw        %8.1f ms   (worker's part: %.1f ms, %.1f MiB sent)\n", longest,
         moved->pauseNs / 1e6, moved->bytes / 1048576.0);
  printf("  baseline: HtoD of %zu MiB    %8.1f ms\n", mib, copyMs);
  printf("  ratio pause / copy          %8.2fx\n", longest / copyMs);
  printf("  contents after the move: %s\n", same ? "every byte right" : "WRONG");
  cleanup();
  return same ? 0 : 1;
}

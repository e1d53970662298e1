// Two processes on one soft GPU. This process (B) starts a copy of itself (A, by fork+exec)
// that allocates kMiB of device memory and waits. B must see A's memory in cudaMemGetInfo and
// in NVML (memory info and A's pid among the compute processes); after A is killed with
// SIGKILL, B must see the memory free again and A gone from the process list.
#include <dlfcn.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "check.h"

constexpr size_t kMiB = 512;

// NVML's ABI (nvml.h), declared here: the toolkit ships no nvml.h.
typedef int nvmlReturn_t;
typedef struct nvmlDevice_st* nvmlDevice_t;
struct nvmlMemory_t {
  unsigned long long total, free, used;
};
struct nvmlProcessInfo_t {
  unsigned int pid;
  unsigned long long usedGpuMemory;
  unsigned int gpuInstanceId, computeInstanceId;
};

struct Nvml {
  nvmlReturn_t (*init)();
  nvmlReturn_t (*handle)(unsigned, nvmlDevice_t*);
  nvmlReturn_t (*memory)(nvmlDevice_t, nvmlMemory_t*);
  nvmlReturn_t (*procs)(nvmlDevice_t, unsigned*, nvmlProcessInfo_t*);
  nvmlReturn_t (*shutdown)();
  nvmlDevice_t dev = nullptr;
};

static bool loadNvml(Nvml& n) {
  void* lib = dlopen("libnvidia-ml.so.1", RTLD_NOW);
  if (!lib) {
    std::fprintf(stderr, "dlopen libnvidia-ml.so.1: %s\n", dlerror());
    return false;
  }
  n.init = reinterpret_cast<nvmlReturn_t (*)()>(dlsym(lib, "nvmlInit_v2"));
  n.handle = reinterpret_cast<nvmlReturn_t (*)(unsigned, nvmlDevice_t*)>(
      dlsym(lib, "nvmlDeviceGetHandleByIndex_v2"));
  n.memory = reinterpret_cast<nvmlReturn_t (*)(nvmlDevice_t, nvmlMemory_t*)>(
      dlsym(lib, "nvmlDeviceGetMemoryInfo"));
  n.procs = reinterpret_cast<nvmlReturn_t (*)(nvmlDevice_t, unsigned*, nvmlProcessInfo_t*)>(
      dlsym(lib, "nvmlDeviceGetComputeRunningProcesses_v3"));
  n.shutdown = reinterpret_cast<nvmlReturn_t (*)()>(dlsym(lib, "nvmlShutdown"));
  if (!n.init || !n.handle || !n.memory || !n.procs || !n.shutdown) return false;
  if (n.init() != 0) return false;
  return n.handle(0, &n.dev) == 0;
}

static std::vector<nvmlProcessInfo_t> processes(Nvml& n) {
  std::vector<nvmlProcessInfo_t> v(64);
  unsigned count = static_cast<unsigned>(v.size());
  nvmlReturn_t r = n.procs(n.dev, &count, v.data());
  if (r != 0) {
    std::fprintf(stderr, "nvmlDeviceGetComputeRunningProcesses_v3: %d\n", r);
    ++tf_test::failures();
    return {};
  }
  v.resize(count);
  return v;
}

static int childMain(int fd) {
  void* p = nullptr;
  if (cudaMalloc(&p, kMiB << 20) != cudaSuccess) return 2;
  if (cudaMemset(p, 0x5A, kMiB << 20) != cudaSuccess) return 3;
  if (cudaDeviceSynchronize() != cudaSuccess) return 4;
  char ok = 'R';
  if (write(fd, &ok, 1) != 1) return 5;
  for (;;) pause(); // until killed
}

int main(int argc, char** argv) {
  if (argc == 3 && std::string(argv[1]) == "--child") return childMain(std::atoi(argv[2]));
  TF_CHECK_VGPU(); // in a _limited run: the limiter is there (check.h)

  CHECK(cudaFree(0));
  size_t free0 = 0, total = 0;
  CHECK(cudaMemGetInfo(&free0, &total));
  REQUIRE(total > (kMiB << 20) * 2);
  Nvml nvml;
  REQUIRE(loadNvml(nvml));
  nvmlMemory_t m0;
  REQUIRE(nvml.memory(nvml.dev, &m0) == 0);
  std::printf("before: cuda free %zu MiB, nvml used %llu MiB\n", free0 >> 20, m0.used >> 20);

  int fds[2];
  REQUIRE(pipe(fds) == 0);
  std::fflush(stdout);
  pid_t child = fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    close(fds[0]);
    std::string fd = std::to_string(fds[1]);
    execl("/proc/self/exe", argv[0], "--child", fd.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  close(fds[1]);
  char ready = 0;
  ssize_t got = read(fds[0], &ready, 1);
  if (got != 1 || ready != 'R') {
    int st = 0;
    waitpid(child, &st, 0);
    std::fprintf(stderr, "child did not get ready (exit status %d)\n",
                 WIFEXITED(st) ? WEXITSTATUS(st) : -WTERMSIG(st));
    return 1;
  }

  // B sees A's memory.
  size_t free1 = 0;
  CHECK(cudaMemGetInfo(&free1, &total));
  nvmlMemory_t m1;
  REQUIRE(nvml.memory(nvml.dev, &m1) == 0);
  std::printf("child %d holds %zu MiB: cuda free %zu MiB, nvml used %llu MiB\n", (int)child, kMiB,
              free1 >> 20, m1.used >> 20);
  EXPECT_TRUE(free1 + (kMiB << 20) <= free0);
  EXPECT_TRUE(m1.used >= m0.used + (kMiB << 20));
  EXPECT_TRUE(m1.free + (kMiB << 20) <= m0.free);
  bool listed = false, selfListed = false;
  for (auto& p : processes(nvml)) {
    if (p.pid == static_cast<unsigned>(child)) {
      listed = true;
      EXPECT_TRUE(p.usedGpuMemory >= (kMiB << 20));
    }
    if (p.pid == static_cast<unsigned>(getpid())) selfListed = true;
  }
  EXPECT_TRUE(listed);
  EXPECT_TRUE(selfListed);

  // Kill A; its memory comes back (the dead process is reaped when usage is read).
  REQUIRE(kill(child, SIGKILL) == 0);
  int st = 0;
  REQUIRE(waitpid(child, &st, 0) == child);
  EXPECT_TRUE(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
  size_t free2 = 0;
  nvmlMemory_t m2{};
  bool back = false;
  for (int i = 0; i < 50 && !back; ++i) { // allow up to 5 s for reaping
    CHECK(cudaMemGetInfo(&free2, &total));
    REQUIRE(nvml.memory(nvml.dev, &m2) == 0);
    back = free2 == free0 && m2.used == m0.used;
    if (!back) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  std::printf("after kill: cuda free %zu MiB, nvml used %llu MiB\n", free2 >> 20, m2.used >> 20);
  EXPECT_EQ_INT(free2, free0);
  EXPECT_EQ_INT(m2.used, m0.used);
  listed = false;
  for (auto& p : processes(nvml)) listed |= p.pid == static_cast<unsigned>(child);
  EXPECT_TRUE(!listed);
  nvml.shutdown();
  return tf_test::summary("multiprocess");
}

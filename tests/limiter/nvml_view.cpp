// What a process inside a vGPU sees through NVML and what `tensor-fusion vgpu show` reports about
// it, with the limiter preloaded over the soft GPU (two H100s).
//
//   nvml_view <tensor-fusion> <vgpu dir> <vgpu name>
//
// The vGPU is made by the test with `vgpu create --vram 256MiB --tflops 98.94 --model H100
// --devices 2 --window-ms 120`. This program holds 200 MiB on device 0, then checks:
//   - nvmlDeviceGetMemoryInfo_v2 (and v1) show the vGPU: 256 MiB total, 200 MiB used (device 1:
//     nothing used), not the 80 GiB device; this also proves the limiter is loaded;
//   - nvmlDeviceGetComputeRunningProcesses v1, v2 and v3 list this process with its 200 MiB in
//     each version's layout, and ask for room (NVML_ERROR_INSUFFICIENT_SIZE) when given none;
//   - per-process utilization samples (both calls) list this process, not one outside the vGPU
//     that also ran on the device;
//   - `vgpu show` prints the limits the options asked for (10% of an H100, two devices, a 120 ms
//     window) and this process with its memory.
// Exits non-zero on a failed check (tests/cuda/check.h).
#include <dlfcn.h>
#include <string>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "cuda/nvml_api.h"
#include "softgpu/device_model.h"
#include "softgpu/device_state.h"

namespace {

constexpr unsigned long long kMiB = 1ull << 20;

template <typename F> F sym(void* lib, const char* name) {
  auto f = reinterpret_cast<F>(dlsym(lib, name));
  if (!f) {
    std::fprintf(stderr, "nvml_view: no %s in NVML\n", name);
    std::exit(1);
  }
  return f;
}

// Checks one version of the process list: empty buffer first, then the real list.
template <typename Info>
void checkProcesses(void* nvml, const char* name, nvmlDevice_t dev, unsigned long long wantUsed) {
  auto fn = sym<nvmlReturn_t (*)(nvmlDevice_t, unsigned*, Info*)>(nvml, name);
  unsigned n = 0;
  nvmlReturn_t r = fn(dev, &n, nullptr);
  std::printf("%s(count only): %d, count %u\n", name, r, n);
  REQUIRE(r == NVML_ERROR_INSUFFICIENT_SIZE);
  REQUIRE(n == 1);
  Info infos[4];
  std::memset(infos, 0xab, sizeof infos);
  n = 4;
  r = fn(dev, &n, infos);
  REQUIRE(r == NVML_SUCCESS);
  REQUIRE(n == 1);
  REQUIRE(infos[0].pid == static_cast<unsigned>(getpid()));
  REQUIRE(infos[0].usedGpuMemory == wantUsed);
  if constexpr (sizeof(Info) > sizeof(nvmlProcessInfo_v1_t)) {
    REQUIRE(infos[0].gpuInstanceId == 0xFFFFFFFFu);
    REQUIRE(infos[0].computeInstanceId == 0xFFFFFFFFu);
  }
  // The entry after the last one is untouched: the version's layout was respected.
  unsigned char after[sizeof(Info)];
  std::memset(after, 0xab, sizeof after);
  REQUIRE(std::memcmp(&infos[1], after, sizeof after) == 0);
}

std::string run(const std::string& command, int* status) {
  FILE* p = popen(command.c_str(), "r");
  REQUIRE(p != nullptr);
  std::string out;
  char buf[512];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  *status = pclose(p);
  return out;
}

void expectIn(const std::string& text, const std::string& want) {
  if (text.find(want) == std::string::npos) {
    std::fprintf(stderr, "nvml_view: `vgpu show` lacks \"%s\":\n%s", want.c_str(), text.c_str());
    std::exit(1);
  }
}

// Per-process utilization shows only the vGPU's processes: this one and a process outside the
// vGPU both ran on device 0 (busy time added to the soft GPU's state, as kernels would), and the
// samples (both NVML calls) list this one alone.
void checkUtilizationSamples(void* nvml, nvmlDevice_t dev) {
  auto config = tf::softgpu::loadConfig();
  REQUIRE(config && !config->devices.empty());
  auto state = tf::softgpu::DeviceState::open(config->devices[0]);
  REQUIRE(state);
  auto slot = (*state)->attach(); // this process's slot (its libcuda has one already)
  REQUIRE(slot);
  (*state)->addBusyTime(*slot, 300'000'000);
  int ready[2], done[2];
  REQUIRE(pipe(ready) == 0 && pipe(done) == 0);
  pid_t outsider = fork();
  if (outsider == 0) { // not in the vGPU: never calls CUDA through the limiter
    close(done[1]);      // so that the parent's close ends the wait below
    auto own = tf::softgpu::DeviceState::open(config->devices[0]);
    if (!own) _exit(2);
    auto s = (*own)->attach();
    if (!s) _exit(3);
    (*own)->addBusyTime(*s, 300'000'000);
    char c = 1;
    if (write(ready[1], &c, 1) != 1 || read(done[0], &c, 1) < 0) _exit(4);
    _exit(0);
  }
  char c;
  REQUIRE(read(ready[0], &c, 1) == 1);

  auto util = sym<nvmlReturn_t (*)(nvmlDevice_t, nvmlProcessUtilizationSample_t*, unsigned*, unsigned long long)>(
      nvml, "nvmlDeviceGetProcessUtilization");
  nvmlProcessUtilizationSample_t samples[8];
  unsigned n = 8;
  REQUIRE(util(dev, samples, &n, 0) == NVML_SUCCESS);
  std::printf("process utilization samples: %u, first pid %u\n", n, samples[0].pid);
  REQUIRE(n == 1);
  REQUIRE(samples[0].pid == static_cast<unsigned>(getpid()));
  auto utilInfo = sym<nvmlReturn_t (*)(nvmlDevice_t, nvmlProcessesUtilizationInfo_t*)>(
      nvml, "nvmlDeviceGetProcessesUtilizationInfo");
  nvmlProcessUtilizationInfo_v1_t infos[8];
  nvmlProcessesUtilizationInfo_t info{};
  info.version = nvmlProcessesUtilizationInfo_v1;
  info.processSamplesCount = 8;
  info.procUtilArray = infos;
  REQUIRE(utilInfo(dev, &info) == NVML_SUCCESS);
  REQUIRE(info.processSamplesCount == 1);
  REQUIRE(infos[0].pid == static_cast<unsigned>(getpid()));

  close(done[1]);
  int status = 0;
  REQUIRE(waitpid(outsider, &status, 0) == outsider);
  REQUIRE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  close(ready[0]);
  close(ready[1]);
  close(done[0]);
}

} // namespace

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: nvml_view <tensor-fusion> <vgpu dir> <vgpu name>\n");
    return 2;
  }
  CU_CHECK(cuInit(0));
  CUcontext ctx;
  CU_CHECK(cuDevicePrimaryCtxRetain(&ctx, 0));
  CU_CHECK(cuCtxSetCurrent(ctx));
  CUdeviceptr held;
  CU_CHECK(cuMemAlloc(&held, 200 * kMiB));

  // NVML found the way tools find it (dlopen + dlsym, which the limiter answers).
  void* nvml = dlopen("libnvidia-ml.so.1", RTLD_NOW);
  REQUIRE(nvml != nullptr);
  REQUIRE(sym<nvmlReturn_t (*)()>(nvml, "nvmlInit_v2")() == NVML_SUCCESS);
  auto byIndex = sym<nvmlReturn_t (*)(unsigned, nvmlDevice_t*)>(nvml, "nvmlDeviceGetHandleByIndex_v2");
  nvmlDevice_t dev0, dev1;
  REQUIRE(byIndex(0, &dev0) == NVML_SUCCESS);
  REQUIRE(byIndex(1, &dev1) == NVML_SUCCESS);

  auto memV2 = sym<nvmlReturn_t (*)(nvmlDevice_t, nvmlMemory_v2_t*)>(nvml, "nvmlDeviceGetMemoryInfo_v2");
  nvmlMemory_v2_t m{};
  m.version = nvmlMemory_v2;
  REQUIRE(memV2(dev0, &m) == NVML_SUCCESS);
  std::printf("memory v2, device 0: total %llu used %llu free %llu reserved %llu\n", m.total, m.used,
              m.free, m.reserved);
  REQUIRE(m.total == 256 * kMiB); // the vGPU, not the 80 GiB device: the limiter is loaded
  REQUIRE(m.used == 200 * kMiB);
  REQUIRE(m.free == 56 * kMiB);
  REQUIRE(m.reserved == 0);
  nvmlMemory_v2_t m1{};
  m1.version = nvmlMemory_v2;
  REQUIRE(memV2(dev1, &m1) == NVML_SUCCESS);
  REQUIRE(m1.total == 256 * kMiB);
  REQUIRE(m1.used == 0);
  auto memV1 = sym<nvmlReturn_t (*)(nvmlDevice_t, nvmlMemory_t*)>(nvml, "nvmlDeviceGetMemoryInfo");
  nvmlMemory_t v1{};
  REQUIRE(memV1(dev0, &v1) == NVML_SUCCESS);
  REQUIRE(v1.total == 256 * kMiB && v1.used == 200 * kMiB && v1.free == 56 * kMiB);

  checkProcesses<nvmlProcessInfo_v1_t>(nvml, "nvmlDeviceGetComputeRunningProcesses", dev0, 200 * kMiB);
  checkProcesses<nvmlProcessInfo_t>(nvml, "nvmlDeviceGetComputeRunningProcesses_v2", dev0, 200 * kMiB);
  checkProcesses<nvmlProcessInfo_t>(nvml, "nvmlDeviceGetComputeRunningProcesses_v3", dev0, 200 * kMiB);
  checkUtilizationSamples(nvml, dev0);

  // `vgpu show`, run without the limiter (it makes no CUDA call; the preload is this test's).
  int status = -1;
  const std::string show = run("env -u LD_PRELOAD '" + std::string(argv[1]) + "' vgpu --dir '" +
                                   argv[2] + "' show '" + argv[3] + "'",
                               &status);
  std::printf("%s", show.c_str());
  REQUIRE(status == 0);
  expectIn(show, std::string("vGPU ") + argv[3] + " (");
  expectIn(show, "1 process(es), compute window 120 ms");
  expectIn(show, "device 0: VRAM 200 MiB / 256 MiB");
  expectIn(show, "device 1: VRAM 0 B / 256 MiB");
  expectIn(show, "compute limit 10.0%"); // 98.94 TFLOPS of an H100's 989.4
  expectIn(show, "pid " + std::to_string(getpid()) + ": VRAM 200 MiB");
  REQUIRE(show.find("device 2:") == std::string::npos);
  // A vGPU that does not exist is an error that names it.
  const std::string missing = run("env -u LD_PRELOAD '" + std::string(argv[1]) + "' vgpu --dir '" +
                                      argv[2] + "' show no-such-vgpu 2>&1",
                                  &status);
  REQUIRE(status != 0);
  expectIn(missing, "no-such-vgpu");

  CU_CHECK(cuMemFree(held));
  return tf_test::summary("nvml_view");
}

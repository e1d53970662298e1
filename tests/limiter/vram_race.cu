// One of N processes allocating and freeing random sizes under one vGPU limit. After each
// successful allocation it asks the soft GPU's own accounting (its NVML) how much device
// memory is in use, and fails if that ever passes the limit.
#include <cstdio>
#include <cstdlib>
#include <dlfcn.h>
#include <random>
#include <vector>
#include <cuda_runtime.h>

struct NvmlMemory { unsigned long long total, free, used; };

int main(int argc, char** argv) {
  const int rounds = atoi(argv[1]);
  const size_t limit = strtoull(argv[2], nullptr, 0);
  const unsigned seed = static_cast<unsigned>(atoi(argv[3]));
  // glibc's own dlsym, not the limiter's: this check must see the soft GPU's accounting, not
  // the vGPU view the limiter gives applications.
  using Dlsym = void* (*)(void*, const char*);
  auto rawDlsym = reinterpret_cast<Dlsym>(dlvsym(RTLD_DEFAULT, "dlsym", "GLIBC_2.34"));
  if (!rawDlsym) rawDlsym = reinterpret_cast<Dlsym>(dlvsym(RTLD_DEFAULT, "dlsym", "GLIBC_2.2.5"));
  void* nvml = dlopen("libnvidia-ml.so.1", RTLD_NOW);
  auto init = reinterpret_cast<int (*)()>(rawDlsym(nvml, "nvmlInit_v2"));
  auto byIndex = reinterpret_cast<int (*)(unsigned, void**)>(rawDlsym(nvml, "nvmlDeviceGetHandleByIndex_v2"));
  auto memInfo = reinterpret_cast<int (*)(void*, NvmlMemory*)>(rawDlsym(nvml, "nvmlDeviceGetMemoryInfo"));
  void* dev = nullptr;
  if (!init || init() != 0 || byIndex(0, &dev) != 0) {
    fprintf(stderr, "vram_race: NVML unavailable\n");
    return 2;
  }
  std::mt19937 rng(seed);
  std::uniform_int_distribution<size_t> size(1 << 16, limit / 4);
  std::vector<void*> held;
  int ok = 0, refused = 0;
  size_t worst = 0;
  for (int i = 0; i < rounds; ++i) {
    if (!held.empty() && (rng() % 2 || held.size() > 3)) {
      size_t k = rng() % held.size();
      if (cudaFree(held[k]) != cudaSuccess) return 3;
      held.erase(held.begin() + k);
      continue;
    }
    void* p = nullptr;
    cudaError_t e = cudaMalloc(&p, size(rng));
    if (e == cudaErrorMemoryAllocation) {
      (void)cudaGetLastError();
      ++refused;
      continue;
    }
    if (e != cudaSuccess) return 4;
    held.push_back(p);
    ++ok;
    NvmlMemory m{};
    if (memInfo(dev, &m) != 0) return 5;
    worst = m.used > worst ? m.used : worst;
    if (m.used > limit) {
      fprintf(stderr, "vram_race: device memory in use %llu passed the vGPU limit %zu\n", m.used, limit);
      return 1;
    }
  }
  for (void* p : held) cudaFree(p);
  printf("vram_race: %d allocations, %d refused, peak device use %zu of %zu\n", ok, refused, worst, limit);
  return ok > 0 ? 0 : 6;
}

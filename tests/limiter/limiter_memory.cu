// Runs under the limiter in a vGPU of 256 MiB. argv[1] == "spill": the vGPU has a 128 MiB host
// allowance. Exits non-zero on the first behaviour that differs from the vGPU's contract.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <dlfcn.h>
#include <unistd.h>
#include <cuda.h>
#include <cuda_runtime.h>

#define EXPECT(cond)                                                                              \
  do {                                                                                            \
    if (!(cond)) {                                                                                \
      fprintf(stderr, "%s:%d: expected %s\n", __FILE__, __LINE__, #cond);                         \
      return 1;                                                                                   \
    }                                                                                             \
  } while (0)

int main(int argc, char** argv) {
  const bool spill = argc > 1 && !strcmp(argv[1], "spill");
  // Through the remoting stub (hard isolation) managed memory and the stub's NVML are not the
  // driver's: those checks are for the preloaded limiter.
  const bool remote = getenv("TF_REMOTE_WORKER") != nullptr;
  const size_t MiB = 1 << 20;
  size_t freeB = 0, total = 0;
  EXPECT(cudaMemGetInfo(&freeB, &total) == cudaSuccess);
  EXPECT(total == 256 * MiB);
  EXPECT(freeB == 256 * MiB);
  cudaDeviceProp prop;
  EXPECT(cudaGetDeviceProperties(&prop, 0) == cudaSuccess);
  EXPECT(prop.totalGlobalMem == 256 * MiB);

  void *a = nullptr, *b = nullptr;
  EXPECT(cudaMalloc(&a, 200 * MiB) == cudaSuccess);
  EXPECT(cudaMemGetInfo(&freeB, &total) == cudaSuccess);
  EXPECT(freeB == 56 * MiB);
  cudaError_t e = cudaMalloc(&b, 100 * MiB);
  if (spill) {
    // Past VRAM, served from the host allowance as managed memory.
    EXPECT(e == cudaSuccess);
    cudaPointerAttributes attr;
    EXPECT(cudaPointerGetAttributes(&attr, b) == cudaSuccess);
    EXPECT(attr.type == cudaMemoryTypeManaged);
    EXPECT(cudaMemset(b, 1, 100 * MiB) == cudaSuccess);
    void* c = nullptr;
    EXPECT(cudaMalloc(&c, 100 * MiB) == cudaErrorMemoryAllocation); // allowance used up too
    EXPECT(cudaFree(b) == cudaSuccess);
    EXPECT(cudaFree(a) == cudaSuccess);
    printf("limiter_memory: all checks passed (with host spill)\n");
    return 0;
  } else {
    EXPECT(e == cudaErrorMemoryAllocation);
    (void)cudaGetLastError();
  }
  if (!remote) {
    // NVML, found the way tools find it, shows the vGPU: its total, its use, its processes.
    struct Mem { unsigned long long total, free, used; } m{};
    struct Proc { unsigned pid; unsigned long long used; unsigned gi, ci; } procs[8];
    void* nvml = dlopen("libnvidia-ml.so.1", RTLD_NOW);
    EXPECT(nvml);
    auto init = reinterpret_cast<int (*)()>(dlsym(nvml, "nvmlInit_v2"));
    auto byIndex = reinterpret_cast<int (*)(unsigned, void**)>(dlsym(nvml, "nvmlDeviceGetHandleByIndex_v2"));
    auto memInfo = reinterpret_cast<int (*)(void*, Mem*)>(dlsym(nvml, "nvmlDeviceGetMemoryInfo"));
    auto running = reinterpret_cast<int (*)(void*, unsigned*, Proc*)>(dlsym(nvml, "nvmlDeviceGetComputeRunningProcesses_v3"));
    void* dev = nullptr;
    EXPECT(init() == 0 && byIndex(0, &dev) == 0);
    EXPECT(memInfo(dev, &m) == 0);
    EXPECT(m.total == 256 * MiB);
    EXPECT(m.used == 200 * MiB);
    unsigned n = 8;
    EXPECT(running(dev, &n, procs) == 0);
    EXPECT(n == 1 && procs[0].pid == static_cast<unsigned>(getpid()) && procs[0].used == 200 * MiB);
  }
  EXPECT(cudaFree(a) == cudaSuccess);
  EXPECT(cudaMalloc(&b, 250 * MiB) == cudaSuccess); // freed memory is credited back
  EXPECT(cudaFree(b) == cudaSuccess);

  // Every other allocation path is charged too.
  void* p;
  size_t pitch;
  EXPECT(cudaMallocPitch(&p, &pitch, 1 << 20, 200) == cudaSuccess); // 200 MiB
  if (!remote) {
    EXPECT(cudaMallocManaged(&b, 100 * MiB) == cudaErrorMemoryAllocation);
    (void)cudaGetLastError();
  }
  EXPECT(cudaFree(p) == cudaSuccess);
  if (remote) {
    printf("limiter_memory: all checks passed (through the worker)\n");
    return 0;
  }
  EXPECT(cudaMallocManaged(&b, 200 * MiB) == cudaSuccess);
  cudaStream_t s;
  EXPECT(cudaStreamCreate(&s) == cudaSuccess);
  void* q;
  EXPECT(cudaMallocAsync(&q, 100 * MiB, s) == cudaErrorMemoryAllocation);
  (void)cudaGetLastError();
  EXPECT(cudaFree(b) == cudaSuccess);
  EXPECT(cudaMallocAsync(&q, 100 * MiB, s) == cudaSuccess);
  EXPECT(cudaFreeAsync(q, s) == cudaSuccess);
  EXPECT(cudaStreamSynchronize(s) == cudaSuccess);

  // VMM handles are physical memory: charged at cuMemCreate.
  CUmemAllocationProp prop2{};
  prop2.type = CU_MEM_ALLOCATION_TYPE_PINNED;
  prop2.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
  prop2.location.id = 0;
  CUmemGenericAllocationHandle h1, h2;
  EXPECT(cuMemCreate(&h1, 200 * MiB, &prop2, 0) == CUDA_SUCCESS);
  EXPECT(cuMemCreate(&h2, 100 * MiB, &prop2, 0) == CUDA_ERROR_OUT_OF_MEMORY);
  EXPECT(cuMemRelease(h1) == CUDA_SUCCESS);
  EXPECT(cuMemCreate(&h2, 100 * MiB, &prop2, 0) == CUDA_SUCCESS);
  EXPECT(cuMemRelease(h2) == CUDA_SUCCESS);
  printf("limiter_memory: all checks passed\n");
  return 0;
}

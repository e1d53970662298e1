// Saturates the device for argv[1] seconds with kernels of different sizes; argv[2] == "sync"
// synchronises after every launch. Prints the number of launches and, on the soft GPU, the GPU
// time its kernels used over the interval the loop ran (its own timestamps, not start-up or
// exit): the share it got, printed only when every call succeeded. SIGTERM ends the loop
// early, as if its time were up (a test stops a long workload once it has seen what it needs).
#include <dlfcn.h>
#include <signal.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <cuda_runtime.h>

__global__ void work(float* x, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) x[i] = x[i] * 0.5f + 1.0f;
}

// The soft GPU's accounting of this process's GPU time on device 0, or false on another driver.
bool softGpuBusyNs(uint64_t* busyNs) {
  using Stats = int (*)(int, uint64_t*, uint64_t*);
  void* lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_NOLOAD);
  auto stats = lib ? reinterpret_cast<Stats>(dlsym(lib, "tfSoftGpuProcessStats")) : nullptr;
  uint64_t kernels = 0;
  return stats && stats(0, busyNs, &kernels) == 0;
}

volatile sig_atomic_t stopped = 0;

int main(int argc, char** argv) {
  signal(SIGTERM, [](int) { stopped = 1; });
  const double seconds = atof(argv[1]);
  const bool sync = argc > 2 && !strcmp(argv[2], "sync");
  float* x;
  if (cudaMalloc(&x, 1 << 22) != cudaSuccess) return 2;
  const int grids[] = {64, 256, 128, 512, 32};
  long launches = 0;
  uint64_t busy0 = 0;
  if (cudaDeviceSynchronize() != cudaSuccess) return 2;
  const bool soft = softGpuBusyNs(&busy0);
  const auto start = std::chrono::steady_clock::now();
  auto end = start + std::chrono::duration<double>(seconds);
  while (!stopped && std::chrono::steady_clock::now() < end) {
    int g = grids[launches % 5];
    work<<<g, 256>>>(x, g * 256);
    if (cudaGetLastError() != cudaSuccess) return 3;
    if (sync && cudaDeviceSynchronize() != cudaSuccess) return 4;
    ++launches;
  }
  if (cudaDeviceSynchronize() != cudaSuccess) return 5;
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  printf("compute_load: %ld launches\n", launches);
  uint64_t busy1 = 0;
  if (soft && softGpuBusyNs(&busy1))
    printf("compute_load: GPU time %.2f s over %.2f s = %.1f%%\n", (busy1 - busy0) / 1e9, wall,
           (busy1 - busy0) / 1e9 / wall * 100);
  return 0;
}

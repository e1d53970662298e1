// Saturates the device for argv[1] seconds with kernels of different sizes; argv[2] == "sync"
// synchronises after every launch. Prints the number of launches.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <cuda_runtime.h>

__global__ void work(float* x, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) x[i] = x[i] * 0.5f + 1.0f;
}

int main(int argc, char** argv) {
  const double seconds = atof(argv[1]);
  const bool sync = argc > 2 && !strcmp(argv[2], "sync");
  float* x;
  if (cudaMalloc(&x, 1 << 22) != cudaSuccess) return 2;
  const int grids[] = {64, 256, 128, 512, 32};
  long launches = 0;
  auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  while (std::chrono::steady_clock::now() < end) {
    int g = grids[launches % 5];
    work<<<g, 256>>>(x, g * 256);
    if (cudaGetLastError() != cudaSuccess) return 3;
    if (sync && cudaDeviceSynchronize() != cudaSuccess) return 4;
    ++launches;
  }
  if (cudaDeviceSynchronize() != cudaSuccess) return 5;
  printf("compute_load: %ld launches\n", launches);
  return 0;
}

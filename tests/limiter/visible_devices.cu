// Prints the devices this process sees: "device <ordinal> uuid=<32 hex> total=<bytes> free=<bytes>
// over=<0|1>", where over=1 means an allocation of total + 1 MiB succeeded (a device without a
// VRAM limit under the limiter, or the whole board). Exit 0 unless a CUDA call fails.
#include <cstdio>
#include <cuda_runtime.h>

int main() {
  int count = 0;
  cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess) {
    printf("count error=%s\n", cudaGetErrorName(e));
    return 0;
  }
  printf("count=%d\n", count);
  for (int d = 0; d < count; ++d) {
    cudaDeviceProp p;
    if (cudaGetDeviceProperties(&p, d) != cudaSuccess || cudaSetDevice(d) != cudaSuccess) return 1;
    size_t freeB = 0, total = 0;
    if (cudaMemGetInfo(&freeB, &total) != cudaSuccess) return 1;
    void* big = nullptr;
    const bool over = cudaMalloc(&big, total + (1 << 20)) == cudaSuccess;
    if (over) cudaFree(big);
    cudaGetLastError();
    printf("device %d uuid=", d);
    for (int i = 0; i < 16; ++i) printf("%02x", static_cast<unsigned char>(p.uuid.bytes[i]));
    printf(" total=%zu free=%zu over=%d\n", total, freeB, over ? 1 : 0);
  }
  return 0;
}

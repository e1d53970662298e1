// What a program sees of its vGPU: how many devices, each device's memory as cudaMemGetInfo
// reports it, and whether an allocation past that total is refused. Run it in a pod or under
// `tensor-fusion run` to see the vGPU's VRAM limit from the inside:
//
//   vgpu_probe
//   -> "vgpu_probe: 1 device(s)"
//      "vgpu_probe: device NAME total BYTES free BYTES"           (once per device, in order)
//      "vgpu_probe: allocating BYTES (total + 64 MiB): refused (out of memory)"
//      "vgpu_probe: allocating BYTES (90% of total): ok"
// Exits 0 when, on every device, the allocation past the total is refused and the one within it
// succeeds, 1 when either differs, 2 when CUDA itself fails.
#include <cstdio>
#include <cuda_runtime.h>

namespace {

int probe(int device) {
  cudaError_t e = cudaSetDevice(device);
  size_t freeB = 0, total = 0;
  if (e == cudaSuccess) e = cudaMemGetInfo(&freeB, &total);
  cudaDeviceProp prop{};
  if (e == cudaSuccess) e = cudaGetDeviceProperties(&prop, device);
  if (e != cudaSuccess) {
    fprintf(stderr, "vgpu_probe: device %d: %s\n", device, cudaGetErrorString(e));
    return 2;
  }
  printf("vgpu_probe: device %s total %zu free %zu\n", prop.name, total, freeB);
  int rc = 0;
  const size_t past = total + (size_t(64) << 20);
  void* p = nullptr;
  e = cudaMalloc(&p, past);
  printf("vgpu_probe: allocating %zu (total + 64 MiB): %s\n", past,
         e == cudaErrorMemoryAllocation ? "refused (out of memory)" : e == cudaSuccess ? "ok" : cudaGetErrorString(e));
  if (e == cudaSuccess) {
    cudaFree(p);
    rc = 1;
  } else if (e != cudaErrorMemoryAllocation) {
    rc = 1;
  }
  (void)cudaGetLastError();
  const size_t within = total / 10 * 9;
  e = cudaMalloc(&p, within);
  printf("vgpu_probe: allocating %zu (90%% of total): %s\n", within, e == cudaSuccess ? "ok" : cudaGetErrorString(e));
  if (e != cudaSuccess) rc = 1;
  else cudaFree(p);
  return rc;
}

}  // namespace

int main() {
  int count = 0;
  cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess) {
    fprintf(stderr, "vgpu_probe: cudaGetDeviceCount: %s\n", cudaGetErrorString(e));
    return 2;
  }
  printf("vgpu_probe: %d device(s)\n", count);
  int rc = 0;
  for (int d = 0; d < count; ++d) {
    int r = probe(d);
    if (r > rc) rc = r;
  }
  return rc;
}

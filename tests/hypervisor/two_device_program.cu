// A program on two devices that keeps running while its vGPU moves to other GPUs
// (migration_devices_e2e.sh): on each device a buffer of its own size and contents, a stream,
// and a kernel each round mixing in the device's salt. If the move swapped or lost a device,
// the buffers' devices or contents would not match the CPU's computation at the end (and the
// hypervisor's per-device memory figures would show the sizes swapped).
//
//   two_device_program MIB ROUNDS PAUSE_MS
// prints "round N" after each round, "OK" when every byte on both devices is right.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <unistd.h>
#include <vector>

#include <cuda_runtime.h>

#include "../remoting/program_check.h"

__global__ void step(uint32_t* data, size_t n, uint32_t salt, uint32_t round) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x)
    data[i] = data[i] * 22695477u + salt + round;
}


constexpr int kDevices = 2;

int main(int argc, char** argv) {
  const size_t mib = argc > 1 ? strtoull(argv[1], nullptr, 10) : 32;
  const int rounds = argc > 2 ? atoi(argv[2]) : 10;
  const int pauseMs = argc > 3 ? atoi(argv[3]) : 100;
  setvbuf(stdout, nullptr, _IOLBF, 0);
  int count = 0;
  CHECK(cudaGetDeviceCount(&count));
  if (count != kDevices) {
    printf("FAIL %d devices, want %d\n", count, kDevices);
    return 1;
  }
  const uint32_t salts[kDevices] = {0x1234567u, 0x89abcdeu};
  std::vector<uint32_t> host[kDevices];
  uint32_t* dev[kDevices] = {};
  cudaStream_t streams[kDevices];
  size_t words[kDevices];
  for (int d = 0; d < kDevices; ++d) {
    words[d] = (d == 0 ? mib : mib / 2) * (1u << 20) / sizeof(uint32_t);  // device 0 holds twice device 1
    host[d].resize(words[d]);
    for (size_t i = 0; i < words[d]; ++i) host[d][i] = uint32_t(i * 2654435761u) ^ salts[d];
    CHECK(cudaSetDevice(d));
    CHECK(cudaMalloc(&dev[d], words[d] * 4));
    CHECK(cudaMemcpy(dev[d], host[d].data(), words[d] * 4, cudaMemcpyHostToDevice));
    CHECK(cudaStreamCreateWithFlags(&streams[d], cudaStreamNonBlocking));
  }
  for (int r = 0; r < rounds; ++r) {
    for (int d = 0; d < kDevices; ++d) {
      CHECK(cudaSetDevice(d));
      step<<<64, 256, 0, streams[d]>>>(dev[d], words[d], salts[d], uint32_t(r));
    }
    for (int d = 0; d < kDevices; ++d) {
      CHECK(cudaSetDevice(d));
      CHECK(cudaStreamSynchronize(streams[d]));  // a synchronous call: where a pending move happens
      for (size_t i = 0; i < words[d]; ++i) host[d][i] = host[d][i] * 22695477u + salts[d] + uint32_t(r);
    }
    printf("round %d\n", r + 1);
    usleep(pauseMs * 1000);
  }
  int bad = 0;
  for (int d = 0; d < kDevices; ++d) {
    CHECK(cudaSetDevice(d));
    int current = -1;
    CHECK(cudaGetDevice(&current));
    cudaPointerAttributes attr{};
    CHECK(cudaPointerGetAttributes(&attr, dev[d]));
    if (current != d || attr.device != d) {
      printf("FAIL device %d: current %d, its buffer on device %d\n", d, current, attr.device);
      ++bad;
    }
    std::vector<uint32_t> got(words[d]);
    CHECK(cudaMemcpy(got.data(), dev[d], words[d] * 4, cudaMemcpyDeviceToHost));
    for (size_t i = 0; i < words[d]; ++i)
      if (got[i] != host[d][i] && bad++ < 5) printf("FAIL device %d [%zu] = %u, want %u\n", d, i, got[i], host[d][i]);
    CHECK(cudaStreamDestroy(streams[d]));
    CHECK(cudaFree(dev[d]));
  }
  if (bad) return 1;
  printf("OK %zu+%zu MiB on %d devices, %d rounds\n", mib, mib / 2, kDevices, rounds);
  return 0;
}

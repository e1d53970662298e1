// A program whose memory the hypervisor moves between tiers while it idles: it allocates
// BYTES, and for each round waits for the file DIR/NAME.go<round>, checks every byte it wrote
// in the round before, computes on part of it with a kernel (checked too), writes the round's
// pattern, and creates DIR/NAME.done<round>. Exits non-zero on any mismatch or CUDA error.
//
//   tier_program 1073741824 /tmp/rounds a 3
#include <cuda_runtime.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#define CHECK(x)                                                                                  \
  do {                                                                                            \
    cudaError_t e_ = (x);                                                                         \
    if (e_ != cudaSuccess) {                                                                      \
      fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #x, cudaGetErrorString(e_));         \
      return 1;                                                                                   \
    }                                                                                             \
  } while (0)

__global__ void addRound(uint32_t* p, size_t n, uint32_t round) {
  size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x;
  if (i < n) p[i] += round;
}

static uint32_t pattern(size_t i, uint32_t round) { return uint32_t(i * 2654435761u) ^ (round * 0x9e3779b9u); }

static bool exists(const std::string& path) { return fopen(path.c_str(), "r") ? true : false; }

int main(int argc, char** argv) {
  if (argc != 5) {
    fprintf(stderr, "usage: tier_program BYTES DIR NAME ROUNDS\n");
    return 2;
  }
  const size_t bytes = strtoull(argv[1], nullptr, 10), n = bytes / 4;
  const std::string dir = argv[2], name = argv[3];
  const int rounds = atoi(argv[4]);
  const size_t computed = n < (1u << 20) ? n : (1u << 20);  // the kernel's part
  uint32_t* d = nullptr;
  CHECK(cudaMalloc(&d, bytes));
  printf("%s: %zu bytes at %p\n", name.c_str(), bytes, static_cast<void*>(d));
  fflush(stdout);
  std::vector<uint32_t> host(n);
  for (int round = 1; round <= rounds; ++round) {
    const std::string go = dir + "/" + name + ".go" + std::to_string(round);
    while (!exists(go)) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    auto start = std::chrono::steady_clock::now();
    if (round > 1) {
      // Last round's bytes, all of them, then the kernel's work on them.
      CHECK(cudaMemcpy(host.data(), d, bytes, cudaMemcpyDeviceToHost));
      for (size_t i = 0; i < n; ++i)
        if (host[i] != pattern(i, round - 1)) {
          fprintf(stderr, "%s: round %d: word %zu is %08x, wrote %08x\n", name.c_str(), round, i, host[i],
                  pattern(i, round - 1));
          return 1;
        }
      addRound<<<(computed + 255) / 256, 256>>>(d, computed, round);
      CHECK(cudaGetLastError());
      CHECK(cudaMemcpy(host.data(), d, computed * 4, cudaMemcpyDeviceToHost));
      for (size_t i = 0; i < computed; ++i)
        if (host[i] != pattern(i, round - 1) + round) {
          fprintf(stderr, "%s: round %d: the kernel's word %zu is wrong\n", name.c_str(), round, i);
          return 1;
        }
    }
    for (size_t i = 0; i < n; ++i) host[i] = pattern(i, round);
    CHECK(cudaMemcpy(d, host.data(), bytes, cudaMemcpyHostToDevice));
    CHECK(cudaDeviceSynchronize());
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    printf("%s: round %d done in %.0f ms%s\n", name.c_str(), round, ms, round > 1 ? " (every byte checked)" : "");
    fflush(stdout);
    FILE* f = fopen((dir + "/" + name + ".done" + std::to_string(round)).c_str(), "w");
    if (!f) return 1;
    fclose(f);
  }
  CHECK(cudaFree(d));
  printf("%s: all rounds correct\n", name.c_str());
  return 0;
}

// A program whose memory the hypervisor moves between tiers while it idles: it allocates
// BYTES, and for each round waits for the file DIR/NAME.go<round>, checks every byte it wrote
// in the round before, computes on part of it with a kernel (checked too), writes the round's
// pattern, and creates DIR/NAME.done<round>. Exits non-zero on any mismatch or CUDA error.
// `sparse`: it writes (and checks) only a page every 256 MiB and the last page, checks that a
// page between each two of them reads zero, and computes on the first page.
//
//   tier_program 1073741824 /tmp/rounds a 3
//   tier_program 64424509440 /tmp/rounds a 3 sparse
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

// The places a sparse program writes: a page every 256 MiB, and the last page.
static std::vector<size_t> sparsePages(size_t bytes) {
  std::vector<size_t> at;
  for (size_t off = 0; off + 4096 <= bytes; off += size_t(256) << 20) at.push_back(off);
  if (bytes >= 4096 && at.back() != bytes - 4096) at.push_back(bytes - 4096);
  return at;
}

// The sparse rounds: the pages written last round hold its pattern (the first page plus the
// kernel's `round`), the pages half way between them zero; then this round's pattern.
static int sparseRound(uint32_t* d, size_t bytes, const std::string& name, int round) {
  std::vector<uint32_t> page(1024);
  const std::vector<size_t> pages = sparsePages(bytes);
  if (round > 1) {
    addRound<<<4, 256>>>(d, 1024, round);
    CHECK(cudaGetLastError());
    for (size_t k = 0; k < pages.size(); ++k) {
      CHECK(cudaMemcpy(page.data(), reinterpret_cast<char*>(d) + pages[k], 4096, cudaMemcpyDeviceToHost));
      for (size_t i = 0; i < 1024; ++i) {
        const uint32_t want = pattern(pages[k] / 4 + i, round - 1) + (k == 0 ? round : 0);
        if (page[i] != want) {
          fprintf(stderr, "%s: round %d: byte %zu is %08x, wrote %08x\n", name.c_str(), round, pages[k] + 4 * i,
                  page[i], want);
          return 1;
        }
      }
      const size_t between = pages[k] + (size_t(128) << 20);
      if (k + 1 == pages.size() || between + 4096 > pages[k + 1]) continue;
      CHECK(cudaMemcpy(page.data(), reinterpret_cast<char*>(d) + between, 4096, cudaMemcpyDeviceToHost));
      for (size_t i = 0; i < 1024; ++i)
        if (page[i] != 0) {
          fprintf(stderr, "%s: round %d: byte %zu, never written, is %08x\n", name.c_str(), round, between + 4 * i,
                  page[i]);
          return 1;
        }
    }
  }
  for (size_t at : pages) {
    for (size_t i = 0; i < 1024; ++i) page[i] = pattern(at / 4 + i, round);
    CHECK(cudaMemcpy(reinterpret_cast<char*>(d) + at, page.data(), 4096, cudaMemcpyHostToDevice));
  }
  return 0;
}

int main(int argc, char** argv) {
  if (argc != 5 && !(argc == 6 && std::string(argv[5]) == "sparse")) {
    fprintf(stderr, "usage: tier_program BYTES DIR NAME ROUNDS [sparse]\n");
    return 2;
  }
  const bool sparse = argc == 6;
  const size_t bytes = strtoull(argv[1], nullptr, 10), n = bytes / 4;
  const std::string dir = argv[2], name = argv[3];
  const int rounds = atoi(argv[4]);
  const size_t computed = n < (1u << 20) ? n : (1u << 20);  // the kernel's part
  uint32_t* d = nullptr;
  CHECK(cudaMalloc(&d, bytes));
  printf("%s: %zu bytes at %p\n", name.c_str(), bytes, static_cast<void*>(d));
  fflush(stdout);
  std::vector<uint32_t> host(sparse ? 0 : n);
  for (int round = 1; round <= rounds; ++round) {
    const std::string go = dir + "/" + name + ".go" + std::to_string(round);
    while (!exists(go)) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    auto start = std::chrono::steady_clock::now();
    if (sparse) {
      if (sparseRound(d, bytes, name, round) != 0) return 1;
    } else if (round > 1) {
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
    if (!sparse) {
      for (size_t i = 0; i < n; ++i) host[i] = pattern(i, round);
      CHECK(cudaMemcpy(d, host.data(), bytes, cudaMemcpyHostToDevice));
    }
    CHECK(cudaDeviceSynchronize());
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    printf("%s: round %d done in %.0f ms%s\n", name.c_str(), round, ms,
           round == 1 ? "" : sparse ? " (every byte written checked)" : " (every byte checked)");
    fflush(stdout);
    FILE* f = fopen((dir + "/" + name + ".done" + std::to_string(round)).c_str(), "w");
    if (!f) return 1;
    fclose(f);
  }
  CHECK(cudaFree(d));
  printf("%s: all rounds correct\n", name.c_str());
  return 0;
}

// A program that keeps running while its session moves to another worker (migration_test.cpp):
// two streams, an event between them, kernels in flight each round, module variables (one the
// host writes, one only kernels touch), device memory whose untouched part must survive too.
// It checks everything against the same computation on the CPU at the end.
//
//   migrate_program MIB ROUNDS PAUSE_MS [graph]
// prints "round N" after each round (the test moves it meanwhile), "OK" when every byte is right.
// With "graph" it first builds and launches a CUDA graph (which cannot migrate yet).
#include <dlfcn.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <unistd.h>
#include <vector>

#include <cuda_runtime.h>

__device__ unsigned long long roundsDone;  // kernels only: the host never names it until the end
__device__ uint32_t table[256];            // written by the host

__global__ void step(uint32_t* data, size_t n, uint32_t salt) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x)
    data[i] = data[i] * 1664525u + table[(i + salt) & 255] + salt;
}
__global__ void count() { atomicAdd(&roundsDone, 1ull); }

#define CHECK(x)                                                                             \
  do {                                                                                       \
    cudaError_t err_ = (x);                                                                     \
    if (err_ != cudaSuccess) {                                                                \
      printf("FAIL %s: %s (line %d)\n", #x, cudaGetErrorString(err_), __LINE__);                \
      return 1;                                                                              \
    }                                                                                        \
  } while (0)

// Device memory in use as NVML (the remote NVML stub beside the driver stub) reports it: after
// a move, the NVML session must follow the program to its new worker.
static long long nvmlUsedMiB() {
  static void* nvml = dlopen("libnvidia-ml.so.1", RTLD_NOW);
  if (!nvml) return -1;
  struct Memory { unsigned long long total, free, used; };
  auto init = reinterpret_cast<int (*)()>(dlsym(nvml, "nvmlInit_v2"));
  auto byIndex = reinterpret_cast<int (*)(unsigned, void**)>(dlsym(nvml, "nvmlDeviceGetHandleByIndex_v2"));
  auto memory = reinterpret_cast<int (*)(void*, Memory*)>(dlsym(nvml, "nvmlDeviceGetMemoryInfo"));
  void* dev = nullptr;
  Memory m{};
  if (!init || !byIndex || !memory || init() != 0 || byIndex(0, &dev) != 0 || memory(dev, &m) != 0) return -1;
  return static_cast<long long>(m.used >> 20);
}

static void cpuStep(std::vector<uint32_t>& d, size_t n, uint32_t salt, const uint32_t* t) {
  for (size_t i = 0; i < n; ++i) d[i] = d[i] * 1664525u + t[(i + salt) & 255] + salt;
}

int main(int argc, char** argv) {
  const size_t mib = argc > 1 ? strtoull(argv[1], nullptr, 10) : 64;
  const int rounds = argc > 2 ? atoi(argv[2]) : 10;
  const int pauseMs = argc > 3 ? atoi(argv[3]) : 100;
  const bool graph = argc > 4 && strcmp(argv[4], "graph") == 0;
  const size_t words = mib * (1u << 20) / 2 / sizeof(uint32_t);  // per buffer
  const size_t touched = words < (1u << 18) ? words : (1u << 18);  // what the kernels work on
  setvbuf(stdout, nullptr, _IOLBF, 0);

  std::vector<uint32_t> a(words), b(words);
  for (size_t i = 0; i < words; ++i) {
    a[i] = uint32_t(i * 2654435761u);
    b[i] = uint32_t(i ^ 0x5bd1e995u);
  }
  uint32_t t[256];
  for (int i = 0; i < 256; ++i) t[i] = uint32_t(i * 40503u + 7);

  uint32_t *da = nullptr, *db = nullptr;
  CHECK(cudaMalloc(&da, words * 4));
  CHECK(cudaMalloc(&db, words * 4));
  CHECK(cudaMemcpy(da, a.data(), words * 4, cudaMemcpyHostToDevice));
  CHECK(cudaMemcpy(db, b.data(), words * 4, cudaMemcpyHostToDevice));
  CHECK(cudaMemcpyToSymbol(table, t, sizeof(t)));
  cudaStream_t s1, s2;
  CHECK(cudaStreamCreateWithFlags(&s1, cudaStreamNonBlocking));
  CHECK(cudaStreamCreateWithPriority(&s2, cudaStreamNonBlocking, 0));
  cudaEvent_t e, start, stop;
  CHECK(cudaEventCreateWithFlags(&e, cudaEventDisableTiming));
  CHECK(cudaEventCreate(&start));
  CHECK(cudaEventCreate(&stop));
  CHECK(cudaEventRecord(start, s1));  // timed across the move (when there is one)
  if (graph) {
    cudaGraph_t g;
    cudaGraphExec_t x;
    CHECK(cudaStreamBeginCapture(s1, cudaStreamCaptureModeGlobal));
    count<<<1, 1, 0, s1>>>();
    CHECK(cudaStreamEndCapture(s1, &g));
    CHECK(cudaGraphInstantiate(&x, g, 0));
    CHECK(cudaGraphLaunch(x, s1));
    CHECK(cudaStreamSynchronize(s1));
    // The graph stays: the session cannot move while it holds one.
  }
  const unsigned long long extra = graph ? 1 : 0;
  if (nvmlUsedMiB() < 0) {
    printf("FAIL NVML does not answer\n");
    return 1;
  }
  for (int r = 0; r < rounds; ++r) {
    step<<<64, 256, 0, s1>>>(da, touched, uint32_t(r));
    count<<<1, 1, 0, s1>>>();
    CHECK(cudaEventRecord(e, s1));
    CHECK(cudaStreamWaitEvent(s2, e, 0));
    step<<<64, 256, 0, s2>>>(db, touched, uint32_t(r + 7));
    CHECK(cudaStreamSynchronize(s2));  // a synchronous call: where a pending move happens
    cpuStep(a, touched, uint32_t(r), t);
    cpuStep(b, touched, uint32_t(r + 7), t);
    printf("round %d\n", r + 1);
    usleep(pauseMs * 1000);
  }
  CHECK(cudaEventRecord(stop, s1));
  CHECK(cudaEventSynchronize(stop));
  float elapsed = -1;
  CHECK(cudaEventElapsedTime(&elapsed, start, stop));
  if (elapsed < 0) {
    printf("FAIL a negative time between events\n");
    return 1;
  }
  CHECK(cudaDeviceSynchronize());
  std::vector<uint32_t> ga(words), gb(words);
  CHECK(cudaMemcpy(ga.data(), da, words * 4, cudaMemcpyDeviceToHost));
  CHECK(cudaMemcpy(gb.data(), db, words * 4, cudaMemcpyDeviceToHost));
  unsigned long long done = 0;
  CHECK(cudaMemcpyFromSymbol(&done, roundsDone, sizeof(done)));
  uint32_t gt[256];
  CHECK(cudaMemcpyFromSymbol(gt, table, sizeof(gt)));
  int bad = 0;
  for (size_t i = 0; i < words; ++i) {
    if (ga[i] != a[i] && bad++ < 5) printf("FAIL a[%zu] = %u, want %u\n", i, ga[i], a[i]);
    if (gb[i] != b[i] && bad++ < 5) printf("FAIL b[%zu] = %u, want %u\n", i, gb[i], b[i]);
  }
  if (done != (unsigned long long)rounds + extra) {
    printf("FAIL roundsDone = %llu, want %llu\n", done, (unsigned long long)rounds + extra);
    ++bad;
  }
  if (memcmp(gt, t, sizeof(t)) != 0) {
    printf("FAIL the table variable changed\n");
    ++bad;
  }
  const long long used = nvmlUsedMiB();  // while the memory is still held
  if (used < 0) {
    printf("FAIL NVML does not answer at the end\n");
    return 1;
  }
  printf("nvml used %lld MiB\n", used);
  CHECK(cudaStreamDestroy(s1));
  CHECK(cudaStreamDestroy(s2));
  CHECK(cudaEventDestroy(e));
  CHECK(cudaEventDestroy(start));
  CHECK(cudaEventDestroy(stop));
  CHECK(cudaFree(da));
  CHECK(cudaFree(db));
  if (bad) return 1;
  printf("OK %zu MiB, %d rounds\n", mib, rounds);
  return 0;
}

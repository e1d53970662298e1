// A program that keeps running while its session moves to another worker (migration_test.cpp):
// two streams, an event between them, kernels in flight each round, module variables (one the
// host writes, one only kernels touch), device memory whose untouched part must survive too.
// It checks everything against the same computation on the CPU at the end.
//
//   migrate_program MIB ROUNDS PAUSE_MS [graph|allocgraph]
// prints "round N" after each round (the test moves it meanwhile), "OK" when every byte is right.
// With "graph" each round also launches two executable graphs: one captured from a stream (its
// graph destroyed, the executable updated from a second capture), one built node by node (a
// memset, a kernel whose salt the program changes through the executable every round by its
// node, a kernel disabled in the executable) and a third whose graph embeds the captured one
// in a child graph node (the program holds the embedded graph and its nodes, and reads them
// after the move). With "allocgraph" it holds a graph that allocates memory (which cannot
// migrate yet).
#include <dlfcn.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <unistd.h>
#include <vector>

#include <cuda_runtime.h>

#include "program_check.h"

__device__ unsigned long long roundsDone;  // kernels only: the host never names it until the end
__device__ uint32_t table[256];            // written by the host

__global__ void step(uint32_t* data, size_t n, uint32_t salt) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x)
    data[i] = data[i] * 1664525u + table[(i + salt) & 255] + salt;
}
__global__ void count() { atomicAdd(&roundsDone, 1ull); }


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
  const bool allocGraph = argc > 4 && strcmp(argv[4], "allocgraph") == 0;
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
  if (allocGraph) {
    cudaGraph_t g;
    cudaGraphExec_t x;
    CHECK(cudaStreamBeginCapture(s1, cudaStreamCaptureModeGlobal));
    void* scratch = nullptr;
    CHECK(cudaMallocAsync(&scratch, 4096, s1));
    CHECK(cudaMemsetAsync(scratch, 1, 4096, s1));
    CHECK(cudaFreeAsync(scratch, s1));
    count<<<1, 1, 0, s1>>>();
    CHECK(cudaStreamEndCapture(s1, &g));
    CHECK(cudaGraphInstantiate(&x, g, 0));
    CHECK(cudaGraphLaunch(x, s1));
    CHECK(cudaStreamSynchronize(s1));
    // The graph stays: the session cannot move while it holds memory allocation or free nodes.
  }
  // The graphs: c is stepped by the captured one, d set and stepped by the built one.
  std::vector<uint32_t> c(graph ? touched : 0), dh(graph ? touched : 0);
  uint32_t *dc = nullptr, *dd = nullptr;
  cudaGraphExec_t captured = nullptr, built = nullptr, nested = nullptr;
  cudaGraph_t embedded = nullptr;
  cudaGraphNode_t embeddedCount = nullptr;
  cudaGraphNode_t salted = nullptr;
  uint32_t salt = 0;
  size_t n = touched;
  void* saltedArgs[] = {&dd, &n, &salt};
  cudaKernelNodeParams saltedParams{};
  if (graph) {
    for (size_t i = 0; i < touched; ++i) c[i] = uint32_t(i * 97u + 3);
    CHECK(cudaMalloc(&dc, touched * 4));
    CHECK(cudaMalloc(&dd, touched * 4));
    CHECK(cudaMemcpy(dc, c.data(), touched * 4, cudaMemcpyHostToDevice));
    cudaGraph_t g;
    CHECK(cudaStreamBeginCapture(s1, cudaStreamCaptureModeGlobal));
    step<<<64, 256, 0, s1>>>(dc, touched, 1000u);
    count<<<1, 1, 0, s1>>>();
    CHECK(cudaStreamEndCapture(s1, &g));
    CHECK(cudaGraphInstantiate(&captured, g, 0));
    CHECK(cudaGraphDestroy(g));  // only the executable stays
    // ... updated from another capture of the same shape: it steps with salt 2000 from now on.
    CHECK(cudaStreamBeginCapture(s1, cudaStreamCaptureModeGlobal));
    step<<<64, 256, 0, s1>>>(dc, touched, 2000u);
    count<<<1, 1, 0, s1>>>();
    CHECK(cudaStreamEndCapture(s1, &g));
    cudaGraphExecUpdateResultInfo info{};
    CHECK(cudaGraphExecUpdate(captured, g, &info));
    CHECK(cudaGraphDestroy(g));
    cudaGraph_t kept;
    CHECK(cudaGraphCreate(&kept, 0));
    cudaMemsetParams ms{};
    ms.dst = dd;
    ms.value = 0x01020304u;
    ms.elementSize = 4;
    ms.width = touched;
    ms.height = 1;
    cudaGraphNode_t set, off;
    CHECK(cudaGraphAddMemsetNode(&set, kept, nullptr, 0, &ms));
    saltedParams.func = reinterpret_cast<void*>(step);
    saltedParams.gridDim = dim3(64);
    saltedParams.blockDim = dim3(256);
    saltedParams.kernelParams = saltedArgs;
    CHECK(cudaGraphAddKernelNode(&salted, kept, &set, 1, &saltedParams));
    uint32_t never = 5555;
    void* offArgs[] = {&dd, &n, &never};
    cudaKernelNodeParams offParams = saltedParams;
    offParams.kernelParams = offArgs;
    CHECK(cudaGraphAddKernelNode(&off, kept, &salted, 1, &offParams));
    CHECK(cudaGraphInstantiate(&built, kept, 0));
    CHECK(cudaGraphNodeSetEnabled(built, off, 0));
    // A graph embedding another (a count) in a child graph node, the embedded graph and its
    // node asked for by the program.
    cudaGraph_t inner, outer;
    CHECK(cudaStreamBeginCapture(s1, cudaStreamCaptureModeGlobal));
    count<<<1, 1, 0, s1>>>();
    CHECK(cudaStreamEndCapture(s1, &inner));
    CHECK(cudaGraphCreate(&outer, 0));
    cudaGraphNode_t child;
    CHECK(cudaGraphAddChildGraphNode(&child, outer, nullptr, 0, inner));
    CHECK(cudaGraphDestroy(inner));  // the node holds its own copy
    CHECK(cudaGraphChildGraphNodeGetGraph(child, &embedded));
    size_t one = 1;
    CHECK(cudaGraphGetNodes(embedded, &embeddedCount, &one));
    CHECK(cudaGraphInstantiate(&nested, outer, 0));
  }
  const unsigned long long extra = graph ? 2 * rounds : allocGraph ? 1 : 0;
  if (nvmlUsedMiB() < 0) {
    printf("FAIL NVML does not answer\n");
    return 1;
  }
  for (int r = 0; r < rounds; ++r) {
    step<<<64, 256, 0, s1>>>(da, touched, uint32_t(r));
    count<<<1, 1, 0, s1>>>();
    if (graph) {
      CHECK(cudaGraphLaunch(captured, s1));
      CHECK(cudaGraphLaunch(nested, s1));
    }
    CHECK(cudaEventRecord(e, s1));
    CHECK(cudaStreamWaitEvent(s2, e, 0));
    step<<<64, 256, 0, s2>>>(db, touched, uint32_t(r + 7));
    if (graph) {
      salt = uint32_t(r + 300);  // through the executable, by the node of the graph it came from
      CHECK(cudaGraphExecKernelNodeSetParams(built, salted, &saltedParams));
      CHECK(cudaGraphLaunch(built, s2));
    }
    CHECK(cudaStreamSynchronize(s2));  // a synchronous call: where a pending move happens
    cpuStep(a, touched, uint32_t(r), t);
    cpuStep(b, touched, uint32_t(r + 7), t);
    if (graph) {
      cpuStep(c, touched, 2000u, t);
      for (auto& v : dh) v = 0x01020304u;
      cpuStep(dh, touched, uint32_t(r + 300), t);
    }
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
  int bad = 0;
  if (graph) {
    // The embedded graph and its node, as the program knew them, after the move too.
    cudaGraphNodeType type;
    CHECK(cudaGraphNodeGetType(embeddedCount, &type));
    cudaKernelNodeParams kp{};
    CHECK(cudaGraphKernelNodeGetParams(embeddedCount, &kp));
    size_t nodes = 0;
    CHECK(cudaGraphGetNodes(embedded, nullptr, &nodes));
    if (type != cudaGraphNodeTypeKernel || kp.gridDim.x != 1 || nodes != 1) {
      printf("FAIL the embedded graph reads back as type %d, grid %u, %zu nodes\n", int(type), kp.gridDim.x, nodes);
      ++bad;
    }
    std::vector<uint32_t> gc(touched), gd(touched);
    CHECK(cudaMemcpy(gc.data(), dc, touched * 4, cudaMemcpyDeviceToHost));
    CHECK(cudaMemcpy(gd.data(), dd, touched * 4, cudaMemcpyDeviceToHost));
    for (size_t i = 0; i < touched; ++i) {
      if (gc[i] != c[i] && bad++ < 5) printf("FAIL c[%zu] = %u, want %u (the captured graph)\n", i, gc[i], c[i]);
      if (gd[i] != dh[i] && bad++ < 5) printf("FAIL d[%zu] = %u, want %u (the built graph)\n", i, gd[i], dh[i]);
    }
  }
  unsigned long long done = 0;
  CHECK(cudaMemcpyFromSymbol(&done, roundsDone, sizeof(done)));
  uint32_t gt[256];
  CHECK(cudaMemcpyFromSymbol(gt, table, sizeof(gt)));
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

// CUDA graphs with kernels: a captured chain of kernels and copies replayed with new inputs
// (the graph reads pinned input and writes pinned output each time it runs), an explicitly
// built graph with kernel nodes and their parameters, a kernel node that uses mapped pinned
// memory by its host pointer, and explicit memcpy nodes between pinned and device memory.
#include <vector>

#include "check.h"

__global__ void axpy(float a, const float* x, float* y, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) y[i] = a * x[i] + y[i];
}
__global__ void fill(float* y, float v, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) y[i] = v;
}
struct Pair {
  const float* src;
  float* dst;
};
__global__ void copyPair(Pair p, int n) { // pointers inside a by-value struct
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) p.dst[i] = p.src[i] * 2.0f;
}

int main() {
  TF_CHECK_VGPU(); // in a _limited run: the limiter is there (check.h)
  tf_test::Rng rng(99);
  const int N = 5000, T = 128, B = (N + T - 1) / T;
  cudaStream_t s;
  CHECK(cudaStreamCreate(&s));
  float *hx = nullptr, *hy = nullptr, *dx = nullptr, *dy = nullptr;
  CHECK(cudaMallocHost(&hx, N * sizeof(float)));
  CHECK(cudaMallocHost(&hy, N * sizeof(float)));
  CHECK(cudaMalloc(&dx, N * sizeof(float)));
  CHECK(cudaMalloc(&dy, N * sizeof(float)));

  // Captured: H2D, fill, axpy, D2H.
  CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal));
  CHECK(cudaMemcpyAsync(dx, hx, N * sizeof(float), cudaMemcpyHostToDevice, s));
  fill<<<B, T, 0, s>>>(dy, 1.0f, N);
  axpy<<<B, T, 0, s>>>(3.0f, dx, dy, N);
  CHECK(cudaMemcpyAsync(hy, dy, N * sizeof(float), cudaMemcpyDeviceToHost, s));
  cudaGraph_t g = nullptr;
  CHECK(cudaStreamEndCapture(s, &g));
  cudaGraphExec_t ge = nullptr;
  CHECK(cudaGraphInstantiate(&ge, g, 0));
  for (int iter = 0; iter < 3; ++iter) {
    for (int i = 0; i < N; ++i) hx[i] = float(rng.next() % 1000) / 10.0f;
    CHECK(cudaGraphLaunch(ge, s));
    CHECK(cudaStreamSynchronize(s));
    int bad = 0;
    for (int i = 0; i < N; ++i) bad += hy[i] != 3.0f * hx[i] + 1.0f;
    EXPECT_EQ_INT(bad, 0);
  }
  CHECK(cudaGraphExecDestroy(ge));
  CHECK(cudaGraphDestroy(g));

  // Built by hand: fill(dy, 2) -> axpy(-1, dx, dy) -> copyPair({dy, mapped}).
  float* mapped = nullptr;
  CHECK(cudaHostAlloc(&mapped, N * sizeof(float), cudaHostAllocMapped));
  std::vector<float> x(N);
  for (int i = 0; i < N; ++i) x[i] = float(i % 97);
  CHECK(cudaMemcpy(dx, x.data(), N * sizeof(float), cudaMemcpyHostToDevice));
  CHECK(cudaGraphCreate(&g, 0));
  int n = N;
  float two = 2.0f, minusOne = -1.0f;
  void* fillArgs[] = {&dy, &two, &n};
  void* axpyArgs[] = {&minusOne, &dx, &dy, &n};
  Pair pair{dy, mapped};
  void* pairArgs[] = {&pair, &n};
  cudaKernelNodeParams kp = {};
  kp.gridDim = dim3(B);
  kp.blockDim = dim3(T);
  cudaGraphNode_t n1, n2, n3;
  kp.func = reinterpret_cast<void*>(fill);
  kp.kernelParams = fillArgs;
  CHECK(cudaGraphAddKernelNode(&n1, g, nullptr, 0, &kp));
  kp.func = reinterpret_cast<void*>(axpy);
  kp.kernelParams = axpyArgs;
  CHECK(cudaGraphAddKernelNode(&n2, g, &n1, 1, &kp));
  kp.func = reinterpret_cast<void*>(copyPair);
  kp.kernelParams = pairArgs;
  CHECK(cudaGraphAddKernelNode(&n3, g, &n2, 1, &kp));
  // The node copied its parameters: changing them now changes nothing.
  two = 100.0f;
  CHECK(cudaGraphInstantiate(&ge, g, 0));
  for (int iter = 0; iter < 2; ++iter) {
    std::memset(mapped, 0, N * sizeof(float));
    CHECK(cudaGraphLaunch(ge, s));
    CHECK(cudaStreamSynchronize(s));
    int bad = 0;
    for (int i = 0; i < N; ++i) bad += mapped[i] != 2.0f * (2.0f - x[i]);
    EXPECT_EQ_INT(bad, 0);
  }
  size_t nodes = 0;
  CHECK(cudaGraphGetNodes(g, nullptr, &nodes));
  EXPECT_EQ_INT(nodes, 3);
  cudaGraphNodeType t;
  CHECK(cudaGraphNodeGetType(n2, &t));
  EXPECT_EQ_INT(t, cudaGraphNodeTypeKernel);

  CHECK(cudaGraphExecDestroy(ge));
  CHECK(cudaGraphDestroy(g));

  // Built by hand with copies: hx -> dx, fill(dy, 0.5), axpy(2, dx, dy), dy -> hy.
  CHECK(cudaGraphCreate(&g, 0));
  cudaGraphNode_t up, f2, ax2, down;
  CHECK(cudaGraphAddMemcpyNode1D(&up, g, nullptr, 0, dx, hx, N * sizeof(float), cudaMemcpyHostToDevice));
  float half = 0.5f, twoAgain = 2.0f;
  void* fill2[] = {&dy, &half, &n};
  void* axpy2[] = {&twoAgain, &dx, &dy, &n};
  kp.func = reinterpret_cast<void*>(fill);
  kp.kernelParams = fill2;
  CHECK(cudaGraphAddKernelNode(&f2, g, nullptr, 0, &kp));
  cudaGraphNode_t both[] = {up, f2};
  kp.func = reinterpret_cast<void*>(axpy);
  kp.kernelParams = axpy2;
  CHECK(cudaGraphAddKernelNode(&ax2, g, both, 2, &kp));
  CHECK(cudaGraphAddMemcpyNode1D(&down, g, &ax2, 1, hy, dy, N * sizeof(float), cudaMemcpyDeviceToHost));
  CHECK(cudaGraphNodeGetType(down, &t));
  EXPECT_EQ_INT(t, cudaGraphNodeTypeMemcpy);
  CHECK(cudaGraphInstantiate(&ge, g, 0));
  for (int iter = 0; iter < 3; ++iter) {
    for (int i = 0; i < N; ++i) hx[i] = float((i * 7 + iter) % 50);
    CHECK(cudaGraphLaunch(ge, s));
    CHECK(cudaStreamSynchronize(s));
    int bad = 0;
    for (int i = 0; i < N; ++i) bad += hy[i] != 2.0f * hx[i] + 0.5f;
    EXPECT_EQ_INT(bad, 0);
  }
  CHECK(cudaGraphExecDestroy(ge));
  CHECK(cudaGraphDestroy(g));
  CHECK(cudaStreamDestroy(s));
  CHECK(cudaFreeHost(hx));
  CHECK(cudaFreeHost(hy));
  CHECK(cudaFreeHost(mapped));
  CHECK(cudaFree(dx));
  CHECK(cudaFree(dy));
  return tf_test::summary("graph_kernels");
}

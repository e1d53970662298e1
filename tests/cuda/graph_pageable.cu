// CUDA graphs whose memcpy nodes read and write ordinary pageable host memory (std::vector, a
// stack array), as the driver allows: each launch reads the host buffer as it is then and
// writes the result back; an executable graph keeps working after its graph is destroyed; a
// 2D node with an offset and a pitch touches only its rectangle (host bytes beside it, written
// between launches, survive); one buffer both read and written by nodes of one graph; a clone,
// and a graph holding it as a child node, outliving the graphs they came from.
#include <vector>

#include "check.h"

__global__ void scale(float* y, const float* x, float a, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) y[i] = a * x[i] + 1.0f;
}
__global__ void addOne(unsigned char* p, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) p[i] = static_cast<unsigned char>(p[i] + 1);
}

// A kernel node of `threads` threads in blocks of 128, after `dep` (if any).
static cudaGraphNode_t kernelNode(cudaGraph_t g, cudaGraphNode_t dep, void* func, int threads,
                                  void** args) {
  cudaKernelNodeParams kp{};
  kp.func = func;
  kp.gridDim = dim3((threads + 127) / 128);
  kp.blockDim = dim3(128);
  kp.kernelParams = args;
  cudaGraphNode_t node;
  CHECK(cudaGraphAddKernelNode(&node, g, dep ? &dep : nullptr, dep ? 1 : 0, &kp));
  return node;
}

static void oneDimensional(cudaStream_t s) {
  const int N = 3000;
  std::vector<float> hx(N), hy(N, -1.0f); // pageable
  float *dx, *dy;
  CHECK(cudaMalloc(&dx, N * sizeof(float)));
  CHECK(cudaMalloc(&dy, N * sizeof(float)));
  cudaGraph_t g;
  CHECK(cudaGraphCreate(&g, 0));
  cudaGraphNode_t up, k, down;
  CHECK(cudaGraphAddMemcpyNode1D(&up, g, nullptr, 0, dx, hx.data(), N * sizeof(float),
                                 cudaMemcpyHostToDevice));
  float a = 3.0f;
  int n = N;
  void* args[] = {&dy, &dx, &a, &n};
  k = kernelNode(g, up, reinterpret_cast<void*>(scale), N, args);
  CHECK(cudaGraphAddMemcpyNode1D(&down, g, &k, 1, hy.data(), dy, N * sizeof(float),
                                 cudaMemcpyDeviceToHost));
  cudaGraphExec_t ge;
  CHECK(cudaGraphInstantiate(&ge, g, 0));
  for (int iter = 0; iter < 4; ++iter) {
    if (iter == 2) CHECK(cudaGraphDestroy(g)); // the executable graph lives on
    for (int i = 0; i < N; ++i) hx[i] = float((i * 13 + iter) % 97);
    CHECK(cudaGraphLaunch(ge, s));
    CHECK(cudaStreamSynchronize(s));
    int bad = 0;
    for (int i = 0; i < N; ++i) bad += hy[i] != 3.0f * hx[i] + 1.0f;
    EXPECT_EQ_INT(bad, 0);
  }
  CHECK(cudaGraphExecDestroy(ge));
  CHECK(cudaFree(dx));
  CHECK(cudaFree(dy));
}

// A W x H rectangle at (X, Y) of a pitched host buffer goes to the device, each byte + 1, and
// back into the same rectangle of another buffer; everything around it is the host's.
static void twoDimensional(cudaStream_t s) {
  const size_t P = 256, R = 12, X = 16, Y = 3, W = 100, H = 5;
  unsigned char in[P * R]; // on the stack
  std::vector<unsigned char> out(P * R, 0xEE);
  for (size_t i = 0; i < sizeof in; ++i) in[i] = static_cast<unsigned char>(i * 7);
  unsigned char* d;
  CHECK(cudaMalloc(&d, W * H));
  cudaGraph_t g;
  CHECK(cudaGraphCreate(&g, 0));
  cudaMemcpy3DParms up{};
  up.srcPtr = make_cudaPitchedPtr(in, P, P, R);
  up.srcPos = make_cudaPos(X, Y, 0);
  up.dstPtr = make_cudaPitchedPtr(d, W, W, H);
  up.extent = make_cudaExtent(W, H, 1);
  up.kind = cudaMemcpyHostToDevice;
  cudaMemcpy3DParms down{};
  down.srcPtr = make_cudaPitchedPtr(d, W, W, H);
  down.dstPtr = make_cudaPitchedPtr(out.data(), P, P, R);
  down.dstPos = make_cudaPos(X, Y, 0);
  down.extent = make_cudaExtent(W, H, 1);
  down.kind = cudaMemcpyDeviceToHost;
  cudaGraphNode_t nUp, nK, nDown;
  CHECK(cudaGraphAddMemcpyNode(&nUp, g, nullptr, 0, &up));
  int n = static_cast<int>(W * H);
  void* args[] = {&d, &n};
  nK = kernelNode(g, nUp, reinterpret_cast<void*>(addOne), n, args);
  CHECK(cudaGraphAddMemcpyNode(&nDown, g, &nK, 1, &down));
  cudaGraphExec_t ge;
  CHECK(cudaGraphInstantiate(&ge, g, 0));
  for (int iter = 0; iter < 3; ++iter) {
    for (size_t i = 0; i < sizeof in; ++i) in[i] = static_cast<unsigned char>(i * 7 + iter);
    // The host writes beside the rectangle, on the same rows, between launches.
    for (size_t r = 0; r < R; ++r) out[r * P] = out[r * P + X + W] = static_cast<unsigned char>(iter);
    CHECK(cudaGraphLaunch(ge, s));
    CHECK(cudaStreamSynchronize(s));
    int bad = 0;
    for (size_t r = 0; r < R; ++r)
      for (size_t c = 0; c < P; ++c) {
        bool inside = r >= Y && r < Y + H && c >= X && c < X + W;
        unsigned char want = inside ? static_cast<unsigned char>(in[r * P + c] + 1)
                             : (c == 0 || c == X + W) ? static_cast<unsigned char>(iter)
                                                      : 0xEE;
        bad += out[r * P + c] != want;
      }
    EXPECT_EQ_INT(bad, 0);
  }
  CHECK(cudaGraphExecDestroy(ge));
  CHECK(cudaGraphDestroy(g));
  CHECK(cudaFree(d));
}

// One pageable buffer read by the first node and written by the last.
static void sameBuffer(cudaStream_t s) {
  const int N = 4096;
  std::vector<unsigned char> buf(N);
  for (int i = 0; i < N; ++i) buf[i] = static_cast<unsigned char>(i);
  unsigned char* d;
  CHECK(cudaMalloc(&d, N));
  cudaGraph_t g;
  CHECK(cudaGraphCreate(&g, 0));
  cudaGraphNode_t up, k, down;
  CHECK(cudaGraphAddMemcpyNode1D(&up, g, nullptr, 0, d, buf.data(), N, cudaMemcpyHostToDevice));
  int n = N;
  void* args[] = {&d, &n};
  k = kernelNode(g, up, reinterpret_cast<void*>(addOne), N, args);
  CHECK(cudaGraphAddMemcpyNode1D(&down, g, &k, 1, buf.data(), d, N, cudaMemcpyDeviceToHost));
  cudaGraphExec_t ge;
  CHECK(cudaGraphInstantiate(&ge, g, 0));
  for (int iter = 1; iter <= 3; ++iter) {
    CHECK(cudaGraphLaunch(ge, s));
    CHECK(cudaStreamSynchronize(s));
    int bad = 0;
    for (int i = 0; i < N; ++i) bad += buf[i] != static_cast<unsigned char>(i + iter);
    EXPECT_EQ_INT(bad, 0);
  }
  CHECK(cudaGraphExecDestroy(ge));
  CHECK(cudaGraphDestroy(g));
  CHECK(cudaFree(d));
}

// A clone of a graph whose memcpy nodes use pageable memory, and a graph holding the clone as
// a child node, keep working after the graphs they came from are destroyed.
static void clonesAndChildren(cudaStream_t s) {
  const int N = 5000;
  std::vector<unsigned char> in(N), out(N, 0);
  unsigned char* d;
  CHECK(cudaMalloc(&d, N));
  cudaGraph_t g, clone, parent;
  CHECK(cudaGraphCreate(&g, 0));
  cudaGraphNode_t up, down, child;
  CHECK(cudaGraphAddMemcpyNode1D(&up, g, nullptr, 0, d, in.data(), N, cudaMemcpyHostToDevice));
  CHECK(cudaGraphAddMemcpyNode1D(&down, g, &up, 1, out.data(), d, N, cudaMemcpyDeviceToHost));
  CHECK(cudaGraphClone(&clone, g));
  CHECK(cudaGraphDestroy(g));
  CHECK(cudaGraphCreate(&parent, 0));
  CHECK(cudaGraphAddChildGraphNode(&child, parent, nullptr, 0, clone));
  for (int round = 0; round < 2; ++round) {
    if (round == 1) CHECK(cudaGraphDestroy(clone)); // the parent holds a copy of it
    cudaGraphExec_t e;
    CHECK(cudaGraphInstantiate(&e, round == 0 ? clone : parent, 0));
    for (int i = 0; i < N; ++i) in[i] = static_cast<unsigned char>(i * 3 + round);
    CHECK(cudaGraphLaunch(e, s));
    CHECK(cudaStreamSynchronize(s));
    int bad = 0;
    for (int i = 0; i < N; ++i) bad += out[i] != in[i];
    EXPECT_EQ_INT(bad, 0);
    CHECK(cudaGraphExecDestroy(e));
  }
  CHECK(cudaGraphDestroy(parent));
  CHECK(cudaFree(d));
}

int main() {
  cudaStream_t s;
  CHECK(cudaStreamCreate(&s));
  TF_CHECK_VGPU(); // in a _limited run: the limiter is there (check.h)
  oneDimensional(s);
  twoDimensional(s);
  sameBuffer(s);
  clonesAndChildren(s);
  oneDimensional(s); // again: the first round's mirrors were released with its graphs
  CHECK(cudaStreamDestroy(s));
  return tf_test::summary("graph_pageable");
}

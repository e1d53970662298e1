// Node parameters set again, in a graph and in an executable graph: memcpy nodes moved to pinned
// memory, device memory and other pageable buffers (std::vector; in an executable graph, only
// between pageable buffers, as cudart allows); host nodes given
// another function and data; a memset node another value. Each launch must use the parameters
// set last (the graph's for an executable graph instantiated after the change, the executable
// graph's own after an exec-level change) and leave the buffers used before alone; the
// executable graph keeps its pageable buffers after its graph is destroyed. Parameters of the
// wrong kind of node, and a host node without a function, are refused.
#include <cstring>
#include <vector>

#include "check.h"

__global__ void scale(float* y, const float* x, float a, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) y[i] = a * x[i] + 1.0f;
}

namespace {

constexpr int N = 2000;
constexpr size_t kBytes = N * sizeof(float);

void fill(float* x, int seed) {
  for (int i = 0; i < N; ++i) x[i] = float((i * 7 + seed) % 101);
}
// y == 3x + 1 everywhere (what the graph's kernel makes of x).
int wrong(const float* y, const float* x) {
  int bad = 0;
  for (int i = 0; i < N; ++i) bad += y[i] != 3.0f * x[i] + 1.0f;
  return bad;
}
int notAll(const float* y, float v) {
  int bad = 0;
  for (int i = 0; i < N; ++i) bad += y[i] != v;
  return bad;
}

void memcpyNodes(cudaStream_t s) {
  std::vector<float> x1(N), y1(N, -1.0f), x2(N), y2(N, -2.0f), x3(N), y3(N, -3.0f); // pageable
  float *dx, *dy, *dz, *pinnedX, *pinnedY;
  CHECK(cudaMalloc(&dx, kBytes));
  CHECK(cudaMalloc(&dy, kBytes));
  CHECK(cudaMalloc(&dz, kBytes));
  CHECK(cudaMallocHost(&pinnedX, kBytes));
  CHECK(cudaMallocHost(&pinnedY, kBytes));
  cudaGraph_t g;
  CHECK(cudaGraphCreate(&g, 0));
  cudaGraphNode_t up, k, down;
  CHECK(cudaGraphAddMemcpyNode1D(&up, g, nullptr, 0, dx, x1.data(), kBytes, cudaMemcpyHostToDevice));
  float a = 3.0f;
  int n = N;
  void* args[] = {&dy, &dx, &a, &n};
  cudaKernelNodeParams kp{};
  kp.func = reinterpret_cast<void*>(scale);
  kp.gridDim = dim3((N + 127) / 128);
  kp.blockDim = dim3(128);
  kp.kernelParams = args;
  CHECK(cudaGraphAddKernelNode(&k, g, &up, 1, &kp));
  CHECK(cudaGraphAddMemcpyNode1D(&down, g, &k, 1, y1.data(), dy, kBytes, cudaMemcpyDeviceToHost));

  // In the graph: pinned memory on both sides, then pageable memory in and device memory out,
  // each used by an executable graph instantiated after the change.
  auto launchOnce = [&] {
    cudaGraphExec_t once;
    CHECK(cudaGraphInstantiate(&once, g, 0));
    CHECK(cudaGraphLaunch(once, s));
    CHECK(cudaStreamSynchronize(s));
    CHECK(cudaGraphExecDestroy(once));
  };
  CHECK(cudaGraphMemcpyNodeSetParams1D(up, dx, pinnedX, kBytes, cudaMemcpyHostToDevice));
  CHECK(cudaGraphMemcpyNodeSetParams1D(down, pinnedY, dy, kBytes, cudaMemcpyDeviceToHost));
  fill(pinnedX, 20);
  launchOnce();
  EXPECT_EQ_INT(wrong(pinnedY, pinnedX), 0);
  CHECK(cudaGraphMemcpyNodeSetParams1D(up, dx, x2.data(), kBytes, cudaMemcpyHostToDevice));
  CHECK(cudaGraphMemcpyNodeSetParams1D(down, dz, dy, kBytes, cudaMemcpyDeviceToDevice));
  fill(x2.data(), 21);
  launchOnce();
  std::vector<float> z(N);
  CHECK(cudaMemcpy(z.data(), dz, kBytes, cudaMemcpyDeviceToHost));
  EXPECT_EQ_INT(wrong(z.data(), x2.data()), 0);
  EXPECT_EQ_INT(wrong(pinnedY, pinnedX), 0); // not written again

  // In the graph: other pageable buffers both ways.
  CHECK(cudaGraphMemcpyNodeSetParams1D(down, y2.data(), dy, kBytes, cudaMemcpyDeviceToHost));
  cudaGraphExec_t ge;
  CHECK(cudaGraphInstantiate(&ge, g, 0));
  fill(x1.data(), 1);
  fill(x2.data(), 2);
  CHECK(cudaGraphLaunch(ge, s));
  CHECK(cudaStreamSynchronize(s));
  EXPECT_EQ_INT(wrong(y2.data(), x2.data()), 0);
  EXPECT_EQ_INT(notAll(y1.data(), -1.0f), 0);

  // In the executable graph: a third pair; the graph itself is destroyed first.
  CHECK(cudaGraphExecMemcpyNodeSetParams1D(ge, up, dx, x3.data(), kBytes, cudaMemcpyHostToDevice));
  CHECK(cudaGraphExecMemcpyNodeSetParams1D(ge, down, y3.data(), dy, kBytes, cudaMemcpyDeviceToHost));
  CHECK(cudaGraphDestroy(g));
  std::fill(y2.begin(), y2.end(), -2.0f);
  for (int iter = 0; iter < 3; ++iter) {
    fill(x3.data(), 10 + iter);
    CHECK(cudaGraphLaunch(ge, s));
    CHECK(cudaStreamSynchronize(s));
    EXPECT_EQ_INT(wrong(y3.data(), x3.data()), 0);
  }
  EXPECT_EQ_INT(notAll(y2.data(), -2.0f), 0);

  // A memcpy node's parameters for a kernel node: refused.
  cudaGraph_t g2;
  CHECK(cudaGraphCreate(&g2, 0));
  cudaGraphNode_t k2;
  CHECK(cudaGraphAddKernelNode(&k2, g2, nullptr, 0, &kp));
  EXPECT_ERR(cudaGraphMemcpyNodeSetParams1D(k2, dx, x1.data(), kBytes, cudaMemcpyHostToDevice),
             cudaErrorInvalidValue);
  CHECK(cudaGraphDestroy(g2));

  CHECK(cudaGraphExecDestroy(ge));
  CHECK(cudaFreeHost(pinnedX));
  CHECK(cudaFreeHost(pinnedY));
  CHECK(cudaFree(dx));
  CHECK(cudaFree(dy));
  CHECK(cudaFree(dz));
}

struct Tally {
  int calls = 0;
  int last = 0;
};
void CUDART_CB record(void* p) {
  auto* t = static_cast<Tally*>(p);
  ++t->calls;
  t->last = 1;
}
void CUDART_CB recordOther(void* p) {
  auto* t = static_cast<Tally*>(p);
  ++t->calls;
  t->last = 2;
}

void hostAndMemsetNodes(cudaStream_t s) {
  Tally first, second, third;
  unsigned* d;
  CHECK(cudaMalloc(&d, N * sizeof(unsigned)));
  cudaGraph_t g;
  CHECK(cudaGraphCreate(&g, 0));
  cudaMemsetParams mp{};
  mp.dst = d;
  mp.value = 0x11111111u;
  mp.elementSize = 4;
  mp.width = N;
  mp.height = 1;
  cudaGraphNode_t set, host;
  CHECK(cudaGraphAddMemsetNode(&set, g, nullptr, 0, &mp));
  cudaHostNodeParams hp{record, &first};
  CHECK(cudaGraphAddHostNode(&host, g, &set, 1, &hp));

  // In the graph: another function and data, another value.
  cudaHostNodeParams other{recordOther, &second};
  CHECK(cudaGraphHostNodeSetParams(host, &other));
  mp.value = 0x22222222u;
  CHECK(cudaGraphMemsetNodeSetParams(set, &mp));
  cudaHostNodeParams got{};
  CHECK(cudaGraphHostNodeGetParams(host, &got));
  EXPECT_TRUE(got.fn == recordOther && got.userData == &second);
  cudaGraphExec_t ge;
  CHECK(cudaGraphInstantiate(&ge, g, 0));
  CHECK(cudaGraphLaunch(ge, s));
  CHECK(cudaStreamSynchronize(s));
  EXPECT_EQ_INT(first.calls, 0);
  EXPECT_EQ_INT(second.calls, 1);
  EXPECT_EQ_INT(second.last, 2);
  std::vector<unsigned> h(N);
  CHECK(cudaMemcpy(h.data(), d, N * sizeof(unsigned), cudaMemcpyDeviceToHost));
  int bad = 0;
  for (unsigned v : h) bad += v != 0x22222222u;
  EXPECT_EQ_INT(bad, 0);

  // In the executable graph only: the graph's node keeps its parameters.
  cudaHostNodeParams third_{record, &third};
  CHECK(cudaGraphExecHostNodeSetParams(ge, host, &third_));
  CHECK(cudaGraphLaunch(ge, s));
  CHECK(cudaGraphLaunch(ge, s));
  CHECK(cudaStreamSynchronize(s));
  EXPECT_EQ_INT(second.calls, 1);
  EXPECT_EQ_INT(third.calls, 2);
  EXPECT_EQ_INT(third.last, 1);
  CHECK(cudaGraphHostNodeGetParams(host, &got));
  EXPECT_TRUE(got.fn == recordOther && got.userData == &second);

  // Refused: no function; a host node's parameters for the memset node.
  cudaHostNodeParams none{nullptr, &first};
  EXPECT_ERR(cudaGraphHostNodeSetParams(host, &none), cudaErrorInvalidValue);
  EXPECT_ERR(cudaGraphHostNodeSetParams(set, &other), cudaErrorInvalidValue);
  EXPECT_ERR(cudaGraphExecHostNodeSetParams(ge, set, &other), cudaErrorInvalidValue);
  CHECK(cudaGraphLaunch(ge, s));
  CHECK(cudaStreamSynchronize(s));
  EXPECT_EQ_INT(third.calls, 3);
  EXPECT_EQ_INT(first.calls, 0);

  CHECK(cudaGraphExecDestroy(ge));
  CHECK(cudaGraphDestroy(g));
  CHECK(cudaFree(d));
}

} // namespace

int main() {
  cudaStream_t s;
  CHECK(cudaStreamCreate(&s));
  TF_CHECK_VGPU(); // in a _limited run: the limiter is there (check.h)
  memcpyNodes(s);
  hostAndMemsetNodes(s);
  memcpyNodes(s); // again: the first round's mirrors were released with their graphs
  CHECK(cudaStreamDestroy(s));
  return tf_test::summary("graph_node_params");
}

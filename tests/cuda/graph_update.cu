// CUDA graphs read back and changed, as NVIDIA's graph samples do: a graph built by hand
// (memset -> kernel -> copy -> host), its nodes, types, parameters and edges read back; a
// clone changed on its own; the executable graph's node setters; cudaGraphExecUpdate with a
// graph of the same topology (and refused with another); nodes disabled in the executable
// graph; child graphs; captured kernels read back; bad handles and wrong node types refused.
#include <atomic>
#include <vector>

#include "check.h"

__global__ void addK(int* a, int n, int k) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) a[i] += k;
}

static std::atomic<int> hostCalls{0};
static void CUDART_CB countFn(void*) { hostCalls++; }

constexpr int N = 1000;

struct Built {
  cudaGraph_t graph;
  cudaGraphNode_t memset, kernel, copy, host;
};

// memset(a, 0) -> addK(a, N, k) -> copy a to h -> host
static Built build(int* a, int* h, int k) {
  Built b{};
  CHECK(cudaGraphCreate(&b.graph, 0));
  cudaMemsetParams ms{};
  ms.dst = a;
  ms.value = 0;
  ms.elementSize = 4;
  ms.width = N;
  ms.height = 1;
  CHECK(cudaGraphAddMemsetNode(&b.memset, b.graph, nullptr, 0, &ms));
  int n = N;
  void* args[] = {&a, &n, &k};
  cudaKernelNodeParams kp{};
  kp.func = reinterpret_cast<void*>(addK);
  kp.gridDim = dim3((N + 127) / 128);
  kp.blockDim = dim3(128);
  kp.kernelParams = args;
  CHECK(cudaGraphAddKernelNode(&b.kernel, b.graph, &b.memset, 1, &kp));
  CHECK(cudaGraphAddMemcpyNode1D(&b.copy, b.graph, &b.kernel, 1, h, a, N * sizeof(int),
                                 cudaMemcpyDeviceToHost));
  cudaHostNodeParams hp{countFn, nullptr};
  CHECK(cudaGraphAddHostNode(&b.host, b.graph, &b.copy, 1, &hp));
  return b;
}

// Launches and checks that every element of h is `want`.
static void runAndExpect(cudaGraphExec_t e, cudaStream_t s, int* h, int want, const char* what) {
  for (int i = 0; i < N; ++i) h[i] = -12345;
  CHECK(cudaGraphLaunch(e, s));
  CHECK(cudaStreamSynchronize(s));
  int bad = 0;
  for (int i = 0; i < N; ++i) bad += h[i] != want;
  if (bad) std::fprintf(stderr, "%s: %d elements differ (h[0]=%d, want %d)\n", what, bad, h[0], want);
  EXPECT_EQ_INT(bad, 0);
}

static int kernelArgK(cudaGraphNode_t node) {
  cudaKernelNodeParams p{};
  CHECK(cudaGraphKernelNodeGetParams(node, &p));
  return *static_cast<int*>(p.kernelParams[2]);
}

static void setKernelK(cudaGraphNode_t node, int* a, int* k, cudaGraphExec_t exec = nullptr) {
  cudaKernelNodeParams p{};
  CHECK(cudaGraphKernelNodeGetParams(node, &p));
  int n = N;
  void* args[] = {&a, &n, k};
  p.kernelParams = args;
  if (exec) CHECK(cudaGraphExecKernelNodeSetParams(exec, node, &p));
  else CHECK(cudaGraphKernelNodeSetParams(node, &p));
}

int main() {
  cudaStream_t s;
  CHECK(cudaStreamCreate(&s));
  TF_CHECK_VGPU(); // in a _limited run: the limiter is there (check.h)
  int *a, *h;
  CHECK(cudaMalloc(&a, N * sizeof(int)));
  CHECK(cudaMallocHost(&h, N * sizeof(int)));

  Built b = build(a, h, 2);

  // ---- reading the graph back
  size_t count = 0;
  CHECK(cudaGraphGetNodes(b.graph, nullptr, &count));
  EXPECT_EQ_INT(count, 4);
  cudaGraphNode_t roots[4];
  count = 4;
  CHECK(cudaGraphGetRootNodes(b.graph, roots, &count));
  EXPECT_EQ_INT(count, 1);
  EXPECT_TRUE(roots[0] == b.memset);
  CHECK(cudaGraphGetEdges(b.graph, nullptr, nullptr, nullptr, &count));
  EXPECT_EQ_INT(count, 3);
  cudaGraphNodeType type;
  CHECK(cudaGraphNodeGetType(b.kernel, &type));
  EXPECT_EQ_INT(type, cudaGraphNodeTypeKernel);
  CHECK(cudaGraphNodeGetType(b.copy, &type));
  EXPECT_EQ_INT(type, cudaGraphNodeTypeMemcpy);
  cudaGraphNode_t deps[2] = {};
  count = 2;
  CHECK(cudaGraphNodeGetDependencies(b.copy, deps, nullptr, &count));
  EXPECT_EQ_INT(count, 1);
  EXPECT_TRUE(deps[0] == b.kernel && deps[1] == nullptr);
  count = 2;
  CHECK(cudaGraphNodeGetDependentNodes(b.kernel, deps, nullptr, &count));
  EXPECT_EQ_INT(count, 1);
  EXPECT_TRUE(deps[0] == b.copy);

  cudaKernelNodeParams kp{};
  CHECK(cudaGraphKernelNodeGetParams(b.kernel, &kp));
  EXPECT_EQ_INT(kp.gridDim.x, (N + 127) / 128);
  EXPECT_EQ_INT(kp.blockDim.x, 128);
  EXPECT_TRUE(*static_cast<int**>(kp.kernelParams[0]) == a);
  EXPECT_EQ_INT(*static_cast<int*>(kp.kernelParams[1]), N);
  EXPECT_EQ_INT(*static_cast<int*>(kp.kernelParams[2]), 2);
  cudaMemsetParams msp{};
  CHECK(cudaGraphMemsetNodeGetParams(b.memset, &msp));
  EXPECT_TRUE(msp.dst == a && msp.width == N && msp.elementSize == 4);
  cudaMemcpy3DParms cp{};
  CHECK(cudaGraphMemcpyNodeGetParams(b.copy, &cp));
  EXPECT_EQ_INT(cp.extent.width, N * sizeof(int));
  cudaHostNodeParams hp{};
  CHECK(cudaGraphHostNodeGetParams(b.host, &hp));
  EXPECT_TRUE(hp.fn == countFn);

  // Wrong node types and bad handles are refused, and change nothing.
  EXPECT_ERR(cudaGraphKernelNodeGetParams(b.memset, &kp), cudaErrorInvalidValue);
  EXPECT_ERR(cudaGraphMemsetNodeGetParams(b.kernel, &msp), cudaErrorInvalidValue);
  EXPECT_ERR(cudaGraphNodeGetType(reinterpret_cast<cudaGraphNode_t>(&count), &type), cudaErrorInvalidValue);

  // ---- instantiate and run; the node's own setter reaches later instantiations only
  cudaGraphExec_t exec;
  CHECK(cudaGraphInstantiate(&exec, b.graph, 0));
  runAndExpect(exec, s, h, 2, "instantiated");
  EXPECT_EQ_INT(hostCalls.load(), 1);

  // ---- a clone changed on its own
  cudaGraph_t clone;
  CHECK(cudaGraphClone(&clone, b.graph));
  cudaGraphNode_t cloneKernel = nullptr;
  CHECK(cudaGraphNodeFindInClone(&cloneKernel, b.kernel, clone));
  EXPECT_TRUE(cloneKernel != nullptr && cloneKernel != b.kernel);
  int five = 5;
  setKernelK(cloneKernel, a, &five);
  EXPECT_EQ_INT(kernelArgK(cloneKernel), 5);
  EXPECT_EQ_INT(kernelArgK(b.kernel), 2); // the original is untouched
  cudaGraphExec_t cloneExec;
  CHECK(cudaGraphInstantiate(&cloneExec, clone, 0));
  runAndExpect(cloneExec, s, h, 5, "clone");
  runAndExpect(exec, s, h, 2, "original after clone change");

  // ---- the executable graph's setter changes that executable graph only
  int seven = 7;
  setKernelK(b.kernel, a, &seven, exec);
  runAndExpect(exec, s, h, 7, "exec kernel node set");
  EXPECT_EQ_INT(kernelArgK(b.kernel), 2);
  cudaMemsetParams ms1 = msp;
  ms1.value = 0x01010101; // 16843009 + 7
  CHECK(cudaGraphExecMemsetNodeSetParams(exec, b.memset, &ms1));
  runAndExpect(exec, s, h, 0x01010101 + 7, "exec memset node set");
  ms1.value = 0;
  CHECK(cudaGraphExecMemsetNodeSetParams(exec, b.memset, &ms1));
  // A node of another graph is not in this executable graph.
  EXPECT_ERR(cudaGraphExecKernelNodeSetParams(exec, cloneKernel, &kp), cudaErrorInvalidValue);

  // ---- disabled nodes are skipped
  CHECK(cudaGraphNodeSetEnabled(exec, b.kernel, 0));
  unsigned enabled = 1;
  CHECK(cudaGraphNodeGetEnabled(exec, b.kernel, &enabled));
  EXPECT_EQ_INT(enabled, 0);
  runAndExpect(exec, s, h, 0, "kernel disabled");
  CHECK(cudaGraphNodeSetEnabled(exec, b.kernel, 1));
  runAndExpect(exec, s, h, 7, "kernel enabled again");

  // ---- whole-graph update from a graph of the same topology (the clone, k = 5)
  cudaGraphExecUpdateResultInfo info{};
  CHECK(cudaGraphExecUpdate(exec, clone, &info));
  EXPECT_EQ_INT(info.result, cudaGraphExecUpdateSuccess);
  runAndExpect(exec, s, h, 5, "exec updated from clone");
  // ... and refused from one with another topology, leaving the executable graph as it was.
  cudaGraphNode_t extra;
  CHECK(cudaGraphAddEmptyNode(&extra, clone, nullptr, 0));
  EXPECT_ERR(cudaGraphExecUpdate(exec, clone, &info), cudaErrorGraphExecUpdateFailure);
  EXPECT_EQ_INT(info.result, cudaGraphExecUpdateErrorTopologyChanged);
  runAndExpect(exec, s, h, 5, "exec after refused update");
  CHECK(cudaGraphDestroyNode(extra));
  // Same node count, another type in one place: refused as a type change.
  cudaGraph_t other = build(a, h, 1).graph;
  cudaGraphNode_t otherNodes[4];
  count = 4;
  CHECK(cudaGraphGetNodes(other, otherNodes, &count));
  CHECK(cudaGraphDestroyNode(otherNodes[3]));
  CHECK(cudaGraphAddEmptyNode(&extra, other, &otherNodes[2], 1));
  EXPECT_ERR(cudaGraphExecUpdate(exec, other, &info), cudaErrorGraphExecUpdateFailure);
  EXPECT_EQ_INT(info.result, cudaGraphExecUpdateErrorNodeTypeChanged);
  EXPECT_TRUE(info.errorNode == extra);

  // ---- child graphs
  cudaGraph_t parent;
  CHECK(cudaGraphCreate(&parent, 0));
  cudaGraphNode_t childNode;
  CHECK(cudaGraphAddChildGraphNode(&childNode, parent, nullptr, 0, b.graph));
  cudaGraph_t embedded = nullptr;
  CHECK(cudaGraphChildGraphNodeGetGraph(childNode, &embedded));
  EXPECT_TRUE(embedded != nullptr && embedded != b.graph); // the node owns a copy
  CHECK(cudaGraphGetNodes(embedded, nullptr, &count));
  EXPECT_EQ_INT(count, 4);
  EXPECT_ERR(cudaGraphChildGraphNodeGetGraph(b.kernel, &embedded), cudaErrorInvalidValue);
  cudaGraphExec_t parentExec;
  CHECK(cudaGraphInstantiate(&parentExec, parent, 0));
  runAndExpect(parentExec, s, h, 2, "child graph");
  CHECK(cudaGraphExecChildGraphNodeSetParams(parentExec, childNode, clone));
  runAndExpect(parentExec, s, h, 5, "child graph replaced");

  // ---- captured kernels and memsets can be read back too
  cudaStream_t cs;
  CHECK(cudaStreamCreate(&cs));
  CHECK(cudaStreamBeginCapture(cs, cudaStreamCaptureModeGlobal));
  CHECK(cudaMemsetAsync(a, 0, N * sizeof(int), cs));
  addK<<<(N + 127) / 128, 128, 0, cs>>>(a, N, 11);
  CHECK(cudaMemcpyAsync(h, a, N * sizeof(int), cudaMemcpyDeviceToHost, cs));
  cudaGraph_t captured;
  CHECK(cudaStreamEndCapture(cs, &captured));
  cudaGraphNode_t cap[3];
  count = 3;
  CHECK(cudaGraphGetNodes(captured, cap, &count));
  EXPECT_EQ_INT(count, 3);
  CHECK(cudaGraphNodeGetType(cap[1], &type));
  EXPECT_EQ_INT(type, cudaGraphNodeTypeKernel);
  EXPECT_EQ_INT(kernelArgK(cap[1]), 11);
  CHECK(cudaGraphMemsetNodeGetParams(cap[0], &msp));
  EXPECT_TRUE(msp.dst == a && msp.value == 0);
  CHECK(cudaGraphMemcpyNodeGetParams(cap[2], &cp));
  EXPECT_EQ_INT(cp.extent.width, N * sizeof(int));
  int twelve = 12;
  setKernelK(cap[1], a, &twelve);
  cudaGraphExec_t capExec;
  CHECK(cudaGraphInstantiate(&capExec, captured, 0));
  runAndExpect(capExec, s, h, 12, "captured graph, kernel node changed");

  CHECK(cudaGraphExecDestroy(capExec));
  CHECK(cudaGraphExecDestroy(parentExec));
  CHECK(cudaGraphExecDestroy(cloneExec));
  CHECK(cudaGraphExecDestroy(exec));
  EXPECT_ERR(cudaGraphDestroy(embedded), cudaErrorInvalidValue); // belongs to its node
  for (cudaGraph_t g : {captured, parent, other, clone, b.graph}) CHECK(cudaGraphDestroy(g));
  EXPECT_ERR(cudaGraphNodeGetType(b.kernel, &type), cudaErrorInvalidValue); // destroyed with it
  CHECK(cudaFree(a));
  CHECK(cudaFreeHost(h));
  CHECK(cudaStreamDestroy(cs));
  CHECK(cudaStreamDestroy(s));
  return tf_test::summary("graph_update");
}

// Less used graph calls, as a program would make them: edges removed again
// (cudaGraphRemoveDependencies), kernel node attributes set, read back and copied between
// nodes, an executable's flags read back (cudaGraphExecGetFlags), an instantiation with
// parameters that uploads the graph on a stream (cudaGraphInstantiateWithParams), and the
// generic node calls (cudaGraphAddNode, cudaGraphNodeSetParams, cudaGraphExecNodeSetParams);
// results and refusals (an edge that is not there, an attribute of a memset node, a kernel
// node given memset parameters) checked.
#include <vector>

#include "check.h"

__global__ void addK(int* a, int n, int k) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) a[i] += k;
}
__global__ void doubleK(int* a, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) a[i] *= 2;
}

constexpr int N = 512;

int main() {
  TF_CHECK_VGPU();
  int* a = nullptr;
  CHECK(cudaMalloc(&a, N * sizeof(int)));
  cudaStream_t s;
  CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));

  // memset(a, 0) -> add 5 -> double: 10 everywhere.
  cudaGraph_t g;
  CHECK(cudaGraphCreate(&g, 0));
  cudaMemsetParams ms{};
  ms.dst = a;
  ms.elementSize = 4;
  ms.width = N;
  ms.height = 1;
  cudaGraphNode_t set, add, twice;
  CHECK(cudaGraphAddMemsetNode(&set, g, nullptr, 0, &ms));
  int n = N, k = 5;
  void* addArgs[] = {&a, &n, &k};
  cudaKernelNodeParams kp{};
  kp.func = reinterpret_cast<void*>(addK);
  kp.gridDim = dim3((N + 127) / 128);
  kp.blockDim = dim3(128);
  kp.kernelParams = addArgs;
  CHECK(cudaGraphAddKernelNode(&add, g, &set, 1, &kp));
  void* twiceArgs[] = {&a, &n};
  cudaKernelNodeParams dp = kp;
  dp.func = reinterpret_cast<void*>(doubleK);
  dp.kernelParams = twiceArgs;
  CHECK(cudaGraphAddKernelNode(&twice, g, &add, 1, &dp));

  // An edge removed and put back; one that is not there is refused.
  CHECK(cudaGraphRemoveDependencies(g, &add, &twice, nullptr, 1));
  size_t deps = 9;
  CHECK(cudaGraphNodeGetDependencies(twice, nullptr, nullptr, &deps));
  EXPECT_EQ_INT(deps, 0);
  EXPECT_ERR(cudaGraphRemoveDependencies(g, &add, &twice, nullptr, 1), cudaErrorInvalidValue);
  (void)cudaGetLastError();
  CHECK(cudaGraphAddDependencies(g, &add, &twice, nullptr, 1));
  CHECK(cudaGraphNodeGetDependencies(twice, nullptr, nullptr, &deps));
  EXPECT_EQ_INT(deps, 1);

  // Kernel node attributes: set, read back, copied to another node; a memset node has none.
  cudaKernelNodeAttrValue v{};
  v.priority = 1;
  CHECK(cudaGraphKernelNodeSetAttribute(add, cudaKernelNodeAttributePriority, &v));
  cudaKernelNodeAttrValue back{};
  CHECK(cudaGraphKernelNodeGetAttribute(add, cudaKernelNodeAttributePriority, &back));
  EXPECT_EQ_INT(back.priority, 1);
  CHECK(cudaGraphKernelNodeCopyAttributes(twice, add));
  back = {};
  CHECK(cudaGraphKernelNodeGetAttribute(twice, cudaKernelNodeAttributePriority, &back));
  EXPECT_EQ_INT(back.priority, 1);
  EXPECT_TRUE(cudaGraphKernelNodeSetAttribute(set, cudaKernelNodeAttributePriority, &v) != cudaSuccess);
  (void)cudaGetLastError();

  // Instantiated with flags, read back; with parameters, uploaded on a stream.
  cudaGraphExec_t plain, uploaded;
  CHECK(cudaGraphInstantiateWithFlags(&plain, g, cudaGraphInstantiateFlagAutoFreeOnLaunch));
  unsigned long long flags = 0;
  CHECK(cudaGraphExecGetFlags(plain, &flags));
  EXPECT_EQ_INT(flags, cudaGraphInstantiateFlagAutoFreeOnLaunch);
  cudaGraphInstantiateParams ip{};
  ip.flags = cudaGraphInstantiateFlagUpload;
  ip.uploadStream = s;
  CHECK(cudaGraphInstantiateWithParams(&uploaded, g, &ip));
  EXPECT_EQ_INT(ip.result_out, cudaGraphInstantiateSuccess);
  for (cudaGraphExec_t x : {plain, uploaded}) {
    CHECK(cudaMemsetAsync(a, 0x7f, N * sizeof(int), s));
    CHECK(cudaGraphLaunch(x, s));
    std::vector<int> got(N, -1);
    CHECK(cudaMemcpyAsync(got.data(), a, N * sizeof(int), cudaMemcpyDeviceToHost, s));
    CHECK(cudaStreamSynchronize(s));
    EXPECT_EQ_INT(got[0], 10);
    EXPECT_EQ_INT(got[N - 1], 10);
  }

  // The generic node calls: a memset and a kernel added with cudaGraphAddNode, changed with
  // cudaGraphNodeSetParams and, in the executable, with cudaGraphExecNodeSetParams.
  cudaGraph_t generic;
  CHECK(cudaGraphCreate(&generic, 0));
  cudaGraphNodeParams gp{};
  gp.type = cudaGraphNodeTypeMemset;
  gp.memset.dst = a;
  gp.memset.value = 1;
  gp.memset.elementSize = 4;
  gp.memset.width = N;
  gp.memset.height = 1;
  cudaGraphNode_t gset, gadd;
  CHECK(cudaGraphAddNode(&gset, generic, nullptr, nullptr, 0, &gp));
  int gk = 2;
  void* gArgs[] = {&a, &n, &gk};
  cudaGraphNodeParams kn{};
  kn.type = cudaGraphNodeTypeKernel;
  kn.kernel.func = reinterpret_cast<void*>(addK);
  kn.kernel.gridDim = dim3((N + 127) / 128);
  kn.kernel.blockDim = dim3(128);
  kn.kernel.kernelParams = gArgs;
  CHECK(cudaGraphAddNode(&gadd, generic, &gset, nullptr, 1, &kn));
  gp.memset.value = 3;  // 3 + 2
  CHECK(cudaGraphNodeSetParams(gset, &gp));
  cudaGraphExec_t gx;
  CHECK(cudaGraphInstantiate(&gx, generic, 0));
  auto runGeneric = [&](int want) {
    CHECK(cudaGraphLaunch(gx, s));
    std::vector<int> got(N, -1);
    CHECK(cudaMemcpyAsync(got.data(), a, N * sizeof(int), cudaMemcpyDeviceToHost, s));
    CHECK(cudaStreamSynchronize(s));
    EXPECT_EQ_INT(got[0], want);
    EXPECT_EQ_INT(got[N - 1], want);
  };
  runGeneric(5);
  gk = 40;  // 3 + 40, through the executable
  CHECK(cudaGraphExecNodeSetParams(gx, gadd, &kn));
  runGeneric(43);
  EXPECT_ERR(cudaGraphNodeSetParams(gadd, &gp), cudaErrorInvalidValue);  // a kernel node is no memset
  (void)cudaGetLastError();
  CHECK(cudaGraphExecDestroy(gx));
  CHECK(cudaGraphDestroy(generic));

  CHECK(cudaGraphExecDestroy(plain));
  CHECK(cudaGraphExecDestroy(uploaded));
  CHECK(cudaGraphDestroy(g));
  CHECK(cudaStreamDestroy(s));
  CHECK(cudaFree(a));
  return tf_test::summary("graph_extras");
}

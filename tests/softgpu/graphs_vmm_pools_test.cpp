#include <cstring>
#include <vector>

#include "driver_test.h"

namespace {

void bump(void* p) { ++*static_cast<int*>(p); }

TEST_F(DriverTest, CapturedGraphReplaysCopiesAndMemsets) {
  CUstream s;
  ASSERT_CU(cuStreamCreate(&s, CU_STREAM_NON_BLOCKING));
  CUdeviceptr d;
  ASSERT_CU(cuMemAlloc(&d, 1024));
  void* host;
  ASSERT_CU(cuMemAllocHost(&host, 1024));
  int calls = 0;
  ASSERT_CU(cuStreamBeginCapture(s, CU_STREAM_CAPTURE_MODE_GLOBAL));
  CUstreamCaptureStatus st;
  ASSERT_CU(cuStreamIsCapturing(s, &st));
  EXPECT_EQ(st, CU_STREAM_CAPTURE_STATUS_ACTIVE);
  ASSERT_CU(cuMemsetD8Async(d, 0x5a, 1024, s));
  ASSERT_CU(cuMemcpyDtoHAsync(host, d, 1024, s));
  ASSERT_CU(cuLaunchHostFunc(s, bump, &calls));
  CUgraph g;
  ASSERT_CU(cuStreamEndCapture(s, &g));
  EXPECT_EQ(calls, 0); // captured, not run
  size_t n = 0;
  ASSERT_CU(cuGraphGetNodes(g, nullptr, &n));
  EXPECT_EQ(n, 3u);
  CUgraphExec exec;
  ASSERT_CU(cuGraphInstantiate(&exec, g, 0));
  for (int i = 0; i < 3; ++i) {
    memset(host, 0, 1024);
    ASSERT_CU(cuGraphLaunch(exec, s));
    ASSERT_CU(cuStreamSynchronize(s));
    EXPECT_EQ(static_cast<unsigned char*>(host)[1023], 0x5a);
  }
  EXPECT_EQ(calls, 3);
  ASSERT_CU(cuGraphExecDestroy(exec));
  ASSERT_CU(cuGraphDestroy(g));
  ASSERT_CU(cuMemFree(d));
  ASSERT_CU(cuMemFreeHost(host));
  ASSERT_CU(cuStreamDestroy(s));
}

TEST_F(DriverTest, SynchronisingDuringCaptureInvalidatesIt) {
  CUstream s;
  ASSERT_CU(cuStreamCreate(&s, CU_STREAM_NON_BLOCKING));
  ASSERT_CU(cuStreamBeginCapture(s, CU_STREAM_CAPTURE_MODE_GLOBAL));
  EXPECT_EQ(cuStreamSynchronize(s), CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED);
  CUstreamCaptureStatus st;
  ASSERT_CU(cuStreamIsCapturing(s, &st));
  EXPECT_EQ(st, CU_STREAM_CAPTURE_STATUS_INVALIDATED);
  CUgraph g = reinterpret_cast<CUgraph>(1);
  EXPECT_EQ(cuStreamEndCapture(s, &g), CUDA_ERROR_STREAM_CAPTURE_INVALIDATED);
  EXPECT_EQ(g, nullptr);
  ASSERT_CU(cuStreamIsCapturing(s, &st));
  EXPECT_EQ(st, CU_STREAM_CAPTURE_STATUS_NONE);
  ASSERT_CU(cuStreamDestroy(s));
}

TEST_F(DriverTest, ExplicitGraphRespectsDependencies) {
  CUgraph g;
  ASSERT_CU(cuGraphCreate(&g, 0));
  CUdeviceptr d;
  ASSERT_CU(cuMemAlloc(&d, 256));
  CUDA_MEMSET_NODE_PARAMS ms{};
  ms.dst = d;
  ms.value = 0x01020304;
  ms.elementSize = 4;
  ms.width = 64;
  ms.height = 1;
  CUgraphNode set, host;
  ASSERT_CU(cuGraphAddMemsetNode(&set, g, nullptr, 0, &ms, ctx_));
  int calls = 0;
  CUDA_HOST_NODE_PARAMS hp{bump, &calls};
  ASSERT_CU(cuGraphAddHostNode(&host, g, &set, 1, &hp));
  CUgraphExec exec;
  ASSERT_CU(cuGraphInstantiate(&exec, g, 0));
  ASSERT_CU(cuGraphLaunch(exec, nullptr));
  ASSERT_CU(cuCtxSynchronize());
  uint32_t back[64];
  ASSERT_CU(cuMemcpyDtoH(back, d, sizeof back));
  EXPECT_EQ(back[63], 0x01020304u);
  EXPECT_EQ(calls, 1);
  ASSERT_CU(cuGraphExecDestroy(exec));
  ASSERT_CU(cuGraphDestroy(g));
  EXPECT_EQ(cuGraphDestroy(g), CUDA_ERROR_INVALID_VALUE);
  ASSERT_CU(cuMemFree(d));
}

// A kernel without parameters, added as a node with neither kernelParams nor extra (as the
// driver allows): it runs each launch (a worker rebuilding a moved client's graph adds it so).
TEST_F(DriverTest, KernelNodeWithoutParametersRuns) {
  static const char kPtx[] = R"(
.version 7.0
.target sm_50
.address_size 64
.visible .global .align 4 .u32 runs;
.visible .entry tick()
{
  .reg .b32 %r<2>;
  ld.global.u32 %r1, [runs];
  add.u32 %r1, %r1, 1;
  st.global.u32 [runs], %r1;
  ret;
}
)";
  CUmodule mod;
  ASSERT_CU(cuModuleLoadData(&mod, kPtx));
  CUfunction tick;
  ASSERT_CU(cuModuleGetFunction(&tick, mod, "tick"));
  CUgraph g;
  ASSERT_CU(cuGraphCreate(&g, 0));
  CUDA_KERNEL_NODE_PARAMS kp{};
  kp.func = tick;
  kp.gridDimX = kp.gridDimY = kp.gridDimZ = 1;
  kp.blockDimX = kp.blockDimY = kp.blockDimZ = 1;
  CUgraphNode node;
  ASSERT_CU(cuGraphAddKernelNode(&node, g, nullptr, 0, &kp));
  CUgraphExec exec;
  ASSERT_CU(cuGraphInstantiate(&exec, g, 0));
  for (int i = 0; i < 3; ++i) ASSERT_CU(cuGraphLaunch(exec, nullptr));
  ASSERT_CU(cuCtxSynchronize());
  CUdeviceptr runs;
  size_t size = 0;
  ASSERT_CU(cuModuleGetGlobal(&runs, &size, mod, "runs"));
  uint32_t back = 0;
  ASSERT_CU(cuMemcpyDtoH(&back, runs, sizeof back));
  EXPECT_EQ(back, 3u);
  ASSERT_CU(cuGraphExecDestroy(exec));
  ASSERT_CU(cuGraphDestroy(g));
  ASSERT_CU(cuModuleUnload(mod));
}

TEST_F(DriverTest, VmmMappingsOfOneHandleAlias) {
  CUmemAllocationProp prop{};
  prop.type = CU_MEM_ALLOCATION_TYPE_PINNED;
  prop.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
  prop.location.id = 0;
  size_t gran = 0;
  ASSERT_CU(cuMemGetAllocationGranularity(&gran, &prop, CU_MEM_ALLOC_GRANULARITY_MINIMUM));
  ASSERT_GT(gran, 0u);
  size_t free0, total;
  ASSERT_CU(cuMemGetInfo(&free0, &total));
  CUmemGenericAllocationHandle h;
  ASSERT_CU(cuMemCreate(&h, gran, &prop, 0));
  size_t free1;
  ASSERT_CU(cuMemGetInfo(&free1, &total));
  EXPECT_EQ(free0 - free1, gran); // physical memory is charged at creation
  CUdeviceptr va;
  ASSERT_CU(cuMemAddressReserve(&va, 2 * gran, 0, 0, 0));
  ASSERT_CU(cuMemMap(va, gran, 0, h, 0));
  ASSERT_CU(cuMemMap(va + gran, gran, 0, h, 0));
  CUmemAccessDesc access{};
  access.location = prop.location;
  access.flags = CU_MEM_ACCESS_FLAGS_PROT_READWRITE;
  ASSERT_CU(cuMemSetAccess(va, 2 * gran, &access, 1));
  uint32_t v = 0xabcdef01, back = 0;
  ASSERT_CU(cuMemcpyHtoD(va + 64, &v, 4));
  ASSERT_CU(cuMemcpyDtoH(&back, va + gran + 64, 4)); // the second mapping sees it
  EXPECT_EQ(back, v);
  EXPECT_EQ(cuMemMap(va, gran, 0, h, 0), CUDA_ERROR_INVALID_VALUE); // already mapped
  ASSERT_CU(cuMemRelease(h)); // the mappings keep the memory alive
  ASSERT_CU(cuMemcpyDtoH(&back, va + 64, 4));
  EXPECT_EQ(back, v);
  ASSERT_CU(cuMemUnmap(va, 2 * gran));
  ASSERT_CU(cuMemAddressFree(va, 2 * gran));
  size_t free2;
  ASSERT_CU(cuMemGetInfo(&free2, &total));
  EXPECT_EQ(free2, free0);
}

TEST_F(DriverTest, StreamOrderedAllocationReusesPoolMemory) {
  CUstream s;
  ASSERT_CU(cuStreamCreate(&s, 0));
  CUmemoryPool pool;
  ASSERT_CU(cuDeviceGetDefaultMemPool(&pool, 0));
  cuuint64_t keep = 1 << 30;
  ASSERT_CU(cuMemPoolSetAttribute(pool, CU_MEMPOOL_ATTR_RELEASE_THRESHOLD, &keep));
  CUdeviceptr a, b;
  ASSERT_CU(cuMemAllocAsync(&a, 1 << 20, s));
  ASSERT_CU(cuMemsetD8Async(a, 3, 1 << 20, s));
  uint8_t byte = 0;
  ASSERT_CU(cuMemcpyDtoHAsync(&byte, a + 12345, 1, s));
  ASSERT_CU(cuMemFreeAsync(a, s));
  ASSERT_CU(cuStreamSynchronize(s));
  EXPECT_EQ(byte, 3);
  cuuint64_t used = 1, reserved = 0;
  ASSERT_CU(cuMemPoolGetAttribute(pool, CU_MEMPOOL_ATTR_USED_MEM_CURRENT, &used));
  ASSERT_CU(cuMemPoolGetAttribute(pool, CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT, &reserved));
  EXPECT_EQ(used, 0u);
  EXPECT_EQ(reserved, 1u << 20);
  ASSERT_CU(cuMemAllocAsync(&b, 1 << 20, s));
  EXPECT_EQ(b, a); // reused from the pool
  ASSERT_CU(cuMemFreeAsync(b, s));
  ASSERT_CU(cuStreamSynchronize(s));
  ASSERT_CU(cuMemPoolTrimTo(pool, 0));
  ASSERT_CU(cuMemPoolGetAttribute(pool, CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT, &reserved));
  EXPECT_EQ(reserved, 0u);
  EXPECT_EQ(cuMemFreeAsync(b, s), CUDA_ERROR_INVALID_VALUE); // not live any more
  ASSERT_CU(cuStreamDestroy(s));
}

} // namespace

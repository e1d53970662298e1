// Driver-level behaviour docs/softgpu.md promises that no other test reached: cuLaunchKernelEx and
// cuLaunchCooperativeKernel, occupancy, cuFuncGetParamInfo, peer access and peer copies, child
// graph nodes, and exporting a VMM allocation to a file descriptor.
#include <cstring>
#include <sys/mman.h>
#include <unistd.h>
#include <vector>

#include "driver_test.h"

namespace {

class LaunchTest : public DriverTest {
protected:
  void SetUp() override {
    DriverTest::SetUp();
    ASSERT_CU(cuModuleLoadData(&mod_, kFillPtx));
    ASSERT_CU(cuModuleGetFunction(&fill_, mod_, "fill"));
    ASSERT_CU(cuMemAlloc(&out_, kCount * 4));
    ASSERT_CU(cuMemsetD32(out_, 0, kCount));
  }
  void TearDown() override {
    EXPECT_CU(cuMemFree(out_));
    EXPECT_CU(cuModuleUnload(mod_));
    DriverTest::TearDown();
  }
  // Expects out[i] == v + i for the first n words and 0 after them.
  void expectFilled(uint32_t v, uint32_t n) {
    std::vector<uint32_t> got(kCount);
    ASSERT_CU(cuMemcpyDtoH(got.data(), out_, kCount * 4));
    for (uint32_t i = 0; i < kCount; ++i) ASSERT_EQ(got[i], i < n ? v + i : 0u) << "word " << i;
  }

  static constexpr uint32_t kCount = 1024;
  CUmodule mod_ = nullptr;
  CUfunction fill_ = nullptr;
  CUdeviceptr out_ = 0;
};

TEST_F(LaunchTest, LaunchKernelExRunsTheKernelAndChecksItsConfig) {
  uint32_t v = 100;
  uint64_t pad = 0;
  void* params[] = {&out_, &v, &pad};
  CUlaunchAttribute attr{};
  attr.id = CU_LAUNCH_ATTRIBUTE_PRIORITY; // a scheduling hint: accepted, no effect
  attr.value.priority = 0;
  CUlaunchConfig cfg{};
  cfg.gridDimX = 4;
  cfg.gridDimY = cfg.gridDimZ = 1;
  cfg.blockDimX = 64;
  cfg.blockDimY = cfg.blockDimZ = 1;
  cfg.attrs = &attr;
  cfg.numAttrs = 1;
  ASSERT_CU(cuLaunchKernelEx(&cfg, fill_, params, nullptr));
  ASSERT_CU(cuCtxSynchronize());
  expectFilled(100, 256);

  // Both params and extra, a null config, attributes missing, an unknown attribute: refused.
  void* extra[] = {CU_LAUNCH_PARAM_END};
  EXPECT_EQ(cuLaunchKernelEx(&cfg, fill_, params, extra), CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(cuLaunchKernelEx(nullptr, fill_, params, nullptr), CUDA_ERROR_INVALID_VALUE);
  CUlaunchConfig noAttrs = cfg;
  noAttrs.attrs = nullptr;
  EXPECT_EQ(cuLaunchKernelEx(&noAttrs, fill_, params, nullptr), CUDA_ERROR_INVALID_VALUE);
  CUlaunchAttribute bad{};
  bad.id = static_cast<CUlaunchAttributeID>(0x7fff);
  CUlaunchConfig badCfg = cfg;
  badCfg.attrs = &bad;
  EXPECT_EQ(cuLaunchKernelEx(&badCfg, fill_, params, nullptr), CUDA_ERROR_INVALID_VALUE);
  ASSERT_CU(cuCtxSynchronize());
  expectFilled(100, 256); // none of the refused launches ran
}

TEST_F(LaunchTest, CooperativeLaunchesRunAndAreBoundedByResidency) {
  uint32_t v = 7;
  uint64_t pad = 0;
  void* params[] = {&out_, &v, &pad};
  ASSERT_CU(cuLaunchCooperativeKernel(fill_, 2, 1, 1, 128, 1, 1, 0, nullptr, params));
  ASSERT_CU(cuCtxSynchronize());
  expectFilled(7, 256);

  // All blocks of a cooperative grid must be resident at once: the occupancy bound times the
  // SM count is the largest grid; one block more is refused, directly and through the
  // cooperative attribute of cuLaunchKernelEx.
  int perSm = 0, sms = 0;
  ASSERT_CU(cuOccupancyMaxActiveBlocksPerMultiprocessor(&perSm, fill_, 1024, 0));
  ASSERT_CU(cuDeviceGetAttribute(&sms, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, 0));
  ASSERT_GT(perSm, 0);
  const unsigned tooMany = static_cast<unsigned>(perSm * sms + 1);
  EXPECT_EQ(cuLaunchCooperativeKernel(fill_, tooMany, 1, 1, 1024, 1, 1, 0, nullptr, params),
            CUDA_ERROR_COOPERATIVE_LAUNCH_TOO_LARGE);
  CUlaunchAttribute coop{};
  coop.id = CU_LAUNCH_ATTRIBUTE_COOPERATIVE;
  coop.value.cooperative = 1;
  CUlaunchConfig cfg{};
  cfg.gridDimX = tooMany;
  cfg.gridDimY = cfg.gridDimZ = 1;
  cfg.blockDimX = 1024;
  cfg.blockDimY = cfg.blockDimZ = 1;
  cfg.attrs = &coop;
  cfg.numAttrs = 1;
  EXPECT_EQ(cuLaunchKernelEx(&cfg, fill_, params, nullptr), CUDA_ERROR_COOPERATIVE_LAUNCH_TOO_LARGE);
  ASSERT_CU(cuCtxSynchronize());
  expectFilled(7, 256);
}

TEST_F(LaunchTest, OccupancyFollowsThreadsAndSharedMemory) {
  // H100: 2048 threads per SM, so 1024-thread blocks fit twice at most; smaller blocks fit at
  // least as often; shared memory beyond the SM's leaves no room at all.
  int big = 0, small = 0, smem = 0, none = 0;
  ASSERT_CU(cuOccupancyMaxActiveBlocksPerMultiprocessor(&big, fill_, 1024, 0));
  ASSERT_CU(cuOccupancyMaxActiveBlocksPerMultiprocessor(&small, fill_, 128, 0));
  ASSERT_CU(cuOccupancyMaxActiveBlocksPerMultiprocessor(&smem, fill_, 128, 40 << 10));
  ASSERT_CU(cuOccupancyMaxActiveBlocksPerMultiprocessor(&none, fill_, 128, 1 << 20));
  EXPECT_GE(big, 1);
  EXPECT_LE(big, 2);
  EXPECT_GT(small, big);
  EXPECT_LE(small, 16);
  EXPECT_GE(smem, 1);
  EXPECT_LE(smem, 5); // 228 KiB per SM: five 40 KiB blocks at most
  EXPECT_LT(smem, small);
  EXPECT_EQ(none, 0);

  int minGrid = 0, block = 0, sms = 0, atBlock = 0;
  ASSERT_CU(cuOccupancyMaxPotentialBlockSize(&minGrid, &block, fill_, nullptr, 0, 0));
  ASSERT_CU(cuDeviceGetAttribute(&sms, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, 0));
  EXPECT_GT(block, 0);
  EXPECT_LE(block, 1024);
  EXPECT_EQ(block % 32, 0);
  ASSERT_CU(cuOccupancyMaxActiveBlocksPerMultiprocessor(&atBlock, fill_, block, 0));
  EXPECT_EQ(minGrid, atBlock * sms);
  ASSERT_CU(cuOccupancyMaxPotentialBlockSize(&minGrid, &block, fill_, nullptr, 0, 96));
  EXPECT_LE(block, 96); // the caller's limit holds
  EXPECT_EQ(cuOccupancyMaxActiveBlocksPerMultiprocessor(nullptr, fill_, 128, 0), CUDA_ERROR_INVALID_VALUE);
}

TEST_F(LaunchTest, ParamInfoComesFromTheEntrySignature) {
  size_t offset = 99, size = 99;
  ASSERT_CU(cuFuncGetParamInfo(fill_, 0, &offset, &size));
  EXPECT_EQ(offset, 0u);
  EXPECT_EQ(size, 8u);
  ASSERT_CU(cuFuncGetParamInfo(fill_, 1, &offset, &size));
  EXPECT_EQ(offset, 8u);
  EXPECT_EQ(size, 4u);
  ASSERT_CU(cuFuncGetParamInfo(fill_, 2, &offset, &size));
  EXPECT_EQ(offset, 16u);
  EXPECT_EQ(size, 8u);
  EXPECT_EQ(cuFuncGetParamInfo(fill_, 3, &offset, &size), CUDA_ERROR_INVALID_VALUE);
}

TEST_F(DriverTest, PeerAccessAndPeerCopiesBetweenDevices) {
  int can = -1;
  ASSERT_CU(cuDeviceCanAccessPeer(&can, 0, 1));
  EXPECT_EQ(can, 1);
  ASSERT_CU(cuDeviceCanAccessPeer(&can, 0, 0));
  EXPECT_EQ(can, 0); // a device is not its own peer
  EXPECT_EQ(cuDeviceCanAccessPeer(&can, 0, 9), CUDA_ERROR_INVALID_DEVICE);

  CUcontext other = nullptr;
  ASSERT_CU(cuDevicePrimaryCtxRetain(&other, 1));
  ASSERT_CU(cuCtxEnablePeerAccess(other, 0));
  EXPECT_EQ(cuCtxEnablePeerAccess(ctx_, 0), CUDA_ERROR_INVALID_DEVICE); // its own device
  EXPECT_EQ(cuCtxEnablePeerAccess(other, 1), CUDA_ERROR_INVALID_VALUE);  // flags must be 0

  const size_t n = 1 << 20;
  std::vector<uint8_t> src(n), back(n, 0);
  for (size_t i = 0; i < n; ++i) src[i] = static_cast<uint8_t>(i * 7 + 3);
  CUdeviceptr a = 0, b = 0, c = 0;
  ASSERT_CU(cuMemAlloc(&a, n));
  ASSERT_CU(cuMemcpyHtoD(a, src.data(), n));
  ASSERT_CU(cuCtxSetCurrent(other));
  ASSERT_CU(cuMemAlloc(&b, n));
  ASSERT_CU(cuMemAlloc(&c, n));
  ASSERT_CU(cuCtxSetCurrent(ctx_));
  ASSERT_CU(cuMemcpyPeer(b, other, a, ctx_, n)); // device 0 -> device 1
  CUstream s;
  ASSERT_CU(cuStreamCreate(&s, 0));
  ASSERT_CU(cuMemcpyPeerAsync(c, other, b, other, n, s)); // and within device 1, async
  ASSERT_CU(cuStreamSynchronize(s));
  ASSERT_CU(cuStreamDestroy(s));
  ASSERT_CU(cuMemcpyDtoH(back.data(), c, n));
  EXPECT_EQ(memcmp(back.data(), src.data(), n), 0);
  // A peer copy that leaves its allocation is refused, and writes nothing.
  EXPECT_EQ(cuMemcpyPeer(b, other, a, ctx_, n + 1), CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(cuMemcpyPeer(b, reinterpret_cast<CUcontext>(&can), a, ctx_, n), CUDA_ERROR_INVALID_CONTEXT);

  ASSERT_CU(cuCtxDisablePeerAccess(other));
  ASSERT_CU(cuMemFree(a));
  ASSERT_CU(cuMemFree(b));
  ASSERT_CU(cuMemFree(c));
  ASSERT_CU(cuDevicePrimaryCtxRelease(1));
}

void CUDA_CB bump(void* p) { ++*static_cast<int*>(p); }

TEST_F(DriverTest, ChildGraphNodesRunTheChildAsCopiedWhenAdded) {
  CUdeviceptr d, late;
  ASSERT_CU(cuMemAlloc(&d, 256));
  ASSERT_CU(cuMemAlloc(&late, 256));
  ASSERT_CU(cuMemsetD32(d, 0, 64));
  ASSERT_CU(cuMemsetD32(late, 0, 64));
  CUgraph child, parent;
  ASSERT_CU(cuGraphCreate(&child, 0));
  ASSERT_CU(cuGraphCreate(&parent, 0));
  CUDA_MEMSET_NODE_PARAMS ms{};
  ms.dst = d;
  ms.value = 0x5a5a5a5a;
  ms.elementSize = 4;
  ms.width = 64;
  ms.height = 1;
  CUgraphNode set, childNode, host;
  ASSERT_CU(cuGraphAddMemsetNode(&set, child, nullptr, 0, &ms, ctx_));
  ASSERT_CU(cuGraphAddChildGraphNode(&childNode, parent, nullptr, 0, child));
  CUgraphNodeType type;
  ASSERT_CU(cuGraphNodeGetType(childNode, &type));
  EXPECT_EQ(type, CU_GRAPH_NODE_TYPE_GRAPH);
  // The child is copied into the node: what is added to it afterwards is not in the parent.
  CUDA_MEMSET_NODE_PARAMS ms2 = ms;
  ms2.dst = late;
  CUgraphNode lateNode;
  ASSERT_CU(cuGraphAddMemsetNode(&lateNode, child, nullptr, 0, &ms2, ctx_));
  int calls = 0;
  CUDA_HOST_NODE_PARAMS hp{bump, &calls};
  ASSERT_CU(cuGraphAddHostNode(&host, parent, &childNode, 1, &hp));
  CUgraphExec exec;
  ASSERT_CU(cuGraphInstantiate(&exec, parent, 0));
  ASSERT_CU(cuGraphLaunch(exec, nullptr));
  ASSERT_CU(cuGraphLaunch(exec, nullptr));
  ASSERT_CU(cuCtxSynchronize());
  uint32_t back[64], backLate[64];
  ASSERT_CU(cuMemcpyDtoH(back, d, sizeof back));
  ASSERT_CU(cuMemcpyDtoH(backLate, late, sizeof backLate));
  EXPECT_EQ(back[0], 0x5a5a5a5au);
  EXPECT_EQ(back[63], 0x5a5a5a5au);
  EXPECT_EQ(backLate[0], 0u);
  EXPECT_EQ(calls, 2);
  CUgraphNode dummy;
  EXPECT_EQ(cuGraphAddChildGraphNode(&dummy, parent, nullptr, 0, reinterpret_cast<CUgraph>(&calls)),
            CUDA_ERROR_INVALID_VALUE);
  ASSERT_CU(cuGraphExecDestroy(exec));
  ASSERT_CU(cuGraphDestroy(parent));
  ASSERT_CU(cuGraphDestroy(child));
  ASSERT_CU(cuMemFree(d));
  ASSERT_CU(cuMemFree(late));
}

TEST_F(DriverTest, VmmAllocationExportsToAFileDescriptorOfTheSameMemory) {
  CUmemAllocationProp prop{};
  prop.type = CU_MEM_ALLOCATION_TYPE_PINNED;
  prop.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
  prop.location.id = 0;
  prop.requestedHandleTypes = CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR;
  size_t gran = 0;
  ASSERT_CU(cuMemGetAllocationGranularity(&gran, &prop, CU_MEM_ALLOC_GRANULARITY_MINIMUM));
  CUmemGenericAllocationHandle h;
  ASSERT_CU(cuMemCreate(&h, gran, &prop, 0));
  CUdeviceptr va;
  ASSERT_CU(cuMemAddressReserve(&va, gran, 0, 0, 0));
  ASSERT_CU(cuMemMap(va, gran, 0, h, 0));
  CUmemAccessDesc access{};
  access.location = prop.location;
  access.flags = CU_MEM_ACCESS_FLAGS_PROT_READWRITE;
  ASSERT_CU(cuMemSetAccess(va, gran, &access, 1));
  uint32_t v = 0x600df00d;
  ASSERT_CU(cuMemcpyHtoD(va + 128, &v, 4));

  int fd = -1;
  ASSERT_CU(cuMemExportToShareableHandle(&fd, h, CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR, 0));
  ASSERT_GE(fd, 0);
  // Another mapping of the descriptor (as a second process would make) sees the device's
  // bytes, and the device sees what is written through it.
  void* p = mmap(nullptr, gran, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  ASSERT_NE(p, MAP_FAILED);
  auto* words = static_cast<uint32_t*>(p);
  EXPECT_EQ(words[32], v);
  words[33] = 0x12345678;
  uint32_t back = 0;
  ASSERT_CU(cuMemcpyDtoH(&back, va + 132, 4));
  EXPECT_EQ(back, 0x12345678u);
  munmap(p, gran);
  close(fd);

  int unused = -1;
  EXPECT_EQ(cuMemExportToShareableHandle(&unused, h, CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR, 1),
            CUDA_ERROR_INVALID_VALUE); // flags must be 0
  EXPECT_EQ(cuMemExportToShareableHandle(&unused, h, CU_MEM_HANDLE_TYPE_FABRIC, 0), CUDA_ERROR_NOT_SUPPORTED);
  EXPECT_EQ(cuMemExportToShareableHandle(nullptr, h, CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR, 0),
            CUDA_ERROR_INVALID_VALUE);
  ASSERT_CU(cuMemUnmap(va, gran));
  ASSERT_CU(cuMemAddressFree(va, gran));
  ASSERT_CU(cuMemRelease(h));
  EXPECT_NE(cuMemExportToShareableHandle(&unused, h, CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR, 0),
            CUDA_SUCCESS); // a released handle is gone
}

} // namespace

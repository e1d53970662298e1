// VMM memory (cuMemCreate) that a program never wrote costs nothing when it is read or cleared:
// copies out of it read holes as zeros without committing pages, and a zero memset over whole
// pages gives them back. Both stay correct (a kernel reads the cleared pages as zeros) and keep
// their place in stream order. The memory's pages are counted on its exported descriptor.
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <vector>

#include "driver_test.h"

namespace {

// copy(in, out): out[i] = in[i] for the global thread index i.
const char kCopyPtx[] = R"(
.version 7.0
.target sm_50
.address_size 64
.visible .entry copy(.param .u64 in, .param .u64 out)
{
  .reg .b32 %r<6>;
  .reg .b64 %rd<6>;
  ld.param.u64 %rd1, [in];
  ld.param.u64 %rd2, [out];
  mov.u32 %r2, %ctaid.x;
  mov.u32 %r3, %ntid.x;
  mov.u32 %r4, %tid.x;
  mad.lo.s32 %r2, %r2, %r3, %r4;
  cvta.to.global.u64 %rd1, %rd1;
  cvta.to.global.u64 %rd2, %rd2;
  mul.wide.u32 %rd3, %r2, 4;
  add.s64 %rd4, %rd1, %rd3;
  add.s64 %rd5, %rd2, %rd3;
  ld.global.u32 %r5, [%rd4];
  st.global.u32 [%rd5], %r5;
  ret;
}
)";

constexpr size_t kPage = 4096;

class VmmSparseTest : public DriverTest {
protected:
  static constexpr size_t kBytes = 32u << 20;

  void SetUp() override {
    DriverTest::SetUp();
    CUmemAllocationProp prop{};
    prop.type = CU_MEM_ALLOCATION_TYPE_PINNED;
    prop.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
    prop.location.id = 0;
    prop.requestedHandleTypes = CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR;
    ASSERT_CU(cuMemCreate(&handle_, kBytes, &prop, 0));
    ASSERT_CU(cuMemAddressReserve(&va_, kBytes, 0, 0, 0));
    ASSERT_CU(cuMemMap(va_, kBytes, 0, handle_, 0));
    CUmemAccessDesc access{};
    access.location = prop.location;
    access.flags = CU_MEM_ACCESS_FLAGS_PROT_READWRITE;
    ASSERT_CU(cuMemSetAccess(va_, kBytes, &access, 1));
    ASSERT_CU(cuMemExportToShareableHandle(&fd_, handle_, CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR, 0));
  }
  void TearDown() override {
    if (fd_ >= 0) close(fd_);
    EXPECT_CU(cuMemUnmap(va_, kBytes));
    EXPECT_CU(cuMemAddressFree(va_, kBytes));
    EXPECT_CU(cuMemRelease(handle_));
    DriverTest::TearDown();
  }
  // Bytes of the memory that hold pages.
  size_t committed() const {
    struct stat st {};
    EXPECT_EQ(fstat(fd_, &st), 0);
    return static_cast<size_t>(st.st_blocks) * 512;
  }

  CUmemGenericAllocationHandle handle_ = 0;
  CUdeviceptr va_ = 0;
  int fd_ = -1;
};

TEST_F(VmmSparseTest, ReadingMemoryNeverWrittenCommitsNothing) {
  const uint32_t word = 0x5eed1234;
  ASSERT_CU(cuMemcpyHtoD(va_ + kBytes / 2, &word, 4));
  ASSERT_EQ(committed(), kPage);
  std::vector<uint8_t> host(kBytes, 0xAA);
  ASSERT_CU(cuMemcpyDtoH(host.data(), va_, kBytes));
  uint32_t back = 0;
  std::memcpy(&back, &host[kBytes / 2], 4);
  EXPECT_EQ(back, word);
  host[kBytes / 2] = host[kBytes / 2 + 1] = host[kBytes / 2 + 2] = host[kBytes / 2 + 3] = 0;
  EXPECT_EQ(host, std::vector<uint8_t>(kBytes, 0)) << "holes read as zeros";
  EXPECT_EQ(committed(), kPage) << "reading committed nothing";

  // Asynchronous, in stream order behind a memset and ahead of a later write.
  CUstream s;
  ASSERT_CU(cuStreamCreate(&s, CU_STREAM_NON_BLOCKING));
  std::vector<uint8_t> early(2 * kPage, 0xAA);
  ASSERT_CU(cuMemsetD8Async(va_ + kPage, 0x5a, 2 * kPage, s));
  ASSERT_CU(cuMemcpyDtoHAsync(early.data(), va_ + kPage / 2, early.size(), s));
  ASSERT_CU(cuMemsetD8Async(va_ + kPage, 0x77, 2 * kPage, s));
  ASSERT_CU(cuStreamSynchronize(s));
  for (size_t i = 0; i < early.size(); ++i)
    ASSERT_EQ(early[i], i < kPage / 2 || i >= kPage / 2 + 2 * kPage ? 0 : 0x5a) << "byte " << i;
  EXPECT_EQ(committed(), 3 * kPage);
  // Out of bounds: refused before anything is queued, as any copy.
  EXPECT_EQ(cuMemcpyDtoH(host.data(), va_ + kBytes - 4, 8), CUDA_ERROR_INVALID_VALUE);
  ASSERT_CU(cuStreamDestroy(s));
}

TEST_F(VmmSparseTest, ZeroMemsetGivesWholePagesBackAndReadsAsZeros) {
  constexpr size_t kFilled = 4u << 20;
  ASSERT_CU(cuMemsetD8(va_, 0xff, kFilled));
  ASSERT_EQ(committed(), kFilled);
  // From byte 100 for 3 MiB: pages 1 to 767 whole, 0 and 768 in part.
  ASSERT_CU(cuMemsetD8(va_ + 100, 0, 3u << 20));
  EXPECT_EQ(committed(), kFilled - 767 * kPage);
  std::vector<uint8_t> host(kFilled);
  ASSERT_CU(cuMemcpyDtoH(host.data(), va_, kFilled));
  for (size_t i = 0; i < kFilled; ++i)
    ASSERT_EQ(host[i], i < 100 || i >= 100 + (3u << 20) ? 0xff : 0) << "byte " << i;

  // A kernel reads the cleared pages as zeros, and a memset ordered after its launch waits for it.
  CUmodule mod;
  CUfunction copy;
  ASSERT_CU(cuModuleLoadData(&mod, kCopyPtx));
  ASSERT_CU(cuModuleGetFunction(&copy, mod, "copy"));
  constexpr unsigned kWords = 16 * 1024; // the first 64 KiB
  CUdeviceptr out;
  ASSERT_CU(cuMemAlloc(&out, kWords * 4));
  CUstream s;
  ASSERT_CU(cuStreamCreate(&s, CU_STREAM_NON_BLOCKING));
  void* params[] = {&va_, &out};
  ASSERT_CU(cuLaunchKernel(copy, kWords / 256, 1, 1, 256, 1, 1, 0, s, params, nullptr));
  ASSERT_CU(cuMemsetD32Async(va_, 0, kFilled / 4, s));
  ASSERT_CU(cuStreamSynchronize(s));
  std::vector<uint32_t> words(kWords);
  ASSERT_CU(cuMemcpyDtoH(words.data(), out, kWords * 4));
  for (unsigned i = 0; i < kWords; ++i) ASSERT_EQ(words[i], i < 25 ? 0xffffffffu : 0u) << "word " << i;
  EXPECT_EQ(committed(), 0u) << "everything cleared is given back";
  ASSERT_CU(cuMemcpyDtoH(host.data(), va_, kFilled));
  EXPECT_EQ(host, std::vector<uint8_t>(kFilled, 0));

  // A graph's memset node clears the same way.
  ASSERT_CU(cuMemsetD8(va_, 0xff, kFilled));
  CUgraph g;
  ASSERT_CU(cuGraphCreate(&g, 0));
  CUDA_MEMSET_NODE_PARAMS clear{};
  clear.dst = va_;
  clear.elementSize = 4;
  clear.width = kFilled / 4;
  clear.height = 1;
  CUgraphNode node;
  ASSERT_CU(cuGraphAddMemsetNode(&node, g, nullptr, 0, &clear, ctx_));
  CUgraphExec exec;
  ASSERT_CU(cuGraphInstantiate(&exec, g, 0));
  ASSERT_CU(cuGraphLaunch(exec, s));
  ASSERT_CU(cuStreamSynchronize(s));
  EXPECT_EQ(committed(), 0u);
  ASSERT_CU(cuMemcpyDtoH(host.data(), va_, kFilled));
  EXPECT_EQ(host, std::vector<uint8_t>(kFilled, 0));
  ASSERT_CU(cuGraphExecDestroy(exec));
  ASSERT_CU(cuGraphDestroy(g));

  // A strided clear is written as before; a non-zero one is never a hole.
  ASSERT_CU(cuMemsetD8(va_, 1, 3 * kPage));
  ASSERT_CU(cuMemsetD2D8(va_, 2 * kPage, 0, kPage, 2));
  ASSERT_CU(cuMemcpyDtoH(host.data(), va_, 3 * kPage));
  for (size_t i = 0; i < 3 * kPage; ++i)
    ASSERT_EQ(host[i], i < kPage || (i >= 2 * kPage && i < 3 * kPage) ? 0 : 1) << "byte " << i;
  ASSERT_CU(cuStreamDestroy(s));
  ASSERT_CU(cuMemFree(out));
  ASSERT_CU(cuModuleUnload(mod));
}

} // namespace

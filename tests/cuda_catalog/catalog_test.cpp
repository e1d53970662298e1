#include "cuda/catalog.h"
#include "cuda/export_table_ids.h"

#include <gtest/gtest.h>
#include <cstring>
#include <string>

namespace tf::cuda {
namespace {

std::string resolve(const char* base, int version, cuuint64_t flags = 0) {
  CUdriverProcAddressQueryResult st;
  int i = resolveProcAddress(base, version, flags, &st);
  if (i < 0) return st == CU_GET_PROC_ADDRESS_VERSION_NOT_SUFFICIENT ? "<too new>" : "<none>";
  EXPECT_EQ(st, CU_GET_PROC_ADDRESS_SUCCESS);
  return catalogEntry(i).symbol;
}

// The variants cudart 13 asks for, from ../shared/reference/cuda-driver.md.
TEST(CatalogTest, ResolvesVersionedVariantsAsTheDriverDoes) {
  EXPECT_EQ(resolve("cuMemAlloc", 3020), "cuMemAlloc_v2");
  EXPECT_EQ(resolve("cuMemAlloc", 2000), "cuMemAlloc");
  EXPECT_EQ(resolve("cuCtxCreate", 3020), "cuCtxCreate_v2");
  EXPECT_EQ(resolve("cuCtxCreate", 11040), "cuCtxCreate_v3");
  EXPECT_EQ(resolve("cuCtxCreate", 12050), "cuCtxCreate_v4");
  EXPECT_EQ(resolve("cuCtxCreate", 13000), "cuCtxCreate_v4");
  EXPECT_EQ(resolve("cuGetProcAddress", 12000), "cuGetProcAddress_v2");
  EXPECT_EQ(resolve("cuGetProcAddress", 11030), "cuGetProcAddress");
}

TEST(CatalogTest, PerThreadFlavourOnlyWhenAsked) {
  const cuuint64_t ptds = CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM;
  EXPECT_EQ(resolve("cuMemcpyHtoD", 7000, ptds), "cuMemcpyHtoD_v2_ptds");
  EXPECT_EQ(resolve("cuMemcpyHtoD", 7000, CU_GET_PROC_ADDRESS_LEGACY_STREAM), "cuMemcpyHtoD_v2");
  EXPECT_EQ(resolve("cuLaunchKernel", 7000, ptds), "cuLaunchKernel_ptsz");
  EXPECT_EQ(resolve("cuLaunchKernel", 12000), "cuLaunchKernel");
  // A function with no per-thread flavour gives the plain one even when asked.
  EXPECT_EQ(resolve("cuMemAlloc", 12000, ptds), "cuMemAlloc_v2");
}

TEST(CatalogTest, UnknownAndTooNewAreDistinguished) {
  EXPECT_EQ(resolve("cuNoSuchFunction", 13000), "<none>");
  EXPECT_EQ(resolve("cuLibraryLoadData", 11000), "<too new>");
  EXPECT_EQ(resolve(nullptr, 13000), "<none>");
  EXPECT_EQ(resolve("cuLibraryLoadData", 12000), "cuLibraryLoadData");
}

TEST(CatalogTest, PerThreadEntriesPointAtTheirPlainTwin) {
  int i = findSymbol("cuMemcpyHtoDAsync_v2_ptsz");
  ASSERT_GE(i, 0);
  EXPECT_TRUE(catalogEntry(i).perThread);
  EXPECT_STREQ(catalogEntry(catalogEntry(i).plainIndex).symbol, "cuMemcpyHtoDAsync_v2");
  EXPECT_GT(catalogSize(), 500);
  EXPECT_EQ(findSymbol("cuBogus"), -1);
}

TEST(ExportTableIdsTest, KnowsTheTablesCudartAsksFor) {
  const unsigned char bytes[16] = {0x6B, 0xD5, 0xFB, 0x6C, 0x5B, 0xF4, 0xE7, 0x4A,
                                   0x89, 0x87, 0xD9, 0x39, 0x12, 0xFD, 0x9D, 0xF9};
  CUuuid id;
  memcpy(id.bytes, bytes, 16);
  EXPECT_EQ(exportTableFor(&id), ExportTable::CudartInterface);
  char s[37];
  formatUuid(&id, s);
  EXPECT_STREQ(s, "6BD5FB6C-5BF4-E74A-8987-D93912FD9DF9");
  id.bytes[15] = 0;
  EXPECT_EQ(exportTableFor(&id), ExportTable::Unknown);
  EXPECT_EQ(exportTableFor(nullptr), ExportTable::Unknown);
}

} // namespace
} // namespace tf::cuda

namespace tf::cuda {
namespace {
TEST(CatalogTest, FnIdMatchesTheTableOrder) {
  EXPECT_EQ(static_cast<int>(FnId::cuMemAlloc_v2), findSymbol("cuMemAlloc_v2"));
  EXPECT_EQ(static_cast<int>(FnId::cuLaunchKernel_ptsz), findSymbol("cuLaunchKernel_ptsz"));
  EXPECT_EQ(static_cast<int>(FnId::Count), catalogSize());
}
} // namespace
} // namespace tf::cuda

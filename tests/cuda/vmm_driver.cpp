// Virtual memory management through the driver API: granularity, physical allocations
// (cuMemCreate), address reservations, mappings (two mappings of one handle alias each other),
// access, copies through the mappings, unmapping and release, with memory accounting.
#include <vector>

#include "check.h"

int main() {
  CU_CHECK(cuInit(0));
  CUdevice dev;
  CU_CHECK(cuDeviceGet(&dev, 0));
  CUcontext ctx = nullptr;
  CU_CHECK(cuDevicePrimaryCtxRetain(&ctx, dev));
  CU_CHECK(cuCtxSetCurrent(ctx));
  TF_CHECK_VGPU(); // in a _limited run: the limiter is there (check.h)
  int vmm = 0;
  CU_CHECK(cuDeviceGetAttribute(&vmm, CU_DEVICE_ATTRIBUTE_VIRTUAL_MEMORY_MANAGEMENT_SUPPORTED, dev));
  EXPECT_EQ_INT(vmm, 1);

  CUmemAllocationProp prop = {};
  prop.type = CU_MEM_ALLOCATION_TYPE_PINNED;
  prop.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
  prop.location.id = dev;
  size_t gran = 0, recommended = 0;
  CU_CHECK(cuMemGetAllocationGranularity(&gran, &prop, CU_MEM_ALLOC_GRANULARITY_MINIMUM));
  CU_CHECK(cuMemGetAllocationGranularity(&recommended, &prop, CU_MEM_ALLOC_GRANULARITY_RECOMMENDED));
  std::printf("granularity: minimum %zu, recommended %zu\n", gran, recommended);
  REQUIRE(gran > 0 && (gran & (gran - 1)) == 0);
  EXPECT_TRUE(recommended >= gran && recommended % gran == 0);

  const size_t size = 2 * gran;
  size_t free0 = 0, free1 = 0, free2 = 0, total = 0;
  CU_CHECK(cuMemGetInfo(&free0, &total));
  CUmemGenericAllocationHandle h = 0;
  CU_CHECK(cuMemCreate(&h, size, &prop, 0));
  CU_CHECK(cuMemGetInfo(&free1, &total));
  EXPECT_TRUE(free1 + size <= free0);
  // A size that is not a multiple of the granularity is refused.
  CUmemGenericAllocationHandle odd = 0;
  CU_EXPECT_ERR(cuMemCreate(&odd, gran + 1, &prop, 0), CUDA_ERROR_INVALID_VALUE);

  CUmemAllocationProp got = {};
  CU_CHECK(cuMemGetAllocationPropertiesFromHandle(&got, h));
  EXPECT_EQ_INT(got.type, CU_MEM_ALLOCATION_TYPE_PINNED);
  EXPECT_EQ_INT(got.location.id, dev);

  CUdeviceptr va = 0;
  CU_CHECK(cuMemAddressReserve(&va, 3 * size, 0, 0, 0));
  REQUIRE(va != 0);
  EXPECT_TRUE(va % gran == 0);
  // Two mappings of the same physical memory, a hole between them at [size, 2*size).
  CU_CHECK(cuMemMap(va, size, 0, h, 0));
  CU_CHECK(cuMemMap(va + 2 * size, size, 0, h, 0));
  CU_EXPECT_ERR(cuMemMap(va, size, 0, h, 0), CUDA_ERROR_INVALID_VALUE); // already mapped
  CUmemAccessDesc acc = {};
  acc.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
  acc.location.id = dev;
  acc.flags = CU_MEM_ACCESS_FLAGS_PROT_READWRITE;
  CU_CHECK(cuMemSetAccess(va, size, &acc, 1));
  CU_CHECK(cuMemSetAccess(va + 2 * size, size, &acc, 1));
  unsigned long long flags = 0;
  CUmemLocation loc = acc.location;
  CU_CHECK(cuMemGetAccess(&flags, &loc, va));
  EXPECT_EQ_INT(flags, CU_MEM_ACCESS_FLAGS_PROT_READWRITE);

  tf_test::Rng rng(5150);
  std::vector<unsigned char> data(size), back(size, 0);
  rng.fill(data.data(), size);
  CU_CHECK(cuMemcpyHtoD(va, data.data(), size));
  CU_CHECK(cuMemcpyDtoH(back.data(), va + 2 * size, size));
  EXPECT_EQ_BYTES(back.data(), data.data(), size, "second mapping sees first mapping's writes");
  CU_CHECK(cuMemsetD8(va + 2 * size + 100, 0x7E, 333));
  std::memset(data.data() + 100, 0x7E, 333);
  CU_CHECK(cuMemcpyDtoH(back.data(), va, size));
  EXPECT_EQ_BYTES(back.data(), data.data(), size, "first mapping sees second mapping's memset");
  // Copies inside one mapping and across the two.
  CU_CHECK(cuMemcpyDtoD(va + 7, va + 2 * size + 4096, 1000));
  std::memmove(data.data() + 7, data.data() + 4096, 1000);
  CU_CHECK(cuMemcpyDtoH(back.data(), va + 2 * size, size));
  EXPECT_EQ_BYTES(back.data(), data.data(), size, "DtoD across mappings");
  // The hole has nothing behind it.
  CU_EXPECT_ERR(cuMemcpyHtoD(va + size, data.data(), 16), CUDA_ERROR_INVALID_VALUE);
  // Nor does a copy that runs from a mapping into the hole.
  CU_EXPECT_ERR(cuMemcpyHtoD(va + size - 8, data.data(), 16), CUDA_ERROR_INVALID_VALUE);

  CUmemGenericAllocationHandle h2 = 0;
  CU_CHECK(cuMemRetainAllocationHandle(&h2, reinterpret_cast<void*>(va + 2 * size + 64)));
  EXPECT_TRUE(h2 == h);
  CU_CHECK(cuMemRelease(h2));

  CUdeviceptr base = 0;
  size_t rangeSize = 0;
  CU_CHECK(cuMemGetAddressRange(&base, &rangeSize, va + 2 * size + 10));
  EXPECT_TRUE(base == va + 2 * size);
  EXPECT_EQ_INT(rangeSize, size);

  // Releasing the handle while mapped keeps the memory alive until the last unmap.
  CU_CHECK(cuMemRelease(h));
  CU_CHECK(cuMemcpyDtoH(back.data(), va, size));
  EXPECT_EQ_BYTES(back.data(), data.data(), size, "mapping outlives the released handle");
  CU_CHECK(cuMemUnmap(va, size));
  CU_EXPECT_ERR(cuMemcpyHtoD(va, data.data(), 16), CUDA_ERROR_INVALID_VALUE);
  CU_CHECK(cuMemcpyDtoH(back.data(), va + 2 * size, size));
  EXPECT_EQ_BYTES(back.data(), data.data(), size, "remaining mapping still valid");
  CU_CHECK(cuMemUnmap(va + 2 * size, size));
  CU_CHECK(cuMemAddressFree(va, 3 * size));
  CU_CHECK(cuMemGetInfo(&free2, &total));
  EXPECT_EQ_INT(free2, free0);

  CU_CHECK(cuDevicePrimaryCtxRelease(dev));
  return tf_test::summary("vmm_driver");
}

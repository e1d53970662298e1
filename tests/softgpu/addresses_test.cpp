// Device addresses as migration needs them (issue 15): each device's window where
// cuda/softgpu_extensions.h says, reservations at a given address in any device's window,
// and memory of one device mapped in another's window.
#include <dlfcn.h>

#include <cstdint>
#include <vector>

#include "cuda/softgpu_extensions.h"
#include "driver_test.h"

namespace {

using tf::cuda::kWindowBase;
using tf::cuda::kWindowStride;

constexpr uint64_t kGiB = 1ull << 30;
constexpr size_t kTwoMiB = 2u << 20;

template <typename Fn> Fn extension(const char* name) {
  return reinterpret_cast<Fn>(dlsym(RTLD_DEFAULT, name));
}

class AddressesTest : public DriverTest {
protected:
  void SetUp() override {
    DriverTest::SetUp();
    window_ = extension<tf::cuda::DeviceWindow>(tf::cuda::kDeviceWindow);
    ASSERT_TRUE(window_) << "soft GPU extensions not exported";
  }
  static uint64_t windowOf(int device) { return kWindowBase + device * kWindowStride; }
  static CUmemGenericAllocationHandle create(int device, size_t bytes) {
    CUmemAllocationProp prop{};
    prop.type = CU_MEM_ALLOCATION_TYPE_PINNED;
    prop.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
    prop.location.id = device;
    CUmemGenericAllocationHandle h = 0;
    EXPECT_CU(cuMemCreate(&h, bytes, &prop, 0));
    return h;
  }
  static void allowBoth(CUdeviceptr p, size_t bytes) {
    CUmemAccessDesc access[2]{};
    for (int d = 0; d < 2; ++d) {
      access[d].location.type = CU_MEM_LOCATION_TYPE_DEVICE;
      access[d].location.id = d;
      access[d].flags = CU_MEM_ACCESS_FLAGS_PROT_READWRITE;
    }
    EXPECT_CU(cuMemSetAccess(p, bytes, access, 2));
  }
  // Runs fill (driver_test.h) over n words from the current context; checks out[i] == v + i.
  static void fillAndCheck(CUmodule mod, CUdeviceptr out, uint32_t v, uint32_t n) {
    CUfunction fill = nullptr;
    ASSERT_CU(cuModuleGetFunction(&fill, mod, "fill"));
    uint64_t pad = 0;
    void* params[] = {&out, &v, &pad};
    ASSERT_CU(cuLaunchKernel(fill, n / 64, 1, 1, 64, 1, 1, 0, nullptr, params, nullptr));
    ASSERT_CU(cuCtxSynchronize());
    std::vector<uint32_t> got(n);
    ASSERT_CU(cuMemcpyDtoH(got.data(), out, n * 4));
    for (uint32_t i = 0; i < n; ++i) ASSERT_EQ(got[i], v + i) << "word " << i;
  }

  tf::cuda::DeviceWindow window_ = nullptr;
};

TEST_F(AddressesTest, EachDeviceHasItsWindowAtTheFixedBase) {
  for (int d = 0; d < 2; ++d) {
    CUdeviceptr base = 0;
    size_t bytes = 0;
    int fixed = -1;
    ASSERT_CU(window_(d, &base, &bytes, &fixed));
    EXPECT_EQ(base, windowOf(d)) << "device " << d;
    EXPECT_EQ(bytes, kWindowStride) << "device " << d;
    EXPECT_EQ(fixed, 1) << "device " << d;
  }
  CUdeviceptr base = 0;
  size_t bytes = 0;
  int fixed = 0;
  EXPECT_EQ(window_(2, &base, &bytes, &fixed), CUDA_ERROR_INVALID_DEVICE);
  EXPECT_EQ(window_(0, nullptr, &bytes, &fixed), CUDA_ERROR_INVALID_VALUE);

  // Memory of each device comes from its own window.
  CUdeviceptr p0 = 0, p1 = 0;
  ASSERT_CU(cuMemAlloc(&p0, 1 << 20));
  CUcontext ctx1 = nullptr;
  ASSERT_CU(cuDevicePrimaryCtxRetain(&ctx1, 1));
  ASSERT_CU(cuCtxSetCurrent(ctx1));
  ASSERT_CU(cuMemAlloc(&p1, 1 << 20));
  EXPECT_CU(cuMemFree(p1));
  ASSERT_CU(cuCtxSetCurrent(ctx_));
  EXPECT_CU(cuDevicePrimaryCtxRelease(1));
  EXPECT_CU(cuMemFree(p0));
  EXPECT_GE(p0, windowOf(0));
  EXPECT_LT(p0, windowOf(1));
  EXPECT_GE(p1, windowOf(1));
  EXPECT_LT(p1, windowOf(2));
}

TEST_F(AddressesTest, ReserveTakesAFreeAlignedHintInAnyDevicesWindow) {
  const uint64_t want = windowOf(1) + 64 * kGiB; // device 1's window, from device 0's context
  CUdeviceptr got = 0;
  ASSERT_CU(cuMemAddressReserve(&got, 4 * kTwoMiB, 0, want, 0));
  EXPECT_EQ(got, want);
  // Hints CUDA treats as hints: taken, misaligned, outside every window. The range then goes
  // in the current device's window.
  for (uint64_t hint : {want, want + kTwoMiB, want + 4096, uint64_t{0x10000}, windowOf(2) + kGiB}) {
    CUdeviceptr other = 0;
    ASSERT_CU(cuMemAddressReserve(&other, kTwoMiB, 0, hint, 0)) << std::hex << hint;
    EXPECT_GE(other, windowOf(0)) << std::hex << hint;
    EXPECT_LT(other, windowOf(1)) << std::hex << hint;
    EXPECT_CU(cuMemAddressFree(other, kTwoMiB));
  }
  // Freed, the same address is free again.
  EXPECT_CU(cuMemAddressFree(got, 4 * kTwoMiB));
  ASSERT_CU(cuMemAddressReserve(&got, kTwoMiB, 0, want, 0));
  EXPECT_EQ(got, want);
  EXPECT_CU(cuMemAddressFree(got, kTwoMiB));
}

TEST_F(AddressesTest, MemoryOfOneDeviceMapsInAnothersWindowAndKernelsWriteIt) {
  CUmodule mod = nullptr;
  ASSERT_CU(cuModuleLoadData(&mod, kFillPtx));
  // Device 1's memory at an address of device 1's window reserved from device 0, and in a
  // range of device 0's own window.
  struct Case { uint64_t hint; uint64_t lo; };
  for (Case c : {Case{windowOf(1) + 96 * kGiB, windowOf(1)}, Case{0, windowOf(0)}}) {
    CUdeviceptr p = 0;
    ASSERT_CU(cuMemAddressReserve(&p, kTwoMiB, 0, c.hint, 0));
    if (c.hint) {
      EXPECT_EQ(p, c.hint);
    }
    EXPECT_GE(p, c.lo);
    EXPECT_LT(p, c.lo + kWindowStride);
    CUmemGenericAllocationHandle h = create(1, kTwoMiB);
    ASSERT_CU(cuMemMap(p, kTwoMiB, 0, h, 0));
    allowBoth(p, kTwoMiB);
    int ordinal = -1;
    ASSERT_CU(cuPointerGetAttribute(&ordinal, CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL, p + 4096));
    EXPECT_EQ(ordinal, 1) << "the mapping's device, whatever window it is in";
    CUdeviceptr base = 0;
    size_t size = 0;
    ASSERT_CU(cuMemGetAddressRange(&base, &size, p + 4096));
    EXPECT_EQ(base, p);
    EXPECT_EQ(size, kTwoMiB);
    fillAndCheck(mod, p, 1000, 1024);
    EXPECT_CU(cuMemUnmap(p, kTwoMiB));
    EXPECT_CU(cuMemRelease(h));
    EXPECT_CU(cuMemAddressFree(p, kTwoMiB));
  }
  EXPECT_CU(cuModuleUnload(mod));
}

} // namespace

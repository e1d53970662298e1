// Device addresses as migration needs them (issue 15): each device's window where
// cuda/softgpu_extensions.h says, reservations at a given address in any device's window,
// memory of one device mapped in another's window, and module globals placed at given
// addresses (tfSoftGpuModuleLoadPlaced), with each refusal leaving nothing behind.
#include <dlfcn.h>

#include <cstdint>
#include <vector>

#include "cuda/softgpu_extensions.h"
#include "driver_test.h"

namespace {

using tf::cuda::GlobalPlacement;
using tf::cuda::kMinWindows;
using tf::cuda::kWindowBase;
using tf::cuda::kWindowStride;

constexpr uint64_t kGiB = 1ull << 30;
constexpr size_t kTwoMiB = 2u << 20;

// Three globals (one written by the kernel) and sum(out): out[0] = counter + table[3] + other,
// then counter = out[0].
const char kGlobalsPtx[] = R"(
.version 7.0
.target sm_50
.address_size 64
.visible .global .align 4 .u32 counter = 7;
.visible .global .align 8 .u64 table[4] = {1, 2, 3, 4};
.visible .global .align 4 .u32 other = 9;
.visible .entry sum(.param .u64 out)
{
  .reg .b32 %r<5>;
  .reg .b64 %rd<3>;
  ld.param.u64 %rd1, [out];
  cvta.to.global.u64 %rd1, %rd1;
  ld.global.u32 %r1, [counter];
  ld.global.u64 %rd2, [table+24];
  cvt.u32.u64 %r2, %rd2;
  ld.global.u32 %r3, [other];
  add.u32 %r4, %r1, %r2;
  add.u32 %r4, %r4, %r3;
  st.global.u32 [%rd1], %r4;
  st.global.u32 [counter], %r4;
  ret;
}
)";

template <typename Fn> Fn extension(const char* name) {
  return reinterpret_cast<Fn>(dlsym(RTLD_DEFAULT, name));
}

class AddressesTest : public DriverTest {
protected:
  void SetUp() override {
    DriverTest::SetUp();
    window_ = extension<tf::cuda::DeviceWindow>(tf::cuda::kDeviceWindow);
    loadPlaced_ = extension<tf::cuda::ModuleLoadPlaced>(tf::cuda::kModuleLoadPlaced);
    libraryPlaced_ = extension<tf::cuda::LibraryLoadPlaced>(tf::cuda::kLibraryLoadPlaced);
    ASSERT_TRUE(window_ && loadPlaced_ && libraryPlaced_) << "soft GPU extensions not exported";
  }
  static uint64_t windowOf(int device) { return kWindowBase + device * kWindowStride; }
  static size_t freeMemory() {
    size_t free = 0, total = 0;
    EXPECT_CU(cuMemGetInfo(&free, &total));
    return free;
  }
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
  tf::cuda::ModuleLoadPlaced loadPlaced_ = nullptr;
  tf::cuda::LibraryLoadPlaced libraryPlaced_ = nullptr;
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
  for (uint64_t hint : {want, want + kTwoMiB, want + 4096, uint64_t{0x10000},
                        windowOf(kMinWindows) + kGiB}) {
    CUdeviceptr other = 0;
    ASSERT_CU(cuMemAddressReserve(&other, kTwoMiB, 0, hint, 0)) << std::hex << hint;
    EXPECT_GE(other, windowOf(0)) << std::hex << hint;
    EXPECT_LT(other, windowOf(1)) << std::hex << hint;
    EXPECT_CU(cuMemAddressFree(other, kTwoMiB));
  }
  // The window of a device this process lacks (it has 2) is there too: another process's
  // addresses of its device 5 can be recreated here.
  CUdeviceptr five = 0;
  ASSERT_CU(cuMemAddressReserve(&five, kTwoMiB, 0, windowOf(5) + kGiB, 0));
  EXPECT_EQ(five, windowOf(5) + kGiB);
  EXPECT_CU(cuMemAddressFree(five, kTwoMiB));
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

TEST_F(AddressesTest, PlacedGlobalsAreWhereAskedInitialisedAndSeenByKernels) {
  const uint64_t counterAt = windowOf(1) + 128 * kGiB, tableAt = windowOf(0) + 200 * kGiB;
  const GlobalPlacement placements[] = {{"counter", counterAt}, {"table", tableAt}};
  const size_t free0 = freeMemory();
  CUmodule mod = nullptr;
  ASSERT_CU(loadPlaced_(&mod, kGlobalsPtx, placements, 2));
  CUdeviceptr at = 0;
  size_t bytes = 0;
  ASSERT_CU(cuModuleGetGlobal(&at, &bytes, mod, "counter"));
  EXPECT_EQ(at, counterAt);
  EXPECT_EQ(bytes, 4u);
  ASSERT_CU(cuModuleGetGlobal(&at, &bytes, mod, "table"));
  EXPECT_EQ(at, tableAt);
  EXPECT_EQ(bytes, 32u);
  uint64_t table[4] = {};
  ASSERT_CU(cuMemcpyDtoH(table, tableAt, sizeof table));
  EXPECT_EQ(table[0], 1u);
  EXPECT_EQ(table[3], 4u);
  // The global not named goes where globals go: device 0's window, clear of the placed ones.
  CUdeviceptr otherAt = 0;
  ASSERT_CU(cuModuleGetGlobal(&otherAt, &bytes, mod, "other"));
  EXPECT_GE(otherAt, windowOf(0));
  EXPECT_LT(otherAt, windowOf(1));
  EXPECT_NE(otherAt, tableAt);
  EXPECT_LT(freeMemory(), free0) << "the globals are charged to the device";

  CUdeviceptr out = 0;
  ASSERT_CU(cuMemAlloc(&out, 4));
  CUfunction sum = nullptr;
  ASSERT_CU(cuModuleGetFunction(&sum, mod, "sum"));
  void* params[] = {&out};
  ASSERT_CU(cuLaunchKernel(sum, 1, 1, 1, 1, 1, 1, 0, nullptr, params, nullptr));
  ASSERT_CU(cuCtxSynchronize());
  uint32_t got = 0, counter = 0;
  ASSERT_CU(cuMemcpyDtoH(&got, out, 4));
  EXPECT_EQ(got, 7u + 4u + 9u);
  ASSERT_CU(cuMemcpyDtoH(&counter, counterAt, 4)); // the kernel wrote the placed global
  EXPECT_EQ(counter, 20u);
  EXPECT_CU(cuMemFree(out));
  EXPECT_CU(cuModuleUnload(mod));
  EXPECT_EQ(freeMemory(), free0);

  // As a library: translated at once, the same addresses (free again after the unload).
  CUlibrary lib = nullptr;
  ASSERT_CU(libraryPlaced_(&lib, kGlobalsPtx, placements, 2));
  ASSERT_CU(cuLibraryGetGlobal(&at, &bytes, lib, "counter"));
  EXPECT_EQ(at, counterAt);
  ASSERT_CU(cuMemcpyDtoH(&counter, counterAt, 4));
  EXPECT_EQ(counter, 7u);
  EXPECT_CU(cuLibraryUnload(lib));
  EXPECT_EQ(freeMemory(), free0);
}

TEST_F(AddressesTest, PlacementRefusalsNameTheProblemAndLeaveNothingAllocated) {
  const uint64_t counterAt = windowOf(1) + 160 * kGiB;
  CUdeviceptr taken = 0;
  ASSERT_CU(cuMemAlloc(&taken, 4096));
  CUdeviceptr reserved = 0;
  ASSERT_CU(cuMemAddressReserve(&reserved, kTwoMiB, 0, 0, 0));
  const size_t free0 = freeMemory();
  struct Case {
    const char* what;
    std::vector<GlobalPlacement> placements;
    CUresult want;
  };
  // Each refusal after `counter` was placed, so a leak of its memory would show.
  const Case cases[] = {
      {"unknown name", {{"counter", counterAt}, {"nothing", windowOf(0) + kGiB}}, CUDA_ERROR_NOT_FOUND},
      {"null name", {{"counter", counterAt}, {nullptr, windowOf(0) + kGiB}}, CUDA_ERROR_INVALID_VALUE},
      {"named twice", {{"counter", counterAt}, {"counter", counterAt + kGiB}}, CUDA_ERROR_INVALID_VALUE},
      {"allocated", {{"counter", counterAt}, {"table", taken}}, CUDA_ERROR_ALREADY_MAPPED},
      {"reserved", {{"counter", counterAt}, {"table", reserved + 4096}}, CUDA_ERROR_ALREADY_MAPPED},
      {"on a placed one", {{"counter", counterAt}, {"table", counterAt}}, CUDA_ERROR_ALREADY_MAPPED},
      {"misaligned", {{"counter", counterAt}, {"table", windowOf(0) + kGiB + 8}}, CUDA_ERROR_INVALID_VALUE},
      {"host address", {{"counter", counterAt}, {"table", reinterpret_cast<uint64_t>(&free0) & ~4095ull}},
       CUDA_ERROR_INVALID_VALUE},
      {"past the windows", {{"counter", counterAt}, {"table", windowOf(kMinWindows) + kGiB}},
       CUDA_ERROR_INVALID_VALUE},
      {"across windows", {{"counter", counterAt}, {"table", windowOf(2) - 4096}}, CUDA_ERROR_INVALID_VALUE},
  };
  for (const Case& c : cases) {
    CUmodule mod = nullptr;
    EXPECT_EQ(loadPlaced_(&mod, kGlobalsPtx, c.placements.data(),
                          static_cast<unsigned>(c.placements.size())),
              c.want)
        << c.what;
    EXPECT_EQ(mod, nullptr) << c.what;
    EXPECT_EQ(freeMemory(), free0) << c.what << ": memory left charged";
  }
  // The addresses of refused loads are free: a good placement takes them.
  const GlobalPlacement good[] = {{"counter", counterAt}, {"table", windowOf(0) + kGiB}};
  CUmodule mod = nullptr;
  ASSERT_CU(loadPlaced_(&mod, kGlobalsPtx, good, 2));
  CUdeviceptr at = 0;
  size_t bytes = 0;
  ASSERT_CU(cuModuleGetGlobal(&at, &bytes, mod, "table"));
  EXPECT_EQ(at, windowOf(0) + kGiB);
  EXPECT_CU(cuModuleUnload(mod));
  EXPECT_EQ(loadPlaced_(nullptr, kGlobalsPtx, good, 2), CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(loadPlaced_(&mod, kGlobalsPtx, nullptr, 2), CUDA_ERROR_INVALID_VALUE);
  EXPECT_CU(cuMemAddressFree(reserved, kTwoMiB));
  EXPECT_CU(cuMemFree(taken));
}

} // namespace

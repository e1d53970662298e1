#include <cstring>
#include <vector>

#include <sys/mman.h>
#include <unistd.h>

#include "driver_test.h"

// cuda/softgpu_extensions.h: outside the CUDA ABI, exported by the soft GPU alone.
extern "C" CUresult tfSoftGpuShareDeviceMemory(CUdeviceptr base, int* fd, size_t* bytes);
extern "C" CUresult tfSoftGpuShareManagedMemory(CUdeviceptr base, int* fd, size_t* bytes);

namespace {

TEST_F(DriverTest, DevicesReportTheirModels) {
  int n = 0;
  ASSERT_CU(cuDeviceGetCount(&n));
  ASSERT_EQ(n, 2);
  char name[128];
  ASSERT_CU(cuDeviceGetName(name, sizeof name, 1));
  EXPECT_STREQ(name, "NVIDIA L4");
  int sms = 0, major = 0;
  ASSERT_CU(cuDeviceGetAttribute(&sms, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, 0));
  ASSERT_CU(cuDeviceGetAttribute(&major, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, 0));
  EXPECT_EQ(sms, 132);
  EXPECT_EQ(major, 9);
  size_t total = 0;
  ASSERT_CU(cuDeviceTotalMem(&total, 0));
  EXPECT_EQ(total, 1ull << 30);
  CUuuid a, b;
  ASSERT_CU(cuDeviceGetUuid(&a, 0));
  ASSERT_CU(cuDeviceGetUuid(&b, 1));
  EXPECT_NE(memcmp(a.bytes, b.bytes, 16), 0);
  char bus[32];
  ASSERT_CU(cuDeviceGetPCIBusId(bus, sizeof bus, 1));
  CUdevice back = -1;
  ASSERT_CU(cuDeviceGetByPCIBusId(&back, bus));
  EXPECT_EQ(back, 1);
}

TEST_F(DriverTest, ContextStackPushPop) {
  CUcontext created = nullptr, cur = nullptr;
  ASSERT_CU(cuCtxCreate(&created, nullptr, 0, 1));
  ASSERT_CU(cuCtxGetCurrent(&cur));
  EXPECT_EQ(cur, created);
  CUdevice dev = -1;
  ASSERT_CU(cuCtxGetDevice(&dev));
  EXPECT_EQ(dev, 1);
  CUcontext popped = nullptr;
  ASSERT_CU(cuCtxPopCurrent(&popped));
  EXPECT_EQ(popped, created);
  ASSERT_CU(cuCtxGetCurrent(&cur));
  EXPECT_EQ(cur, ctx_);
  ASSERT_CU(cuCtxDestroy(created));
  EXPECT_EQ(cuCtxPushCurrent(created), CUDA_ERROR_INVALID_CONTEXT); // stale handle
}

TEST_F(DriverTest, AllocationsAreChargedAndCopiesRoundTrip) {
  size_t free0, total;
  ASSERT_CU(cuMemGetInfo(&free0, &total));
  CUdeviceptr d;
  ASSERT_CU(cuMemAlloc(&d, 64 << 20));
  size_t free1;
  ASSERT_CU(cuMemGetInfo(&free1, &total));
  EXPECT_LE(free1 + (64 << 20), free0);
  std::vector<uint32_t> in(1 << 20), out(1 << 20);
  for (size_t i = 0; i < in.size(); ++i) in[i] = static_cast<uint32_t>(i * 2654435761u);
  ASSERT_CU(cuMemcpyHtoD(d, in.data(), in.size() * 4));
  CUdeviceptr d2;
  ASSERT_CU(cuMemAlloc(&d2, in.size() * 4));
  ASSERT_CU(cuMemcpyDtoD(d2, d, in.size() * 4));
  ASSERT_CU(cuMemcpyDtoH(out.data(), d2, out.size() * 4));
  EXPECT_EQ(in, out);
  ASSERT_CU(cuMemsetD32(d2 + 8, 0xdeadbeef, 3));
  ASSERT_CU(cuMemcpyDtoH(out.data(), d2, 32));
  EXPECT_EQ(out[1], in[1]);
  EXPECT_EQ(out[2], 0xdeadbeefu);
  EXPECT_EQ(out[4], 0xdeadbeefu);
  EXPECT_EQ(out[5], in[5]);
  ASSERT_CU(cuMemFree(d));
  ASSERT_CU(cuMemFree(d2));
  size_t free2;
  ASSERT_CU(cuMemGetInfo(&free2, &total));
  EXPECT_EQ(free2, free0);
}

TEST_F(DriverTest, OverTheDeviceMemoryIsOutOfMemoryAndLosesNothing) {
  size_t free0, total;
  ASSERT_CU(cuMemGetInfo(&free0, &total));
  CUdeviceptr d;
  EXPECT_EQ(cuMemAlloc(&d, total + 1), CUDA_ERROR_OUT_OF_MEMORY);
  size_t free1;
  ASSERT_CU(cuMemGetInfo(&free1, &total));
  EXPECT_EQ(free1, free0);
}

TEST_F(DriverTest, CopiesThatLeaveTheAllocationFail) {
  CUdeviceptr d;
  ASSERT_CU(cuMemAlloc(&d, 4096));
  std::vector<char> buf(8192);
  EXPECT_EQ(cuMemcpyHtoD(d + 4000, buf.data(), 200), CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(cuMemcpyDtoH(buf.data(), d, 4097), CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(cuMemsetD8(d + 4096, 1, 1), CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(cuMemFree(d + 16), CUDA_ERROR_INVALID_VALUE); // not the start
  ASSERT_CU(cuMemFree(d));
  EXPECT_EQ(cuMemFree(d), CUDA_ERROR_INVALID_VALUE); // double free
  EXPECT_EQ(cuMemcpyHtoD(d, buf.data(), 16), CUDA_ERROR_INVALID_VALUE); // freed
}

TEST_F(DriverTest, DevicePointersAreNotHostPointers) {
  CUdeviceptr d;
  ASSERT_CU(cuMemAlloc(&d, 4096));
  EXPECT_DEATH({ (void)*reinterpret_cast<volatile char*>(d); }, "");
  ASSERT_CU(cuMemFree(d));
}

TEST_F(DriverTest, PitchAnd3DCopies) {
  CUdeviceptr d;
  size_t pitch = 0;
  ASSERT_CU(cuMemAllocPitch(&d, &pitch, 100, 8, 4));
  EXPECT_GE(pitch, 100u);
  std::vector<uint8_t> src(100 * 8), dst(100 * 8, 0);
  for (size_t i = 0; i < src.size(); ++i) src[i] = static_cast<uint8_t>(i * 7);
  CUDA_MEMCPY2D up{};
  up.srcMemoryType = CU_MEMORYTYPE_HOST;
  up.srcHost = src.data();
  up.srcPitch = 100;
  up.dstMemoryType = CU_MEMORYTYPE_DEVICE;
  up.dstDevice = d;
  up.dstPitch = pitch;
  up.WidthInBytes = 100;
  up.Height = 8;
  ASSERT_CU(cuMemcpy2D(&up));
  CUDA_MEMCPY3D down{};
  down.srcMemoryType = CU_MEMORYTYPE_DEVICE;
  down.srcDevice = d;
  down.srcPitch = pitch;
  down.srcHeight = 8;
  down.dstMemoryType = CU_MEMORYTYPE_HOST;
  down.dstHost = dst.data();
  down.dstPitch = 100;
  down.dstHeight = 8;
  down.WidthInBytes = 100;
  down.Height = 8;
  down.Depth = 1;
  ASSERT_CU(cuMemcpy3D(&down));
  EXPECT_EQ(src, dst);
  up.Height = 9; // one row past the allocation
  EXPECT_EQ(cuMemcpy2D(&up), CUDA_ERROR_INVALID_VALUE);
  ASSERT_CU(cuMemFree(d));
}

TEST_F(DriverTest, PinnedManagedAndRegisteredMemory) {
  void* pinned = nullptr;
  ASSERT_CU(cuMemHostAlloc(&pinned, 4096, CU_MEMHOSTALLOC_DEVICEMAP));
  CUdeviceptr mapped;
  ASSERT_CU(cuMemHostGetDevicePointer(&mapped, pinned, 0));
  EXPECT_EQ(mapped, reinterpret_cast<CUdeviceptr>(pinned));
  unsigned type = 0;
  ASSERT_CU(cuPointerGetAttribute(&type, CU_POINTER_ATTRIBUTE_MEMORY_TYPE, mapped));
  EXPECT_EQ(type, CU_MEMORYTYPE_HOST);
  CUdeviceptr managed;
  ASSERT_CU(cuMemAllocManaged(&managed, 4096, CU_MEM_ATTACH_GLOBAL));
  reinterpret_cast<int*>(managed)[3] = 42; // host access works for managed memory
  int isManaged = 0;
  ASSERT_CU(cuPointerGetAttribute(&isManaged, CU_POINTER_ATTRIBUTE_IS_MANAGED, managed));
  EXPECT_EQ(isManaged, 1);
  ASSERT_CU(cuMemcpy(reinterpret_cast<CUdeviceptr>(pinned), managed, 16));
  EXPECT_EQ(static_cast<int*>(pinned)[3], 42);
  std::vector<char> user(8192);
  ASSERT_CU(cuMemHostRegister(user.data(), user.size(), 0));
  EXPECT_EQ(cuMemHostRegister(user.data() + 10, 10, 0), CUDA_ERROR_HOST_MEMORY_ALREADY_REGISTERED);
  ASSERT_CU(cuMemHostUnregister(user.data()));
  EXPECT_EQ(cuMemHostUnregister(user.data()), CUDA_ERROR_HOST_MEMORY_NOT_REGISTERED);
  ASSERT_CU(cuMemFreeHost(pinned));
  ASSERT_CU(cuMemFree(managed));
  // Pageable memory is unknown to the driver: the plural query answers zeroes, not an error.
  CUpointer_attribute attrs[] = {CU_POINTER_ATTRIBUTE_MEMORY_TYPE};
  unsigned t = 99;
  void* data[] = {&t};
  ASSERT_CU(cuPointerGetAttributes(1, attrs, data, reinterpret_cast<CUdeviceptr>(user.data())));
  EXPECT_EQ(t, 0u);
}

// Device and managed memory handed to another mapping (remoting's client): the descriptor maps
// the very bytes the allocation holds, written before (in a stretch of it; the rest reads zero)
// and after, either way; only the base of the right kind of allocation is shared; the mapping
// outlives the free.
TEST_F(DriverTest, SharedMemoryIsTheAllocationsOwnBytes) {
  const size_t size = (3 << 20) + 100, span = (size + 4095) & ~size_t(4095);
  CUdeviceptr managed, device;
  ASSERT_CU(cuMemAllocManaged(&managed, size, CU_MEM_ATTACH_GLOBAL));
  ASSERT_CU(cuMemAlloc(&device, size));
  ASSERT_CU(cuMemsetD8(managed + (1 << 20) + 5, 0x5a, 1 << 20));
  ASSERT_CU(cuMemsetD8(device, 0, size));
  ASSERT_CU(cuMemsetD8(device + (2 << 20), 0x6b, 4096));
  int fd = -1;
  size_t bytes = 0;
  EXPECT_EQ(tfSoftGpuShareManagedMemory(managed + 4096, &fd, &bytes), CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(tfSoftGpuShareManagedMemory(device, &fd, &bytes), CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(tfSoftGpuShareDeviceMemory(managed, &fd, &bytes), CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(tfSoftGpuShareManagedMemory(managed, nullptr, &bytes), CUDA_ERROR_INVALID_VALUE);
  for (CUdeviceptr p : {managed, device}) {
    const bool isManaged = p == managed;
    ASSERT_CU(isManaged ? tfSoftGpuShareManagedMemory(p, &fd, &bytes) : tfSoftGpuShareDeviceMemory(p, &fd, &bytes));
    EXPECT_EQ(bytes, isManaged ? span : size);
    auto* view = static_cast<uint8_t*>(mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0));
    close(fd);
    ASSERT_NE(view, MAP_FAILED);
    std::vector<uint8_t> got(size);
    ASSERT_CU(cuMemcpyDtoH(got.data(), p, size));
    EXPECT_EQ(std::memcmp(view, got.data(), size), 0);
    const size_t marked = isManaged ? (1 << 20) + 5 : 2 << 20;
    EXPECT_EQ(view[marked], isManaged ? 0x5a : 0x6b);
    EXPECT_EQ(view[0], 0);
    EXPECT_EQ(view[size - 1], 0);
    view[7] = 0x21; // through the other mapping, seen by the device
    uint8_t b = 0;
    ASSERT_CU(cuMemcpyDtoH(&b, p + 7, 1));
    EXPECT_EQ(b, 0x21);
    ASSERT_CU(cuMemsetD8(p + 9, 0x43, 1)); // by the device, seen through the other mapping
    ASSERT_CU(cuCtxSynchronize());
    EXPECT_EQ(view[9], 0x43);
    ASSERT_CU(cuMemFree(p));
    EXPECT_EQ(view[marked], isManaged ? 0x5a : 0x6b); // the pages live while mapped
    munmap(view, bytes);
  }
}

} // namespace

#include <cstring>
#include <string>
#include <vector>

#include "driver_test.h"

namespace {

TEST_F(DriverTest, BadHandlesAndArgumentsAreErrorsNotCrashes) {
  EXPECT_EQ(cuDeviceGetName(nullptr, 10, 0), CUDA_ERROR_INVALID_VALUE);
  char name[16];
  EXPECT_EQ(cuDeviceGetName(name, sizeof name, 7), CUDA_ERROR_INVALID_DEVICE);
  EXPECT_EQ(cuStreamSynchronize(reinterpret_cast<CUstream>(0x1234)), CUDA_ERROR_INVALID_HANDLE);
  EXPECT_EQ(cuEventRecord(reinterpret_cast<CUevent>(0x5678), nullptr), CUDA_ERROR_INVALID_HANDLE);
  EXPECT_EQ(cuCtxSetCurrent(reinterpret_cast<CUcontext>(0x42)), CUDA_ERROR_INVALID_CONTEXT);
  CUfunction f;
  EXPECT_EQ(cuModuleGetFunction(&f, reinterpret_cast<CUmodule>(0x99), "k"), CUDA_ERROR_INVALID_HANDLE);
  int v;
  EXPECT_EQ(cuDeviceGetAttribute(&v, static_cast<CUdevice_attribute>(100000), 0), CUDA_ERROR_INVALID_VALUE);
  CUdeviceptr d;
  EXPECT_EQ(cuMemAlloc(&d, 0), CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(cuMemAlloc(nullptr, 16), CUDA_ERROR_INVALID_VALUE);
}

TEST_F(DriverTest, NoCurrentContextIsInvalidContext) {
  ASSERT_CU(cuCtxSetCurrent(nullptr));
  CUdeviceptr d;
  EXPECT_EQ(cuMemAlloc(&d, 16), CUDA_ERROR_INVALID_CONTEXT);
  ASSERT_CU(cuCtxSetCurrent(ctx_));
}

TEST_F(DriverTest, GarbageModuleImagesAreRejected) {
  CUmodule m;
  const char garbage[] = "this is not a module image at all";
  EXPECT_EQ(cuModuleLoadData(&m, garbage), CUDA_ERROR_INVALID_IMAGE);
  unsigned char badFatbin[64] = {0x50, 0xed, 0x55, 0xba, 1, 0, 16, 0, 0xff, 0xff, 0xff, 0x7f};
  EXPECT_EQ(cuModuleLoadData(&m, badFatbin), CUDA_ERROR_INVALID_IMAGE);
  EXPECT_EQ(cuModuleLoad(&m, "/nonexistent/module.ptx"), CUDA_ERROR_FILE_NOT_FOUND);
}

TEST_F(DriverTest, ProcAddressResolvesVersionsAndRefusesUnknownNames) {
  void* fn = nullptr;
  CUdriverProcAddressQueryResult found;
  ASSERT_CU(cuGetProcAddress("cuMemAlloc", &fn, 12000, CU_GET_PROC_ADDRESS_DEFAULT, &found));
  EXPECT_EQ(found, CU_GET_PROC_ADDRESS_SUCCESS);
  auto alloc = reinterpret_cast<CUresult (*)(CUdeviceptr*, size_t)>(fn);
  CUdeviceptr d;
  ASSERT_CU(alloc(&d, 128));
  ASSERT_CU(cuMemFree(d));
  EXPECT_EQ(cuGetProcAddress("cuNoSuchThing", &fn, 13000, 0, &found), CUDA_ERROR_NOT_FOUND);
  EXPECT_EQ(found, CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND);
  EXPECT_EQ(fn, nullptr);
  EXPECT_EQ(cuGetProcAddress("cuLibraryLoadData", &fn, 11000, 0, &found), CUDA_ERROR_NOT_FOUND);
  EXPECT_EQ(found, CU_GET_PROC_ADDRESS_VERSION_NOT_SUFFICIENT);
  const CUuuid bogus{};
  const void* table = reinterpret_cast<void*>(1);
  EXPECT_EQ(cuGetExportTable(&table, &bogus), CUDA_ERROR_NOT_FOUND);
}

TEST_F(DriverTest, ErrorNamesAndStrings) {
  const char* s = nullptr;
  ASSERT_CU(cuGetErrorName(CUDA_ERROR_ILLEGAL_ADDRESS, &s));
  EXPECT_STREQ(s, "CUDA_ERROR_ILLEGAL_ADDRESS");
  ASSERT_CU(cuGetErrorString(CUDA_ERROR_OUT_OF_MEMORY, &s));
  EXPECT_STREQ(s, "out of memory");
  EXPECT_EQ(cuGetErrorName(static_cast<CUresult>(123456), &s), CUDA_ERROR_INVALID_VALUE);
}

} // namespace

// Libraries load lazily, as the driver's do: they are translated on first use; a kernel using
// a construct the soft GPU cannot run does not stop the library (cudart loads every fatbin a
// program or library carries); its launch fails with CUDA_ERROR_NOT_SUPPORTED and the context
// goes on. A module load of the same PTX is strict. A library image with no PTX at all loads;
// asking for a kernel of it fails.
TEST_F(DriverTest, LibrariesLoadLazily) {
  static const char kPtx[] = R"(
.version 8.0
.target sm_90
.address_size 64
.visible .entry good(.param .u64 p) {
  .reg .b64 %rd<2>;
  .reg .b32 %r<2>;
  ld.param.u64 %rd1, [p];
  cvta.to.global.u64 %rd1, %rd1;
  mov.u32 %r1, 7;
  membar.gl;
  fence.acq_rel.gpu;
  st.global.u32 [%rd1], %r1;
  ret;
}
.visible .entry bad(.param .u64 p) {
  .reg .b32 %r<5>;
  .shared .align 16 .b8 tile[512];
  ldmatrix.sync.aligned.x4.m8n8.shared.b16 {%r1, %r2, %r3, %r4}, [tile];
  ret;
}
)";
  CUmodule m = nullptr;
  EXPECT_EQ(cuModuleLoadData(&m, kPtx), CUDA_ERROR_INVALID_PTX); // a module translates whole
  CUlibrary lib = nullptr;
  ASSERT_CU(cuLibraryLoadData(&lib, kPtx, nullptr, nullptr, 0, nullptr, nullptr, 0));
  CUkernel good = nullptr, bad = nullptr;
  ASSERT_CU(cuLibraryGetKernel(&good, lib, "good"));
  ASSERT_CU(cuLibraryGetKernel(&bad, lib, "bad"));
  CUdeviceptr out = 0;
  ASSERT_CU(cuMemAlloc(&out, 4));
  void* args[] = {&out};
  EXPECT_EQ(cuLaunchKernel(reinterpret_cast<CUfunction>(bad), 1, 1, 1, 32, 1, 1, 0, nullptr, args, nullptr),
            CUDA_ERROR_NOT_SUPPORTED);
  ASSERT_CU(cuLaunchKernel(reinterpret_cast<CUfunction>(good), 1, 1, 1, 1, 1, 1, 0, nullptr, args, nullptr));
  ASSERT_CU(cuCtxSynchronize());
  uint32_t v = 0;
  ASSERT_CU(cuMemcpyDtoH(&v, out, 4));
  EXPECT_EQ(v, 7u);
  EXPECT_CU(cuMemFree(out));
  EXPECT_CU(cuLibraryUnload(lib));

  // PTX that does not even parse: the library loads (it is translated on first use), and
  // the first use reports it.
  static const char kBroken[] = ".version 8.0\n.target sm_90\n.address_size 64\n"
                                ".visible .entry k( { garbage\n";
  ASSERT_CU(cuLibraryLoadData(&lib, kBroken, nullptr, nullptr, 0, nullptr, nullptr, 0));
  EXPECT_EQ(cuLibraryGetKernel(&good, lib, "k"), CUDA_ERROR_INVALID_PTX);
  EXPECT_EQ(cuLibraryGetKernel(&good, lib, "k"), CUDA_ERROR_INVALID_PTX); // and stays so
  EXPECT_CU(cuLibraryUnload(lib));
  EXPECT_EQ(cuModuleLoadData(&m, kBroken), CUDA_ERROR_INVALID_PTX);

  // A fatbin container holding one sm_90 cubin entry and no PTX.
  std::vector<uint8_t> fat(16 + 64 + 16, 0);
  auto put16 = [&](size_t at, uint16_t x) { memcpy(&fat[at], &x, 2); };
  auto put32 = [&](size_t at, uint32_t x) { memcpy(&fat[at], &x, 4); };
  auto put64 = [&](size_t at, uint64_t x) { memcpy(&fat[at], &x, 8); };
  put32(0, 0xBA55ED50);
  put16(4, 1);
  put16(6, 16);
  put64(8, 64 + 16);
  put16(16, 2);      // ELF cubin
  put16(18, 0x0101);
  put32(20, 64);     // header size
  put64(24, 16);     // payload size
  put16(40, 8);      // minor
  put16(42, 1);      // major
  put32(44, 90);     // sm_90
  put64(56, 0x11);   // 64-bit, Linux
  memcpy(&fat[80], "\x7f" "ELF", 4);
  EXPECT_EQ(cuModuleLoadData(&m, fat.data()), CUDA_ERROR_NO_BINARY_FOR_GPU);
  ASSERT_CU(cuLibraryLoadData(&lib, fat.data(), nullptr, nullptr, 0, nullptr, nullptr, 0));
  EXPECT_EQ(cuLibraryGetKernel(&good, lib, "anything"), CUDA_ERROR_NO_BINARY_FOR_GPU);
  EXPECT_CU(cuLibraryUnload(lib));
}

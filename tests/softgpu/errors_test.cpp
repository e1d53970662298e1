#include <cstring>
#include <string>

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
  EXPECT_NE(cuModuleLoadData(&m, garbage), CUDA_SUCCESS);
  unsigned char badFatbin[64] = {0x50, 0xed, 0x55, 0xba, 1, 0, 16, 0, 0xff, 0xff, 0xff, 0x7f};
  EXPECT_NE(cuModuleLoadData(&m, badFatbin), CUDA_SUCCESS);
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

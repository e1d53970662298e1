// Driver API error handling: calls before cuInit, bad ordinals, no current context, null
// pointers, destroyed and garbage handles, frees of interior pointers, garbage module images
// (an error, never a crash), a valid PTX module, cuGetProcAddress, error names and strings.
#include <cstring>
#include <vector>

#include "check.h"

static const char kPtx[] = R"(
.version 8.0
.target sm_80
.address_size 64

.global .align 4 .u32 counter = 7;
.global .align 8 .b8 table[64];

.visible .entry add_one(.param .u64 p, .param .u32 n)
{
  .reg .pred %p<2>;
  .reg .b32 %r<6>;
  .reg .b64 %rd<5>;
  ld.param.u64 %rd1, [p];
  ld.param.u32 %r1, [n];
  mov.u32 %r2, %ctaid.x;
  mov.u32 %r3, %ntid.x;
  mov.u32 %r4, %tid.x;
  mad.lo.s32 %r5, %r2, %r3, %r4;
  setp.ge.u32 %p1, %r5, %r1;
  @%p1 bra DONE;
  cvta.to.global.u64 %rd2, %rd1;
  mul.wide.u32 %rd3, %r5, 4;
  add.s64 %rd4, %rd2, %rd3;
  ld.global.u32 %r2, [%rd4];
  add.s32 %r2, %r2, 1;
  st.global.u32 [%rd4], %r2;
DONE:
  ret;
}
)";

int main() {
  // ---- Before cuInit ----
  int n = -1;
  CUdevice d = -1;
  CUdeviceptr p = 0;
  CUcontext c = nullptr;
  CU_EXPECT_ERR(cuDeviceGetCount(&n), CUDA_ERROR_NOT_INITIALIZED);
  CU_EXPECT_ERR(cuDeviceGet(&d, 0), CUDA_ERROR_NOT_INITIALIZED);
  CU_EXPECT_ERR(cuMemAlloc(&p, 16), CUDA_ERROR_NOT_INITIALIZED);
  CU_EXPECT_ERR(cuCtxGetCurrent(&c), CUDA_ERROR_NOT_INITIALIZED);
  int version = 0;
  CU_CHECK(cuDriverGetVersion(&version)); // allowed before cuInit
  EXPECT_EQ_INT(version, 13000);
  CU_EXPECT_ERR(cuDriverGetVersion(nullptr), CUDA_ERROR_INVALID_VALUE);
  CU_EXPECT_ERR(cuInit(1), CUDA_ERROR_INVALID_VALUE);
  CU_CHECK(cuInit(0));
  CU_CHECK(cuInit(0)); // idempotent

  // ---- Devices ----
  CU_CHECK(cuDeviceGetCount(&n));
  REQUIRE(n >= 1);
  CU_EXPECT_ERR(cuDeviceGet(&d, n), CUDA_ERROR_INVALID_DEVICE);
  CU_EXPECT_ERR(cuDeviceGet(&d, -1), CUDA_ERROR_INVALID_DEVICE);
  char name[128];
  CU_EXPECT_ERR(cuDeviceGetName(name, sizeof name, n + 3), CUDA_ERROR_INVALID_DEVICE);
  CU_EXPECT_ERR(cuDeviceGetName(nullptr, sizeof name, 0), CUDA_ERROR_INVALID_VALUE);
  CU_EXPECT_ERR(cuDevicePrimaryCtxRetain(&c, n), CUDA_ERROR_INVALID_DEVICE);
  int attr = 0;
  CU_EXPECT_ERR(cuDeviceGetAttribute(&attr, CU_DEVICE_ATTRIBUTE_WARP_SIZE, 77), CUDA_ERROR_INVALID_DEVICE);
  CU_EXPECT_ERR(cuDeviceGetAttribute(&attr, static_cast<CUdevice_attribute>(100000), 0),
                CUDA_ERROR_INVALID_VALUE);
  CU_EXPECT_ERR(cuDeviceGetAttribute(nullptr, CU_DEVICE_ATTRIBUTE_WARP_SIZE, 0), CUDA_ERROR_INVALID_VALUE);
  CU_EXPECT_ERR(cuDeviceGetCount(nullptr), CUDA_ERROR_INVALID_VALUE);
  CU_CHECK(cuDeviceGet(&d, 0));

  // ---- No current context ----
  CU_CHECK(cuCtxGetCurrent(&c));
  EXPECT_TRUE(c == nullptr);
  CUstream s = nullptr;
  CUevent e = nullptr;
  CU_EXPECT_ERR(cuMemAlloc(&p, 16), CUDA_ERROR_INVALID_CONTEXT);
  CU_EXPECT_ERR(cuStreamCreate(&s, 0), CUDA_ERROR_INVALID_CONTEXT);
  CU_EXPECT_ERR(cuEventCreate(&e, 0), CUDA_ERROR_INVALID_CONTEXT);
  CU_EXPECT_ERR(cuCtxSynchronize(), CUDA_ERROR_INVALID_CONTEXT);
  size_t fr = 0, tot = 0;
  CU_EXPECT_ERR(cuMemGetInfo(&fr, &tot), CUDA_ERROR_INVALID_CONTEXT);
  CU_EXPECT_ERR(cuModuleLoadData(nullptr, kPtx), CUDA_ERROR_INVALID_VALUE);
  CUmodule m = nullptr;
  CU_EXPECT_ERR(cuModuleLoadData(&m, kPtx), CUDA_ERROR_INVALID_CONTEXT);

  // ---- Context and null pointers ----
  CUcontext ctx = nullptr;
  CU_CHECK(cuDevicePrimaryCtxRetain(&ctx, d));
  CU_CHECK(cuCtxSetCurrent(ctx));
  TF_CHECK_VGPU(); // in a _limited run: the limiter is there (check.h)
  CU_EXPECT_ERR(cuMemAlloc(nullptr, 16), CUDA_ERROR_INVALID_VALUE);
  CU_EXPECT_ERR(cuMemAlloc(&p, 0), CUDA_ERROR_INVALID_VALUE);
  CU_EXPECT_ERR(cuStreamCreate(nullptr, 0), CUDA_ERROR_INVALID_VALUE);
  CU_EXPECT_ERR(cuEventCreate(nullptr, 0), CUDA_ERROR_INVALID_VALUE);
  CU_EXPECT_ERR(cuMemGetInfo(nullptr, nullptr), CUDA_ERROR_INVALID_VALUE);
  CU_EXPECT_ERR(cuMemcpyHtoD(0, name, 4), CUDA_ERROR_INVALID_VALUE);
  CU_EXPECT_ERR(cuCtxGetDevice(nullptr), CUDA_ERROR_INVALID_VALUE);

  // ---- Interior free ----
  CU_CHECK(cuMemAlloc(&p, 1 << 16));
  CU_EXPECT_ERR(cuMemFree(p + 4096), CUDA_ERROR_INVALID_VALUE);
  CU_EXPECT_ERR(cuMemFree(p + 1), CUDA_ERROR_INVALID_VALUE);
  CU_CHECK(cuMemsetD8(p, 1, 1 << 16)); // still allocated
  CU_CHECK(cuMemFree(p));
  CU_EXPECT_ERR(cuMemFree(p), CUDA_ERROR_INVALID_VALUE);

  // ---- Destroyed handles ----
  CU_CHECK(cuStreamCreate(&s, CU_STREAM_NON_BLOCKING));
  CU_CHECK(cuStreamDestroy(s));
  CU_EXPECT_ERR(cuStreamSynchronize(s), CUDA_ERROR_INVALID_HANDLE);
  CU_EXPECT_ERR(cuStreamQuery(s), CUDA_ERROR_INVALID_HANDLE);
  CU_EXPECT_ERR(cuStreamDestroy(s), CUDA_ERROR_INVALID_HANDLE);
  CU_CHECK(cuEventCreate(&e, 0));
  CU_CHECK(cuEventDestroy(e));
  CU_EXPECT_ERR(cuEventRecord(e, nullptr), CUDA_ERROR_INVALID_HANDLE);
  CU_EXPECT_ERR(cuEventQuery(e), CUDA_ERROR_INVALID_HANDLE);
  CU_EXPECT_ERR(cuEventSynchronize(e), CUDA_ERROR_INVALID_HANDLE);
  CU_EXPECT_ERR(cuEventDestroy(e), CUDA_ERROR_INVALID_HANDLE);
  CUcontext own = nullptr;
  CU_CHECK(cuCtxCreate(&own, nullptr, 0, d));
  CU_CHECK(cuCtxDestroy(own));
  CU_EXPECT_ERR(cuCtxSetCurrent(own), CUDA_ERROR_INVALID_CONTEXT);
  CU_EXPECT_ERR(cuCtxPushCurrent(own), CUDA_ERROR_INVALID_CONTEXT);
  CU_EXPECT_ERR(cuCtxDestroy(own), CUDA_ERROR_INVALID_CONTEXT);
  CU_CHECK(cuCtxSetCurrent(ctx)); // cuCtxDestroy of the current one may have unset it

  // ---- Garbage handles ----
  CU_EXPECT_ERR(cuStreamSynchronize(reinterpret_cast<CUstream>(0xdeadbeef0ull)), CUDA_ERROR_INVALID_HANDLE);
  CU_EXPECT_ERR(cuEventQuery(reinterpret_cast<CUevent>(0x1234)), CUDA_ERROR_INVALID_HANDLE);
  CU_EXPECT_ERR(cuCtxSetCurrent(reinterpret_cast<CUcontext>(0x42)), CUDA_ERROR_INVALID_CONTEXT);
  CUfunction f = nullptr;
  CU_EXPECT_ERR(cuModuleGetFunction(&f, reinterpret_cast<CUmodule>(0x99), "add_one"), CUDA_ERROR_INVALID_HANDLE);
  CU_EXPECT_ERR(cuModuleUnload(reinterpret_cast<CUmodule>(0x98)), CUDA_ERROR_INVALID_HANDLE);
  CU_EXPECT_ERR(cuStreamWaitEvent(nullptr, reinterpret_cast<CUevent>(0x777), 0), CUDA_ERROR_INVALID_HANDLE);
  CU_CHECK(cuCtxSetCurrent(ctx));

  // ---- Garbage module images: errors, not crashes ----
  tf_test::Rng rng(8);
  std::vector<unsigned char> junk(4096);
  rng.fill(junk.data(), junk.size());
  CU_EXPECT_ERR(cuModuleLoadData(&m, junk.data()), CUDA_ERROR_INVALID_IMAGE);
  unsigned char fakeElf[64] = {0x7f, 'E', 'L', 'F', 2, 1, 1};
  std::memset(fakeElf + 7, 0xff, sizeof fakeElf - 7);
  CU_EXPECT_ERR(cuModuleLoadData(&m, fakeElf), CUDA_ERROR_INVALID_IMAGE);
  // A fatbinary header (magic 0xBA55ED50) that promises far more than is there.
  unsigned char fakeFatbin[64] = {0x50, 0xED, 0x55, 0xBA, 1, 0, 0x10, 0};
  std::memset(fakeFatbin + 8, 0xff, 8);
  CU_EXPECT_ERR(cuModuleLoadData(&m, fakeFatbin), CUDA_ERROR_INVALID_IMAGE);
  const char badPtx[] = ".version 8.0\n.target sm_80\n.address_size 64\n.visible .entry k( {{{ garbage";
  CU_EXPECT_ERR(cuModuleLoadData(&m, badPtx), CUDA_ERROR_INVALID_PTX); // PTX, but broken
  CU_EXPECT_ERR(cuModuleLoadData(&m, ""), CUDA_ERROR_INVALID_IMAGE);
  CU_CHECK(cuCtxSynchronize()); // the context is still healthy

  // ---- A valid PTX module ----
  CU_CHECK(cuModuleLoadData(&m, kPtx));
  CU_CHECK(cuModuleGetFunction(&f, m, "add_one"));
  EXPECT_TRUE(f != nullptr);
  CUfunction none = nullptr;
  CU_EXPECT_ERR(cuModuleGetFunction(&none, m, "no_such_kernel"), CUDA_ERROR_NOT_FOUND);
  CUdeviceptr g = 0;
  size_t gsize = 0;
  CU_CHECK(cuModuleGetGlobal(&g, &gsize, m, "counter"));
  EXPECT_EQ_INT(gsize, 4);
  unsigned counter = 0;
  CU_CHECK(cuMemcpyDtoH(&counter, g, 4)); // initialised from the PTX
  EXPECT_EQ_INT(counter, 7);
  CU_CHECK(cuModuleGetGlobal(&g, &gsize, m, "table"));
  EXPECT_EQ_INT(gsize, 64);
  CU_EXPECT_ERR(cuModuleGetGlobal(&g, &gsize, m, "nothing"), CUDA_ERROR_NOT_FOUND);
  int regs = -1, maxThreads = 0;
  CU_CHECK(cuFuncGetAttribute(&maxThreads, CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK, f));
  EXPECT_TRUE(maxThreads > 0 && maxThreads <= 1024);
  CU_CHECK(cuFuncGetAttribute(&regs, CU_FUNC_ATTRIBUTE_NUM_REGS, f));
  EXPECT_TRUE(regs >= 0);
  CU_CHECK(cuModuleUnload(m));
  CU_EXPECT_ERR(cuModuleGetFunction(&f, m, "add_one"), CUDA_ERROR_INVALID_HANDLE);

  // ---- cuGetProcAddress ----
  using MemAllocFn = CUresult (*)(CUdeviceptr*, size_t);
  using MemFreeFn = CUresult (*)(CUdeviceptr);
  void* fn = nullptr;
  CUdriverProcAddressQueryResult q = CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND;
  CU_CHECK(cuGetProcAddress("cuMemAlloc", &fn, 12000, CU_GET_PROC_ADDRESS_DEFAULT, &q));
  EXPECT_EQ_INT(q, CU_GET_PROC_ADDRESS_SUCCESS);
  REQUIRE(fn != nullptr);
  void* freeFn = nullptr;
  CU_CHECK(cuGetProcAddress("cuMemFree", &freeFn, 12000, CU_GET_PROC_ADDRESS_DEFAULT, &q));
  REQUIRE(freeFn != nullptr);
  CUdeviceptr viaProc = 0;
  CU_CHECK(reinterpret_cast<MemAllocFn>(fn)(&viaProc, 1 << 20)); // the _v2 ABI: size_t bytes
  EXPECT_TRUE(viaProc != 0);
  CU_CHECK(cuMemsetD32(viaProc, 0x01020304, (1 << 20) / 4));
  unsigned word = 0;
  CU_CHECK(cuMemcpyDtoH(&word, viaProc + (1 << 20) - 4, 4));
  EXPECT_EQ_INT(word, 0x01020304);
  CU_CHECK(reinterpret_cast<MemFreeFn>(freeFn)(viaProc));
  fn = reinterpret_cast<void*>(0x1);
  CU_EXPECT_ERR(cuGetProcAddress("cuNoSuchFunctionAnywhere", &fn, 12000, CU_GET_PROC_ADDRESS_DEFAULT, &q),
                CUDA_ERROR_NOT_FOUND);
  EXPECT_EQ_INT(q, CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND);
  EXPECT_TRUE(fn == nullptr);
  // cuMemAllocAsync appeared in 11.2: asking as 11.0 finds nothing.
  CU_EXPECT_ERR(cuGetProcAddress("cuMemAllocAsync", &fn, 11000, CU_GET_PROC_ADDRESS_DEFAULT, &q),
                CUDA_ERROR_NOT_FOUND);
  EXPECT_EQ_INT(q, CU_GET_PROC_ADDRESS_VERSION_NOT_SUFFICIENT);

  // ---- Error names and strings ----
  const char* s1 = nullptr;
  CU_CHECK(cuGetErrorName(CUDA_ERROR_INVALID_VALUE, &s1));
  EXPECT_TRUE(s1 && std::strcmp(s1, "CUDA_ERROR_INVALID_VALUE") == 0);
  CU_CHECK(cuGetErrorName(CUDA_ERROR_ILLEGAL_ADDRESS, &s1));
  EXPECT_TRUE(s1 && std::strcmp(s1, "CUDA_ERROR_ILLEGAL_ADDRESS") == 0);
  CU_CHECK(cuGetErrorString(CUDA_ERROR_INVALID_VALUE, &s1));
  EXPECT_TRUE(s1 && std::strcmp(s1, "invalid argument") == 0);
  CU_CHECK(cuGetErrorString(CUDA_SUCCESS, &s1));
  EXPECT_TRUE(s1 && std::strcmp(s1, "no error") == 0);
  s1 = "x";
  CU_EXPECT_ERR(cuGetErrorName(static_cast<CUresult>(123456), &s1), CUDA_ERROR_INVALID_VALUE);
  EXPECT_TRUE(s1 == nullptr);
  CU_EXPECT_ERR(cuGetErrorString(CUDA_ERROR_INVALID_VALUE, nullptr), CUDA_ERROR_INVALID_VALUE);

  CU_CHECK(cuDevicePrimaryCtxRelease(d));
  return tf_test::summary("errors_driver");
}

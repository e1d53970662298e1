// Shared fixture: an initialised soft GPU (2 devices: an H100 limited to 1 GiB and an L4) with
// the primary context of device 0 current; and a kernel many tests launch.
#pragma once

#include <cuda.h>
#include <gtest/gtest.h>

#define ASSERT_CU(call) ASSERT_EQ((call), CUDA_SUCCESS) << #call
#define EXPECT_CU(call) EXPECT_EQ((call), CUDA_SUCCESS) << #call

// fill(out, v, pad): out[i] = v + i for the global thread index i. `pad` only gives the
// signature a third parameter at an aligned offset (0, 8, 16: sizes 8, 4, 8).
inline constexpr char kFillPtx[] = R"(
.version 7.0
.target sm_50
.address_size 64
.visible .entry fill(.param .u64 out, .param .u32 v, .param .u64 pad)
{
  .reg .b32 %r<6>;
  .reg .b64 %rd<4>;
  ld.param.u64 %rd1, [out];
  ld.param.u32 %r1, [v];
  mov.u32 %r2, %ctaid.x;
  mov.u32 %r3, %ntid.x;
  mov.u32 %r4, %tid.x;
  mad.lo.s32 %r2, %r2, %r3, %r4;
  cvta.to.global.u64 %rd1, %rd1;
  mul.wide.u32 %rd2, %r2, 4;
  add.s64 %rd3, %rd1, %rd2;
  add.u32 %r5, %r1, %r2;
  st.global.u32 [%rd3], %r5;
  ret;
}
)";

class DriverTest : public ::testing::Test {
protected:
  void SetUp() override {
    ASSERT_CU(cuInit(0));
    ASSERT_CU(cuDevicePrimaryCtxRetain(&ctx_, 0));
    ASSERT_CU(cuCtxSetCurrent(ctx_));
  }
  void TearDown() override {
    EXPECT_CU(cuCtxSynchronize());
    EXPECT_CU(cuDevicePrimaryCtxRelease(0));
  }
  CUcontext ctx_ = nullptr;
};

// Shared fixture: an initialised soft GPU (2 devices: an H100 limited to 1 GiB and an L4) with
// the primary context of device 0 current.
#pragma once

#include <cuda.h>
#include <gtest/gtest.h>

#define ASSERT_CU(call) ASSERT_EQ((call), CUDA_SUCCESS) << #call
#define EXPECT_CU(call) EXPECT_EQ((call), CUDA_SUCCESS) << #call

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

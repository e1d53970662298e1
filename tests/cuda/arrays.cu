// CUDA arrays: 2D and 3D arrays made by cudart, filled and read back with 2D/3D copies from
// and to host memory, device memory and other arrays (whole and sub-boxes), their extent read
// back; copies past an array's edge, and arrays used after they are freed, are refused.
#include <vector>

#include "check.h"

constexpr int kW = 37, kH = 19, kD = 5; // odd sizes: rows are not padded anywhere

int main() {
  CHECK(cudaSetDevice(0));
  TF_CHECK_VGPU();
  cudaChannelFormatDesc desc = cudaCreateChannelDesc<float>();
  cudaArray_t arr = nullptr, copy = nullptr;
  CHECK(cudaMallocArray(&arr, &desc, kW, kH));
  CHECK(cudaMallocArray(&copy, &desc, kW, kH));
  cudaChannelFormatDesc got{};
  cudaExtent extent{};
  unsigned flags = 99;
  CHECK(cudaArrayGetInfo(&got, &extent, &flags, arr));
  EXPECT_TRUE(got.x == 32 && got.y == 0 && got.f == cudaChannelFormatKindFloat);
  EXPECT_TRUE(extent.width == kW && extent.height == kH && extent.depth == 0 && flags == 0);

  std::vector<float> h(kW * kH), back(kW * kH, -1.0f);
  for (int i = 0; i < kW * kH; ++i) h[i] = 0.5f * i + 1;
  const size_t row = kW * sizeof(float);
  CHECK(cudaMemcpy2DToArray(arr, 0, 0, h.data(), row, row, kH, cudaMemcpyHostToDevice));
  CHECK(cudaMemcpy2DFromArray(back.data(), row, arr, 0, 0, row, kH, cudaMemcpyDeviceToHost));
  EXPECT_TRUE(back == h);

  // A 4x2 box from (x=2, y=3), into a tight host buffer.
  std::vector<float> box(8, -1.0f);
  CHECK(cudaMemcpy2DFromArray(box.data(), 4 * sizeof(float), arr, 2 * sizeof(float), 3,
                              4 * sizeof(float), 2, cudaMemcpyDeviceToHost));
  int off = 0;
  for (int y = 0; y < 2; ++y)
    for (int x = 0; x < 4; ++x) off += box[y * 4 + x] != h[(3 + y) * kW + 2 + x];
  EXPECT_EQ_INT(off, 0);

  // Array to array, then through pitched device memory and back.
  CHECK(cudaMemcpy2DArrayToArray(copy, 0, 0, arr, 0, 0, row, kH));
  float* dev = nullptr;
  size_t pitch = 0;
  CHECK(cudaMallocPitch(&dev, &pitch, row, kH));
  CHECK(cudaMemcpy2DFromArray(dev, pitch, copy, 0, 0, row, kH, cudaMemcpyDeviceToDevice));
  std::vector<float> zeros(kW * kH, 0.0f);
  CHECK(cudaMemcpy2DToArray(arr, 0, 0, zeros.data(), row, row, kH, cudaMemcpyHostToDevice));
  CHECK(cudaMemcpy2DToArray(arr, 0, 0, dev, pitch, row, kH, cudaMemcpyDeviceToDevice));
  std::fill(back.begin(), back.end(), -1.0f);
  CHECK(cudaMemcpy2DFromArray(back.data(), row, arr, 0, 0, row, kH, cudaMemcpyDeviceToHost));
  EXPECT_TRUE(back == h);

  // Past the edge: one row too many, one column too far, a box off the right side.
  EXPECT_ERR(cudaMemcpy2DToArray(arr, 0, 1, h.data(), row, row, kH, cudaMemcpyHostToDevice),
             cudaErrorInvalidValue);
  EXPECT_ERR(cudaMemcpy2DToArray(arr, sizeof(float), 0, h.data(), row, row, 1, cudaMemcpyHostToDevice),
             cudaErrorInvalidValue);
  EXPECT_ERR(cudaMemcpy2DFromArray(box.data(), 4 * sizeof(float), arr, (kW - 2) * sizeof(float), 0,
                                   4 * sizeof(float), 1, cudaMemcpyDeviceToHost),
             cudaErrorInvalidValue);

  // 3D: a uchar4 array, filled from the host and read back whole.
  cudaChannelFormatDesc d4 = cudaCreateChannelDesc<uchar4>();
  cudaArray_t vol = nullptr;
  CHECK(cudaMalloc3DArray(&vol, &d4, make_cudaExtent(kW, kH, kD)));
  CHECK(cudaArrayGetInfo(&got, &extent, &flags, vol));
  EXPECT_TRUE(got.x == 8 && got.w == 8 && got.f == cudaChannelFormatKindUnsigned);
  EXPECT_TRUE(extent.width == kW && extent.height == kH && extent.depth == kD);
  std::vector<uchar4> v(kW * kH * kD), vback(kW * kH * kD);
  for (int i = 0; i < kW * kH * kD; ++i)
    v[i] = make_uchar4(i & 255, (i >> 8) & 255, (i * 7) & 255, 255 - (i & 255));
  cudaMemcpy3DParms p{};
  p.srcPtr = make_cudaPitchedPtr(v.data(), kW * sizeof(uchar4), kW, kH);
  p.dstArray = vol;
  p.extent = make_cudaExtent(kW, kH, kD);
  p.kind = cudaMemcpyHostToDevice;
  CHECK(cudaMemcpy3D(&p));
  cudaMemcpy3DParms q{};
  q.srcArray = vol;
  q.dstPtr = make_cudaPitchedPtr(vback.data(), kW * sizeof(uchar4), kW, kH);
  q.extent = make_cudaExtent(kW, kH, kD);
  q.kind = cudaMemcpyDeviceToHost;
  CHECK(cudaMemcpy3D(&q));
  off = 0;
  for (int i = 0; i < kW * kH * kD; ++i)
    off += v[i].x != vback[i].x || v[i].y != vback[i].y || v[i].z != vback[i].z || v[i].w != vback[i].w;
  EXPECT_EQ_INT(off, 0);
  // One slice too deep.
  q.extent = make_cudaExtent(kW, kH, kD + 1);
  EXPECT_ERR(cudaMemcpy3D(&q), cudaErrorInvalidValue);

  CHECK(cudaFree(dev));
  CHECK(cudaFreeArray(vol));
  CHECK(cudaFreeArray(copy));
  CHECK(cudaFreeArray(arr));
  EXPECT_ERR(cudaArrayGetInfo(&got, &extent, &flags, arr), cudaErrorInvalidResourceHandle);
  return tf_test::summary("arrays");
}

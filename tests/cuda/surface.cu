// Surface objects on the soft GPU: kernels write a 2D float array through surf2Dwrite and
// read it back through surf2Dread (x in bytes, as on the GPU), the host checks the array's
// contents with a plain copy, a uint4 array is written and read as vectors, reads past the edge
// in zero mode give 0, and an array made without the surface flag is refused.
#include <vector>

#include "check.h"

constexpr int kW = 29, kH = 11;

__global__ void writeSurface(cudaSurfaceObject_t s, int w, int h) {
  int x = blockIdx.x * blockDim.x + threadIdx.x, y = blockIdx.y * blockDim.y + threadIdx.y;
  if (x < w && y < h) surf2Dwrite(float(x * 3 + y * 1000), s, x * sizeof(float), y);
}

// out[y][x] = surface(x, y) + 0.5, reading past the right edge by `pad` texels in zero mode.
__global__ void readSurface(cudaSurfaceObject_t s, float* out, int w, int h, int pad) {
  int x = blockIdx.x * blockDim.x + threadIdx.x, y = blockIdx.y * blockDim.y + threadIdx.y;
  if (x < w + pad && y < h)
    out[y * (w + pad) + x] = surf2Dread<float>(s, x * sizeof(float), y, cudaBoundaryModeZero) + 0.5f;
}

__global__ void vectors(cudaSurfaceObject_t s, int w, int h) {
  int x = blockIdx.x * blockDim.x + threadIdx.x, y = blockIdx.y * blockDim.y + threadIdx.y;
  if (x >= w || y >= h) return;
  surf2Dwrite(make_uint4(x, y, x * y, 7), s, x * sizeof(uint4), y);
  uint4 v = surf2Dread<uint4>(s, x * sizeof(uint4), y);
  surf2Dwrite(make_uint4(v.x + 1, v.y + 1, v.z + 1, v.w + 1), s, x * sizeof(uint4), y);
}

cudaSurfaceObject_t surfaceOf(cudaArray_t a) {
  cudaResourceDesc r{};
  r.resType = cudaResourceTypeArray;
  r.res.array.array = a;
  cudaSurfaceObject_t s = 0;
  CHECK(cudaCreateSurfaceObject(&s, &r));
  return s;
}

int main() {
  CHECK(cudaSetDevice(0));
  TF_CHECK_VGPU();
  cudaChannelFormatDesc desc = cudaCreateChannelDesc<float>();
  cudaArray_t arr = nullptr;
  CHECK(cudaMallocArray(&arr, &desc, kW, kH, cudaArraySurfaceLoadStore));
  cudaSurfaceObject_t s = surfaceOf(arr);
  const dim3 block(8, 8), grid((kW + 7) / 8 + 1, (kH + 7) / 8);
  writeSurface<<<grid, block>>>(s, kW, kH);
  CHECK(cudaGetLastError());
  std::vector<float> h(kW * kH, -1.0f);
  CHECK(cudaMemcpy2DFromArray(h.data(), kW * sizeof(float), arr, 0, 0, kW * sizeof(float), kH,
                              cudaMemcpyDeviceToHost));
  int off = 0;
  for (int y = 0; y < kH; ++y)
    for (int x = 0; x < kW; ++x) off += h[y * kW + x] != float(x * 3 + y * 1000);
  EXPECT_EQ_INT(off, 0);

  const int pad = 4;
  float* d = nullptr;
  CHECK(cudaMalloc(&d, (kW + pad) * kH * sizeof(float)));
  readSurface<<<grid, block>>>(s, d, kW, kH, pad);
  CHECK(cudaGetLastError());
  std::vector<float> r((kW + pad) * kH);
  CHECK(cudaMemcpy(r.data(), d, r.size() * sizeof(float), cudaMemcpyDeviceToHost));
  off = 0;
  for (int y = 0; y < kH; ++y)
    for (int x = 0; x < kW + pad; ++x)
      off += r[y * (kW + pad) + x] != (x < kW ? float(x * 3 + y * 1000) : 0.0f) + 0.5f;
  EXPECT_EQ_INT(off, 0);

  // Vectors: written, read and written again by the same thread.
  cudaChannelFormatDesc d4 = cudaCreateChannelDesc<uint4>();
  cudaArray_t arr4 = nullptr;
  CHECK(cudaMallocArray(&arr4, &d4, kW, kH, cudaArraySurfaceLoadStore));
  cudaSurfaceObject_t s4 = surfaceOf(arr4);
  vectors<<<grid, block>>>(s4, kW, kH);
  CHECK(cudaGetLastError());
  std::vector<uint4> h4(kW * kH);
  CHECK(cudaMemcpy2DFromArray(h4.data(), kW * sizeof(uint4), arr4, 0, 0, kW * sizeof(uint4), kH,
                              cudaMemcpyDeviceToHost));
  off = 0;
  for (int y = 0; y < kH; ++y)
    for (int x = 0; x < kW; ++x) {
      uint4 v = h4[y * kW + x];
      off += v.x != unsigned(x + 1) || v.y != unsigned(y + 1) || v.z != unsigned(x * y + 1) || v.w != 8u;
    }
  EXPECT_EQ_INT(off, 0);

  // An array without cudaArraySurfaceLoadStore has no surface.
  cudaArray_t plain = nullptr;
  CHECK(cudaMallocArray(&plain, &desc, kW, kH));
  cudaResourceDesc rp{};
  rp.resType = cudaResourceTypeArray;
  rp.res.array.array = plain;
  cudaSurfaceObject_t none = 0;
  EXPECT_ERR(cudaCreateSurfaceObject(&none, &rp), cudaErrorInvalidValue);

  CHECK(cudaDestroySurfaceObject(s4));
  CHECK(cudaDestroySurfaceObject(s));
  CHECK(cudaFree(d));
  CHECK(cudaFreeArray(plain));
  CHECK(cudaFreeArray(arr4));
  CHECK(cudaFreeArray(arr));
  return tf_test::summary("surface");
}

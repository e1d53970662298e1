// Kernels through the PTX engine: vector add (float and int, with a tail block), a grid-stride
// kernel with a scalar parameter, and a block reduction with shared memory and __syncthreads.
#include <cmath>
#include <vector>

#include "check.h"

__global__ void vadd(const float* a, const float* b, float* c, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) c[i] = a[i] + b[i];
}

__global__ void saxpyStride(float alpha, const float* x, float* y, int n) {
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x)
    y[i] = alpha * x[i] + y[i];
}

__global__ void blockSum(const int* in, int* out, int n) {
  __shared__ int part[256];
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  part[threadIdx.x] = i < n ? in[i] : 0;
  __syncthreads();
  for (int s = blockDim.x / 2; s > 0; s >>= 1) {
    if (threadIdx.x < s) part[threadIdx.x] += part[threadIdx.x + s];
    __syncthreads();
  }
  if (threadIdx.x == 0) out[blockIdx.x] = part[0];
}

int main() {
  TF_CHECK_VGPU(); // in a _limited run: the limiter is there (check.h)
  tf_test::Rng rng(1);
  const int n = 100003; // not a multiple of the block size
  std::vector<float> a(n), b(n), c(n, 0.f);
  for (int i = 0; i < n; ++i) {
    a[i] = static_cast<float>(rng.next() % 10000) / 7.f;
    b[i] = static_cast<float>(rng.next() % 10000) / 3.f;
  }
  float *da, *db, *dc;
  CHECK(cudaMalloc(&da, n * sizeof(float)));
  CHECK(cudaMalloc(&db, n * sizeof(float)));
  CHECK(cudaMalloc(&dc, n * sizeof(float)));
  CHECK(cudaMemcpy(da, a.data(), n * sizeof(float), cudaMemcpyHostToDevice));
  CHECK(cudaMemcpy(db, b.data(), n * sizeof(float), cudaMemcpyHostToDevice));
  CHECK(cudaMemset(dc, 0, n * sizeof(float)));
  vadd<<<(n + 255) / 256, 256>>>(da, db, dc, n);
  CHECK(cudaGetLastError());
  CHECK(cudaDeviceSynchronize());
  CHECK(cudaMemcpy(c.data(), dc, n * sizeof(float), cudaMemcpyDeviceToHost));
  int bad = 0;
  for (int i = 0; i < n; ++i)
    if (c[i] != a[i] + b[i] && bad++ < 5)
      std::fprintf(stderr, "vadd c[%d] = %g, want %g\n", i, c[i], a[i] + b[i]);
  EXPECT_EQ_INT(bad, 0);

  // Grid-stride loop with fewer threads than elements, on a stream.
  cudaStream_t s;
  CHECK(cudaStreamCreate(&s));
  saxpyStride<<<7, 96, 0, s>>>(2.5f, da, dc, n);
  CHECK(cudaGetLastError());
  CHECK(cudaMemcpyAsync(c.data(), dc, n * sizeof(float), cudaMemcpyDeviceToHost, s));
  CHECK(cudaStreamSynchronize(s));
  bad = 0;
  for (int i = 0; i < n; ++i) {
    float want = 2.5f * a[i] + (a[i] + b[i]);
    if (std::fabs(c[i] - want) > 1e-3f * std::fabs(want) && bad++ < 5)
      std::fprintf(stderr, "saxpy c[%d] = %g, want %g\n", i, c[i], want);
  }
  EXPECT_EQ_INT(bad, 0);

  // Block reduction.
  std::vector<int> in(n);
  for (auto& v : in) v = static_cast<int>(rng.next() % 2001) - 1000;
  const int blocks = (n + 255) / 256;
  int *din, *dout;
  CHECK(cudaMalloc(&din, n * sizeof(int)));
  CHECK(cudaMalloc(&dout, blocks * sizeof(int)));
  CHECK(cudaMemcpy(din, in.data(), n * sizeof(int), cudaMemcpyHostToDevice));
  blockSum<<<blocks, 256>>>(din, dout, n);
  CHECK(cudaGetLastError());
  std::vector<int> out(blocks);
  CHECK(cudaMemcpy(out.data(), dout, blocks * sizeof(int), cudaMemcpyDeviceToHost));
  bad = 0;
  for (int blk = 0; blk < blocks; ++blk) {
    int want = 0;
    for (int i = blk * 256; i < n && i < (blk + 1) * 256; ++i) want += in[i];
    if (out[blk] != want && bad++ < 5)
      std::fprintf(stderr, "blockSum[%d] = %d, want %d\n", blk, out[blk], want);
  }
  EXPECT_EQ_INT(bad, 0);

  // An impossible launch configuration is a launch error, not a crash.
  // NVIDIA's cudart reports cudaErrorInvalidConfiguration; which driver result it maps to that
  // is not known without a GPU (the soft GPU returns CUDA_ERROR_INVALID_VALUE, as the driver
  // API documents for bad dimensions), so either is accepted here; success or a crash is not.
  vadd<<<1, 2048>>>(da, db, dc, n);
  {
    cudaError_t launch = cudaGetLastError();
    if (launch != cudaErrorInvalidConfiguration && launch != cudaErrorInvalidValue) {
      fprintf(stderr, "FAIL %s:%d: 2048-thread block gave %s\n", __FILE__, __LINE__,
              cudaGetErrorName(launch));
      ++tf_test::failures();
    }
  }
  CHECK(cudaDeviceSynchronize());

  CHECK(cudaStreamDestroy(s));
  CHECK(cudaFree(da));
  CHECK(cudaFree(db));
  CHECK(cudaFree(dc));
  CHECK(cudaFree(din));
  CHECK(cudaFree(dout));
  return tf_test::summary("vector_add");
}

// The quickstart's demo: an unmodified CUDA program (nvcc, real cudart) that runs on whatever
// libcuda.so.1 it finds first: NVIDIA's on a GPU machine, the soft GPU elsewhere.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include <cuda_runtime.h>

#define CHECK(call)                                                                               \
  do {                                                                                            \
    cudaError_t err_ = (call);                                                                    \
    if (err_ != cudaSuccess) {                                                                    \
      fprintf(stderr, "%s:%d: %s failed: %s\n", __FILE__, __LINE__, #call,                       \
              cudaGetErrorString(err_));                                                          \
      return 1;                                                                                   \
    }                                                                                             \
  } while (0)

__global__ void saxpy(int n, float a, const float* x, float* y) {
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += blockDim.x * gridDim.x)
    y[i] = a * x[i] + y[i];
}

int main() {
  cudaDeviceProp prop;
  CHECK(cudaGetDeviceProperties(&prop, 0));
  printf("device 0: %s, %d SMs, compute capability %d.%d, %.1f GiB\n", prop.name,
         prop.multiProcessorCount, prop.major, prop.minor,
         prop.totalGlobalMem / 1073741824.0);

  const int n = 1 << 20;
  std::vector<float> x(n), y(n);
  for (int i = 0; i < n; ++i) {
    x[i] = static_cast<float>(i % 1000) * 0.5f;
    y[i] = static_cast<float>(i % 7);
  }
  float *dx, *dy;
  CHECK(cudaMalloc(&dx, n * sizeof(float)));
  CHECK(cudaMalloc(&dy, n * sizeof(float)));
  CHECK(cudaMemcpy(dx, x.data(), n * sizeof(float), cudaMemcpyHostToDevice));
  CHECK(cudaMemcpy(dy, y.data(), n * sizeof(float), cudaMemcpyHostToDevice));

  cudaEvent_t start, stop;
  CHECK(cudaEventCreate(&start));
  CHECK(cudaEventCreate(&stop));
  CHECK(cudaEventRecord(start));
  saxpy<<<256, 256>>>(n, 2.0f, dx, dy);
  CHECK(cudaGetLastError());
  CHECK(cudaEventRecord(stop));
  CHECK(cudaEventSynchronize(stop));
  float ms = 0;
  CHECK(cudaEventElapsedTime(&ms, start, stop));

  std::vector<float> out(n);
  CHECK(cudaMemcpy(out.data(), dy, n * sizeof(float), cudaMemcpyDeviceToHost));
  int wrong = 0;
  for (int i = 0; i < n; ++i)
    if (std::fabs(out[i] - (2.0f * x[i] + y[i])) > 1e-5f) ++wrong;
  printf("saxpy over %d elements: %s (%.2f ms)\n", n, wrong ? "WRONG" : "correct", ms);
  CHECK(cudaFree(dx));
  CHECK(cudaFree(dy));
  return wrong ? 1 : 0;
}

// A kernel that writes through an out-of-bounds pointer: the launch itself is accepted, the
// fault surfaces as cudaErrorIllegalAddress at the next synchronisation, and it is sticky: the
// next cudaMemcpy fails with the same error, as does every later call using the context.
#include "check.h"

__global__ void writeAt(int* p, long long offset, int value) {
  if (threadIdx.x == 0 && blockIdx.x == 0) p[offset] = value;
}

int main() {
  TF_CHECK_VGPU(); // in a _limited run: the limiter is there (check.h)
  int* d = nullptr;
  CHECK(cudaMalloc(&d, 1024 * sizeof(int)));
  // In bounds first: works.
  writeAt<<<1, 32>>>(d, 10, 42);
  CHECK(cudaGetLastError());
  CHECK(cudaDeviceSynchronize());
  int v = 0;
  CHECK(cudaMemcpy(&v, d + 10, sizeof v, cudaMemcpyDeviceToHost));
  EXPECT_EQ_INT(v, 42);

  // Far outside the allocation (64 MiB past its start).
  writeAt<<<1, 32>>>(d, 16ll << 20, 1);
  EXPECT_ERR(cudaGetLastError(), cudaSuccess); // the launch itself is fine
  EXPECT_ERR(cudaDeviceSynchronize(), cudaErrorIllegalAddress);
  // Sticky: later calls keep failing.
  EXPECT_ERR(cudaMemcpy(&v, d, sizeof v, cudaMemcpyDeviceToHost), cudaErrorIllegalAddress);
  void* p2 = nullptr;
  EXPECT_ERR(cudaMalloc(&p2, 256), cudaErrorIllegalAddress);
  EXPECT_ERR(cudaDeviceSynchronize(), cudaErrorIllegalAddress);
  return tf_test::summary("kernel_fault");
}

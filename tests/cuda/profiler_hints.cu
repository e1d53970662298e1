// Calls programs make first or in passing that have nothing to do on the soft GPU but must
// succeed as on NVIDIA's driver: cudaProfilerStart/Stop (many samples call it first; it once
// failed with "call requires newer driver"), stream attributes (access policy windows),
// attaching managed memory to a stream, graph memory attributes, shared memory bank
// configuration, and occupancy with flags. Bad arguments still fail.
#include <cuda_profiler_api.h>

#include "check.h"

__global__ void fill(int* a, int n, int v) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) a[i] = v;
}

int main() {
  CHECK(cudaProfilerStart());
  cudaStream_t s;
  CHECK(cudaStreamCreate(&s));
  TF_CHECK_VGPU(); // in a _limited run: the limiter is there (check.h)

  // Managed memory attached to a stream, then used there and on the host.
  const int n = 4096;
  int* m = nullptr;
  CHECK(cudaMallocManaged(&m, n * sizeof(int), cudaMemAttachHost));
  CHECK(cudaStreamAttachMemAsync(s, m, 0, cudaMemAttachSingle));
  fill<<<n / 256, 256, 0, s>>>(m, n, 42);
  CHECK(cudaStreamSynchronize(s));
  int bad = 0;
  for (int i = 0; i < n; ++i) bad += m[i] != 42;
  EXPECT_EQ_INT(bad, 0);
  int local = 0;
  EXPECT_ERR(cudaStreamAttachMemAsync(s, &local, 0, cudaMemAttachSingle), cudaErrorInvalidValue);

  // An access policy window set on a stream reads back; the priority is the stream's.
  cudaStreamAttrValue v{};
  v.accessPolicyWindow.base_ptr = m;
  v.accessPolicyWindow.num_bytes = n * sizeof(int);
  v.accessPolicyWindow.hitRatio = 0.5f;
  v.accessPolicyWindow.hitProp = cudaAccessPropertyPersisting;
  v.accessPolicyWindow.missProp = cudaAccessPropertyStreaming;
  CHECK(cudaStreamSetAttribute(s, cudaStreamAttributeAccessPolicyWindow, &v));
  cudaStreamAttrValue got{};
  CHECK(cudaStreamGetAttribute(s, cudaStreamAttributeAccessPolicyWindow, &got));
  EXPECT_TRUE(got.accessPolicyWindow.base_ptr == m && got.accessPolicyWindow.hitRatio == 0.5f);
  cudaStream_t t;
  CHECK(cudaStreamCreate(&t));
  CHECK(cudaStreamCopyAttributes(t, s));
  got = {};
  CHECK(cudaStreamGetAttribute(t, cudaStreamAttributeAccessPolicyWindow, &got));
  EXPECT_TRUE(got.accessPolicyWindow.num_bytes == n * sizeof(int));
  CHECK(cudaCtxResetPersistingL2Cache());
  fill<<<n / 256, 256, 0, s>>>(m, n, 7);
  CHECK(cudaStreamSynchronize(s));
  EXPECT_EQ_INT(m[n - 1], 7);

  // Graphs hold no memory of their own here.
  size_t used = 123;
  CHECK(cudaDeviceGetGraphMemAttribute(0, cudaGraphMemAttrUsedMemCurrent, &used));
  EXPECT_EQ_INT(used, 0);
  size_t zero = 0;
  CHECK(cudaDeviceSetGraphMemAttribute(0, cudaGraphMemAttrUsedMemHigh, &zero));
  CHECK(cudaDeviceGraphMemTrim(0));
  EXPECT_ERR(cudaDeviceGetGraphMemAttribute(7, cudaGraphMemAttrUsedMemCurrent, &used), cudaErrorInvalidDevice);

  // Bank configuration (deprecated, accepted) and occupancy with flags.
  EXPECT_OK(cudaFuncSetSharedMemConfig(fill, cudaSharedMemBankSizeFourByte));
  int minGrid = 0, block = 0;
  CHECK(cudaOccupancyMaxPotentialBlockSizeWithFlags(&minGrid, &block, fill, 0, 0, cudaOccupancyDefault));
  EXPECT_TRUE(block >= 32 && block <= 1024 && minGrid > 0);

  CHECK(cudaProfilerStop());
  CHECK(cudaFree(m));
  CHECK(cudaStreamDestroy(t));
  CHECK(cudaStreamDestroy(s));
  return tf_test::summary("profiler_hints");
}

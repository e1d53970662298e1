// Host memory the device can reach and managed memory: cudaHostAlloc (mapped) and its device
// pointer, cudaHostRegister/Unregister of malloc'd memory, async copies from pinned memory,
// cudaMallocManaged used from the host, cudaMemPrefetchAsync and cudaMemAdvise.
#include <cstdlib>
#include <vector>

#include "check.h"

int main() {
  TF_CHECK_VGPU(); // in a _limited run: the limiter is there (check.h)
  tf_test::Rng rng(4242);
  const size_t N = (1 << 20) + 123;
  unsigned flags = 0;

  // Mapped pinned memory: the device pointer aliases the host bytes.
  unsigned char* h = nullptr;
  CHECK(cudaHostAlloc(reinterpret_cast<void**>(&h), N, cudaHostAllocMapped | cudaHostAllocPortable));
  CHECK(cudaHostGetFlags(&flags, h));
  EXPECT_TRUE(flags & cudaHostAllocMapped);
  unsigned char* hd = nullptr;
  CHECK(cudaHostGetDevicePointer(reinterpret_cast<void**>(&hd), h, 0));
  REQUIRE(hd != nullptr);
  rng.fill(h, N);
  std::vector<unsigned char> back(N, 0);
  CHECK(cudaMemcpy(back.data(), hd, N, cudaMemcpyDeviceToHost)); // through the device pointer
  EXPECT_EQ_BYTES(back.data(), h, N, "mapped pinned read via device pointer");
  CHECK(cudaMemset(hd + 100, 0x3C, 1000));
  CHECK(cudaDeviceSynchronize());
  std::vector<unsigned char> want(h, h + N);
  EXPECT_TRUE(h[99] == back[99] && h[100] == 0x3C && h[1099] == 0x3C && h[1100] == back[1100]);

  // Async copies from pinned memory, on a stream, H2D then D2H into pinned memory.
  unsigned char *d = nullptr, *h2 = nullptr;
  CHECK(cudaMalloc(&d, N));
  CHECK(cudaMallocHost(&h2, N));
  std::memset(h2, 0, N);
  cudaStream_t s;
  CHECK(cudaStreamCreate(&s));
  CHECK(cudaMemcpyAsync(d, h, N, cudaMemcpyHostToDevice, s));
  CHECK(cudaMemcpyAsync(h2, d, N, cudaMemcpyDeviceToHost, s));
  CHECK(cudaStreamSynchronize(s));
  EXPECT_EQ_BYTES(h2, h, N, "async pinned round trip");

  // Registered malloc'd memory: flags, device pointer, copies from and to it.
  const size_t R = 3 * 4096 + 500;
  unsigned char* m = static_cast<unsigned char*>(std::malloc(R));
  REQUIRE(m);
  rng.fill(m, R);
  CHECK(cudaHostRegister(m, R, cudaHostRegisterMapped));
  cudaPointerAttributes at;
  CHECK(cudaPointerGetAttributes(&at, m));
  EXPECT_EQ_INT(at.type, cudaMemoryTypeHost);
  unsigned char* md = nullptr;
  CHECK(cudaHostGetDevicePointer(reinterpret_cast<void**>(&md), m, 0));
  REQUIRE(md != nullptr);
  CHECK(cudaMemcpyAsync(d, m, R, cudaMemcpyHostToDevice, s));
  CHECK(cudaStreamSynchronize(s));
  CHECK(cudaMemcpy(back.data(), d, R, cudaMemcpyDeviceToHost));
  EXPECT_EQ_BYTES(back.data(), m, R, "registered H2D");
  CHECK(cudaMemcpy(back.data(), md + 7, R - 7, cudaMemcpyDeviceToHost));
  EXPECT_EQ_BYTES(back.data(), m + 7, R - 7, "registered via device pointer");
  EXPECT_ERR(cudaHostRegister(m, R, cudaHostRegisterMapped), cudaErrorHostMemoryAlreadyRegistered);
  (void)cudaGetLastError();
  CHECK(cudaHostUnregister(m));
  CHECK(cudaPointerGetAttributes(&at, m));
  EXPECT_EQ_INT(at.type, cudaMemoryTypeUnregistered);
  EXPECT_ERR(cudaHostUnregister(m), cudaErrorHostMemoryNotRegistered);
  (void)cudaGetLastError();
  std::free(m);

  // Managed memory: the host writes, the device copies, the host reads the device's writes.
  const size_t M = (2 << 20) + 9;
  unsigned char* u = nullptr;
  CHECK(cudaMallocManaged(&u, M));
  rng.fill(u, M);
  std::vector<unsigned char> uWant(u, u + M), uOrig(u, u + M);
  CHECK(cudaMemAdvise(u, M, cudaMemAdviseSetPreferredLocation, cudaMemLocation{cudaMemLocationTypeDevice, 0}));
  CHECK(cudaMemAdvise(u, M, cudaMemAdviseSetAccessedBy, cudaMemLocation{cudaMemLocationTypeDevice, 0}));
  CHECK(cudaMemAdvise(u, M, cudaMemAdviseSetReadMostly, cudaMemLocation{cudaMemLocationTypeDevice, 0}));
  CHECK(cudaMemAdvise(u, M, cudaMemAdviseUnsetReadMostly, cudaMemLocation{cudaMemLocationTypeDevice, 0}));
  CHECK(cudaMemPrefetchAsync(u, M, cudaMemLocation{cudaMemLocationTypeDevice, 0}, 0, s));
  CHECK(cudaMemcpyAsync(d, u, N < M ? N : M, cudaMemcpyDefault, s));
  CHECK(cudaMemsetAsync(u + 1000, 0x42, 5000, s));
  CHECK(cudaMemPrefetchAsync(u, M, cudaMemLocation{cudaMemLocationTypeHost, 0}, 0, s));
  CHECK(cudaStreamSynchronize(s));
  std::memset(uWant.data() + 1000, 0x42, 5000);
  EXPECT_EQ_BYTES(u, uWant.data(), M, "managed after device memset");
  CHECK(cudaMemcpy(back.data(), d, N, cudaMemcpyDeviceToHost));
  EXPECT_EQ_BYTES(back.data(), uOrig.data(), N, "managed -> device copy before the memset");
  // Managed bytes read back through a D2H copy agree with what the host sees.
  std::vector<unsigned char> ub(M);
  CHECK(cudaMemcpy(ub.data(), u, M, cudaMemcpyDeviceToHost));
  EXPECT_EQ_BYTES(ub.data(), u, M, "managed D2H");
  // Prefetch of a range outside any managed allocation is an error.
  EXPECT_ERR(cudaMemPrefetchAsync(d, 4096, cudaMemLocation{cudaMemLocationTypeDevice, 0}, 0, s),
             cudaErrorInvalidValue);
  (void)cudaGetLastError();
  int attrDev = -1;
  EXPECT_OK(cudaMemRangeGetAttribute(&attrDev, sizeof attrDev, cudaMemRangeAttributePreferredLocation, u, M));
  EXPECT_EQ_INT(attrDev, 0);

  CHECK(cudaStreamDestroy(s));
  CHECK(cudaFree(u));
  CHECK(cudaFree(d));
  CHECK(cudaFreeHost(h));
  CHECK(cudaFreeHost(h2));
  return tf_test::summary("pinned_managed");
}

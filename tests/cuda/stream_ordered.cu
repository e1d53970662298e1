// Stream-ordered allocation: cudaMallocAsync/cudaFreeAsync on streams, the device's default
// memory pool and its attributes (release threshold, trim), an explicitly created pool with
// cudaMallocFromPoolAsync, a captured graph that allocates and frees (which the driver cannot
// clone). Results are checked through copies.
#include <vector>

#include "check.h"

int main() {
  TF_CHECK_VGPU(); // in a _limited run: the limiter is there (check.h)
  tf_test::Rng rng(31337);
  int supported = 0;
  CHECK(cudaDeviceGetAttribute(&supported, cudaDevAttrMemoryPoolsSupported, 0));
  EXPECT_EQ_INT(supported, 1);

  cudaStream_t s1, s2;
  CHECK(cudaStreamCreate(&s1));
  CHECK(cudaStreamCreate(&s2));
  const size_t N = (1 << 20) + 40;
  std::vector<unsigned char> src(N), back(N, 0);
  rng.fill(src.data(), N);

  // Allocate, fill, copy, free, all in stream order.
  unsigned char *a = nullptr, *b = nullptr;
  CHECK(cudaMallocAsync(&a, N, s1));
  CHECK(cudaMallocAsync(&b, N, s1));
  REQUIRE(a && b && a != b);
  CHECK(cudaMemcpyAsync(a, src.data(), N, cudaMemcpyHostToDevice, s1));
  CHECK(cudaMemcpyAsync(b, a, N, cudaMemcpyDeviceToDevice, s1));
  CHECK(cudaFreeAsync(a, s1));
  CHECK(cudaMemcpyAsync(back.data(), b, N, cudaMemcpyDeviceToHost, s1));
  CHECK(cudaStreamSynchronize(s1));
  EXPECT_EQ_BYTES(back.data(), src.data(), N, "stream-ordered alloc copies");
  cudaPointerAttributes at;
  CHECK(cudaPointerGetAttributes(&at, b));
  EXPECT_EQ_INT(at.type, cudaMemoryTypeDevice);

  // Cross-stream use: allocated on s1, used and freed on s2 after an event.
  cudaEvent_t e;
  CHECK(cudaEventCreateWithFlags(&e, cudaEventDisableTiming));
  unsigned char* c = nullptr;
  CHECK(cudaMallocAsync(&c, 4096, s1));
  CHECK(cudaMemsetAsync(c, 0x6B, 4096, s1));
  CHECK(cudaEventRecord(e, s1));
  CHECK(cudaStreamWaitEvent(s2, e, 0));
  CHECK(cudaMemcpyAsync(back.data(), c, 4096, cudaMemcpyDeviceToHost, s2));
  CHECK(cudaFreeAsync(c, s2));
  CHECK(cudaStreamSynchronize(s2));
  std::vector<unsigned char> w(4096, 0x6B);
  EXPECT_EQ_BYTES(back.data(), w.data(), 4096, "cross-stream pool allocation");
  CHECK(cudaFreeAsync(b, s1));
  CHECK(cudaStreamSynchronize(s1));

  // Default pool: release threshold keeps freed memory reserved; trim gives it back.
  cudaMemPool_t pool = nullptr;
  CHECK(cudaDeviceGetDefaultMemPool(&pool, 0));
  REQUIRE(pool != nullptr);
  cudaMemPool_t cur = nullptr;
  CHECK(cudaDeviceGetMemPool(&cur, 0));
  EXPECT_TRUE(cur == pool);
  uint64_t threshold = UINT64_MAX;
  CHECK(cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &threshold));
  uint64_t got = 0;
  CHECK(cudaMemPoolGetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &got));
  EXPECT_TRUE(got == UINT64_MAX);

  size_t free0 = 0, total = 0, free1 = 0, free2 = 0, free3 = 0;
  CHECK(cudaMemPoolTrimTo(pool, 0));
  CHECK(cudaMemGetInfo(&free0, &total));
  const size_t big = 64u << 20;
  void* p = nullptr;
  CHECK(cudaMallocAsync(&p, big, s1));
  CHECK(cudaStreamSynchronize(s1));
  CHECK(cudaMemGetInfo(&free1, &total));
  EXPECT_TRUE(free1 + big <= free0);
  uint64_t used = 0, reserved = 0;
  CHECK(cudaMemPoolGetAttribute(pool, cudaMemPoolAttrUsedMemCurrent, &used));
  CHECK(cudaMemPoolGetAttribute(pool, cudaMemPoolAttrReservedMemCurrent, &reserved));
  EXPECT_TRUE(used >= big && reserved >= used);
  CHECK(cudaFreeAsync(p, s1));
  CHECK(cudaStreamSynchronize(s1));
  CHECK(cudaMemGetInfo(&free2, &total));
  // KNOWN GAP: under the limiter (a _limited run) what a pool keeps after cudaFreeAsync is
  // credited back to the vGPU at once, though the device still holds it, and charged again on
  // reuse. Those two checks are not made there, and the run says so.
  const bool poolReservesCharged = tf_test::vgpuVram() == 0;
  if (!poolReservesCharged)
    std::printf("NOT CHECKED under the limiter: pool reserves stay charged after cudaFreeAsync "
                "(the limiter credits them at once)\n");
  if (poolReservesCharged) EXPECT_TRUE(free2 + big <= free0); // kept by the pool (unlimited threshold)
  CHECK(cudaMemPoolGetAttribute(pool, cudaMemPoolAttrUsedMemCurrent, &used));
  EXPECT_EQ_INT(used, 0);
  // Reuse: the next allocation of the same size comes from the reserve, no new memory.
  CHECK(cudaMallocAsync(&p, big, s1));
  CHECK(cudaStreamSynchronize(s1));
  size_t freeReuse = 0;
  CHECK(cudaMemGetInfo(&freeReuse, &total));
  if (poolReservesCharged) EXPECT_EQ_INT(freeReuse, free2);
  CHECK(cudaFreeAsync(p, s1));
  CHECK(cudaStreamSynchronize(s1));
  CHECK(cudaMemPoolTrimTo(pool, 0));
  CHECK(cudaMemGetInfo(&free3, &total));
  EXPECT_EQ_INT(free3, free0);
  CHECK(cudaMemPoolGetAttribute(pool, cudaMemPoolAttrReservedMemCurrent, &reserved));
  EXPECT_EQ_INT(reserved, 0);

  // An explicit pool.
  cudaMemPoolProps props = {};
  props.allocType = cudaMemAllocationTypePinned;
  props.location.type = cudaMemLocationTypeDevice;
  props.location.id = 0;
  cudaMemPool_t mine = nullptr;
  CHECK(cudaMemPoolCreate(&mine, &props));
  unsigned char* q = nullptr;
  CHECK(cudaMallocFromPoolAsync(&q, N, mine, s2));
  CHECK(cudaMemcpyAsync(q, src.data(), N, cudaMemcpyHostToDevice, s2));
  CHECK(cudaMemsetAsync(q + 10, 0, 20, s2));
  std::fill(back.begin(), back.end(), 0);
  CHECK(cudaMemcpyAsync(back.data(), q, N, cudaMemcpyDeviceToHost, s2));
  CHECK(cudaStreamSynchronize(s2));
  std::vector<unsigned char> want = src;
  std::memset(want.data() + 10, 0, 20);
  EXPECT_EQ_BYTES(back.data(), want.data(), N, "explicit pool allocation");
  CHECK(cudaMemPoolGetAttribute(mine, cudaMemPoolAttrUsedMemCurrent, &used));
  EXPECT_TRUE(used >= N);
  CHECK(cudaFreeAsync(q, s2));
  CHECK(cudaStreamSynchronize(s2));
  CHECK(cudaMemPoolDestroy(mine));

  // A graph that allocates and frees in it (captured): the driver cannot clone such a graph,
  // yet it instantiates and runs, each launch at the allocation's fixed address.
  {
    void* out = nullptr;
    CHECK(cudaMalloc(&out, 4096));
    cudaGraph_t g;
    CHECK(cudaStreamBeginCapture(s1, cudaStreamCaptureModeGlobal));
    void* scratch = nullptr;
    CHECK(cudaMallocAsync(&scratch, 4096, s1));
    CHECK(cudaMemsetAsync(scratch, 0x3c, 4096, s1));
    CHECK(cudaMemcpyAsync(out, scratch, 4096, cudaMemcpyDeviceToDevice, s1));
    CHECK(cudaFreeAsync(scratch, s1));
    CHECK(cudaStreamEndCapture(s1, &g));
    cudaGraph_t copy = nullptr;
    EXPECT_ERR(cudaGraphClone(&copy, g), cudaErrorNotSupported);
    (void)cudaGetLastError();
    cudaGraphExec_t x;
    CHECK(cudaGraphInstantiate(&x, g, 0));
    for (int i = 0; i < 2; ++i) {
      CHECK(cudaMemsetAsync(out, 0, 4096, s1));
      CHECK(cudaGraphLaunch(x, s1));
      std::vector<unsigned char> got(4096, 0);
      CHECK(cudaMemcpyAsync(got.data(), out, 4096, cudaMemcpyDeviceToHost, s1));
      CHECK(cudaStreamSynchronize(s1));
      EXPECT_EQ_INT(got[0], 0x3c);
      EXPECT_EQ_INT(got[4095], 0x3c);
    }
    CHECK(cudaGraphExecDestroy(x));
    CHECK(cudaGraphDestroy(g));
    CHECK(cudaFree(out));
  }

  // Errors: freeing a non-pool pointer or twice.
  void* plain = nullptr;
  CHECK(cudaMalloc(&plain, 256));
  void* pa = nullptr;
  CHECK(cudaMallocAsync(&pa, 256, s1));
  CHECK(cudaFreeAsync(pa, s1));
  CHECK(cudaStreamSynchronize(s1));
  EXPECT_ERR(cudaFreeAsync(pa, s1), cudaErrorInvalidValue);
  (void)cudaGetLastError();
  CHECK(cudaFree(plain));

  CHECK(cudaEventDestroy(e));
  CHECK(cudaStreamDestroy(s1));
  CHECK(cudaStreamDestroy(s2));
  return tf_test::summary("stream_ordered");
}

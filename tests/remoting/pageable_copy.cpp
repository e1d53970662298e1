// Synchronous copies between pageable memory and the device through the stub, on whichever
// path it takes (docs/remoting.md, "Pageable copies with one CPU copy"): over shared memory
// it copies through a mapping of the device memory that the worker hands it; over TCP, and
// where the worker does not share device memory (TF_WORKER_SHARE_DEVICE=0: as on NVIDIA's
// driver), the bytes go through the transport. Every large copy is checked against bytes that
// crossed by small copies (always through the transport), at unaligned offsets and sizes
// around the threshold; a copy past its allocation is refused; a copy waits for earlier work
// on the legacy stream; memory freed and allocated again, and pool memory, get their bytes;
// what was written before the first large copy (when the allocation is shared) stays.
// The stub's counts then say which path the large copies took: TF_TEST_EXPECT_COPIES=mapped
// or sent.
#include <algorithm>
#include <dlfcn.h>
#include <string>
#include <vector>

#include "check.h"
#include "stub_counts.h"

namespace {

constexpr size_t kSmall = 16 << 10; // below the stub's threshold: always through the transport

void fillPattern(std::vector<unsigned char>& v, unsigned seed) {
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<unsigned char>((i * 131 + seed) >> 3);
}

// Device bytes [d, d + n) into out, by small copies.
void readSmall(CUdeviceptr d, unsigned char* out, size_t n) {
  for (size_t off = 0; off < n; off += kSmall)
    CU_CHECK(cuMemcpyDtoH(out + off, d + off, std::min(kSmall, n - off)));
}
void writeSmall(CUdeviceptr d, const unsigned char* in, size_t n) {
  for (size_t off = 0; off < n; off += kSmall)
    CU_CHECK(cuMemcpyHtoD(d + off, in + off, std::min(kSmall, n - off)));
}

struct Counts {
  uint64_t mapped = 0, sent = 0;
};
Counts counts() {
  auto [mapped, sent] = stubCounts("tfRemotePageableCopies");
  return Counts{mapped, sent};
}

// Large copies both ways at unaligned offsets, each checked against small copies; how many
// large copies it made.
int roundTrips(CUdeviceptr d, unsigned* seed) {
  const size_t sizes[] = {(64 << 10) - 1, 64 << 10, (64 << 10) + 7, (3 << 20) + 5, 9 << 20};
  int large = 0;
  for (size_t n : sizes) {
    for (size_t devOff : {size_t(0), size_t(5)}) {
      // Host buffers at an odd offset into their allocation, so pages are not aligned.
      std::vector<unsigned char> src(n + 3), back(n + 3), check(n);
      fillPattern(src, (*seed)++);
      CU_CHECK(cuMemcpyHtoD(d + devOff, src.data() + 3, n));
      readSmall(d + devOff, check.data(), n);
      EXPECT_EQ_BYTES(check.data(), src.data() + 3, n, "host-to-device, read back in small copies");

      fillPattern(check, (*seed)++);
      writeSmall(d + devOff, check.data(), n);
      CU_CHECK(cuMemcpyDtoH(back.data() + 3, d + devOff, n));
      EXPECT_EQ_BYTES(back.data() + 3, check.data(), n, "device-to-host, written in small copies");
      if (n >= (64 << 10)) large += 2;
    }
  }
  return large;
}

} // namespace

int main() {
  const char* expectEnv = std::getenv("TF_TEST_EXPECT_COPIES");
  REQUIRE(expectEnv && (std::string(expectEnv) == "mapped" || std::string(expectEnv) == "sent"));
  const bool mapped = std::string(expectEnv) == "mapped";
  CU_CHECK(cuInit(0));
  CUcontext ctx;
  CU_CHECK(cuDevicePrimaryCtxRetain(&ctx, 0));
  CU_CHECK(cuCtxSetCurrent(ctx));

  constexpr size_t kAlloc = 12 << 20;
  CUdeviceptr d;
  CU_CHECK(cuMemAlloc(&d, kAlloc));
  unsigned seed = 1;
  // Contents written before the first large copy (which shares the allocation: its bytes move
  // into the memfd, all-zero stretches left as holes) stay, and the zero stretches read zero.
  std::vector<unsigned char> before((1 << 20) + 77), got(before.size());
  fillPattern(before, 99);
  writeSmall(d + (5 << 20) + 3, before.data(), before.size());
  std::vector<unsigned char> ones(1 << 20, 0x33);
  CU_CHECK(cuMemcpyHtoD(d, ones.data(), ones.size()));
  readSmall(d + (5 << 20) + 3, got.data(), got.size());
  EXPECT_EQ_BYTES(got.data(), before.data(), before.size(), "contents from before the first large copy");
  std::vector<unsigned char> zeros(1 << 20, 0);
  readSmall(d + (8 << 20), got.data(), zeros.size());
  EXPECT_EQ_BYTES(got.data(), zeros.data(), zeros.size(), "never written");
  int large = 1 + roundTrips(d, &seed);

  // Past the end of the allocation: refused, nothing written.
  std::vector<unsigned char> big(1 << 20, 0xEE), tail(4096);
  CU_CHECK(cuMemsetD8(d + kAlloc - 4096, 0x11, 4096));
  CU_EXPECT_ERR(cuMemcpyHtoD(d + kAlloc - 4096, big.data(), big.size()), CUDA_ERROR_INVALID_VALUE);
  CU_EXPECT_ERR(cuMemcpyDtoH(big.data(), d + kAlloc - 4096, big.size()), CUDA_ERROR_INVALID_VALUE);
  readSmall(d + kAlloc - 4096, tail.data(), tail.size());
  EXPECT_TRUE(std::all_of(tail.begin(), tail.end(), [](unsigned char c) { return c == 0x11; }));

  // Ordered after earlier work on the legacy stream, as cuMemcpyDtoH / cuMemcpyHtoD are.
  CU_CHECK(cuMemsetD8Async(d, 0x5A, kAlloc, nullptr));
  std::vector<unsigned char> all(kAlloc), want(kAlloc, 0x5A);
  CU_CHECK(cuMemcpyDtoH(all.data(), d, kAlloc));
  EXPECT_EQ_BYTES(all.data(), want.data(), kAlloc, "device-to-host after a queued memset");
  CU_CHECK(cuMemsetD8Async(d, 0x00, kAlloc, nullptr));
  fillPattern(all, seed++);
  CU_CHECK(cuMemcpyHtoD(d, all.data(), kAlloc));
  readSmall(d, want.data(), kAlloc);
  EXPECT_EQ_BYTES(want.data(), all.data(), kAlloc, "host-to-device after a queued memset");
  large += 2;

  // Freed, and allocated again (the soft GPU may hand out the same address): the new memory
  // gets the bytes, whatever the stub mapped before. Then stream-ordered (pool) memory.
  CU_CHECK(cuMemFree(d));
  CU_CHECK(cuMemAlloc(&d, kAlloc));
  large += roundTrips(d, &seed);
  CUdeviceptr pool;
  CU_CHECK(cuMemAllocAsync(&pool, kAlloc, nullptr));
  CU_CHECK(cuStreamSynchronize(nullptr));
  large += roundTrips(pool, &seed);
  CU_CHECK(cuMemFreeAsync(pool, nullptr));
  CU_CHECK(cuMemFree(d));
  CU_CHECK(cuCtxSynchronize());

  // The two copies past their allocation go to the worker for its refusal.
  Counts c = counts();
  std::printf("large copies: %llu through a mapping, %llu sent, of %d + 2 refused (expected: %s)\n",
              (unsigned long long)c.mapped, (unsigned long long)c.sent, large, expectEnv);
  EXPECT_EQ_INT(c.mapped, mapped ? large : 0);
  EXPECT_EQ_INT(c.sent, mapped ? 2 : large + 2);
  return tf_test::summary("pageable_copy");
}

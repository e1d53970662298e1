// Managed memory through the stub, shared with the worker or mirrored (stub/shared_managed.h):
// fresh memory reads zero; the host's writes reach the device (copies out of it, at unaligned
// offsets), the device's writes reach the host after a synchronisation (copies and memsets into
// it, queued and synchronous), host writes to other bytes while device work is queued both
// survive; several allocations at once, freed and allocated again, fresh each time. The stub's
// counts then say how the allocations were made: TF_TEST_EXPECT_MANAGED=shared or mirrored.
#include <algorithm>
#include <dlfcn.h>
#include <string>
#include <vector>

#include "check.h"
#include "stub_counts.h"

namespace {

struct Counts {
  uint64_t shared = 0, mirrored = 0;
};
Counts counts() {
  auto [shared, mirrored] = stubCounts("tfRemoteManagedAllocations");
  return Counts{shared, mirrored};
}

void fillPattern(unsigned char* p, size_t n, unsigned seed) {
  for (size_t i = 0; i < n; ++i) p[i] = static_cast<unsigned char>((i * 131 + seed) >> 3);
}

// One allocation of `size` bytes through its life; checks it starts zero.
void exercise(size_t size, unsigned seed) {
  REQUIRE(size >= 8192);
  CUdeviceptr m;
  CU_CHECK(cuMemAllocManaged(&m, size, CU_MEM_ATTACH_GLOBAL));
  auto* host = reinterpret_cast<unsigned char*>(m);
  EXPECT_TRUE(std::all_of(host, host + size, [](unsigned char c) { return c == 0; }));

  // Host writes, read by the device (a copy out of managed memory runs on the worker).
  fillPattern(host, size, seed);
  std::vector<unsigned char> got(size);
  CU_CHECK(cuMemcpyDtoH(got.data() + 0, m, size));
  EXPECT_EQ_BYTES(got.data(), host, size, "host writes seen by the device");
  CU_CHECK(cuMemcpyDtoH(got.data(), m + 4097, size - 4097));
  EXPECT_EQ_BYTES(got.data(), host + 4097, size - 4097, "at an unaligned offset");

  // Device writes (a queued memset and a synchronous copy in), host writes to other bytes
  // meanwhile: after the synchronisation both are there.
  std::vector<unsigned char> want(size);
  std::memcpy(want.data(), host, size); // before: what the memset and the host do not change
  CU_CHECK(cuMemsetD8Async(m + 100, 0xA5, 5000, nullptr));
  host[50] = 0x11;
  host[size - 1] = 0x22;
  CU_CHECK(cuCtxSynchronize());
  std::memset(want.data() + 100, 0xA5, 5000);
  want[50] = 0x11;
  want[size - 1] = 0x22;
  EXPECT_EQ_BYTES(host, want.data(), size, "a memset beside host writes");
  std::vector<unsigned char> in(size / 2);
  fillPattern(in.data(), in.size(), seed + 7);
  CU_CHECK(cuMemcpyHtoD(m + 3, in.data(), in.size()));
  std::copy(in.begin(), in.end(), want.begin() + 3);
  EXPECT_EQ_BYTES(host, want.data(), size, "a synchronous copy into it");

  // Device memory to managed and back, then the host reads.
  CUdeviceptr d;
  CU_CHECK(cuMemAlloc(&d, size));
  CU_CHECK(cuMemcpyDtoD(d, m, size));
  CU_CHECK(cuMemsetD8(m, 0, size));
  CU_CHECK(cuMemcpyDtoDAsync(m, d, size, nullptr));
  CU_CHECK(cuStreamSynchronize(nullptr));
  EXPECT_EQ_BYTES(host, want.data(), size, "device to managed");
  CU_CHECK(cuMemFree(d));
  CU_CHECK(cuMemFree(m));
}

} // namespace

int main() {
  const char* expectEnv = std::getenv("TF_TEST_EXPECT_MANAGED");
  REQUIRE(expectEnv && (std::string(expectEnv) == "shared" || std::string(expectEnv) == "mirrored"));
  const bool shared = std::string(expectEnv) == "shared";
  CU_CHECK(cuInit(0));
  CUcontext ctx;
  CU_CHECK(cuDevicePrimaryCtxRetain(&ctx, 0));
  CU_CHECK(cuCtxSetCurrent(ctx));

  int allocations = 0;
  unsigned seed = 1;
  for (size_t size : {size_t(8192), size_t(3 << 20) + 5, size_t(64 << 10)}) {
    exercise(size, seed++); // freed at the end: the next may get the same address, fresh
    ++allocations;
  }
  // Two at once, each its own.
  CUdeviceptr a, b;
  CU_CHECK(cuMemAllocManaged(&a, 1 << 20, CU_MEM_ATTACH_GLOBAL));
  CU_CHECK(cuMemAllocManaged(&b, 1 << 20, CU_MEM_ATTACH_GLOBAL));
  allocations += 2;
  CU_CHECK(cuMemsetD8(a, 1, 1 << 20));
  CU_CHECK(cuMemsetD8(b, 2, 1 << 20));
  reinterpret_cast<unsigned char*>(a)[7] = 9;
  CU_CHECK(cuMemcpyDtoD(b, a, 8));
  CU_CHECK(cuCtxSynchronize());
  const auto* pb = reinterpret_cast<unsigned char*>(b);
  EXPECT_EQ_INT(pb[7], 9);
  EXPECT_EQ_INT(pb[6], 1);
  EXPECT_EQ_INT(pb[8], 2);
  CU_CHECK(cuMemFree(a));
  CU_CHECK(cuMemFree(b));

  Counts c = counts();
  std::printf("managed allocations: %llu shared, %llu mirrored, of %d (expected: %s)\n",
              (unsigned long long)c.shared, (unsigned long long)c.mirrored, allocations, expectEnv);
  EXPECT_EQ_INT(c.shared, shared ? allocations : 0);
  EXPECT_EQ_INT(c.mirrored, shared ? 0 : allocations);
  return tf_test::summary("managed_memory");
}

// Device memory: allocation, copies in every direction at sizes 1 B..64 MiB and offsets,
// memset, memory accounting, pointer attributes, out-of-bounds copies, bad and double frees,
// and a host dereference of a device pointer (must fault).
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <vector>

#include "check.h"

static void copies(tf_test::Rng& rng, size_t n, size_t off) {
  std::vector<unsigned char> src(n), back(n, 0), want;
  rng.fill(src.data(), n);
  unsigned char *a = nullptr, *b = nullptr;
  CHECK(cudaMalloc(&a, n + off));
  CHECK(cudaMalloc(&b, n + off));
  CHECK(cudaMemcpy(a + off, src.data(), n, cudaMemcpyHostToDevice));
  CHECK(cudaMemcpy(b + off, a + off, n, cudaMemcpyDeviceToDevice));
  CHECK(cudaMemcpy(back.data(), b + off, n, cudaMemcpyDeviceToHost));
  EXPECT_EQ_BYTES(back.data(), src.data(), n, "H2D, D2D, D2H");

  // cudaMemcpyDefault infers the direction from the pointers (unified addressing).
  std::vector<unsigned char> src2(n), back2(n, 0);
  rng.fill(src2.data(), n);
  CHECK(cudaMemcpy(a + off, src2.data(), n, cudaMemcpyDefault));
  CHECK(cudaMemcpy(b + off, a + off, n, cudaMemcpyDefault));
  CHECK(cudaMemcpy(back2.data(), b + off, n, cudaMemcpyDefault));
  EXPECT_EQ_BYTES(back2.data(), src2.data(), n, "default-kind copies");

  // Memset of the middle half; bytes around it keep their values.
  size_t lo = n / 4, len = n / 2;
  CHECK(cudaMemset(b + off + lo, 0xA5, len));
  CHECK(cudaMemcpy(back.data(), b + off, n, cudaMemcpyDeviceToHost));
  want = src2;
  std::memset(want.data() + lo, 0xA5, len);
  EXPECT_EQ_BYTES(back.data(), want.data(), n, "memset middle");
  CHECK(cudaFree(a));
  CHECK(cudaFree(b));
}

int main() {
  TF_CHECK_VGPU(); // in a _limited run: the limiter is there (check.h)
  tf_test::Rng rng(12345);
  const size_t sizes[] = {1, 3, 4, 17, 256, 4095, 4096, 4097, 65536 + 7, 1 << 20,
                          (3 << 20) + 5, 64u << 20};
  const size_t offsets[] = {0, 1, 7, 256};
  // The largest size with one aligned and one unaligned offset only: each round faults in
  // 640 MiB of fresh host and device pages, which made this program the slowest of the suite
  // (15 s alone) without testing anything the smaller sizes at every offset do not.
  for (size_t n : sizes)
    for (size_t off : offsets)
      if (n < (64u << 20) || off == 0 || off == 7) copies(rng, n, off);

  // Accounting: free memory drops by at least the allocation, comes back after cudaFree.
  CHECK(cudaFree(0));
  size_t free0 = 0, total = 0, free1 = 0, free2 = 0;
  CHECK(cudaMemGetInfo(&free0, &total));
  const size_t big = 256u << 20;
  void* p = nullptr;
  CHECK(cudaMalloc(&p, big));
  CHECK(cudaMemGetInfo(&free1, &total));
  EXPECT_TRUE(free1 + big <= free0);
  CHECK(cudaFree(p));
  CHECK(cudaMemGetInfo(&free2, &total));
  EXPECT_EQ_INT(free2, free0);

  // Too large to ever fit.
  void* huge = nullptr;
  EXPECT_ERR(cudaMalloc(&huge, total + (1ull << 30)), cudaErrorMemoryAllocation);
  (void)cudaGetLastError();

  // Pointer attributes for each kind of memory.
  void *dev = nullptr, *pinned = nullptr, *managed = nullptr;
  CHECK(cudaMalloc(&dev, 4096));
  CHECK(cudaMallocHost(&pinned, 4096));
  CHECK(cudaMallocManaged(&managed, 4096));
  std::vector<char> pageable(4096);
  cudaPointerAttributes at;
  CHECK(cudaPointerGetAttributes(&at, dev));
  EXPECT_EQ_INT(at.type, cudaMemoryTypeDevice);
  EXPECT_EQ_INT(at.device, 0);
  EXPECT_TRUE(at.devicePointer == dev);
  EXPECT_TRUE(at.hostPointer == nullptr);
  CHECK(cudaPointerGetAttributes(&at, static_cast<char*>(dev) + 100));
  EXPECT_EQ_INT(at.type, cudaMemoryTypeDevice);
  EXPECT_TRUE(at.devicePointer == static_cast<char*>(dev) + 100);
  CHECK(cudaPointerGetAttributes(&at, pinned));
  EXPECT_EQ_INT(at.type, cudaMemoryTypeHost);
  EXPECT_TRUE(at.hostPointer == pinned);
  EXPECT_TRUE(at.devicePointer != nullptr);
  CHECK(cudaPointerGetAttributes(&at, managed));
  EXPECT_EQ_INT(at.type, cudaMemoryTypeManaged);
  EXPECT_TRUE(at.devicePointer == managed);
  EXPECT_TRUE(at.hostPointer == managed);
  CHECK(cudaPointerGetAttributes(&at, pageable.data()));
  EXPECT_EQ_INT(at.type, cudaMemoryTypeUnregistered);
  EXPECT_TRUE(at.devicePointer == nullptr);

  // Copies that run past the end of an allocation.
  std::vector<char> host(8192);
  EXPECT_ERR(cudaMemcpy(dev, host.data(), 4097, cudaMemcpyHostToDevice), cudaErrorInvalidValue);
  EXPECT_ERR(cudaMemcpy(host.data(), static_cast<char*>(dev) + 4000, 200, cudaMemcpyDeviceToHost),
             cudaErrorInvalidValue);
  void* dev2 = nullptr;
  CHECK(cudaMalloc(&dev2, 1024));
  EXPECT_ERR(cudaMemcpy(dev2, dev, 2048, cudaMemcpyDeviceToDevice), cudaErrorInvalidValue);
  EXPECT_ERR(cudaMemset(dev2, 0, 1025), cudaErrorInvalidValue);
  (void)cudaGetLastError();
  // The failed calls must not poison later ones.
  CHECK(cudaMemcpy(dev, host.data(), 4096, cudaMemcpyHostToDevice));

  // A host dereference of a device pointer faults (device addresses are not host memory).
  std::fflush(stdout);
  std::fflush(stderr);
  pid_t child = fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    volatile unsigned char v = *static_cast<volatile unsigned char*>(dev);
    (void)v;
    _exit(0); // reached only if the read did not fault
  }
  int status = 0;
  REQUIRE(waitpid(child, &status, 0) == child);
  EXPECT_TRUE(WIFSIGNALED(status) && (WTERMSIG(status) == SIGSEGV || WTERMSIG(status) == SIGBUS));

  // Bad frees.
  int onStack = 0;
  EXPECT_ERR(cudaFree(&onStack), cudaErrorInvalidValue);
  EXPECT_ERR(cudaFree(reinterpret_cast<void*>(0x1234567)), cudaErrorInvalidValue);
  EXPECT_ERR(cudaFree(static_cast<char*>(dev2) + 16), cudaErrorInvalidValue);
  CHECK(cudaFree(dev2));
  EXPECT_ERR(cudaFree(dev2), cudaErrorInvalidValue);
  (void)cudaGetLastError();
  CHECK(cudaFree(nullptr));

  CHECK(cudaFree(dev));
  CHECK(cudaFreeHost(pinned));
  CHECK(cudaFree(managed));
  CHECK(cudaDeviceSynchronize());
  return tf_test::summary("memory");
}

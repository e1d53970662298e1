// The device working on host memory by address, and the host on managed memory, as programs
// use them: kernels that read and write mapped pinned memory through its host pointer (unified
// addressing) and through cudaHostGetDevicePointer; kernels on managed memory the host filled
// with read(); the host and a kernel writing different bytes of one page between two
// synchronisations; a host function reading what a kernel just wrote to managed memory; a
// stream-ordered chain kernel -> host function -> kernel on managed memory.
#include <atomic>
#include <cstdio>
#include <unistd.h>
#include <vector>

#include "check.h"

__global__ void scale(const float* in, float* out, float k, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) out[i] = in[i] * k;
}
__global__ void addOne(int* p, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) p[i] += 1;
}
__global__ void writeOdd(unsigned char* p, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (2 * i + 1 < n) p[2 * i + 1] = 0xD0;
}

struct Seen {
  const int* src;
  int n;
  long long sum = -1;
};
static void CUDART_CB sumFn(void* p) {
  auto* s = static_cast<Seen*>(p);
  long long t = 0;
  for (int i = 0; i < s->n; ++i) t += s->src[i];
  s->sum = t;
}
static void CUDART_CB doubleFn(void* p) {
  auto* s = static_cast<Seen*>(p);
  int* w = const_cast<int*>(s->src);
  for (int i = 0; i < s->n; ++i) w[i] *= 2;
}

int main() {
  TF_CHECK_VGPU(); // in a _limited run: the limiter is there (check.h)
  const int N = 100000;
  const int threads = 256, blocks = (N + threads - 1) / threads;

  // Mapped pinned memory used by its host pointer and by its device pointer.
  float *in = nullptr, *out = nullptr;
  CHECK(cudaHostAlloc(&in, N * sizeof(float), cudaHostAllocMapped));
  CHECK(cudaHostAlloc(&out, N * sizeof(float), cudaHostAllocMapped));
  for (int i = 0; i < N; ++i) in[i] = float(i % 1000) * 0.5f;
  std::memset(out, 0, N * sizeof(float));
  scale<<<blocks, threads>>>(in, out, 3.0f, N);
  CHECK(cudaGetLastError());
  CHECK(cudaDeviceSynchronize());
  int bad = 0;
  for (int i = 0; i < N; ++i) bad += out[i] != in[i] * 3.0f;
  EXPECT_EQ_INT(bad, 0);
  // The host changes the input; the same kernel sees the new values.
  for (int i = 0; i < N; ++i) in[i] = 1.0f;
  float* outDev = nullptr;
  CHECK(cudaHostGetDevicePointer(&outDev, out, 0));
  scale<<<blocks, threads>>>(in, outDev, -2.0f, N);
  CHECK(cudaDeviceSynchronize());
  bad = 0;
  for (int i = 0; i < N; ++i) bad += out[i] != -2.0f;
  EXPECT_EQ_INT(bad, 0);

  // Managed memory filled by read(2) (a system call writing into it), then used by a kernel.
  int* m = nullptr;
  CHECK(cudaMallocManaged(&m, N * sizeof(int)));
  {
    std::vector<int> src(N);
    for (int i = 0; i < N; ++i) src[i] = i;
    FILE* f = std::tmpfile();
    REQUIRE(f);
    REQUIRE(std::fwrite(src.data(), sizeof(int), N, f) == size_t(N));
    std::fflush(f);
    REQUIRE(pread(fileno(f), m, N * sizeof(int), 0) == ssize_t(N * sizeof(int)));
    std::fclose(f);
  }
  addOne<<<blocks, threads>>>(m, N);
  CHECK(cudaDeviceSynchronize());
  bad = 0;
  for (int i = 0; i < N; ++i) bad += m[i] != i + 1;
  EXPECT_EQ_INT(bad, 0);

  // A host function reads what the kernel before it wrote; the kernel after it sees what the
  // host function wrote.
  cudaStream_t s;
  CHECK(cudaStreamCreate(&s));
  Seen seen{m, N};
  addOne<<<blocks, threads, 0, s>>>(m, N);            // i + 2
  CHECK(cudaLaunchHostFunc(s, sumFn, &seen));
  CHECK(cudaLaunchHostFunc(s, doubleFn, &seen));      // 2i + 4
  addOne<<<blocks, threads, 0, s>>>(m, N);            // 2i + 5
  CHECK(cudaStreamSynchronize(s));
  long long want = 0;
  for (int i = 0; i < N; ++i) want += i + 2;
  EXPECT_TRUE(seen.sum == want);
  bad = 0;
  for (int i = 0; i < N; ++i) bad += m[i] != 2 * i + 5;
  EXPECT_EQ_INT(bad, 0);

  // The host writes even bytes while a kernel writes odd bytes of the same pages: both stay.
  const int B = 3 * 4096 + 17;
  unsigned char* shared = nullptr;
  CHECK(cudaMallocManaged(&shared, B));
  std::memset(shared, 0x11, B);
  CHECK(cudaDeviceSynchronize());
  writeOdd<<<(B / 2 + threads) / threads, threads, 0, s>>>(shared, B);
  for (int i = 0; i < B; i += 2) shared[i] = 0xE0; // concurrently with the kernel
  CHECK(cudaStreamSynchronize(s));
  bad = 0;
  for (int i = 0; i < B; ++i) bad += shared[i] != (i % 2 ? 0xD0 : 0xE0);
  EXPECT_EQ_INT(bad, 0);

  CHECK(cudaStreamDestroy(s));
  CHECK(cudaFree(shared));
  CHECK(cudaFree(m));
  CHECK(cudaFreeHost(in));
  CHECK(cudaFreeHost(out));
  return tf_test::summary("zero_copy");
}

// Asynchronous global->shared copies, the three ways public samples write them, each checked
// against the CPU:
//  - cooperative_groups::memcpy_async + cg::wait (globalToShmemAsyncCopy's simple variant): a
//    tiled matrix multiply;
//  - a two-stage cuda::pipeline (producer_acquire/commit, consumer_wait/release) with
//    cuda::memcpy_async of 16-byte aligned shapes (cp.async.cg / cp.async.ca, commit_group,
//    wait_group): the same multiply, double buffered;
//  - the pipeline primitives (__pipeline_memcpy_async, __pipeline_commit,
//    __pipeline_wait_prior) with 4-, 8- and 16-byte copies and the zero-fill form (a source
//    size smaller than the copy: the rest of the destination is zeroed), plus cp.async.wait_all.
#include <cooperative_groups.h>
#include <cooperative_groups/memcpy_async.h>
#include <cuda/pipeline>
#include <cuda_pipeline_primitives.h>

#include <utility>
#include <vector>

#include "check.h"

// cuda::pipeline_shared_state in __shared__ has a constructor nvcc warns about; NVIDIA's own
// samples declare it the same way (make_pipeline initialises it).
#pragma nv_diag_suppress static_var_with_dynamic_init

namespace cg = cooperative_groups;

constexpr int kTile = 16;

// C = A * B, all n x n row-major, n a multiple of kTile; one kTile x kTile block per C tile.
__global__ void matmulCg(const float* A, const float* B, float* C, int n) {
  __shared__ alignas(16) float sa[kTile][kTile];
  __shared__ alignas(16) float sb[kTile][kTile];
  cg::thread_block block = cg::this_thread_block();
  const int row = blockIdx.y * kTile + threadIdx.y, col = blockIdx.x * kTile + threadIdx.x;
  float acc = 0;
  for (int t = 0; t < n / kTile; ++t) {
    // one row of each tile per copy: kTile rows, each issued by the whole block
    for (int r = 0; r < kTile; ++r) {
      cg::memcpy_async(block, sa[r], A + (blockIdx.y * kTile + r) * n + t * kTile, sizeof(float) * kTile);
      cg::memcpy_async(block, sb[r], B + (t * kTile + r) * n + blockIdx.x * kTile, sizeof(float) * kTile);
    }
    cg::wait(block);
    for (int k = 0; k < kTile; ++k) acc += sa[threadIdx.y][k] * sb[k][threadIdx.x];
    block.sync();
  }
  C[row * n + col] = acc;
}

// The same multiply with a two-stage pipeline: the copy of tile t+1 is in flight while tile t
// is used. Each thread copies one float4 of A's and of B's tile (kTile*kTile/4 = 64 threads
// copy, all 256 compute).
__global__ void matmulPipeline(const float* A, const float* B, float* C, int n) {
  constexpr int kStages = 2;
  __shared__ alignas(16) float sa[kStages][kTile][kTile];
  __shared__ alignas(16) float sb[kStages][kTile][kTile];
  cg::thread_block block = cg::this_thread_block();
  __shared__ cuda::pipeline_shared_state<cuda::thread_scope_block, kStages> state;
  auto pipe = cuda::make_pipeline(block, &state);
  const int tid = threadIdx.y * kTile + threadIdx.x;
  const int tiles = n / kTile;
  auto issue = [&](int t) {
    const int stage = t % kStages;
    pipe.producer_acquire();
    if (tid < kTile * kTile / 4) {
      const int r = tid / (kTile / 4), c4 = (tid % (kTile / 4)) * 4;
      cuda::memcpy_async(&sa[stage][r][c4], A + (blockIdx.y * kTile + r) * n + t * kTile + c4,
                         cuda::aligned_size_t<16>(16), pipe);
      cuda::memcpy_async(&sb[stage][r][c4], B + (t * kTile + r) * n + blockIdx.x * kTile + c4,
                         cuda::aligned_size_t<16>(16), pipe);
    }
    pipe.producer_commit();
  };
  float acc = 0;
  issue(0);
  for (int t = 0; t < tiles; ++t) {
    if (t + 1 < tiles) issue(t + 1);
    pipe.consumer_wait();
    block.sync();
    const int stage = t % kStages;
    for (int k = 0; k < kTile; ++k) acc += sa[stage][threadIdx.y][k] * sb[stage][k][threadIdx.x];
    block.sync();
    pipe.consumer_release();
  }
  C[(blockIdx.y * kTile + threadIdx.y) * n + blockIdx.x * kTile + threadIdx.x] = acc;
}

// The primitives, one warp: lane i copies 4 bytes (word i), 8 bytes (pair i), 16 bytes (quad i)
// in three commit groups, waits for them oldest first, and a fourth group copies 16-byte
// chunks of which only `valid` bytes come from global (the rest zero-filled).
__global__ void primitives(const unsigned* src, unsigned* out, int valid) {
  __shared__ alignas(16) unsigned s4[32], s8[64], s16[128], sz[128];
  const int i = threadIdx.x;
  for (int k = 0; k < 4; ++k) sz[i * 4 + k] = 0xdeadbeefu; // must be overwritten, zeros included
  __syncwarp();
  __pipeline_memcpy_async(&s4[i], &src[i], 4);
  __pipeline_commit();
  __pipeline_memcpy_async(&s8[i * 2], &src[64 + i * 2], 8);
  __pipeline_commit();
  __pipeline_memcpy_async(&s16[i * 4], &src[192 + i * 4], 16);
  __pipeline_commit();
  __pipeline_memcpy_async(&sz[i * 4], &src[320 + i * 4], 16, 16 - valid);
  __pipeline_commit();
  __pipeline_wait_prior(3); // the first group is complete
  out[i] = s4[i];
  __pipeline_wait_prior(0);
  asm volatile("cp.async.wait_all;\n" ::);
  __syncwarp();
  for (int k = 0; k < 2; ++k) out[32 + i * 2 + k] = s8[i * 2 + k];
  for (int k = 0; k < 4; ++k) out[96 + i * 4 + k] = s16[i * 4 + k];
  for (int k = 0; k < 4; ++k) out[224 + i * 4 + k] = sz[i * 4 + k];
}

// The same forms written in PTX, as CUTLASS-style code does: the ignore-src predicate (true:
// the destination is zero-filled, nothing read), and the mbarrier arrive-on of cp.async. The
// barrier expects 64 arrivals: the plain cp.async.mbarrier.arrive changes nothing (it raises the
// pending count before arriving), .noinc counts one per thread, the ordinary arrive the other
// 32. Counted wrong either way, the wait never completes (a deadlock error) or completes early
// (the wait on the arrive's phase never does).
__global__ void ptxForms(const unsigned* src, unsigned* out) {
  __shared__ alignas(8) unsigned long long bar;
  __shared__ alignas(16) unsigned s[32];
  const unsigned i = threadIdx.x;
  const unsigned b = (unsigned)__cvta_generic_to_shared(&bar);
  const unsigned d = (unsigned)__cvta_generic_to_shared(&s[i]);
  s[i] = 0xdeadbeefu;
  if (i == 0) asm volatile("mbarrier.init.shared.b64 [%0], %1;" ::"r"(b), "r"(64));
  __syncwarp();
  asm volatile("{ .reg .pred p; setp.ne.u32 p, %2, 0; cp.async.ca.shared.global [%0], [%1], 4, p; }"
               ::"r"(d), "l"(src + i), "r"(i & 1) : "memory");
  asm volatile("cp.async.mbarrier.arrive.shared.b64 [%0];" ::"r"(b) : "memory");
  asm volatile("cp.async.mbarrier.arrive.noinc.shared.b64 [%0];" ::"r"(b) : "memory");
  unsigned long long state;
  asm volatile("mbarrier.arrive.shared.b64 %0, [%1];" : "=l"(state) : "r"(b) : "memory");
  unsigned done = 0;
  while (!done)
    asm volatile("{ .reg .pred p; mbarrier.test_wait.shared.b64 p, [%1], %2; selp.u32 %0, 1, 0, p; }"
                 : "=r"(done) : "r"(b), "l"(state) : "memory");
  out[i] = s[i];
}

namespace {

std::vector<float> cpuMatmul(const std::vector<float>& a, const std::vector<float>& b, int n) {
  std::vector<float> c(size_t(n) * n);
  for (int r = 0; r < n; ++r)
    for (int col = 0; col < n; ++col) {
      float acc = 0;
      for (int k = 0; k < n; ++k) acc += a[r * n + k] * b[k * n + col];
      c[r * n + col] = acc;
    }
  return c;
}

void checkMatmul(const char* what, const std::vector<float>& got, const std::vector<float>& want) {
  int bad = 0;
  for (size_t i = 0; i < want.size(); ++i) bad += std::abs(got[i] - want[i]) > 1e-3f * (1 + std::abs(want[i]));
  if (bad) std::fprintf(stderr, "%s: %d of %zu elements differ (first: %g vs %g)\n", what, bad, want.size(), got[0], want[0]);
  EXPECT_EQ_INT(bad, 0);
}

} // namespace

int main() {
  CHECK(cudaSetDevice(0));
  TF_CHECK_VGPU();
  const int n = 128;
  std::vector<float> a(n * n), b(n * n);
  tf_test::Rng rng(11);
  for (auto& v : a) v = (float)(int)(rng.next() % 17) - 8.0f;
  for (auto& v : b) v = (float)(int)(rng.next() % 13) * 0.25f - 1.5f;
  const std::vector<float> want = cpuMatmul(a, b, n);
  float *dA, *dB, *dC;
  CHECK(cudaMalloc(&dA, n * n * sizeof(float)));
  CHECK(cudaMalloc(&dB, n * n * sizeof(float)));
  CHECK(cudaMalloc(&dC, n * n * sizeof(float)));
  CHECK(cudaMemcpy(dA, a.data(), n * n * sizeof(float), cudaMemcpyHostToDevice));
  CHECK(cudaMemcpy(dB, b.data(), n * n * sizeof(float), cudaMemcpyHostToDevice));
  using Matmul = void (*)(const float*, const float*, float*, int);
  for (auto [kernel, what] : {std::pair<Matmul, const char*>{matmulCg, "cg::memcpy_async matmul"},
                              std::pair<Matmul, const char*>{matmulPipeline, "cuda::pipeline matmul"}}) {
    std::vector<float> got(n * n);
    CHECK(cudaMemset(dC, 0, n * n * sizeof(float)));
    kernel<<<dim3(n / kTile, n / kTile), dim3(kTile, kTile)>>>(dA, dB, dC, n);
    CHECK(cudaGetLastError());
    CHECK(cudaDeviceSynchronize());
    CHECK(cudaMemcpy(got.data(), dC, n * n * sizeof(float), cudaMemcpyDeviceToHost));
    checkMatmul(what, got, want);
  }

  std::vector<unsigned> src(448), want2(352);
  for (unsigned i = 0; i < src.size(); ++i) src[i] = 0x01000000u * (i % 200) + i * 3 + 1;
  for (int i = 0; i < 32; ++i) want2[i] = src[i];
  for (int i = 0; i < 64; ++i) want2[32 + i] = src[64 + i];
  for (int i = 0; i < 128; ++i) want2[96 + i] = src[192 + i];
  const int valid = 8; // of every 16-byte chunk, 8 bytes copied and 8 zero-filled
  for (int i = 0; i < 128; ++i) want2[224 + i] = (i % 4) * 4 < valid ? src[320 + i] : 0u;
  unsigned *dSrc, *dOut;
  CHECK(cudaMalloc(&dSrc, src.size() * 4));
  CHECK(cudaMalloc(&dOut, want2.size() * 4));
  CHECK(cudaMemcpy(dSrc, src.data(), src.size() * 4, cudaMemcpyHostToDevice));
  CHECK(cudaMemset(dOut, 0x77, want2.size() * 4));
  primitives<<<1, 32>>>(dSrc, dOut, valid);
  CHECK(cudaGetLastError());
  CHECK(cudaDeviceSynchronize());
  std::vector<unsigned> got2(want2.size());
  CHECK(cudaMemcpy(got2.data(), dOut, got2.size() * 4, cudaMemcpyDeviceToHost));
  EXPECT_EQ_BYTES(got2.data(), want2.data(), 224 * 4, "4/8/16-byte __pipeline_memcpy_async");
  EXPECT_EQ_BYTES(got2.data() + 224, want2.data() + 224, 128 * 4, "zero-filled copies");

  std::vector<unsigned> got3(32), want3(32);
  for (int i = 0; i < 32; ++i) want3[i] = (i & 1) ? 0u : src[i];
  CHECK(cudaMemset(dOut, 0x77, 32 * 4));
  ptxForms<<<1, 32>>>(dSrc, dOut);
  CHECK(cudaGetLastError());
  CHECK(cudaDeviceSynchronize());
  CHECK(cudaMemcpy(got3.data(), dOut, 32 * 4, cudaMemcpyDeviceToHost));
  EXPECT_EQ_BYTES(got3.data(), want3.data(), 32 * 4, "ignore-src copies and cp.async mbarrier arrivals");
  return tf_test::summary("async_copy");
}

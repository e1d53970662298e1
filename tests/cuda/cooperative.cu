// Cooperative groups across the whole grid, as NVIDIA's reductionMultiBlockCG and conjugate-
// gradient samples use them: a grid sized from the occupancy API, launched with
// cudaLaunchCooperativeKernel, whose blocks meet at cg::this_grid().sync() (the grid barrier in
// the workspace the driver hands the kernel) between phases. Results are checked against the
// CPU. Then what the driver must refuse: a cooperative grid larger than can be resident
// (cudaErrorCooperativeLaunchTooLarge), and grid.sync() in an ordinary launch, which traps as
// on a GPU (cudaErrorLaunchFailure, sticky: it runs last).
#include <cooperative_groups.h>
#include <cooperative_groups/reduce.h>

#include <vector>

#include "check.h"

namespace cg = cooperative_groups;

// Sum of in[0..n) into *out: each block reduces its grid-stride share with warp tiles
// (cg::reduce over thread_block_tile<32>), block 0 adds the per-block partials after the grid
// barrier. Then every thread scales its elements by the total (a second phase that needs the
// first finished everywhere), and the grid syncs again before block 0 writes a checksum of
// the scaled data.
__global__ void reduceScale(const float* in, float* partial, float* scaled, double* out, int n,
                            int* info) {
  cg::grid_group grid = cg::this_grid();
  cg::thread_block block = cg::this_thread_block();
  cg::thread_block_tile<32> warp = cg::tiled_partition<32>(block);
  __shared__ float warpSums[32];

  float s = 0;
  for (unsigned long long i = grid.thread_rank(); i < (unsigned long long)n; i += grid.size()) s += in[i];
  float w = cg::reduce(warp, s, cg::plus<float>());
  if (warp.thread_rank() == 0) warpSums[warp.meta_group_rank()] = w;
  block.sync();
  if (block.thread_rank() == 0) {
    float b = 0;
    for (unsigned k = 0; k < warp.meta_group_size(); ++k) b += warpSums[k];
    partial[blockIdx.x] = b;
  }
  grid.sync();
  if (grid.thread_rank() == 0) {
    double total = 0;
    for (unsigned b = 0; b < gridDim.x; ++b) total += partial[b];
    out[0] = total;
    info[0] = grid.is_valid();
    info[1] = (int)grid.size();
    info[2] = (int)grid.num_blocks();
  }
  grid.sync();
  const float total = (float)out[0];
  for (unsigned long long i = grid.thread_rank(); i < (unsigned long long)n; i += grid.size())
    scaled[i] = in[i] / total;
  grid.sync();
  if (grid.thread_rank() == 0) {
    double c = 0;
    for (int i = 0; i < n; ++i) c += scaled[i] * (i % 7 + 1);
    out[1] = c;
  }
}

// Iterations of a 1-D heat stencil, one grid barrier per step (the double-buffered pattern of
// the cooperative Jacobi solvers): a missing or leaky barrier reads a neighbour's old or
// half-written value, and the result differs from the CPU's.
__global__ void stencil(float* a, float* b, int n, int steps) {
  cg::grid_group grid = cg::this_grid();
  for (int s = 0; s < steps; ++s) {
    const float* src = (s & 1) ? b : a;
    float* dst = (s & 1) ? a : b;
    for (unsigned long long i = grid.thread_rank(); i < (unsigned long long)n; i += grid.size()) {
      float l = i > 0 ? src[i - 1] : src[i];
      float r = i + 1 < (unsigned long long)n ? src[i + 1] : src[i];
      dst[i] = 0.25f * l + 0.5f * src[i] + 0.25f * r;
    }
    grid.sync();
  }
}

int main() {
  CHECK(cudaSetDevice(0));
  TF_CHECK_VGPU();
  int coop = 0, sms = 0;
  CHECK(cudaDeviceGetAttribute(&coop, cudaDevAttrCooperativeLaunch, 0));
  CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0));
  REQUIRE(coop == 1);

  // The grid the samples launch: as many blocks as can be resident at once. On the soft GPU's
  // many SMs that is a lot of CTAs for two cores, so use a slice of it: still many more blocks
  // than worker threads, all of which must be resident for the barrier to release.
  const int threads = 128;
  int perSm = 0;
  CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&perSm, reduceScale, threads, 0));
  REQUIRE(perSm >= 1);
  const int maxBlocks = perSm * sms;
  // Samples size their grids from this: every block size the kernel accepts must fit an SM at
  // least once (the PTX declares hundreds of virtual registers; counted as such, a 1024-thread
  // block would fit nowhere and the grid would be empty).
  int perSmBig = 0;
  CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&perSmBig, reduceScale, 1024, 0));
  EXPECT_TRUE(perSmBig >= 1);
  cudaFuncAttributes fa;
  CHECK(cudaFuncGetAttributes(&fa, reduceScale));
  EXPECT_TRUE(fa.numRegs >= 16 && fa.numRegs <= 64);
  EXPECT_EQ_INT(fa.maxThreadsPerBlock, 1024);
  const int blocks = maxBlocks < 24 ? maxBlocks : 24;

  const int n = 100003;
  std::vector<float> in(n);
  tf_test::Rng rng(7);
  for (auto& v : in) v = (float)(rng.next() % 1000) / 100.0f + 0.01f;
  float *dIn, *dPartial, *dScaled;
  double* dOut;
  int* dInfo;
  CHECK(cudaMalloc(&dIn, n * sizeof(float)));
  CHECK(cudaMalloc(&dPartial, blocks * sizeof(float)));
  CHECK(cudaMalloc(&dScaled, n * sizeof(float)));
  CHECK(cudaMalloc(&dOut, 2 * sizeof(double)));
  CHECK(cudaMalloc(&dInfo, 3 * sizeof(int)));
  CHECK(cudaMemset(dInfo, 0xff, 3 * sizeof(int)));
  CHECK(cudaMemcpy(dIn, in.data(), n * sizeof(float), cudaMemcpyHostToDevice));
  int nArg = n;
  void* args[] = {&dIn, &dPartial, &dScaled, &dOut, &nArg, &dInfo};
  CHECK(cudaLaunchCooperativeKernel((void*)reduceScale, dim3(blocks), dim3(threads), args, 0, 0));
  CHECK(cudaDeviceSynchronize());

  double out[2];
  int info[3];
  CHECK(cudaMemcpy(out, dOut, sizeof out, cudaMemcpyDeviceToHost));
  CHECK(cudaMemcpy(info, dInfo, sizeof info, cudaMemcpyDeviceToHost));
  double total = 0;
  for (float v : in) total += v;
  EXPECT_TRUE(std::abs(out[0] - total) <= total * 1e-5);
  EXPECT_EQ_INT(info[0], 1);
  EXPECT_EQ_INT(info[1], blocks * threads);
  EXPECT_EQ_INT(info[2], blocks);
  std::vector<float> scaled(n);
  CHECK(cudaMemcpy(scaled.data(), dScaled, n * sizeof(float), cudaMemcpyDeviceToHost));
  const float ftotal = (float)out[0];
  double check = 0;
  int wrong = 0;
  for (int i = 0; i < n; ++i) {
    wrong += scaled[i] != in[i] / ftotal;
    check += scaled[i] * (i % 7 + 1);
  }
  EXPECT_EQ_INT(wrong, 0);
  EXPECT_TRUE(std::abs(out[1] - check) <= std::abs(check) * 1e-9);
  std::printf("reduce: %d blocks of %d (of %d resident), sum %.3f (CPU %.3f)\n", blocks, threads,
              maxBlocks, out[0], total);

  // The stencil: 40 grid barriers, checked bit for bit (same float operations, same order).
  const int m = 4096, steps = 40;
  std::vector<float> a(m), b(m);
  for (int i = 0; i < m; ++i) a[i] = (i % 97 == 0) ? 100.0f : (float)(i % 5);
  float *dA, *dB;
  CHECK(cudaMalloc(&dA, m * sizeof(float)));
  CHECK(cudaMalloc(&dB, m * sizeof(float)));
  CHECK(cudaMemcpy(dA, a.data(), m * sizeof(float), cudaMemcpyHostToDevice));
  int mArg = m, stepsArg = steps;
  void* sargs[] = {&dA, &dB, &mArg, &stepsArg};
  const int sblocks = 9; // fewer threads than elements: each thread has several
  CHECK(cudaLaunchCooperativeKernel((void*)stencil, dim3(sblocks), dim3(64), sargs, 0, 0));
  CHECK(cudaDeviceSynchronize());
  for (int s = 0; s < steps; ++s) {
    const std::vector<float>& src = (s & 1) ? b : a;
    std::vector<float>& dst = (s & 1) ? a : b;
    for (int i = 0; i < m; ++i) {
      float l = i > 0 ? src[i - 1] : src[i];
      float r = i + 1 < m ? src[i + 1] : src[i];
      dst[i] = 0.25f * l + 0.5f * src[i] + 0.25f * r;
    }
  }
  std::vector<float> got(m);
  CHECK(cudaMemcpy(got.data(), (steps & 1) ? dB : dA, m * sizeof(float), cudaMemcpyDeviceToHost));
  EXPECT_EQ_BYTES(got.data(), ((steps & 1) ? b : a).data(), m * sizeof(float), "stencil after 40 grid syncs");

  // A cooperative grid that cannot all be resident at once is refused before it runs.
  EXPECT_ERR(cudaLaunchCooperativeKernel((void*)reduceScale, dim3(maxBlocks + 1), dim3(threads), args, 0, 0),
             cudaErrorCooperativeLaunchTooLarge);
  (void)cudaGetLastError();
  CHECK(cudaDeviceSynchronize()); // the refusal left the context usable

  // grid.sync() outside a cooperative launch has no grid workspace: the kernel traps, as on a
  // GPU, and the error is sticky, so this runs last.
  reduceScale<<<2, threads>>>(dIn, dPartial, dScaled, dOut, n, dInfo);
  EXPECT_ERR(cudaDeviceSynchronize(), cudaErrorLaunchFailure);
  return tf_test::summary("cooperative");
}

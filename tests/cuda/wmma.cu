// Tensor-core matrix multiply through nvcuda::wmma (the PTX wmma.load/mma/store family), as
// NVIDIA's simpleTensorCoreGEMM, cudaTensorCoreGemm, tf32TensorCoreGemm, bf16TensorCoreGemm,
// immaTensorCoreGemm and dmmaTensorCoreGemm samples use it, checked against the CPU:
//  - a GEMM D = alpha*A*B + beta*C over many warps and blocks (half in, float accumulate);
//  - one tile per type and shape: half with float and half accumulators (m16n16k16, m32n8k16,
//    m8n32k16, both operand layouts, C row- and column-major), bf16, tf32 (m16n16k8 with
//    wmma::__float_to_tf32), s8/u8 to s32, f64 (m8n8k4);
//  - a fragment held in shared memory, and element-wise work on accumulator fragments.
// Inputs are small multiples of 1/4 (integers for 8-bit), exact in every input type, so every
// product and partial sum is exact and the tiles must match the CPU bit for bit; the GEMM and
// the tf32 rounding case use arbitrary values and a tolerance. Sub-byte types (u4/s4/b1) are
// not supported: their kernel is refused with cudaErrorNotSupported, and the rest still runs.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <mma.h>

#include <cmath>
#include <initializer_list>
#include <type_traits>
#include <vector>

#include "check.h"

using namespace nvcuda;

// One warp: D (row-major) = A * B + C.
template <int M, int N, int K, class TIn, class TFrag, class TAcc, class LA, class LB>
__global__ void tile(const TIn* a, const TIn* b, const TAcc* c, TAcc* d, bool cColMajor) {
  wmma::fragment<wmma::matrix_a, M, N, K, TFrag, LA> fa;
  wmma::fragment<wmma::matrix_b, M, N, K, TFrag, LB> fb;
  wmma::fragment<wmma::accumulator, M, N, K, TAcc> fc;
  wmma::load_matrix_sync(fa, a, std::is_same<LA, wmma::row_major>::value ? K : M);
  wmma::load_matrix_sync(fb, b, std::is_same<LB, wmma::row_major>::value ? N : K);
  wmma::load_matrix_sync(fc, c, cColMajor ? M : N, cColMajor ? wmma::mem_col_major : wmma::mem_row_major);
  if constexpr (std::is_same<TFrag, wmma::precision::tf32>::value) {
    for (int i = 0; i < fa.num_elements; ++i) fa.x[i] = wmma::__float_to_tf32(fa.x[i]);
    for (int i = 0; i < fb.num_elements; ++i) fb.x[i] = wmma::__float_to_tf32(fb.x[i]);
  }
  wmma::mma_sync(fc, fa, fb, fc);
  wmma::store_matrix_sync(d, fc, N, wmma::mem_row_major);
}

// simpleTensorCoreGEMM's kernel: a (m x k, column-major) times b (k x n, column-major), c and d
// column-major; each warp one 16x16 tile of the output, blocks of 4x4 warps (128x4 threads).
__global__ void gemm(const half* a, const half* b, const float* c, float* d, int m, int n, int k,
                     float alpha, float beta) {
  const int warpM = (blockIdx.x * blockDim.x + threadIdx.x) / warpSize;
  const int warpN = blockIdx.y * blockDim.y + threadIdx.y;
  wmma::fragment<wmma::matrix_a, 16, 16, 16, half, wmma::col_major> fa;
  wmma::fragment<wmma::matrix_b, 16, 16, 16, half, wmma::col_major> fb;
  wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc, fc;
  wmma::fill_fragment(acc, 0.0f);
  const int row = warpM * 16, col = warpN * 16;
  if (row >= m || col >= n) return;
  for (int i = 0; i < k; i += 16) {
    wmma::load_matrix_sync(fa, a + row + i * m, m);
    wmma::load_matrix_sync(fb, b + i + col * k, k);
    wmma::mma_sync(acc, fa, fb, acc);
  }
  wmma::load_matrix_sync(fc, c + row + col * m, m, wmma::mem_col_major);
  for (int i = 0; i < fc.num_elements; ++i) fc.x[i] = alpha * acc.x[i] + beta * fc.x[i];
  wmma::store_matrix_sync(d + row + col * m, fc, m, wmma::mem_col_major);
}

// The accumulator goes through shared memory (32-bit shared addresses, as the samples' staging
// of C does) and back: D = (A*B + C) computed, stored to shared, reloaded, doubled, stored.
__global__ void viaShared(const half* a, const half* b, const float* c, float* d) {
  __shared__ float stage[16 * 16];
  wmma::fragment<wmma::matrix_a, 16, 16, 16, half, wmma::row_major> fa;
  wmma::fragment<wmma::matrix_b, 16, 16, 16, half, wmma::row_major> fb;
  wmma::fragment<wmma::accumulator, 16, 16, 16, float> fc;
  wmma::load_matrix_sync(fa, a, 16);
  wmma::load_matrix_sync(fb, b, 16);
  wmma::load_matrix_sync(fc, c, 16, wmma::mem_row_major);
  wmma::mma_sync(fc, fa, fb, fc);
  wmma::store_matrix_sync(stage, fc, 16, wmma::mem_col_major);
  __syncwarp();
  wmma::fill_fragment(fc, -1.0f);
  wmma::load_matrix_sync(fc, stage, 16, wmma::mem_col_major);
  for (int i = 0; i < fc.num_elements; ++i) fc.x[i] *= 2.0f;
  wmma::store_matrix_sync(d, fc, 16, wmma::mem_row_major);
}

// 4-bit integers (wmma::experimental): not supported by the soft GPU, which says so
// ("wmma on sub-byte elements (.u4) is not supported") and refuses the launch.
__global__ void subByte(const void* a, const void* b, int* d) {
  using namespace wmma::experimental;
  wmma::fragment<wmma::matrix_a, 8, 8, 32, precision::u4, wmma::row_major> fa;
  wmma::fragment<wmma::matrix_b, 8, 8, 32, precision::u4, wmma::col_major> fb;
  wmma::fragment<wmma::accumulator, 8, 8, 32, int> fc;
  wmma::fill_fragment(fc, 0);
  wmma::load_matrix_sync(fa, a, 32);
  wmma::load_matrix_sync(fb, b, 32);
  wmma::mma_sync(fc, fa, fb, fc);
  wmma::store_matrix_sync(d, fc, 8, wmma::mem_row_major);
}

namespace {

template <class T> T toT(double v) {
  if constexpr (std::is_same<T, half>::value) return __float2half((float)v);
  else if constexpr (std::is_same<T, __nv_bfloat16>::value) return __float2bfloat16((float)v);
  else return static_cast<T>(v);
}
template <class T> double fromT(T v) {
  if constexpr (std::is_same<T, half>::value) return __half2float(v);
  else if constexpr (std::is_same<T, __nv_bfloat16>::value) return __bfloat162float(v);
  else return static_cast<double>(v);
}
// What cvt.rna.tf32.f32 gives: 10 mantissa bits, ties away from zero.
float tf32(float x) {
  uint32_t u;
  std::memcpy(&u, &x, 4);
  u = (u + 0x1000u) & 0xFFFFE000u;
  std::memcpy(&x, &u, 4);
  return x;
}

// A result buffer filled with a pattern no result has, so an element never written shows.
template <class T> T* output(size_t n) {
  T* d = nullptr;
  CHECK(cudaMalloc(&d, n * sizeof(T)));
  CHECK(cudaMemset(d, 0xff, n * sizeof(T)));
  return d;
}

void release(std::initializer_list<void*> buffers) {
  for (void* p : buffers) CHECK(cudaFree(p));
}

template <class T> T* upload(const std::vector<T>& h) {
  T* d = nullptr;
  CHECK(cudaMalloc(&d, h.size() * sizeof(T)));
  CHECK(cudaMemcpy(d, h.data(), h.size() * sizeof(T), cudaMemcpyHostToDevice));
  return d;
}

// Runs tile<...> once and compares with the CPU: exactly when `arbitrary` is false (inputs are
// small multiples of 1/4, or integers), else within a relative tolerance for float sums.
template <int M, int N, int K, class TIn, class TFrag, class TAcc, class LA, class LB>
void runTile(const char* what, tf_test::Rng& rng, bool cColMajor, bool arbitrary = false) {
  constexpr bool kRowA = std::is_same<LA, wmma::row_major>::value;
  constexpr bool kRowB = std::is_same<LB, wmma::row_major>::value;
  constexpr bool kInt = std::is_integral<TIn>::value;
  auto value = [&]() -> double {
    if (arbitrary) return (double)(int64_t)(rng.next() % 2000001 - 1000000) / 3.0e5;
    if (kInt) return std::is_signed<TIn>::value ? (double)((int)(rng.next() % 41) - 20) : (double)(rng.next() % 40);
    return (double)((int)(rng.next() % 17) - 8) * 0.25;
  };
  std::vector<TIn> a(M * K), b(K * N);
  std::vector<TAcc> c(M * N);
  for (auto& v : a) v = toT<TIn>(value());
  for (auto& v : b) v = toT<TIn>(value());
  for (auto& v : c) v = toT<TAcc>(kInt ? (double)((int)(rng.next() % 201) - 100) : (double)((int)(rng.next() % 9) - 4) * 0.5);
  auto in = [](TIn v) {
    double x = fromT(v);
    return std::is_same<TFrag, wmma::precision::tf32>::value ? (double)tf32((float)x) : x;
  };
  std::vector<double> want(M * N);
  double worst = 0; // largest sum of |products| (the scale of a float rounding error)
  for (int i = 0; i < M; ++i)
    for (int j = 0; j < N; ++j) {
      double s = fromT(c[cColMajor ? j * M + i : i * N + j]), mag = std::abs(s);
      for (int k = 0; k < K; ++k) {
        double p = in(a[kRowA ? i * K + k : k * M + i]) * in(b[kRowB ? k * N + j : j * K + k]);
        s += p;
        mag += std::abs(p);
      }
      want[i * N + j] = s;
      worst = std::max(worst, mag);
    }
  TIn* da = upload(a);
  TIn* db = upload(b);
  TAcc* dc = upload(c);
  TAcc* dd = output<TAcc>(M * N);
  tile<M, N, K, TIn, TFrag, TAcc, LA, LB><<<1, 32>>>(da, db, dc, dd, cColMajor);
  CHECK(cudaGetLastError());
  CHECK(cudaDeviceSynchronize());
  std::vector<TAcc> got(M * N);
  CHECK(cudaMemcpy(got.data(), dd, M * N * sizeof(TAcc), cudaMemcpyDeviceToHost));
  const double tol = arbitrary ? worst * 1e-6 : 0;
  int bad = 0, first = -1;
  for (int i = 0; i < M * N; ++i)
    if (!(std::abs(fromT(got[i]) - want[i]) <= tol)) {
      ++bad;
      if (first < 0) first = i;
    }
  if (bad)
    std::fprintf(stderr, "%s: %d of %d elements differ; first [%d][%d] = %.9g, want %.9g\n", what, bad, M * N,
                 first / N, first % N, fromT(got[first]), want[first]);
  EXPECT_EQ_INT(bad, 0);
  release({da, db, dc, dd});
}

void runGemm(tf_test::Rng& rng) {
  const int m = 64, n = 48, k = 64; // 4 x 3 warp tiles, over 2 x 1 blocks of 4 x 4 warps
  const float alpha = 1.5f, beta = -0.75f;
  std::vector<half> a(m * k), b(k * n);
  std::vector<float> c(m * n);
  for (auto& v : a) v = __float2half((float)(int64_t)(rng.next() % 20001 - 10000) / 10000.0f);
  for (auto& v : b) v = __float2half((float)(int64_t)(rng.next() % 20001 - 10000) / 10000.0f);
  for (auto& v : c) v = (float)(int64_t)(rng.next() % 20001 - 10000) / 10000.0f;
  half* da = upload(a);
  half* db = upload(b);
  float* dc = upload(c);
  float* dd = output<float>(m * n);
  dim3 block(128, 4), grid((m + (16 * 128 / 32) - 1) / (16 * 128 / 32), (n + 16 * 4 - 1) / (16 * 4));
  gemm<<<grid, block>>>(da, db, dc, dd, m, n, k, alpha, beta);
  CHECK(cudaGetLastError());
  CHECK(cudaDeviceSynchronize());
  std::vector<float> got(m * n);
  CHECK(cudaMemcpy(got.data(), dd, m * n * sizeof(float), cudaMemcpyDeviceToHost));
  int bad = 0;
  for (int i = 0; i < m; ++i)
    for (int j = 0; j < n; ++j) {
      double s = 0, mag = 0;
      for (int x = 0; x < k; ++x) {
        double p = (double)__half2float(a[i + x * m]) * __half2float(b[x + j * k]);
        s += p;
        mag += std::abs(p);
      }
      const double want = alpha * s + beta * c[i + j * m];
      bad += !(std::abs(got[i + j * m] - want) <= 1e-5 * (alpha * mag + std::abs(beta * c[i + j * m])) + 1e-6);
    }
  if (bad) std::fprintf(stderr, "gemm: %d of %d elements differ\n", bad, m * n);
  EXPECT_EQ_INT(bad, 0);
  release({da, db, dc, dd});
}

void runViaShared(tf_test::Rng& rng) {
  std::vector<half> a(256), b(256);
  std::vector<float> c(256);
  for (auto& v : a) v = __float2half((float)((int)(rng.next() % 9) - 4));
  for (auto& v : b) v = __float2half((float)((int)(rng.next() % 9) - 4) * 0.5f);
  for (auto& v : c) v = (float)((int)(rng.next() % 9) - 4);
  std::vector<float> want(256);
  for (int i = 0; i < 16; ++i)
    for (int j = 0; j < 16; ++j) {
      float s = c[i * 16 + j];
      for (int k = 0; k < 16; ++k) s += __half2float(a[i * 16 + k]) * __half2float(b[k * 16 + j]);
      want[i * 16 + j] = 2 * s;
    }
  half* da = upload(a);
  half* db = upload(b);
  float* dc = upload(c);
  float* dd = output<float>(256);
  viaShared<<<1, 32>>>(da, db, dc, dd);
  CHECK(cudaGetLastError());
  CHECK(cudaDeviceSynchronize());
  std::vector<float> got(256);
  CHECK(cudaMemcpy(got.data(), dd, 256 * sizeof(float), cudaMemcpyDeviceToHost));
  EXPECT_EQ_BYTES(got.data(), want.data(), 256 * sizeof(float), "accumulator through shared memory");
  release({da, db, dc, dd});
}

} // namespace

int main() {
  CHECK(cudaSetDevice(0));
  TF_CHECK_VGPU();
  tf_test::Rng rng(2024);
  using R = wmma::row_major;
  using C = wmma::col_major;
  runTile<16, 16, 16, half, half, float, R, C>("f16->f32 m16n16k16 row.col", rng, false);
  runTile<16, 16, 16, half, half, float, C, R>("f16->f32 m16n16k16 col.row, C col-major", rng, true);
  runTile<32, 8, 16, half, half, float, R, R>("f16->f32 m32n8k16", rng, false);
  runTile<8, 32, 16, half, half, float, C, C>("f16->f32 m8n32k16", rng, true);
  runTile<16, 16, 16, half, half, half, R, C>("f16->f16 m16n16k16", rng, false);
  runTile<32, 8, 16, half, half, half, C, R>("f16->f16 m32n8k16", rng, true);
  runTile<16, 16, 16, __nv_bfloat16, __nv_bfloat16, float, R, C>("bf16->f32 m16n16k16", rng, false);
  runTile<8, 32, 16, __nv_bfloat16, __nv_bfloat16, float, R, R>("bf16->f32 m8n32k16", rng, true);
  runTile<16, 16, 8, float, wmma::precision::tf32, float, R, C>("tf32->f32 m16n16k8", rng, false);
  runTile<16, 16, 8, float, wmma::precision::tf32, float, C, R>("tf32->f32 m16n16k8 rounded inputs", rng, true, true);
  runTile<16, 16, 16, signed char, signed char, int, R, C>("s8->s32 m16n16k16", rng, false);
  runTile<32, 8, 16, unsigned char, unsigned char, int, R, C>("u8->s32 m32n8k16", rng, true);
  runTile<8, 8, 4, double, double, double, R, C>("f64 m8n8k4", rng, false);
  runTile<8, 8, 4, double, double, double, C, R>("f64 m8n8k4 arbitrary", rng, true, true);
  runGemm(rng);
  runViaShared(rng);

  // Unsupported: refused at launch with a clear error, nothing run; the context stays usable.
  int* dd = nullptr;
  CHECK(cudaMalloc(&dd, 64 * sizeof(int)));
  CHECK(cudaMemset(dd, 0x5a, 64 * sizeof(int)));
  subByte<<<1, 32>>>(dd, dd, dd);
  EXPECT_ERR(cudaGetLastError(), cudaErrorNotSupported);
  CHECK(cudaDeviceSynchronize());
  std::vector<int> untouched(64), want(64, 0x5a5a5a5a);
  CHECK(cudaMemcpy(untouched.data(), dd, 64 * sizeof(int), cudaMemcpyDeviceToHost));
  EXPECT_EQ_BYTES(untouched.data(), want.data(), 64 * sizeof(int), "memory after the refused launch");
  runTile<16, 16, 16, half, half, float, R, C>("f16->f32 after the refusal", rng, false);
  return tf_test::summary("wmma");
}

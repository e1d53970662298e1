// Tensor-core style kernels: the wmma API and mma.sync through inline PTX.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <mma.h>

using namespace nvcuda;

// C[16x16] = A[16x16] (row-major) * B[16x16] (col-major) + C, f32 accumulate; one warp per tile
extern "C" __global__ void wmmaF16(const half* a, const half* b, float* c, int tiles) {
  int tile = blockIdx.x;
  if (tile >= tiles) return;
  wmma::fragment<wmma::matrix_a, 16, 16, 16, half, wmma::row_major> fa;
  wmma::fragment<wmma::matrix_b, 16, 16, 16, half, wmma::col_major> fb;
  wmma::fragment<wmma::accumulator, 16, 16, 16, float> fc;
  wmma::load_matrix_sync(fc, c + tile * 256, 16, wmma::mem_row_major);
  wmma::load_matrix_sync(fa, a + tile * 256, 16);
  wmma::load_matrix_sync(fb, b + tile * 256, 16);
  wmma::mma_sync(fc, fa, fb, fc);
  for (int i = 0; i < fc.num_elements; ++i) fc.x[i] *= 2.0f;
  wmma::store_matrix_sync(c + tile * 256, fc, 16, wmma::mem_col_major);
}

// bf16 inputs from shared memory, f32 result
extern "C" __global__ void wmmaBf16(const __nv_bfloat16* a, const __nv_bfloat16* b, float* c) {
  __shared__ __nv_bfloat16 sa[256], sb[256];
  for (int i = threadIdx.x; i < 256; i += 32) {
    sa[i] = a[i];
    sb[i] = b[i];
  }
  __syncwarp();
  wmma::fragment<wmma::matrix_a, 16, 16, 16, __nv_bfloat16, wmma::col_major> fa;
  wmma::fragment<wmma::matrix_b, 16, 16, 16, __nv_bfloat16, wmma::row_major> fb;
  wmma::fragment<wmma::accumulator, 16, 16, 16, float> fc;
  wmma::fill_fragment(fc, 0.5f);
  wmma::load_matrix_sync(fa, sa, 16);
  wmma::load_matrix_sync(fb, sb, 16);
  wmma::mma_sync(fc, fa, fb, fc);
  wmma::store_matrix_sync(c, fc, 16, wmma::mem_row_major);
}

// accumulator loaded from and stored to shared memory: nvcc addresses shared with a 32-bit
// register here (wmma.load.c...shared.f32 [%r], as NVIDIA's tensor-core GEMM sample does)
extern "C" __global__ void wmmaSharedAcc(const half* a, const half* b, const float* c, float* d) {
  __shared__ float sc[2][256];
  for (int i = threadIdx.x; i < 256; i += 32) sc[1][i] = c[i];
  __syncwarp();
  wmma::fragment<wmma::matrix_a, 16, 16, 16, half, wmma::row_major> fa;
  wmma::fragment<wmma::matrix_b, 16, 16, 16, half, wmma::col_major> fb;
  wmma::fragment<wmma::accumulator, 16, 16, 16, float> fc;
  wmma::load_matrix_sync(fc, sc[1], 16, wmma::mem_row_major);
  wmma::load_matrix_sync(fa, a, 16);
  wmma::load_matrix_sync(fb, b, 16);
  wmma::mma_sync(fc, fa, fb, fc);
  wmma::store_matrix_sync(sc[0], fc, 16, wmma::mem_col_major);
  __syncwarp();
  for (int i = threadIdx.x; i < 256; i += 32) d[i] = sc[0][i];
}

// mma.sync.m16n8k16 with fragments laid out as the PTX ISA documents them
extern "C" __global__ void mmaSync(const half* A, const half* B, const float* C, float* D) {
  unsigned lane = threadIdx.x, g = lane >> 2, t = lane & 3;
  half av[8], bv[4];
  for (int i = 0; i < 8; ++i) {
    int row = g + ((i >> 1) & 1) * 8, col = t * 2 + (i & 1) + ((i >> 2) & 1) * 8;
    av[i] = A[row * 16 + col];
  }
  for (int i = 0; i < 4; ++i) {
    int row = t * 2 + (i & 1) + ((i >> 1) & 1) * 8;
    bv[i] = B[row * 8 + g];
  }
  float cv[4], dv[4];
  for (int i = 0; i < 4; ++i) cv[i] = C[(g + (i >> 1) * 8) * 8 + t * 2 + (i & 1)];
  unsigned a[4], b[2];
  for (int i = 0; i < 4; ++i) a[i] = __half_as_ushort(av[2 * i]) | (unsigned(__half_as_ushort(av[2 * i + 1])) << 16);
  for (int i = 0; i < 2; ++i) b[i] = __half_as_ushort(bv[2 * i]) | (unsigned(__half_as_ushort(bv[2 * i + 1])) << 16);
  asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%10,%11,%12,%13};"
               : "=f"(dv[0]), "=f"(dv[1]), "=f"(dv[2]), "=f"(dv[3])
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]), "f"(cv[0]), "f"(cv[1]),
                 "f"(cv[2]), "f"(cv[3]));
  for (int i = 0; i < 4; ++i) D[(g + (i >> 1) * 8) * 8 + t * 2 + (i & 1)] = dv[i];
}

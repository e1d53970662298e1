// Kernels compiled to PTX at build time and run by the PTX engine in kernels_test.cpp.
#include <cstdint>
#include <cstdio>

#include <cooperative_groups.h>
#include <cuda/barrier>

extern "C" __global__ void vecAdd(const float* a, const float* b, float* c, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) c[i] = a[i] + b[i];
}

extern "C" __global__ void saxpy(int n, float a, const float* x, float* y) {
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += blockDim.x * gridDim.x)
    y[i] = a * x[i] + y[i];
}

extern "C" __global__ void reduceShared(const float* in, float* out, int n) {
  __shared__ float s[256];
  int t = threadIdx.x;
  int i = blockIdx.x * blockDim.x + t;
  s[t] = i < n ? in[i] : 0.0f;
  __syncthreads();
  for (int k = blockDim.x / 2; k > 0; k >>= 1) {
    if (t < k) s[t] += s[t + k];
    __syncthreads();
  }
  if (t == 0) out[blockIdx.x] = s[0];
}

extern "C" __global__ void warpReduceScan(const int* in, int* sums, int* scan) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  int v = in[i];
  int total = v;
  for (int o = 16; o > 0; o >>= 1) total += __shfl_xor_sync(0xffffffffu, total, o);
  int x = v;
  int lane = threadIdx.x & 31;
  for (int o = 1; o < 32; o <<= 1) {
    int y = __shfl_up_sync(0xffffffffu, x, o);
    if (lane >= o) x += y;
  }
  scan[i] = x;
  int down = v;
  for (int o = 16; o > 0; o >>= 1) down += __shfl_down_sync(0xffffffffu, down, o);
  int bcast = __shfl_sync(0xffffffffu, down, 0);
  if (lane == 0) sums[i / 32] = total;
  if (bcast != total) sums[i / 32] = -1;
}

#define TILE 16
extern "C" __global__ void matmulTiled(const float* A, const float* B, float* C, int M, int N, int K) {
  __shared__ float As[TILE][TILE];
  __shared__ float Bs[TILE][TILE];
  int row = blockIdx.y * TILE + threadIdx.y;
  int col = blockIdx.x * TILE + threadIdx.x;
  float acc = 0;
  for (int t = 0; t < (K + TILE - 1) / TILE; ++t) {
    int ac = t * TILE + threadIdx.x, br = t * TILE + threadIdx.y;
    As[threadIdx.y][threadIdx.x] = (row < M && ac < K) ? A[row * K + ac] : 0.0f;
    Bs[threadIdx.y][threadIdx.x] = (br < K && col < N) ? B[br * N + col] : 0.0f;
    __syncthreads();
    for (int k = 0; k < TILE; ++k) acc += As[threadIdx.y][k] * Bs[k][threadIdx.x];
    __syncthreads();
  }
  if (row < M && col < N) C[row * N + col] = acc;
}

extern "C" __global__ void histogram(const unsigned char* data, int n, unsigned* bins) {
  __shared__ unsigned local[64];
  for (int i = threadIdx.x; i < 64; i += blockDim.x) local[i] = 0;
  __syncthreads();
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += blockDim.x * gridDim.x)
    atomicAdd(&local[data[i] & 63], 1u);
  __syncthreads();
  for (int i = threadIdx.x; i < 64; i += blockDim.x) atomicAdd(&bins[i], local[i]);
}

extern "C" __global__ void atomicsMisc(int* vals, unsigned* u, float* f, double* d, const int* in) {
  int v = in[blockIdx.x * blockDim.x + threadIdx.x];
  atomicMax(&vals[0], v);
  atomicMin(&vals[1], v);
  atomicAnd(&vals[2], v | 0x0F0F0F0F);
  atomicOr(&vals[3], v & 0x00FF00FF);
  atomicXor(&vals[4], v);
  atomicSub(&vals[5], 3);
  atomicInc(&u[0], 100u);
  atomicDec(&u[1], 50u);
  int old = atomicCAS(&vals[6], 0, 1);
  if (old == 0) atomicAdd(&vals[7], 1);  // exactly one thread wins
  atomicExch(&vals[8], 42);
  atomicAdd(f, 0.5f);
  atomicAdd(d, 0.25);
  atomicAdd(reinterpret_cast<unsigned long long*>(&u[2]), 1ull);
}

extern "C" __global__ void bitonicSort(int* data) {
  extern __shared__ int sh[];
  unsigned t = threadIdx.x;
  unsigned n = blockDim.x;
  sh[t] = data[blockIdx.x * n + t];
  __syncthreads();
  for (unsigned k = 2; k <= n; k <<= 1) {
    for (unsigned j = k >> 1; j > 0; j >>= 1) {
      unsigned ixj = t ^ j;
      if (ixj > t) {
        bool up = (t & k) == 0;
        int a = sh[t], b = sh[ixj];
        if ((a > b) == up) {
          sh[t] = b;
          sh[ixj] = a;
        }
      }
      __syncthreads();
    }
  }
  data[blockIdx.x * n + t] = sh[t];
}

// Collatz steps: data-dependent loop trip counts per lane, plus an early exit.
extern "C" __global__ void divergent(const unsigned* in, unsigned* out, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n) return;
  unsigned x = in[i];
  if (x == 0) {
    out[i] = 0xFFFFFFFFu;
    return;
  }
  unsigned steps = 0;
  while (x != 1) {
    if (x & 1) {
      x = 3 * x + 1;
    } else {
      x >>= 1;
    }
    ++steps;
    if (steps > 1000) break;
  }
  switch (i % 4) {
  case 0: steps += 1; break;
  case 1: steps *= 2; break;
  case 2: if (steps > 10) steps -= 10; else return; break;
  default: break;
  }
  out[i] = steps;
}

__device__ __noinline__ float poly(float x, const float* coef, int n) {
  float r = 0;
  for (int k = n - 1; k >= 0; --k) r = r * x + coef[k];
  return r;
}
__device__ __noinline__ int fact(int n) { return n <= 1 ? 1 : n * fact(n - 1); }
__device__ __noinline__ void sortPair(int* a, int* b) {
  if (*a > *b) {
    int t = *a;
    *a = *b;
    *b = t;
  }
}

extern "C" __global__ void deviceCalls(const float* x, const float* coef, float* y, int* f, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n) return;
  y[i] = poly(x[i], coef, 4);
  int a = i % 7, b = (i * 3) % 5;
  sortPair(&a, &b);  // pointers to locals: generic local addresses
  f[i] = fact(i % 10) + a * 100 + b;
}

template <typename T, int SCALE> __device__ void scaleImpl(T* p, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) p[i] = p[i] * T(SCALE) + T(1);
}
extern "C" __global__ void scaleInt(int* p, int n) { scaleImpl<int, 3>(p, n); }
extern "C" __global__ void scaleDouble(double* p, int n) { scaleImpl<double, 5>(p, n); }
template <typename T> __global__ void addOne(T* p) { p[threadIdx.x] += T(1); }
template __global__ void addOne<float>(float*);
template __global__ void addOne<long long>(long long*);

extern "C" __global__ void dynShared(const float* in, float* out) {
  extern __shared__ float buf[];
  int t = threadIdx.x;
  buf[t] = in[blockIdx.x * blockDim.x + t];
  __syncthreads();
  out[blockIdx.x * blockDim.x + t] = buf[blockDim.x - 1 - t];
}

extern "C" __global__ void printer(int base) {
  if (threadIdx.x < 3)
    printf("tid %d base %d half %.2f str %s hex %x ll %lld\n", (int)threadIdx.x, base,
           threadIdx.x * 0.5, "ok", 255u, (long long)base * 1000000000ll);
}

extern "C" __global__ void mathF32(const float* x, float* out) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  float v = x[i];
  float* o = out + i * 12;
  o[0] = sinf(v);
  o[1] = cosf(v);
  o[2] = expf(v);
  o[3] = logf(fabsf(v) + 1.0f);
  o[4] = sqrtf(fabsf(v));
  o[5] = powf(fabsf(v), 1.5f);
  o[6] = tanhf(v);
  o[7] = atan2f(v, 0.5f);
  o[8] = v / (v * v + 1.0f);
  o[9] = rsqrtf(fabsf(v) + 1.0f);
  o[10] = fmaf(v, v, -1.0f);
  o[11] = floorf(v * 3.3f) + ceilf(v) + truncf(v * 7.1f) + rintf(v * 2.5f);
}

extern "C" __global__ void mathF64(const double* x, double* out) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  double v = x[i];
  double* o = out + i * 8;
  o[0] = sin(v);
  o[1] = cos(v);
  o[2] = exp(v);
  o[3] = log(fabs(v) + 1.0);
  o[4] = sqrt(fabs(v));
  o[5] = pow(fabs(v), 1.5);
  o[6] = v / (v * v + 1.0);
  o[7] = fma(v, v, -1.0);
}

extern "C" __global__ void intEdge(const int* a, const int* b, int* out) {
  int i = threadIdx.x;
  int x = a[i], y = b[i];
  unsigned ux = (unsigned)x, uy = (unsigned)y;
  int* o = out + i * 12;
  o[0] = y != 0 && !(x == INT32_MIN && y == -1) ? x / y : 0;
  o[1] = y != 0 && !(x == INT32_MIN && y == -1) ? x % y : 0;
  o[2] = uy != 0 ? (int)(ux / uy) : 0;
  o[3] = (int)(ux >> (uy & 31));
  o[4] = x >> (uy & 31);
  o[5] = __popc(x);
  o[6] = __clz(x);
  o[7] = (int)__brev(ux);
  o[8] = __mulhi(x, y);
  o[9] = (int)__umulhi(ux, uy);
  o[10] = __ffs(x);
  o[11] = (int)((long long)x * (long long)y >> 7);
}

extern "C" __global__ void outOfBounds(int* p, long long offset) { p[threadIdx.x + offset] = 1; }
extern "C" __global__ void trapper(int* p) {
  if (threadIdx.x == 5) __trap();
  p[threadIdx.x] = 1;
}

__constant__ float cscale[4] = {1.5f, 2.0f, -1.0f, 0.25f};
__device__ int gcounter = 100;
__device__ float gtable[8];
extern "C" __global__ void constGlobals(float* out) {
  int t = threadIdx.x;
  out[t] = cscale[t & 3] * gtable[t & 7] + gcounter;
  atomicAdd(&gcounter, 1);
}

extern "C" __global__ void votes(const int* in, unsigned* out) {
  int v = in[threadIdx.x];
  unsigned lane = threadIdx.x & 31;
  unsigned bal = __ballot_sync(0xffffffffu, v > 0);
  int all = __all_sync(0xffffffffu, v > -1000);
  int any = __any_sync(0xffffffffu, v > 90);
  unsigned act = 0;
  if (v & 1) act = __activemask();
  unsigned match = __match_any_sync(0xffffffffu, v & 3);
  int cnt = __syncthreads_count(v > 0);
  int rsum = __reduce_add_sync(0xffffffffu, v);
  unsigned* o = out + threadIdx.x * 8;
  o[0] = bal;
  o[1] = all;
  o[2] = any;
  o[3] = act;
  o[4] = match;
  o[5] = cnt;
  o[6] = rsum;
  o[7] = lane;
}

extern "C" __global__ void threeD(unsigned* out) {
  unsigned t = (threadIdx.z * blockDim.y + threadIdx.y) * blockDim.x + threadIdx.x;
  unsigned b = (blockIdx.z * gridDim.y + blockIdx.y) * gridDim.x + blockIdx.x;
  unsigned idx = b * blockDim.x * blockDim.y * blockDim.z + t;
  out[idx] = (threadIdx.x) | (threadIdx.y << 8) | (threadIdx.z << 16) | (blockIdx.x << 20) |
             (blockIdx.y << 24) | (blockIdx.z << 28);
}

struct Params {
  int a;
  double b;
  char c;
  float d[3];
};
extern "C" __global__ void structParam(Params p, char c2, double* out) {
  out[0] = p.a + p.b + p.c + p.d[0] + p.d[1] + p.d[2] + c2;
}

#pragma nv_diag_suppress static_var_with_dynamic_init
// cuda::barrier is an mbarrier in shared memory: arrive + (try_)wait loops.
extern "C" __global__ void splitBarrier(const int* in, int* out) {
  __shared__ cuda::barrier<cuda::thread_scope_block> bar;
  __shared__ int buf[256];
  if (threadIdx.x == 0) init(&bar, blockDim.x);
  __syncthreads();
  int t = threadIdx.x;
  for (int round = 0; round < 3; ++round) {
    buf[t] = in[blockIdx.x * blockDim.x + t] * (round + 1);
    bar.arrive_and_wait();
    int v = buf[(t + 1) % blockDim.x];
    bar.arrive_and_wait();
    out[(blockIdx.x * blockDim.x + t) * 3 + round] = v;
  }
}

// Grid-wide barrier (cooperative launch): every block publishes, syncs the grid, then reads a
// neighbour block's value; twice, to reuse the barrier.
extern "C" __global__ void gridSync(int* data, int* out) {
  namespace cg = cooperative_groups;
  cg::grid_group grid = cg::this_grid();
  int b = blockIdx.x, n = gridDim.x;
  if (threadIdx.x == 0) data[b] = b * 10 + 1;
  grid.sync();
  int v = data[(b + 1) % n];
  grid.sync();
  if (threadIdx.x == 0) data[b] = v * 2;
  grid.sync();
  out[b * blockDim.x + threadIdx.x] = data[(b + n - 1) % n] + v;
}

// Spins on a flag another warp of the same block sets (needs warps to yield in loops).
extern "C" __global__ void spinFlag(volatile int* flag, int* out) {
  if (threadIdx.x < 32) {
    while (*flag == 0) {
    }
    out[threadIdx.x] = *flag;
  } else if (threadIdx.x == 32) {
    *flag = 7;
  }
}

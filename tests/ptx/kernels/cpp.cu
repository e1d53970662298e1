// C++ features: virtual functions, function pointers, switch tables, CUB block algorithms,
// pointers to globals in initialisers.
#include <cub/cub.cuh>

struct Shape {
  __device__ virtual int area(int s) const { return s * s; }
};
struct Tri : Shape {
  __device__ int area(int s) const override { return s * s / 2; }
};
struct Line : Shape {
  __device__ int area(int) const override { return 0; }
};

extern "C" __global__ void virtualCalls(int* out) {
  Shape sq;
  Tri tr;
  Line ln;
  int t = threadIdx.x;
  const Shape* s = t % 3 == 0 ? &sq : t % 3 == 1 ? static_cast<const Shape*>(&tr) : &ln;
  out[t] = s->area(t);
}

__device__ __noinline__ int addOp(int a, int b) { return a + b; }
__device__ __noinline__ int mulOp(int a, int b) { return a * b; }
__device__ __noinline__ int subOp(int a, int b) { return a - b; }
__device__ int (*const kOps[3])(int, int) = {addOp, mulOp, subOp};
__device__ int gValue = 11;
__device__ int* gPtr = &gValue;

extern "C" __global__ void functionPointers(int* out, int sel) {
  int t = threadIdx.x;
  int (*f)(int, int) = kOps[(t + sel) % 3];
  out[t] = f(t, 3) + *gPtr;
}

extern "C" __global__ void switchTable(int* out, int k) {
  int r;
  switch ((threadIdx.x + k) % 9) {
  case 0: r = 5; break;
  case 1: r = 17; break;
  case 2: r = 2; break;
  case 3: r = 99; break;
  case 4: r = -4; break;
  case 5: r = 8; break;
  case 6: r = 1; break;
  case 7: r = 33; break;
  default: r = 0;
  }
  out[threadIdx.x] = r;
}

extern "C" __global__ void cubBlock(const int* in, int* scan, int* sum, int* sorted) {
  typedef cub::BlockReduce<int, 128> BR;
  typedef cub::BlockScan<int, 128> BS;
  typedef cub::BlockRadixSort<int, 128, 4> RS;
  __shared__ typename BR::TempStorage t1;
  __shared__ typename BS::TempStorage t2;
  __shared__ typename RS::TempStorage t3;
  int v = in[threadIdx.x];
  int s = BR(t1).Sum(v);
  int ex;
  BS(t2).ExclusiveSum(v, ex);
  scan[threadIdx.x] = ex;
  if (threadIdx.x == 0) *sum = s;
  int k[4];
  for (int j = 0; j < 4; ++j) k[j] = in[threadIdx.x * 4 + j];
  RS(t3).Sort(k);
  for (int j = 0; j < 4; ++j) sorted[threadIdx.x * 4 + j] = k[j];
}

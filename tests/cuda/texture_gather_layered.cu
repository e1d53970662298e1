// More of what the texture samples use, each fetch checked against the texel it must give,
// computed here by plain indexing:
//  - tex2Dgather (PTX tld4) of each channel, inside, across edges (clamp, border) and with
//    normalised coordinates (wrap), on a float4 array and a uchar4 array read as floats;
//  - layered textures: tex1DLayered / tex2DLayered (tex.a1d / tex.a2d) on layered arrays made by
//    cudaMalloc3DArray, every layer, the layer index clamped, linear filtering inside one layer;
//  - tex2DLod and tex2DGrad (tex.level / tex.grad) on a one-level texture: level 0 at any level
//    of detail, as on a GPU (texture_mipmap.cu has the textures with more);
//  - txq (inline PTX) on these objects: extents, layer count, modes;
//  - what is refused: a layered fetch from a texture that is not layered (a fault, not a read of
//    the wrong texels; last, as it is sticky).
#include <algorithm>
#include <cmath>
#include <initializer_list>
#include <vector>

#include "check.h"

constexpr int kW = 6, kH = 5;

float4 texel(int x, int y) { return make_float4(x + 10 * y, 100 + x, 200 + y, 300 + x * y); }

__global__ void gatherAll(cudaTextureObject_t t, float4* out, const float2* at, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n) return;
  out[4 * i + 0] = tex2Dgather<float4>(t, at[i].x, at[i].y, 0);
  out[4 * i + 1] = tex2Dgather<float4>(t, at[i].x, at[i].y, 1);
  out[4 * i + 2] = tex2Dgather<float4>(t, at[i].x, at[i].y, 2);
  out[4 * i + 3] = tex2Dgather<float4>(t, at[i].x, at[i].y, 3);
}

__global__ void layered2D(cudaTextureObject_t t, float* out, int w, int h, int layers, float dx) {
  int x = threadIdx.x, y = threadIdx.y, l = blockIdx.x; // one block per layer, plus one past
  if (x < w && y < h && l < layers) out[(l * h + y) * w + x] = tex2DLayered<float>(t, x + dx, y + 0.5f, l);
}

__global__ void layered1D(cudaTextureObject_t t, float* out, int w, int layers) {
  int x = threadIdx.x, l = blockIdx.x;
  if (x < w) out[l * w + x] = tex1DLayered<float>(t, x + 0.5f, l == layers ? 1000 : l);
}

__global__ void lodGrad(cudaTextureObject_t t, float4* out, int w, int h) {
  int x = threadIdx.x, y = threadIdx.y;
  if (x >= w || y >= h) return;
  const float u = x + 0.5f, v = y + 0.5f;
  out[(y * w + x) * 3 + 0] = tex2D<float4>(t, u, v);
  out[(y * w + x) * 3 + 1] = tex2DLod<float4>(t, u, v, 2.5f);
  out[(y * w + x) * 3 + 2] = tex2DGrad<float4>(t, u, v, make_float2(4, 0), make_float2(0, 4));
}

__device__ unsigned query(cudaTextureObject_t t, int which) {
  unsigned v = 0;
  switch (which) {
  case 0: asm volatile("txq.width.b32 %0, [%1];" : "=r"(v) : "l"(t)); break;
  case 1: asm volatile("txq.height.b32 %0, [%1];" : "=r"(v) : "l"(t)); break;
  case 2: asm volatile("txq.depth.b32 %0, [%1];" : "=r"(v) : "l"(t)); break;
  case 3: asm volatile("txq.array_size.b32 %0, [%1];" : "=r"(v) : "l"(t)); break;
  case 4: asm volatile("txq.normalized_coords.b32 %0, [%1];" : "=r"(v) : "l"(t)); break;
  case 5: asm volatile("txq.filter_mode.b32 %0, [%1];" : "=r"(v) : "l"(t)); break;
  case 6: asm volatile("txq.addr_mode_0.b32 %0, [%1];" : "=r"(v) : "l"(t)); break;
  case 7: asm volatile("txq.addr_mode_1.b32 %0, [%1];" : "=r"(v) : "l"(t)); break;
  default: asm volatile("txq.num_mipmap_levels.b32 %0, [%1];" : "=r"(v) : "l"(t)); break;
  }
  return v;
}

__global__ void queries(cudaTextureObject_t t, unsigned* out) { out[threadIdx.x] = query(t, threadIdx.x); }

namespace {

int clampTo(int v, int n) { return v < 0 ? 0 : v >= n ? n - 1 : v; }
float channel(float4 v, int c) { return c == 0 ? v.x : c == 1 ? v.y : c == 2 ? v.z : v.w; }

cudaTextureObject_t makeTexture(cudaArray_t a, cudaTextureAddressMode mode, cudaTextureFilterMode filter,
                                bool normalized, cudaTextureReadMode read = cudaReadModeElementType) {
  cudaResourceDesc res{};
  res.resType = cudaResourceTypeArray;
  res.res.array.array = a;
  cudaTextureDesc td{};
  td.addressMode[0] = td.addressMode[1] = td.addressMode[2] = mode;
  td.filterMode = filter;
  td.readMode = read;
  td.normalizedCoords = normalized;
  td.borderColor[0] = -1;
  td.borderColor[1] = -2;
  td.borderColor[2] = -3;
  td.borderColor[3] = -4;
  cudaTextureObject_t t = 0;
  CHECK(cudaCreateTextureObject(&t, &res, &td, nullptr));
  return t;
}

// Gathers at points inside, on texel centres and edges, and outside the texture; compares each
// channel's four texels with the CPU's: (i0, j1), (i1, j1), (i1, j0), (i0, j0), i0 = floor(x-0.5).
// `value(x, y, c)` is texel (x, y)'s channel c as the sampler reads it (after addressing; the
// border colour is passed as border).
template <class Value>
void checkGather(const char* what, cudaTextureObject_t t, bool normalized, cudaTextureAddressMode mode,
                 Value value) {
  std::vector<float2> at;
  for (float y = -1.25f; y <= kH + 1; y += 0.75f)
    for (float x = -1.5f; x <= kW + 1; x += 0.625f) at.push_back(make_float2(x, y));
  const int n = static_cast<int>(at.size());
  std::vector<float2> coords = at;
  if (normalized)
    for (auto& c : coords) c = make_float2(c.x / kW, c.y / kH);
  float2* dAt = nullptr;
  float4* dOut = nullptr;
  CHECK(cudaMalloc(&dAt, n * sizeof(float2)));
  CHECK(cudaMalloc(&dOut, 4 * n * sizeof(float4)));
  CHECK(cudaMemcpy(dAt, coords.data(), n * sizeof(float2), cudaMemcpyHostToDevice));
  gatherAll<<<(n + 63) / 64, 64>>>(t, dOut, dAt, n);
  CHECK(cudaGetLastError());
  std::vector<float4> got(4 * n);
  CHECK(cudaMemcpy(got.data(), dOut, got.size() * sizeof(float4), cudaMemcpyDeviceToHost));
  auto addr = [&](int i, int size) -> int {
    if (mode == cudaAddressModeWrap) return ((i % size) + size) % size;
    if (mode == cudaAddressModeBorder) return i < 0 || i >= size ? -1 : i;
    return clampTo(i, size);
  };
  int bad = 0;
  for (int p = 0; p < n; ++p) {
    const int i0 = (int)std::floor(at[p].x - 0.5f), j0 = (int)std::floor(at[p].y - 0.5f);
    const int corner[4][2] = {{i0, j0 + 1}, {i0 + 1, j0 + 1}, {i0 + 1, j0}, {i0, j0}};
    for (int c = 0; c < 4; ++c)
      for (int q = 0; q < 4; ++q) {
        const int x = addr(corner[q][0], kW), y = addr(corner[q][1], kH);
        const float want = x < 0 || y < 0 ? -1.0f - c : value(x, y, c);
        const float g = channel(got[4 * p + c], q);
        if (g != want && bad++ < 5)
          std::fprintf(stderr, "%s: gather(%g, %g) channel %d texel %d = %g, want %g\n", what, at[p].x, at[p].y, c,
                       q, g, want);
      }
  }
  EXPECT_EQ_INT(bad, 0);
  CHECK(cudaFree(dAt));
  CHECK(cudaFree(dOut));
}

void gathers() {
  cudaChannelFormatDesc f4 = cudaCreateChannelDesc<float4>();
  cudaArray_t a = nullptr;
  CHECK(cudaMallocArray(&a, &f4, kW, kH, cudaArrayTextureGather));
  std::vector<float4> v(kW * kH);
  for (int y = 0; y < kH; ++y)
    for (int x = 0; x < kW; ++x) v[y * kW + x] = texel(x, y);
  CHECK(cudaMemcpy2DToArray(a, 0, 0, v.data(), kW * sizeof(float4), kW * sizeof(float4), kH, cudaMemcpyHostToDevice));
  auto fv = [](int x, int y, int c) { return channel(texel(x, y), c); };
  struct Case {
    cudaTextureAddressMode mode;
    bool normalized;
    const char* what;
  };
  for (const Case& k : {Case{cudaAddressModeClamp, false, "gather clamp"}, Case{cudaAddressModeBorder, false, "gather border"},
                        Case{cudaAddressModeWrap, true, "gather wrap, normalised"}}) {
    cudaTextureObject_t t = makeTexture(a, k.mode, cudaFilterModeLinear, k.normalized);
    checkGather(k.what, t, k.normalized, k.mode, fv);
    CHECK(cudaDestroyTextureObject(t));
  }
  // uchar4 texels read as normalised floats: the gather gives v / 255
  cudaChannelFormatDesc u4 = cudaCreateChannelDesc<uchar4>();
  cudaArray_t b = nullptr;
  CHECK(cudaMallocArray(&b, &u4, kW, kH, cudaArrayTextureGather));
  std::vector<uchar4> pix(kW * kH);
  for (int y = 0; y < kH; ++y)
    for (int x = 0; x < kW; ++x) pix[y * kW + x] = make_uchar4(x * 40, y * 50, x * y * 7, 255 - x);
  CHECK(cudaMemcpy2DToArray(b, 0, 0, pix.data(), kW * 4, kW * 4, kH, cudaMemcpyHostToDevice));
  cudaTextureObject_t t = makeTexture(b, cudaAddressModeClamp, cudaFilterModeLinear, false, cudaReadModeNormalizedFloat);
  checkGather("gather uchar4 as float", t, false, cudaAddressModeClamp, [&](int x, int y, int c) {
    const uchar4 p = pix[y * kW + x];
    return (c == 0 ? p.x : c == 1 ? p.y : c == 2 ? p.z : p.w) / 255.0f;
  });
  CHECK(cudaDestroyTextureObject(t));
  CHECK(cudaFreeArray(a));
  CHECK(cudaFreeArray(b));
}

std::vector<unsigned> runQueries(cudaTextureObject_t t) {
  unsigned* d = nullptr;
  CHECK(cudaMalloc(&d, 9 * sizeof(unsigned)));
  queries<<<1, 9>>>(t, d);
  CHECK(cudaGetLastError());
  std::vector<unsigned> q(9);
  CHECK(cudaMemcpy(q.data(), d, q.size() * sizeof(unsigned), cudaMemcpyDeviceToHost));
  CHECK(cudaFree(d));
  return q;
}

// Host floats, layer after layer of h rows of w, into a layered array.
void copyLayers(cudaArray_t a, std::vector<float>& v, int w, int h, int n) {
  cudaMemcpy3DParms p{};
  p.srcPtr = make_cudaPitchedPtr(v.data(), w * sizeof(float), w, h);
  p.dstArray = a;
  p.extent = make_cudaExtent(w, h, n);
  p.kind = cudaMemcpyHostToDevice;
  CHECK(cudaMemcpy3D(&p));
}

void layers() {
  const int w = 7, h = 4, n = 3;
  auto value = [](int x, int y, int l) { return float(x + 10 * y + 1000 * l); };
  cudaChannelFormatDesc f1 = cudaCreateChannelDesc<float>();
  cudaArray_t a = nullptr;
  CHECK(cudaMalloc3DArray(&a, &f1, make_cudaExtent(w, h, n), cudaArrayLayered));
  std::vector<float> v(w * h * n);
  for (int l = 0; l < n; ++l)
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < w; ++x) v[(l * h + y) * w + x] = value(x, y, l);
  copyLayers(a, v, w, h, n);
  float* d = nullptr;
  CHECK(cudaMalloc(&d, w * h * n * sizeof(float)));
  // point sampling at texel centres: every texel of every layer
  cudaTextureObject_t t = makeTexture(a, cudaAddressModeClamp, cudaFilterModePoint, false);
  layered2D<<<n, dim3(w, h)>>>(t, d, w, h, n, 0.5f);
  CHECK(cudaGetLastError());
  std::vector<float> got(w * h * n);
  CHECK(cudaMemcpy(got.data(), d, got.size() * sizeof(float), cudaMemcpyDeviceToHost));
  EXPECT_EQ_BYTES(got.data(), v.data(), got.size() * sizeof(float), "tex2DLayered, every layer");
  const std::vector<unsigned> q = runQueries(t);
  const unsigned wantQ[9] = {w, h, 1, n, 0, 0, 3, 3, 1}; // clamp is clamp_to_edge (3)
  EXPECT_EQ_BYTES(q.data(), wantQ, sizeof wantQ, "txq on a layered 2D texture");
  CHECK(cudaDestroyTextureObject(t));
  // linear filtering between x texels blends within the layer, never with the next layer
  t = makeTexture(a, cudaAddressModeClamp, cudaFilterModeLinear, false);
  layered2D<<<n, dim3(w, h)>>>(t, d, w, h, n, 1.0f); // halfway between x and x+1
  CHECK(cudaGetLastError());
  CHECK(cudaMemcpy(got.data(), d, got.size() * sizeof(float), cudaMemcpyDeviceToHost));
  int bad = 0;
  for (int l = 0; l < n; ++l)
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < w; ++x) {
        const float want = 0.5f * value(x, y, l) + 0.5f * value(clampTo(x + 1, w), y, l);
        bad += got[(l * h + y) * w + x] != want;
      }
  EXPECT_EQ_INT(bad, 0);
  CHECK(cudaDestroyTextureObject(t));
  CHECK(cudaFreeArray(a));

  // 1D layered: the last block asks for layer 1000, clamped to the last layer
  cudaArray_t b = nullptr;
  CHECK(cudaMalloc3DArray(&b, &f1, make_cudaExtent(w, 0, n), cudaArrayLayered));
  std::vector<float> v1(w * n), want1(w * (n + 1));
  for (int l = 0; l < n; ++l)
    for (int x = 0; x < w; ++x) v1[l * w + x] = value(x, 0, l) + 0.25f;
  copyLayers(b, v1, w, 1, n);
  for (int l = 0; l <= n; ++l)
    for (int x = 0; x < w; ++x) want1[l * w + x] = v1[std::min(l, n - 1) * w + x];
  t = makeTexture(b, cudaAddressModeClamp, cudaFilterModePoint, false);
  layered1D<<<n + 1, w>>>(t, d, w, n);
  CHECK(cudaGetLastError());
  std::vector<float> got1(want1.size());
  CHECK(cudaMemcpy(got1.data(), d, got1.size() * sizeof(float), cudaMemcpyDeviceToHost));
  EXPECT_EQ_BYTES(got1.data(), want1.data(), got1.size() * sizeof(float), "tex1DLayered, layer clamped");
  CHECK(cudaDestroyTextureObject(t));
  CHECK(cudaFreeArray(b));
  CHECK(cudaFree(d));
}

void levels() {
  cudaChannelFormatDesc f4 = cudaCreateChannelDesc<float4>();
  cudaArray_t a = nullptr;
  CHECK(cudaMallocArray(&a, &f4, kW, kH));
  std::vector<float4> v(kW * kH);
  for (int y = 0; y < kH; ++y)
    for (int x = 0; x < kW; ++x) v[y * kW + x] = texel(x, y);
  CHECK(cudaMemcpy2DToArray(a, 0, 0, v.data(), kW * sizeof(float4), kW * sizeof(float4), kH, cudaMemcpyHostToDevice));
  cudaTextureObject_t t = makeTexture(a, cudaAddressModeWrap, cudaFilterModeLinear, false);
  float4* d = nullptr;
  CHECK(cudaMalloc(&d, kW * kH * 3 * sizeof(float4)));
  lodGrad<<<1, dim3(kW, kH)>>>(t, d, kW, kH);
  CHECK(cudaGetLastError());
  std::vector<float4> got(kW * kH * 3), want(kW * kH * 3);
  CHECK(cudaMemcpy(got.data(), d, got.size() * sizeof(float4), cudaMemcpyDeviceToHost));
  for (int i = 0; i < kW * kH; ++i) want[3 * i] = want[3 * i + 1] = want[3 * i + 2] = v[i];
  EXPECT_EQ_BYTES(got.data(), want.data(), got.size() * sizeof(float4), "tex2D, tex2DLod, tex2DGrad at texel centres");
  const std::vector<unsigned> q = runQueries(t);
  const unsigned wantQ[9] = {kW, kH, 1, 0, 0, 1, 0, 0, 1}; // wrap 0, linear 1, not layered
  EXPECT_EQ_BYTES(q.data(), wantQ, sizeof wantQ, "txq on a 2D texture");
  CHECK(cudaDestroyTextureObject(t));

  // A layered fetch from a texture that is not layered is a fault (sticky: the last check).
  t = makeTexture(a, cudaAddressModeClamp, cudaFilterModePoint, false);
  layered2D<<<1, dim3(kW, kH)>>>(t, reinterpret_cast<float*>(d), kW, kH, 1, 0.5f);
  EXPECT_ERR(cudaDeviceSynchronize(), cudaErrorIllegalAddress);
}

} // namespace

int main() {
  CHECK(cudaSetDevice(0));
  TF_CHECK_VGPU();
  gathers();
  layers();
  levels();
  return tf_test::summary("texture_gather_layered");
}

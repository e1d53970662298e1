// Mipmapped textures, as the samples that build and sample mip chains use them: a mipmapped
// array (cudaMallocMipmappedArray), each level filled through cudaGetMipmappedArrayLevel, and a
// texture on it sampled with tex2DLod (tex.level), tex2DGrad (tex.grad) and tex2D. Each fetch is
// checked against the level and texel it must read, computed here: point mipmap filtering
// takes the nearest level, linear blends the two around the level of detail; the bias and the
// level clamps apply; unnormalised coordinates address level 0's texels. Then the refusals: a
// level count the extent cannot have, a level past the last, a level array freed on its own.
#include <cmath>
#include <vector>

#include "check.h"

constexpr int kW = 16, kH = 8, kLevels = 5; // 16x8, 8x4, 4x2, 2x1, 1x1

float value(int level, int x, int y) { return float(1000 * level + x + 10 * y); }
int extentAt(int n, int level) { return n >> level > 0 ? n >> level : 1; }

struct Query {
  float u, v, lod;
};

__global__ void byLod(cudaTextureObject_t t, const Query* q, float* out, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) out[i] = tex2DLod<float>(t, q[i].u, q[i].v, q[i].lod);
}

// tex2DGrad with gradients of 2^lod level-0 texels (normalised coordinates): level `lod`.
__global__ void byGrad(cudaTextureObject_t t, const Query* q, float* out, int n, int w, int h) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n) return;
  const float s = exp2f(q[i].lod);
  out[i] = tex2DGrad<float>(t, q[i].u, q[i].v, make_float2(s / w, 0), make_float2(0, s / h));
}

__global__ void plain(cudaTextureObject_t t, const Query* q, float* out, int n, unsigned* levels) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) out[i] = tex2D<float>(t, q[i].u, q[i].v);
  if (i == 0) {
    asm volatile("txq.num_mipmap_levels.b32 %0, [%1];" : "=r"(levels[0]) : "l"(t));
    asm volatile("txq.width.b32 %0, [%1];" : "=r"(levels[1]) : "l"(t));
  }
}

namespace {

int clampTo(int v, int n) { return v < 0 ? 0 : v >= n ? n - 1 : v; }

// Point sampling of level `level` at normalised (u, v).
float at(int level, float u, float v) {
  const int w = extentAt(kW, level), h = extentAt(kH, level);
  return value(level, clampTo((int)std::floor(u * w), w), clampTo((int)std::floor(v * h), h));
}

cudaTextureObject_t makeTexture(cudaMipmappedArray_t m, cudaTextureFilterMode mipFilter, float bias,
                                float minLod, float maxLod, bool normalized = true) {
  cudaResourceDesc res{};
  res.resType = cudaResourceTypeMipmappedArray;
  res.res.mipmap.mipmap = m;
  cudaTextureDesc td{};
  td.addressMode[0] = td.addressMode[1] = cudaAddressModeClamp;
  td.filterMode = cudaFilterModePoint;
  td.mipmapFilterMode = mipFilter;
  td.mipmapLevelBias = bias;
  td.minMipmapLevelClamp = minLod;
  td.maxMipmapLevelClamp = maxLod;
  td.normalizedCoords = normalized;
  td.readMode = cudaReadModeElementType;
  cudaTextureObject_t t = 0;
  CHECK(cudaCreateTextureObject(&t, &res, &td, nullptr));
  return t;
}

// Runs the queries through `launch` (which writes out[i]) and compares with want[i].
template <class Launch>
void check(const char* what, const std::vector<Query>& q, const std::vector<float>& want, Launch launch) {
  const int n = static_cast<int>(q.size());
  Query* dq = nullptr;
  float* dout = nullptr;
  CHECK(cudaMalloc(&dq, n * sizeof(Query)));
  CHECK(cudaMalloc(&dout, n * sizeof(float)));
  CHECK(cudaMemcpy(dq, q.data(), n * sizeof(Query), cudaMemcpyHostToDevice));
  launch(dq, dout, n);
  CHECK(cudaGetLastError());
  std::vector<float> got(n);
  CHECK(cudaMemcpy(got.data(), dout, n * sizeof(float), cudaMemcpyDeviceToHost));
  int bad = 0;
  for (int i = 0; i < n; ++i)
    if (got[i] != want[i] && bad++ < 5)
      std::fprintf(stderr, "%s: (%g, %g) lod %g = %g, want %g\n", what, q[i].u, q[i].v, q[i].lod, got[i], want[i]);
  EXPECT_EQ_INT(bad, 0);
  CHECK(cudaFree(dq));
  CHECK(cudaFree(dout));
}

// Every texel centre of every level, as normalised coordinates, with a level of detail of that
// level plus `offset`.
std::vector<Query> centres(float offset) {
  std::vector<Query> q;
  for (int l = 0; l < kLevels; ++l) {
    const int w = extentAt(kW, l), h = extentAt(kH, l);
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < w; ++x) q.push_back({(x + 0.5f) / w, (y + 0.5f) / h, l + offset});
  }
  return q;
}

} // namespace

int main() {
  CHECK(cudaSetDevice(0));
  TF_CHECK_VGPU();
  size_t free0 = 0, total = 0;
  CHECK(cudaMemGetInfo(&free0, &total));
  cudaChannelFormatDesc f1 = cudaCreateChannelDesc<float>();
  cudaMipmappedArray_t m = nullptr;
  CHECK(cudaMallocMipmappedArray(&m, &f1, make_cudaExtent(kW, kH, 0), kLevels));
  for (int l = 0; l < kLevels; ++l) {
    cudaArray_t a = nullptr;
    CHECK(cudaGetMipmappedArrayLevel(&a, m, l));
    cudaExtent e{};
    CHECK(cudaArrayGetInfo(nullptr, &e, nullptr, a));
    const int w = extentAt(kW, l), h = extentAt(kH, l);
    EXPECT_TRUE((int)e.width == w && (int)e.height == h);
    std::vector<float> v(w * h);
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < w; ++x) v[y * w + x] = value(l, x, y);
    CHECK(cudaMemcpy2DToArray(a, 0, 0, v.data(), w * sizeof(float), w * sizeof(float), h, cudaMemcpyHostToDevice));
  }

  // Point mipmap filtering: the nearest level; out-of-range levels of detail clamp.
  cudaTextureObject_t point = makeTexture(m, cudaFilterModePoint, 0, 0, kLevels - 1);
  std::vector<Query> q;
  std::vector<float> want;
  for (float off : {0.0f, 0.25f, -0.25f}) {
    for (const Query& c : centres(off)) {
      q.push_back(c);
      want.push_back(at(std::lround(c.lod - off), c.u, c.v));
    }
  }
  q.push_back({0.3f, 0.6f, -3.0f});
  want.push_back(at(0, 0.3f, 0.6f));
  q.push_back({0.3f, 0.6f, 9.0f});
  want.push_back(at(kLevels - 1, 0.3f, 0.6f));
  auto lodLaunch = [&](cudaTextureObject_t t) {
    return [t](Query* dq, float* dout, int n) { byLod<<<(n + 63) / 64, 64>>>(t, dq, dout, n); };
  };
  check("tex2DLod, point mipmap filter", q, want, lodLaunch(point));

  // tex2DGrad: gradients of 2^l texels select level l.
  q = centres(0);
  want.clear();
  for (const Query& c : q) want.push_back(at((int)c.lod, c.u, c.v));
  check("tex2DGrad", q, want, [&](Query* dq, float* dout, int n) { byGrad<<<(n + 63) / 64, 64>>>(point, dq, dout, n, kW, kH); });

  // tex2D: level of detail 0; txq sees the levels.
  want.clear();
  for (const Query& c : q) want.push_back(at(0, c.u, c.v));
  unsigned* dLevels = nullptr;
  CHECK(cudaMalloc(&dLevels, 2 * sizeof(unsigned)));
  check("tex2D on a mipmapped texture", q, want,
        [&](Query* dq, float* dout, int n) { plain<<<(n + 63) / 64, 64>>>(point, dq, dout, n, dLevels); });
  unsigned levels[2] = {0, 0};
  CHECK(cudaMemcpy(levels, dLevels, sizeof levels, cudaMemcpyDeviceToHost));
  EXPECT_EQ_INT(levels[0], kLevels);
  EXPECT_EQ_INT(levels[1], kW);
  CHECK(cudaFree(dLevels));

  // Linear mipmap filtering halfway between two levels: the mean of both (the last level has
  // no next one); a quarter of the way: 3:1.
  cudaTextureObject_t linear = makeTexture(m, cudaFilterModeLinear, 0, 0, kLevels - 1);
  q.clear();
  want.clear();
  for (float off : {0.5f, 0.25f}) {
    for (const Query& c : centres(off)) {
      const int l = (int)std::floor(c.lod);
      q.push_back(c);
      want.push_back(l + 1 < kLevels ? (1 - off) * at(l, c.u, c.v) + off * at(l + 1, c.u, c.v) : at(l, c.u, c.v));
    }
  }
  check("tex2DLod, linear mipmap filter", q, want, lodLaunch(linear));

  // The bias is added, then the clamps: bias 1, levels [1, 2].
  cudaTextureObject_t biased = makeTexture(m, cudaFilterModePoint, 1.0f, 1.0f, 2.0f);
  q = centres(0);
  want.clear();
  for (const Query& c : q) want.push_back(at(std::min(std::max((int)c.lod + 1, 1), 2), c.u, c.v));
  check("tex2DLod with bias and clamps", q, want, lodLaunch(biased));

  // Unnormalised coordinates address level 0's texels at every level.
  cudaTextureObject_t texels = makeTexture(m, cudaFilterModePoint, 0, 0, kLevels - 1, false);
  q = {{4.5f, 2.5f, 1.0f}, {13.0f, 7.5f, 2.0f}, {15.5f, 0.5f, 0.0f}};
  want = {value(1, 2, 1), value(2, 3, 1), value(0, 15, 0)};
  check("tex2DLod, unnormalised coordinates", q, want, lodLaunch(texels));

  for (cudaTextureObject_t t : {point, linear, biased, texels}) CHECK(cudaDestroyTextureObject(t));

  // Refusals: more levels than the extent has, a level past the last, a level freed alone.
  cudaMipmappedArray_t tooMany = nullptr;
  EXPECT_ERR(cudaMallocMipmappedArray(&tooMany, &f1, make_cudaExtent(kW, kH, 0), kLevels + 1), cudaErrorInvalidValue);
  cudaArray_t level = nullptr;
  EXPECT_ERR(cudaGetMipmappedArrayLevel(&level, m, kLevels), cudaErrorInvalidValue);
  CHECK(cudaGetMipmappedArrayLevel(&level, m, 1));
  EXPECT_ERR(cudaFreeArray(level), cudaErrorInvalidValue);
  (void)cudaGetLastError();
  CHECK(cudaFreeMipmappedArray(m));
  size_t free1 = 0;
  CHECK(cudaMemGetInfo(&free1, &total));
  EXPECT_EQ_INT(free1, free0); // every level's memory came back
  return tf_test::summary("texture_mipmap");
}

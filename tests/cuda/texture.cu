// Texture objects on the soft GPU: a float CUDA array sampled by kernels with point filtering
// (clamp, border, and wrap with normalised coordinates), linear filtering, a uchar4 array read
// as normalised floats, and pitched device memory as a 2D texture. Each fetch is checked
// against the texel it must give, computed here from the same values by plain indexing.
#include <vector>

#include "check.h"

constexpr int kW = 13, kH = 7;
constexpr int kPad = 3; // the output reaches this many texels past every edge

float value(int x, int y) { return float(x + 100 * y); }

__global__ void sample(cudaTextureObject_t t, float* out, int w, int h, int pad, float dx,
                       bool normalized) {
  int ox = blockIdx.x * blockDim.x + threadIdx.x, oy = blockIdx.y * blockDim.y + threadIdx.y;
  int ow = w + 2 * pad, oh = h + 2 * pad;
  if (ox >= ow || oy >= oh) return;
  float x = ox - pad + dx, y = oy - pad + 0.5f;
  if (normalized) {
    x /= w;
    y /= h;
  }
  out[oy * ow + ox] = tex2D<float>(t, x, y);
}

__global__ void sample4(cudaTextureObject_t t, float4* out, int w, int h) {
  int x = blockIdx.x * blockDim.x + threadIdx.x, y = blockIdx.y * blockDim.y + threadIdx.y;
  if (x < w && y < h) out[y * w + x] = tex2D<float4>(t, x + 0.5f, y + 0.5f);
}

int clampTo(int v, int n) { return v < 0 ? 0 : v >= n ? n - 1 : v; }

// Runs `sample` over the padded grid and returns what it fetched.
std::vector<float> fetchAll(cudaTextureObject_t t, float dx, bool normalized) {
  const int ow = kW + 2 * kPad, oh = kH + 2 * kPad;
  float* d = nullptr;
  CHECK(cudaMalloc(&d, ow * oh * sizeof(float)));
  sample<<<dim3((ow + 7) / 8, (oh + 7) / 8), dim3(8, 8)>>>(t, d, kW, kH, kPad, dx, normalized);
  CHECK(cudaGetLastError());
  std::vector<float> out(ow * oh);
  CHECK(cudaMemcpy(out.data(), d, out.size() * sizeof(float), cudaMemcpyDeviceToHost));
  CHECK(cudaFree(d));
  return out;
}

cudaTextureObject_t makeTexture(const cudaResourceDesc& res, cudaTextureAddressMode mode,
                                cudaTextureFilterMode filter, bool normalized) {
  cudaTextureDesc td{};
  td.addressMode[0] = td.addressMode[1] = mode;
  td.filterMode = filter;
  td.readMode = cudaReadModeElementType;
  td.normalizedCoords = normalized;
  cudaTextureObject_t t = 0;
  CHECK(cudaCreateTextureObject(&t, &res, &td, nullptr));
  return t;
}

int main() {
  CHECK(cudaSetDevice(0));
  TF_CHECK_VGPU();
  std::vector<float> h(kW * kH);
  for (int y = 0; y < kH; ++y)
    for (int x = 0; x < kW; ++x) h[y * kW + x] = value(x, y);
  cudaChannelFormatDesc desc = cudaCreateChannelDesc<float>();
  cudaArray_t arr = nullptr;
  CHECK(cudaMallocArray(&arr, &desc, kW, kH));
  CHECK(cudaMemcpy2DToArray(arr, 0, 0, h.data(), kW * sizeof(float), kW * sizeof(float), kH,
                            cudaMemcpyHostToDevice));
  cudaResourceDesc res{};
  res.resType = cudaResourceTypeArray;
  res.res.array.array = arr;
  const int ow = kW + 2 * kPad, oh = kH + 2 * kPad;

  // Point, clamp: outside the array, the nearest edge texel.
  cudaTextureObject_t clamp = makeTexture(res, cudaAddressModeClamp, cudaFilterModePoint, false);
  auto got = fetchAll(clamp, 0.5f, false);
  int off = 0;
  for (int oy = 0; oy < oh; ++oy)
    for (int ox = 0; ox < ow; ++ox)
      off += got[oy * ow + ox] != value(clampTo(ox - kPad, kW), clampTo(oy - kPad, kH));
  EXPECT_EQ_INT(off, 0);
  cudaResourceDesc back{};
  CHECK(cudaGetTextureObjectResourceDesc(&back, clamp));
  EXPECT_TRUE(back.resType == cudaResourceTypeArray && back.res.array.array == arr);

  // Point, border: outside the array, 0.
  cudaTextureObject_t border = makeTexture(res, cudaAddressModeBorder, cudaFilterModePoint, false);
  got = fetchAll(border, 0.5f, false);
  off = 0;
  for (int oy = 0; oy < oh; ++oy)
    for (int ox = 0; ox < ow; ++ox) {
      int x = ox - kPad, y = oy - kPad;
      bool inside = x >= 0 && x < kW && y >= 0 && y < kH;
      off += got[oy * ow + ox] != (inside ? value(x, y) : 0.0f);
    }
  EXPECT_EQ_INT(off, 0);

  // Point, wrap, normalised coordinates: the array repeats.
  cudaTextureObject_t wrap = makeTexture(res, cudaAddressModeWrap, cudaFilterModePoint, true);
  got = fetchAll(wrap, 0.5f, true);
  off = 0;
  for (int oy = 0; oy < oh; ++oy)
    for (int ox = 0; ox < ow; ++ox)
      off += got[oy * ow + ox] != value((ox - kPad + kW) % kW, (oy - kPad + kH) % kH);
  EXPECT_EQ_INT(off, 0);

  // Linear, clamp: a quarter of the way from texel x to x+1 (exact in 8-bit weights), rows
  // at their centres.
  cudaTextureObject_t linear = makeTexture(res, cudaAddressModeClamp, cudaFilterModeLinear, false);
  got = fetchAll(linear, 0.75f, false);
  off = 0;
  for (int oy = 0; oy < oh; ++oy)
    for (int ox = 0; ox < ow; ++ox) {
      int x = ox - kPad, y = clampTo(oy - kPad, kH);
      float want = 0.75f * value(clampTo(x, kW), y) + 0.25f * value(clampTo(x + 1, kW), y);
      off += got[oy * ow + ox] != want;
    }
  EXPECT_EQ_INT(off, 0);

  // uchar4 texels read as normalised floats.
  cudaChannelFormatDesc d4 = cudaCreateChannelDesc<uchar4>();
  cudaArray_t rgba = nullptr;
  CHECK(cudaMallocArray(&rgba, &d4, kW, kH));
  std::vector<uchar4> pix(kW * kH);
  for (int i = 0; i < kW * kH; ++i) pix[i] = make_uchar4(i, 255 - i, 2 * i, 51);
  CHECK(cudaMemcpy2DToArray(rgba, 0, 0, pix.data(), kW * sizeof(uchar4), kW * sizeof(uchar4), kH,
                            cudaMemcpyHostToDevice));
  cudaResourceDesc r4{};
  r4.resType = cudaResourceTypeArray;
  r4.res.array.array = rgba;
  cudaTextureDesc td4{};
  td4.filterMode = cudaFilterModePoint;
  td4.readMode = cudaReadModeNormalizedFloat;
  cudaTextureObject_t norm = 0;
  CHECK(cudaCreateTextureObject(&norm, &r4, &td4, nullptr));
  float4* d4out = nullptr;
  CHECK(cudaMalloc(&d4out, kW * kH * sizeof(float4)));
  sample4<<<dim3((kW + 7) / 8, (kH + 7) / 8), dim3(8, 8)>>>(norm, d4out, kW, kH);
  CHECK(cudaGetLastError());
  std::vector<float4> f4(kW * kH);
  CHECK(cudaMemcpy(f4.data(), d4out, f4.size() * sizeof(float4), cudaMemcpyDeviceToHost));
  off = 0;
  for (int i = 0; i < kW * kH; ++i)
    off += f4[i].x != pix[i].x / 255.0f || f4[i].y != pix[i].y / 255.0f ||
           f4[i].z != pix[i].z / 255.0f || f4[i].w != pix[i].w / 255.0f;
  EXPECT_EQ_INT(off, 0);

  // Pitched device memory as a 2D texture.
  float* pitched = nullptr;
  size_t pitch = 0;
  CHECK(cudaMallocPitch(&pitched, &pitch, kW * sizeof(float), kH));
  CHECK(cudaMemcpy2D(pitched, pitch, h.data(), kW * sizeof(float), kW * sizeof(float), kH,
                     cudaMemcpyHostToDevice));
  cudaResourceDesc rp{};
  rp.resType = cudaResourceTypePitch2D;
  rp.res.pitch2D.devPtr = pitched;
  rp.res.pitch2D.desc = desc;
  rp.res.pitch2D.width = kW;
  rp.res.pitch2D.height = kH;
  rp.res.pitch2D.pitchInBytes = pitch;
  cudaTextureObject_t fromPitch = makeTexture(rp, cudaAddressModeClamp, cudaFilterModePoint, false);
  got = fetchAll(fromPitch, 0.5f, false);
  off = 0;
  for (int oy = 0; oy < oh; ++oy)
    for (int ox = 0; ox < ow; ++ox)
      off += got[oy * ow + ox] != value(clampTo(ox - kPad, kW), clampTo(oy - kPad, kH));
  EXPECT_EQ_INT(off, 0);

  // Bad descriptions are refused: no resource, a pitch narrower than a row.
  cudaTextureDesc td{};
  cudaTextureObject_t bad = 0;
  EXPECT_ERR(cudaCreateTextureObject(&bad, nullptr, &td, nullptr), cudaErrorInvalidValue);
  rp.res.pitch2D.pitchInBytes = kW * sizeof(float) - 4;
  EXPECT_ERR(cudaCreateTextureObject(&bad, &rp, &td, nullptr), cudaErrorInvalidValue);

  for (cudaTextureObject_t t : {clamp, border, wrap, linear, norm, fromPitch})
    CHECK(cudaDestroyTextureObject(t));
  CHECK(cudaFree(pitched));
  CHECK(cudaFree(d4out));
  CHECK(cudaFreeArray(rgba));
  CHECK(cudaFreeArray(arr));
  return tf_test::summary("texture");
}
